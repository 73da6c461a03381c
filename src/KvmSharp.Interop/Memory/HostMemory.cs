// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Memory;

/// <summary>
/// Host memory primitives for the emulated kernel: a guest_memfd file is backed by a sparse memfd (its page cache),
/// and every emulated mmap is a real MAP_SHARED mapping of that memfd, so two mappings alias, the guest path sees the
/// same bytes and a punched page reads back zero. Every call returns the raw result: &gt;= 0, or <c>-errno</c>.
/// Raw descriptors here are host descriptors owned by the caller, never emulated ones.
/// </summary>
public static unsafe partial class HostMemory
{
    private const string Libc = "libc";

    /// <summary>memfd_create(2) MFD_CLOEXEC.</summary>
    public const uint MFD_CLOEXEC = 0x0001;

    /// <summary>lseek(2) whence: the next offset holding data (ENXIO when none).</summary>
    public const int SEEK_DATA = 3;

    /// <summary>memfd_create(2): a new anonymous, sparse, shmem-backed file.</summary>
    public static long MemfdCreate(string name, uint flags)
    {
        int rc = memfd_create(name, flags);
        return rc < 0 ? Fail() : rc;
    }

    public static long Close(int fd) => close(fd) == 0 ? 0 : Fail();

    public static long Ftruncate(int fd, long length) => ftruncate(fd, length) == 0 ? 0 : Fail();

    public static long Fallocate(int fd, int mode, long offset, long length) =>
        fallocate(fd, mode, offset, length) == 0 ? 0 : Fail();

    /// <summary>lseek(2); with <see cref="SEEK_DATA"/> it finds the next page present in a memfd's page cache.</summary>
    public static long Lseek(int fd, long offset, int whence)
    {
        long rc = lseek(fd, offset, whence);
        return rc == -1 ? Fail() : rc;
    }

    /// <summary>mmap(2). <paramref name="fd"/> is -1 for anonymous memory.</summary>
    public static long Mmap(nint address, ulong length, int prot, int flags, int fd, long offset, out nint mapped)
    {
        mapped = 0;
        nint p = mmap(address, (nuint)length, prot, flags, fd, offset);
        if (p == -1) return Fail();
        mapped = p;
        return 0;
    }

    public static long Munmap(nint address, ulong length) => munmap(address, (nuint)length) == 0 ? 0 : Fail();

    /// <summary>mprotect(2) on memory this process mapped.</summary>
    public static long Mprotect(nint address, ulong length, int prot) => mprotect(address, (nuint)length, prot) == 0 ? 0 : Fail();

    /// <summary>
    /// A span over memory this process mapped and that stays mapped while the span is used. Only for the emulated
    /// kernel's guest-physical cache of its own anonymous mappings, whose munmap waits until no vCPU can still use a
    /// span it handed out (EmulatedKernel.Munmap).
    /// </summary>
    public static Span<byte> UnownedSpan(nint address, int length)
    {
        // SAFETY: the caller guarantees [address, address + length) is a live read/write mapping of this process for
        // as long as the span is used (the emulated kernel synchronises every munmap of such a range with its vCPUs).
        return new Span<byte>((void*)address, length);
    }

    /// <summary>pread(2) from a host descriptor (holes read as zero).</summary>
    public static long Pread(int fd, Span<byte> buffer, long offset)
    {
        // SAFETY: buffer is pinned for the call and the kernel writes at most buffer.Length bytes into it.
        fixed (byte* p = buffer)
        {
            nint rc = pread(fd, p, (nuint)buffer.Length, offset);
            return rc == -1 ? Fail() : rc;
        }
    }

    /// <summary>pwrite(2) to a host descriptor (allocates the pages it writes).</summary>
    public static long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset)
    {
        // SAFETY: buffer is pinned for the call and the kernel reads at most buffer.Length bytes from it.
        fixed (byte* p = buffer)
        {
            nint rc = pwrite(fd, p, (nuint)buffer.Length, offset);
            return rc == -1 ? Fail() : rc;
        }
    }

    private static long Fail() => -(long)Marshal.GetLastPInvokeError();

    [LibraryImport(Libc, EntryPoint = "memfd_create", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int memfd_create(string name, uint flags);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport(Libc, EntryPoint = "ftruncate64", SetLastError = true)]
    private static partial int ftruncate(int fd, long length);

    [LibraryImport(Libc, EntryPoint = "fallocate64", SetLastError = true)]
    private static partial int fallocate(int fd, int mode, long offset, long len);

    [LibraryImport(Libc, EntryPoint = "lseek64", SetLastError = true)]
    private static partial long lseek(int fd, long offset, int whence);

    [LibraryImport(Libc, EntryPoint = "mmap64", SetLastError = true)]
    private static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Libc, EntryPoint = "munmap", SetLastError = true)]
    private static partial int munmap(nint addr, nuint length);

    [LibraryImport(Libc, EntryPoint = "mprotect", SetLastError = true)]
    private static partial int mprotect(nint addr, nuint length, int prot);

    [LibraryImport(Libc, EntryPoint = "pread64", SetLastError = true)]
    private static partial nint pread(int fd, void* buf, nuint count, long offset);

    [LibraryImport(Libc, EntryPoint = "pwrite64", SetLastError = true)]
    private static partial nint pwrite(int fd, void* buf, nuint count, long offset);
}
