// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The raw fuzzer reaches the arm64 vCPU: KVM_ARM_VCPU_INIT succeeds, and KVM_GET_ONE_REG both reads registers (core and
/// system) and refuses ids, with nothing breaking and every pointer kept in the fuzzer's sandbox.
/// </summary>
[Collection(nameof(RawIoctlFuzzerTests))]
public class Arm64RawFuzzTests
{
    [Fact]
    public void Arm64_vcpu_requests_succeed_sometimes_and_break_nothing()
    {
        var report = new RawIoctlFuzzer().Run(300_000, 17);
        Assert.True(report.Clean, $"{report.Exceptions} exceptions, {report.InvariantViolations} invariant violations, {report.Leaks} leaks: " +
            string.Join("\n", report.Findings.Select(f => $"{f.Kind} at {f.Input}: {f.Op}: {f.Detail}")));
        foreach (string request in new[] { "ioctl KVM_ARM_VCPU_INIT", "ioctl KVM_GET_ONE_REG", "ioctl KVM_SET_ONE_REG" })
        {
            Assert.True(report.Outcomes.TryGetValue(request, out var calls), $"{request} was never called");
            Assert.True(calls.Ok > 0, $"{request} never succeeded ({calls.Failed} failures)");
            Assert.True(calls.Failed > 0, $"{request} never failed");
        }
    }
}
