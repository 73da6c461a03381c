// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/lapic.c: a vCPU's in-kernel local APIC (kvm_create_lapic, made by kvm_arch_vcpu_create when the VM
/// has an irqchip, full or split), kept as its 1 KiB register page — what KVM_GET/SET_LAPIC carry. Modelled: reset
/// values, KVM_GET/SET_LAPIC's fix-ups, interrupt acceptance into IRR/TMR, the xAPIC page's registers, the one-shot and
/// periodic timer. Not modelled: the TSC-deadline timer, x2APIC mode and its MSRs.
/// </summary>
internal sealed class Lapic
{
    // Register offsets (arch/x86/include/asm/apicdef.h).
    internal const int ApicId = 0x20, Lvr = 0x30, TaskPri = 0x80, ProcPri = 0xa0, Ldr = 0xd0, Dfr = 0xe0, Spiv = 0xf0;
    internal const int Isr = 0x100, Tmr = 0x180, Irr = 0x200, LvtT = 0x320, Lvt0 = 0x350, Tmcct = 0x390;

    /// <summary>APIC_SPIV_APIC_ENABLED: the software enable.</summary>
    internal const uint SpivEnabled = 1u << 8;

    /// <summary>
    /// kvm_apic_set_version: "v = APIC_VERSION | ((apic-&gt;nr_lvt_entries - 1) &lt;&lt; 16)" — 0x14, six LVT entries
    /// (no CMCI: the vCPU's MCG_CAP has no MCG_CMCI_P); no directed EOI without x2APIC in the guest's CPUID.
    /// Probed on this host: 0x00050014.
    /// </summary>
    internal const uint Version = 0x00050014;

    private const int NrLvtEntries = 6;

    private readonly byte[] _regs = new byte[Abi.KvmConstants.KVM_APIC_REG_SIZE];

    /// <summary>
    /// apic-&gt;regs is written by the vCPU (MMIO, delivery) and by VM ioctls on other threads (KVM_SIGNAL_MSI, KVM_IRQ_LINE):
    /// every access of the page goes through this lock (the kernel uses atomic bit operations on IRR).
    /// </summary>
    private readonly Lock _lock = new();

    /// <summary>kvm_create_lapic + kvm_lapic_reset(vcpu, false) as kvm_arch_vcpu_create runs them.</summary>
    public Lapic(int vcpuId)
    {
        _vcpuId = vcpuId;
        // "if (!init_event) kvm_apic_set_xapic_id(apic, vcpu->vcpu_id)": bits 31:24 (the low 8 bits of the id).
        Set(ApicId, (uint)vcpuId << 24);
        Set(Lvr, Version);
        // "for (i = 0; i < apic->nr_lvt_entries; i++) kvm_lapic_set_reg(apic, APIC_LVTx(i), APIC_LVT_MASKED)".
        for (int i = 0; i < NrLvtEntries; i++) Set(LvtT + 0x10 * i, 1u << 16);
        // KVM_X86_QUIRK_LINT0_REENABLED, on by default: the BSP's LINT0 is ExtINT, unmasked (SET_APIC_DELIVERY_MODE(0,
        // APIC_MODE_EXTINT) = 0x700). kvm_vcpu_is_reset_bsp: vcpu_id == kvm->arch.bsp_vcpu_id (0).
        if (vcpuId == 0) Set(Lvt0, 0x700);
        // "kvm_apic_set_dfr(apic, 0xffffffffU); apic_set_spiv(apic, 0xff)"; TPR, LDR, ESR, ICR, TDCR, TMICT, IRR/ISR/TMR 0.
        Set(Dfr, 0xffffffff);
        Set(Spiv, 0xff);
    }

