// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// Memory attributes of KVM_SET_MEMORY_ATTRIBUTES (on a VM) and KVM_SET_MEMORY_ATTRIBUTES2 (on a guest_memfd, a
/// proposal): a page without <see cref="Private"/> is shared with the host. The raw <c>ulong</c> overloads take the same
/// bits; unknown ones stay visible when cast.
/// </summary>
[Flags]
public enum MemoryAttributes : ulong
{
    /// <summary>No attribute: the page is shared (the host may map and touch it).</summary>
    None = 0,

    /// <summary>KVM_MEMORY_ATTRIBUTE_PRIVATE: only the guest uses the page; host accesses are refused.</summary>
    Private = KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE,
}
