// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_irq_routing</c>, the 8-byte header of KVM_SET_GSI_ROUTING: <c>__u32 nr; __u32 flags;</c> followed by
/// <c>nr</c> × <see cref="kvm_irq_routing_entry"/> (a flexible array; the request number encodes the header's size).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_irq_routing
{
    public uint nr;
    public uint flags;
}

/// <summary>
/// <c>struct kvm_irq_routing_entry</c>, 48 bytes: <c>__u32 gsi, type, flags, pad; union { irqchip, msi, adapter,
/// hv_sint, xen_evtchn; __u32 pad[8]; } u</c>. <see cref="u"/> holds the union's 32 bytes, read as
/// <see cref="kvm_irq_routing_irqchip"/> (type KVM_IRQ_ROUTING_IRQCHIP) or <see cref="kvm_irq_routing_msi"/>
/// (KVM_IRQ_ROUTING_MSI).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_irq_routing_entry
{
    public uint gsi;
    public uint type;
    public uint flags;
    public uint pad;
    public U32x8 u;
}

/// <summary><c>struct kvm_irq_routing_irqchip</c>, 8 bytes: <c>__u32 irqchip; __u32 pin;</c></summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_irq_routing_irqchip
{
    public uint irqchip;
    public uint pin;
}

/// <summary>
/// <c>struct kvm_irq_routing_msi</c>, 16 bytes: <c>__u32 address_lo, address_hi, data; union { __u32 pad; __u32 devid; }</c>
/// (devid only with KVM_MSI_VALID_DEVID in the entry's flags).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_irq_routing_msi
{
    public uint address_lo;
    public uint address_hi;
    public uint data;
    public uint devid;
}

/// <summary>8 × __u32: kvm_irq_routing_entry.u, the union's <c>__u32 pad[8]</c> view.</summary>
[InlineArray(8)]
public struct U32x8
{
    private uint _e0;
}
