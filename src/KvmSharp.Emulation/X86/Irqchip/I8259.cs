// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/i8259.c: the in-kernel pair of 8259A PICs — the 16-byte struct kvm_pic_state of each chip
/// (KVM_GET/SET_IRQCHIP), how KVM_IRQ_LINE changes it, the master's output to the vCPUs (s-&gt;output, taken by
/// <see cref="ReadIrq"/> as kvm_pic_read_irq's INTA) and the guest's port I/O (<see cref="I8259Ports"/>: ICW1–4,
/// OCW1–3, poll mode, ELCR). The caller holds the kernel lock (the kernel's pic_lock).
/// </summary>
internal sealed class I8259
{
    /// <summary>pics[0] master, pics[1] slave: each the 16 bytes of struct kvm_pic_state, in its field order.</summary>
    public readonly byte[][] Pics = [new byte[16], new byte[16]];

    // struct kvm_pic_state field offsets (struct kvm_kpic_state starts with the same fields).
    internal const int LastIrr = 0, Irr = 1, Imr = 2, Isr = 3, PriorityAdd = 4, IrqBase = 5, ReadRegSelect = 6, Poll = 7,
        SpecialMask = 8, InitState = 9, AutoEoi = 10, RotateOnAutoEoi = 11, SpecialFullyNested = 12, Init4 = 13, Elcr = 14, ElcrMask = 15;

    private readonly KvmMain.Kvm? _kvm;

    /// <summary>
    /// kvm_pic_init: the state is kzalloc'ed and only elcr_mask is set ("s->pics[0].elcr_mask = 0xf8;
    /// s->pics[1].elcr_mask = 0xde;"), no reset: imr is 0 (probed on this host: 00…00f8 and 00…00de).
    /// <paramref name="kvm"/> is the VM whose ack notifiers and vCPUs the PIC reaches (null: neither).
    /// </summary>
    public I8259(KvmMain.Kvm? kvm = null)
    {
        _kvm = kvm;
        Pics[0][ElcrMask] = 0xf8;
        Pics[1][ElcrMask] = 0xde;
    }

    /// <summary>s-&gt;irq_states: per pin 0..15, one bit per IRQ source whose line is high.</summary>
    private readonly ulong[] _irqStates = new ulong[16];

    /// <summary>s-&gt;output: the master asks the CPU for an interrupt (pic_irq_request).</summary>
    public bool Output { get; private set; }

    /// <summary>
    /// kvm_pic_set_irq (the routing entry's set for a PIC pin 0..15): "irq_level = __kvm_irq_line_state(&amp;s-&gt;irq_states[irq],
    /// irq_source_id, level)" (the OR of every source's level), pic_set_irq1 on the pin's chip, then pic_update_irq.
    /// Returns pic_set_irq1's answer: -1 masked, 1 newly raised or not an edge change, 0 already requested.
    /// </summary>
    public int SetIrq(int pin, int sourceId, bool level)
    {
        if (level) _irqStates[pin] |= 1UL << sourceId;
        else _irqStates[pin] &= ~(1UL << sourceId);
        int ret = SetIrq1(Pics[pin >> 3], pin & 7, _irqStates[pin] != 0);
        UpdateIrq();
        return ret;
    }

    /// <summary>
    /// i8259.c pic_set_irq1: level-triggered pins (elcr) follow the line; edge-triggered pins latch irr on a 0→1
    /// change of last_irr. "ret = 1" unless the request was already in irr; -1 when imr masks the pin.
    /// </summary>
    private static int SetIrq1(byte[] s, int irq, bool level)
    {
        int mask = 1 << irq, ret = 1;
        if ((s[Elcr] & mask) != 0)
        {
            if (level)
            {
                ret = (s[Irr] & mask) == 0 ? 1 : 0;
                s[Irr] |= (byte)mask;
                s[LastIrr] |= (byte)mask;
            }
            else
            {
                s[Irr] &= (byte)~mask;
                s[LastIrr] &= (byte)~mask;
            }
        }
        else if (level)
        {
            if ((s[LastIrr] & mask) == 0)
            {
                ret = (s[Irr] & mask) == 0 ? 1 : 0;
                s[Irr] |= (byte)mask;
            }
            s[LastIrr] |= (byte)mask;
        }
        else
        {
            s[LastIrr] &= (byte)~mask;
        }
        return (s[Imr] & mask) != 0 ? -1 : ret;
    }

