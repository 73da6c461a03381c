// SPDX-License-Identifier: MIT
using System.ComponentModel;
using System.Diagnostics;
using KvmSharp.Cli.Commands;
using KvmSharp.Vmm;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp run guest.elf --kernel emulated --arch arm64</c> for a C guest (GUEST-ABI.md, "arm64 C guests"): the
/// very template <c>new-guest</c> writes, built by aarch64-linux-gnu-gcc with <see cref="GuestSdk.Arm64CompilerArguments"/>
/// (the header's API is the same on both architectures), runs its entry and its <c>--call</c>s; on an x86-64 micro-VM
/// the same ELF is refused with both machines named. Skips, with the reason, without the cross compiler.
/// </summary>
public sealed class RunArm64ElfTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("kvmsharp-arm64-elf").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Build()
    {
        string dir = Path.Combine(_root, "guest");
        var run = CliRun.Of("new-guest", dir);
        Assert.True(run.ExitCode == 0, run.Stderr);
        string elf = Path.Combine(dir, "arm64.elf");
        var psi = new ProcessStartInfo(GuestSdk.Arm64Compiler)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir,
        };
        foreach (string a in GuestSdk.Arm64CompilerArguments) psi.ArgumentList.Add(a);
        foreach (string a in new[] { "-Wall", "-Wextra", "-Werror", "-o", elf, GuestTemplateCommand.SourceFileName }) psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (Win32Exception e)
        {
            Skip.If(true, $"{GuestSdk.Arm64Compiler} (package gcc-aarch64-linux-gnu) is not installed: {e.Message}");
            throw;
        }
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"{GuestSdk.Arm64Compiler} failed ({p.ExitCode}): {stderr.Result}");
        }
        return elf;
    }

    [SkippableFact]
    public void The_new_guest_template_built_for_arm64_runs_its_entry_and_calls()
    {
        string elf = Build();
        var start = CliRun.Of("run", elf, "--kernel", "emulated", "--arch", "arm64");
        Assert.True(start.ExitCode == 0, start.Stdout + start.Stderr);
        Assert.StartsWith($"{GuestTemplateCommand.Greeting} ABI version 4\n", start.Stdout, StringComparison.Ordinal);
        Assert.Contains("exit status 0", start.Stdout, StringComparison.Ordinal);

        var calls = CliRun.Of("run", elf, "--kernel", "emulated", "--arch", "arm64", "--call", "add:40,2", "--call", "sum:1,2,3,4,5,6");
        Assert.True(calls.ExitCode == 0, calls.Stdout + calls.Stderr);
        string[] lines = calls.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("add(40, 2): exit status 0, result 42 ", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("sum(1, 2, 3, 4, 5, 6): exit status 0, result 21 ", lines[1], StringComparison.Ordinal);
    }

    [SkippableFact]
    public void An_arm64_elf_on_an_x86_micro_vm_is_refused_naming_both_architectures()
    {
        string elf = Build();
        var run = CliRun.Of("run", elf, "--kernel", "emulated", "--arch", "x86_64");
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("EM_AARCH64 ELF (Arm64), but this micro-VM is X86_64", run.Stderr, StringComparison.Ordinal);
    }
}
