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
    long Reserve(FdNumberRequest request);

    /// <summary>Gives back a number <see cref="Reserve"/> handed out, when its file is closed.</summary>
    void Release(int fd);

    /// <summary>
    /// The emulated eventfd behind <paramref name="fd"/> became readable (its counter non-zero) or not: the real
    /// descriptor follows, so the process's poll, select and epoll on the number see what they would see on the eventfd.
    /// </summary>
    void MirrorReadable(int fd, bool readable);
}

/// <summary>
/// What the file behind a new descriptor is, so a real descriptor standing for it looks the same to fcntl(2)
/// (F_GETFL, F_GETFD): a character device (/dev/kvm, /dev/sev) or an anonymous inode (a VM, a vCPU, a guest_memfd …),
/// writable or read-only (a statistics file), close-on-exec or not (a guest_memfd is installed without O_CLOEXEC).
/// </summary>
public readonly record struct FdNumberRequest(bool CharacterDevice, bool Writable, bool CloseOnExec);
