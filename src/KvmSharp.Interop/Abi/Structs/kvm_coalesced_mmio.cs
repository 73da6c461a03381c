// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_coalesced_mmio_zone</c>, 16 bytes (KVM_REGISTER_COALESCED_MMIO / KVM_UNREGISTER_COALESCED_MMIO, VM
/// ioctls): <c>__u64 addr; __u32 size; union { __u32 pad; __u32 pio; }</c>. Guest writes that fall wholly inside
/// [<see cref="addr"/>, +<see cref="size"/>) of the MMIO space (of the port space with <see cref="pio"/> = 1) are
/// queued in the VM's coalesced MMIO ring instead of exiting.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_coalesced_mmio_zone
{
    public ulong addr;
    public uint size;

    /// <summary>The union's <c>pio</c> (formerly <c>pad</c>): 0 = MMIO, 1 = port I/O; anything else is EINVAL.</summary>
    public uint pio;
}

/// <summary>
/// <c>struct kvm_coalesced_mmio</c>, 24 bytes: one queued write — <c>__u64 phys_addr; __u32 len; union { __u32 pad;
/// __u32 pio; }; __u8 data[8]</c>. Only the first <see cref="len"/> bytes of <see cref="data"/> are written.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_coalesced_mmio
{
    public ulong phys_addr;
    public uint len;
    public uint pio;
    public U8x8 data;
}

/// <summary>
/// <c>struct kvm_coalesced_mmio_ring</c>'s header: <c>__u32 first, last; struct kvm_coalesced_mmio
/// coalesced_mmio[]</c>, filling one page. KVM appends at <see cref="last"/>; userspace consumes from
/// <see cref="first"/>; the ring is empty when they are equal and one entry is always left free.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_coalesced_mmio_ring
{
    public uint first;
    public uint last;
}
