// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>
/// The huge page size a guest_memfd is backed with — PROPOSAL (guest_memfd HugeTLB, unmerged; see
/// <see cref="Abi.GuestMemfdHugetlbAbi"/>). Values are log2 of the size, as the RFC v2 flag bits encode it.
/// </summary>
public enum GuestMemfdHugePageSize
{
    /// <summary>Ordinary 4 KiB pages (no HugeTLB).</summary>
    None = 0,

    /// <summary>2 MiB HugeTLB pages (GUESTMEM_HUGETLB_FLAG_2MB; page order 9).</summary>
    Size2M = 21,

    /// <summary>1 GiB HugeTLB pages (GUESTMEM_HUGETLB_FLAG_1GB; page order 18).</summary>
    Size1G = 30,
}

/// <summary>Sizes and encodings of <see cref="GuestMemfdHugePageSize"/>.</summary>
public static class GuestMemfdHugePageSizeExtensions
{
    /// <summary>The size in bytes (the page size for <see cref="GuestMemfdHugePageSize.None"/>).</summary>
    public static ulong Bytes(this GuestMemfdHugePageSize size) =>
        size == GuestMemfdHugePageSize.None ? (ulong)Environment.SystemPageSize : 1UL << (int)size;

    /// <summary>The page order (log2 of the size in base pages): 0, 9 or 18 with 4 KiB pages.</summary>
    public static int PageOrder(this GuestMemfdHugePageSize size) =>
        size == GuestMemfdHugePageSize.None ? 0 : (int)size - System.Numerics.BitOperations.Log2((uint)Environment.SystemPageSize);

    /// <summary>"2M", "1G" or "4K" (the base page).</summary>
    public static string ToShortString(this GuestMemfdHugePageSize size) => size switch
    {
        GuestMemfdHugePageSize.Size2M => "2M",
        GuestMemfdHugePageSize.Size1G => "1G",
        _ => "4K",
    };
}
