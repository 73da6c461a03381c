// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel;

/// <summary>
/// Where an emulated kernel takes its descriptor numbers from. By default it counts its own (3, 4, …) in a table of
/// its own; a process that routes real syscalls to it (the LD_PRELOAD bridge of <c>kvmsharp exec</c>) needs numbers
/// that no real file can take, so it reserves real descriptors and lends their numbers.
/// </summary>
public interface IFdNumberSource
{
    /// <summary>A number no other open file has, or -errno (-EMFILE when the process has none left).</summary>
    long Reserve();

    /// <summary>Gives back a number <see cref="Reserve"/> handed out, when its file is closed.</summary>
    void Release(int fd);
}
