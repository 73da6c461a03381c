// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// The guest's register accesses: the xAPIC page (MMIO) and the x2APIC MSRs (lapic.c kvm_lapic_reg_read/write,
/// kvm_x2apic_msr_read/write).
/// </summary>
internal sealed partial class Lapic
{
    /// <summary>
    /// lapic.c kvm_lapic_readable_reg_mask: ID, LVR, TPR, PPR, LDR, SPIV, ISR/TMR/IRR, ESR, ICR, the six LVTs, TMICT,
    /// TMCCT, TDCR (no LVTCMCI: five LVTs plus LINT1 … six entries, no CMCI); ARBPRI, DFR and ICR2 only in xAPIC mode.
    /// </summary>
    private static bool Readable(int reg, bool x2apic) => reg switch
    {
        ApicId or Lvr or TaskPri or ProcPri or Ldr or Spiv => true,
        >= Isr and < Esr => true,
        Esr or Icr => true,
        >= LvtT and <= Tmcct => true,
        Tdcr => true,
        0x90 or Dfr or Icr2 => !x2apic,
        _ => false,
    };

    /// <summary>
    /// lapic.c apic_mmio_read → kvm_lapic_reg_read for the xAPIC page: an access that crosses a 32-bit register
    /// ("alignment + len &gt; 4") or a register that cannot be read reads as zeros here; TMCCT is the current count;
    /// PPR is recomputed (apic_update_ppr); otherwise the register's bytes from the offset. A hardware-disabled APIC or
    /// one in x2APIC mode ("if (!kvm_apic_hw_enabled(apic) || apic_x2apic_mode(apic))") reads all ones while
    /// KVM_X86_QUIRK_LAPIC_MMIO_HOLE is on (<paramref name="mmioHole"/>, the default) and does not claim the access
    /// when it is off ("return -EOPNOTSUPP": the MMIO bus, then KVM_EXIT_MMIO). Returns false when not claimed.
    /// </summary>
    public bool MmioRead(int offset, Span<byte> data, bool mmioHole)
    {
        using var scope = _lock.EnterScope();
        Sync();
        if (!HwEnabled || X2apicModeLocked)
        {
            if (!mmioHole) return false;
            data.Fill(0xff);
            return true;
        }
        data.Clear();
        int alignment = offset & 0xf;
        if (alignment + data.Length > 4) return true;
        int reg = offset & ~0xf;
        if (reg == ProcPri) UpdatePpr();
        uint value = reg == Tmcct ? CurrentCount() : Get(reg);
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        bytes.Slice(alignment, data.Length).CopyTo(data);
        return true;
    }

    /// <summary>
    /// lapic.c apic_mmio_write → kvm_lapic_reg_write for the xAPIC page ("32/64/128 bits registers must be accessed
    /// thru 32 bits": other sizes or unaligned offsets are dropped). A hardware-disabled or x2APIC-mode APIC drops every
    /// write while KVM_X86_QUIRK_LAPIC_MMIO_HOLE is on (<paramref name="mmioHole"/>) and does not claim it when the quirk
    /// is off (-EOPNOTSUPP: the MMIO bus, then KVM_EXIT_MMIO); checked before the size and alignment. Returns false when
    /// not claimed; <paramref name="eoi"/> is the EOI'd vector for kvm_ioapic_send_eoi (once the vCPU has entered the
    /// guest), else -1.
    /// </summary>
    public bool MmioWrite(int offset, ReadOnlySpan<byte> data, bool mmioHole, out int eoi)
    {
        eoi = -1;
        bool dirty = false;
        (uint Low, uint High)? ipi = null;
        lock (_lock)
        {
            Sync();
            if (!HwEnabled || X2apicModeLocked) return mmioHole;
            if (data.Length != 4 || (offset & 0xf) != 0) return true;
            RegWrite(offset & 0xff0, BinaryPrimitives.ReadUInt32LittleEndian(data), ref dirty, ref ipi, ref eoi);
        }
        // kvm_lapic_reg_write ends with kvm_recalculate_apic_map (a no-op unless the map was marked dirty).
        if (dirty) MapDirty?.Invoke();
        if (ipi is { } icr) SendIpi?.Invoke(icr.Low, icr.High);
        return true;
    }

    /// <summary>
    /// lapic.c kvm_x2apic_msr_read (x86.c kvm_get_msr_common, APIC_BASE_MSR … + 0xff; guest and host alike): 1 unless
    /// the APIC is in x2APIC mode; reg = (msr - 0x800) &lt;&lt; 4; ICR reads as one 64-bit register (ICR2 in 63:32);
    /// otherwise kvm_lapic_reg_read(reg, 4): past 0x3f0 or not readable (<see cref="Readable"/>) → 1, else the
    /// register (TMCCT the current count, PPR recomputed).
    /// </summary>
    public int X2apicMsrRead(uint msr, out ulong data)
    {
        data = 0;
        int reg = (int)((msr - 0x800) << 4);
        using var scope = _lock.EnterScope();
        Sync();
        if (!X2apicModeLocked) return 1;
        if (reg == Icr)
        {
            data = Get(Icr) | ((ulong)Get(Icr + 4) << 32); // kvm_lapic_get_reg64(apic, APIC_ICR), not split (GetState)
            return 0;
        }
        if (reg > 0x3f0 || !Readable(reg, x2apic: true)) return 1;
        if (reg == ProcPri) UpdatePpr();
        data = reg == Tmcct ? CurrentCount() : Get(reg);
        return 0;
    }

