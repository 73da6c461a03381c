// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>
/// Which pages of a guest_memfd the host may touch, as far as the SDK knows: the INIT_SHARED default, overridden by
/// the conversions made through <see cref="GuestMemfd.SetAttributes"/>. Stored as sorted, disjoint, merged ranges of
/// pages whose state differs from the default: a query is a binary search (O(log ranges)) and a conversion of a huge
/// range costs one copy of the range array (O(ranges)), never O(pages).
/// </summary>
internal sealed class SharedPageMap
{
    private readonly bool _defaultShared;
    // Sorted by start; each entry [Start, End) holds pages whose state is !_defaultShared; no two entries touch.
    // Copy-on-write: readers (every GuestMapping access) take the current array without a lock; writers build a new
    // one under _lock.
    private volatile (ulong Start, ulong End)[] _flipped = [];
    private readonly Lock _lock = new();

    public SharedPageMap(bool defaultShared) => _defaultShared = defaultShared;

    /// <summary>The ranges whose state differs from the default, sorted (for tests and diagnostics).</summary>
    public IReadOnlyList<(ulong Start, ulong End)> Ranges => _flipped;

    /// <summary>True when every page in [firstPage, endPage) is shared.</summary>
    public bool AllShared(ulong firstPage, ulong endPage)
    {
        var flipped = _flipped;
        if (_defaultShared)
        {
            // Shared unless a flipped (private) range intersects: only the first range ending after firstPage can
            // be the first to do so.
            int i = FirstEndAbove(flipped, firstPage);
            return i == flipped.Length || flipped[i].Start >= endPage;
        }
        // Private by default: one flipped (shared) range must cover the whole request, and only the first range
        // that ends at or after endPage can (ranges are disjoint).
        int j = FirstEndAtOrAbove(flipped, endPage);
        return j < flipped.Length && flipped[j].Start <= firstPage;
    }

    /// <summary>Records [firstPage, endPage) as shared or private.</summary>
    public void Set(ulong firstPage, ulong endPage, bool shared)
    {
        if (firstPage >= endPage) return;
        lock (_lock)
        {
            var old = _flipped;
            // [lo, hi): the ranges that overlap or touch [firstPage, endPage]; those before and after stay as they are.
            int lo = FirstEndAtOrAbove(old, firstPage);
            int hi = FirstStartAbove(old, endPage);
            Span<(ulong Start, ulong End)> middle = stackalloc (ulong, ulong)[2];
            int count = 0;
            if (shared != _defaultShared)
            {
                // The new flipped range absorbs every range it overlaps or touches, so the result stays merged.
                ulong start = lo < hi ? Math.Min(firstPage, old[lo].Start) : firstPage;
                ulong end = lo < hi ? Math.Max(endPage, old[hi - 1].End) : endPage;
                middle[count++] = (start, end);
            }
            else if (lo < hi)
            {
                // Back to the default: keep what sticks out on either side.
                if (old[lo].Start < firstPage) middle[count++] = (old[lo].Start, firstPage);
                if (old[hi - 1].End > endPage) middle[count++] = (endPage, old[hi - 1].End);
            }
            var next = new (ulong Start, ulong End)[lo + count + (old.Length - hi)];
            old.AsSpan(0, lo).CopyTo(next);
            middle[..count].CopyTo(next.AsSpan(lo));
            old.AsSpan(hi).CopyTo(next.AsSpan(lo + count));
            _flipped = next;
        }
    }

    // Index of the first range with End > page (ranges are sorted by End as well as by Start), or Length.
    private static int FirstEndAbove((ulong Start, ulong End)[] ranges, ulong page)
    {
        int lo = 0, hi = ranges.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (ranges[mid].End > page) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    private static int FirstEndAtOrAbove((ulong Start, ulong End)[] ranges, ulong page) =>
        page == 0 ? 0 : FirstEndAbove(ranges, page - 1);

    // Index of the first range with Start > page, or Length.
    private static int FirstStartAbove((ulong Start, ulong End)[] ranges, ulong page)
    {
        int lo = 0, hi = ranges.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (ranges[mid].Start > page) hi = mid; else lo = mid + 1;
        }
        return lo;
    }
}
