// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel;

/// <summary>Raw Linux errno values (include/uapi/asm-generic/errno-base.h, errno.h), x86_64 and arm64 alike.</summary>
public enum Errno
{
    None = 0,
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    E2BIG = 7,
    ENOEXEC = 8,
    EBADF = 9,
    ECHILD = 10,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    EXDEV = 18,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    ENFILE = 23,
    EMFILE = 24,
    ENOTTY = 25,
    EFBIG = 27,
    ENOSPC = 28,
    ESPIPE = 29,
    EROFS = 30,
    EPIPE = 32,
    ERANGE = 34,
    ENOSYS = 38,
    EOPNOTSUPP = 95,
    EHWPOISON = 133,
}

/// <summary>Names and strerror-style descriptions, the same on both kernels.</summary>
public static class ErrnoInfo
{
    public static string NameOf(int errno) =>
        Enum.IsDefined(typeof(Errno), errno) ? ((Errno)errno).ToString() : $"errno {errno}";

    public static string Describe(int errno) => (Errno)errno switch
    {
        Errno.EPERM => "Operation not permitted",
        Errno.ENOENT => "No such file or directory",
        Errno.EINTR => "Interrupted system call",
        Errno.EIO => "Input/output error",
        Errno.E2BIG => "Argument list too long",
        Errno.EBADF => "Bad file descriptor",
        Errno.EAGAIN => "Resource temporarily unavailable",
        Errno.ENOMEM => "Cannot allocate memory",
        Errno.EACCES => "Permission denied",
        Errno.EFAULT => "Bad address",
        Errno.EBUSY => "Device or resource busy",
        Errno.EEXIST => "File exists",
        Errno.ENODEV => "No such device",
        Errno.EINVAL => "Invalid argument",
        Errno.EMFILE => "Too many open files",
        Errno.ENOTTY => "Inappropriate ioctl for device",
        Errno.EFBIG => "File too large",
        Errno.ENOSPC => "No space left on device",
        Errno.ESPIPE => "Illegal seek",
        Errno.ENOSYS => "Function not implemented",
        Errno.EOPNOTSUPP => "Operation not supported",
        Errno.EHWPOISON => "Memory page has hardware error",
        _ => NameOf(errno),
    };
}
