// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary><c>struct kvm_userspace_memory_region2</c>, 160 bytes (KVM_SET_USER_MEMORY_REGION2).</summary>
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
    public U64x14 pad2;
}
