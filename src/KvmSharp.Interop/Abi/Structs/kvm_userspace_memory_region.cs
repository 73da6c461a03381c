// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary><c>struct kvm_userspace_memory_region</c>, 32 bytes (KVM_SET_USER_MEMORY_REGION).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_userspace_memory_region
{
    /// <summary>bits 31:16 address-space id, 15:0 slot id.</summary>
    public uint slot;
    public uint flags;
    public ulong guest_phys_addr;
    public ulong memory_size;
    public ulong userspace_addr;
}
