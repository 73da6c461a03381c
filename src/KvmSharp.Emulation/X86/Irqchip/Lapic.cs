// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>What the APIC map and destination matching read of one APIC (lapic.c kvm_recalculate_phys_map / _logical_map, kvm_apic_match_dest).</summary>
internal readonly record struct ApicView(bool X2apic, uint XapicId, uint X2apicId, bool SoftwareEnabled, uint Ldr, uint Dfr);

/// <summary>
/// arch/x86/kvm/lapic.c: a vCPU's in-kernel local APIC (kvm_create_lapic, made by kvm_arch_vcpu_create when the VM
/// has an irqchip, full or split), kept as its 1 KiB register page — what KVM_GET/SET_LAPIC carry. Modelled: reset
/// values, KVM_GET/SET_LAPIC's fix-ups (kvm_apic_state_fixup), interrupt acceptance into IRR/TMR, the xAPIC page's
/// registers, x2APIC mode (IA32_APIC_BASE.EXTD: the ID and LDR it derives, the MSRs 0x800–0x8ff), the one-shot,
/// periodic and TSC-deadline timer.
/// <para>
/// The APIC base lives in the vCPU's sregs (KVM_SET_SREGS and the MSR both write it): what __kvm_apic_set_base does to
/// the registers on an enable or EXTD transition is applied here the next time the APIC is used (<see cref="Sync"/>),
/// and at once for the MSR (<see cref="ApicBaseChanged"/>).
/// </para>
/// <para>The timer is in Lapic.Timer.cs, the guest's register accesses (xAPIC page, x2APIC MSRs) in Lapic.Registers.cs.</para>
/// </summary>
internal sealed partial class Lapic
{
    // Register offsets (arch/x86/include/asm/apicdef.h).
    internal const int ApicId = 0x20, Lvr = 0x30, TaskPri = 0x80, ProcPri = 0xa0, Ldr = 0xd0, Dfr = 0xe0, Spiv = 0xf0;
    internal const int Isr = 0x100, Tmr = 0x180, Irr = 0x200, Esr = 0x280, Icr = 0x300, Icr2 = 0x310, LvtT = 0x320, Lvt0 = 0x350, Tmcct = 0x390;
    private const int Eoi = 0xb0, SelfIpi = 0x3f0;

    /// <summary>APIC_SPIV_APIC_ENABLED: the software enable.</summary>
    internal const uint SpivEnabled = 1u << 8;

    /// <summary>MSR_IA32_APICBASE_ENABLE and X2APIC_ENABLE (EXTD).</summary>
    internal const ulong BaseEnable = 1UL << 11, BaseX2apic = 1UL << 10;

    /// <summary>
    /// kvm_apic_set_version: "v = APIC_VERSION | ((apic-&gt;nr_lvt_entries - 1) &lt;&lt; 16)" — 0x14, six LVT entries
    /// (no CMCI: the vCPU's MCG_CAP has no MCG_CMCI_P). Probed on this host: 0x00050014.
    /// </summary>
    internal const uint Version = 0x00050014;

    /// <summary>APIC_LVR_DIRECTED_EOI (bit 24) and APIC_SPIV_DIRECTED_EOI (bit 12).</summary>
    private const uint LvrDirectedEoi = 1u << 24;

    /// <summary>APIC_SPIV_DIRECTED_EOI: EOI-broadcast suppression (lapic.c kvm_lapic_suppress_eoi_broadcast).</summary>
    internal const uint SpivDirectedEoi = 1u << 12;

    private const int NrLvtEntries = 6;
    private const uint LvtMasked = 1u << 16;

    /// <summary>
    /// lapic.c apic_lvt_mask: LVT_MASK (masked, send pending, vector) for the timer (plus the timer mode mask) and error
    /// LVTs; with APIC_MODE_MASK for thermal and performance; LINT_MASK (also polarity, remote IRR, level) for LINT0/1.
    /// </summary>
    private static readonly uint[] LvtMask = [0x110ff, 0x117ff, 0x117ff, 0x1f7ff, 0x1f7ff, 0x110ff];

    /// <summary>
    /// apic->vapic_addr (KVM_SET_VAPIC_ADDR, X86/VapicIoctls.cs): 0 = none. The TPR/ISR/IRR mirroring a non-zero address
    /// asks for (lapic.c kvm_lapic_sync_to_vapic / kvm_lapic_sync_from_vapic) is not modelled.
    /// </summary>
    public ulong VapicAddr { get; set; }

