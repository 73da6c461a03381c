// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The raw fuzzer reaches guest_memfd HugeTLB (its x86_64-in-place-v8-hugetlb-* configurations): HUGETLB creations are
/// accepted sometimes and refused sometimes (hstate, alignment, INIT_SHARED, pool), and no invariant (pool accounting,
/// whole iff all private) breaks.
/// </summary>
[Collection(nameof(RawIoctlFuzzerTests))]
public class HugetlbRawFuzzTests
{
    [Fact]
    public void Hugetlb_guest_memfds_are_created_sometimes_refused_sometimes_and_break_nothing()
    {
        var report = new RawIoctlFuzzer().Run(200_000, 7);
        Assert.True(report.Clean, $"{report.Exceptions} exceptions, {report.InvariantViolations} invariant violations, {report.Leaks} leaks: " +
            string.Join("\n", report.Findings.Select(f => $"{f.Kind} at {f.Input} ({f.Config}): {f.Op}: {f.Detail}")));
        Assert.True(report.Outcomes.TryGetValue(RawFuzzSession.HugetlbGmemOutcome, out var created), "no KVM_CREATE_GUEST_MEMFD carried HUGETLB");
        Assert.True(created.Ok > 0, $"a HugeTLB guest_memfd was never created ({created.Failed} refusals)");
        Assert.True(created.Failed > 0, "a HugeTLB guest_memfd was never refused");
    }
}
