// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel;

/// <summary>The fields of <c>struct stat</c> that the boundary reports.</summary>
/// <param name="Device">st_dev.</param>
/// <param name="Inode">st_ino.</param>
/// <param name="Mode">st_mode.</param>
/// <param name="Links">st_nlink.</param>
/// <param name="Size">st_size.</param>
/// <param name="BlockSize">st_blksize.</param>
/// <param name="Blocks">st_blocks.</param>
/// <param name="RDevice">
/// st_rdev as user space reads it (glibc's makedev encoding, <see cref="EncodeDevice"/>): 10:232 for /dev/kvm, 0 for
/// anything that is not a device node.
/// </param>
/// <param name="Uid">st_uid.</param>
/// <param name="Gid">st_gid.</param>
public readonly record struct KernelStat(
    ulong Device, ulong Inode, uint Mode, ulong Links, long Size, long BlockSize, long Blocks,
    ulong RDevice = 0, uint Uid = 0, uint Gid = 0)
{
    /// <summary>
    /// A device number as struct stat carries it (fs/stat.c cp_new_stat: new_encode_dev, widened as glibc's
    /// gnu_dev_makedev: minor bits 7:0, major bits 19:8, minor bits 31:8 at 43:20, major bits 31:12 at 63:44).
    /// </summary>
    public static ulong EncodeDevice(uint major, uint minor) =>
        (minor & 0xffUL) | ((major & 0xfffUL) << 8) | ((ulong)(minor & ~0xffu) << 12) | ((ulong)(major & ~0xfffu) << 32);
}
