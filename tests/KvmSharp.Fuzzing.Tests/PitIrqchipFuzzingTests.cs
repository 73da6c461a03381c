// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The in-kernel PIT and the guest-programmed PIC/IOAPIC in the differential fuzzer: the PIT calls of irqchip sessions
/// (KernelSession.Pit.cs) and the guests that program the irqchip and the PIT themselves (TinyGuestRun.Irqchip.cs,
/// IrqchipOps.GuestProgrammed). Both agree on the real kernel and the emulator, repeat on the real kernel (nothing
/// compared follows the host clock), and reach what they are for.
/// </summary>
public class PitIrqchipFuzzingTests(ITestOutputHelper output)
{
    private static List<string> Runs(Func<IKernel> kernel, int count, int e)
    {
        var outcomes = new List<string>();
        for (int seed = 0; seed < count; seed++)
        {
            using var session = new KernelSession(kernel());
            session.Apply(new FuzzOp(OpKind.OpenKvm, Result: 0));
            outcomes.Add(session.Apply(new FuzzOp(OpKind.Irqchip, Target: 0, A: (ulong)seed * 0x9E37_79B9_7F4A_7C15UL, E: e)));
        }
        return outcomes;
    }

    private void AssertSame(List<string> expected, List<string> actual, string what)
    {
        for (int i = 0; i < expected.Count; i++)
        {
            if (expected[i] != actual[i]) output.WriteLine($"seed {i}:\n {what[..what.IndexOf('/', StringComparison.Ordinal)]} {expected[i]}\n {what[(what.IndexOf('/', StringComparison.Ordinal) + 1)..]} {actual[i]}");
        }
        Assert.Equal(expected, actual);
    }

    [KvmFact]
    public void Irqchip_sessions_with_pit_calls_agree_on_both_kernels_and_repeat()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the emulator preset for a host without guest_memfd is what this compares with");
        const int Count = 100;
        var linux = Runs(FuzzKernels.Real, Count, 0);
        AssertSame(linux, Runs(FuzzKernels.EmulatorLikeThisMachine, Count, 0), "linux/emulated");
        AssertSame(linux, Runs(FuzzKernels.Real, Count, 0), "first/again");
        AssertPitCoverage(linux);
    }

    [Fact]
    public void Irqchip_sessions_reach_the_pit_calls_on_the_emulator() =>
        AssertPitCoverage(Runs(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)), 100, 0));

    [KvmFact]
    public void Guests_programming_the_irqchip_and_pit_agree_on_both_kernels_and_repeat()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the emulator preset for a host without guest_memfd is what this compares with");
        const int Count = 150;
        var linux = Runs(FuzzKernels.Real, Count, IrqchipOps.GuestProgrammed);
        AssertSame(linux, Runs(FuzzKernels.EmulatorLikeThisMachine, Count, IrqchipOps.GuestProgrammed), "linux/emulated");
        AssertSame(linux, Runs(FuzzKernels.Real, Count, IrqchipOps.GuestProgrammed), "first/again");
        AssertGuestCoverage(linux);
    }

    [Fact]
    public void Guests_programming_the_irqchip_and_pit_run_to_the_end_on_the_emulator() =>
        AssertGuestCoverage(Runs(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)), 80, IrqchipOps.GuestProgrammed));

    private void AssertPitCoverage(List<string> runs)
    {
        foreach (var r in runs.Where(r => r.Contains("ok get2 flags=", StringComparison.Ordinal)).Take(3)) output.WriteLine(r);
        string all = string.Join('\n', runs);
        Assert.Contains("pit create2 0x1 ok", all, StringComparison.Ordinal);
        Assert.Contains("pit create2 0x1 EEXIST", all, StringComparison.Ordinal);
        Assert.Contains("pit create2 0x1 ENOENT", all, StringComparison.Ordinal);
        Assert.Contains("pit get2 ENXIO", all, StringComparison.Ordinal);
        Assert.Matches(@"pit set2 0x[0-9A-F]+ ok get2 flags=", all);
        Assert.Matches(@"pit set ok get2 flags=.* t stamped", all);
        Assert.Matches(@"pit reinject \d+ ok", all);
        Assert.Contains("(NULL) EFAULT", all, StringComparison.Ordinal);
        Assert.Contains("KVM_GET_PIT2(NULL) ENXIO", all, StringComparison.Ordinal);
    }

    private void AssertGuestCoverage(List<string> runs)
    {
        foreach (var r in runs.Take(6)) output.WriteLine(r);
        int vectors = runs.Sum(r => System.Text.RegularExpressions.Regex.Count(r, "vector 0x"));
        output.WriteLine($"{runs.Count} runs: {runs.Count(r => r.Contains("done |", StringComparison.Ordinal))} done, " +
            $"{runs.Count(r => r.Contains("vector 0x", StringComparison.Ordinal))} took {vectors} vectors, {runs.Count(r => r.Contains(" status=0x", StringComparison.Ordinal) && r.Contains("| pit", StringComparison.Ordinal))} with a PIT");
        // Most programs run to their done port (the others took a vector below 0x20 from a PIC that kept irq_base 0);
        // a good share take interrupts from the PIC and the IOAPIC they programmed.
        Assert.True(runs.Count(r => r.Contains("done |", StringComparison.Ordinal)) >= runs.Count * 3 / 4, "programs that ran to the end");
        Assert.True(runs.Count(r => r.Contains("interrupt windows:", StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(r, "vector 0x[2-9A-F][0-9A-F];")) >= runs.Count / 6, "programs that took a vector");
        Assert.Contains(runs, r => r.Contains("| pit flags=", StringComparison.Ordinal));
        // A PIC the guest initialised (ICW2 moved irq_base away from 0: the state's first byte is last_irr, then irr,
        // imr, isr, priority_add, irq_base).
        Assert.Contains(runs, r => System.Text.RegularExpressions.Regex.IsMatch(r, @"\| pic0 [0-9A-F]{10}(?!00)[0-9A-F]{2}"));
        // An IOAPIC entry the guest wrote.
        Assert.Contains(runs, r => System.Text.RegularExpressions.Regex.IsMatch(r, @"\| ioapic [^|]*\[\d+\]=0x"));
    }
}