    /// <summary>
    /// i8259.c pic_update_irq (also kvm_pic_update_irq after KVM_SET_IRQCHIP): a pending slave request is an edge on
    /// master pin 2 ("pic_set_irq1(&amp;s-&gt;pics[0], 2, 1); pic_set_irq1(&amp;s-&gt;pics[0], 2, 0);"), then
    /// pic_irq_request(irq &gt;= 0) sets the output; a rising output wakes the first vCPU that accepts PIC interrupts
    /// (pic_unlock: wakeup_needed → kvm_apic_accept_pic_intr → KVM_REQ_EVENT + kvm_vcpu_kick).
    /// </summary>
    public void UpdateIrq()
    {
        if (GetIrq(Pics[1], isMaster: false) >= 0)
        {
            SetIrq1(Pics[0], 2, true);
            SetIrq1(Pics[0], 2, false);
        }
        bool wasOutput = Output;
        Output = GetIrq(Pics[0], isMaster: true) >= 0;
        if (Output && !wasOutput && _kvm is not null) WakeAcceptingVcpu(_kvm);
    }

    private static void WakeAcceptingVcpu(KvmMain.Kvm kvm)
    {
        foreach (var v in kvm.Irqchip.Online)
        {
            if (v.Lapic is not { } apic || !ApicInjection.AcceptsPicInterrupt(v, apic)) continue;
            v.Kick();
            return;
        }
    }

    /// <summary>i8259.c get_priority: the rotation-relative priority of the highest bit in mask, 8 for none.</summary>
    private static int GetPriority(byte[] s, int mask)
    {
        if (mask == 0) return 8;
        int priority = 0;
        while ((mask & (1 << ((priority + s[PriorityAdd]) & 7))) == 0) priority++;
        return priority;
    }

    /// <summary>
    /// i8259.c pic_get_irq: the highest unmasked request above the in-service priority, or -1 (special mask mode is
    /// recorded by OCW3 but not used by the kernel's priority resolution).
    /// </summary>
    private static int GetIrq(byte[] s, bool isMaster)
    {
        int priority = GetPriority(s, s[Irr] & ~s[Imr]);
        if (priority == 8) return -1;
        int mask = s[Isr];
        if (s[SpecialFullyNested] != 0 && isMaster) mask &= ~(1 << 2);
        int cur = GetPriority(s, mask);
        return priority < cur ? (priority + s[PriorityAdd]) & 7 : -1;
    }

    /// <summary>
    /// i8259.c pic_clear_isr: the bit leaves isr, then kvm_notify_acked_irq(kvm, SELECT_PIC(irq), irq) with the
    /// slave's pins numbered 8..15 (an irqfd resampler on the GSI lowers its line and signals its resamplefds).
    /// </summary>
    private void ClearIsr(int chip, int irq)
    {
        Pics[chip][Isr] &= (byte)~(1 << irq);
        if (_kvm is null) return;
        int pin = irq + 8 * chip;
        IrqRouting.NotifyAckedIrq(_kvm, pin < 8 ? Abi.KvmConstants.KVM_IRQCHIP_PIC_MASTER : Abi.KvmConstants.KVM_IRQCHIP_PIC_SLAVE, (uint)pin);
    }

    /// <summary>
    /// i8259.c pic_intack: isr gets the bit; an edge-triggered request leaves irr ("We don't clear a level sensitive
    /// interrupt here"); in auto-EOI mode the bit is cleared again (with rotation when rotate_on_auto_eoi).
    /// </summary>
    private void IntAck(int chip, int irq)
    {
        var s = Pics[chip];
        s[Isr] |= (byte)(1 << irq);
        if ((s[Elcr] & (1 << irq)) == 0) s[Irr] &= (byte)~(1 << irq);
        if (s[AutoEoi] != 0)
        {
            if (s[RotateOnAutoEoi] != 0) s[PriorityAdd] = (byte)((irq + 1) & 7);
            ClearIsr(chip, irq);
        }
    }

