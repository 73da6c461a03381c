// SPDX-License-Identifier: MIT
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Memory;

/// <summary>
/// A managed array the GC never moves (pinned object heap), for ioctl structs that carry a user pointer the kernel
/// copies to or from (e.g. kvm_dirty_log.dirty_bitmap).
/// </summary>
/// <remarks>
/// <para>
/// The elements are <see cref="Span"/>: <see cref="Length"/> elements from <see cref="Offset"/> in the backing
/// <see cref="Items"/>, the first at <see cref="Address"/>. With <see cref="PinnedArray{T}(int)"/> they are all of
/// <see cref="Items"/> (offset 0). With an alignment (<see cref="PinnedArray{T}(int, int)"/>) the backing array has
/// a few more elements and the span starts at the first element whose address is a multiple of it.
/// </para>
/// <para>
/// Why align: the kernel copies with <c>rep movs</c>, which was measured ten times slower when the destination lies
/// 8–24 bytes after the source modulo 4 KiB (the pattern of 4K aliasing: loads waiting on earlier stores to the same
/// page offset). The kernel's large buffers (e.g. the dirty bitmap of a big slot) are page-aligned, while a pinned
/// array lands at any multiple of 8; a 64-byte aligned user buffer keeps copies in both directions out of that window
/// (KVM_GET_DIRTY_LOG of a 1 GiB slot: 2 µs instead of 20 µs on an AMD EPYC host; see bench/KvmSharp.DirtyLog.Benchmarks).
/// </para>
/// </remarks>
public sealed class PinnedArray<T> where T : unmanaged
{
    /// <summary>A pinned array of <paramref name="length"/> elements: <see cref="Items"/> itself, from its element 0.</summary>
    public PinnedArray(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Items = GC.AllocateArray<T>(length, pinned: true);
        Length = length;
        // SAFETY: the array lives on the pinned object heap, so its address stays valid for the array's lifetime;
        // callers keep this object reachable until the ioctl that uses the address has returned.
        Address = length == 0 ? 0 : (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(Items, 0);
    }

    /// <summary>
    /// A pinned array of <paramref name="length"/> elements whose first element's address is a multiple of
    /// <paramref name="alignment"/> bytes (a power of two). The element size must be 1, 2, 4 or 8 bytes (the pinned
    /// heap aligns arrays to 8).
    /// </summary>
    public PinnedArray(int length, int alignment)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (alignment <= 0 || !BitOperations.IsPow2(alignment))
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "the alignment must be a power of two");
        int size = Unsafe.SizeOf<T>();
        if (size > 8 || !BitOperations.IsPow2(size))
            throw new ArgumentException($"elements of {size} bytes cannot be aligned (1, 2, 4 or 8 bytes only)", nameof(alignment));
        int slack = alignment > size ? alignment / size - 1 : 0;
        Items = GC.AllocateArray<T>(checked(length + slack), pinned: true);
        Length = length;
        if (Items.Length == 0) return;
        // SAFETY: as above (pinned object heap); the span [Offset, Offset + Length) lies inside the array because
        // the array's base is 8-byte aligned, so some element among the first `slack + 1` is aligned.
        ulong start = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(Items, 0);
        ulong aligned = (start + (ulong)alignment - 1) & ~((ulong)alignment - 1);
        Offset = (int)((aligned - start) / (ulong)size);
        Address = length == 0 ? 0 : aligned;
    }

    /// <summary>The backing array (the elements are <see cref="Span"/>, at <see cref="Offset"/>).</summary>
    public T[] Items { get; }

    /// <summary>Where the elements start in <see cref="Items"/> (0 without an alignment).</summary>
    public int Offset { get; }

    /// <summary>How many elements there are.</summary>
    public int Length { get; }

    /// <summary>The elements: <see cref="Length"/> of <see cref="Items"/> from <see cref="Offset"/>, the first at <see cref="Address"/>.</summary>
    public Span<T> Span => Items.AsSpan(Offset, Length);

    /// <summary>The address of the first element (0 when there are none).</summary>
    public ulong Address { get; }
}
