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

    /// <summary>
    /// fd_install on get_unused_fd_flags(): the new fd, or EMFILE. <paramref name="closeOnExec"/> is the O_CLOEXEC
    /// the kernel gives it (KVM's anon_inode_getfd(…, O_RDWR | O_CLOEXEC) for VMs, vCPUs, devices and statistics;
    /// not for a guest_memfd), which only a lent number's real descriptor can show.
    /// </summary>
    public long Install(KernelFile file, bool closeOnExec = true)
    {
        int fd;
        if (numbers is not null)
        {
            bool device = (file.Mode & LinuxConstants.S_IFMT) == LinuxConstants.S_IFCHR;
            long lent = numbers.Reserve(new FdNumberRequest(device, !file.ReadOnly, closeOnExec));
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
        // The real descriptor behind a lent number polls like the eventfd it stands for.
        if (numbers is not null && file is Fs.EventFdFile eventFd)
            eventFd.Ctx.MirrorReadable(fd, readable => numbers.MirrorReadable(fd, readable));
        return fd;
    }

    /// <summary>True when another fd could be installed now (with lent numbers: asked at <see cref="Install"/>).</summary>
    public bool HasRoom => numbers is not null || _free.Count > 0 || _next < NrOpen;

    /// <summary>fget without a reference (the caller holds the kernel lock).</summary>
    public KernelFile? Get(long fd) => fd is >= 0 and <= int.MaxValue ? _files.GetValueOrDefault((int)fd) : null;

    /// <summary>
    /// dup2(2) onto a lent number the process already made a copy of (<paramref name="fd"/> now stands for the same
    /// file as <paramref name="of"/>): the file gains a reference; a file this number held before is dropped without
    /// giving the number back (the process's dup2 replaced it). EBADF when <paramref name="of"/> is not open.
    /// </summary>
    public long InstallCopy(int fd, int of)
    {
        if (!_files.TryGetValue(of, out var file)) return Err.EBADF;
        file.Get();
        if (_files.Remove(fd, out var replaced)) Drop(fd, replaced);
        _files[fd] = file;
        return fd;
    }

    /// <summary>
    /// The process reused a lent number for a file of its own (dup2 of a real descriptor onto it): the file is dropped
    /// and the number is not given back. EBADF when it was not open here.
    /// </summary>
    public long Forget(int fd)
    {
        if (!_files.Remove(fd, out var file)) return Err.EBADF;
        Drop(fd, file);
        return 0;
    }

    /// <summary>close(2): EBADF when not open; else the number is freed and the reference dropped.</summary>
    public long Close(int fd)
    {
        if (!_files.Remove(fd, out var file)) return Err.EBADF;
        // First: an eventfd must stop mirroring before its real descriptor goes back to the process.
        Drop(fd, file);
        if (numbers is not null) numbers.Release(fd);
        else _free.Add(fd);
        return 0;
    }

    // The table's reference to the file at fd goes (fput), and an eventfd stops mirroring into that number.
    private static void Drop(int fd, KernelFile file)
    {
        if (file is Fs.EventFdFile eventFd) eventFd.Ctx.StopMirroring(fd);
        file.Put();
    }
}
