// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Kernel;

namespace KvmSharp.Memory;

/// <summary>
/// A mapping made by <see cref="IKernel.Mmap"/>, unmapped through the same kernel on Dispose (or by the finalizer).
/// It hands out spans only after a bounds check; it knows nothing of guest_memfd fault rules — the typed
/// <c>GuestMapping</c> checks those before it asks for a span.
/// </summary>
public sealed unsafe class MappedRegion : SafeBuffer
{
    private readonly IKernel _kernel;

    private MappedRegion(IKernel kernel, nint address, ulong length)
        : base(ownsHandle: true)
    {
        _kernel = kernel;
        SetHandle(address);
        Initialize(length);
    }

    /// <summary>
    /// Maps <paramref name="length"/> bytes (at <paramref name="address"/> with MAP_FIXED); returns the raw
    /// result (0 or -errno) like the kernel.
    /// </summary>
    public static long Map(IKernel kernel, KernelFd? fd, ulong length, int prot, int flags, long offset, out MappedRegion? region, nint address = 0)
    {
        region = null;
        long rc = kernel.Mmap(address, length, prot, flags, fd, offset, out nint mapped);
        if (rc < 0) return rc;
        region = new MappedRegion(kernel, mapped, length);
        return 0;
    }

    /// <summary>The start address of the mapping in this process (for memory slots' userspace_addr).</summary>
    public nint Address => handle;

    public ulong Length => ByteLength;

    /// <summary>madvise(2) over [offset, offset+length) of this mapping; the raw result.</summary>
    public long Advise(ulong offset, ulong length, int advice)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        if (offset > ByteLength || length > ByteLength - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, +{length}) is outside the {ByteLength}-byte mapping");
        return _kernel.Madvise(handle + (nint)offset, length, advice);
    }

    /// <summary>mincore(2) of [offset, offset+length) of this region: a byte per page, bit 0 = resident.</summary>
    public long Mincore(ulong offset, ulong length, Span<byte> vector)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        if (offset > ByteLength || length > ByteLength - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, +{length}) is outside the {ByteLength}-byte mapping");
        return _kernel.Mincore(handle + (nint)offset, length, vector);
    }

    /// <summary>
    /// A span over [offset, offset+length). Valid until the region is disposed; callers must not keep it longer.
    /// </summary>
    public Span<byte> GetSpan(ulong offset, int length)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        if (length < 0 || offset > ByteLength || (ulong)length > ByteLength - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, +{length}) is outside the {ByteLength}-byte mapping");
        // SAFETY: the range was checked against ByteLength above and the mapping is live (not closed).
        return new Span<byte>((byte*)handle + offset, length);
    }

    protected override bool ReleaseHandle()
    {
        nint address = handle;
        handle = -1;
        return _kernel.Munmap(address, ByteLength) == 0;
    }
}
