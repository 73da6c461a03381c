// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using static KvmSharp.Kernel.Libc.Libc;

namespace KvmSharp.Kernel;

/// <summary>The real kernel: each call is one syscall through glibc; failures come back as <c>-errno</c>.</summary>
public sealed unsafe class LinuxKernel : IKernel
{
    /// <summary>The process-wide instance (the real kernel has no state of its own here).</summary>
    public static LinuxKernel Instance { get; } = new();

    /// <summary>
    /// The signal that kicks a vCPU thread out of KVM_RUN: SIGRTMIN+5 in glibc numbering (the runtime uses
    /// SIGRTMIN itself). Its handler, registered once, cancels the default (terminating) action.
    /// </summary>
    public const int KickSignal = 39;

    private static readonly Lazy<PosixSignalRegistration> s_kickHandler =
        new(() => PosixSignalRegistration.Create((PosixSignal)KickSignal, ctx => ctx.Cancel = true));

    private LinuxKernel() { }

    public string Name => "linux";

    public long Open(string path, int flags, out KernelFd? fd)
    {
        int rc = open(path, flags | LinuxConstants.O_CLOEXEC);
        if (rc < 0)
        {
            fd = null;
            return Fail();
        }
        fd = new KernelFd(this, rc);
        return rc;
    }

    public KernelFd Adopt(int fd) => new(this, fd);

    public long Close(int fd) => close(fd) == 0 ? 0 : Fail();

    public long Ioctl(KernelFd fd, uint request, Span<byte> arg)
    {
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        // SAFETY: arg is pinned for the call; the request's _IOC_SIZE is the caller's contract with the kernel,
        // and the kernel reads/writes at most that many bytes. An empty span passes null, which the kernel
        // answers with EFAULT rather than touching memory.
        fixed (byte* p = arg)
        {
            int rc = ioctl(lease.Number, request, p);
            return rc == -1 ? Fail() : rc;
        }
    }

    public long Ioctl(KernelFd fd, uint request, ulong arg)
    {
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        int rc = ioctl(lease.Number, request, (nuint)arg);
        return rc == -1 ? Fail() : rc;
    }

    public long Mmap(nint address, ulong length, int prot, int flags, KernelFd? fd, long offset, out nint mapped)
    {
        mapped = 0;
        if (fd is { IsClosed: true }) return -(long)Errno.EBADF;
        bool added = false;
        try
        {
            fd?.DangerousAddRef(ref added);
            nint p = mmap(address, (nuint)length, prot, flags, fd?.Number ?? -1, offset);
            if (p == -1) return Fail();
            mapped = p;
            return 0;
        }
        finally
        {
            if (added) fd!.DangerousRelease();
        }
    }

    public long Munmap(nint address, ulong length) => munmap(address, (nuint)length) == 0 ? 0 : Fail();

    public long Madvise(nint address, ulong length, int advice) => madvise(address, (nuint)length, advice) == 0 ? 0 : Fail();

    public long Mincore(nint address, ulong length, Span<byte> vector) => Memory.HostMemory.Mincore(address, length, vector);

    public long Fallocate(KernelFd fd, int mode, long offset, long length)
    {
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        return fallocate(lease.Number, mode, offset, length) == 0 ? 0 : Fail();
    }

    public long Read(KernelFd fd, Span<byte> buffer)
    {
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        // SAFETY: buffer is pinned and the kernel writes at most buffer.Length bytes.
        fixed (byte* p = buffer)
            return Result(read(lease.Number, p, (nuint)buffer.Length));
    }

    public long Write(KernelFd fd, ReadOnlySpan<byte> buffer)
    {
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        // SAFETY: buffer is pinned and the kernel only reads buffer.Length bytes.
        fixed (byte* p = buffer)
            return Result(write(lease.Number, p, (nuint)buffer.Length));
    }

    public long Pread(KernelFd fd, Span<byte> buffer, long offset)
    {
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        // SAFETY: as Read.
        fixed (byte* p = buffer)
            return Result(pread(lease.Number, p, (nuint)buffer.Length, offset));
    }

    public long Pwrite(KernelFd fd, ReadOnlySpan<byte> buffer, long offset)
    {
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        // SAFETY: as Write.
        fixed (byte* p = buffer)
            return Result(pwrite(lease.Number, p, (nuint)buffer.Length, offset));
    }

    public long Lseek(KernelFd fd, long offset, int whence)
    {
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        long rc = lseek(lease.Number, offset, whence);
        return rc == -1 ? Fail() : rc;
    }

