// SPDX-License-Identifier: MIT
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

    private string Build() => Arm64GuestCompiler.Build(Path.Combine(_root, "guest"));

    [SkippableFact]
    public void The_new_guest_template_built_for_arm64_runs_its_entry_and_calls()
    {
        string elf = Build();
        var start = CliRun.Of("run", elf, "--kernel", "emulated", "--arch", "arm64");
        Assert.True(start.ExitCode == 0, start.Stdout + start.Stderr);
        Assert.StartsWith($"{GuestTemplateCommand.Greeting} ABI version 5\n", start.Stdout, StringComparison.Ordinal);
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
