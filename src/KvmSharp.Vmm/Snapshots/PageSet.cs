// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Snapshots;

/// <summary>
/// Pages of guest memory and their bytes: page numbers ascending, contents page after page. Every page not listed is
/// zero. Immutable once built, so a snapshot and the guest memory that adopted it as its pristine state
/// (<see cref="GuestMemory"/>'s restore path) share the arrays instead of copying them.
/// </summary>
internal sealed class PageSet
{
    public PageSet(int pageSize, ulong[] pages, byte[] contents)
    {
        if ((long)pages.Length * pageSize != contents.Length)
            throw new ArgumentException($"{pages.Length} pages of {pageSize} bytes need {(long)pages.Length * pageSize} bytes, not {contents.Length}", nameof(contents));
        PageSize = pageSize;
        Pages = pages;
        Contents = contents;
    }

    public int PageSize { get; }

    /// <summary>Page numbers (guest-physical address / <see cref="PageSize"/>), strictly ascending.</summary>
    public ulong[] Pages { get; }

    public byte[] Contents { get; }

    public int Count => Pages.Length;

    public ReadOnlySpan<byte> Page(int index) => Contents.AsSpan(index * PageSize, PageSize);

    /// <summary>The index of page number <paramref name="page"/>, or a negative number when it is not listed (zero).</summary>
    public int IndexOf(ulong page) => Array.BinarySearch(Pages, page);
}
