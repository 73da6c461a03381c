// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// Guest time in the differential fuzzer (OpGenerator.Clock.cs, ClockOps): KVM_SET_CLOCK accepted and refused and
/// read back within its bound, both flag states, and TSC rates accepted, refused and read back — on the real kernel
/// and on the emulator.
/// </summary>
public class ClockFuzzingTests(ITestOutputHelper output)
{
    [KvmFact]
    public void The_clock_calls_get_past_the_argument_checks_on_the_real_kernel()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the clock calls are drawn on a kernel without guest_memfd");
        AssertClockCallsGetThrough(FuzzKernels.Real);
    }

    [Fact]
    public void The_clock_calls_get_past_the_argument_checks() =>
        AssertClockCallsGetThrough(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)));

    [Fact]
    public void Host_writes_of_the_TSC_are_zero_or_far_from_every_TSC_a_session_reaches()
    {
        // kvm_synchronize_tsc's one-second window is measured in the kernel's TSC cycles (2.4 GHz here, 1 GHz in the
        // emulator): a drawn value near a session's TSCs would join a generation on one kernel and not the other.
        var tsc = Enumerable.Range(0, 4000).SelectMany(seed => X86StateOps.MsrEntries((ulong)seed, 4, withReported: false))
            .Where(e => e.index == X86StateOps.Tsc).Select(e => e.data).ToList();
        Assert.Contains(0UL, tsc);
        Assert.Contains(tsc, v => v != 0);
        Assert.All(tsc, v => Assert.True(v == 0 || v >= 1UL << 62, $"IA32_TSC write 0x{v:X}"));
    }

    private void AssertClockCallsGetThrough(Func<IKernel> kernel)
    {
        var calls = FuzzSessions.Generate(kernel, sessions: 25);
        var clock = calls.Where(c => c.Op.Kind == OpKind.Clock).Select(c => c.Outcome).ToList();
        var rates = calls.Where(c => c.Op.Kind == OpKind.TscKhz).Select(c => c.Outcome).ToList();
        foreach (var (name, list) in new[] { ("clock", clock), ("tsc khz", rates) })
            output.WriteLine($"{name} {list.Count}: " + string.Join(", ", list.GroupBy(o => o).OrderByDescending(g => g.Count()).Take(12).Select(g => $"{g.Key} x{g.Count()}")));
        Assert.Contains("set ok, get ok flags=0xE, reads the value set", clock);
        Assert.Contains("set ok, get ok flags=0x0, reads the value set", clock);
        Assert.Contains(clock, o => o.StartsWith("set EINVAL, get ok", StringComparison.Ordinal));
        Assert.Contains("get EFAULT, set EFAULT", clock);
        Assert.DoesNotContain(clock, o => o.Contains("off the value set", StringComparison.Ordinal) || o.Contains("pads", StringComparison.Ordinal));
        Assert.Contains("set ok, get reads the rate drawn", rates);
        Assert.Contains("set EINVAL, get reads the rate drawn", rates);
        Assert.Contains(rates, o => o.StartsWith("get reads the host's rate", StringComparison.Ordinal) || o == "get reads the rate drawn");
        Assert.Contains(rates, o => o.EndsWith("get EPERM", StringComparison.Ordinal));
    }
}
