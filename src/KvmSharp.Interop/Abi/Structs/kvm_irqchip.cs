// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_irqchip</c>, 520 bytes (KVM_GET_IRQCHIP / KVM_SET_IRQCHIP, x86 VM ioctls): <c>__u32 chip_id; __u32 pad;
/// union { char dummy[512]; struct kvm_pic_state pic; struct kvm_ioapic_state ioapic; } chip</c>. chip_id is
/// KVM_IRQCHIP_PIC_MASTER (0), KVM_IRQCHIP_PIC_SLAVE (1) or KVM_IRQCHIP_IOAPIC (2); the union is the raw
/// <see cref="chip"/> bytes, read as <see cref="kvm_pic_state"/> or <see cref="kvm_ioapic_state"/> by chip_id.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_irqchip
{
    public uint chip_id;
    public uint pad;
    public U8x512 chip;
}

/// <summary>
/// <c>struct kvm_pic_state</c> (arch/x86/include/uapi/asm/kvm.h), 16 bytes: one 8259A's registers as
/// arch/x86/kvm/i8259.c keeps them.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_pic_state
{
    /// <summary>Edge detection: the line levels last seen.</summary>
    public byte last_irr;
    /// <summary>Interrupt request register.</summary>
    public byte irr;
    /// <summary>Interrupt mask register.</summary>
    public byte imr;
    /// <summary>In-service register.</summary>
    public byte isr;
    public byte priority_add;
    public byte irq_base;
    public byte read_reg_select;
    public byte poll;
    public byte special_mask;
    public byte init_state;
    public byte auto_eoi;
    public byte rotate_on_auto_eoi;
    public byte special_fully_nested_mode;
    /// <summary>ICW4 expected (4-byte initialization).</summary>
    public byte init4;
    /// <summary>PIIX edge/level selection.</summary>
    public byte elcr;
    public byte elcr_mask;
}

/// <summary>
/// <c>struct kvm_ioapic_state</c> (arch/x86/include/uapi/asm/kvm.h), 216 bytes: <c>__u64 base_address; __u32 ioregsel;
/// __u32 id; __u32 irr; __u32 pad; union { __u64 bits; struct fields } redirtbl[KVM_IOAPIC_NUM_PINS]</c>. The
/// redirection entries are kept as their 64-bit value (bits 7:0 vector, 10:8 delivery mode, 11 dest mode,
/// 12 delivery status, 13 polarity, 14 remote IRR, 15 trigger mode, 16 mask, 63:56 destination).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_ioapic_state
{
    public ulong base_address;
    public uint ioregsel;
    public uint id;
    public uint irr;
    public uint pad;
    public U64x24 redirtbl;
}

/// <summary>
/// <c>struct kvm_irq_level</c>, 8 bytes (KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS): <c>union { __u32 irq; __s32 status; };
/// __u32 level</c>. KVM_IRQ_LINE_STATUS writes the delivery status over irq.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_irq_level
{
    /// <summary>In: the GSI. Out (KVM_IRQ_LINE_STATUS): the status, as a signed value (see <see cref="status"/>).</summary>
    public uint irq;
    public uint level;

    /// <summary>The union's <c>__s32 status</c> view of <see cref="irq"/>.</summary>
    public readonly int status => unchecked((int)irq);
}

/// <summary><c>struct kvm_msi</c>, 32 bytes (KVM_SIGNAL_MSI): <c>__u32 address_lo, address_hi, data, flags, devid; __u8 pad[12]</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_msi
{
    public uint address_lo;
    public uint address_hi;
    public uint data;
    public uint flags;
    public uint devid;
    public U8x12 pad;
}

/// <summary>
/// <c>struct kvm_lapic_state</c>, 1024 bytes (KVM_GET_LAPIC / KVM_SET_LAPIC, x86 vCPU ioctls): the local APIC's
/// register page (<c>char regs[KVM_APIC_REG_SIZE]</c>), each register at its xAPIC MMIO offset.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_lapic_state
{
    public U8x1024 regs;
}

/// <summary>512 bytes (kvm_irqchip.chip).</summary>
[InlineArray(512)]
public struct U8x512
{
    private byte _e0;
}

/// <summary>1024 bytes (kvm_lapic_state.regs).</summary>
[InlineArray(1024)]
public struct U8x1024
{
    private byte _e0;
}

/// <summary>12 bytes (kvm_msi.pad).</summary>
[InlineArray(12)]
public struct U8x12
{
    private byte _e0;
}

/// <summary>24 × __u64 (kvm_ioapic_state.redirtbl).</summary>
[InlineArray(24)]
public struct U64x24
{
    private ulong _e0;
}
