// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>
/// Which pages of a guest_memfd the host may touch, as far as the SDK knows: the INIT_SHARED default, overridden by
/// the conversions made through <see cref="GuestMemfd.SetAttributes"/>. Stored as sorted, disjoint, merged ranges of
/// pages whose state differs from the default, so a conversion of a huge range costs O(ranges), not O(pages).
/// </summary>
internal sealed class SharedPageMap
{
    private readonly bool _defaultShared;
    // Sorted by start; each entry [start, end) holds pages whose state is !_defaultShared. Copy-on-write: readers
    // (every GuestMapping access) take the current array without a lock; writers build a new one under _lock.
    private volatile (ulong Start, ulong End)[] _flipped = [];
    private readonly Lock _lock = new();

    public SharedPageMap(bool defaultShared) => _defaultShared = defaultShared;

    /// <summary>True when every page in [firstPage, endPage) is shared.</summary>
    public bool AllShared(ulong firstPage, ulong endPage)
    {
        var flipped = _flipped;
        if (flipped.Length == 0) return _defaultShared;
        if (_defaultShared)
        {
            // Shared unless some flipped (private) range intersects.
            foreach (var (s, e) in flipped)
            {
                if (s < endPage && firstPage < e) return false;
            }
            return true;
        }
        // Private by default: one flipped (shared) range must cover the whole request.
        foreach (var (s, e) in flipped)
        {
            if (s <= firstPage && endPage <= e) return true;
        }
        return false;
    }

    /// <summary>Records [firstPage, endPage) as shared or private.</summary>
    public void Set(ulong firstPage, ulong endPage, bool shared)
    {
        lock (_lock)
        {
            var next = new List<(ulong, ulong)>(_flipped.Length + 1);
            foreach (var (s, e) in _flipped)
            {
                if (e <= firstPage || s >= endPage) { next.Add((s, e)); continue; }
                if (s < firstPage) next.Add((s, firstPage));
                if (e > endPage) next.Add((endPage, e));
            }
            if (shared != _defaultShared) next.Add((firstPage, endPage));
            next.Sort((a, b) => a.Item1.CompareTo(b.Item1));
            var merged = new List<(ulong Start, ulong End)>(next.Count);
            foreach (var r in next)
            {
                if (merged.Count > 0 && merged[^1].End == r.Item1)
                    merged[^1] = (merged[^1].Start, r.Item2);
                else
                    merged.Add(r);
            }
            _flipped = [.. merged];
        }
    }
}
