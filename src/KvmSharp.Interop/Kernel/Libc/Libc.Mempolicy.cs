// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Kernel.Libc;

internal static partial class Libc
{
    /// <summary>
    /// syscall(2) with six integer arguments: glibc exports no mbind/get_mempolicy/move_pages (libnuma does), so the
    /// NUMA calls go through the generic entry with the kernel's own numbers (Kernel.Mempolicy). syscall is variadic in
    /// C; with integer arguments only, x86_64 and arm64 pass them exactly like a fixed-argument call. Returns the
    /// kernel's result, or -1 with errno.
    /// </summary>
    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long syscall6(long number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);
}
