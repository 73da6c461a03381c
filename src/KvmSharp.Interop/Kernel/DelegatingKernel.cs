// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel;

/// <summary>
/// A kernel that forwards every call to <see cref="Inner"/>: the base for decorators that observe or change a few
/// calls (<c>TracingKernel</c>, test kernels that count or lie). All members are forwarded, the ones IKernel has
/// defaults for included: a default (ENOSYS) where the inner kernel answers would be a divergence of its own.
/// </summary>
public abstract class DelegatingKernel(IKernel inner) : IKernel
{
    /// <summary>The kernel every call goes to.</summary>
    public IKernel Inner { get; } = inner;

    public virtual string Name => Inner.Name;

    public virtual long Open(string path, int flags, out KernelFd? fd) => Inner.Open(path, flags, out fd);

    public virtual KernelFd Adopt(int fd) => Inner.Adopt(fd);

    public virtual long Close(int fd) => Inner.Close(fd);

    public virtual long Ioctl(KernelFd fd, uint request, Span<byte> arg) => Inner.Ioctl(fd, request, arg);

    public virtual long Ioctl(KernelFd fd, uint request, ulong arg) => Inner.Ioctl(fd, request, arg);

    public virtual long Mmap(nint address, ulong length, int prot, int flags, KernelFd? fd, long offset, out nint mapped) =>
        Inner.Mmap(address, length, prot, flags, fd, offset, out mapped);

    public virtual long Munmap(nint address, ulong length) => Inner.Munmap(address, length);

    public virtual long Fallocate(KernelFd fd, int mode, long offset, long length) => Inner.Fallocate(fd, mode, offset, length);

    public virtual long Read(KernelFd fd, Span<byte> buffer) => Inner.Read(fd, buffer);

    public virtual long Write(KernelFd fd, ReadOnlySpan<byte> buffer) => Inner.Write(fd, buffer);

    public virtual long Pread(KernelFd fd, Span<byte> buffer, long offset) => Inner.Pread(fd, buffer, offset);

    public virtual long Pwrite(KernelFd fd, ReadOnlySpan<byte> buffer, long offset) => Inner.Pwrite(fd, buffer, offset);

    public virtual long Lseek(KernelFd fd, long offset, int whence) => Inner.Lseek(fd, offset, whence);

    public virtual long Fstat(KernelFd fd, out KernelStat stat) => Inner.Fstat(fd, out stat);

    public virtual long Ftruncate(KernelFd fd, long length) => Inner.Ftruncate(fd, length);

    public virtual long EventFd(uint initialValue, int flags, out KernelFd? fd) => Inner.EventFd(initialValue, flags, out fd);

    public virtual long Madvise(nint address, ulong length, int advice) => Inner.Madvise(address, length, advice);

    public virtual long Mincore(nint address, ulong length, Span<byte> vector) => Inner.Mincore(address, length, vector);

    public virtual long Mbind(nint address, ulong length, int mode, ulong nodemask, ulong maxnode, uint flags) =>
        Inner.Mbind(address, length, mode, nodemask, maxnode, flags);

    public virtual long GetMempolicy(ulong policy, ulong nodemask, ulong maxnode, nint address, ulong flags) =>
        Inner.GetMempolicy(policy, nodemask, maxnode, address, flags);

    public virtual long MovePages(int pid, ulong count, ulong pages, ulong status, int flags) =>
        Inner.MovePages(pid, count, pages, status, flags);

    public virtual int GetTid() => Inner.GetTid();

    public virtual long KickThread(int tid) => Inner.KickThread(tid);

    public virtual Abi.UapiProposals? Proposals => Inner.Proposals;
}
