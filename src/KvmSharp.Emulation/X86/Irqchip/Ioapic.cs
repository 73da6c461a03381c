// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/ioapic.c: the in-kernel IOAPIC's struct kvm_ioapic_state (KVM_GET/SET_IRQCHIP chip 2), its pins as
/// KVM_IRQ_LINE and irqfds drive them (one level per IRQ source) and the EOI of a level-triggered vector from a local
/// APIC (ack notifiers, remote IRR, re-delivery). Unmasked pins deliver through <see cref="ApicDelivery"/>. The guest's
/// MMIO window at base_address (IOREGSEL/IOWIN) is not modelled.
/// </summary>
internal sealed class Ioapic
{
    /// <summary>IOAPIC_SUCCESSIVE_IRQ_MAX_COUNT (ioapic.c).</summary>
    private const int SuccessiveIrqMaxCount = 10000;

    private readonly KvmMain.Kvm _kvm;

    /// <summary>ioapic-&gt;irq_states: per pin, one bit per IRQ source whose line is high.</summary>
    private readonly ulong[] _irqStates = new ulong[NumPins];

    /// <summary>ioapic-&gt;irq_eoi: successive EOIs that found the line still high.</summary>
    private readonly int[] _irqEoi = new int[NumPins];

    public const int NumPins = 24;
    /// <summary>IOAPIC_DEFAULT_BASE_ADDRESS.</summary>
    public const ulong DefaultBaseAddress = 0xfec00000;

    private const ulong Mask = 1UL << 16, TrigLevel = 1UL << 15, RemoteIrr = 1UL << 14;

    public ulong BaseAddress = DefaultBaseAddress;
    public uint IoRegSel, Id, Irr, Pad;
    /// <summary>ioapic-&gt;irr_delivered: edge pins delivered since they were raised (hidden from KVM_GET_IRQCHIP).</summary>
    public uint IrrDelivered;
    public readonly ulong[] Redirtbl = new ulong[NumPins];

    /// <summary>kvm_ioapic_init → kvm_ioapic_reset: every entry masked ("redirtbl[i].fields.mask = 1"), base 0xfec00000.</summary>
    public Ioapic(KvmMain.Kvm kvm)
    {
        _kvm = kvm;
        for (int i = 0; i < NumPins; i++) Redirtbl[i] = Mask;
    }

    /// <summary>kvm_get_ioapic: "memcpy(state, ioapic, …); state-&gt;irr &amp;= ~ioapic-&gt;irr_delivered" (216 bytes).</summary>
    public void Write(Span<byte> state)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(state, BaseAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(state[8..], IoRegSel);
        BinaryPrimitives.WriteUInt32LittleEndian(state[12..], Id);
        BinaryPrimitives.WriteUInt32LittleEndian(state[16..], Irr & ~IrrDelivered);
        BinaryPrimitives.WriteUInt32LittleEndian(state[20..], Pad);
        for (int i = 0; i < NumPins; i++) BinaryPrimitives.WriteUInt64LittleEndian(state[(24 + 8 * i)..], Redirtbl[i]);
    }

    /// <summary>
    /// kvm_set_ioapic: "memcpy(ioapic, state, …); ioapic-&gt;irr = 0; ioapic-&gt;irr_delivered = 0; …
    /// kvm_ioapic_inject_all(ioapic, state-&gt;irr)": the given irr bits are raised again, pin by pin (probed: every
    /// field, pad too, reads back as written while the pins stay masked).
    /// </summary>
    public void Read(ReadOnlySpan<byte> state, KvmMain.Kvm kvm)
    {
        BaseAddress = BinaryPrimitives.ReadUInt64LittleEndian(state);
        IoRegSel = BinaryPrimitives.ReadUInt32LittleEndian(state[8..]);
        Id = BinaryPrimitives.ReadUInt32LittleEndian(state[12..]);
        uint irr = BinaryPrimitives.ReadUInt32LittleEndian(state[16..]);
        Pad = BinaryPrimitives.ReadUInt32LittleEndian(state[20..]);
        for (int i = 0; i < NumPins; i++) Redirtbl[i] = BinaryPrimitives.ReadUInt64LittleEndian(state[(24 + 8 * i)..]);
        Irr = 0;
        IrrDelivered = 0;
        // kvm_ioapic_inject_all: "for_each_set_bit(idx, &irr, IOAPIC_NUM_PINS) ioapic_set_irq(ioapic, idx, 1, true)".
        for (int pin = 0; pin < NumPins; pin++)
            if ((irr & (1u << pin)) != 0) SetLine(pin, level: true, kvm);
    }

