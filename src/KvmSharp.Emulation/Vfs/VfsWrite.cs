// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Vfs;

/// <summary>
/// The generic halves of write(2) and pwrite64(2) for files with f_op->write_iter (fs/read_write.c, 6.18): ksys_write,
/// ksys_pwrite64, vfs_write, rw_verify_area, new_sync_write. Files without write_iter keep <see cref="VfsCalls"/>'s
/// answers. Of the KVM files only guest_memfd with "[PATCH v7 1/2] KVM: guest_memfd: add generic population via
/// write" has one (<c>.write_iter = generic_perform_write</c>).
/// </summary>
internal static class VfsWrite
{
    /// <summary>include/linux/fs.h MAX_RW_COUNT = INT_MAX &amp; PAGE_MASK: vfs_write clamps larger counts to it.</summary>
    public static int MaxRwCount => int.MaxValue & ~(EmulatorConfig.PageSize - 1);

    /// <summary>
    /// ksys_write: vfs_write at a copy of f_pos (file_ppos: guest_memfd is not FMODE_STREAM), and f_pos takes the
    /// copy back when the result is &gt;= 0.
    /// </summary>
    public static long Write(KernelFile file, ReadOnlySpan<byte> buffer)
    {
        // vfs_write: !(f_mode & FMODE_CAN_WRITE) → EINVAL (FMODE_WRITE always holds: every KVM file is O_RDWR).
        if (!file.HasWriteIter) return VfsCalls.Write(file);
        long pos = file.Position;
        long ret = VfsWriteAt(file, buffer, ref pos);
        if (ret >= 0) file.Position = pos;
        return ret;
    }

    /// <summary>
    /// ksys_pwrite64 after its "pos &lt; 0 → EINVAL" and the fd lookup: no FMODE_PWRITE → ESPIPE, else vfs_write at
    /// <paramref name="offset"/> (f_pos untouched).
    /// </summary>
    public static long Pwrite(KernelFile file, ReadOnlySpan<byte> buffer, long offset)
    {
        if (!file.CanPositionalWrite) return Err.ESPIPE;
        if (!file.HasWriteIter) return Err.EINVAL;
        long pos = offset;
        return VfsWriteAt(file, buffer, ref pos);
    }

    /// <summary>vfs_write once FMODE_CAN_WRITE holds; a span is always a valid user range (access_ok).</summary>
    private static long VfsWriteAt(KernelFile file, ReadOnlySpan<byte> buffer, ref long pos)
    {
        long r = RwVerifyArea(pos, buffer.Length);
        if (r != 0) return r;
        if (buffer.Length > MaxRwCount) buffer = buffer[..MaxRwCount];
        // new_sync_write: kiocb.ki_pos = *ppos; ret = write_iter(); "if (ret > 0 && ppos) *ppos = kiocb.ki_pos".
        long kiPos = pos;
        long ret = file.WriteIter(buffer, ref kiPos);
        if (ret > 0) pos = kiPos;
        return ret;
    }

    /// <summary>
    /// rw_verify_area(WRITE, file, ppos, count) for a file without FOP_UNSIGNED_OFFSET: a negative position, or one whose
    /// end overflows loff_t, is EINVAL (security_file_permission and fsnotify allow everything here).
    /// </summary>
    private static long RwVerifyArea(long pos, long count)
    {
        if (pos < 0) return Err.EINVAL;
        if (unchecked(pos + count) < 0) return Err.EINVAL;
        return 0;
    }
}
