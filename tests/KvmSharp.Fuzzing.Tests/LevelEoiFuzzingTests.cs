// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// Guests that take an IOAPIC interrupt and write the LAPIC EOI in the differential fuzzer (OpKind.LevelEoiGuestRun,
/// TinyGuestRun.LevelEoi.cs): the runs agree on both kernels and reach what they are for (a level-triggered vector
/// delivered and EOIed with remote IRR set before and clear after, masked and undeliverable entries).
/// </summary>
public class LevelEoiFuzzingTests(ITestOutputHelper output)
{
    private static List<string> Runs(Func<IKernel> kernel, int count)
    {
        var outcomes = new List<string>();
        for (int seed = 0; seed < count; seed++)
        {
            using var session = new KernelSession(kernel());
            session.Apply(new FuzzOp(OpKind.OpenKvm, Result: 0));
            outcomes.Add(session.Apply(new FuzzOp(OpKind.LevelEoiGuestRun, Target: 0, A: (ulong)seed)));
        }
        return outcomes;
    }

    [KvmFact]
    public void Level_eoi_runs_agree_on_both_kernels()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the emulator preset for a host without guest_memfd is what this compares with");
        const int Count = 150; // a third of the pins drive only the IOAPIC: the level-EOI path needs enough of them
        var linux = Runs(FuzzKernels.Real, Count);
        var emulated = Runs(FuzzKernels.EmulatorLikeThisMachine, Count);
        for (int i = 0; i < Count; i++)
        {
            if (linux[i] != emulated[i]) output.WriteLine($"seed {i}:\n linux    {linux[i]}\n emulated {emulated[i]}");
        }
        Assert.Equal(linux, emulated);
        AssertCoverage(linux);
    }

    [Fact]
    public void Level_eoi_runs_reach_the_eoi_on_the_emulator() =>
        AssertCoverage(Runs(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)), 150));

    private void AssertCoverage(List<string> runs)
    {
        foreach (var r in runs.Take(8)) output.WriteLine(r);
        // A level-triggered delivery whose EOI reached the guest's handler (port 0x99), and loops nobody interrupted.
        Assert.True(runs.Count(r => r.Contains("out port=0x99", StringComparison.Ordinal)) >= 15, "level EOIs");
        Assert.Contains(runs, r => r.Contains("out port=0x98", StringComparison.Ordinal));
        // Another vector (port 0x9A) only from a pin below 16, which also drives the never-initialised 8259 (its ExtINT
        // through LVT0); an IOAPIC-only pin takes no other vector and no exception.
        Assert.All(runs.Where(r => r.Contains("out port=0x9A", StringComparison.Ordinal)), r =>
            Assert.True(int.Parse(System.Text.RegularExpressions.Regex.Match(r, @"pin (\d+) ").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < 16, r));
        // Remote IRR (bit 14) set after a level pulse, for an entry of vector | level (0xC0xx with the bit).
        Assert.Contains(runs, r => System.Text.RegularExpressions.Regex.IsMatch(r, @"\]=0xC[0-9A-F]{3}\b"));
    }
}
