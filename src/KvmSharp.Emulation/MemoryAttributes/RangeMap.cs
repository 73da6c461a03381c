// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.MemoryAttributes;

/// <summary>
/// A map from page index to a value, stored as sorted, disjoint, merged ranges of non-default values — the shape of
/// the kernel's maple tree of gmem attributes ([PATCH v8 01/46]: "adjacent equal ranges are merged") and of the
/// per-VM attribute xarray's multi-index entries. Every operation costs O(log ranges + touched ranges), never
/// O(pages): a 1 TiB range is one entry.
/// </summary>
internal sealed class RangeMap<T> where T : struct
{
    private readonly List<Entry> _entries = [];

    public RangeMap(T defaultValue) => Default = defaultValue;

    /// <summary>The value of every index no range covers.</summary>
    public T Default { get; }

    /// <summary>Number of stored ranges (for tests of the O(ranges) shape).</summary>
    public int RangeCount => _entries.Count;

    public T Get(ulong index)
    {
        int i = FirstEndingAfter(index);
        return i < _entries.Count && _entries[i].Start <= index ? _entries[i].Value : Default;
    }

    /// <summary>True when every index of [start, end) holds <paramref name="value"/> (vacuously true when empty).</summary>
    public bool AllEqual(ulong start, ulong end, T value)
    {
        foreach (var (_, _, v) in Segments(start, end))
        {
            if (!Eq(v, value)) return false;
        }
        return true;
    }

    /// <summary>The ranges covering [start, end) in order, gaps reported with the default value.</summary>
    public IEnumerable<(ulong Start, ulong End, T Value)> Segments(ulong start, ulong end)
    {
        if (start >= end) yield break;
        ulong pos = start;
        for (int i = FirstEndingAfter(start); i < _entries.Count && pos < end; i++)
        {
            var e = _entries[i];
            if (e.Start >= end) break;
            if (e.Start > pos)
            {
                yield return (pos, e.Start, Default);
                pos = e.Start;
            }
            ulong stop = Math.Min(e.End, end);
            yield return (pos, stop, e.Value);
            pos = stop;
        }
        if (pos < end) yield return (pos, end, Default);
    }

    /// <summary>Sets [start, end) to <paramref name="value"/>, splitting and merging neighbours.</summary>
    public void Set(ulong start, ulong end, T value)
    {
        if (start >= end) return;
        int first = FirstEndingAfter(start);
        int last = first;
        while (last < _entries.Count && _entries[last].Start < end) last++;
        // _entries[first..last) overlap [start, end).
        var replacement = new List<Entry>(3);
        if (first < last && _entries[first].Start < start)
            replacement.Add(new Entry(_entries[first].Start, start, _entries[first].Value));
        if (!Eq(value, Default)) replacement.Add(new Entry(start, end, value));
        if (first < last && _entries[last - 1].End > end)
            replacement.Add(new Entry(end, _entries[last - 1].End, _entries[last - 1].Value));
        _entries.RemoveRange(first, last - first);
        _entries.InsertRange(first, replacement);
        // Merge equal neighbours around the replaced window.
        int lo = Math.Max(0, first - 1);
        int hi = Math.Min(_entries.Count - 1, first + replacement.Count);
        for (int i = hi; i > lo; i--)
        {
            var a = _entries[i - 1];
            var b = _entries[i];
            if (a.End == b.Start && Eq(a.Value, b.Value))
            {
                _entries[i - 1] = new Entry(a.Start, b.End, a.Value);
                _entries.RemoveAt(i);
            }
        }
    }

    /// <summary>Index of the first entry whose End is above <paramref name="index"/> (binary search).</summary>
    private int FirstEndingAfter(ulong index)
    {
        int lo = 0, hi = _entries.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_entries[mid].End <= index) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    private static bool Eq(T a, T b) => EqualityComparer<T>.Default.Equals(a, b);

    private readonly record struct Entry(ulong Start, ulong End, T Value);
}
