// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/ioapic.c: the in-kernel IOAPIC's struct kvm_ioapic_state (KVM_GET/SET_IRQCHIP chip 2) and its
/// pins as KVM_IRQ_LINE drives them. Unmasked pins deliver through <see cref="ApicDelivery"/>. The guest's MMIO
/// window at base_address (IOREGSEL/IOWIN) and EOI broadcast from the local APIC are not modelled.
/// </summary>
internal sealed class Ioapic
{
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
    public Ioapic()
    {
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
            if ((irr & (1u << pin)) != 0) SetIrq(pin, level: true, kvm);
    }

    /// <summary>
    /// ioapic.c ioapic_set_irq: a low line clears irr and answers 1; a high one sets irr — an edge pin already in irr
    /// answers 0 (coalesced) — and is serviced. (The RTC coalescing of GSI 8 needs a guest that EOIs: not modelled.)
    /// </summary>
    public int SetIrq(int pin, bool level, KvmMain.Kvm kvm)
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
    /// ioapic.c kvm_ioapic_update_eoi_one for an EOI of <paramref name="vector"/>: every level-triggered entry with that
    /// vector loses remote IRR ("ent-&gt;fields.remote_irr = 0"). Re-servicing a line that is still high is not modelled.
    /// </summary>
    public void Eoi(int vector)
    {
        for (int pin = 0; pin < NumPins; pin++)
            if ((byte)Redirtbl[pin] == vector && (Redirtbl[pin] & TrigLevel) != 0) Redirtbl[pin] &= ~RemoteIrr;
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
