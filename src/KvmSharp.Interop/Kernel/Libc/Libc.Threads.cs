// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Kernel.Libc;

internal static partial class Libc
{
    /// <summary>The calling thread's kernel thread id (glibc &gt;= 2.30).</summary>
    [LibraryImport(Name, EntryPoint = "gettid")]
    internal static partial int gettid();

    [LibraryImport(Name, EntryPoint = "getpid")]
    internal static partial int getpid();

    /// <summary>Sends <paramref name="sig"/> to one thread of this process. Returns -1 with errno on failure.</summary>
    [LibraryImport(Name, EntryPoint = "tgkill", SetLastError = true)]
    internal static partial int tgkill(int tgid, int tid, int sig);
}
