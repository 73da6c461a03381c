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
}
