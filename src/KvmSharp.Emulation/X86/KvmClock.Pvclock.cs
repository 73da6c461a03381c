// SPDX-License-Identifier: MIT
using System.Diagnostics;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The kvmclock paravirtual clock's per-VM and per-vCPU state, arch/x86/kvm/x86.c: vcpu->arch.time and the pv_time
/// cache (kvm_write_system_time), kvm->arch.wall_clock, boot_vcpu_runs_old_kvmclock, the master clock's snapshot
/// (master_kernel_ns / master_cycle_now, pvclock_update_vm_gtod_copy), KVM_REQ_CLOCK_UPDATE and what
/// kvm_guest_time_update fills in. Writing the structures into guest memory is <see cref="KvmClockMsrs"/>'s.
/// </summary>
internal sealed partial class KvmClock
{
    /// <summary>PVCLOCK_TSC_STABLE_BIT (asm/pvclock-abi.h).</summary>
    public const byte PvclockTscStableBit = 1 << 0;

    /// <summary>sizeof(struct pvclock_vcpu_time_info).</summary>
    public const int PvclockSize = 32;

    /// <summary>The per-vCPU kvmclock fields of struct kvm_vcpu_arch.</summary>
    private sealed class PvTime
    {
        /// <summary>vcpu->arch.time: the last MSR_KVM_SYSTEM_TIME(_NEW) value, what a read returns.</summary>
        public ulong Time;

        /// <summary>vcpu->arch.pv_time.active and .gpa (the gfn_to_pfn_cache kvm_gpc_activate set up).</summary>
        public bool Active;

        public ulong Gpa;

        /// <summary>KVM_REQ_CLOCK_UPDATE pending on this vCPU.</summary>
        public bool ClockUpdate;

        /// <summary>vcpu->arch.hw_tsc_hz, pvclock_tsc_mul and pvclock_tsc_shift: the scale cached for that rate.</summary>
        public ulong HwTscHz;

        public uint Mul;

        public int Shift;
    }

    /// <summary>What kvm_guest_time_update hands kvm_setup_guest_pvclock (hv_clock without its version).</summary>
    public readonly record struct PvclockTimeInfo(ulong Gpa, ulong TscTimestamp, ulong SystemTime, uint Mul, sbyte Shift, byte Flags);

    private ulong _wallClock;
    private bool _bootVcpuRunsOldKvmclock;
    private long _masterCycleNow;
    private long _masterKernelNs;

    /// <summary>kvm->arch.wall_clock: what MSR_KVM_WALL_CLOCK(_NEW) reads.</summary>
    public ulong WallClock
    {
        get { lock (_lock) return _wallClock; }
        set { lock (_lock) _wallClock = value; }
    }

    /// <summary>vcpu->arch.time of vCPU <paramref name="vcpuId"/>.</summary>
    public ulong SystemTime(int vcpuId)
    {
        lock (_lock) return Vcpu(vcpuId).Pv.Time;
    }

    /// <summary>
    /// kvm_write_system_time(vcpu, system_time, old_msr, host_initiated): a guest write on vCPU 0 records which MSR the
    /// boot vCPU uses (a change asks for a master clock update: the old MSR turns the master clock off);
    /// vcpu->arch.time takes the value; KVM_REQ_GLOBAL_CLOCK_UPDATE; bit 0 activates the pv_time cache at the value
    /// without bit 0 (kvm_gpc_activate, whose result is ignored: a structure that would cross a page is
    /// __kvm_gpc_activate's -EINVAL and leaves the cache as it was), bit 0 clear deactivates it.
    /// </summary>
    public void WriteSystemTime(int vcpuId, ulong data, bool oldMsr, bool hostInitiated)
    {
        lock (_lock)
        {
            var v = Vcpu(vcpuId);
            if (vcpuId == 0 && !hostInitiated)
            {
                if (_bootVcpuRunsOldKvmclock != oldMsr) v.MasterclockUpdate = true;
                _bootVcpuRunsOldKvmclock = oldMsr;
            }
            v.Pv.Time = data;
            GlobalClockUpdate();
            if ((data & 1) == 0)
            {
                v.Pv.Active = false; // kvm_gpc_deactivate
                return;
            }
            ulong gpa = data & ~1UL;
            // pfncache.c kvm_gpc_is_valid_len: "offset_in_page(gpa) + len <= PAGE_SIZE" (x86 pages are 4 KiB).
            if ((gpa & 0xfff) + PvclockSize > 0x1000) return;
            v.Pv.Active = true;
            v.Pv.Gpa = gpa;
        }
    }

