// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Vfs;

/// <summary>
/// The generic halves of the file syscalls (fs/read_write.c, fs/open.c), in the kernel's order, before a file's own
/// operations run. All gmem and KVM files are O_RDWR, so the FMODE_READ/FMODE_WRITE (EBADF) checks always pass.
/// </summary>
internal static class VfsCalls
{
    /// <summary>include/uapi/linux/fs.h: SEEK_MAX = SEEK_HOLE.</summary>
    private const int SEEK_MAX = 4;

    // include/uapi/linux/falloc.h
    private const int FALLOC_FL_KEEP_SIZE = 0x01;
    private const int FALLOC_FL_PUNCH_HOLE = 0x02;
    private const int FALLOC_FL_COLLAPSE_RANGE = 0x08;
    private const int FALLOC_FL_ZERO_RANGE = 0x10;
    private const int FALLOC_FL_INSERT_RANGE = 0x20;
    private const int FALLOC_FL_UNSHARE_RANGE = 0x40;
    private const int FALLOC_FL_WRITE_ZEROES = 0x80;
    private const int FALLOC_FL_MODE_MASK = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_ZERO_RANGE |
        FALLOC_FL_INSERT_RANGE | FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_WRITE_ZEROES;

    // fs/read_write.c ksys_read: vfs_read at a copy of f_pos, which takes it back. No f_op->read (FMODE_CAN_READ unset)
    // → EINVAL, checked before the count, so even a zero-length read fails; only the binary stats files have one.
    public static long Read(KernelFile file, Span<byte> buffer)
    {
        if (!file.HasRead) return Err.EINVAL;
        long pos = file.Position;
        long n = file.Read(buffer, ref pos);
        file.Position = pos;
        return n;
    }

    // ksys_pread64 after "pos < 0 → EINVAL" and the fd lookup: no FMODE_PREAD → ESPIPE, else vfs_read at the offset
    // (f_pos untouched).
    public static long Pread(KernelFile file, Span<byte> buffer, long offset) =>
        !file.CanPositionalIo ? Err.ESPIPE : file.HasRead ? file.Read(buffer, ref offset) : Err.EINVAL;

    // vfs_write: no f_op->write/write_iter → EINVAL (the write_iter files go through VfsWrite).
    public static long Write(KernelFile file) => Err.EINVAL;

    // fs/read_write.c ksys_lseek: whence > SEEK_MAX → EINVAL; vfs_llseek: no FMODE_LSEEK → ESPIPE;
    // noop_llseek returns f_pos and moves nothing (0 on every file but a binary stats fd, whose read(2) advances it).
    public static long Lseek(KernelFile file, int whence)
    {
        if ((uint)whence > SEEK_MAX) return Err.EINVAL;
        return file.HasNoopLlseek ? file.Position : Err.ESPIPE;
    }

    // fs/open.c do_ftruncate: length < 0 → EINVAL; !S_ISREG → EINVAL; else notify_change → i_op->setattr.
    // kvm_gmem_setattr returns EINVAL (virt/kvm/guest_memfd.c), so every case is EINVAL on these files.
    public static long Ftruncate(KernelFile file, long length) => Err.EINVAL;

    /// <summary>fs/open.c vfs_fallocate (6.18), generic checks in order, then f_op->fallocate.</summary>
    public static long Fallocate(KernelFile file, int mode, long offset, long length)
    {
        if (offset < 0 || length <= 0) return Err.EINVAL;
        if ((mode & ~(FALLOC_FL_MODE_MASK | FALLOC_FL_KEEP_SIZE)) != 0) return Err.EOPNOTSUPP;
        switch (mode & FALLOC_FL_MODE_MASK)
        {
            case 0: // FALLOC_FL_ALLOCATE_RANGE
            case FALLOC_FL_UNSHARE_RANGE:
            case FALLOC_FL_ZERO_RANGE:
                break;
            case FALLOC_FL_PUNCH_HOLE:
                if ((mode & FALLOC_FL_KEEP_SIZE) == 0) return Err.EOPNOTSUPP;
                break;
            case FALLOC_FL_COLLAPSE_RANGE:
            case FALLOC_FL_INSERT_RANGE:
            case FALLOC_FL_WRITE_ZEROES:
                if ((mode & FALLOC_FL_KEEP_SIZE) != 0) return Err.EOPNOTSUPP;
                break;
            default:
                return Err.EOPNOTSUPP;
        }
        // "if (!(file->f_mode & FMODE_WRITE)) return -EBADF;" (a binary stats fd is O_RDONLY; probed: EBADF).
        if (file.ReadOnly) return Err.EBADF;
        // Not S_ISREG (and not a block device): /dev/kvm is S_IFCHR, VM files are typeless anon inodes → ENODEV.
        if (!file.IsRegular) return Err.ENODEV;
        // Wraparound / s_maxbytes (MAX_LFS_FILESIZE on the guest_memfd pseudo fs) → EFBIG.
        if (offset + length < 0) return Err.EFBIG;
        return file.Fallocate(mode, offset, length);
    }
}