    private readonly byte[] _regs = new byte[Abi.KvmConstants.KVM_APIC_REG_SIZE];

    /// <summary>
    /// apic-&gt;regs is written by the vCPU (MMIO, MSRs, delivery) and by VM ioctls on other threads (KVM_SIGNAL_MSI,
    /// KVM_IRQ_LINE): every access of the page goes through this lock (the kernel uses atomic bit operations on IRR).
    /// </summary>
    private readonly Lock _lock = new();

    /// <summary>kvm_create_lapic + kvm_lapic_reset(vcpu, false) as kvm_arch_vcpu_create runs them.</summary>
    public Lapic(int vcpuId, Func<bool>? lint0Reenabled = null)
    {
        _vcpuId = vcpuId;
        _lint0Reenabled = lint0Reenabled ?? (() => true);
        // "if (!init_event) kvm_apic_set_xapic_id(apic, vcpu->vcpu_id)": bits 31:24 (the low 8 bits of the id).
        Set(ApicId, (uint)vcpuId << 24);
        Set(Lvr, Version);
        // "for (i = 0; i < apic->nr_lvt_entries; i++) kvm_lapic_set_reg(apic, APIC_LVTx(i), APIC_LVT_MASKED)".
        for (int i = 0; i < NrLvtEntries; i++) Set(LvtT + 0x10 * i, LvtMasked);
        // "if (kvm_vcpu_is_reset_bsp(vcpu) && kvm_check_has_quirk(vcpu->kvm, KVM_X86_QUIRK_LINT0_REENABLED))": the BSP's
        // LINT0 is ExtINT, unmasked (SET_APIC_DELIVERY_MODE(0, APIC_MODE_EXTINT) = 0x700); kvm_vcpu_is_reset_bsp:
        // vcpu_id == kvm->arch.bsp_vcpu_id (0). The quirk is looked up at each reset (X86/Quirks.cs).
        if (vcpuId == 0 && _lint0Reenabled()) Set(Lvt0, 0x700);
        // "kvm_apic_set_dfr(apic, 0xffffffffU); apic_set_spiv(apic, 0xff)"; TPR, LDR, ESR, ICR, TDCR, TMICT, IRR/ISR/TMR 0.
        Set(Dfr, 0xffffffff);
        Set(Spiv, 0xff);
    }

    private readonly int _vcpuId;

    // kvm_check_has_quirk(vcpu->kvm, KVM_X86_QUIRK_LINT0_REENABLED), asked at each reset.
    private readonly Func<bool> _lint0Reenabled;

    /// <summary>kvm_x2apic_id: "return apic-&gt;vcpu-&gt;vcpu_id".</summary>
    public uint X2apicId => (uint)_vcpuId;

    private X86Cpu? _cpu;
    private Func<bool>? _advertiseDirectedEoi;

    /// <summary>The APIC base the register page reflects (the last one <see cref="Sync"/> applied).</summary>
    private ulong _appliedBase = 0xfee0_0000 | BaseEnable;

    /// <summary>
    /// Connects the APIC to its vCPU (at creation): the APIC base and CPUID are the vCPU's, the guest TSC (the
    /// TSC-deadline timer) its MSR state's; <paramref name="advertiseDirectedEoi"/> is the VM's rule for
    /// APIC_LVR_DIRECTED_EOI (<see cref="X2apicApi.AdvertiseDirectedEoi"/>).
    /// </summary>
    public void Attach(X86Cpu cpu, Func<bool> advertiseDirectedEoi)
    {
        lock (_lock)
        {
            _cpu = cpu;
            _advertiseDirectedEoi = advertiseDirectedEoi;
            _appliedBase = cpu.Sregs.apic_base;
        }
    }

    private ulong CurrentBase => _cpu?.Sregs.apic_base ?? _appliedBase;

    /// <summary>kvm_apic_hw_enabled: MSR_IA32_APICBASE_ENABLE.</summary>
    private bool HwEnabled => (CurrentBase & BaseEnable) != 0;

    /// <summary>apic_x2apic_mode: X2APIC_ENABLE in the APIC base (only with ENABLE: EXTD alone is refused).</summary>
    public bool X2apicMode
    {
        get
        {
            using var scope = _lock.EnterScope();
            Sync();
            return X2apicModeLocked;
        }
    }

    private bool X2apicModeLocked => (_appliedBase & BaseX2apic) != 0;

