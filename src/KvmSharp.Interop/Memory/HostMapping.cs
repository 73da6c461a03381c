// SPDX-License-Identifier: MIT
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using KvmSharp.Kernel;

namespace KvmSharp.Memory;

/// <summary>
/// A mapping the emulated kernel makes for its own use (its "direct map" of a guest_memfd range, for the guest
/// path), unmapped with <see cref="HostMemory.Munmap"/> on Dispose. Hands out spans only after a bounds check.
/// </summary>
public sealed unsafe class HostMapping : SafeBuffer
{
    private HostMapping(nint address, ulong length)
        : base(ownsHandle: true)
    {
        SetHandle(address);
        Initialize(length);
    }

    /// <summary>Maps [offset, offset+length) of host descriptor <paramref name="fd"/> MAP_SHARED read/write.</summary>
    public static long MapShared(int fd, long offset, ulong length, out HostMapping? mapping)
    {
        mapping = null;
        long rc = HostMemory.Mmap(0, length, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, fd, offset, out nint address);
        if (rc < 0) return rc;
        mapping = new HostMapping(address, length);
        return 0;
    }

    /// <summary>
    /// Maps <paramref name="length"/> bytes of zero-filled private anonymous memory read/write (page-aligned, as mmap
    /// returns it): memory this process owns for a kernel to read through a user pointer, unmapped on Dispose.
    /// </summary>
    public static long MapAnonymous(ulong length, out HostMapping? mapping)
    {
        mapping = null;
        long rc = HostMemory.Mmap(0, length, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
            LinuxConstants.MAP_PRIVATE | LinuxConstants.MAP_ANONYMOUS, -1, 0, out nint address);
        if (rc < 0) return rc;
        mapping = new HostMapping(address, length);
        return 0;
    }

    public nint Address => handle;

    public ulong Length => ByteLength;

    /// <summary>A span over [offset, offset+length); valid until Dispose.</summary>
    public Span<byte> GetSpan(ulong offset, int length)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        if (length < 0 || offset > ByteLength || (ulong)length > ByteLength - offset) ThrowOutside(offset, length);
        // SAFETY: the range was checked against ByteLength above and the mapping is live (not closed).
        return new Span<byte>((byte*)handle + offset, length);
    }

    // Out of GetSpan so that the JIT inlines the check alone (GetSpan is on the emulator's per-instruction path).
    [DoesNotReturn]
    private void ThrowOutside(ulong offset, int length) =>
        throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, +{length}) is outside the {ByteLength}-byte mapping");

    protected override bool ReleaseHandle() => HostMemory.Munmap(handle, ByteLength) == 0;
}
