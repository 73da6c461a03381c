// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.MemoryAttributes;

namespace KvmSharp.Emulation.Tests;

/// <summary>The interval map agrees with a per-page model and stays merged.</summary>
public sealed class RangeMapTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_sets_agree_with_a_per_page_array(int seed)
    {
        var rng = new Random(seed);
        var map = new RangeMap<ulong>(8);
        var model = Enumerable.Repeat(8UL, 64).ToArray();
        for (int i = 0; i < 2000; i++)
        {
            ulong start = (ulong)rng.Next(64), end = (ulong)rng.Next(64);
            if (start > end) (start, end) = (end, start);
            ulong value = (ulong)rng.Next(3) * 8;
            map.Set(start, end, value);
            for (ulong p = start; p < end; p++) model[p] = value;
            ulong q = (ulong)rng.Next(64);
            Assert.Equal(model[q], map.Get(q));
            ulong a = (ulong)rng.Next(64), b = (ulong)rng.Next(a == 63 ? 64 : (int)a + 1, 65);
            Assert.Equal(model[(int)a..(int)b].All(v => v == value), map.AllEqual(a, b, value));
            // Merged: no two stored neighbours touch with the same value, nothing stored equals the default.
            var segs = map.Segments(0, 64).ToList();
            for (int s = 1; s < segs.Count; s++) Assert.False(segs[s - 1].Value == segs[s].Value && segs[s - 1].End == segs[s].Start && segs[s].Value != 8);
        }
    }

    [Fact]
    public void Huge_ranges_are_single_entries()
    {
        var map = new RangeMap<ulong>(0);
        map.Set(0, 1UL << 40, 8);
        map.Set(1UL << 20, 1UL << 21, 0);
        map.Set(1UL << 20, 1UL << 21, 8);
        Assert.Equal(1, map.RangeCount);
        map.Set(0, 1UL << 40, 0);
        Assert.Equal(0, map.RangeCount);
    }
}
