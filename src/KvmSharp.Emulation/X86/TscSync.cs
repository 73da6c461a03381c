// SPDX-License-Identifier: MIT
using System.Diagnostics;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// TSC synchronisation generations, arch/x86/kvm/x86.c (6.12+): kvm_synchronize_tsc, __kvm_synchronize_tsc,
/// kvm_track_tsc_matching, kvm_arch_tsc_set_attr and pvclock_update_vm_gtod_copy's vcpus_matched. Every write of a
/// vCPU's TSC by the host — vCPU creation (kvm_arch_vcpu_postcreate → kvm_synchronize_tsc(vcpu, NULL)), KVM_SET_MSRS of
/// IA32_TSC (kvm_set_msr_common, host_initiated → kvm_synchronize_tsc(vcpu, &amp;data)) and KVM_SET_DEVICE_ATTR of
/// KVM_VCPU_TSC_OFFSET — either joins the VM's current generation ("matched": the vCPU takes cur_tsc_offset and
/// nr_vcpus_matched_tsc counts it once) or starts a new one (nr_vcpus_matched_tsc = 0). The VM's vCPUs are matched,
/// and KVM_GET_CLOCK can use the master clock (flags 0xE), when nr_vcpus_matched_tsc + 1 == online_vcpus. A guest's
/// WRMSR (adjust_tsc_offset_guest) moves only its own offset and touches no generation. use_master_clock changes only
/// where upstream recomputes it: KVM_SET_CLOCK, and a KVM_RUN of a vCPU with KVM_REQ_MASTERCLOCK_UPDATE pending, which
/// kvm_track_tsc_matching makes on the synchronised vCPU alone (so running another vCPU changes nothing: observed).
/// The host's TSC is stable (kvm_check_tsc_unstable false): a matched vCPU gets cur_tsc_offset, never a computed one.
/// </summary>
internal sealed partial class KvmClock
{
    /// <summary>Per-vCPU fields of struct kvm_vcpu_arch that the clock uses.</summary>
    private sealed class VcpuTsc
    {
        /// <summary>vcpu->arch.virtual_tsc_khz (kvm_set_tsc_khz stores it first, even for a rate it then refuses).</summary>
        public uint VirtualTscKhz;

        /// <summary>vcpu->arch.virtual_tsc_mult / virtual_tsc_shift: nanoseconds → guest cycles (nsec_to_cycles).</summary>
        public uint VirtualTscMult;

        public int VirtualTscShift;

        /// <summary>vcpu->arch.this_tsc_generation: 0 until the first synchronisation (generations start at 1).</summary>
        public ulong ThisTscGeneration;

        /// <summary>KVM_REQ_MASTERCLOCK_UPDATE pending on this vCPU (kvm_track_tsc_matching, kvm_write_system_time).</summary>
        public bool MasterclockUpdate;

        /// <summary>The vCPU's kvmclock (KvmClock.Pvclock.cs).</summary>
        public readonly PvTime Pv = new();
    }

    private readonly Dictionary<int, VcpuTsc> _vcpuTsc = [];

    // kvm->arch: the current generation, the last write, user_set_tsc and online_vcpus (counted at postcreate, after
    // kvm_vm_ioctl_create_vcpu's atomic_inc). last_tsc_khz starts 0, so the first vCPU always starts generation 1.
    private ulong _curTscGeneration;
    private ulong _nrVcpusMatchedTsc;
    private ulong _curTscNsec;
    private ulong _curTscWrite;
    private long _curTscOffset;
    private ulong _lastTscNsec;
    private ulong _lastTscWrite;
    private uint _lastTscKhz;
    private long _lastTscOffset;
    private bool _userSetTsc;
    private int _onlineVcpus;

    /// <summary>
    /// kvm_arch_vcpu_create's kvm_set_tsc_khz(vcpu, kvm->arch.default_tsc_khz), then kvm_arch_vcpu_postcreate's
    /// kvm_synchronize_tsc(vcpu, NULL): TSC 0, which always synchronises — the first vCPU starts generation 1 at
    /// offset −host TSC (last_tsc_khz is still 0), later ones at the same rate join the current generation.
    /// </summary>
    public void PostCreate(int vcpuId, MsrState msrs)
    {
        lock (_lock)
        {
            SetTscKhz(vcpuId, _defaultTscKhz);
            _onlineVcpus++;
            SynchronizeTsc(vcpuId, msrs, userValue: null);
        }
    }

