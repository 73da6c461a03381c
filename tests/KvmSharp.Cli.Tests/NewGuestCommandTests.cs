// SPDX-License-Identifier: MIT
using System.ComponentModel;
using System.Diagnostics;
using KvmSharp.Cli.Commands;
using KvmSharp.Emulation;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp new-guest DIR</c>: the template it writes builds with make and gcc, and <c>kvmsharp run</c> runs the
/// result — the entry and <c>--call</c>s of add and sum — on the real kernel and on the emulated one.
/// </summary>
public sealed class NewGuestCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("kvmsharp-new-guest").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>new-guest into a fresh directory, then make there; skips (with the reason) without make or gcc.</summary>
    private string WriteAndBuild()
    {
        string dir = Path.Combine(_root, "hello");   // does not exist yet: new-guest creates it
        var run = CliRun.Of("new-guest", dir);
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Empty(run.Stderr);
        foreach (string name in new[] { GuestSdk.HeaderFileName, GuestTemplateCommand.SourceFileName, GuestTemplateCommand.MakefileName })
            Assert.Contains($"wrote {Path.Combine(dir, name)}", run.Stdout, StringComparison.Ordinal);

        foreach (string tool in new[] { "make", "gcc" })
            Skip.If(Start(tool, ["--version"], dir) is null, $"{tool} is not installed: the template cannot be built here");
        var (code, output) = Start("make", ["-C", dir], dir)!.Value;
        Assert.True(code == 0, $"make failed ({code}): {output}");
        string elf = Path.Combine(dir, GuestTemplateCommand.ImageFileName);
        Assert.True(File.Exists(elf), output);
        return elf;
    }

    [SkippableTheory]
    [InlineData("linux")]
    [InlineData("emulated")]
    public void The_template_builds_with_gcc_and_its_entry_add_and_sum_run_under_kvmsharp_run(string kernel)
    {
        if (kernel == "linux") Skip.If(KvmHost.UnavailableReason is not null, KvmHost.UnavailableReason);
        string elf = WriteAndBuild();

        var start = CliRun.Of("run", elf, "--kernel", kernel);
        Assert.True(start.ExitCode == 0, start.Stdout + start.Stderr);
        Assert.StartsWith($"{GuestTemplateCommand.Greeting} ABI version 5\n", start.Stdout, StringComparison.Ordinal);
        Assert.Contains("exit status 0", start.Stdout, StringComparison.Ordinal);

        var calls = CliRun.Of("run", elf, "--kernel", kernel, "--call", "add:40,2", "--call", "sum:1,2,3,4,5,6", "--call", "sum");
        Assert.True(calls.ExitCode == 0, calls.Stdout + calls.Stderr);
        string[] lines = calls.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("add(40, 2): exit status 0, result 42 ", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("sum(1, 2, 3, 4, 5, 6): exit status 0, result 21 ", lines[1], StringComparison.Ordinal);
        Assert.StartsWith("sum(): exit status 0, result 0 ", lines[2], StringComparison.Ordinal);
    }

    [SkippableFact]
    public void The_template_sums_input_bytes_and_hands_the_total_back_as_output()
    {
        // The byte-input path of sum (the CLI passes integers only): through the sandbox the template targets.
        string elf = WriteAndBuild();
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(kernel);
        using var vm = MicroVm.Create(GuestImage.Load(File.ReadAllBytes(elf)), new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromSeconds(20) });
        byte[] input = [1, 2, 3, 250];
        var r = vm.Call("sum", input);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(256UL, r.Value);
        Assert.Equal(256UL, BitConverter.ToUInt64(r.Output.Span));
    }

    [Fact]
    public void New_guest_writes_the_header_kvmsharp_vmm_embeds()
    {
        string dir = Path.Combine(_root, "header");
        Assert.Equal(0, CliRun.Of("new-guest", dir).ExitCode);
        string header = File.ReadAllText(Path.Combine(dir, GuestSdk.HeaderFileName));
        Assert.Equal(GuestSdk.Header, header);
        Assert.Contains("#define KVMS_ABI_VERSION 5u", header, StringComparison.Ordinal);
    }

    [Fact]
    public void New_guest_refuses_to_overwrite_and_then_writes_nothing()
    {
        string dir = Directory.CreateDirectory(Path.Combine(_root, "mine")).FullName;
        string mine = Path.Combine(dir, GuestTemplateCommand.SourceFileName);
        File.WriteAllText(mine, "/* my guest */\n");

        var run = CliRun.Of("new-guest", dir);
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal($"kvmsharp: new-guest: {mine} already exists: nothing written (pick another directory or move them)", run.Stderr.TrimEnd('\n'));
        Assert.Equal("/* my guest */\n", File.ReadAllText(mine));
        Assert.Equal([mine], Directory.GetFiles(dir));   // neither the header nor the Makefile
    }

    /// <summary>Runs a tool; null when it cannot start (not installed), else its exit code and output.</summary>
    private static (int Code, string Output)? Start(string file, string[] args, string dir)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        foreach (string a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, stdout + stderr.Result);
        }
        catch (Win32Exception)
        {
            return null;
        }
    }
}
