// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// Ordinary host memory owned by this object: an anonymous mapping (mmap MAP_ANONYMOUS, MAP_PRIVATE or MAP_SHARED)
/// made through the kernel's <see cref="IKernel.Mmap"/> and unmapped on Dispose. It backs memory slots as their
/// userspace_addr (<see cref="Vm.AddMemorySlot(uint, ulong, AnonymousMemory, MemorySlotFlags)"/>, and the shared
/// view of <see cref="Vm.AddPrivateMemorySlot"/>). Anonymous memory cannot raise SIGBUS, but every access is still
/// bounds-checked before memory is touched. While a memory slot uses it, Dispose only marks it closed: the mapping
/// stays until the slot is deleted, so the guest never reaches an unmapped (or reused) address.
/// </summary>
public sealed partial class AnonymousMemory : IDisposable
{
    // mm/madvise.c MADV_REMOVE: frees the pages of a shared (shmem) mapping; MADV_DONTNEED would only drop the PTEs.
    private const int MADV_REMOVE = 9;

    private readonly MappedRegion _region;
    // SafeHandle.IsClosed stays false while a memory slot holds a reference, so "disposed" is tracked here.
    private volatile bool _disposed;

    private AnonymousMemory(IKernel kernel, MappedRegion region, bool shared)
    {
        Kernel = kernel;
        _region = region;
        IsShared = shared;
    }

    /// <summary>
    /// Maps <paramref name="size"/> bytes of zero-filled anonymous memory read/write: MAP_PRIVATE, or MAP_SHARED
    /// when <paramref name="shared"/> (shmem pages that a fork shares). Pages are allocated on first touch.
    /// </summary>
    public static AnonymousMemory Allocate(IKernel kernel, ulong size, bool shared = false)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (size == 0) throw new ArgumentOutOfRangeException(nameof(size), "anonymous memory needs a non-zero size");
        int flags = LinuxConstants.MAP_ANONYMOUS | (shared ? LinuxConstants.MAP_SHARED : LinuxConstants.MAP_PRIVATE);
        long rc = MappedRegion.Map(kernel, null, size, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, flags, 0, out MappedRegion? region);
        if (KvmCall.IsError(rc))
            KvmCall.ThrowKvm(rc, "mmap", $"length=0x{size:X} PROT_READ|PROT_WRITE {(shared ? "MAP_SHARED" : "MAP_PRIVATE")}|MAP_ANONYMOUS");
        return new AnonymousMemory(kernel, region!, shared);
    }

    /// <summary>The kernel that made the mapping (and unmaps it).</summary>
    public IKernel Kernel { get; }

    /// <summary>True for MAP_SHARED anonymous memory.</summary>
    public bool IsShared { get; }

    /// <summary>
    /// The mapping's length in bytes, as requested from <see cref="Allocate"/>; valid offsets are [0, Length).
    /// </summary>
    public ulong Length => _region.Length;

    /// <summary>The mapping's address in this process (a memory slot's userspace_addr).</summary>
    public nint Address => _region.Address;

    /// <summary>True once disposed (the mapping itself may live on while a memory slot still uses it).</summary>
    public bool IsDisposed => _disposed;

    /// <summary>The SafeBuffer behind this memory; memory slots hold a reference on it while they exist.</summary>
    internal MappedRegion Region => _region;

    /// <summary>Copies [offset, offset+destination.Length) into <paramref name="destination"/>.</summary>
    public void Read(ulong offset, Span<byte> destination) => Access(offset, destination.Length).CopyTo(destination);

    /// <summary>Copies <paramref name="source"/> into the memory at <paramref name="offset"/>.</summary>
    public void Write(ulong offset, ReadOnlySpan<byte> source) => source.CopyTo(Access(offset, source.Length));

    /// <summary>Reads an unmanaged value (host byte order) at byte <paramref name="offset"/> of the mapping.</summary>
    /// <exception cref="ArgumentOutOfRangeException">[offset, offset+sizeof(T)) is outside the mapping.</exception>
    /// <exception cref="ObjectDisposedException">This memory was disposed.</exception>
    public T Read<T>(ulong offset) where T : unmanaged => MemoryMarshal.Read<T>(Access(offset, Unsafe.SizeOf<T>()));

    /// <summary>Writes an unmanaged value (host byte order) at byte <paramref name="offset"/> of the mapping.</summary>
    /// <exception cref="ArgumentOutOfRangeException">[offset, offset+sizeof(T)) is outside the mapping.</exception>
    /// <exception cref="ObjectDisposedException">This memory was disposed.</exception>
    public void Write<T>(ulong offset, T value) where T : unmanaged => MemoryMarshal.Write(Access(offset, Unsafe.SizeOf<T>()), in value);

    /// <summary>Sets [offset, offset+length) to <paramref name="value"/>.</summary>
    public void Fill(ulong offset, ulong length, byte value)
    {
        CheckRange(offset, length);
        while (length > 0)
        {
            int chunk = (int)Math.Min(length, 1UL << 30);
            Access(offset, chunk).Fill(value);
            offset += (ulong)chunk;
            length -= (ulong)chunk;
        }
    }

    /// <summary>
    /// A span over [offset, offset+length), valid until Dispose; do not keep it beyond the current operation (a
    /// running guest may write the same bytes concurrently).
    /// </summary>
    public Span<byte> GetSpan(ulong offset, int length) => Access(offset, length);

    /// <summary>
    /// Gives the pages of [offset, offset+length) back to the host (madvise MADV_DONTNEED for private memory,
    /// MADV_REMOVE for shared): they read as zero afterwards, for the host and the guest. Page-aligned ranges only.
    /// </summary>
    public void Discard(ulong offset, ulong length)
    {
        CheckRange(offset, length);
        int advice = IsShared ? MADV_REMOVE : LinuxConstants.MADV_DONTNEED;
        long rc = _region.Advise(offset, length, advice);
        if (KvmCall.IsError(rc))
            KvmCall.ThrowKvm(rc, "madvise", $"offset=0x{offset:X} length=0x{length:X} {(IsShared ? "MADV_REMOVE" : "MADV_DONTNEED")}");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Access(ulong offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (length < 0 || offset > Length || (ulong)length > Length - offset) ThrowOutOfRange(offset, (ulong)(long)length);
        return _region.GetSpan(offset, length);
    }

    private void CheckRange(ulong offset, ulong length)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (offset > Length || length > Length - offset) ThrowOutOfRange(offset, length);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOutOfRange(ulong offset, ulong length) =>
        throw new ArgumentOutOfRangeException(nameof(offset), $"[0x{offset:X}, +{(long)length}) is outside the 0x{Length:X}-byte anonymous memory");

    /// <summary>
    /// Marks this memory disposed (later accesses throw <see cref="ObjectDisposedException"/>) and drops its reference;
    /// the munmap happens once no memory slot uses the mapping any more.
    /// </summary>
    public void Dispose()
    {
        _disposed = true;
        // Drops this object's reference; the munmap happens when no memory slot holds one any more.
        _region.Dispose();
    }
}