    /// <summary>cpuid.c guest_cpu_cap_has(vcpu, X86_FEATURE_X2APIC): CPUID.1:ECX bit 21 of the vCPU's table.</summary>
    public static bool GuestHasX2apic(X86Cpu cpu) => Leaf1Ecx(cpu, 21);

    private static bool Leaf1Ecx(X86Cpu cpu, int bit)
    {
        foreach (var e in cpu.Cpuid.Entries)
            if (e.function == 1 && e.index == 0) return (e.ecx & (1u << bit)) != 0;
        return false;
    }

    /// <summary>
    /// kvm_apic_set_version, which kvm_lapic_reset, kvm_apic_set_state and kvm_vcpu_after_set_cpuid (KVM_SET_CPUID2)
    /// run: APIC_LVR_DIRECTED_EOI for a guest whose CPUID has x2APIC when the VM advertises it — by default
    /// "!ioapic_in_kernel(vcpu-&gt;kvm)", a split irqchip; KVM_CAP_X2APIC_API's suppress-EOI-broadcast flags force it on
    /// or off (X2apicApi.AdvertiseDirectedEoi).
    /// </summary>
    private uint CurrentVersion =>
        _cpu is { } cpu && GuestHasX2apic(cpu) && (_advertiseDirectedEoi?.Invoke() ?? false) ? Version | LvrDirectedEoi : Version;

    /// <summary>
    /// The vCPU's <see cref="CpuidTable.Generation"/> LVR was last computed with (<see cref="SetVersion"/>): every
    /// successful KVM_SET_CPUID2, an identical table too, recomputes it. -1 before the first computation.
    /// </summary>
    private int _versionCpuidGeneration = -1;

    /// <summary>
    /// kvm_apic_set_version: LVR from <see cref="CurrentVersion"/> now, and only now — a KVM_CAP_X2APIC_API flag enabled
    /// later leaves LVR as it is until the next reset, KVM_SET_LAPIC or KVM_SET_CPUID2, an identical table included
    /// (found by the differential fuzzer on Linux 6.18: a split irqchip, CPUID with x2APIC — LVR 0x01050014 — then
    /// flags 0xA (DISABLE_SUPPRESS_EOI_BROADCAST): KVM_GET_LAPIC still reads 0x01050014; the same CPUID again: 0x50014).
    /// </summary>
    private void SetVersion()
    {
        _versionCpuidGeneration = _cpu is { } cpu ? cpu.Cpuid.Generation : -1;
        Set(Lvr, CurrentVersion);
    }

    /// <summary><see cref="SyncVersion"/> under the lock, before the VM's directed-EOI rule changes (X2apicApi.Enable).</summary>
    public void SyncVersionNow()
    {
        using var scope = _lock.EnterScope();
        SyncVersion();
    }

    /// <summary>
    /// kvm_vcpu_after_set_cpuid's kvm_apic_set_version, noticed lazily: the vCPU's CPUID table is not the one LVR was
    /// computed with (X2apicApi.Enable syncs every vCPU first, so the flags are the ones KVM_SET_CPUID2 saw).
    /// </summary>
    private void SyncVersion()
    {
        if (_cpu is not { } cpu) return;
        if (_versionCpuidGeneration != cpu.Cpuid.Generation) SetVersion();
    }

    /// <summary>
    /// __kvm_apic_set_base's register side of an APIC base change, applied lazily (under the lock): enabling sets the
    /// xAPIC ID (kvm_apic_set_xapic_id(apic, vcpu_id)); setting EXTD sets ID = vcpu_id and LDR = ((id &gt;&gt; 4) &lt;&lt; 16) |
    /// (1 &lt;&lt; (id &amp; 0xf)) (kvm_apic_set_x2apic_id, kvm_apic_calc_x2apic_ldr); clearing it with the APIC still enabled
    /// sets the xAPIC ID again. Also refreshes LVR (<see cref="CurrentVersion"/>). True when the map is dirty.
    /// </summary>
    private bool Sync()
    {
        SyncVersion();
        ulong now = CurrentBase;
        ulong old = _appliedBase;
        if (now == old) return false;
        _appliedBase = now;
        bool dirty = false;
        if (((old ^ now) & BaseEnable) != 0)
        {
            if ((now & BaseEnable) != 0) Set(ApicId, (uint)_vcpuId << 24);
            dirty = true;
        }
        if (((old ^ now) & BaseX2apic) != 0)
        {
            if ((now & BaseX2apic) != 0)
            {
                Set(ApicId, (uint)_vcpuId);
                Set(Ldr, X2apicLdr((uint)_vcpuId));
            }
            else if ((now & BaseEnable) != 0)
            {
                Set(ApicId, (uint)_vcpuId << 24);
            }
            dirty = true;
        }
        return dirty;
    }

