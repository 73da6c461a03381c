// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Vfs;

/// <summary>
/// fs/ioctl.c do_vfs_ioctl: the ioctls the VFS answers for every file before f_op->unlocked_ioctl sees the request.
/// Only the ones observed to answer on KVM files are modeled; the rest fall through to the file.
/// </summary>
internal static class DoVfsIoctl
{
    // include/uapi/asm-generic/ioctls.h, include/uapi/linux/fs.h
    private const uint FIONCLEX = 0x5450;
    private const uint FIOCLEX = 0x5451;
    private const uint FIOASYNC = 0x5452;
    private const uint FIONBIO = 0x5421;
    private const uint FIGETBSZ = 0x0002;
    private const uint FS_IOC_FIEMAP = 0xC020660B;
    private const uint FIFREEZE = 0xC0045877;
    private const uint FITHAW = 0xC0045878;

    /// <summary>Returns true and the result when the VFS handled <paramref name="request"/>.</summary>
    public static bool TryHandle(KernelFile file, uint request, IoctlArg arg, out long result)
    {
        switch (request)
        {
            case FIOCLEX:
            case FIONCLEX:
                // close-on-exec has no meaning inside one process.
                result = 0;
                return true;
            case FIONBIO:
                // ioctl_fionbio: get_user(int) first → EFAULT on a bad pointer; then O_NONBLOCK set or cleared.
                if (!arg.GetUser(out int on))
                {
                    result = Err.EFAULT;
                    return true;
                }
                file.NonBlocking = on != 0;
                result = 0;
                return true;
            case FIOASYNC:
                // ioctl_fioasync: get_user(int) first → EFAULT on a bad pointer.
                result = arg.GetUser(out _) ? 0 : Err.EFAULT;
                return true;
            case FIGETBSZ:
                // put_user(sb->s_blocksize): PAGE_SIZE on every pseudo fs and devtmpfs.
                result = arg.PutUser(EmulatorConfig.PageSize) ? 0 : Err.EFAULT;
                return true;
            case FS_IOC_FIEMAP:
                // ioctl_fiemap: no i_op->fiemap → EOPNOTSUPP.
                result = Err.EOPNOTSUPP;
                return true;
            case FIFREEZE:
            case FITHAW:
                // ioctl_fsfreeze/fsthaw: no freeze_fs on these super blocks → EOPNOTSUPP.
                result = Err.EOPNOTSUPP;
                return true;
            default:
                result = 0;
                return false;
        }
    }
}