    private readonly int _vcpuId;

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
    /// kvm_lapic_reset(vcpu, init_event = true), from kvm_apic_accept_events' INIT: the xAPIC ID and the base stay;
    /// the LVTs masked (LINT0 ExtINT again on the BSP, KVM_X86_QUIRK_LINT0_REENABLED), DFR 0xffffffff, SPIV 0xff,
    /// TPR, LDR (xAPIC mode: kvm_apic_set_ldr(apic, 0)), ESR, ICR, ICR2, TDCR, TMICT and IRR/ISR/TMR 0; PPR 0.
    /// </summary>
    public void ResetForInit()
    {
        lock (_lock)
        {
            // "hrtimer_cancel(&apic->lapic_timer.timer)"; TDCR 0 → divide count 2.
            _timerTargetNs = -1;
            _timerPeriodNs = 0;
            _divideCount = 2;
            uint id = Get(ApicId);
            Array.Clear(_regs);
            Set(ApicId, id);
            Set(Lvr, Version);
            for (int i = 0; i < NrLvtEntries; i++) Set(LvtT + 0x10 * i, 1u << 16);
            if (_vcpuId == 0) Set(Lvt0, 0x700);
            Set(Dfr, 0xffffffff);
            Set(Spiv, 0xff);
        }
        MapDirty?.Invoke();
    }

    // The APIC timer (lapic.c struct kvm_timer): lapic_timer.period and target_expiration in host-monotonic ns
    // (-1: not armed), apic->divide_count.
    internal const int Tmict = 0x380, Tdcr = 0x3e0;
    private const int TimerOneShot = 0, TimerPeriodic = 1, TimerTscDeadline = 2;

    /// <summary>min_timer_period_us (module parameter, default 200): the shortest periodic period.</summary>
    private const long MinTimerPeriodNs = 200_000;

    private long _timerPeriodNs;
    private long _timerTargetNs = -1;
    private int _divideCount = 2;

