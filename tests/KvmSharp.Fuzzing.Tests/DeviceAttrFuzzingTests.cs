// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// KVM_HAS/GET/SET_DEVICE_ATTR in the differential fuzzer (OpGenerator.DeviceAttr.cs): the op reaches every answer the
/// kernels give — the attribute there, ENXIO, EFAULT for a bad value pointer, ENOTTY on a VM, EINVAL for a SET on
/// /dev/kvm, EBADF — and a /dev/kvm value, on the real kernel and on the emulator.
/// </summary>
public class DeviceAttrFuzzingTests(ITestOutputHelper output)
{
    [KvmFact]
    public void The_device_attribute_calls_reach_every_answer_on_the_real_kernel()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the device-attribute calls are drawn on a kernel without guest_memfd");
        AssertCallsReachEveryAnswer(FuzzKernels.Real);
    }

    [Fact]
    public void The_device_attribute_calls_reach_every_answer() =>
        AssertCallsReachEveryAnswer(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)));

    private void AssertCallsReachEveryAnswer(Func<IKernel> kernel)
    {
        var calls = FuzzSessions.Generate(kernel, sessions: 25).Where(c => c.Op.Kind == OpKind.DeviceAttr).Select(c => c.Outcome).ToList();
        output.WriteLine($"{calls.Count}: " + string.Join(", ", calls.GroupBy(o => o).OrderByDescending(g => g.Count()).Take(12).Select(g => $"{g.Key} x{g.Count()}")));
        foreach (string answer in new[] { "ok", "ENXIO", "EFAULT", "ENOTTY", "EINVAL", "EBADF" })
            Assert.Contains(answer, calls);
        Assert.Contains(calls, o => o.StartsWith("ok value=0x", StringComparison.Ordinal));
    }
}
