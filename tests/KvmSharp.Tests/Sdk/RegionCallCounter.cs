// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Sdk;

/// <summary>Forwards every call to <see cref="Inner"/> and counts the memory-region ioctls the SDK makes.</summary>
internal sealed class RegionCallCounter(IKernel inner) : IKernel
{
    public IKernel Inner { get; } = inner;

    public int Region1Calls { get; private set; }

    public int Region2Calls { get; private set; }

    public string Name => Inner.Name;

    public long Ioctl(KernelFd fd, uint request, Span<byte> arg)
    {
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2) Region2Calls++;
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION) Region1Calls++;
        return Inner.Ioctl(fd, request, arg);
    }

    public long Ioctl(KernelFd fd, uint request, ulong arg) => Inner.Ioctl(fd, request, arg);

    public long Open(string path, int flags, out KernelFd? fd) => Inner.Open(path, flags, out fd);

    public KernelFd Adopt(int fd) => Inner.Adopt(fd);

    public long Close(int fd) => Inner.Close(fd);

    public long Mmap(nint address, ulong length, int prot, int flags, KernelFd? fd, long offset, out nint mapped) =>
        Inner.Mmap(address, length, prot, flags, fd, offset, out mapped);

    public long Munmap(nint address, ulong length) => Inner.Munmap(address, length);

    public long Fallocate(KernelFd fd, int mode, long offset, long length) => Inner.Fallocate(fd, mode, offset, length);

    public long Read(KernelFd fd, Span<byte> buffer) => Inner.Read(fd, buffer);

    public long Write(KernelFd fd, ReadOnlySpan<byte> buffer) => Inner.Write(fd, buffer);

    public long Pread(KernelFd fd, Span<byte> buffer, long offset) => Inner.Pread(fd, buffer, offset);

    public long Pwrite(KernelFd fd, ReadOnlySpan<byte> buffer, long offset) => Inner.Pwrite(fd, buffer, offset);

    public long Lseek(KernelFd fd, long offset, int whence) => Inner.Lseek(fd, offset, whence);

    public long Fstat(KernelFd fd, out KernelStat stat) => Inner.Fstat(fd, out stat);

    public long Ftruncate(KernelFd fd, long length) => Inner.Ftruncate(fd, length);

    public long Madvise(nint address, ulong length, int advice) => Inner.Madvise(address, length, advice);
}