    /// <summary>kvm_set_msr_common MSR_IA32_TSC with host_initiated: kvm_synchronize_tsc(vcpu, &amp;data).</summary>
    public void HostWriteTsc(int vcpuId, MsrState msrs, ulong data)
    {
        lock (_lock) SynchronizeTsc(vcpuId, msrs, data);
    }

    /// <summary>
    /// kvm_arch_tsc_set_attr KVM_VCPU_TSC_OFFSET: matched only when the offset is exactly the last one synchronised
    /// (kvm->arch.last_tsc_offset, any vCPU) at the same rate (last_tsc_khz); tsc = host TSC + offset;
    /// __kvm_synchronize_tsc(…, user_set_tsc = true).
    /// </summary>
    public void SetTscOffset(int vcpuId, MsrState msrs, ulong offset)
    {
        lock (_lock)
        {
            var v = Vcpu(vcpuId);
            bool matched = v.VirtualTscKhz != 0 && _lastTscKhz == v.VirtualTscKhz && _lastTscOffset == unchecked((long)offset);
            ulong tsc = unchecked((ulong)Stopwatch.GetTimestamp() + offset);
            SynchronizeTscCore(vcpuId, msrs, unchecked((long)offset), tsc, (ulong)BaseNs(), matched, userSetTsc: true);
        }
    }

    /// <summary>
    /// vcpu_enter_guest: "if (kvm_check_request(KVM_REQ_MASTERCLOCK_UPDATE, vcpu)) kvm_update_masterclock(kvm)" — only
    /// this vCPU's own request. Processed before kvm_mmu_reload (a KVM_RUN that fails with ENOSPC still updates; one with
    /// immediate_exit does not: observed). kvm_update_masterclock ends with kvm_end_pvclock_update: KVM_REQ_CLOCK_UPDATE
    /// on every vCPU.
    /// </summary>
    public void OnEnterGuest(int vcpuId)
    {
        lock (_lock)
        {
            var v = Vcpu(vcpuId);
            if (!v.MasterclockUpdate) return;
            v.MasterclockUpdate = false;
            UpdateVmGtodCopy();
            EndPvclockUpdate();
        }
    }

    /// <summary>
    /// pvclock_update_vm_gtod_copy: the master clock's snapshot (master_kernel_ns, master_cycle_now) is taken, and
    /// use_master_clock = host clocksource TSC-based &amp;&amp; vcpus_matched (nr_vcpus_matched_tsc + 1 == online_vcpus;
    /// no vCPU: never) &amp;&amp; !backwards_tsc_observed (no host suspend here) &amp;&amp; !boot_vcpu_runs_old_kvmclock (vCPU 0's
    /// guest enabled kvmclock with the old MSR_KVM_SYSTEM_TIME). Caller holds _lock.
    /// </summary>
    private void UpdateVmGtodCopy()
    {
        SnapshotMasterClock();
        _useMasterClock = HostClocksourceIsTsc && VcpusMatched && !_bootVcpuRunsOldKvmclock;
    }

    private bool VcpusMatched => _nrVcpusMatchedTsc + 1 == (ulong)_onlineVcpus;

    private VcpuTsc Vcpu(int vcpuId)
    {
        if (_vcpuTsc.TryGetValue(vcpuId, out var v)) return v;
        _vcpuTsc[vcpuId] = v = new VcpuTsc();
        SetVirtualTscKhz(v, _defaultTscKhz);
        return v;
    }

    /// <summary>kvm_synchronize_tsc(vcpu, user_value). Caller holds _lock (tsc_write_lock).</summary>
    private void SynchronizeTsc(int vcpuId, MsrState msrs, ulong? userValue)
    {
        var v = Vcpu(vcpuId);
        ulong data = userValue ?? 0;
        long offset = MsrState.TscOffsetFor(data); // kvm_compute_l1_tsc_offset (no scaling)
        ulong ns = (ulong)BaseNs();                 // get_kvmclock_base_ns
        ulong elapsed = unchecked(ns - _lastTscNsec);
        bool synchronizing = false;
        if (v.VirtualTscKhz != 0)
        {
            // "Force synchronization when creating a vCPU, or when userspace explicitly writes a zero value."
            if (data == 0) synchronizing = true;
            else if (_userSetTsc)
            {
                // The 1-second slop of the legacy API, only once userspace has set a TSC (user_set_tsc): the value
                // written lies within one second of guest cycles of the last write advanced by the time since (u64).
                ulong tscExp = unchecked(_lastTscWrite + NsecToCycles(v, elapsed));
                ulong tscHz = (ulong)v.VirtualTscKhz * 1000;
                synchronizing = data < unchecked(tscExp + tscHz) && unchecked(data + tscHz) > tscExp;
            }
        }
        // "if (synchronizing && vcpu->arch.virtual_tsc_khz == kvm->arch.last_tsc_khz)": with a stable TSC the vCPU takes
        // the generation's offset (cur_tsc_offset), not the one its value gives.
        bool matched = false;
        if (synchronizing && v.VirtualTscKhz == _lastTscKhz)
        {
            offset = _curTscOffset;
            matched = true;
        }
        SynchronizeTscCore(vcpuId, msrs, offset, data, ns, matched, userSetTsc: userValue.HasValue);
    }

