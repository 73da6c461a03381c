// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The dirty ring in the differential fuzzer (OpKind.DirtyRingRun, TinyGuestRun.DirtyRing.cs): the runs agree on both
/// kernels, reach what they are for (rings made and refused, entries harvested, KVM_EXIT_DIRTY_RING_FULL, resets that
/// free entries), and are drawn only on a kernel without guest_memfd.
/// </summary>
public class DirtyRingFuzzingTests(ITestOutputHelper output)
{
    private static FuzzOp[] Ops(int seed) =>
    [
        new(OpKind.OpenKvm, Result: 0),
        new(OpKind.DirtyRingRun, Target: 0, A: (ulong)seed),
    ];

    private static List<string> Runs(Func<IKernel> kernel, int count)
    {
        var outcomes = new List<string>();
        for (int seed = 0; seed < count; seed++)
        {
            using var session = new KernelSession(kernel());
            foreach (var op in Ops(seed)) outcomes.Add(session.Apply(op));
        }
        return outcomes.Where((_, i) => i % 2 == 1).ToList();
    }

    [KvmFact]
    public void Dirty_ring_runs_agree_on_both_kernels()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the emulator preset for a host without guest_memfd is what this compares with");
        const int Count = 60;
        var linux = Runs(FuzzKernels.Real, Count);
        var emulated = Runs(FuzzKernels.EmulatorLikeThisMachine, Count);
        for (int i = 0; i < Count; i++)
        {
            if (linux[i] != emulated[i]) output.WriteLine($"seed {i}:\n linux    {linux[i]}\n emulated {emulated[i]}");
        }
        Assert.Equal(linux, emulated);
        AssertCoverage(linux);
    }

    [KvmFact]
    public void Dirty_ring_runs_repeat_on_the_real_kernel()
    {
        // The text of a run is a function of its seed on the real kernel (checked before the entries' order was dropped
        // from it: kvm_pvm pushes the same entries in the same order on every run, duplicates included).
        var first = Runs(FuzzKernels.Real, 20);
        var second = Runs(FuzzKernels.Real, 20);
        Assert.Equal(first, second);
    }

    [Fact]
    public void Dirty_ring_runs_reach_the_ring_on_the_emulator() =>
        AssertCoverage(Runs(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)), 60));

    private void AssertCoverage(List<string> runs)
    {
        foreach (var r in runs.Take(12)) output.WriteLine(r);
        // Sweeps past the soft limit of a 4 KiB ring (KVM_EXIT_DIRTY_RING_FULL on the emulator; its timing is not shown).
        Assert.Contains(runs, r => r.Contains("ring cap 192 0x1000 ok", StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(r, @"end 1[9][3-9] pages|end 20[0-9] pages"));
        Assert.Contains(runs, r => r.Contains("0x1000 ok", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("0x800 EINVAL", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("E2BIG", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("get log ENXIO", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("ring mmap private EINVAL", StringComparison.Ordinal) || r.Contains("ring mmap exec EINVAL", StringComparison.Ordinal));
        Assert.True(runs.Count(r => r.Contains("reset all marked", StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(r, "end [1-9][0-9]* pages")) >= 10, "resets that free entries");
        Assert.DoesNotContain(runs, r => r.Contains(" of ", StringComparison.Ordinal) && r.Contains("marked", StringComparison.Ordinal) && !r.Contains("reset all marked", StringComparison.Ordinal));
    }

    [Fact]
    public void The_generator_draws_dirty_ring_runs_on_a_kernel_without_guest_memfd_only()
    {
        var calls = FuzzSessions.Generate(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)), sessions: 10);
        Assert.InRange(calls.Count(c => c.Op.Kind == OpKind.DirtyRingRun), 10, 400);
        for (int seed = 0; seed < 20; seed++)
        {
            var generator = new OpGenerator(DifferentialFuzzer.SessionSeed(seed, 0));
            for (int i = 0; i < 400; i++)
            {
                var op = generator.Next();
                Assert.NotEqual(OpKind.DirtyRingRun, op.Kind);
                generator.Observe(op, op.Kind is OpKind.OpenKvm or OpKind.CreateVm or OpKind.CreateGmem or OpKind.CreateVcpu ? "ok fd" : "ok");
            }
        }
    }
}
