// SPDX-License-Identifier: MIT
namespace KvmSharp.Tests.Sdk;

public class SharedPageMapTests
{
    [Fact]
    public void Private_by_default_until_a_range_is_converted()
    {
        var map = new SharedPageMap(defaultShared: false);
        Assert.False(map.AllShared(0, 4));
        map.Set(1, 3, shared: true);
        Assert.True(map.AllShared(1, 3));
        Assert.False(map.AllShared(0, 2));
        Assert.False(map.AllShared(2, 4));
        map.Set(3, 5, shared: true); // merges with [1,3)
        Assert.True(map.AllShared(1, 5));
        map.Set(2, 3, shared: false);
        Assert.False(map.AllShared(1, 5));
        Assert.True(map.AllShared(3, 5));
    }

    [Fact]
    public void Shared_by_default_until_a_range_is_made_private()
    {
        var map = new SharedPageMap(defaultShared: true);
        Assert.True(map.AllShared(0, 1UL << 40));
        map.Set(10, 20, shared: false);
        Assert.False(map.AllShared(19, 21));
        Assert.True(map.AllShared(20, 30));
        map.Set(0, 1UL << 40, shared: true);
        Assert.True(map.AllShared(0, 1UL << 40));
    }

    // The map against a page-by-page model: random conversions over 64 pages, every sub-range queried after each,
    // and the stored ranges kept sorted, disjoint and merged (no two touching), as the binary searches assume.
    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    [InlineData(true, 4)]
    public void Matches_a_page_by_page_model(bool defaultShared, int seed)
    {
        const int Pages = 64;
        var random = new Random(seed);
        var map = new SharedPageMap(defaultShared);
        var model = Enumerable.Repeat(defaultShared, Pages).ToArray();
        for (int step = 0; step < 300; step++)
        {
            int first = random.Next(Pages);
            int end = first + 1 + random.Next(Math.Min(Pages - first, step % 3 == 0 ? Pages : 4));
            bool shared = random.Next(2) == 0;
            map.Set((ulong)first, (ulong)end, shared);
            Array.Fill(model, shared, first, end - first);

            var ranges = map.Ranges;
            for (int r = 0; r < ranges.Count; r++)
            {
                Assert.True(ranges[r].Start < ranges[r].End, $"step {step}: empty range {ranges[r]}");
                if (r > 0) Assert.True(ranges[r - 1].End < ranges[r].Start, $"step {step}: {ranges[r - 1]} touches {ranges[r]}");
            }
            for (int a = 0; a < Pages; a++)
            {
                for (int b = a + 1; b <= Pages; b++)
                {
                    bool expected = Array.TrueForAll(model[a..b], x => x);
                    Assert.True(expected == map.AllShared((ulong)a, (ulong)b), $"step {step}: AllShared({a}, {b})");
                }
            }
        }
    }
}
