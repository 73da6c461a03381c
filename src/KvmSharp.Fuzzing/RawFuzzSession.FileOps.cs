// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The file operations other than ioctl, mmap and close: fallocate(2) on guest_memfds (modes, offsets and lengths
/// around page multiples, allocations bounded by <see cref="MaxAllocation"/>) and the byte I/O calls on any descriptor
/// (eventfds made non-blocking first so nothing waits).
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>fallocate(2), mostly on a guest_memfd: allocate, keep size or punch a hole; allocations bounded to a few MiB.</summary>
    private string Fallocate()
    {
        int fd = PickFd(FdKind.Gmem);
        int mode = _rng.Next(8) switch
        {
            0 => _rng.Next(0x100),
            1 => 0,
            2 => LinuxConstants.FALLOC_FL_PUNCH_HOLE,
            < 5 => LinuxConstants.FALLOC_FL_KEEP_SIZE,
            _ => LinuxConstants.FALLOC_FL_KEEP_SIZE | LinuxConstants.FALLOC_FL_PUNCH_HOLE,
        };
        long offset = _rng.Next(5) == 0 ? (long)Interesting() : (long)(Ps * (ulong)_rng.Next(0, 20)) + (_rng.Next(10) == 0 ? 1 : 0);
        long length = _rng.Next(5) == 0 ? (long)Interesting() : (long)(Ps * (ulong)_rng.Next(0, 12)) + (_rng.Next(10) == 0 ? 7 : 0);
        // Bound real allocations: an allocating fallocate on a huge file could take gigabytes of this machine.
        if ((mode & LinuxConstants.FALLOC_FL_PUNCH_HOLE) == 0 && length > (long)MaxAllocation)
            length = (long)((ulong)length % MaxAllocation) | (length & (PageSize - 1));
        string what = string.Create(CultureInfo.InvariantCulture, $"fallocate({fd}, 0x{mode:X}, 0x{offset:X}, 0x{length:X})");
        Begin(what);
        return Record(what, _kernel.Fallocate(Handle(fd), mode, offset, length));
    }

    /// <summary>read, write, pread, pwrite, lseek, fstat or ftruncate on any descriptor (whole pages where guest_memfd takes write(2)).</summary>
    private string FileIo()
    {
        int fd = PickFd();
        // Whole pages at small page offsets, sometimes: what a guest_memfd write (GmemWrite) accepts, when the kernel has it.
        bool pages = _kernel.Config.GuestMemfdWrite && _rng.Next(3) == 0;
        byte[] buf = pages ? new byte[PageSize * _rng.Next(1, 4)] : new byte[_rng.Next(4) == 0 ? 0 : _rng.Next(1, 128)];
        long offset = pages ? (long)(Ps * (ulong)_rng.Next(0, 20)) : (long)Interesting();
        int which = _rng.Next(7);
        string[] names = ["read", "write", "pread", "pwrite", "lseek", "fstat", "ftruncate"];
        // An eventfd's read of 0 or write past 2^64 - 2 would wait for another thread: FIONBIO first (a fuzzed FIONBIO
        // may have cleared O_NONBLOCK), and mostly the 8 bytes eventfd_read/eventfd_write want.
        if (KindOf(fd) == FdKind.EventFd && which <= 1)
        {
            _ = _kernel.Ioctl(Handle(fd), 0x5421 /* FIONBIO */, BitConverter.GetBytes(1));
            if (_rng.Next(3) != 0) buf = BitConverter.GetBytes(_rng.Next(3) == 0 ? Interesting() : (ulong)_rng.Next(3));
        }
        string what = string.Create(CultureInfo.InvariantCulture, $"{names[which]}({fd}, len={buf.Length}, off=0x{offset:X})");
        Begin(what);
        long rc = which switch
        {
            0 => _kernel.Read(Handle(fd), buf),
            1 => _kernel.Write(Handle(fd), buf),
            2 => _kernel.Pread(Handle(fd), buf, offset),
            3 => _kernel.Pwrite(Handle(fd), buf, offset),
            4 => _kernel.Lseek(Handle(fd), offset, _rng.Next(-1, 6)),
            5 => _kernel.Fstat(Handle(fd), out _),
            _ => _kernel.Ftruncate(Handle(fd), offset),
        };
        return Record(what, rc);
    }
}
