// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Kernel.Tracing;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// <see cref="Vm.GetClock"/>, <see cref="Vm.SetClock(KvmClockReading, bool)"/>, <see cref="Vcpu.TscKhz"/> and
/// <see cref="Vcpu.SetTscKhz"/> on every kernel: a snapshot's save and restore of guest time. Every expectation was
/// probed on this host (Linux 6.18 kvm_pvm, clocksource tsc, no TSC scaling).
/// </summary>
public class ClockTests : KernelTest
{
    private const ulong Second = 1_000_000_000;

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_saved_clock_restores_into_another_vm_without_the_time_in_between(string kernel)
    {
        using var kvm = Open(kernel);
        using var source = kvm.CreateVm();
        using var sourceVcpu = source.CreateVcpu();
        source.SetClock(42 * Second);
        var saved = source.GetClock();
        Assert.True(saved.IsTscStable);
        Assert.Equal(KvmClockFlags.TscStable | KvmClockFlags.Realtime | KvmClockFlags.HostTsc, saved.Flags);
        Assert.NotNull(saved.HostTsc);
        Assert.InRange(saved.Realtime!.Value, DateTimeOffset.UtcNow.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Thread.Sleep(100);

        using var target = kvm.CreateVm();
        using var targetVcpu = target.CreateVcpu();
        var timer = Stopwatch.StartNew();
        target.SetClock(saved);
        ulong restored = target.GetClock().Nanoseconds;
        Assert.InRange(restored, saved.Nanoseconds, saved.Nanoseconds + (ulong)timer.Elapsed.Ticks * 100 + 50_000_000);

        // Passing the realtime back (live migration) adds the 100 ms of wall time since the save.
        target.SetClock(saved, advanceByElapsedRealtime: true);
        Assert.InRange(target.GetClock().Nanoseconds, saved.Nanoseconds + 100 * 1_000_000UL, saved.Nanoseconds + 5 * Second);
        // The source VM's clock ran on meanwhile.
        Assert.True(source.GetClock().Nanoseconds >= saved.Nanoseconds + 100 * 1_000_000UL);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_vm_without_vcpus_reads_its_clock_without_the_host_times(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        Assert.Equal(KvmClockFlags.TscStable | KvmClockFlags.Realtime | KvmClockFlags.HostTsc, vm.SupportedClockFlags);
        var reading = vm.GetClock();
        Assert.Equal((KvmClockFlags.None, (ulong?)null, (ulong?)null, (DateTimeOffset?)null), (reading.Flags, reading.RealtimeNanoseconds, reading.HostTsc, reading.Realtime));
        Assert.False(reading.IsTscStable);
        Assert.Throws<ArgumentException>(() => vm.SetClock(reading, advanceByElapsedRealtime: true));
        var ex = Assert.Throws<KvmException>(() => vm.SetClock(new kvm_clock_data { clock = 1, flags = 1 }));
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Contains("KVM_SET_CLOCK", ex.Message, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_tsc_rate_round_trips_and_a_lower_one_is_refused_without_scaling(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        Assert.False(vm.SupportsTscScaling);
        uint host = vm.DefaultTscKhz;
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(host, vcpu.TscKhz);
        vcpu.SetTscKhz(host + 1);
        Assert.Equal(host + 1, vcpu.TscKhz);
        vcpu.SetTscKhz(2 * host);
        Assert.Equal(2 * host, vcpu.TscKhz);
        var ex = Assert.Throws<KvmException>(() => vcpu.SetTscKhz(host / 2));
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal(host / 2, vcpu.TscKhz); // stored anyway
        vcpu.SetTscKhz(0x8000_0000);
        Assert.Equal(0x8000_0000u, vcpu.TscKhz); // through the int return value and back
        vcpu.SetTscKhz(uint.MaxValue);
        Assert.Equal(Errno.EPERM, Assert.Throws<KvmException>(() => vcpu.TscKhz).Errno);
        vcpu.SetTscKhz(0);
        Assert.Equal(host, vcpu.TscKhz);
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => vm.SetDefaultTscKhz(host)).Errno);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void The_tracer_decodes_the_clock_the_tsc_rate_and_the_tsc_offset_attribute(string kernel)
    {
        var lines = new List<string>();
        var inner = Kernels.Create(kernel);
        try
        {
            using (var tracing = new TracingKernel(inner, call => lines.Add(call.ToString()), comparable: true))
            using (var kvm = Kvm.Open(tracing))
            using (var vm = kvm.CreateVm())
            {
                using var vcpu = vm.CreateVcpu();
                vm.SetClock(new kvm_clock_data { clock = 5, flags = KvmConstants.KVM_CLOCK_REALTIME, realtime = 1 });
                _ = vm.GetClock();
                vcpu.SetTscKhz(0);
                _ = kvm.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_TSC_KHZ, 0x1_0000_0000UL + 7);
                _ = vcpu.TscKhz;
                _ = vcpu.GetTscOffset();
            }
        }
        finally
        {
            (inner as IDisposable)?.Dispose();
        }
        Assert.Contains("ioctl(vm#1, KVM_SET_CLOCK, {clock=5, flags=KVM_CLOCK_REALTIME, realtime=<ns>}) = 0", lines);
        Assert.Contains("ioctl(vm#1, KVM_GET_CLOCK, <48 bytes>) = 0 {clock=<ns>, flags=KVM_CLOCK_TSC_STABLE|KVM_CLOCK_REALTIME|KVM_CLOCK_HOST_TSC, realtime=<ns>, host_tsc=<tsc>}", lines);
        Assert.Contains("ioctl(vcpu#1, KVM_SET_TSC_KHZ, 0 (host rate)) = 0", lines);
        Assert.Contains("ioctl(vcpu#1, KVM_SET_TSC_KHZ, 4294967303 kHz (u32: 7)) = -1 EINVAL (Invalid argument)", lines);
        Assert.Contains(lines, l => l.StartsWith("ioctl(vcpu#1, KVM_GET_TSC_KHZ, 0) = ", StringComparison.Ordinal) && l.EndsWith(" kHz", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("ioctl(vcpu#1, KVM_GET_DEVICE_ATTR, {flags=0x0, group=KVM_VCPU_TSC_CTRL, attr=KVM_VCPU_TSC_OFFSET, addr=<addr>}) = 0 {*addr=<value>}", StringComparison.Ordinal));
    }
}
