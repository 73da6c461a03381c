// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>
/// PROPOSAL: guest_memfd HugeTLB (unmerged, uAPI unsettled). Two encodings of "back this guest_memfd with huge pages
/// of size X" exist; both are modelled, neither is upstream:
/// <list type="bullet">
/// <item><see cref="GuestMemfdHugetlbEncoding.RfcV2FlagBits"/>: "[RFC PATCH v2 00/51] 1G page support for guest_memfd"
/// (Ackerley Tng, 2025-05-14). [RFC v2 38/51] include/uapi/linux/kvm.h: <c>GUEST_MEMFD_FLAG_HUGETLB (1UL &lt;&lt; 2)</c>
/// (its bits 0/1 were SUPPORT_SHARED/INIT_PRIVATE); include/uapi/linux/guestmem.h: <c>GUESTMEM_HUGETLB_FLAG_SHIFT 58</c>,
/// <c>GUESTMEM_HUGETLB_FLAG_MASK 0x3f</c>, <c>GUESTMEM_HUGETLB_FLAG_2MB (21UL &lt;&lt; 58)</c>,
/// <c>GUESTMEM_HUGETLB_FLAG_1GB (30UL &lt;&lt; 58)</c> (hugetlb_encode.h's log2 encoding moved from bit 26 to 58 for
/// 64-bit flags).</item>
/// <item><see cref="GuestMemfdHugetlbEncoding.PageOrderField"/>: the later guest_memfd HugeTLB branch rebased on 6.18
/// (virt/kvm/guest_memfd.c kvm_gmem_create: <c>args-&gt;page_order</c>, <c>gmem_hugetlb_valid_order</c>; seen in the
/// AMDESE/linux-kvm and intel/tdx trees' virt/kvm/guest_memfd_hugetlb.c). The page size is a u8 page order in
/// kvm_create_guest_memfd. ASSUMPTION: its header was not found; the field is taken to be the first byte of the old
/// reserved space (offset 16, so the struct stays 64 bytes), and the flag to keep bit 2.</item>
/// </list>
/// </summary>
public static class GuestMemfdHugetlbAbi
{
    /// <summary>PROPOSAL: GUEST_MEMFD_FLAG_HUGETLB, [RFC PATCH v2 38/51] (1UL &lt;&lt; 2); same bit assumed in the later branch.</summary>
    public const ulong GUEST_MEMFD_FLAG_HUGETLB = 1UL << 2;

    /// <summary>PROPOSAL: GUESTMEM_HUGETLB_FLAG_SHIFT, [RFC PATCH v2] include/uapi/linux/guestmem.h.</summary>
    public const int GUESTMEM_HUGETLB_FLAG_SHIFT = 58;

    /// <summary>PROPOSAL: GUESTMEM_HUGETLB_FLAG_MASK (0x3f: a log2 page size), [RFC PATCH v2] guestmem.h.</summary>
    public const ulong GUESTMEM_HUGETLB_FLAG_MASK = 0x3f;

    /// <summary>PROPOSAL: GUESTMEM_HUGETLB_FLAG_2MB = 21 &lt;&lt; 58, [RFC PATCH v2] guestmem.h.</summary>
    public const ulong GUESTMEM_HUGETLB_FLAG_2MB = 21UL << GUESTMEM_HUGETLB_FLAG_SHIFT;

    /// <summary>PROPOSAL: GUESTMEM_HUGETLB_FLAG_1GB = 30 &lt;&lt; 58, [RFC PATCH v2] guestmem.h.</summary>
    public const ulong GUESTMEM_HUGETLB_FLAG_1GB = 30UL << GUESTMEM_HUGETLB_FLAG_SHIFT;

    /// <summary>
    /// PROPOSAL (ASSUMPTION, see the type): byte offset of the later branch's u8 page_order in
    /// kvm_create_guest_memfd (the low byte of reserved[0]).
    /// </summary>
    public const int KVM_CREATE_GUEST_MEMFD_PAGE_ORDER_OFFSET = 16;

    /// <summary>The RFC v2 size bits (63:58) as a mask over the flags word.</summary>
    public const ulong GUESTMEM_HUGETLB_SIZE_BITS = GUESTMEM_HUGETLB_FLAG_MASK << GUESTMEM_HUGETLB_FLAG_SHIFT;
}

/// <summary>Which proposed uAPI carries the huge page size (see <see cref="GuestMemfdHugetlbAbi"/>).</summary>
public enum GuestMemfdHugetlbEncoding
{
    /// <summary>No guest_memfd HugeTLB uAPI (mainline).</summary>
    None = 0,

    /// <summary>[RFC PATCH v2]: GUEST_MEMFD_FLAG_HUGETLB plus log2(size) in flags bits 63:58.</summary>
    RfcV2FlagBits = 1,

    /// <summary>The 6.18-based branch: GUEST_MEMFD_FLAG_HUGETLB plus a u8 page order in the struct.</summary>
    PageOrderField = 2,
}
