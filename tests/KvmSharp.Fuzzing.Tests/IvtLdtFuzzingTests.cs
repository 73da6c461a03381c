// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// Real-mode guests taking interrupts and exceptions through the IVT and 64-bit guests using the LDT in the differential
/// fuzzer (OpKind.IvtLdtGuestRun; TinyGuestRun.RealMode.cs, TinyGuestRun.Ldt.cs): the runs agree on both kernels and
/// reach what they are for (vectors recorded by the IVT stubs, faults from the LDT).
/// </summary>
public class IvtLdtFuzzingTests(ITestOutputHelper output)
{
    private static List<string> Runs(Func<IKernel> kernel, int count, int kind)
    {
        var outcomes = new List<string>();
        using var session = new KernelSession(kernel());
        session.Apply(new FuzzOp(OpKind.OpenKvm, Result: 0));
        for (int seed = 0; seed < count; seed++) outcomes.Add(session.Apply(new FuzzOp(OpKind.IvtLdtGuestRun, Target: 0, A: (ulong)seed, E: kind)));
        return outcomes;
    }

    [KvmTheory]
    [InlineData(0, 300)]
    [InlineData(1, 300)]
    public void Ivt_and_ldt_runs_agree_on_both_kernels(int kind, int count)
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the emulator preset for a host without guest_memfd is what this compares with");
        var linux = Runs(FuzzKernels.Real, count, kind);
        var emulated = Runs(FuzzKernels.EmulatorLikeThisMachine, count, kind);
        int differ = 0;
        for (int i = 0; i < count; i++)
        {
            if (linux[i] == emulated[i]) continue;
            differ++;
            output.WriteLine($"seed {i}:\n linux    {linux[i]}\n emulated {emulated[i]}");
        }
        Assert.Equal(0, differ);
        AssertCoverage(linux, kind);
    }

    [KvmTheory]
    [InlineData(0)]
    [InlineData(1)]
    public void With_reported_values_only_the_reported_deviations_differ(int kind)
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the emulator preset for a host without guest_memfd is what this compares with");
        Skip.If(!Directory.Exists("/sys/module/kvm_pvm"), "the reported deviations are kvm_pvm's");
        const int Count = 200;
        var linux = Runs(FuzzKernels.Real, Count, kind | 2);
        var emulated = Runs(FuzzKernels.EmulatorLikeThisMachine, Count, kind | 2);
        int differ = 0;
        for (int i = 0; i < Count; i++)
        {
            if (linux[i] == emulated[i]) continue;
            differ++;
            output.WriteLine($"seed {i}:\n linux    {linux[i]}\n emulated {emulated[i]}");
            // Real mode: an IVT limit below 0x3FF (HostDeviations.KvmPvmRealModeIgnoresIvtLimit). LDT: LLDT or LTR of a
            // TI=1 selector (HostDeviations.KvmPvmLdtSelectorInLtrOrLldt).
            if (kind == 0) Assert.DoesNotContain("idt limit 0x3FF:", linux[i], StringComparison.Ordinal);
            else Assert.True(LoadsTiSelectorIntoLdtrOrTr(TinyGuestProgram.Ldt((ulong)i, 0x10_0000, withReported: true)), $"seed {i}");
        }
        Assert.True(differ > 0, "no reported deviation drawn");
    }

    /// <summary>An LLDT or LTR after a MOV of an immediate with TI = 1 (the programs load the selector that way).</summary>
    private static bool LoadsTiSelectorIntoLdtrOrTr(byte[] code)
    {
        var decoder = Iced.Intel.Decoder.Create(64, new Iced.Intel.ByteArrayCodeReader(code));
        ulong last = 0;
        while (decoder.IP < (ulong)code.Length)
        {
            var i = decoder.Decode();
            if (i.Mnemonic == Iced.Intel.Mnemonic.Mov && i.OpCount == 2 && i.GetOpKind(1) is Iced.Intel.OpKind.Immediate16 or Iced.Intel.OpKind.Immediate32) last = i.GetImmediate(1);
            if (i.Mnemonic is Iced.Intel.Mnemonic.Lldt or Iced.Intel.Mnemonic.Ltr && (last & 4) != 0) return true;
            if (i.Mnemonic == Iced.Intel.Mnemonic.Ltr) return true;
        }
        return false;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Ivt_and_ldt_runs_reach_their_events_on_the_emulator(int kind) =>
        AssertCoverage(Runs(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)), 200, kind), kind);

    [Fact]
    public void The_generator_draws_both_kinds_without_reported_values()
    {
        // Three sessions of 400 calls on the emulator without guest_memfd (where the stream is asked): about 1 call in 48.
        var calls = FuzzSessions.Generate(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)), 3)
            .Where(c => c.Op.Kind == OpKind.IvtLdtGuestRun).ToList();
        foreach (var (op, outcome) in calls.Take(4)) output.WriteLine($"{op}: {outcome}");
        Assert.Contains(calls, c => (c.Op.E & 1) == 0 && c.Outcome.Contains("(end)", StringComparison.Ordinal));
        Assert.Contains(calls, c => (c.Op.E & 1) != 0 && c.Outcome.Contains("| ldt ", StringComparison.Ordinal));
        Assert.DoesNotContain(calls, c => (c.Op.E & 2) != 0);
    }

    private void AssertCoverage(List<string> runs, int kind)
    {
        foreach (var r in runs.Take(6)) output.WriteLine(r);
        if (kind == 0)
        {
            // The stubs' OUTs of the fault vectors and of an interrupt injected at a HLT, and runs that end at the last HLT.
            foreach (string vector in new[] { "00", "03", "04", "06", "0C", "0D" })
                Assert.Contains(runs, r => r.Contains("out port=0x510 size=1 count=1 data=" + vector, StringComparison.Ordinal));
            Assert.Contains(runs, r => r.Contains(", irq ", StringComparison.Ordinal));
            Assert.Contains(runs, r => r.Contains(", events irq ", StringComparison.Ordinal));
            Assert.True(runs.Count(r => r.Contains("(end)", StringComparison.Ordinal)) > runs.Count / 2, "runs that reach their last HLT");
        }
        else
        {
            // #GP and #NP from the LDT, LDTR loaded, and runs without a fault.
            Assert.Contains(runs, r => r.Contains(" vector 13 ", StringComparison.Ordinal));
            Assert.Contains(runs, r => r.Contains(" vector 11 ", StringComparison.Ordinal));
            Assert.Contains(runs, r => r.Contains("| ldt 18 base 0x8000 limit 0x2F", StringComparison.Ordinal));
            Assert.Contains(runs, r => !r.Contains(" vector ", StringComparison.Ordinal));
            // A far JMP that reached the LDT's code segment (CS read back into ECX).
            Assert.Contains(runs, r => r.Contains(" rcx=14 ", StringComparison.Ordinal));
        }
    }
}
