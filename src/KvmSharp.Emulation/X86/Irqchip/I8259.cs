// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/i8259.c: the in-kernel pair of 8259A PICs as far as userspace can see them — the 16-byte
/// struct kvm_pic_state of each chip (KVM_GET/SET_IRQCHIP) and how KVM_IRQ_LINE changes it. The guest's port I/O
/// (ICW/OCW writes, INTA) is not modelled: the emulator's guests never reach the PIC.
/// </summary>
internal sealed class I8259
{
    /// <summary>pics[0] master, pics[1] slave: each the 16 bytes of struct kvm_pic_state, in its field order.</summary>
    public readonly byte[][] Pics = [new byte[16], new byte[16]];

    // struct kvm_pic_state field offsets.
    internal const int LastIrr = 0, Irr = 1, Imr = 2, Isr = 3, PriorityAdd = 4, SpecialFullyNested = 12, Elcr = 14, ElcrMask = 15;

    /// <summary>
    /// kvm_pic_init: the state is kzalloc'ed and only elcr_mask is set ("s->pics[0].elcr_mask = 0xf8;
    /// s->pics[1].elcr_mask = 0xde;"), no reset: imr is 0 (probed on this host: 00…00f8 and 00…00de).
    /// </summary>
    public I8259()
    {
        Pics[0][ElcrMask] = 0xf8;
        Pics[1][ElcrMask] = 0xde;
    }

    /// <summary>s-&gt;irq_states: per pin 0..15, one bit per IRQ source whose line is high.</summary>
    private readonly ulong[] _irqStates = new ulong[16];

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
    /// master pin 2 ("pic_set_irq1(&amp;s-&gt;pics[0], 2, 1); pic_set_irq1(&amp;s-&gt;pics[0], 2, 0);"). The master's
    /// output to the vCPU (pic_irq_request) is not modelled.
    /// </summary>
    public void UpdateIrq()
    {
        if (GetIrq(Pics[1], isMaster: false) >= 0)
        {
            SetIrq1(Pics[0], 2, true);
            SetIrq1(Pics[0], 2, false);
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

    /// <summary>i8259.c pic_get_irq: the highest unmasked request above the in-service priority, or -1.</summary>
    private static int GetIrq(byte[] s, bool isMaster)
    {
        int priority = GetPriority(s, s[Irr] & ~s[Imr]);
        if (priority == 8) return -1;
        int mask = s[Isr];
        if (s[SpecialFullyNested] != 0 && isMaster) mask &= ~(1 << 2);
        int cur = GetPriority(s, mask);
        return priority < cur ? (priority + s[PriorityAdd]) & 7 : -1;
    }
}
