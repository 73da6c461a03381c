// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The time a VMM saves and restores, arch/x86/kvm/x86.c: the VM's kvmclock (KVM_GET_CLOCK / KVM_SET_CLOCK,
/// kvm_vm_ioctl_get_clock / kvm_vm_ioctl_set_clock, get_kvmclock, pvclock_update_vm_gtod_copy; kvm->arch.kvmclock_offset
/// and use_master_clock) and the TSC frequency (KVM_GET_TSC_KHZ / KVM_SET_TSC_KHZ on a vCPU and, since 5.19, on the
/// VM: kvm_arch_vcpu_ioctl, kvm_arch_vm_ioctl, kvm_set_tsc_khz, set_tsc_khz; vcpu->arch.virtual_tsc_khz and
/// kvm->arch.default_tsc_khz). The emulated host's clock is Stopwatch's (CLOCK_MONOTONIC in nanoseconds on Linux) and
/// its TSC is Stopwatch ticks (<see cref="MsrState"/>), so tsc_khz is Stopwatch.Frequency / 1000 (1 000 000 on Linux).
/// There is no TSC scaling (kvm_caps.has_tsc_control = false, as on this project's host): KVM_CAP_TSC_CONTROL and
/// KVM_CAP_VM_TSC_CONTROL are 0, and a rate above the host's is accepted as "catch-up" without changing how the guest
/// TSC runs (x86.c only steps the guest TSC forward at kvmclock updates, which the emulator has no guest for). Whether
/// the master clock is used follows the VM's TSC synchronisation generations (TscSync.cs: kvm_synchronize_tsc,
/// kvm_track_tsc_matching).
/// </summary>
internal sealed partial class KvmClock
{
    /// <summary>x86.c module parameter tsc_tolerance_ppm (default 250): rates this close to the host's need no scaling.</summary>
    private const int TscTolerancePpm = 250;

    /// <summary>KVM_CLOCK_VALID_FLAGS (x86.c): KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC.</summary>
    public const uint ValidFlags = KvmConstants.KVM_CLOCK_TSC_STABLE | KvmConstants.KVM_CLOCK_REALTIME | KvmConstants.KVM_CLOCK_HOST_TSC;

    private readonly Lock _lock = new(); // kvm->arch.tsc_write_lock and pvclock_sc
    private long _kvmclockOffset;
    private bool _useMasterClock;
    private uint _defaultTscKhz = HostTscKhz;

    /// <summary>kvm_arch_init_vm: kvmclock_offset = -get_kvmclock_base_ns(), so a new VM's clock starts at 0.</summary>
    public KvmClock() => _kvmclockOffset = -BaseNs();

    /// <summary>kvm-&gt;arch.default_tsc_khz (what KVM_GET_TSC_KHZ on the VM reads).</summary>
    public uint DefaultTscKhz
    {
        get { lock (_lock) return _defaultTscKhz; }
    }

    /// <summary>tsc_khz of the emulated host: its TSC counts Stopwatch ticks.</summary>
    public static uint HostTscKhz => (uint)(Stopwatch.Frequency / 1000);

    /// <summary>
    /// pvclock_gtod_data's clocksource is TSC based (gtod_is_based_on_tsc): true on this project's host
    /// (clocksource "tsc"), and the emulated TSC is the clock the emulator reads.
    /// </summary>
    private const bool HostClocksourceIsTsc = true;

    /// <summary>The requests kvm_arch_vm_ioctl answers here.</summary>
    public static bool IsVmRequest(uint request) =>
        request == KvmIoctls.KVM_GET_CLOCK || request == KvmIoctls.KVM_SET_CLOCK ||
        request == KvmIoctls.KVM_GET_TSC_KHZ || request == KvmIoctls.KVM_SET_TSC_KHZ;

    /// <summary>The requests kvm_arch_vcpu_ioctl answers here.</summary>
    public static bool IsVcpuRequest(uint request) => request == KvmIoctls.KVM_GET_TSC_KHZ || request == KvmIoctls.KVM_SET_TSC_KHZ;

