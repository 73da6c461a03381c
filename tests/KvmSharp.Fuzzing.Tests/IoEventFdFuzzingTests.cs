// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// KVM_IOEVENTFD, KVM_IRQFD and eventfds in the differential fuzzer (OpGenerator.IoEventFd.cs, IoEventFdOps,
/// KernelSession.IoEventFd.cs): every call both accepted and refused, on the real kernel and on the emulator; drawn
/// only on a kernel without guest_memfd, like the other side streams.
/// </summary>
public class IoEventFdFuzzingTests(ITestOutputHelper output)
{
    [KvmFact]
    public void The_ioeventfd_calls_get_past_the_argument_checks_on_the_real_kernel()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the ioeventfd calls are drawn on a kernel without guest_memfd");
        AssertCallsGetThrough(FuzzKernels.Real);
    }

    [Fact]
    public void The_ioeventfd_calls_get_past_the_argument_checks() =>
        AssertCallsGetThrough(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)));

    private void AssertCallsGetThrough(Func<IKernel> kernel)
    {
        var calls = FuzzSessions.Generate(kernel, sessions: 25).Where(c => c.Op.Kind == OpKind.IoEventFd).ToList();
        foreach (var g in calls.GroupBy(c => c.Op.E).OrderBy(g => g.Key))
            output.WriteLine($"E={g.Key} {g.Count(),4}: " + string.Join(", ", g.GroupBy(c => c.Outcome).OrderByDescending(o => o.Count()).Take(6).Select(o => $"{o.Key} x{o.Count()}")));
        string[] Outcomes(int e) => [.. calls.Where(c => c.Op.E == e).Select(c => c.Outcome)];
        // KVM_IOEVENTFD: assigned or deassigned, refused (EINVAL), a collision or nothing to deassign (EEXIST / ENOENT).
        Assert.Contains("ok", Outcomes(IoEventFdOps.IoEventFd));
        Assert.Contains("EINVAL", Outcomes(IoEventFdOps.IoEventFd));
        Assert.Contains(Outcomes(IoEventFdOps.IoEventFd), o => o is "EEXIST" or "ENOENT");
        Assert.Contains("EBADF", Outcomes(IoEventFdOps.IoEventFd));
        // KVM_IRQFD: a deassign succeeds, an assign is refused without an irqchip.
        Assert.Contains("ok", Outcomes(IoEventFdOps.IrqFd));
        Assert.Contains("EINVAL", Outcomes(IoEventFdOps.IrqFd));
        // The counter: read after a write, EAGAIN when empty.
        Assert.Contains(Outcomes(IoEventFdOps.Read), o => o.StartsWith("ok ", StringComparison.Ordinal) && o != "ok 0");
        Assert.Contains("EAGAIN", Outcomes(IoEventFdOps.Read));
        Assert.Contains("value 8", Outcomes(IoEventFdOps.Write));
    }
}
