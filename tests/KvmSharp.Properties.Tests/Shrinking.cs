// SPDX-License-Identifier: MIT
namespace KvmSharp.Properties.Tests;

/// <summary>
/// Generic shrink candidates. FsCheck tries a value's candidates in order, moves to the first one that still fails
/// and starts again from there, so candidates come most aggressive first (an empty sequence, half of it, … one call
/// fewer; a number at its target, halfway, … one step closer).
/// </summary>
internal static class Shrinking
{
    /// <summary>
    /// A call sequence: without a chunk of calls (chunks of the whole length, half, quarter … one call: the ddmin
    /// order), then with one call replaced by each of its own shrinks.
    /// </summary>
    public static IEnumerable<List<T>> Sequence<T>(List<T> list, Func<T, IEnumerable<T>> element)
    {
        for (int chunk = list.Count; chunk >= 1; chunk /= 2)
        {
            for (int start = 0; start + chunk <= list.Count; start += chunk)
            {
                var shorter = new List<T>(list.Count - chunk);
                shorter.AddRange(list.Take(start));
                shorter.AddRange(list.Skip(start + chunk));
                yield return shorter;
            }
        }
        for (int i = 0; i < list.Count; i++)
        {
            foreach (var smaller in element(list[i]))
            {
                var copy = new List<T>(list) { [i] = smaller };
                yield return copy;
            }
        }
    }

    /// <summary><paramref name="target"/>, then values ever closer to <paramref name="x"/> (x − d for d = half the distance, a quarter …).</summary>
    public static IEnumerable<long> Toward(long x, long target)
    {
        if (x == target) yield break;
        yield return target;
        // Halve the distance without overflowing for extreme values (long.MinValue toward 0).
        for (long d = x / 2 - target / 2; d != 0; d /= 2)
        {
            long candidate = x - d;
            if (candidate != target && candidate != x) yield return candidate;
        }
    }

    public static IEnumerable<ulong> Toward(ulong x, ulong target) =>
        x <= long.MaxValue && target <= long.MaxValue ? Toward((long)x, (long)target).Select(v => (ulong)v) : [target];

    public static IEnumerable<int> Toward(int x, int target) => Toward((long)x, target).Select(v => (int)v);

    /// <summary>
    /// A byte offset or length that is usually page-aligned: its page-aligned part first (drops a misalignment),
    /// then whole pages toward 0, then bytes toward 0 (negative and huge values keep their byte shrinks).
    /// </summary>
    public static IEnumerable<long> Extent(long x, long page)
    {
        if (x > 0 && x % page != 0) yield return x - x % page;
        if (x >= 0 && x % page == 0)
        {
            foreach (long pages in Toward(x / page, 0)) yield return pages * page;
            yield break;
        }
        foreach (long v in Toward(x, 0)) yield return v;
    }
}
