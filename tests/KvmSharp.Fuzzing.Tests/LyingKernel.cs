// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The real kernel with one planted bug: fallocate with PUNCH_HOLE beyond the file end answers EINVAL instead of
/// succeeding. The fuzzer must find it and reduce it to a short reproducer.
/// </summary>
internal sealed class LyingKernel(IKernel inner) : IKernel
{
    private readonly Dictionary<int, long> _gmemSizes = [];

    public string Name => "lying";

    public long Open(string path, int flags, out KernelFd? fd) => inner.Open(path, flags, out fd);

    public KernelFd Adopt(int fd) => inner.Adopt(fd);

    public long Close(int fd) => inner.Close(fd);

    public long Ioctl(KernelFd fd, uint request, Span<byte> arg)
    {
        long rc = inner.Ioctl(fd, request, arg);
        if (request == KvmIoctls.KVM_CREATE_GUEST_MEMFD && rc >= 0)
            _gmemSizes[(int)rc] = (long)BitConverter.ToUInt64(arg);
        return rc;
    }

    public long Ioctl(KernelFd fd, uint request, ulong arg) => inner.Ioctl(fd, request, arg);

    public long Mmap(nint address, ulong length, int prot, int flags, KernelFd? fd, long offset, out nint mapped) =>
        inner.Mmap(address, length, prot, flags, fd, offset, out mapped);

    public long Munmap(nint address, ulong length) => inner.Munmap(address, length);

    public long Fallocate(KernelFd fd, int mode, long offset, long length)
    {
        long rc = inner.Fallocate(fd, mode, offset, length);
        bool punch = mode == (LinuxConstants.FALLOC_FL_KEEP_SIZE | LinuxConstants.FALLOC_FL_PUNCH_HOLE);
        if (rc == 0 && punch && !fd.IsClosed && _gmemSizes.TryGetValue(fd.Number, out long size) && offset >= size && length > 0)
            return -(long)Errno.EINVAL;
        return rc;
    }

    public long Read(KernelFd fd, Span<byte> buffer) => inner.Read(fd, buffer);

    public long Write(KernelFd fd, ReadOnlySpan<byte> buffer) => inner.Write(fd, buffer);

    public long Pread(KernelFd fd, Span<byte> buffer, long offset) => inner.Pread(fd, buffer, offset);

    public long Pwrite(KernelFd fd, ReadOnlySpan<byte> buffer, long offset) => inner.Pwrite(fd, buffer, offset);

    public long Lseek(KernelFd fd, long offset, int whence) => inner.Lseek(fd, offset, whence);

    public long Fstat(KernelFd fd, out KernelStat stat) => inner.Fstat(fd, out stat);

    public long Ftruncate(KernelFd fd, long length) => inner.Ftruncate(fd, length);
}
