// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary><c>struct kvm_memory_attributes</c>, 32 bytes (KVM_SET_MEMORY_ATTRIBUTES on a VM fd).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_memory_attributes
{
    public ulong address;
    public ulong size;
    public ulong attributes;
    public ulong flags;
}

/// <summary>
/// <c>struct kvm_memory_attributes2</c>, 128 bytes, in the layout of "guest_memfd: In-place conversion support"
/// [PATCH v8 14/46] (unmerged): <c>error_offset</c> was carved out of <c>reserved[0]</c> of the March 2026 seed.
/// On a guest_memfd fd the first field is an offset into the file; on a VM fd (seed 002) it is a GPA.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_memory_attributes2
{
    /// <summary>union { address; offset; }</summary>
    public ulong offset;
    public ulong size;
    public ulong attributes;
    public ulong flags;
    /// <summary>Out: written back on failure, the file offset of the page that could not be converted.</summary>
    public ulong error_offset;
    public U64x11 reserved;
}
