// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Kernel.Libc;

internal static unsafe partial class Libc
{
    // include/uapi/linux/futex.h
    internal const int FUTEX_WAKE = 1;
    internal const int FUTEX_WAIT_BITSET = 9;
    internal const int FUTEX_PRIVATE_FLAG = 128;
    internal const uint FUTEX_BITSET_MATCH_ANY = 0xffffffff;

    // include/uapi/linux/prctl.h
    internal const int PR_SET_TIMERSLACK = 29;
    internal const int PR_GET_TIMERSLACK = 30;

    // include/uapi/asm-generic/errno.h (x86_64 and arm64): a futex wait's deadline passed.
    internal const int ETIMEDOUT = 110;

    // include/uapi/linux/time.h
    internal const int CLOCK_MONOTONIC = 1;

    /// <summary>
    /// The futex and prctl syscall numbers of this process's architecture, or -1 where none is known:
    /// arch/x86/entry/syscalls/syscall_64.tbl (futex 202, prctl 157) and include/uapi/asm-generic/unistd.h for arm64
    /// (__NR_futex 98, __NR_prctl 167).
    /// </summary>
    internal static readonly (long Futex, long Prctl) SyscallNumbers = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => (202, 157),
        Architecture.Arm64 => (98, 167),
        _ => (-1, -1),
    };

    /// <summary>
    /// glibc's syscall(2) with six register arguments. It is variadic in C; on x86_64 and arm64 Linux each argument is
    /// read as a long from its register, exactly like a fixed nint argument. Returns the result, or -1 with errno.
    /// prctl goes through it rather than glibc's prctl wrapper because PR_GET_TIMERSLACK's value is a long and that
    /// wrapper returns an int.
    /// </summary>
    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    /// <summary>clock_gettime(2) into a 16-byte <c>struct timespec</c> (two 64-bit fields on x86_64 and arm64).</summary>
    [LibraryImport(Name, EntryPoint = "clock_gettime", SetLastError = true)]
    internal static partial int clock_gettime(int clockId, long* timespec);
}