    public long Fstat(KernelFd fd, out KernelStat stat)
    {
        stat = default;
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        Span<byte> buf = stackalloc byte[StatSize];
        // SAFETY: buf is StatSize (144) bytes, sizeof(struct stat) on x86_64; the kernel fills exactly that.
        fixed (byte* p = buf)
        {
            if (fstat(lease.Number, p) != 0) return Fail();
        }
        stat = DecodeStat(buf);
        return 0;
    }

    public long Ftruncate(KernelFd fd, long length)
    {
        if (fd.IsClosed) return -(long)Errno.EBADF;
        using var lease = fd.Borrow();
        return ftruncate(lease.Number, length) == 0 ? 0 : Fail();
    }

    /// <summary>eventfd(3) (glibc's eventfd2 wrapper), always with EFD_CLOEXEC as <see cref="Open"/> adds O_CLOEXEC.</summary>
    public long EventFd(uint initialValue, int flags, out KernelFd? fd)
    {
        int rc = eventfd(initialValue, flags | LinuxConstants.EFD_CLOEXEC);
        if (rc < 0)
        {
            fd = null;
            return Fail();
        }
        fd = new KernelFd(this, rc);
        return rc;
    }

    /// <summary>mbind(2) through syscall(2) (glibc has no wrapper); the kernel reads the node mask itself.</summary>
    public long Mbind(nint address, ulong length, int mode, ulong nodemask, ulong maxnode, uint flags) =>
        Syscall(MempolicyNumbers.Mbind, address, (nint)length, mode, (nint)nodemask, (nint)maxnode, (nint)flags);

    /// <summary>get_mempolicy(2) through syscall(2); the kernel writes the policy and mask at the user addresses.</summary>
    public long GetMempolicy(ulong policy, ulong nodemask, ulong maxnode, nint address, ulong flags) =>
        Syscall(MempolicyNumbers.GetMempolicy, (nint)policy, (nint)nodemask, (nint)maxnode, address, (nint)flags, 0);

    /// <summary>move_pages(2) with nodes = NULL (query mode) through syscall(2).</summary>
    public long MovePages(int pid, ulong count, ulong pages, ulong status, int flags) =>
        Syscall(MempolicyNumbers.MovePages, pid, (nint)count, (nint)pages, 0, (nint)status, flags);

    private static long Syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6)
    {
        if (number < 0) return -(long)Errno.ENOSYS;
        // Pointer arguments are user addresses the caller owns: the kernel checks them (EFAULT), nothing is pinned here.
        long rc = syscall6(number, a1, a2, a3, a4, a5, a6);
        return rc == -1 ? Fail() : rc;
    }

    // A thread's id never changes: ask the kernel once per thread, not once per KVM_RUN.
    [ThreadStatic]
    private static int t_tid;

    public int GetTid() => t_tid != 0 ? t_tid : t_tid = gettid();

    public long KickThread(int tid)
    {
        _ = s_kickHandler.Value;
        return tgkill(getpid(), tid, KickSignal) == 0 ? 0 : Fail();
    }

    // x86_64 struct stat (arch/x86/include/uapi/asm/stat.h): st_dev@0 st_ino@8 st_nlink@16 st_mode@24 st_uid@28
    // st_gid@32 st_rdev@40 st_size@48 st_blksize@56 st_blocks@64; 144 bytes.
    private const int StatSize = 144;

    private static KernelStat DecodeStat(ReadOnlySpan<byte> b) => new(
        Device: BinaryPrimitives.ReadUInt64LittleEndian(b[0..]),
        Inode: BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
        Mode: BinaryPrimitives.ReadUInt32LittleEndian(b[24..]),
        Links: BinaryPrimitives.ReadUInt64LittleEndian(b[16..]),
        Size: BinaryPrimitives.ReadInt64LittleEndian(b[48..]),
        BlockSize: BinaryPrimitives.ReadInt64LittleEndian(b[56..]),
        Blocks: BinaryPrimitives.ReadInt64LittleEndian(b[64..]),
        RDevice: BinaryPrimitives.ReadUInt64LittleEndian(b[40..]),
        Uid: BinaryPrimitives.ReadUInt32LittleEndian(b[28..]),
        Gid: BinaryPrimitives.ReadUInt32LittleEndian(b[32..]));

    private static long Result(nint rc) => rc == -1 ? Fail() : rc;

    private static long Fail() => -(long)Marshal.GetLastPInvokeError();
}
