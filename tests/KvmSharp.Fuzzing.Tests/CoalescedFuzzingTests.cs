// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// Coalesced MMIO/PIO in the differential fuzzer (OpKind.Coalesced, OpKind.CoalescedGuestRun; CoalescedOps.cs,
/// TinyGuestRun.Coalesced.cs): the generator draws every call kind, and guest writes inside a zone land in the ring
/// (MMIO and PIO entries, a full ring making writes exit) instead of exiting.
/// </summary>
public sealed class CoalescedFuzzingTests(ITestOutputHelper output)
{
    [Fact]
    public void The_generator_draws_each_coalesced_call()
    {
        var calls = NewUapiOps.Drawn(25, OpKind.Coalesced, OpKind.CoalescedGuestRun);
        foreach (var (op, outcome) in calls.Take(8)) output.WriteLine($"{op}: {outcome}");
        Assert.Contains(calls, c => c.Op.Kind == OpKind.Coalesced && c.Op.E == CoalescedOps.Register && c.Outcome == "ok");
        Assert.Contains(calls, c => c.Op.Kind == OpKind.Coalesced && c.Op.E == CoalescedOps.Register && c.Outcome == "EINVAL");
        Assert.Contains(calls, c => c.Op.Kind == OpKind.Coalesced && c.Op.E == CoalescedOps.Unregister && c.Outcome == "ok");
        Assert.Contains(calls, c => c.Op.Kind == OpKind.Coalesced && c.Op.E == CoalescedOps.BadPointer && c.Outcome == "EFAULT");
        Assert.Contains(calls, c => c.Op.Kind == OpKind.Coalesced && c.Op.E == CoalescedOps.Ring && c.Outcome.StartsWith("first=", StringComparison.Ordinal));
        Assert.Contains(calls, c => c.Op.Kind == OpKind.CoalescedGuestRun);
    }

    [Fact]
    public void Guest_writes_inside_a_zone_land_in_the_ring()
    {
        var runs = Enumerable.Range(0, 40).Select(seed => Run((ulong)seed)).ToList();
        output.WriteLine(runs.First(r => r.Contains("/0=", StringComparison.Ordinal)));
        Assert.Contains(runs, r => r.Contains("/0=", StringComparison.Ordinal));          // an MMIO entry
        Assert.Contains(runs, r => r.Contains("/1=", StringComparison.Ordinal));          // a PIO entry
        Assert.Contains(runs, r => r.Contains("(ring 0..169)", StringComparison.Ordinal)); // full: the next write exits
        Assert.All(runs, r => Assert.DoesNotContain("exit 17", r, StringComparison.Ordinal));
    }

    [KvmFact]
    public void Coalesced_calls_and_guest_runs_agree_on_both_kernels()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "these calls are drawn on a kernel without guest_memfd");
        var rng = new Random(5);
        var ops = Enumerable.Range(0, 30).Select(i =>
            {
                var z = CoalescedOps.Zone(rng);
                return new FuzzOp(OpKind.Coalesced, Target: 1, A: z.Addr, B: z.Size, C: z.Pio, E: i % 3 == 2 ? CoalescedOps.Unregister : CoalescedOps.Register);
            })
            .Concat([new(OpKind.Coalesced, Target: 1, A: 3, E: CoalescedOps.BadPointer), new(OpKind.Coalesced, Target: 2, A: 1, D: 0x0000_0005_0000_0007, E: CoalescedOps.Ring),
                new(OpKind.Coalesced, Target: 3, E: CoalescedOps.Ring)])
            .Concat(Enumerable.Range(0, 12).Select(i => new FuzzOp(OpKind.CoalescedGuestRun, Target: 0, A: (ulong)i)));
        NewUapiOps.AssertAgree(output.WriteLine, ops);
    }

    private static string Run(ulong seed)
    {
        using var session = new KernelSession(NewUapiOps.Emulator());
        session.Apply(new FuzzOp(OpKind.OpenKvm, Result: 0));
        return session.Apply(new FuzzOp(OpKind.CoalescedGuestRun, Target: 0, A: seed));
    }
}
