// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Kernel.Preload;

/// <summary>
/// Asks the LD_PRELOAD library of <c>kvmsharp exec</c> to send the program's munmap, mremap and mprotect of a range
/// back to the emulated kernel first, so memory that vCPUs use directly is forgotten before it goes away.
/// </summary>
public static partial class PreloadMemoryWatch
{
    private const string Library = "libkvmsharp-preload.so";

    /// <summary>Watches [<paramref name="address"/>, +<paramref name="length"/>).</summary>
    public static void Watch(nint address, ulong length) => kvmsharp_preload_watch_range((nuint)address, (nuint)length);

    [LibraryImport(Library)]
    private static partial void kvmsharp_preload_watch_range(nuint address, nuint length);
}