    /// <summary>kvm_apic_calc_x2apic_ldr: "((id &gt;&gt; 4) &lt;&lt; 16) | (1 &lt;&lt; (id &amp; 0xf))".</summary>
    public static uint X2apicLdr(uint id) => ((id >> 4) << 16) | (1u << (int)(id & 0xf));

    /// <summary>
    /// kvm_apic_set_base after it accepted a changed value (the APIC base MSR, KVM_SET_SREGS): the register side of the
    /// change, then kvm_recalculate_apic_map — which rebuilds only a dirty map, and __kvm_apic_set_base marks it dirty
    /// only when ENABLE or EXTD changed. Moving the base alone leaves the map as it was, so a vCPU created after the last
    /// rebuild stays out of it (probed on this host: the differential fuzzer's seed 18, an MSI to a new vCPU after its
    /// base moved to 0xFED00000, delivered to none — 0).
    /// </summary>
    public void ApicBaseChanged()
    {
        bool dirty;
        lock (_lock) dirty = Sync();
        if (dirty) MapDirty?.Invoke();
    }

    /// <summary>The registers the APIC map and destination matching read, after <see cref="Sync"/>.</summary>
    public ApicView View()
    {
        using var scope = _lock.EnterScope();
        Sync();
        return new ApicView(X2apicModeLocked, Get(ApicId) >> 24, (uint)_vcpuId, SoftwareEnabled, Get(Ldr), Get(Dfr));
    }

    /// <summary>
    /// KVM_REQ_SCAN_IOAPIC made for this vCPU (kvm_make_scan_ioapic_request: kvm_recalculate_apic_map, and on a split
    /// irqchip kvm_arch_irq_routing_update); vcpu_enter_guest runs vcpu_scan_ioapic (<see cref="SplitIoapicRoutes.Scan"/>).
    /// </summary>
    public bool ScanIoapicRequested
    {
        get => Volatile.Read(ref _scanIoapicRequested);
        set => Volatile.Write(ref _scanIoapicRequested, value);
    }

    private bool _scanIoapicRequested;

    /// <summary>vcpu-&gt;arch.ioapic_handled_vectors as a split irqchip's last vcpu_scan_ioapic left it (256 bits).</summary>
    internal ulong[] IoapicHandledVectors { get; } = new ulong[4];

    /// <summary>Whether the vCPU's APIC was hardware-enabled at the last kvm_recalculate_apic_map (VmIrqchip).</summary>
    public bool HwEnabledInMap { get; set; } = true;

    /// <summary>
    /// kvm-&gt;arch.apic_map_dirty = DIRTY followed by kvm_recalculate_apic_map (end of kvm_lapic_reg_write,
    /// kvm_apic_set_state, kvm_lapic_reset): called outside the register lock.
    /// </summary>
    public Action? MapDirty { get; set; }

    /// <summary>kvm_apic_send_ipi(apic, icr_low, icr_high): called outside the register lock after an ICR write.</summary>
    public Action<uint, uint>? SendIpi { get; set; }

    /// <summary>
    /// apic_set_eoi → kvm_ioapic_send_eoi for an EOI written through an MSR (the EOI'd vector; the IOAPIC filters it by
    /// ioapic_handled_vectors and takes the trigger mode from TMR).
    /// </summary>
    public Action<int>? IoapicEoi { get; set; }

