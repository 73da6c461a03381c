// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Vfs;

/// <summary>
/// An open file (<c>struct file</c>) with its <c>file_operations</c>. Absent operations answer as the VFS does when
/// the f_op pointer is NULL. Reference counted like fget/fput: the fd table and every VMA hold a reference, and
/// <see cref="OnRelease"/> (f_op->release) runs when the last one goes.
/// </summary>
internal abstract class KernelFile
{
    private int _refs = 1;

    /// <summary>st_mode: file type and permission bits.</summary>
    public abstract uint Mode { get; }

    /// <summary>st_dev of the (pseudo) file system.</summary>
    public abstract ulong Device { get; }

    public abstract ulong Inode { get; }

    /// <summary>st_rdev (i_rdev, KernelStat.EncodeDevice form): a device node's major:minor, 0 for every other file.</summary>
    public virtual ulong RDevice => 0;

    /// <summary>i_size.</summary>
    public virtual long Size => 0;

    /// <summary>FMODE_PREAD/FMODE_PWRITE: set by do_dentry_open for real opens, not for alloc_file_pseudo files.</summary>
    public virtual bool CanPositionalIo => false;

    /// <summary>f_op->llseek present (FMODE_LSEEK); all KVM files that have one use noop_llseek.</summary>
    public virtual bool HasNoopLlseek => false;

    /// <summary>
    /// f_op->llseek is default_llseek (fs/read_write.c; FMODE_LSEEK set by file_init_path because the op exists): the
    /// position moves as <see cref="Vfs.DefaultLlseek"/> computes. Only guest_memfd with [PATCH v7 1/2] has it.
    /// </summary>
    public virtual bool HasDefaultLlseek => false;

    /// <summary>FMODE_PWRITE alone ([PATCH v7 1/2] sets it on guest_memfd files, not FMODE_PREAD).</summary>
    public virtual bool CanPositionalWrite => CanPositionalIo;

    /// <summary>
    /// f_op->write_iter present, so file_init_path set FMODE_CAN_WRITE (fs/file_table.c); without it vfs_write is
    /// EINVAL before looking at the count.
    /// </summary>
    public virtual bool HasWriteIter => false;

    /// <summary>f_op->read present (only the binary statistics files have one): read(2) and pread64(2) reach <see cref="Read"/>.</summary>
    public virtual bool HasRead => false;

    /// <summary>
    /// f_op->read: bytes read from <paramref name="position"/> (0 at the end), which advances by them; -errno when
    /// none were (<see cref="VfsCalls.Read"/>, <see cref="VfsCalls.Pread"/>).
    /// </summary>
    public virtual long Read(Span<byte> buffer, ref long position) => Err.EINVAL;

    /// <summary>f_pos: where read(2) reads, write(2) writes and lseek(2) moves (0 when the file is created).</summary>
    public long Position { get; set; }

    /// <summary>
    /// f_op->write_iter after vfs_write's generic checks (<see cref="VfsWrite"/>): bytes written, or -errno when none
    /// were; on success <paramref name="position"/> (kiocb.ki_pos) has advanced by the bytes written.
    /// </summary>
    public virtual long WriteIter(ReadOnlySpan<byte> buffer, ref long position) => Err.EINVAL;

    /// <summary>
    /// Opened O_RDONLY (no FMODE_WRITE): write(2) and fallocate(2) are EBADF, a shared writable mapping EACCES. Only
    /// the binary statistics files are; every other KVM file is O_RDWR.
    /// </summary>
    public virtual bool ReadOnly => false;

    /// <summary>The file lives on a noexec mount (SB_I_NOEXEC / MNT_NOEXEC): PROT_EXEC mappings fail with EPERM.</summary>
    public virtual bool NoExec => false;

    /// <summary>True once f_op->release ran.</summary>
    public bool Released { get; private set; }

    public bool IsRegular => (Mode & LinuxConstants.S_IFMT) == LinuxConstants.S_IFREG;

    /// <summary>f_op->unlocked_ioctl; NULL → ENOTTY (fs/ioctl.c vfs_ioctl).</summary>
    public virtual long Ioctl(uint request, IoctlArg arg) => Err.ENOTTY;

    /// <summary>f_op->fallocate, after vfs_fallocate's generic checks; NULL → EOPNOTSUPP.</summary>
    public virtual long Fallocate(int mode, long offset, long length) => Err.EOPNOTSUPP;

    /// <summary>
    /// f_op->mmap, after do_mmap's generic checks, with the VMA's prot and MAP_ flags; NULL → ENODEV
    /// (mm/mmap.c do_mmap: !can_mmap_file).
    /// </summary>
    public virtual long Mmap(int prot, int flags) => Err.ENODEV;

    /// <summary>
    /// f_op->mmap with the VMA's page offset (vm_pgoff) and length in pages, for files whose rules depend on where
    /// the mapping lies (kvm_vcpu_mmap and the dirty ring); by default the same as <see cref="Mmap(int, int)"/>.
    /// </summary>
    public virtual long Mmap(int prot, int flags, ulong pgoff, ulong pages) => Mmap(prot, flags);

    /// <summary>O_NONBLOCK in f_flags; only files whose reads and writes can wait keep it (FIONBIO sets it).</summary>
    public virtual bool NonBlocking
    {
        get => false;
        set { }
    }

    /// <summary>The host descriptor whose pages back this file's mappings (-1 when it has none).</summary>
    public virtual int HostBackingFd => -1;

    /// <summary>
    /// Called right after a mapping of pages [<paramref name="pgoff"/>, +<paramref name="pages"/>) of
    /// <see cref="HostBackingFd"/> was made at <paramref name="mapped"/>: maps, with MAP_FIXED over it, the pages another
    /// host descriptor backs (a vCPU's coalesced MMIO page is its VM's). 0 or -errno.
    /// </summary>
    public virtual long MapOtherBackings(nint mapped, ulong pgoff, ulong pages, int prot, int flags) => 0;

    /// <summary>f_op->release.</summary>
    protected virtual void OnRelease() { }

    public void Get() => _refs++;

    /// <summary>fput: drops a reference; the last one releases the file.</summary>
    public void Put()
    {
        if (--_refs > 0) return;
        Released = true;
        OnRelease();
    }
}
