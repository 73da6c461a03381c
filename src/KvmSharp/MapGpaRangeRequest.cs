// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>The page-size hint in bits 3:0 of KVM_HC_MAP_GPA_RANGE's attributes (x86/hypercalls.rst).</summary>
public enum MapGpaRangePageSize : ulong
{
    /// <summary>KVM_MAP_GPA_RANGE_PAGE_SZ_4K: 4 KiB pages preferred.</summary>
    Size4K = KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_4K,
    /// <summary>KVM_MAP_GPA_RANGE_PAGE_SZ_2M: 2 MiB pages preferred.</summary>
    Size2M = KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_2M,
    /// <summary>KVM_MAP_GPA_RANGE_PAGE_SZ_1G: 1 GiB pages preferred.</summary>
    Size1G = KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_1G,
}

/// <summary>
/// A decoded KVM_HC_MAP_GPA_RANGE exit: the guest asks userspace to make [<see cref="Gpa"/>, +<see cref="Size"/>)
/// private (encrypted) or shared (decrypted). KVM has checked that the GPA is page aligned, the count is non-zero
/// and the range does not wrap (x86.c ____kvm_emulate_hypercall); it does not check the attributes, so
/// <see cref="ReservedAttributes"/> may be non-zero and the VMM decides what to answer.
/// </summary>
public readonly record struct MapGpaRangeRequest(ulong Gpa, ulong PageCount, ulong Attributes)
{
    /// <summary>a1 counts 4 KiB pages whatever the page-size hint says.</summary>
    public const ulong PageSize = 4096;

    /// <summary>Bits 63:5: reserved, must be zero per the ABI document (KVM passes them through unchecked).</summary>
    public const ulong ReservedMask = ~(KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_MASK | KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED);

    /// <summary>The length in bytes (a page count KVM accepted cannot overflow: gfn + npages does not wrap).</summary>
    public ulong Size => unchecked(PageCount * PageSize);

    /// <summary>Bit 4 set: the range becomes private (encrypted).</summary>
    public bool ToPrivate => (Attributes & KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED) != 0;

    /// <summary>Bit 4 clear: the range becomes shared (decrypted).</summary>
    public bool ToShared => !ToPrivate;

    /// <summary>The preferred page size (bits 3:0); values other than 0..2 are returned as they are.</summary>
    public MapGpaRangePageSize PreferredPageSize => (MapGpaRangePageSize)(Attributes & KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_MASK);

    /// <summary>
    /// The reserved attribute bits (63:5) the guest set; non-zero means a malformed request the VMM may refuse.
    /// </summary>
    public ulong ReservedAttributes => Attributes & ReservedMask;

    /// <summary>The KVM memory attributes the range should get: KVM_MEMORY_ATTRIBUTE_PRIVATE or 0.</summary>
    public ulong MemoryAttributes => ToPrivate ? KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;

    /// <summary>
    /// The request in the kernel's terms, e.g. "KVM_HC_MAP_GPA_RANGE gpa=0x100000 pages=16 -> private (...)".
    /// </summary>
    public override string ToString() =>
        $"KVM_HC_MAP_GPA_RANGE gpa=0x{Gpa:X} pages={PageCount} -> {(ToPrivate ? "private" : "shared")} " +
        $"(attributes=0x{Attributes:X}, page size {PreferredPageSize})";
}
