// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Kernel.Preload;

/// <summary>
/// Descriptor numbers from the LD_PRELOAD library of <c>kvmsharp exec</c> (libkvmsharp-preload.so, loaded in this
/// process before .NET was): it reserves each number as a real descriptor (so no real file can take it) and marks it
/// as the emulated kernel's, so the program's own calls on it (ioctl, mmap, close …) come back to the emulated kernel.
/// </summary>
public sealed partial class PreloadFdNumbers : IFdNumberSource
{
    // The library's soname: dlopen finds the copy LD_PRELOAD already loaded instead of loading another.
    private const string Library = "libkvmsharp-preload.so";

    /// <inheritdoc/>
    public long Reserve(FdNumberRequest request) =>
        kvmsharp_preload_reserve_fd(request.CharacterDevice ? 1 : 0, request.Writable ? 1 : 0, request.CloseOnExec ? 1 : 0);

    /// <inheritdoc/>
    public void Release(int fd) => kvmsharp_preload_release_fd(fd);

    [LibraryImport(Library)]
    private static partial int kvmsharp_preload_reserve_fd(int characterDevice, int writable, int closeOnExec);

    [LibraryImport(Library)]
    private static partial void kvmsharp_preload_release_fd(int fd);

    /// <inheritdoc/>
    public void MirrorReadable(int fd, bool readable) => kvmsharp_preload_mirror_readable(fd, readable ? 1 : 0);

    [LibraryImport(Library)]
    private static partial void kvmsharp_preload_mirror_readable(int fd, int readable);
}
