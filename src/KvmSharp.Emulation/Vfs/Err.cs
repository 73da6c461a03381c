// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Vfs;

/// <summary>
/// <c>-errno</c> results, spelled like the kernel's <c>return -EINVAL;</c>. Includes the few errnos the shared
/// <see cref="Errno"/> enum does not name.
/// </summary>
internal static class Err
{
    public const long EPERM = -(long)Errno.EPERM;
    public const long ENOENT = -(long)Errno.ENOENT;
    public const long EINTR = -(long)Errno.EINTR;
    public const long ESRCH = -(long)Errno.ESRCH;
    public const long EIO = -(long)Errno.EIO;
    public const long E2BIG = -(long)Errno.E2BIG;
    public const long ENOEXEC = -(long)Errno.ENOEXEC;
    public const long EBADF = -(long)Errno.EBADF;
    public const long EAGAIN = -(long)Errno.EAGAIN;
    public const long ENOMEM = -(long)Errno.ENOMEM;
    public const long ENOSPC = -(long)Errno.ENOSPC;
    public const long EACCES = -(long)Errno.EACCES;
    public const long EFAULT = -(long)Errno.EFAULT;
    public const long EEXIST = -(long)Errno.EEXIST;
    public const long EBUSY = -(long)Errno.EBUSY;
    public const long ENODEV = -(long)Errno.ENODEV;
    public const long EINVAL = -(long)Errno.EINVAL;
    public const long EMFILE = -(long)Errno.EMFILE;
    public const long ENOTTY = -(long)Errno.ENOTTY;
    public const long ENXIO = -(long)Errno.ENXIO;
    public const long EFBIG = -(long)Errno.EFBIG;
    public const long ESPIPE = -(long)Errno.ESPIPE;
    public const long EOPNOTSUPP = -(long)Errno.EOPNOTSUPP;

    /// <summary>include/uapi/asm-generic/errno.h: Value too large for defined data type (75).</summary>
    public const long EOVERFLOW = -75;

    public static bool IsError(long rc) => rc < 0 && rc >= -LinuxConstants.MAX_ERRNO;
}
