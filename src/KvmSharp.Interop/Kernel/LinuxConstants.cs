// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel;

/// <summary>Linux syscall flag values used at the boundary (x86_64/arm64 generic values).</summary>
public static class LinuxConstants
{
    // open(2)
    public const int O_RDONLY = 0x0;
    public const int O_WRONLY = 0x1;
    public const int O_RDWR = 0x2;
    public const int O_CLOEXEC = 0x80000;

    // eventfd2(2) (include/uapi/linux/eventfd.h: EFD_CLOEXEC = O_CLOEXEC, EFD_NONBLOCK = O_NONBLOCK)
    public const int EFD_SEMAPHORE = 0x1;
    public const int EFD_NONBLOCK = 0x800;
    public const int EFD_CLOEXEC = 0x80000;

    // mmap(2)
    public const int PROT_NONE = 0x0;
    public const int PROT_READ = 0x1;
    public const int PROT_WRITE = 0x2;
    public const int PROT_EXEC = 0x4;
    public const int MAP_SHARED = 0x01;
    public const int MAP_PRIVATE = 0x02;
    public const int MAP_FIXED = 0x10;
    public const int MAP_ANONYMOUS = 0x20;
    public const int MAP_NORESERVE = 0x4000;
    public const int MAP_POPULATE = 0x8000;

    // madvise(2)
    public const int MADV_DONTNEED = 4;
    public const int MADV_HUGEPAGE = 14;
    public const int MADV_POPULATE_READ = 22;
    public const int MADV_POPULATE_WRITE = 23;
    public const int MADV_COLLAPSE = 25;

    // fallocate(2)
    public const int FALLOC_FL_KEEP_SIZE = 0x01;
    public const int FALLOC_FL_PUNCH_HOLE = 0x02;

    // lseek(2)
    public const int SEEK_SET = 0;
    public const int SEEK_CUR = 1;
    public const int SEEK_END = 2;

    // stat(2) st_mode
    public const uint S_IFMT = 0xF000;
    public const uint S_IFREG = 0x8000;
    public const uint S_IFCHR = 0x2000;

    /// <summary>Largest value the kernel reports as an error: results in [-4095, -1] are -errno.</summary>
    public const long MAX_ERRNO = 4095;
}
