// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation;

/// <summary>
/// The emulated process's file descriptor table (fs/file.c): the lowest free number is handed out, 0-2 are taken
/// by stdio as in a real process. Closing drops the table's reference (fput). With an <see cref="IFdNumberSource"/>
/// the numbers are lent by the real process instead (see <c>kvmsharp exec</c>).
/// </summary>
internal sealed class FdTable(IFdNumberSource? numbers = null)
{
    /// <summary>RLIMIT_NOFILE default hard limit; beyond it get_unused_fd_flags fails with EMFILE.</summary>
    private const int NrOpen = 1 << 20;
    private const int FirstFd = 3;

    private readonly Dictionary<int, KernelFile> _files = [];
    private readonly SortedSet<int> _free = [];
    private int _next = FirstFd;

    public int Count => _files.Count;

    public IEnumerable<int> Numbers => _files.Keys;

    /// <summary>fd_install on get_unused_fd_flags(): the new fd, or EMFILE.</summary>
    public long Install(KernelFile file)
    {
        int fd;
        if (numbers is not null)
        {
            long lent = numbers.Reserve();
            if (Err.IsError(lent)) return lent;
            fd = (int)lent;
        }
        else if (_free.Count > 0)
        {
            fd = _free.Min;
            _free.Remove(fd);
        }
        else
        {
            if (_next >= NrOpen) return Err.EMFILE;
            fd = _next++;
        }
        _files[fd] = file;
        return fd;
    }

    /// <summary>True when another fd could be installed now (with lent numbers: asked at <see cref="Install"/>).</summary>
    public bool HasRoom => numbers is not null || _free.Count > 0 || _next < NrOpen;

    /// <summary>fget without a reference (the caller holds the kernel lock).</summary>
    public KernelFile? Get(long fd) => fd is >= 0 and <= int.MaxValue ? _files.GetValueOrDefault((int)fd) : null;

    /// <summary>close(2): EBADF when not open; else the number is freed and the reference dropped.</summary>
    public long Close(int fd)
    {
        if (!_files.Remove(fd, out var file)) return Err.EBADF;
        if (numbers is not null) numbers.Release(fd);
        else _free.Add(fd);
        file.Put();
        return 0;
    }
}
