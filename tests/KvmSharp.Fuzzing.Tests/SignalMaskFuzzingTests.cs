// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// KVM_SET_SIGNAL_MASK in the differential fuzzer (OpKind.SignalMask, SignalMaskOps.cs): the generator draws it on
/// vCPUs and other handles with every argument kind, and the kernel's answers come out — success, EINVAL for a len
/// other than 8, EFAULT for the kernel-half pointer.
/// </summary>
public sealed class SignalMaskFuzzingTests(ITestOutputHelper output)
{
    [Fact]
    public void The_generator_draws_set_signal_mask_with_each_answer()
    {
        var calls = FuzzSessions.Generate(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)), 12)
            .Where(c => c.Op.Kind == OpKind.SignalMask).ToList();
        foreach (var (op, outcome) in calls.Take(6)) output.WriteLine($"{op}: {outcome}");
        Assert.Contains(calls, c => c.Outcome == "ok");
        Assert.Contains(calls, c => c.Outcome == "EINVAL");
        Assert.Contains(calls, c => c.Outcome == "EFAULT");
    }
}
