// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/lapic.c: a vCPU's in-kernel local APIC (kvm_create_lapic, made by kvm_arch_vcpu_create when the VM
/// has an irqchip, full or split), kept as its 1 KiB register page — what KVM_GET/SET_LAPIC carry. Modelled: reset
/// values, KVM_GET/SET_LAPIC's fix-ups, interrupt acceptance into IRR/TMR. Not modelled: the timer (TMCCT reads 0),
/// x2APIC mode, the guest's MMIO/MSR accesses, ISR/EOI processing and injection into the guest.
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

    public uint Get(int reg) => BinaryPrimitives.ReadUInt32LittleEndian(_regs.AsSpan(reg));

    private void Set(int reg, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_regs.AsSpan(reg), value);

    /// <summary>kvm_apic_sw_enabled: SPIV bit 8.</summary>
    public bool SoftwareEnabled => (Get(Spiv) & SpivEnabled) != 0;

    /// <summary>
    /// kvm_apic_get_state: the register page, then "__kvm_lapic_set_reg(s-&gt;regs, APIC_TMCCT, __apic_read(apic,
    /// APIC_TMCCT))" — the current count, 0 with no timer running (the emulator runs none).
    /// </summary>
    public void GetState(Span<byte> state)
    {
        using var scope = _lock.EnterScope();
        _regs.CopyTo(state);
        BinaryPrimitives.WriteUInt32LittleEndian(state[Tmcct..], 0);
    }

    /// <summary>
    /// kvm_apic_set_state for an xAPIC-mode APIC (kvm_apic_state_fixup changes nothing then): the page is copied, then
    /// kvm_apic_set_version rewrites the version, apic_update_ppr recomputes PPR from TPR and ISR, and TMCCT is 0.
    /// Never fails in xAPIC mode.
    /// </summary>
    public void SetState(ReadOnlySpan<byte> state)
    {
        using var scope = _lock.EnterScope();
        state[.._regs.Length].CopyTo(_regs);
        Set(Lvr, Version);
        UpdatePpr();
        Set(Tmcct, 0);
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
        uint value = reg == Tmcct ? 0 : Get(reg);
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        bytes.Slice(alignment, data.Length).CopyTo(data);
    }

    /// <summary>
    /// lapic.c apic_mmio_write → kvm_lapic_reg_write for the xAPIC page ("32/64/128 bits registers must be accessed
    /// thru 32 bits": other sizes or unaligned offsets are dropped). Modelled: ID, TPR (PPR follows), EOI (the highest
    /// in-service vector is cleared; <see cref="MmioWrite"/> returns it so a level interrupt's IOAPIC entry can lose
    /// remote IRR), LDR, DFR, SVR (clearing the enable masks every LVT), the LVTs (masked while software-disabled),
    /// ICR2, timer count and divide. ICR is stored but no IPI is sent; ESR and read-only registers are ignored.
    /// Returns the EOI'd vector, or -1.
    /// </summary>
    public int MmioWrite(int offset, ReadOnlySpan<byte> data)
    {
        if (data.Length != 4 || (offset & 0xf) != 0) return -1;
        uint val = BinaryPrimitives.ReadUInt32LittleEndian(data);
        using var scope = _lock.EnterScope();
        switch (offset)
        {
            case ApicId:
                Set(ApicId, val & 0xff000000);
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
            case Ldr:
                Set(Ldr, val & 0xff000000);
                break;
            case Dfr:
                Set(Dfr, val | 0x0fffffff);
                break;
            case Spiv:
                Set(Spiv, val & 0x3ff);
                if ((val & SpivEnabled) == 0)
                    for (int i = 0; i < NrLvtEntries; i++) Set(LvtT + 0x10 * i, Get(LvtT + 0x10 * i) | (1u << 16));
                break;
            case 0x300: // APIC_ICR: "val &= ~APIC_ICR_BUSY; kvm_apic_send_ipi(…)" — the IPI is not modelled
                Set(0x300, val & ~(1u << 12));
                break;
            case 0x310: // APIC_ICR2
                Set(0x310, val & 0xff000000);
                break;
            case >= LvtT and <= 0x370:
                // "if (!kvm_apic_sw_enabled(apic)) val |= APIC_LVT_MASKED" (the per-LVT reserved-bit masks are not modelled).
                Set(offset, SoftwareEnabled ? val : val | (1u << 16));
                break;
            case 0x380 or 0x3e0: // TMICT, TDCR: stored, the timer is not modelled
                Set(offset, offset == 0x3e0 ? val & 0xb : val);
                break;
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