    /// <summary>
    /// i8259.c kvm_pic_read_irq (kvm_cpu_get_extint with the full irqchip): the master's request is acknowledged — a
    /// cascade (pin 2) acknowledges the slave's request too, or is a spurious slave IRQ 7 — and the vector is the
    /// chip's irq_base plus the pin; no request at all is a spurious master IRQ 7. Then pic_update_irq.
    /// </summary>
    public int ReadIrq()
    {
        int intno;
        int irq = GetIrq(Pics[0], isMaster: true);
        if (irq >= 0)
        {
            IntAck(0, irq);
            if (irq == 2)
            {
                int irq2 = GetIrq(Pics[1], isMaster: false);
                if (irq2 >= 0) IntAck(1, irq2);
                else irq2 = 7;
                intno = Pics[1][IrqBase] + irq2;
            }
            else
            {
                intno = Pics[0][IrqBase] + irq;
            }
        }
        else
        {
            intno = Pics[0][IrqBase] + 7;
        }
        UpdateIrq();
        return intno & 0xff;
    }

    /// <summary>
    /// i8259.c pic_ioport_write for chip <paramref name="chip"/> (0 master, 1 slave) at port bit 0 <paramref name="a0"/>:
    /// A0=0 with bit 4 is ICW1 (init4 from bit 0; last_irr, imr, priority_add, special_mask, read_reg_select cleared;
    /// "s->irr &amp;= s->elcr" drops edge requests, whose isr is cleared through pic_clear_isr when a vCPU accepts PIC
    /// interrupts; without ICW4, special_fully_nested_mode and auto_eoi cleared; init_state 1); A0=0 with bit 3 is
    /// OCW3 (poll, read_reg_select when bit 1, special_mask when bit 6); otherwise OCW2 by its command bits 7:5 — 0/4
    /// rotate-on-auto-EOI off/on, 1/5 non-specific EOI (5 rotates), 3 specific EOI, 6 set priority, 7 specific EOI
    /// with rotation, 2 nothing. A0=1 is OCW1 (imr; the mask notifiers of each pin whose bit changed fire) in normal
    /// mode, else ICW2 (irq_base = val &amp; 0xf8), ICW3 (next: ICW4 when init4) and ICW4 (special_fully_nested_mode
    /// bit 4, auto_eoi bit 1).
    /// </summary>
    public void IoportWrite(int chip, int a0, byte val)
    {
        var s = Pics[chip];
        if (a0 == 0)
        {
            if ((val & 0x10) != 0)
            {
                byte edgeIrr = (byte)(s[Irr] & ~s[Elcr]);
                s[Init4] = (byte)(val & 1);
                s[LastIrr] = 0;
                s[Irr] &= s[Elcr];
                s[Imr] = 0;
                s[PriorityAdd] = 0;
                s[SpecialMask] = 0;
                s[ReadRegSelect] = 0;
                if (s[Init4] == 0)
                {
                    s[SpecialFullyNested] = 0;
                    s[AutoEoi] = 0;
                }
                s[InitState] = 1;
                // "kvm_for_each_vcpu(i, vcpu, s->pics_state->kvm) if (kvm_apic_accept_pic_intr(vcpu)) found = true; …
                // if (found) for (irq …) if (edge_irr & (1 << irq)) pic_clear_isr(s, irq)".
                if (_kvm is not null && _kvm.Irqchip.Online.Any(v => v.Lapic is { } a && ApicInjection.AcceptsPicInterrupt(v, a)))
                {
                    for (int irq = 0; irq < 8; irq++)
                        if ((edgeIrr & (1 << irq)) != 0) ClearIsr(chip, irq);
                }
            }
            else if ((val & 0x08) != 0)
            {
                if ((val & 0x04) != 0) s[Poll] = 1;
                if ((val & 0x02) != 0) s[ReadRegSelect] = (byte)(val & 1);
                if ((val & 0x40) != 0) s[SpecialMask] = (byte)((val >> 5) & 1);
            }
            else
            {
                int cmd = val >> 5;
                switch (cmd)
                {
                    case 0 or 4:
                        s[RotateOnAutoEoi] = (byte)(cmd >> 2);
                        break;
                    case 1 or 5:
                    {
                        int priority = GetPriority(s, s[Isr]);
                        if (priority == 8) break;
                        int irq = (priority + s[PriorityAdd]) & 7;
                        if (cmd == 5) s[PriorityAdd] = (byte)((irq + 1) & 7);
                        ClearIsr(chip, irq);
                        UpdateIrq();
                        break;
                    }
                    case 3:
                        ClearIsr(chip, val & 7);
                        UpdateIrq();
                        break;
                    case 6:
                        s[PriorityAdd] = (byte)((val + 1) & 7);
                        UpdateIrq();
                        break;
                    case 7:
                        s[PriorityAdd] = (byte)(((val & 7) + 1) & 7);
                        ClearIsr(chip, val & 7);
                        UpdateIrq();
                        break;
                }
            }
            return;
        }
        switch (s[InitState])
        {
            case 0:
            {
                // "u8 imr_diff = s->imr ^ val, off = (s == &s->pics_state->pics[0]) ? 0 : 8; s->imr = val; for (irq …)
                // if (imr_diff & (1 << irq)) kvm_fire_mask_notifiers(kvm, SELECT_PIC(irq + off), irq + off, !!(s->imr & (1 << irq)))".
                byte diff = (byte)(s[Imr] ^ val);
                s[Imr] = val;
                if (_kvm is not null)
                {
                    for (int irq = 0; irq < 8; irq++)
                    {
                        if ((diff & (1 << irq)) == 0) continue;
                        uint pin = (uint)(irq + 8 * chip);
                        MaskNotifiers.Fire(_kvm, chip == 0 ? Abi.KvmConstants.KVM_IRQCHIP_PIC_MASTER : Abi.KvmConstants.KVM_IRQCHIP_PIC_SLAVE,
                            pin, (val & (1 << irq)) != 0);
                    }
                }
                UpdateIrq();
                break;
            }
            case 1:
                s[IrqBase] = (byte)(val & 0xf8);
                s[InitState] = 2;
                break;
            case 2:
                s[InitState] = (byte)(s[Init4] != 0 ? 3 : 0);
                break;
            case 3:
                s[SpecialFullyNested] = (byte)((val >> 4) & 1);
                s[AutoEoi] = (byte)((val >> 1) & 1);
                s[InitState] = 0;
                break;
        }
    }