    /// <summary>
    /// kvm_lapic_reset(vcpu, init_event = true), from kvm_apic_accept_events' INIT: the ID and the base stay; the LVTs
    /// masked (apic_update_lvtt follows; LINT0 ExtINT again on the BSP, KVM_X86_QUIRK_LINT0_REENABLED), DFR 0xffffffff,
    /// SPIV 0xff, TPR, LDR (xAPIC mode only: "if (!apic_x2apic_mode(apic)) kvm_apic_set_ldr(apic, 0)"), ESR, ICR,
    /// ICR2, TDCR, TMICT and IRR/ISR/TMR 0; PPR recomputed.
    /// </summary>
    public void ResetForInit()
    {
        lock (_lock)
        {
            Sync();
            // "hrtimer_cancel(&apic->lapic_timer.timer)"; "atomic_set(&apic->lapic_timer.pending, 0)".
            _timerTargetNs = -1;
            _timerPending = false;
            SetVersion();
            for (int i = 0; i < NrLvtEntries; i++) Set(LvtT + 0x10 * i, LvtMasked);
            UpdateLvtt();
            if (_vcpuId == 0 && _lint0Reenabled()) Set(Lvt0, 0x700);
            Set(Dfr, 0xffffffff);
            Set(Spiv, 0xff);
            Set(TaskPri, 0);
            if (!X2apicModeLocked) Set(Ldr, 0);
            Set(Esr, 0);
            Set(Icr, 0);
            Set(Icr + 4, 0);
            Set(Icr2, 0);
            Set(Tdcr, 0);
            Set(Tmict, 0);
            for (int i = 0; i < 8; i++)
            {
                Set(Irr + 0x10 * i, 0);
                Set(Isr + 0x10 * i, 0);
                Set(Tmr + 0x10 * i, 0);
            }
            _highestIsrCache = -1; // kvm_apic_update_apicv
            UpdateDivideCount();
            UpdatePpr();
        }
        // kvm_lapic_reset: "vcpu->arch.pv_eoi.msr_val = 0;" and "vcpu->arch.apic_attention = 0;" (KVM_APIC_PV_EOI_PENDING);
        // kvm_vcpu_reset(init_event): kvm_clear_async_pf_completion_queue.
        if (_cpu is { } cpu)
        {
            cpu.Msrs.Pv.PvEoi = 0;
            cpu.Msrs.Pv.PvEoiPending = false;
            cpu.Msrs.Pv.WakeupAllQueued = false;
        }
        MapDirty?.Invoke();
    }

    public uint Get(int reg) => BinaryPrimitives.ReadUInt32LittleEndian(_regs.AsSpan(reg));

    private void Set(int reg, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_regs.AsSpan(reg), value);

    /// <summary>kvm_apic_sw_enabled: SPIV bit 8.</summary>
    public bool SoftwareEnabled => (Get(Spiv) & SpivEnabled) != 0;

    /// <summary>
    /// kvm_apic_get_state: the register page, then "__kvm_lapic_set_reg(s-&gt;regs, APIC_TMCCT, __apic_read(apic,
    /// APIC_TMCCT))" — the current count (apic_get_tmcct), 0 with no timer running or in TSC-deadline mode; then
    /// kvm_apic_state_fixup(get): in x2APIC mode without KVM_CAP_X2APIC_API's x2apic_format the ID reads x2apic_id &lt;&lt; 24
    /// (with it, the 32-bit ID as kept), and ICR2 is the 64-bit ICR's high half ("if (!kvm_x86_ops.x2apic_icr_is_split)
    /// … __kvm_lapic_set_reg(s-&gt;regs, APIC_ICR2, icr &gt;&gt; 32)"): this host's kernel keeps the x2APIC ICR as one 64-bit
    /// register at 0x300 like VMX, not split like SVM (found by the differential fuzzer on Linux 6.18 kvm_pvm: after
    /// WRMSR 0x830 = 0x2000C4A5C from the host, KVM_GET_LAPIC shows 0x304 = 2 and 0x310 = 2, and after a KVM_SET_LAPIC
    /// of a page with 0x310 = 2, 0x304 = 2).
    /// </summary>
    public void GetState(Span<byte> state, bool x2apicFormat = false)
    {
        using var scope = _lock.EnterScope();
        Sync();
        _regs.CopyTo(state);
        BinaryPrimitives.WriteUInt32LittleEndian(state[Tmcct..], CurrentCount());
        if (X2apicModeLocked && !x2apicFormat) BinaryPrimitives.WriteUInt32LittleEndian(state[ApicId..], (uint)_vcpuId << 24);
        if (X2apicModeLocked) BinaryPrimitives.WriteUInt32LittleEndian(state[Icr2..], Get(Icr + 4));
    }