    /// <summary>X2APIC_ICR_RESERVED_BITS: GENMASK_ULL(31, 20) | GENMASK_ULL(17, 16) | BIT(13).</summary>
    private const ulong X2apicIcrReserved = 0xfff0_0000UL | 0x3_0000UL | (1UL << 13);

    /// <summary>
    /// lapic.c kvm_x2apic_msr_write → kvm_lapic_msr_write: 1 unless in x2APIC mode; ICR (0x830) is one 64-bit register —
    /// reserved bits → 1, BUSY cleared, kvm_apic_send_ipi(low, high) with the full 32-bit destination, kept split in
    /// ICR/ICR2; any other register with bits 63:32 set → 1; else kvm_lapic_reg_write, whose x2APIC refusals are: ID,
    /// LDR, DFR, ICR2, a non-zero ESR, SELF_IPI with bits above the vector, and every read-only or reserved register.
    /// </summary>
    public int X2apicMsrWrite(uint msr, ulong data)
    {
        int reg = (int)((msr - 0x800) << 4);
        bool dirty = false;
        (uint Low, uint High)? ipi = null;
        int eoi = -1, r;
        lock (_lock)
        {
            Sync();
            if (!X2apicModeLocked) return 1;
            if (reg == Icr)
            {
                if ((data & X2apicIcrReserved) != 0) return 1;
                data &= ~(1UL << 12);
                Set(Icr, (uint)data);
                Set(Icr + 4, (uint)(data >> 32)); // kvm_lapic_set_reg64(apic, APIC_ICR, data), not split (GetState)
                ipi = ((uint)data, (uint)(data >> 32));
                r = 0;
            }
            else if ((data >> 32) != 0)
            {
                return 1;
            }
            else
            {
                r = RegWrite(reg, (uint)data, ref dirty, ref ipi, ref eoi);
            }
        }
        if (dirty) MapDirty?.Invoke();
        if (ipi is { } icr) SendIpi?.Invoke(icr.Low, icr.High);
        if (eoi >= 0) IoapicEoi?.Invoke(eoi);
        return r;
    }

