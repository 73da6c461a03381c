// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Kernel.Libc;

internal static partial class Libc
{
    /// <summary>glibc's eventfd(3): the eventfd2 syscall. Returns the new descriptor, or -1 with errno.</summary>
    [LibraryImport(Name, EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int eventfd(uint initval, int flags);
}
