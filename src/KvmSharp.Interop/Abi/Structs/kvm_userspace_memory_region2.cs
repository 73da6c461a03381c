// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_userspace_memory_region2</c>, 160 bytes (KVM_SET_USER_MEMORY_REGION2). Upstream has
/// <c>__u64 pad2[14]</c> at 48; <see cref="userfault_bitmap"/> is carved out of pad2[0] by the KVM Userfault proposal
/// ("[PATCH v3 04/15] KVM: Add common infrastructure for KVM Userfaults", unmerged), so the size stays 160 and a kernel
/// without it reads the field as padding it never checks.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_userspace_memory_region2
{
    public uint slot;
    public uint flags;
    public ulong guest_phys_addr;
    public ulong memory_size;
    public ulong userspace_addr;
    public ulong guest_memfd_offset;
    public uint guest_memfd;
    public uint pad1;

    /// <summary>
    /// PROPOSAL ([PATCH v3 04/15], offset 48): the user address of the userfault bitmap, one bit per page of the slot
    /// (bit 0 = guest_phys_addr), read by KVM only while <see cref="KvmConstants.KVM_MEM_USERFAULT"/> is set.
    /// </summary>
    public ulong userfault_bitmap;

    /// <summary><c>__u64 pad2[13]</c> at 56 under the proposal (upstream: pad2[14] at 48).</summary>
    public U64x13 pad2;
}
