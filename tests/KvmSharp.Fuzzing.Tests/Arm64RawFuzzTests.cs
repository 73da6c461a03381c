// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The raw fuzzer reaches the arm64 vCPU: on sessions of the arm64 configuration KVM_ARM_VCPU_INIT succeeds, and
/// KVM_GET/SET_ONE_REG both reach registers (core and system) and refuse ids, with no exception, no broken invariant and
/// every pointer kept in the fuzzer's sandbox. Sessions are driven directly so the count does not depend on how often
/// RawIoctlFuzzer's rotation picks arm64.
/// </summary>
[Collection(nameof(RawIoctlFuzzerTests))]
public class Arm64RawFuzzTests
{
    [Fact]
    public void Arm64_vcpu_requests_succeed_sometimes_and_break_nothing()
    {
        using var sandbox = UserSandbox.Reserve();
        using var watchdog = new RunWatchdog(TimeSpan.FromMilliseconds(2));
        var outcomes = new Dictionary<string, (long Ok, long Failed)>();
        var config = RawIoctlFuzzer.Configs.Single(c => c.Name == "arm64").Create;
        for (int session = 0; session < 150; session++)
        {
            using var kernel = new EmulatedKernel(config());
            var s = new RawFuzzSession(kernel, new Random(session), sandbox, watchdog) { Outcomes = outcomes };
            for (int i = 0; i < 300; i++)
            {
                string op = s.Step();
                var broken = EmulatorInvariants.Check(kernel);
                Assert.True(broken.Count == 0, $"session {session}, {op}: {string.Join("; ", broken)}");
            }
            Assert.Null(s.Teardown());
        }
        foreach (string request in new[] { "ioctl KVM_ARM_VCPU_INIT", "ioctl KVM_GET_ONE_REG", "ioctl KVM_SET_ONE_REG", "ioctl KVM_GET_REG_LIST" })
        {
            Assert.True(outcomes.TryGetValue(request, out var calls), $"{request} was never called");
            Assert.True(calls.Ok > 0, $"{request} never succeeded ({calls.Failed} failures)");
            Assert.True(calls.Failed > 0, $"{request} never failed");
        }
    }
}
