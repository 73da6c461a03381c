// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The guest time a VMM saves and restores: the VM's kvmclock (KVM_GET_CLOCK / KVM_SET_CLOCK, arch/x86/kvm/x86.c
/// kvm_vm_ioctl_get_clock / kvm_vm_ioctl_set_clock / get_kvmclock / pvclock_update_vm_gtod_copy) and the TSC rate
/// (KVM_GET_TSC_KHZ / KVM_SET_TSC_KHZ on a vCPU and on the VM: kvm_arch_vcpu_ioctl, kvm_arch_vm_ioctl, kvm_set_tsc_khz,
/// set_tsc_khz). Time passes while a case runs, so clock values are checked against bounds measured around the
/// calls; flags, errnos and TSC rates exactly.
/// </summary>
public static class ClockRules
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const ulong Second = 1_000_000_000;
    /// <summary>Slack for scheduling between the test's clock reads and the kernel's (the bounds are one-sided otherwise).</summary>
    private const ulong Slack = 250_000_000;

    [ConformanceCase(X86 + " kvm_vm_ioctl_check_extension: KVM_CAP_ADJUST_CLOCK = KVM_CLOCK_VALID_FLAGS, KVM_CAP_GET_TSC_KHZ = 1, KVM_CAP_TSC_CONTROL = kvm_caps.has_tsc_control (0: no TSC scaling on this host), on /dev/kvm and a VM")]
    public static void clock_caps(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (Func<int, long> check in new Func<int, long>[] { kvm.CheckExtension, vm.CheckExtension })
            Assert.Equal((14L, 1L, 0L), (check(KvmCaps.KVM_CAP_ADJUST_CLOCK), check(KvmCaps.KVM_CAP_GET_TSC_KHZ), check(KvmCaps.KVM_CAP_TSC_CONTROL)));
        Assert.Equal(KvmClockFlags.TscStable | KvmClockFlags.Realtime | KvmClockFlags.HostTsc, vm.SupportedClockFlags);
        Assert.False(vm.SupportsTscScaling);
    }

    [ConformanceCase(X86 + " kvm_arch_init_vm (kvmclock_offset = -get_kvmclock_base_ns()), kvm_vm_ioctl_get_clock (data = { 0 }), __get_kvmclock without the master clock: a new VM's clock starts near 0 and runs; flags 0 and zeros beside the clock until a vCPU entered the guest or KVM_SET_CLOCK")]
    public static void get_clock_of_a_new_vm(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var sinceCreate = Stopwatch.StartNew();
        using var vm = kvm.CreateVm();
        var first = RawGet(ctx, vm);
        ulong bound = (ulong)sinceCreate.Elapsed.Ticks * 100 + Slack;
        Assert.True(first.clock < bound, $"a new VM's clock reads {first.clock} ns, created less than {bound} ns ago");
        AssertOnlyClock(first);

        ulong previous = first.clock;
        for (int i = 0; i < 200; i++)
        {
            var reading = vm.GetClock();
            Assert.True(reading.Nanoseconds >= previous, $"read {reading.Nanoseconds} after {previous}");
            previous = reading.Nanoseconds;
        }
        Thread.Sleep(20);
        Assert.InRange(vm.GetClock().Nanoseconds - previous, 20_000_000UL, 20_000_000 + Slack);

        // One vCPU: kvm_track_tsc_matching asks for a master clock update, but only KVM_RUN or KVM_SET_CLOCK makes it.
        using var vcpu = vm.CreateVcpu();
        AssertOnlyClock(RawGet(ctx, vm));
    }

    [ConformanceCase(X86 + " kvm_vm_ioctl_set_clock: kvmclock_offset = data.clock - now; the clock reads the value set plus the time since, any u64 (it wraps); pvclock_update_vm_gtod_copy decides the master clock: with a vCPU flags TSC_STABLE|REALTIME|HOST_TSC and the host's realtime and TSC, without one flags 0")]
    public static void set_clock_then_get(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.SetClock(3 * Second);
        var noVcpu = RawGet(ctx, vm);
        AssertOnlyClock(noVcpu);
        Assert.InRange(noVcpu.clock, 3 * Second, 3 * Second + Slack);

        using var vcpu = vm.CreateVcpu();
        foreach (ulong value in new ulong[] { 7 * Second, 0, 1UL << 62, ulong.MaxValue - 5 * Second })
        {
            var timer = Stopwatch.StartNew();
            vm.SetClock(value);
            var reading = vm.GetClock();
            ulong elapsed = (ulong)timer.Elapsed.Ticks * 100;
            Assert.InRange(reading.Nanoseconds - value, 0UL, elapsed + Slack);
            Assert.Equal(KvmClockFlags.TscStable | KvmClockFlags.Realtime | KvmClockFlags.HostTsc, reading.Flags);
            Assert.InRange(reading.Realtime!.Value, DateTimeOffset.UtcNow.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        }
        // u64 arithmetic: the largest value set wraps to the time since.
        vm.SetClock(ulong.MaxValue);
        Assert.InRange(vm.GetClock().Nanoseconds, 0UL, Slack);

        // host_tsc is the host's TSC at the reading: it advances with the clock at the host's TSC rate, which is the rate a
        // new vCPU reports (no scaling).
        vm.SetClock(Second);
        var a = vm.GetClock();
        Thread.Sleep(30);
        var b = vm.GetClock();
        double tscNs = (double)(b.HostTsc!.Value - a.HostTsc!.Value) * 1_000_000 / vcpu.TscKhz;
        double clockNs = b.Nanoseconds - a.Nanoseconds;
        Assert.True(clockNs >= 30_000_000 && Math.Abs(tscNs - clockNs) < clockNs / 100 + 100_000,
            $"the clock advanced {clockNs} ns while host_tsc advanced {tscNs} ns worth of TSC");
    }

    [ConformanceCase(X86 + " kvm_vm_ioctl_set_clock: \"if (data.flags & ~KVM_CLOCK_VALID_FLAGS) return -EINVAL\" (the clock is unchanged); the flags KVM_GET_CLOCK reports are accepted; pad0, pad[] and host_tsc are not looked at; EFAULT for a bad pointer")]
    public static void set_clock_flags_and_pads(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        ulong now = RealtimeNs();
        foreach (uint flags in new uint[] { 0, 2, 4, 8, 6, 10, 12, 14 })
            vm.SetClock(new kvm_clock_data { clock = 5 * Second, flags = flags, realtime = now + 10 * Second });
        Assert.InRange(vm.GetClock().Nanoseconds, 5 * Second, 5 * Second + Slack);
        foreach (uint flags in new uint[] { 1, 3, 15, 0x10, 0x20, 0x1e, 0x8000_0000, 0xffff_ffff })
        {
            var data = new kvm_clock_data { clock = 1UL << 60, flags = flags, realtime = now };
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_CLOCK, Raw(ref data)), $"flags 0x{flags:X}");
        }
        Assert.InRange(vm.GetClock().Nanoseconds, 5 * Second, 5 * Second + Slack);

        var padded = new kvm_clock_data { clock = 9 * Second, pad0 = 0xdead_beef, host_tsc = 12345 };
        padded.pad[0] = 1;
        padded.pad[3] = 0xffff_ffff;
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_CLOCK, Raw(ref padded)));
        Assert.InRange(vm.GetClock().Nanoseconds, 9 * Second, 9 * Second + Slack);

        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_CLOCK, 8UL), "KVM_SET_CLOCK at address 8");
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_CLOCK, 8UL), "KVM_GET_CLOCK at address 8");
    }

    [ConformanceCase(X86 + " kvm_vm_ioctl_set_clock with KVM_CLOCK_REALTIME: \"if (now_real_ns > data.realtime) data.clock += now_real_ns - data.realtime\" — the wall time since the reading is added, a future realtime adds nothing")]
    public static void set_clock_realtime(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        const ulong Clock = 10 * Second;

        vm.SetClock(new kvm_clock_data { clock = Clock, flags = KvmConstants.KVM_CLOCK_REALTIME, realtime = RealtimeNs() - 2 * Second });
        Assert.InRange(vm.GetClock().Nanoseconds, Clock + 2 * Second - Slack / 10, Clock + 2 * Second + Slack);

        vm.SetClock(new kvm_clock_data { clock = Clock, flags = KvmConstants.KVM_CLOCK_REALTIME, realtime = RealtimeNs() + 2 * Second });
        Assert.InRange(vm.GetClock().Nanoseconds, Clock, Clock + Slack);

        // Without the flag, realtime is not looked at.
        vm.SetClock(new kvm_clock_data { clock = Clock, realtime = RealtimeNs() - 2 * Second });
        Assert.InRange(vm.GetClock().Nanoseconds, Clock, Clock + Slack);

        // A saved reading passed back whole (what Firecracker did before it cleared the flags): the clock jumps by the
        // wall time since the save.
        vm.SetClock(Clock);
        var saved = vm.GetClock();
        Thread.Sleep(50);
        vm.SetClock(saved, advanceByElapsedRealtime: true);
        Assert.InRange(vm.GetClock().Nanoseconds, saved.Nanoseconds + 50_000_000 - Slack / 10, saved.Nanoseconds + 50_000_000 + Slack);
        vm.SetClock(saved);
        Assert.InRange(vm.GetClock().Nanoseconds, saved.Nanoseconds, saved.Nanoseconds + Slack);
    }

    [ConformanceCase(X86 + " vcpu_enter_guest: KVM_REQ_MASTERCLOCK_UPDATE is handled before kvm_mmu_reload, so a KVM_RUN that fails there still switches the VM to the master clock; one with immediate_exit (-EINTR before vcpu_run) does not")]
    public static void master_clock_after_run(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.ImmediateExit = true;
        CaseContext.AssertErrno(Errno.EINTR, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_RUN, 0UL), "KVM_RUN with immediate_exit");
        Assert.Equal(KvmClockFlags.None, vm.GetClock().Flags);
        vcpu.ImmediateExit = false;
        // No memory slot: this host's shadow MMU fails the entry with ENOSPC (Kvm.cs, VcpuRun.cs) after the requests.
        CaseContext.AssertErrno(Errno.ENOSPC, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_RUN, 0UL), "KVM_RUN without a memory slot");
        Assert.Equal(KvmClockFlags.TscStable | KvmClockFlags.Realtime | KvmClockFlags.HostTsc, vm.GetClock().Flags);
    }

    [ConformanceCase(X86 + " kvm_vm_ioctl / kvm_vcpu_ioctl / kvm_dev_ioctl: KVM_GET_CLOCK and KVM_SET_CLOCK only on a VM (EINVAL on a vCPU and on /dev/kvm), KVM_GET_TSC_KHZ on a VM or vCPU (EINVAL on /dev/kvm)")]
    public static void clock_requests_on_the_wrong_fd(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var data = new kvm_clock_data();
        foreach (var fd in new[] { vcpu.Handle, kvm.Handle })
        {
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(fd, KvmIoctls.KVM_GET_CLOCK, Raw(ref data)), $"KVM_GET_CLOCK on {fd}");
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(fd, KvmIoctls.KVM_SET_CLOCK, Raw(ref data)), $"KVM_SET_CLOCK on {fd}");
        }
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_TSC_KHZ, 0UL), "KVM_GET_TSC_KHZ on /dev/kvm");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_SET_TSC_KHZ, 0UL), "KVM_SET_TSC_KHZ on /dev/kvm");
    }

    [ConformanceCase(X86 + " kvm_arch_vcpu_ioctl KVM_SET_TSC_KHZ ((u32)arg, 0 = tsc_khz) → kvm_set_tsc_khz (virtual_tsc_khz stored first; within tsc_tolerance_ppm 250 no scaling) → set_tsc_khz without kvm_caps.has_tsc_control (above the host: catch-up, 0; below: -1 → EINVAL); KVM_GET_TSC_KHZ returns virtual_tsc_khz through an int")]
    public static void vcpu_tsc_khz_without_scaling(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        if (vm.SupportsTscScaling) CaseContext.Skip("KVM_CAP_TSC_CONTROL: this host scales the TSC, so any rate up to its limit is accepted");
        using var vcpu = vm.CreateVcpu();
        uint host = vcpu.TscKhz;
        Assert.True(host > 1000, $"a new vCPU's TSC rate is {host} kHz");
        Assert.Equal(host, vm.DefaultTscKhz);
        uint lo = (uint)((ulong)host * 999_750 / 1_000_000), hi = (uint)((ulong)host * 1_000_250 / 1_000_000);

        (ulong Set, bool Accepted, uint Reads)[] steps =
        [
            (0, true, host), (host, true, host), (host + 1, true, host + 1), (host - 1, true, host - 1),
            (lo, true, lo), (hi, true, hi),
            (lo - 1, false, lo - 1),           // refused, but stored
            (hi + 1, true, hi + 1),            // above the host: catch-up
            (host / 2, false, host / 2), (2UL * host, true, 2 * host), (1, false, 1),
            (0x7fff_ffff, true, 0x7fff_ffff), (0x8000_0000, true, 0x8000_0000),
            ((1UL << 32) + host / 2, false, host / 2), // (u32)arg
            (1UL << 32, true, host),           // (u32)arg is 0: the host's rate
        ];
        foreach (var (set, accepted, reads) in steps)
        {
            long rc = ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_TSC_KHZ, set);
            if (accepted) Assert.True(rc == 0, $"KVM_SET_TSC_KHZ({set}): {rc}");
            else CaseContext.AssertErrno(Errno.EINVAL, rc, $"KVM_SET_TSC_KHZ({set})");
            Assert.Equal(reads, vcpu.TscKhz);
        }
        // The int return value: 0x80000000 comes back as a negative number that is not an errno, 0xffffffff as -1 (EPERM).
        vcpu.SetTscKhz(0x8000_0000);
        Assert.Equal(int.MinValue, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_TSC_KHZ, 0UL));
        vcpu.SetTscKhz(uint.MaxValue);
        CaseContext.AssertErrno(Errno.EPERM, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_TSC_KHZ, 0UL), "KVM_GET_TSC_KHZ after 0xffffffff");
        vcpu.SetTscKhz(0);
        Assert.Equal(host, vcpu.TscKhz);
    }

    [ConformanceCase(X86 + " kvm_arch_vm_ioctl KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ (5.19): kvm->arch.default_tsc_khz, any (u32) rate (0 = tsc_khz) only while !kvm->created_vcpus (else EINVAL); kvm_arch_vcpu_create gives it to each new vCPU (kvm_set_tsc_khz), even a rate that vCPU would refuse")]
    public static void vm_default_tsc_khz(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        uint host;
        using (var probe = kvm.CreateVm()) host = probe.DefaultTscKhz;

        using var vm = kvm.CreateVm();
        vm.SetDefaultTscKhz(host / 2);
        Assert.Equal(host / 2, vm.DefaultTscKhz);
        vm.SetDefaultTscKhz(0);
        Assert.Equal(host, vm.DefaultTscKhz);
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_TSC_KHZ, (1UL << 32) + 5));
        Assert.Equal(5u, vm.DefaultTscKhz);
        vm.SetDefaultTscKhz(uint.MaxValue);
        CaseContext.AssertErrno(Errno.EPERM, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_TSC_KHZ, 0UL), "the VM's KVM_GET_TSC_KHZ after 0xffffffff");
        vm.SetDefaultTscKhz(host / 2);
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(host / 2, vcpu.TscKhz);
        CaseContext.AssertErrno(Errno.EINVAL, () => vm.SetDefaultTscKhz(host));
        CaseContext.AssertErrno(Errno.EINVAL, () => vm.SetDefaultTscKhz(0));
        Assert.Equal(host / 2, vm.DefaultTscKhz);
        // The vCPU's own rate is separate from the VM's.
        vcpu.SetTscKhz(0);
        Assert.Equal((host, host / 2), (vcpu.TscKhz, vm.DefaultTscKhz));
    }

    [ConformanceCase("arch/arm64/kvm/arm.c kvm_vm_ioctl_check_extension (no ADJUST_CLOCK/TSC caps), kvm_arch_vm_ioctl and kvm_arch_vcpu_ioctl (default: -EINVAL): arm64 has no kvmclock or TSC rate ioctls", Profile = EmulatedProfile.Arm64)]
    public static void arm64_has_no_clock_ioctls(CaseContext ctx)
    {
        if (ctx.Target.IsReal) CaseContext.Skip("arm64 case: this host is x86_64, an arm64 VM cannot be created here");
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (int cap in new[] { KvmCaps.KVM_CAP_ADJUST_CLOCK, KvmCaps.KVM_CAP_TSC_CONTROL, KvmCaps.KVM_CAP_GET_TSC_KHZ })
            Assert.Equal((0L, 0L), (kvm.CheckExtension(cap), vm.CheckExtension(cap)));
        Assert.Equal(KvmClockFlags.None, vm.SupportedClockFlags);
        using var vcpu = vm.CreateVcpu();
        var data = new kvm_clock_data();
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_CLOCK, Raw(ref data)), "KVM_GET_CLOCK");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_CLOCK, Raw(ref data)), "KVM_SET_CLOCK");
        foreach (var fd in new[] { vm.Handle, vcpu.Handle })
        {
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(fd, KvmIoctls.KVM_GET_TSC_KHZ, 0UL), $"KVM_GET_TSC_KHZ on {fd}");
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(fd, KvmIoctls.KVM_SET_TSC_KHZ, 0UL), $"KVM_SET_TSC_KHZ on {fd}");
        }
    }

    /// <summary>KVM_GET_CLOCK into a buffer of 0xff bytes: the whole struct comes back.</summary>
    private static kvm_clock_data RawGet(CaseContext ctx, Vm vm)
    {
        var data = new kvm_clock_data();
        Raw(ref data).Fill(0xff);
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_CLOCK, Raw(ref data)));
        return data;
    }

    /// <summary>Without the master clock: flags 0, and realtime, host_tsc and every pad byte zero.</summary>
    private static void AssertOnlyClock(kvm_clock_data data)
    {
        Assert.Equal((0u, 0u, 0UL, 0UL), (data.flags, data.pad0, data.realtime, data.host_tsc));
        Assert.Equal((0u, 0u, 0u, 0u), (data.pad[0], data.pad[1], data.pad[2], data.pad[3]));
    }

    private static ulong RealtimeNs() => (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

}
