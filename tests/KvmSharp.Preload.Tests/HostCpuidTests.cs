// SPDX-License-Identifier: MIT
using System.Diagnostics;

namespace KvmSharp.Preload.Tests;

/// <summary>
/// CPrograms/host_cpuid.c: the program's own CPUID under <c>kvmsharp exec</c> (native/cpuid.c). Once the program has
/// opened /dev/kvm, an emulated x86 host that offers SEV answers leaf 0x8000001F — SEV, SEV-ES, SNP and the C-bit
/// position 51 QEMU's sev.c checks — on the thread that opened it and on threads it creates afterwards; every other
/// leaf, and every leaf before the open or with a host without SEV, stays this machine's.
/// </summary>
public sealed class HostCpuidTests
{
    private static readonly CProgram Program = CProgram.Get("host_cpuid.c", "-pthread");

    /// <summary>CPUID faulting (arch_prctl ARCH_SET_CPUID), which the answers need; absent → the tests skip.</summary>
    private static readonly bool HasCpuidFaulting =
        File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("flags", StringComparison.Ordinal) && l.Split(' ').Contains("cpuid_fault"));

    private static string[] Native()
    {
        var start = new ProcessStartInfo(Program.Executable!) { RedirectStandardOutput = true };
        using var p = Process.Start(start)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static string Values(string line) => line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();

    private static uint[] Registers(string line) =>
        [.. Values(line).Split(' ').Select(v => Convert.ToUInt32(v, 16))];

    [KvmFact]
    public void An_sev_host_answers_the_memory_encryption_leaf_after_dev_kvm_is_opened()
    {
        Skip.If(Program.Unavailable is not null, Program.Unavailable);
        Skip.IfNot(HasCpuidFaulting, "this CPU has no CPUID faulting (cpuid_fault in /proc/cpuinfo)");
        string[] native = Native();
        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64"], Program.Executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        string[] lines = run.Lines;
        Assert.Equal(4, lines.Length);
        // Before the bridge starts the program sees the machine.
        Assert.Equal(Values(native[0]), Values(lines[0]));
        uint[] after = Registers(lines[1]);
        Assert.Equal(0x1bu, after[0] & 0x1b); // SME, SEV, SEV-ES, SNP
        Assert.Equal(51u, after[1] & 0x3f); // the C-bit position the emulator's page walk uses
        Assert.Equal(1u, (after[1] >> 6) & 0x3f); // PhysAddrReduction
        Assert.True(after[2] > after[3] && after[3] > 0, run.ToString()); // ECX: encrypted guests, EDX: min SEV ASID
        // A thread created afterwards inherits the answers; other leaves stay the machine's.
        Assert.Equal(Values(lines[1]), Values(lines[2]));
        Assert.Equal(native[3], lines[3]);
    }

    [KvmFact]
    public void A_host_without_sev_leaves_the_leaf_to_the_machine()
    {
        Skip.If(Program.Unavailable is not null, Program.Unavailable);
        string[] native = Native();
        // The default emulated preset is like this host: VM type 0 only, so kvm-amd offers no SEV.
        var run = ExecRun.Of(["--kernel", "emulated"], Program.Executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal([.. native.Select(Values)], [.. run.Lines.Select(Values)]);
    }
}