    /// <summary>kvm_arch_vm_ioctl: KVM_SET_CLOCK, KVM_GET_CLOCK, KVM_SET_TSC_KHZ, KVM_GET_TSC_KHZ.</summary>
    public long VmIoctl(KvmMain.Kvm kvm, uint request, IoctlArg arg)
    {
        if (request == KvmIoctls.KVM_GET_CLOCK) return GetClock(arg);
        if (request == KvmIoctls.KVM_SET_CLOCK) return SetClock(arg);
        if (request == KvmIoctls.KVM_GET_TSC_KHZ)
        {
            // "r = READ_ONCE(kvm->arch.default_tsc_khz)": an int, so a rate of 2^31 kHz or more comes back negative.
            lock (_lock) return unchecked((int)_defaultTscKhz);
        }
        // KVM_SET_TSC_KHZ: user_tsc_khz = (u32)arg; no kvm_caps.has_tsc_control so no max_guest_tsc_khz check; 0 means
        // tsc_khz; nothing else is checked (the rate is tried on each vCPU at creation); "if (!kvm->created_vcpus)"
        // else -EINVAL.
        uint khz = (uint)arg.Value;
        if (khz == 0) khz = HostTscKhz;
        if (kvm.Vcpus.Count != 0) return Err.EINVAL;
        lock (_lock) _defaultTscKhz = khz;
        return 0;
    }

    /// <summary>kvm_arch_vcpu_ioctl: KVM_SET_TSC_KHZ and KVM_GET_TSC_KHZ of vCPU <paramref name="vcpuId"/>.</summary>
    public long VcpuIoctl(KvmMain.Kvm kvm, int vcpuId, uint request, ulong arg)
    {
        lock (_lock)
        {
            // "case KVM_GET_TSC_KHZ: r = vcpu->arch.virtual_tsc_khz" through an int r, so 2^31 and above read negative
            // (0xffffffff is -1, i.e. EPERM to userspace; observed).
            if (request == KvmIoctls.KVM_GET_TSC_KHZ) return unchecked((int)VirtualTscKhz(vcpuId));
            // "if (vcpu->arch.guest_tsc_protected) goto out" (-EINVAL): TDX vCPUs (vmx/tdx.c tdx_vcpu_create).
            // SNP Secure TSC vCPUs too (sev.c sev_vcpu_create: guest_tsc_protected = snp_is_secure_tsc_enabled, 6.18).
            if (kvm.Type == KvmConstants.KVM_X86_TDX_VM || Arch.CocoState.GuestTscProtected(kvm)) return Err.EINVAL;
            uint khz = (uint)arg; // user_tsc_khz = (u32)arg: bits 63:32 are dropped
            if (khz == 0) khz = HostTscKhz;
            return SetTscKhz(vcpuId, khz) ? 0 : Err.EINVAL;
        }
    }

    private long GetClock(IoctlArg arg)
    {
        // kvm_vm_ioctl_get_clock: "struct kvm_clock_data data = { 0 }" — the pads and, without the master clock,
        // realtime and host_tsc read 0 — then get_kvmclock, copy_to_user → -EFAULT.
        var data = new kvm_clock_data();
        lock (_lock)
        {
            if (_useMasterClock)
            {
                // __get_kvmclock with the master clock: the host's TSC and CLOCK_REALTIME read together
                // (kvm_get_walltime_and_clockread), flags REALTIME | HOST_TSC | TSC_STABLE, and the clock extrapolated from
                // that TSC reading.
                long tsc = Stopwatch.GetTimestamp();
                data.host_tsc = (ulong)tsc;
                data.realtime = RealtimeNs();
                data.flags = ValidFlags;
                data.clock = unchecked((ulong)(TicksToNs(tsc) + _kvmclockOffset));
            }
            else
            {
                // "data->clock = get_kvmclock_base_ns() + ka->kvmclock_offset", flags 0.
                data.clock = unchecked((ulong)(BaseNs() + _kvmclockOffset));
            }
        }
        return arg.CopyToUser(data) ? 0 : Err.EFAULT;
    }

