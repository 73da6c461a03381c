// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing.Tests;

/// <summary>The raw fuzzer reaches the dirty ring: it enables rings, resets them and maps around them, and nothing breaks.</summary>
[Collection(nameof(RawIoctlFuzzerTests))]
public class DirtyRingRawFuzzTests
{
    [Fact]
    public void The_ring_requests_succeed_sometimes_and_break_nothing()
    {
        // A million inputs: successes need a VM whose ring KVM_ENABLE_CAP succeeded, and the requests added in session 11 made
        // them rare (a clean-clone CI run at 100 000 had none; 500 000 gave 4-10 in three runs; runs are not deterministic).
        var report = new RawIoctlFuzzer().Run(1_000_000, 11);
        Assert.True(report.Clean, $"{report.Exceptions} exceptions, {report.InvariantViolations} invariant violations, {report.Leaks} leaks: " +
            string.Join("\n", report.Findings.Select(f => $"{f.Kind} at {f.Input}: {f.Op}: {f.Detail}")));
        // KVM_RESET_DIRTY_RINGS succeeds only on a VM whose KVM_ENABLE_CAP of a ring succeeded.
        Assert.True(report.Outcomes.TryGetValue("ioctl KVM_RESET_DIRTY_RINGS", out var reset), "KVM_RESET_DIRTY_RINGS was never called");
        Assert.True(reset.Ok > 0, $"KVM_RESET_DIRTY_RINGS never succeeded ({reset.Failed} failures)");
        Assert.True(reset.Failed > 0, "KVM_RESET_DIRTY_RINGS never failed (a VM without a ring is EINVAL)");
    }
}
