// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The CoCo launch commands under raw fuzzing: KVM_MEMORY_ENCRYPT_OP with SEV, SNP and TDX sub-commands (their
/// structs in the sandbox, sev_fd often the session's /dev/sev) must succeed now and then — so the fuzzer reaches the
/// state machine behind the argument checks — and never throw or break an invariant.
/// </summary>
[Collection(nameof(RawIoctlFuzzerTests))]
public class LaunchRawFuzzTests
{
    [Fact]
    public void The_launch_commands_get_past_their_checks()
    {
        var report = new RawIoctlFuzzer().Run(100_000, 11);
        Assert.True(report.Clean, $"{report.Exceptions} exceptions, {report.InvariantViolations} invariant violations, {report.Leaks} leaks");
        foreach (string name in new[] { "ioctl KVM_MEMORY_ENCRYPT_OP", "open" })
        {
            Assert.True(report.Outcomes.TryGetValue(name, out var outcome), $"{name} was never called");
            Assert.True(outcome.Ok > 0, $"{name} never succeeded ({outcome.Failed} failures)");
        }
    }
}
