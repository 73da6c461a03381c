// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>Which in-kernel interrupt controllers a VM has (x86 kvm->arch.irqchip_mode).</summary>
public enum IrqchipMode
{
    /// <summary>None: the VMM models PIC, IOAPIC and local APICs and injects with <see cref="Vcpu.InjectInterrupt"/>.</summary>
    None,

    /// <summary>KVM_CREATE_IRQCHIP: PIC pair, IOAPIC and a local APIC per vCPU in the kernel.</summary>
    Full,

    /// <summary>KVM_CAP_SPLIT_IRQCHIP: local APICs in the kernel; PIC and IOAPIC in the VMM.</summary>
    Split,
}

/// <summary>The chips KVM_GET/SET_IRQCHIP address (kvm_irqchip.chip_id).</summary>
public enum IrqchipId : uint
{
    /// <summary>KVM_IRQCHIP_PIC_MASTER: the first 8259A (pins 0–7).</summary>
    PicMaster = KvmConstants.KVM_IRQCHIP_PIC_MASTER,

    /// <summary>KVM_IRQCHIP_PIC_SLAVE: the second 8259A (its pins 0–7 are GSIs 8–15).</summary>
    PicSlave = KvmConstants.KVM_IRQCHIP_PIC_SLAVE,

    /// <summary>KVM_IRQCHIP_IOAPIC: the 24-pin IOAPIC.</summary>
    Ioapic = KvmConstants.KVM_IRQCHIP_IOAPIC,
}

/// <summary>
/// One GSI routing entry for <see cref="Vm.SetGsiRouting"/> (struct kvm_irq_routing_entry): use
/// <see cref="ToIrqchip"/> or <see cref="ToMsi"/>.
/// </summary>
/// <param name="Gsi">The GSI (below 4096, KVM_MAX_IRQ_ROUTES).</param>
/// <param name="Entry">The kernel struct as it is passed.</param>
public readonly record struct GsiRoute(uint Gsi, kvm_irq_routing_entry Entry)
{
    /// <summary>KVM_IRQ_ROUTING_IRQCHIP: <paramref name="gsi"/> drives <paramref name="pin"/> of <paramref name="chip"/> (full irqchip only).</summary>
    public static GsiRoute ToIrqchip(uint gsi, IrqchipId chip, uint pin)
    {
        var e = new kvm_irq_routing_entry { gsi = gsi, type = KvmConstants.KVM_IRQ_ROUTING_IRQCHIP };
        e.u[0] = (uint)chip;
        e.u[1] = pin;
        return new GsiRoute(gsi, e);
    }

    /// <summary>
    /// KVM_IRQ_ROUTING_MSI: raising <paramref name="gsi"/> sends this MSI (x86: address 0xFEExx000 with the destination
    /// APIC ID in bits 19:12; data bits 7:0 the vector). <paramref name="devid"/> sets KVM_MSI_VALID_DEVID.
    /// </summary>
    public static GsiRoute ToMsi(uint gsi, ulong address, uint data, uint? devid = null)
    {
        var e = new kvm_irq_routing_entry { gsi = gsi, type = KvmConstants.KVM_IRQ_ROUTING_MSI };
        e.u[0] = (uint)address;
        e.u[1] = (uint)(address >> 32);
        e.u[2] = data;
        if (devid is uint d)
        {
            e.flags = KvmConstants.KVM_MSI_VALID_DEVID;
            e.u[3] = d;
        }
        return new GsiRoute(gsi, e);
    }
}

/// <summary>One 8259A's registers (struct kvm_pic_state), from <see cref="Vm.GetPicState"/>.</summary>
/// <param name="State">The kernel struct: irr, imr, isr, elcr … as i8259.c keeps them.</param>
public readonly record struct PicState(kvm_pic_state State)
{
    /// <summary>Interrupt request register.</summary>
    public byte Irr => State.irr;

    /// <summary>Interrupt mask register.</summary>
    public byte Imr => State.imr;

    /// <summary>In-service register.</summary>
    public byte Isr => State.isr;

    /// <summary>Edge/level control (1 = level-triggered).</summary>
    public byte Elcr => State.elcr;
}

/// <summary>The IOAPIC's state (struct kvm_ioapic_state), from <see cref="Vm.GetIoapicState"/>.</summary>
/// <param name="State">The kernel struct.</param>
public readonly record struct IoapicState(kvm_ioapic_state State)
{
    /// <summary>The MMIO base the guest sees it at (0xFEC00000 by default).</summary>
    public ulong BaseAddress => State.base_address;

    /// <summary>The IOAPIC ID register.</summary>
    public uint Id => State.id;

    /// <summary>Pins with a pending request (edge pins already delivered are not shown).</summary>
    public uint Irr => State.irr;

    /// <summary>Redirection entry <paramref name="pin"/> (0–23) as its 64-bit value.</summary>
    public IoapicRedirection Redirection(int pin)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pin);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(pin, KvmConstants.KVM_IOAPIC_NUM_PINS);
        return new IoapicRedirection(State.redirtbl[pin]);
    }
}

/// <summary>An IOAPIC redirection-table entry.</summary>
/// <param name="Bits">The entry's 64 bits.</param>
public readonly record struct IoapicRedirection(ulong Bits)
{
    /// <summary>Bits 7:0.</summary>
    public byte Vector => (byte)Bits;

    /// <summary>Bits 10:8 (0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT).</summary>
    public int DeliveryMode => (int)((Bits >> 8) & 7);

    /// <summary>Bit 15: level-triggered.</summary>
    public bool LevelTriggered => (Bits & (1UL << 15)) != 0;

    /// <summary>Bit 14: remote IRR (a level interrupt awaits its EOI).</summary>
    public bool RemoteIrr => (Bits & (1UL << 14)) != 0;

    /// <summary>Bit 16: masked (every pin after reset).</summary>
    public bool Masked => (Bits & (1UL << 16)) != 0;

    /// <summary>Bits 63:56: the destination APIC ID (or logical set).</summary>
    public byte Destination => (byte)(Bits >> 56);
}
