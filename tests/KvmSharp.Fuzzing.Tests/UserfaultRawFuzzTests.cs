// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The raw fuzzer reaches KVM userfault ("[PATCH v3 00/15]", on its x86_64-gmem-write-ndm configuration): slots with
/// KVM_MEM_USERFAULT are accepted there and refused elsewhere (and for bad bitmaps), and no invariant breaks.
/// </summary>
[Collection(nameof(RawIoctlFuzzerTests))]
public class UserfaultRawFuzzTests
{
    [Fact]
    public void Userfault_slots_are_accepted_sometimes_refused_sometimes_and_break_nothing()
    {
        var report = new RawIoctlFuzzer().Run(300_000, 5);
        Assert.True(report.Clean, $"{report.Exceptions} exceptions, {report.InvariantViolations} invariant violations, {report.Leaks} leaks: " +
            string.Join("\n", report.Findings.Select(f => $"{f.Kind} at {f.Input}: {f.Op}: {f.Detail}")));
        Assert.True(report.Outcomes.TryGetValue(RawFuzzSession.UserfaultSlotOutcome, out var slots), "no KVM_SET_USER_MEMORY_REGION2 carried KVM_MEM_USERFAULT");
        Assert.True(slots.Ok > 0, $"KVM_MEM_USERFAULT was never accepted ({slots.Failed} refusals)");
        Assert.True(slots.Failed > 0, "KVM_MEM_USERFAULT was never refused");
    }
}
