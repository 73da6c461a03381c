// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Kernel.Libc;

/// <summary>
/// glibc entry points. Each returns -1 and sets errno on failure (captured by SetLastError and read with
/// Marshal.GetLastPInvokeError). File descriptors are raw ints here: callers hold a <see cref="KernelFd.Lease"/>
/// for the length of the call. Only <see cref="LinuxKernel"/> and the interop layer's own wrappers (<see cref="FutexEvent"/>) call these.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Name = "libc";

    [LibraryImport(Name, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int open(string path, int flags);

    [LibraryImport(Name, EntryPoint = "close", SetLastError = true)]
    internal static partial int close(int fd);

    /// <summary>
    /// ioctl is variadic in C; on x86_64 and arm64 Linux a pointer or integer third argument is passed exactly
    /// like a fixed one. The request is <c>unsigned long</c>: KVM's _IOR/_IOWR numbers have bit 31 set.
    /// Returns the kernel's non-negative result, or -1 with errno.
    /// </summary>
    [LibraryImport(Name, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(int fd, nuint request, void* arg);

    [LibraryImport(Name, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(int fd, nuint request, nuint arg);

    /// <summary>Returns MAP_FAILED ((void*)-1) on failure, not null.</summary>
    [LibraryImport(Name, EntryPoint = "mmap64", SetLastError = true)]
    internal static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Name, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int munmap(nint addr, nuint length);

    [LibraryImport(Name, EntryPoint = "madvise", SetLastError = true)]
    internal static partial int madvise(nint addr, nuint length, int advice);

    [LibraryImport(Name, EntryPoint = "fallocate64", SetLastError = true)]
    internal static partial int fallocate(int fd, int mode, long offset, long len);

    [LibraryImport(Name, EntryPoint = "read", SetLastError = true)]
    internal static partial nint read(int fd, void* buf, nuint count);

    [LibraryImport(Name, EntryPoint = "write", SetLastError = true)]
    internal static partial nint write(int fd, void* buf, nuint count);

    [LibraryImport(Name, EntryPoint = "pread64", SetLastError = true)]
    internal static partial nint pread(int fd, void* buf, nuint count, long offset);

    [LibraryImport(Name, EntryPoint = "pwrite64", SetLastError = true)]
    internal static partial nint pwrite(int fd, void* buf, nuint count, long offset);

    [LibraryImport(Name, EntryPoint = "lseek64", SetLastError = true)]
    internal static partial long lseek(int fd, long offset, int whence);

    /// <summary>glibc &gt;= 2.33 exports fstat; <paramref name="buf"/> is a 144-byte x86_64 <c>struct stat</c>.</summary>
    [LibraryImport(Name, EntryPoint = "fstat64", SetLastError = true)]
    internal static partial int fstat(int fd, void* buf);

    [LibraryImport(Name, EntryPoint = "ftruncate64", SetLastError = true)]
    internal static partial int ftruncate(int fd, long length);
}
