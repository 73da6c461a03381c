// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Memory;

/// <summary>
/// Host memory calls the emulated vCPU needs: madvise(2) and mincore(2) for ranges the emulator does not model, and checked reads and
/// writes of this process's own memory at a user address (a memslot's userspace_addr). process_vm_readv/writev
/// answer EFAULT for an unmapped or unwritable address instead of faulting, like the kernel's get_user_pages would.
/// </summary>
public static unsafe partial class HostMemory
{
    /// <summary>madvise(2) on host memory.</summary>
    public static long Madvise(nint address, ulong length, int advice) =>
        madvise(address, (nuint)length, advice) == 0 ? 0 : Fail();

    /// <summary>
    /// mincore(2) on host memory: one byte per page into <paramref name="vector"/>; a vector shorter than the range's
    /// page count is -EFAULT, refused here because the kernel would write past it unchecked.
    /// </summary>
    public static long Mincore(nint address, ulong length, Span<byte> vector)
    {
        ulong page = (ulong)Environment.SystemPageSize;
        // sys_mincore's order: unaligned start EINVAL, a range beyond the address space ENOMEM, then the vector.
        if (((ulong)address & (page - 1)) != 0) return -22; // EINVAL
        if (length > ulong.MaxValue - page + 1) return -12; // ENOMEM
        if ((length + page - 1) / page > (ulong)vector.Length) return -14; // EFAULT
        // SAFETY: vector is pinned and holds at least one byte per page of the range (checked above).
        fixed (byte* p = vector)
            return mincore(address, (nuint)length, p) == 0 ? 0 : Fail();
    }

    /// <summary>Reads <paramref name="destination"/>.Length bytes at user address <paramref name="address"/>; -EFAULT when not mapped.</summary>
    public static long ReadProcessMemory(ulong address, Span<byte> destination)
    {
        // SAFETY: the local iovec covers exactly the pinned destination; the remote address is checked by the kernel.
        fixed (byte* p = destination)
        {
            var local = new IoVec { Base = p, Length = (nuint)destination.Length };
            var remote = new IoVec { Base = (void*)address, Length = (nuint)destination.Length };
            nint rc = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
            return rc == -1 ? Fail() : rc == destination.Length ? rc : -14 /* EFAULT: partial */;
        }
    }

    /// <summary>Writes <paramref name="source"/> at user address <paramref name="address"/>; -EFAULT when not mapped writable.</summary>
    public static long WriteProcessMemory(ulong address, ReadOnlySpan<byte> source)
    {
        // SAFETY: the local iovec covers exactly the pinned source; the remote address is checked by the kernel.
        fixed (byte* p = source)
        {
            var local = new IoVec { Base = p, Length = (nuint)source.Length };
            var remote = new IoVec { Base = (void*)address, Length = (nuint)source.Length };
            nint rc = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
            return rc == -1 ? Fail() : rc == source.Length ? rc : -14 /* EFAULT: partial */;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [LibraryImport(Libc, EntryPoint = "madvise", SetLastError = true)]
    private static partial int madvise(nint addr, nuint length, int advice);

    [LibraryImport(Libc, EntryPoint = "mincore", SetLastError = true)]
    private static partial int mincore(nint addr, nuint length, byte* vec);

    [LibraryImport(Libc, EntryPoint = "getpid")]
    private static partial int getpid();

    [LibraryImport(Libc, EntryPoint = "process_vm_readv", SetLastError = true)]
    private static partial nint process_vm_readv(int pid, IoVec* local, nuint liovcnt, IoVec* remote, nuint riovcnt, nuint flags);

    [LibraryImport(Libc, EntryPoint = "process_vm_writev", SetLastError = true)]
    private static partial nint process_vm_writev(int pid, IoVec* local, nuint liovcnt, IoVec* remote, nuint riovcnt, nuint flags);
}