    /// <summary>
    /// kvm_apic_set_state: apic_set_spiv from the state first; kvm_apic_state_fixup(set) in x2APIC mode — with
    /// x2apic_format an ID other than the vCPU's is -EINVAL (nothing else changed), without it the ID is replaced by
    /// the vCPU's; LDR is derived from it — then the page is copied, kvm_apic_set_version rewrites the version,
    /// apic_update_ppr recomputes PPR, the timer is cancelled, apic_update_lvtt, update_divide_count and
    /// __start_apic_timer(apic, APIC_TMCCT); TMCCT is 0. Returns 0 or -EINVAL.
    /// </summary>
    public long SetState(ReadOnlySpan<byte> state, bool x2apicFormat = false)
    {
        lock (_lock)
        {
            Sync();
            // "apic_set_spiv(apic, *((u32 *)(s->regs + APIC_SPIV)))" runs before the fix-up can fail.
            Set(Spiv, BinaryPrimitives.ReadUInt32LittleEndian(state[Spiv..]));
            // kvm_apic_set_state → apic_set_spiv: an enabled SPIV makes KVM_REQ_APF_READY (X86/KvmAsyncPf.cs).
            if (SoftwareEnabled && _cpu is { } apfCpu) apfCpu.Msrs.Pv.ApfReadyRequested = true;
            Span<byte> s = stackalloc byte[_regs.Length];
            state[.._regs.Length].CopyTo(s);
            if (X2apicModeLocked)
            {
                if (x2apicFormat && BinaryPrimitives.ReadUInt32LittleEndian(s[ApicId..]) != (uint)_vcpuId) return Vfs.Err.EINVAL;
                BinaryPrimitives.WriteUInt32LittleEndian(s[ApicId..], (uint)_vcpuId);
                BinaryPrimitives.WriteUInt32LittleEndian(s[Ldr..], X2apicLdr((uint)_vcpuId));
                // kvm_apic_state_fixup(set) without x2apic_icr_is_split: "icr = ICR | (u64)ICR2 << 32;
                // __kvm_lapic_set_reg64(s->regs, APIC_ICR, icr)" (see GetState).
                BinaryPrimitives.WriteUInt32LittleEndian(s[(Icr + 4)..], BinaryPrimitives.ReadUInt32LittleEndian(s[Icr2..]));
            }
            // apic_update_ppr runs before kvm_apic_update_apicv recounts isr_count (and drops highest_isr_cache), so
            // apic_find_highest_isr answers from the state being replaced: -1 when the old ISR was empty, the cached
            // vector when one was taken since, else the new ISR's highest (lapic.c kvm_apic_set_state,
            // apic_find_highest_isr). Seen on Linux 6.18: ISR 0x40 set into an empty ISR leaves PPR 0.
            int oldIsrCount = CountVectors(Isr), oldCache = _highestIsrCache;
            s.CopyTo(_regs);
            SetVersion();
            UpdatePpr(oldIsrCount == 0 ? -1 : oldCache >= 0 ? oldCache : HighestVector(Isr));
            _highestIsrCache = -1;
            // cancel_apic_timer; apic_update_lvtt; update_divide_count; __start_apic_timer(apic, APIC_TMCCT): the state's
            // TMICT restarts the timer (the remaining count from its TMCCT when that is below TMICT).
            _timerTargetNs = -1;
            _timerPending = false;
            UpdateLvtt();
            UpdateDivideCount();
            uint tmcct = Get(Tmcct);
            Set(Tmcct, 0);
            StartTimer(tmcct != 0 && tmcct < Get(Tmict) ? tmcct : 0);
        }
        // "atomic_set_release(&apic->vcpu->kvm->arch.apic_map_dirty, DIRTY); kvm_recalculate_apic_map(vcpu->kvm)".
        MapDirty?.Invoke();
        return 0;
    }

    /// <summary>
    /// lapic.c __apic_update_ppr: "if ((tpr &amp; 0xf0) &gt;= (isrv &amp; 0xf0)) ppr = tpr &amp; 0xff; else ppr = isrv &amp; 0xf0"
    /// with isrv the highest vector in ISR (0 for none).
    /// </summary>
    private void UpdatePpr() => UpdatePpr(HighestVector(Isr));

    /// <summary>__apic_update_ppr with <paramref name="isr"/> as apic_find_highest_isr's answer.</summary>
    private void UpdatePpr(int isr)
    {
        uint tpr = Get(TaskPri);
        uint isrv = isr < 0 ? 0 : (uint)isr;
        Set(ProcPri, (tpr & 0xf0) >= (isrv & 0xf0) ? tpr & 0xff : isrv & 0xf0);
    }

