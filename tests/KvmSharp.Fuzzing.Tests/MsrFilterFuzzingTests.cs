// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// MSR filters in the differential fuzzer (OpKind.MsrFilter, OpKind.MsrFilterGuestRun; MsrFilterOps.cs,
/// TinyGuestRun.MsrFilter.cs): KVM_X86_SET_MSR_FILTER and KVM_CAP_X86_USER_SPACE_MSR are drawn with each answer, and
/// the guest runs show filtered accesses refused (a userspace exit with reason FILTER, or #GP ending the run).
/// </summary>
public sealed class MsrFilterFuzzingTests(ITestOutputHelper output)
{
    [Fact]
    public void The_generator_draws_msr_filters_with_each_answer()
    {
        var calls = NewUapiOps.Drawn(25, OpKind.MsrFilter);
        foreach (var (op, outcome) in calls.Take(8)) output.WriteLine($"{op}: {outcome}");
        Assert.Contains(calls, c => c.Op.E == MsrFilterOps.Set && c.Outcome == "ok");
        Assert.Contains(calls, c => c.Op.E == MsrFilterOps.Set && c.Outcome == "EINVAL");
        Assert.Contains(calls, c => c.Op.E == MsrFilterOps.Set && c.Outcome == "EFAULT");
        Assert.Contains(calls, c => c.Op.E == MsrFilterOps.BadPointer && c.Outcome == "EFAULT");
        Assert.Contains(calls, c => c.Op.E == MsrFilterOps.UserSpaceMsr && c.Outcome == "ok");
        Assert.Contains(calls, c => c.Op.E == MsrFilterOps.UserSpaceMsr && c.Outcome == "EINVAL");
    }

    [Fact]
    public void A_guest_run_shows_a_filtered_msr_refused()
    {
        // KVM_MSR_EXIT_REASON_FILTER (4) in a userspace exit: the filter denied the access and the mask asked for it.
        var runs = Enumerable.Range(0, 60).Select(seed => Run((ulong)seed)).ToList();
        output.WriteLine(runs[0]);
        Assert.Contains(runs, r => r.Contains("exit reason=4", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("exit reason=2 index=0x12345678", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains(": hlt", StringComparison.Ordinal) || r.Contains("; hlt", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("exit 8", StringComparison.Ordinal)); // #GP without IDT: shutdown
    }

    [KvmFact]
    public void Msr_filter_calls_and_guest_runs_agree_on_both_kernels()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "these calls are drawn on a kernel without guest_memfd");
        var ops = Enumerable.Range(0, 24).Select(i => new FuzzOp(OpKind.MsrFilter, Target: 1, A: (ulong)(i * 7919), E: MsrFilterOps.Set))
            .Concat([new(OpKind.MsrFilter, Target: 1, A: 0, E: MsrFilterOps.BadPointer), new(OpKind.MsrFilter, Target: 2, A: 1, E: MsrFilterOps.Set),
                new(OpKind.MsrFilter, Target: 1, A: 7, E: MsrFilterOps.UserSpaceMsr), new(OpKind.MsrFilter, Target: 1, A: 8, E: MsrFilterOps.UserSpaceMsr),
                new(OpKind.MsrFilter, Target: 1, A: 3, B: 1, E: MsrFilterOps.UserSpaceMsr)])
            .Concat(Enumerable.Range(0, 12).Select(i => new FuzzOp(OpKind.MsrFilterGuestRun, Target: 0, A: (ulong)i)));
        NewUapiOps.AssertAgree(output.WriteLine, ops);
    }

    private static string Run(ulong seed)
    {
        using var session = new KernelSession(NewUapiOps.Emulator());
        session.Apply(new FuzzOp(OpKind.OpenKvm, Result: 0));
        return session.Apply(new FuzzOp(OpKind.MsrFilterGuestRun, Target: 0, A: seed));
    }
}