    private static long NowNs => (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1e9 / System.Diagnostics.Stopwatch.Frequency));

    /// <summary>
    /// apic-&gt;lapic_timer.timer_mode_mask: 0 from kvm_create_lapic (kzalloc) until KVM_SET_CPUID2 —
    /// kvm_vcpu_after_set_cpuid: 3 &lt;&lt; 17 with X86_FEATURE_TSC_DEADLINE_TIMER in the guest's CPUID, else 1 &lt;&lt; 17.
    /// So a vCPU whose CPUID was never set has only the one-shot timer (probed: LVTT 0x20040 reads back 0x40).
    /// </summary>
    public Func<uint>? TimerModeMask { get; set; }

    /// <summary>apic-&gt;lapic_timer.timer_mode (apic_update_lvtt): LVTT &amp; timer_mode_mask, bits 18:17.</summary>
    private int TimerMode => (int)(((Get(LvtT) & (TimerModeMask?.Invoke() ?? 0)) >> 17) & 3);

    /// <summary>update_divide_count: TDCR bits 3, 1:0 → 2, 4, 8, 16, 32, 64, 128 or 1.</summary>
    private void UpdateDivideCount()
    {
        uint tmp1 = Get(Tdcr) & 0xf;
        uint tmp2 = ((tmp1 & 0x3) | ((tmp1 & 0x8) >> 1)) + 1;
        _divideCount = 1 << (int)(tmp2 & 0x7);
    }

    /// <summary>tmict_to_ns: count × kvm-&gt;arch.apic_bus_cycle_ns (APIC_BUS_CYCLE_NS_DEFAULT, 1) × divide_count.</summary>
    private long TmictToNs(uint count) => (long)count * _divideCount;

    /// <summary>
    /// start_apic_timer → set_target_expiration (one-shot and periodic; TSC-deadline mode is not modelled): period =
    /// tmict_to_ns(TMICT), 0 leaves the timer off; limit_periodic_timer_frequency; target = now + period (or the
    /// <paramref name="remainingCount"/> of a restored TMCCT). Called under the register lock.
    /// </summary>
    private void StartTimer(uint remainingCount)
    {
        _timerTargetNs = -1;
        _timerPeriodNs = 0;
        if (TimerMode == TimerTscDeadline) return;
        _timerPeriodNs = TmictToNs(Get(Tmict));
        if (_timerPeriodNs == 0) return;
        if (TimerMode == TimerPeriodic && _timerPeriodNs < MinTimerPeriodNs) _timerPeriodNs = MinTimerPeriodNs;
        _timerTargetNs = NowNs + (remainingCount != 0 ? TmictToNs(remainingCount) : _timerPeriodNs);
    }

    /// <summary>
    /// apic_get_tmcct: 0 when TMICT or the period is 0; else the time left (0 once past) modulo the period, in bus
    /// cycles × divide_count. Called under the register lock.
    /// </summary>
    private uint CurrentCount()
    {
        if (Get(Tmict) == 0 || _timerPeriodNs == 0 || _timerTargetNs < 0) return 0;
        long remaining = Math.Max(0, _timerTargetNs - NowNs);
        return (uint)((remaining % _timerPeriodNs) / _divideCount);
    }

    /// <summary>kvm_cpu_has_pending_timer / apic_has_pending_timer: the armed timer's target has passed.</summary>
    public bool TimerDue => Volatile.Read(ref _timerTargetNs) is >= 0 and var t && NowNs >= t;

    /// <summary>
    /// apic_timer_expired + kvm_inject_pending_timer_irqs → kvm_apic_local_deliver(APIC_LVTT): with the APIC
    /// hardware-enabled and LVTT unmasked, __apic_accept_irq of LVTT's delivery mode and vector (level 1, LVTT's trigger)
    /// — fixed here (IRR); then a periodic timer advances its target by the period
    /// (advance_periodic_target_expiration) and a one-shot one is done (target_expiration = 0). True when a vector was
    /// accepted.
    /// </summary>
    public bool FireTimerIfDue(bool hardwareEnabled)
    {
        if (!TimerDue) return false;
        lock (_lock)
        {
            long now = NowNs;
            if (_timerTargetNs < 0 || now < _timerTargetNs) return false;
            if (TimerMode == TimerPeriodic && _timerPeriodNs > 0)
            {
                _timerTargetNs += _timerPeriodNs;
                if (_timerTargetNs <= now) _timerTargetNs = now + _timerPeriodNs;
            }
            else
            {
                _timerTargetNs = -1;
            }
            uint lvtt = Get(LvtT);
            if (!hardwareEnabled || (lvtt & (1u << 16)) != 0) return false;
            // __apic_accept_irq(APIC_DM_FIXED, …): apic_enabled, TMR by the trigger, IRR.
            if (!SoftwareEnabled || ((lvtt >> 8) & 7) != 0) return false;
            bool level = (lvtt & (1u << 15)) != 0;
            SetVector(Tmr, (int)(lvtt & 0xff), level);
            SetVector(Irr, (int)(lvtt & 0xff), true);
            return true;
        }
    }

    public uint Get(int reg) => BinaryPrimitives.ReadUInt32LittleEndian(_regs.AsSpan(reg));

    private void Set(int reg, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_regs.AsSpan(reg), value);

    /// <summary>kvm_apic_sw_enabled: SPIV bit 8.</summary>
    public bool SoftwareEnabled => (Get(Spiv) & SpivEnabled) != 0;

    /// <summary>
    /// kvm_apic_get_state: the register page, then "__kvm_lapic_set_reg(s-&gt;regs, APIC_TMCCT, __apic_read(apic,
    /// APIC_TMCCT))" — the current count (apic_get_tmcct), 0 with no timer running.
    /// </summary>
    public void GetState(Span<byte> state)
    {
        using var scope = _lock.EnterScope();
        _regs.CopyTo(state);
        BinaryPrimitives.WriteUInt32LittleEndian(state[Tmcct..], CurrentCount());
    }

    /// <summary>
    /// kvm_apic_set_state for an xAPIC-mode APIC (kvm_apic_state_fixup changes nothing then): the page is copied, then
    /// kvm_apic_set_version rewrites the version, apic_update_ppr recomputes PPR from TPR and ISR, and TMCCT is 0.
    /// Never fails in xAPIC mode.
    /// </summary>
    public void SetState(ReadOnlySpan<byte> state)
    {
        lock (_lock)
        {
            state[.._regs.Length].CopyTo(_regs);
            Set(Lvr, Version);
            UpdatePpr();
            // "update_divide_count(apic); __start_apic_timer(apic, APIC_TMCCT)": the state's TMICT restarts the timer
            // (the remaining count from its TMCCT when that is below TMICT).
            UpdateDivideCount();
            uint tmcct = Get(Tmcct);
            Set(Tmcct, 0);
            StartTimer(tmcct != 0 && tmcct < Get(Tmict) ? tmcct : 0);
        }
        // "atomic_set_release(&apic->vcpu->kvm->arch.apic_map_dirty, DIRTY); kvm_recalculate_apic_map(vcpu->kvm)".
        MapDirty?.Invoke();
    }

    /// <summary>
    /// lapic.c __apic_update_ppr: "if ((tpr &amp; 0xf0) &gt;= (isrv &amp; 0xf0)) ppr = tpr &amp; 0xff; else ppr = isrv &amp; 0xf0"
    /// with isrv the highest vector in ISR (0 for none).
    /// </summary>
    private void UpdatePpr()
    {
        uint tpr = Get(TaskPri);
        int isr = HighestVector(Isr);
        uint isrv = isr < 0 ? 0 : (uint)isr;
        Set(ProcPri, (tpr & 0xf0) >= (isrv & 0xf0) ? tpr & 0xff : isrv & 0xf0);
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
        UpdatePpr();
        return irr;
    }

    /// <summary>
    /// lapic.c apic_mmio_read → kvm_lapic_reg_read for the xAPIC page: an access that crosses a 32-bit register
    /// ("alignment + len &gt; 4") or a register that cannot be read reads as zeros here; TMCCT is 0 (no timer);
    /// otherwise the register's bytes from the offset.
    /// </summary>
    public void MmioRead(int offset, Span<byte> data)
    {
        data.Clear();
        int alignment = offset & 0xf;
        if (alignment + data.Length > 4) return;
        using var scope = _lock.EnterScope();
        int reg = offset & ~0xf;
        uint value = reg == Tmcct ? CurrentCount() : Get(reg);
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        bytes.Slice(alignment, data.Length).CopyTo(data);
    }

    /// <summary>
    /// lapic.c apic_mmio_write → kvm_lapic_reg_write for the xAPIC page ("32/64/128 bits registers must be accessed
    /// thru 32 bits": other sizes or unaligned offsets are dropped). Modelled: ID, TPR (PPR follows), EOI (the highest
    /// in-service vector is cleared; <see cref="MmioWrite"/> returns it so a level interrupt's IOAPIC entry can lose
    /// remote IRR), LDR, DFR, SVR (clearing the enable masks every LVT), the LVTs (masked while software-disabled),
    /// ICR2, timer count and divide; an ICR write sends the IPI (<see cref="SendIpi"/>); ESR and read-only registers are ignored.
    /// Returns the EOI'd vector, or -1.
    /// </summary>
    public int MmioWrite(int offset, ReadOnlySpan<byte> data)
    {
        if (data.Length != 4 || (offset & 0xf) != 0) return -1;
        uint val = BinaryPrimitives.ReadUInt32LittleEndian(data);
        bool dirty = false, ipi = false;
        int r;
        lock (_lock) r = RegWrite(offset, val, ref dirty, ref ipi);
        // kvm_lapic_reg_write ends with kvm_recalculate_apic_map (a no-op unless the map was marked dirty).
        if (dirty) MapDirty?.Invoke();
        if (ipi) SendIpi?.Invoke(Get(0x300), Get(0x310));
        return r;
    }

    private int RegWrite(int offset, uint val, ref bool dirty, ref bool ipi)
    {
        switch (offset)
        {
            case ApicId: // kvm_apic_set_xapic_id: dirty
                Set(ApicId, val & 0xff000000);
                dirty = true;
                break;
            case TaskPri:
                Set(TaskPri, val & 0xff);
                UpdatePpr();
                break;
            case 0xb0: // APIC_EOI: apic_set_eoi
            {
                int vector = HighestVector(Isr);
                if (vector < 0) return -1;
                SetVector(Isr, vector, false);
                UpdatePpr();
                return TestVector(Tmr, vector) ? vector : -1;
            }
            case Ldr: // kvm_apic_set_ldr: dirty
                Set(Ldr, val & 0xff000000);
                dirty = true;
                break;
            case Dfr: // kvm_apic_set_dfr: dirty
                Set(Dfr, val | 0x0fffffff);
                dirty = true;
                break;
            case Spiv:
                // apic_set_spiv: "if (enabled != apic->sw_enabled) { … apic_map_dirty = DIRTY }".
                dirty = ((Get(Spiv) ^ val) & SpivEnabled) != 0;
                Set(Spiv, val & 0x3ff);
                if ((val & SpivEnabled) == 0)
                    for (int i = 0; i < NrLvtEntries; i++) Set(LvtT + 0x10 * i, Get(LvtT + 0x10 * i) | (1u << 16));
                break;
            case 0x300: // APIC_ICR: "val &= ~APIC_ICR_BUSY; kvm_apic_send_ipi(apic, val, kvm_lapic_get_reg(apic, APIC_ICR2))"
                Set(0x300, val & ~(1u << 12));
                ipi = true;
                break;
            case 0x310: // APIC_ICR2
                Set(0x310, val & 0xff000000);
                break;
            case >= LvtT and <= 0x370:
            {
                // "if (!kvm_apic_sw_enabled(apic)) val |= APIC_LVT_MASKED" (the per-LVT reserved-bit masks are not modelled).
                bool tscDeadlineBefore = TimerMode == TimerTscDeadline;
                // APIC_LVTT: "val &= (apic_lvt_mask[LVT_TIMER] | apic->lapic_timer.timer_mode_mask)" — LVT_MASK is
                // the mask, send-pending and vector bits.
                if (offset == LvtT) val &= 0x110ff | (TimerModeMask?.Invoke() ?? 0);
                Set(offset, SoftwareEnabled ? val : val | (1u << 16));
                // apic_update_lvtt: a switch into or out of TSC-deadline mode cancels the timer and clears TMICT.
                if (offset == LvtT && tscDeadlineBefore != (TimerMode == TimerTscDeadline))
                {
                    _timerTargetNs = -1;
                    _timerPeriodNs = 0;
                    Set(Tmict, 0);
                }
                break;
            }
            case Tmict:
                // "if (apic_lvtt_tscdeadline(apic)) break; cancel_apic_timer(apic); kvm_lapic_set_reg(apic, APIC_TMICT,
                // val); start_apic_timer(apic)".
                if (TimerMode == TimerTscDeadline) break;
                Set(Tmict, val);
                StartTimer(0);
                break;
            case Tdcr:
            {
                // "kvm_lapic_set_reg(apic, APIC_TDCR, val & 0xb); update_divide_count(apic); if (apic->lapic_timer.period)
                // … update_target_expiration" — the remaining time scales with the divisor.
                int old = _divideCount;
                Set(Tdcr, val & 0xb);
                UpdateDivideCount();
                if (_timerPeriodNs != 0)
                {
                    _timerPeriodNs = TmictToNs(Get(Tmict));
                    if (_timerTargetNs >= 0)
                    {
                        long now = NowNs;
                        _timerTargetNs = now + Math.Max(0, _timerTargetNs - now) * _divideCount / old;
                    }
                }
                break;
            }
        }
        return -1;
    }

    /// <summary>kvm_xapic_id: bits 31:24 of the ID register.</summary>
    public uint XapicId => Get(ApicId) >> 24;

    /// <summary>
    /// lapic.c kvm_apic_match_logical_addr in xAPIC mode: broadcast 0xff matches; else LDR bits 31:24 against the
    /// destination by DFR's model — flat (0xffffffff): any common bit; cluster (0x0fffffff): same cluster nibble and a
    /// common bit in the low one; any other DFR matches nothing.
    /// </summary>
    public bool MatchLogical(uint mda)
    {
        if (mda == 0xff) return true;
        uint logicalId = Get(Ldr) >> 24;
        return Get(Dfr) switch
        {
            0xffffffff => (logicalId & mda) != 0,
            0x0fffffff => (logicalId >> 4) == (mda >> 4) && (logicalId & mda & 0xf) != 0,
            _ => false,
        };
    }
}