    /// <summary>
    /// apic-&gt;highest_isr_cache: the vector apic_set_isr last put in ISR (the highest there), -1 after apic_clear_isr,
    /// kvm_lapic_reset and kvm_apic_set_state (kvm_apic_update_apicv). Without APICv isr_count is ISR's population.
    /// </summary>
    private int _highestIsrCache = -1;

    /// <summary>lapic.c count_vectors: the bits set in a 256-bit register array.</summary>
    private int CountVectors(int reg)
    {
        int n = 0;
        for (int word = 0; word < 8; word++) n += System.Numerics.BitOperations.PopCount(Get(reg + 0x10 * word));
        return n;
    }

    /// <summary>lapic.c find_highest_vector over a 256-bit register array (eight 32-bit words 16 bytes apart).</summary>
    private int HighestVector(int reg)
    {
        for (int word = 7; word >= 0; word--)
        {
            uint v = Get(reg + 0x10 * word);
            if (v != 0) return word * 32 + 31 - System.Numerics.BitOperations.LeadingZeroCount(v);
        }
        return -1;
    }

    /// <summary>
    /// lapic.c kvm_lapic_set_tpr (from x86.c kvm_set_cr8 with the APIC in the kernel): TPR = CR8 &lt;&lt; 4, then PPR.
    /// </summary>
    public void SetCr8(ulong cr8)
    {
        using var scope = _lock.EnterScope();
        Set(TaskPri, (uint)(cr8 & 0x0f) << 4);
        UpdatePpr();
    }

    /// <summary>lapic.c kvm_lapic_get_cr8: TPR bits 7:4.</summary>
    public ulong Cr8 => (Get(TaskPri) & 0xf0) >> 4;

    /// <summary>True when <paramref name="vector"/>'s bit is set in the 256-bit register at <paramref name="reg"/>.</summary>
    public bool TestVector(int reg, int vector) => (Get(reg + 0x10 * (vector >> 5)) & (1u << (vector & 31))) != 0;

    private void SetVector(int reg, int vector, bool value)
    {
        int off = reg + 0x10 * (vector >> 5);
        uint bit = 1u << (vector & 31);
        Set(off, value ? Get(off) | bit : Get(off) & ~bit);
    }

    /// <summary>
    /// The fixed / lowest-priority arm of lapic.c __apic_accept_irq: a level-triggered message with level 0, or an APIC
    /// that is not enabled (apic_enabled: software and hardware enable), accepts nothing (0); else TMR follows the
    /// trigger mode and the vector is set in IRR (the deliver_interrupt of a vCPU without APICv: kvm_lapic_set_irr) — 1.
    /// </summary>
    public int AcceptFixed(int vector, bool levelTriggered, bool level, bool hardwareEnabled)
    {
        if (levelTriggered && !level) return 0;
        using var scope = _lock.EnterScope();
        if (!SoftwareEnabled || !hardwareEnabled) return 0;
        SetVector(Tmr, vector, levelTriggered);
        SetVector(Irr, vector, true);
        return 1;
    }

    /// <summary>lapic.c kvm_apic_has_interrupt: an IRR vector whose priority class is above PPR's (nothing taken).</summary>
    public bool HasInterrupt()
    {
        lock (_lock)
        {
            UpdatePpr();
            int irr = HighestVector(Irr);
            return irr >= 0 && (irr & 0xf0) > (Get(ProcPri) & 0xf0);
        }
    }

    /// <summary>
    /// lapic.c kvm_apic_has_interrupt + kvm_get_apic_interrupt, for a present (hardware-enabled) APIC: the highest
    /// vector in IRR whose priority class is above PPR's ("if (irrv != -1 &amp;&amp; (irrv &amp; 0xF0) &lt;= (ppr &amp; 0xF0))
    /// irrv = -1") moves from IRR to ISR and PPR is recomputed. -1 when none.
    /// </summary>
    public int TakeInterrupt()
    {
        using var scope = _lock.EnterScope();
        UpdatePpr();
        int irr = HighestVector(Irr);
        if (irr < 0 || (irr & 0xf0) <= (Get(ProcPri) & 0xf0)) return -1;
        SetVector(Irr, irr, false);
        SetVector(Isr, irr, true);
        _highestIsrCache = irr; // apic_set_isr
        UpdatePpr();
        return irr;
    }

    /// <summary>kvm_xapic_id: bits 31:24 of the ID register.</summary>
    public uint XapicId => Get(ApicId) >> 24;
}
