// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Vfs;

/// <summary>
/// lseek(2) on a file whose f_op->llseek is default_llseek (fs/read_write.c, 6.18): ksys_lseek refuses whence &gt;
/// SEEK_MAX (EINVAL) before vfs_llseek; default_llseek treats the whole file as data with a virtual hole at i_size
/// and moves f_pos to any offset &gt;= 0 (no s_maxbytes limit, unlike generic_file_llseek).
/// </summary>
internal static class DefaultLlseek
{
    private const int SEEK_SET = 0;
    private const int SEEK_CUR = 1;
    private const int SEEK_END = 2;
    private const int SEEK_DATA = 3;
    private const int SEEK_HOLE = 4;

    /// <summary>
    /// ksys_lseek → vfs_llseek: whence &gt; SEEK_MAX → EINVAL; files without default_llseek keep
    /// <see cref="VfsCalls.Lseek"/>'s answer (ESPIPE without FMODE_LSEEK, noop_llseek's f_pos).
    /// </summary>
    public static long Lseek(KernelFile file, long offset, int whence)
    {
        if ((uint)whence > SEEK_HOLE || !file.HasDefaultLlseek) return VfsCalls.Lseek(file, whence);
        return Seek(file, offset, whence);
    }

    /// <summary>default_llseek(file, offset, whence) for a whence ksys_lseek let through (0 … SEEK_MAX).</summary>
    public static long Seek(KernelFile file, long offset, int whence)
    {
        long size = file.Size;
        switch (whence)
        {
            case SEEK_END:
                // "offset += i_size_read(inode)": loff_t arithmetic wraps (the kernel builds with -fno-strict-overflow).
                offset = unchecked(offset + size);
                break;
            case SEEK_CUR:
                // "if (offset == 0) { retval = file->f_pos; goto out; }": a query, f_pos untouched.
                if (offset == 0) return file.Position;
                offset = unchecked(offset + file.Position);
                break;
            case SEEK_DATA:
                // "the entire file is data": offset >= i_size → ENXIO, else the offset itself (a negative one fails below).
                if (offset >= size) return Err.ENXIO;
                break;
            case SEEK_HOLE:
                // "a virtual hole at the end of the file": offset >= i_size → ENXIO, else i_size (even for a negative offset).
                if (offset >= size) return Err.ENXIO;
                offset = size;
                break;
            case SEEK_SET:
                break;
        }
        // "retval = -EINVAL; if (offset >= 0 || unsigned_offsets(file))": guest_memfd has no FOP_UNSIGNED_OFFSET.
        if (offset < 0) return Err.EINVAL;
        file.Position = offset;
        return offset;
    }
}
