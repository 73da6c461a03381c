// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Memory;

public static unsafe partial class HostMemory
{
    /// <summary>
    /// The host's move_pages(2) query (nodes = NULL) for one page of this process: the node it is on, -ENOENT when no
    /// page is mapped there, -EFAULT for no mapping or the zero page (mm/migrate.c do_pages_stat_array). The emulated
    /// kernel asks it whether a host mapping it made has the page present; on an x86_64 or arm64 host only (-ENOSYS
    /// elsewhere).
    /// </summary>
    public static int PageStatus(nint address)
    {
        long number = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 279,   // arch/x86/entry/syscalls/syscall_64.tbl
            Architecture.Arm64 => 239, // include/uapi/asm-generic/unistd.h
            _ => -1,
        };
        if (number < 0) return -38; // ENOSYS
        nint page = address;
        int status = 0;
        // SAFETY: the kernel reads one pointer from &page and writes one int to &status, both locals of this frame.
        long rc = syscall(number, 0, 1, (nint)(&page), 0, (nint)(&status), 0);
        return rc == -1 ? -Marshal.GetLastPInvokeError() : status;
    }

    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);
}