    /// <summary>
    /// ioapic.c kvm_ioapic_set_irq: "irq_level = __kvm_irq_line_state(&amp;ioapic-&gt;irq_states[irq], irq_source_id,
    /// level)" — the line is the OR of every source's level — then ioapic_set_irq. Caller holds the kernel lock.
    /// </summary>
    public int SetIrq(int pin, int sourceId, bool level)
    {
        if (level) _irqStates[pin] |= 1UL << sourceId;
        else _irqStates[pin] &= ~(1UL << sourceId);
        return SetLine(pin, _irqStates[pin] != 0, _kvm);
    }

    /// <summary>
    /// ioapic.c ioapic_set_irq: a low line clears irr and answers 1; a high one sets irr — an edge pin already in irr
    /// answers 0 (coalesced) — and is serviced. (The RTC coalescing of GSI 8 needs a guest that EOIs: not modelled.)
    /// </summary>
    private int SetLine(int pin, bool level, KvmMain.Kvm kvm)
    {
        uint mask = 1u << pin;
        bool edge = (Redirtbl[pin] & TrigLevel) == 0;
        if (!level)
        {
            Irr &= ~mask;
            return 1;
        }
        uint oldIrr = Irr;
        Irr |= mask;
        if (edge)
        {
            IrrDelivered &= ~mask;
            if (oldIrr == Irr) return 0;
        }
        return Service(pin, kvm);
    }

    /// <summary>
    /// ioapic.c kvm_ioapic_update_eoi for a local APIC's EOI of a level-triggered <paramref name="vector"/> (lapic.c
    /// apic_set_eoi → kvm_ioapic_send_eoi with the vector in TMR), under the kernel lock since the vCPU thread calls it.
    /// </summary>
    public void Eoi(int vector)
    {
        lock (_kvm.Kernel.SyncRoot)
        {
            for (int pin = 0; pin < NumPins; pin++)
                if ((byte)Redirtbl[pin] == vector) UpdateEoiOne(pin);
        }
    }

    /// <summary>
    /// ioapic.c kvm_ioapic_update_eoi_one with trigger_mode level: kvm_notify_acked_irq(kvm, KVM_IRQCHIP_IOAPIC, pin)
    /// first (an irqfd resampler lowers its line and signals its resamplefds; upstream drops ioapic-&gt;lock for it, so a
    /// re-assertion meanwhile waits in irr); then "ent-&gt;fields.remote_irr = 0" (the entry's own trigger mode is only an
    /// ASSERT) and, if the pin is unmasked and its line still high, ioapic_service delivers it again — after
    /// IOAPIC_SUCCESSIVE_IRQ_MAX_COUNT successive ones upstream delays that by HZ / 100 (eoi_inject work); here it is
    /// delivered at once then too. A line found low resets the count. (rtc_irq_eoi, directed EOI in SPIV and the
    /// per-vCPU ioapic_handled_vectors filter of kvm_ioapic_handles_vector are not modelled.)
    /// </summary>
    private void UpdateEoiOne(int pin)
    {
        IrqRouting.NotifyAckedIrq(_kvm, KvmSharp.Abi.KvmConstants.KVM_IRQCHIP_IOAPIC, (uint)pin);
        Redirtbl[pin] &= ~RemoteIrr;
        if ((Redirtbl[pin] & Mask) == 0 && (Irr & (1u << pin)) != 0)
        {
            if (++_irqEoi[pin] == SuccessiveIrqMaxCount) _irqEoi[pin] = 0;
            Service(pin, _kvm);
        }
        else
        {
            _irqEoi[pin] = 0;
        }
    }

    /// <summary>
    /// ioapic.c ioapic_service: a masked pin, or a level pin with remote IRR set, answers -1; else the entry is sent
    /// as an APIC interrupt (kvm_irq_delivery_to_apic) — edge pins are marked irr_delivered, level pins that reached a
    /// local APIC get remote IRR.
    /// </summary>
    private int Service(int pin, KvmMain.Kvm kvm)
    {
        ulong e = Redirtbl[pin];
        bool level = (e & TrigLevel) != 0;
        if ((e & Mask) != 0 || (level && (e & RemoteIrr) != 0)) return -1;
        var irq = new ApicIrq(
            Vector: (byte)e, DeliveryMode: (int)((e >> 8) & 7), LogicalDest: (e & (1UL << 11)) != 0,
            LevelTriggered: level, Level: true, DestId: (uint)(e >> 56));
        if (!level) IrrDelivered |= 1u << pin;
        int ret = ApicDelivery.ToApic(kvm, irq);
        if (ret != 0 && level) Redirtbl[pin] |= RemoteIrr;
        return ret;
    }
}