    /// <summary>
    /// lapic.c kvm_lapic_reg_write (under the lock, after <see cref="Sync"/>): 0 when taken, 1 when refused (an xAPIC
    /// page write ignores it). Modelled: ID, TPR (PPR follows), EOI (the highest in-service vector is cleared;
    /// <paramref name="eoi"/> is it for kvm_ioapic_send_eoi), LDR, DFR, SVR (clearing the enable masks every LVT), the LVTs
    /// (masked while software-disabled, apic_lvt_mask), ICR (xAPIC: the IPI is <paramref name="ipi"/>), ICR2, ESR,
    /// SELF_IPI, timer count and divide.
    /// </summary>
    private int RegWrite(int reg, uint val, ref bool dirty, ref (uint Low, uint High)? ipi, ref int eoi)
    {
        bool x2 = X2apicModeLocked;
        switch (reg)
        {
            case ApicId: // kvm_apic_set_xapic_id: dirty; read-only in x2APIC mode
                if (x2) return 1;
                Set(ApicId, val & 0xff000000);
                dirty = true;
                return 0;
            case TaskPri:
                Set(TaskPri, val & 0xff);
                UpdatePpr();
                return 0;
            case Eoi: // apic_set_eoi
            {
                int vector = HighestVector(Isr);
                if (vector < 0) return 0;
                SetVector(Isr, vector, false);
                _highestIsrCache = -1; // apic_clear_isr
                UpdatePpr();
                // kvm_ioapic_send_eoi: "if (!kvm_ioapic_handles_vector(apic, vector)) return;" — the vCPU's
                // ioapic_handled_vectors is filled by vcpu_scan_ioapic, which only vcpu_enter_guest runs (on
                // KVM_REQ_SCAN_IOAPIC): a vCPU that never entered the guest has it empty, so a host EOI (KVM_SET_MSRS
                // of MSR 0x80b) tells the IOAPIC nothing — no remote-IRR clear, no ack notifier, no resamplefd (found
                // by the differential fuzzer on Linux 6.18: pin 20 level to 0x40 with a resampling irqfd, signalled,
                // 0x40 put in ISR and TMR by KVM_SET_LAPIC, host EOI → ISR cleared, IOAPIC entry 0xC040 and irr kept,
                // resamplefd 0). After an entry the IOAPIC filters the vector itself (Ioapic.SendEoi: level entries and
                // edge entries with an ack notifier that target this vCPU) and takes the trigger mode from TMR.
                if (_cpu?.Cpuid.HasRun ?? true) eoi = vector;
                return 0;
            }
            case Ldr: // kvm_apic_set_ldr: dirty
                if (x2) return 1;
                Set(Ldr, val & 0xff000000);
                dirty = true;
                return 0;
            case Dfr: // kvm_apic_set_dfr: dirty
                if (x2) return 1;
                Set(Dfr, val | 0x0fffffff);
                dirty = true;
                return 0;
            case Spiv:
            {
                // "u32 mask = 0x3ff; if (kvm_lapic_get_reg(apic, APIC_LVR) & APIC_LVR_DIRECTED_EOI) mask |=
                // APIC_SPIV_DIRECTED_EOI"; apic_set_spiv: "if (enabled != apic->sw_enabled) { … apic_map_dirty = DIRTY }".
                uint mask = 0x3ff | ((Get(Lvr) & LvrDirectedEoi) != 0 ? SpivDirectedEoi : 0);
                dirty = ((Get(Spiv) ^ val) & SpivEnabled) != 0;
                Set(Spiv, val & mask);
                if ((val & SpivEnabled) == 0)
                {
                    for (int i = 0; i < NrLvtEntries; i++) Set(LvtT + 0x10 * i, Get(LvtT + 0x10 * i) | LvtMasked);
                    UpdateLvtt();
                    _timerPending = false;
                }
                // apic_set_spiv: "/* Check if there are APF page ready requests pending */ if (enabled)
                // kvm_make_request(KVM_REQ_APF_READY, apic->vcpu);" (X86/KvmAsyncPf.cs).
                if ((val & SpivEnabled) != 0 && _cpu is { } cpu) cpu.Msrs.Pv.ApfReadyRequested = true;
                return 0;
            }
            case Icr: // "val &= ~APIC_ICR_BUSY; kvm_apic_send_ipi(apic, val, kvm_lapic_get_reg(apic, APIC_ICR2))"
                Set(Icr, val & ~(1u << 12));
                ipi = (Get(Icr), Get(Icr2));
                return 0;
            case Icr2:
                if (x2) return 1;
                Set(Icr2, val & 0xff000000);
                return 0;
            case LvtT:
                // "if (!kvm_apic_sw_enabled(apic)) val |= APIC_LVT_MASKED; val &= (apic_lvt_mask[LVT_TIMER] |
                // apic->lapic_timer.timer_mode_mask); kvm_lapic_set_reg(apic, APIC_LVTT, val); apic_update_lvtt(apic)".
                if (!SoftwareEnabled) val |= LvtMasked;
                Set(LvtT, val & (LvtMask[0] | (TimerModeMask?.Invoke() ?? 0)));
                UpdateLvtt();
                return 0;
            case > LvtT and <= 0x370:
                if (!SoftwareEnabled) val |= LvtMasked;
                Set(reg, val & LvtMask[(reg - LvtT) >> 4]);
                return 0;
            case Tmict:
                // "if (apic_lvtt_tscdeadline(apic)) break; cancel_apic_timer(apic); kvm_lapic_set_reg(apic, APIC_TMICT,
                // val); start_apic_timer(apic)".
                if (_timerMode == TimerTscDeadline) return 0;
                Set(Tmict, val);
                StartTimer(0);
                return 0;
            case Tdcr:
            {
                // "kvm_lapic_set_reg(apic, APIC_TDCR, val & 0xb); update_divide_count(apic); if (apic->divide_count !=
                // old_divisor && apic->lapic_timer.period) … update_target_expiration" — the remaining time scales.
                int old = _divideCount;
                Set(Tdcr, val & 0xb);
                UpdateDivideCount();
                if (_divideCount != old && _timerPeriodNs != 0)
                {
                    _timerPeriodNs = TmictToNs(Get(Tmict));
                    if (_timerMode == TimerPeriodic && _timerPeriodNs < MinTimerPeriodNs) _timerPeriodNs = MinTimerPeriodNs;
                    if (_timerTargetNs >= 0)
                    {
                        long now = NowNs;
                        _timerTargetNs = now + Math.Max(0, _timerTargetNs - now) * _divideCount / old;
                    }
                }
                return 0;
            }
            case Esr: // "if (apic_x2apic_mode(apic) && val != 0) ret = 1"
                return x2 && val != 0 ? 1 : 0;
            case SelfIpi:
                // "Self-IPI exists only when x2APIC is enabled.  Bits 7:0 hold the vector, everything else is reserved":
                // kvm_apic_send_ipi(apic, APIC_DEST_SELF | val, 0).
                if (!x2 || (val & ~0xffu) != 0) return 1;
                ipi = ((1u << 18) | val, 0);
                return 0;
            default:
                return 1;
        }
    }
}
