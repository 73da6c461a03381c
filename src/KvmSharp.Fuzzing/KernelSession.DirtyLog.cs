// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>KVM_GET_DIRTY_LOG and KVM_CLEAR_DIRTY_LOG, their bitmaps in a scratch mapping the session owns.</summary>
public sealed partial class KernelSession
{
    /// <summary>Bytes of the scratch page shown after a successful KVM_GET_DIRTY_LOG: the bitmap and the untouched fill after it.</summary>
    private const int ShownBitmapBytes = 16;

    private DirtyLogScratch? _scratch;

    private DirtyLogScratch Scratch => _scratch ??= DirtyLogScratch.Map();

    private string GetDirtyLog(FuzzOp op)
    {
        var scratch = Scratch;
        // A fill the kernel overwrites with the bitmap: what it wrote, and how many bytes, are both compared.
        scratch.Fill(0xA5A5A5A5A5A5A5A5);
        var at = (DirtyBitmapAt)op.D;
        var log = new kvm_dirty_log { slot = (uint)op.A, dirty_bitmap = scratch.Address(at, op.C) };
        long rc = _kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_GET_DIRTY_LOG, Bytes(ref log));
        if (rc != 0 || at != DirtyBitmapAt.Scratch) return Describe(rc);
        return Describe(rc) + " bitmap=" + Convert.ToHexString(scratch.Read(op.C, ShownBitmapBytes));
    }

    private string ClearDirtyLog(FuzzOp op)
    {
        var scratch = Scratch;
        scratch.Fill(op.C);
        var log = new kvm_clear_dirty_log
        {
            slot = (uint)op.A, first_page = op.B, num_pages = unchecked((uint)op.E), dirty_bitmap = scratch.Address((DirtyBitmapAt)op.D, op.U),
        };
        return Describe(_kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_CLEAR_DIRTY_LOG, Bytes(ref log)));
    }
}

/// <summary>
/// Three pages of this process for dirty bitmaps, mapped with the host's own mmap (whichever kernel the session
/// fuzzes, both copy to and from this process's memory): read/write, read-only with a fixed pattern (a memfd's page),
/// PROT_NONE. Dirty-log ops point only here, at NULL or into the kernel half, so a kernel writing a bitmap never
/// touches live memory of the fuzzer.
/// </summary>
internal sealed class DirtyLogScratch : IDisposable
{
    /// <summary>What the read-only page holds: a KVM_CLEAR_DIRTY_LOG mask read from it.</summary>
    public const ulong ReadOnlyPattern = 0x0F0F_0000_FFFF_3C3C;

    private static readonly ulong Ps = (ulong)Environment.SystemPageSize;
    private readonly nint _start;

    private DirtyLogScratch(nint start) => _start = start;

    public static DirtyLogScratch Map()
    {
        const int ProtNone = 0, ProtRead = 1, ProtWrite = 2, MapShared = 0x01, MapPrivate = 0x02, MapFixed = 0x10, MapAnonymous = 0x20;
        long rc = HostMemory.Mmap(0, 3 * Ps, ProtNone, MapPrivate | MapAnonymous, -1, 0, out nint start);
        if (rc < 0) throw new InvalidOperationException($"cannot map the dirty-log scratch: {rc}");
        var scratch = new DirtyLogScratch(start);
        try
        {
            // MAP_FIXED over the reservation just made, nothing else.
            Check(HostMemory.Mmap(start, Ps, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapFixed, -1, 0, out _), "read/write page");
            long fd = HostMemory.MemfdCreate("kvmsharp-fuzz-dirty-log", 0);
            Check(fd, "memfd");
            try
            {
                var pattern = new ulong[Ps / 8];
                Array.Fill(pattern, ReadOnlyPattern);
                Check(HostMemory.Pwrite((int)fd, MemoryMarshal.AsBytes(pattern.AsSpan()), 0), "memfd write");
                Check(HostMemory.Mmap(start + (nint)Ps, Ps, ProtRead, MapShared | MapFixed, (int)fd, 0, out _), "read-only page");
            }
            finally
            {
                _ = HostMemory.Close((int)fd);
            }
        }
        catch
        {
            scratch.Dispose();
            throw;
        }
        return scratch;
    }

    private static void Check(long rc, string what)
    {
        if (rc < 0) throw new InvalidOperationException($"cannot map the dirty-log scratch ({what}): {rc}");
    }

    /// <summary>The user address a dirty-log op passes for <paramref name="at"/> (<paramref name="offset"/>: into the read/write page).</summary>
    public ulong Address(DirtyBitmapAt at, ulong offset) => at switch
    {
        DirtyBitmapAt.Scratch => (ulong)_start + offset % (Ps - 64),
        DirtyBitmapAt.Null => 0,
        DirtyBitmapAt.KernelHalf => 0xFFFF_8000_0000_0000,
        DirtyBitmapAt.ReadOnly => (ulong)_start + Ps,
        DirtyBitmapAt.Guard => (ulong)_start + 2 * Ps,
        DirtyBitmapAt.StraddleReadOnly => (ulong)_start + Ps - 4,
        DirtyBitmapAt.StraddleGuard => (ulong)_start + 2 * Ps - 4,
        _ => 0,
    };

    /// <summary>Every word of the read/write page set to <paramref name="word"/>.</summary>
    public void Fill(ulong word)
    {
        var words = new long[Ps / 8];
        Array.Fill(words, unchecked((long)word));
        Marshal.Copy(words, 0, _start, words.Length);
    }

    /// <summary>A copy of <paramref name="length"/> bytes of the read/write page at <paramref name="offset"/> (as <see cref="Address"/> places it).</summary>
    public byte[] Read(ulong offset, int length)
    {
        var bytes = new byte[length];
        Marshal.Copy(_start + (nint)(offset % (Ps - 64)), bytes, 0, length);
        return bytes;
    }

    /// <summary>Writes <paramref name="bytes"/> into the read/write page at <paramref name="offset"/> (as <see cref="Address"/> places it).</summary>
    public void Write(ulong offset, ReadOnlySpan<byte> bytes) =>
        bytes.CopyTo(HostMemory.UnownedSpan(_start + (nint)(offset % (Ps - 64)), bytes.Length));

    public void Dispose() => _ = HostMemory.Munmap(_start, 3 * Ps);
}