    /// <summary>
    /// i8259.c pic_ioport_read at <paramref name="port"/>: in poll mode pic_poll_read (once: poll is cleared); else
    /// A0=0 reads isr or irr by read_reg_select (OCW3), A0=1 reads imr.
    /// </summary>
    public byte IoportRead(int chip, int port)
    {
        var s = Pics[chip];
        if (s[Poll] != 0)
        {
            byte r = PollRead(chip, port);
            s[Poll] = 0;
            return r;
        }
        if ((port & 1) == 0) return s[ReadRegSelect] != 0 ? s[Isr] : s[Irr];
        return s[Imr];
    }

    /// <summary>
    /// i8259.c pic_poll_read: the highest request is acknowledged and cleared at once (irr and isr; a read of the
    /// slave clears the master's cascade bit too) and read with bit 7 set; none reads 0x07.
    /// </summary>
    private byte PollRead(int chip, int port)
    {
        var s = Pics[chip];
        int ret = GetIrq(s, isMaster: chip == 0);
        if (ret < 0)
        {
            UpdateIrq();
            return 0x07;
        }
        bool slave = (port >> 7) != 0;
        if (slave)
        {
            Pics[0][Isr] &= unchecked((byte)~(1 << 2));
            Pics[0][Irr] &= unchecked((byte)~(1 << 2));
        }
        s[Irr] &= (byte)~(1 << ret);
        ClearIsr(chip, ret);
        if (slave || ret != 2) UpdateIrq();
        return (byte)(ret | 0x80);
    }

    /// <summary>i8259.c elcr_ioport_write: "s->elcr = val &amp; s->elcr_mask" (pins 0–2 of the master, 0 and 5 of the slave stay edge).</summary>
    public void ElcrWrite(int chip, byte val) => Pics[chip][Elcr] = (byte)(val & Pics[chip][ElcrMask]);

    /// <summary>i8259.c elcr_ioport_read.</summary>
    public byte ElcrRead(int chip) => Pics[chip][Elcr];
}