    /// <summary>__kvm_synchronize_tsc(vcpu, offset, tsc, ns, matched, user_set_tsc). Caller holds _lock.</summary>
    private void SynchronizeTscCore(int vcpuId, MsrState msrs, long offset, ulong tsc, ulong ns, bool matched, bool userSetTsc)
    {
        var v = Vcpu(vcpuId);
        if (userSetTsc) _userSetTsc = true;
        _lastTscNsec = ns;
        _lastTscWrite = tsc;
        _lastTscKhz = v.VirtualTscKhz;
        _lastTscOffset = offset;
        msrs.TscOffset = offset; // kvm_vcpu_write_tsc_offset: l1_tsc_offset
        if (!matched)
        {
            _curTscGeneration++;
            _curTscNsec = ns;
            _curTscWrite = tsc;
            _curTscOffset = offset;
            _nrVcpusMatchedTsc = 0;
        }
        else if (v.ThisTscGeneration != _curTscGeneration)
        {
            _nrVcpusMatchedTsc++;
        }
        v.ThisTscGeneration = _curTscGeneration;
        TrackTscMatching(v, newGeneration: !matched);
    }

    /// <summary>
    /// kvm_track_tsc_matching(vcpu, new_generation) (6.7+): a master clock update is requested on this vCPU when
    /// use_master_clock would toggle, or when a new generation starts while it is on.
    /// </summary>
    private void TrackTscMatching(VcpuTsc v, bool newGeneration)
    {
        bool useMasterClock = VcpusMatched && HostClocksourceIsTsc;
        if ((_useMasterClock && newGeneration) || _useMasterClock != useMasterClock) v.MasterclockUpdate = true;
    }

    /// <summary>
    /// kvm_set_tsc_khz's first steps for a non-zero rate: kvm_get_time_scale(user_tsc_khz * 1000LL, NSEC_PER_SEC,
    /// &amp;virtual_tsc_shift, &amp;virtual_tsc_mult); virtual_tsc_khz = user_tsc_khz — before the rate is accepted or not.
    /// </summary>
    private static void SetVirtualTscKhz(VcpuTsc v, uint khz)
    {
        (v.VirtualTscShift, v.VirtualTscMult) = TimeScale((ulong)khz * 1000, 1_000_000_000);
        v.VirtualTscKhz = khz;
    }

    /// <summary>nsec_to_cycles: pvclock_scale_delta(nsec, virtual_tsc_mult, virtual_tsc_shift).</summary>
    private static ulong NsecToCycles(VcpuTsc v, ulong nsec)
    {
        ulong delta = v.VirtualTscShift < 0 ? nsec >> -v.VirtualTscShift : nsec << v.VirtualTscShift;
        return (ulong)(((UInt128)delta * v.VirtualTscMult) >> 32);
    }

    /// <summary>
    /// kvm_get_time_scale(scaled_hz, base_hz): the shift and 32-bit fraction that turn base_hz units into scaled_hz
    /// units (kvm_set_tsc_khz calls it with user_tsc_khz * 1000 and NSEC_PER_SEC).
    /// </summary>
    private static (int Shift, uint Mult) TimeScale(ulong scaledHz, ulong baseHz)
    {
        int shift = 0;
        ulong tps64 = baseHz, scaled64 = scaledHz;
        while (tps64 > scaled64 * 2 || (tps64 & 0xffff_ffff_0000_0000) != 0)
        {
            tps64 >>= 1;
            shift--;
        }
        uint tps32 = (uint)tps64;
        while (tps32 <= scaled64 || (scaled64 & 0xffff_ffff_0000_0000) != 0)
        {
            if ((scaled64 & 0xffff_ffff_0000_0000) != 0 || (tps32 & 0x8000_0000) != 0) scaled64 >>= 1;
            else tps32 <<= 1;
            shift++;
        }
        return (shift, (uint)((scaled64 << 32) / tps32)); // div_frac
    }
}
