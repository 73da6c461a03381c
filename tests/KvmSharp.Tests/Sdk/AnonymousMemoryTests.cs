// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>Owned anonymous host memory: checked access, discard, and no mapping left behind after Dispose.</summary>
public class AnonymousMemoryTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Memory_is_zeroed_and_every_access_is_bounds_checked(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong size = 2 * (ulong)PageSize;
        using var memory = vm.AllocateMemory(size);
        Assert.Equal(size, memory.Length);
        Assert.False(memory.IsShared);
        Assert.Equal(-1, memory.GetSpan(0, (int)size).IndexOfAnyExcept((byte)0));

        memory.Write(size - 4, [1, 2, 3, 4]);
        Assert.Equal(0x04030201u, memory.Read<uint>(size - 4));
        memory.Fill(0, size, 0x5a);
        Assert.Equal(0x5a, memory.Read<byte>(size - 1));

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => memory.Read<uint>(size - 3));
        Assert.Contains("outside the 0x2000-byte anonymous memory", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.Write(size, [1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.GetSpan(0, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.Fill(1, size, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.Read(ulong.MaxValue, new byte[1]));
        // Nothing was written by the refused calls.
        Assert.Equal(-1, memory.GetSpan(0, (int)size).IndexOfAnyExcept((byte)0x5a));
        Assert.Throws<ArgumentOutOfRangeException>(() => AnonymousMemory.Allocate(vm.Kernel, 0));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Discard_gives_pages_back_and_they_read_as_zero(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        foreach (bool shared in new[] { false, true })
        {
            using var memory = vm.AllocateMemory(2 * ps, shared);
            Assert.Equal(shared, memory.IsShared);
            memory.Fill(0, 2 * ps, 0xcc);
            memory.Discard(ps, ps);
            Assert.Equal(0xcc, memory.Read<byte>(ps - 1));
            Assert.Equal(0, memory.Read<byte>(ps));
            Assert.Throws<ArgumentOutOfRangeException>(() => memory.Discard(ps, 2 * ps));
            var ex = Assert.ThrowsAny<KvmException>(() => memory.Discard(1, ps));
            Assert.Equal("madvise", ex.Operation);
            Assert.Equal(Errno.EINVAL, ex.Errno);
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Dispose_unmaps_and_later_access_is_refused(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var memory = vm.AllocateMemory(3 * (ulong)PageSize);
        nint address = memory.Address;
        Assert.True(IsMapped(address));
        memory.Dispose();
        memory.Dispose(); // idempotent
        Assert.True(memory.IsDisposed);
        AssertUnmapped(memory);
        Assert.Throws<ObjectDisposedException>(() => memory.Read<byte>(0));
        Assert.Throws<ObjectDisposedException>(() => memory.Fill(0, 1, 0));
        Assert.Throws<ObjectDisposedException>(() => vm.AddMemorySlot(1, 0x100000, memory).Dispose());
    }

    /// <summary>
    /// The munmap ran: the SafeBuffer reached ReleaseHandle (its handle is closed only when the last reference went).
    /// Checked on the handle, not in /proc/self/maps, where the runtime may map something new at the freed address.
    /// </summary>
    internal static void AssertUnmapped(AnonymousMemory memory) => Assert.True(memory.Region.IsClosed, "the anonymous memory is still mapped");

    /// <summary>
    /// True when <paramref name="address"/> lies inside a mapping of /proc/self/maps (the kernel merges neighbouring
    /// anonymous mappings into one line, so a mapping's start is not always a line's start).
    /// </summary>
    internal static bool IsMapped(nint address)
    {
        ulong a = (ulong)address;
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            ulong start = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong end = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (a >= start && a < end) return true;
        }
        return false;
    }
}