    private long SetClock(IoctlArg arg)
    {
        // kvm_vm_ioctl_set_clock: copy_from_user → -EFAULT; "if (data.flags & ~KVM_CLOCK_VALID_FLAGS) return -EINVAL"
        // (the flags KVM_GET_CLOCK reports may be passed back); pad0, pad[] and host_tsc are not looked at.
        if (!arg.CopyFromUser(out kvm_clock_data data)) return Err.EFAULT;
        if ((data.flags & ~ValidFlags) != 0) return Err.EINVAL;
        lock (_lock)
        {
            // kvm_start_pvclock_update; pvclock_update_vm_gtod_copy(kvm): use_master_clock is decided again here (the
            // vCPUs' pending KVM_REQ_MASTERCLOCK_UPDATE requests stay: only kvm_end_pvclock_update's CLOCK_UPDATE is new).
            UpdateVmGtodCopy();
            ulong clock = data.clock;
            if ((data.flags & KvmConstants.KVM_CLOCK_REALTIME) != 0)
            {
                // "Avoid stepping the kvmclock backwards": the wall time that passed since data.realtime is added;
                // a realtime in the future adds nothing.
                ulong nowReal = RealtimeNs();
                if (nowReal > data.realtime) clock = unchecked(clock + (nowReal - data.realtime));
            }
            // ka->kvmclock_offset = data.clock - now_raw_ns (u64 arithmetic: any value wraps, nothing is refused).
            _kvmclockOffset = unchecked((long)clock - BaseNs());
            EndPvclockUpdate(); // kvm_end_pvclock_update: KVM_REQ_CLOCK_UPDATE on every vCPU
        }
        return 0;
    }

    private uint VirtualTscKhz(int vcpuId) => Vcpu(vcpuId).VirtualTscKhz;

    /// <summary>kvm_set_tsc_khz for a non-zero rate; false is its -1 (the ioctl's -EINVAL).</summary>
    private bool SetTscKhz(int vcpuId, uint userTscKhz)
    {
        // kvm_get_time_scale(user_tsc_khz * 1000LL, NSEC_PER_SEC, …) and virtual_tsc_khz are stored first, so even a
        // refused rate is what KVM_GET_TSC_KHZ reads afterwards (observed) and what TSC synchronisation compares.
        SetVirtualTscKhz(Vcpu(vcpuId), userTscKhz);
        uint host = HostTscKhz;
        uint threshLo = AdjustTscKhz(host, -TscTolerancePpm), threshHi = AdjustTscKhz(host, TscTolerancePpm);
        // Within the tolerance: set_tsc_khz(vcpu, khz, scale = false), the host's rate, always 0.
        if (userTscKhz >= threshLo && userTscKhz <= threshHi) return true;
        // set_tsc_khz with scale and !kvm_caps.has_tsc_control: a higher rate turns on tsc_catchup (0); a lower one is
        // "user requested TSC rate below hardware speed" (-1).
        return userTscKhz > host;
    }

    /// <summary>x86.c adjust_tsc_khz: (u64)khz * (1000000 + ppm) / 1000000, truncated to u32.</summary>
    private static uint AdjustTscKhz(uint khz, int ppm) => (uint)((ulong)khz * (ulong)(1_000_000 + ppm) / 1_000_000);

    /// <summary>get_kvmclock_base_ns: the host's monotonic clock in nanoseconds.</summary>
    private static long BaseNs() => TicksToNs(Stopwatch.GetTimestamp());

    private static long TicksToNs(long ticks)
    {
        long frequency = Stopwatch.Frequency;
        if (frequency == 1_000_000_000) return ticks;
        return ticks / frequency * 1_000_000_000 + ticks % frequency * 1_000_000_000 / frequency;
    }

    /// <summary>ktime_get_real_ns: CLOCK_REALTIME in nanoseconds.</summary>
    private static ulong RealtimeNs() => (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
}
