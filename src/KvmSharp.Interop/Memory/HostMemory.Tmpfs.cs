// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Memory;

/// <summary>
/// The backing files of emulated guest memory. Preferred: an unlinked file on a tmpfs instance private to this
/// process, mounted with <c>huge=within_size</c> (new mount API: fsopen/fsconfig/fsmount; the mount is detached, so
/// it appears in no mount namespace and goes away with the process). Its page cache may use transparent huge
/// folios even when the host's <c>/sys/kernel/mm/transparent_hugepage/shmem_enabled</c> is <c>never</c> (that knob
/// governs the internal shm mount behind memfd_create; a tmpfs mount's own <c>huge=</c> option governs its files,
/// unless the knob says <c>deny</c>): a first touch then faults in 2 MiB at once instead of one 4 KiB page per
/// fault. Everything else is plain shmem, exactly as for a memfd: sparse until used, zero-filled, a punched 4 KiB
/// range reads back zero (shmem zeroes it inside a huge folio and splits the folio), SEEK_DATA skips holes. The
/// mount needs CAP_SYS_ADMIN (fsopen); without it, or on a kernel or C library without the new mount API, the
/// file is a memfd as before.
/// </summary>
public static unsafe partial class HostMemory
{
    private const uint FSOPEN_CLOEXEC = 0x1;
    private const uint FSCONFIG_SET_STRING = 1;
    private const uint FSCONFIG_CMD_CREATE = 6;
    private const uint FSMOUNT_CLOEXEC = 0x1;
    private const uint MOUNT_ATTR_NOSUID = 0x2;
    private const uint MOUNT_ATTR_NODEV = 0x4;

    // Identical on x86_64 and arm64 (the generic open flags).
    private const int O_RDWR = 0x2;
    private const int O_CREAT = 0x40;
    private const int O_EXCL = 0x80;
    private const int O_CLOEXEC = 0x80000;

    private static readonly Lock s_tmpfsLock = new();
    // The private tmpfs mount: -2 = not tried yet, -1 = unavailable, else its mount fd (kept for the process).
    private static int s_tmpfsMount = -2;

    /// <summary>
    /// Whether <see cref="CreateBackingFile"/> may use the private huge-page tmpfs (default true). False forces
    /// memfd_create with its 4 KiB shmem pages (for A/B measurements).
    /// </summary>
    public static bool PreferHugeTmpfs { get; set; } = true;

    /// <summary>True when this process could mount the private <c>huge=within_size</c> tmpfs (tries it once).</summary>
    public static bool HugeTmpfsAvailable
    {
        get
        {
            lock (s_tmpfsLock) return TmpfsMount() >= 0;
        }
    }

    /// <summary>
    /// A new, empty, sparse shmem file for emulated guest memory (close-on-exec): on the private huge-page tmpfs
    /// when available and <see cref="PreferHugeTmpfs"/>, else memfd_create(<paramref name="name"/>, MFD_CLOEXEC).
    /// The tmpfs file is created as <c>memfd:</c><paramref name="name"/> and unlinked at once, so /proc/self/fd and
    /// /proc/self/maps show it exactly like the memfd (<c>/memfd:NAME (deleted)</c>) and descriptor-leak checks
    /// that look for backing memfds keep finding it. Returns the host descriptor or -errno.
    /// </summary>
    public static long CreateBackingFile(string name)
    {
        if (PreferHugeTmpfs)
        {
            lock (s_tmpfsLock)
            {
                int mount = TmpfsMount();
                if (mount >= 0)
                {
                    string path = "memfd:" + name;
                    int fd = openat(mount, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0x180 /* 0600 */);
                    if (fd >= 0)
                    {
                        if (unlinkat(mount, path, 0) == 0) return fd;
                        _ = close(fd);
                    }
                    // Any failure (EMFILE, ENOMEM …): memfd_create below answers with its own errno.
                }
            }
        }
        return MemfdCreate(name, MFD_CLOEXEC);
    }

    /// <summary>The private tmpfs mount fd, mounting it on first use; -1 when this process cannot. Under s_tmpfsLock.</summary>
    private static int TmpfsMount()
    {
        if (s_tmpfsMount != -2) return s_tmpfsMount;
        s_tmpfsMount = -1;
        try
        {
            int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
            if (fs < 0) return -1; // EPERM without CAP_SYS_ADMIN, ENOSYS before Linux 5.2
            int mount = -1;
            // size=0 and nr_inodes=0: no limits, like the internal shm mount behind memfd_create.
            if (fsconfig(fs, FSCONFIG_SET_STRING, "huge", "within_size", 0) == 0
                && fsconfig(fs, FSCONFIG_SET_STRING, "size", "0", 0) == 0
                && fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", "0", 0) == 0
                && fsconfig(fs, FSCONFIG_CMD_CREATE, null, null, 0) == 0)
            {
                mount = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
            }
            _ = close(fs);
            s_tmpfsMount = mount < 0 ? -1 : mount;
        }
        catch (EntryPointNotFoundException)
        {
            // A C library older than glibc 2.36 has no fsopen/fsconfig/fsmount wrappers: memfd only.
        }
        return s_tmpfsMount;
    }

    [LibraryImport(Libc, EntryPoint = "fsopen", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int fsopen(string fsName, uint flags);

    [LibraryImport(Libc, EntryPoint = "fsconfig", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int fsconfig(int fd, uint cmd, string? key, string? value, int aux);

    [LibraryImport(Libc, EntryPoint = "fsmount", SetLastError = true)]
    private static partial int fsmount(int fd, uint flags, uint attrFlags);

    /// <summary>
    /// openat is variadic in C (the mode); on x86_64 and arm64 Linux an integer variadic argument is passed exactly
    /// like a fixed one (the same reasoning as Libc.ioctl).
    /// </summary>
    [LibraryImport(Libc, EntryPoint = "openat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int openat(int dirfd, string path, int flags, uint mode);

    [LibraryImport(Libc, EntryPoint = "unlinkat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int unlinkat(int dirfd, string path, int flags);
}