    /// <summary>
    /// KVM_REQ_GLOBAL_CLOCK_UPDATE → kvm_gen_kvmclock_update: KVM_REQ_CLOCK_UPDATE on this vCPU and, from
    /// kvmclock_update_work 100 ms later, on every vCPU — here on every vCPU at once. Caller holds _lock.
    /// </summary>
    private void GlobalClockUpdate()
    {
        foreach (var v in _vcpuTsc.Values) v.Pv.ClockUpdate = true;
    }

    /// <summary>kvm_end_pvclock_update: "kvm_for_each_vcpu(i, vcpu, kvm) kvm_make_request(KVM_REQ_CLOCK_UPDATE, vcpu)". Caller holds _lock.</summary>
    private void EndPvclockUpdate()
    {
        foreach (var v in _vcpuTsc.Values) v.Pv.ClockUpdate = true;
    }

    /// <summary>
    /// pvclock_update_vm_gtod_copy's kvm_get_time_and_clockread: the master clock's host TSC and the kvmclock base
    /// read together (the emulated host's TSC counts the same ticks as its clock). Caller holds _lock.
    /// </summary>
    private void SnapshotMasterClock()
    {
        _masterCycleNow = Stopwatch.GetTimestamp();
        _masterKernelNs = TicksToNs(_masterCycleNow);
    }

    /// <summary>
    /// vcpu_enter_guest: "if (kvm_check_request(KVM_REQ_CLOCK_UPDATE, vcpu)) kvm_guest_time_update(vcpu)" — the values
    /// of struct pvclock_vcpu_time_info when the request was pending and the pv_time cache is active, else null.
    /// kvm_guest_time_update: with the master clock host_tsc/kernel_ns are master_cycle_now/master_kernel_ns, without
    /// it rdtsc() and get_kvmclock_base_ns(); tsc_timestamp = kvm_read_l1_tsc(host_tsc) (no scaling: the host TSC plus
    /// l1_tsc_offset, <paramref name="tscOffset"/>); the rate is get_cpu_tsc_khz() (no kvm_caps.has_tsc_control), its
    /// scale kvm_get_time_scale(NSEC_PER_SEC, hz) recomputed only when hw_tsc_hz changed; system_time = kernel_ns +
    /// kvmclock_offset; flags PVCLOCK_TSC_STABLE_BIT with the master clock. vcpu->tsc_catchup (a rate above the
    /// host's) is not modeled.
    /// </summary>
    public PvclockTimeInfo? TakeClockUpdate(int vcpuId, long tscOffset)
    {
        lock (_lock)
        {
            var v = Vcpu(vcpuId);
            if (!v.Pv.ClockUpdate) return null;
            v.Pv.ClockUpdate = false;
            bool master = _useMasterClock;
            long hostTsc = master ? _masterCycleNow : Stopwatch.GetTimestamp();
            long kernelNs = master ? _masterKernelNs : TicksToNs(hostTsc);
            ulong tgtTscHz = (ulong)HostTscKhz * 1000;
            if (v.Pv.HwTscHz != tgtTscHz)
            {
                (v.Pv.Shift, v.Pv.Mul) = TimeScale(1_000_000_000, tgtTscHz);
                v.Pv.HwTscHz = tgtTscHz;
            }
            // "if (vcpu->pv_time.active) kvm_setup_guest_pvclock(&hv_clock, v, &vcpu->pv_time, 0)".
            if (!v.Pv.Active) return null;
            return new PvclockTimeInfo(v.Pv.Gpa, unchecked((ulong)(hostTsc + tscOffset)), unchecked((ulong)(kernelNs + _kvmclockOffset)),
                v.Pv.Mul, (sbyte)v.Pv.Shift, master ? PvclockTscStableBit : (byte)0);
        }
    }

    /// <summary>
    /// kvm_get_wall_clock_epoch: the guest's epoch, ktime_get_real_ns() - get_kvmclock_ns(kvm) (the master clock's
    /// way gives the same value here: the host TSC counts nanoseconds of the clock the kvmclock reads).
    /// </summary>
    public ulong WallClockEpochNs()
    {
        lock (_lock) return unchecked(RealtimeNs() - (ulong)(BaseNs() + _kvmclockOffset));
    }
}
