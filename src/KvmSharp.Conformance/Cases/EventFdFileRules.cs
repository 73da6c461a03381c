// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The eventfd file itself (fs/eventfd.c: do_eventfd, eventfd_read, eventfd_write, eventfd_fops) as the VMM sees it
/// through the boundary: the flags eventfd2 takes, the 8-byte reads and writes, EFD_SEMAPHORE, the counter's ceiling,
/// and what the VFS answers for the operations eventfd_fops lacks. Probed on Linux 6.18 in C first.
/// </summary>
public static class EventFdFileRules
{
    private const string Src = "fs/eventfd.c";

    private static byte[] U64(ulong v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        return b;
    }

    [ConformanceCase(Src + " do_eventfd: flags outside EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC (O_RDWR included) are EINVAL")]
    public static void eventfd2_takes_only_its_flags(CaseContext ctx)
    {
        foreach (int flags in new[] { 0, EFD_SEMAPHORE, EFD_NONBLOCK, EFD_CLOEXEC, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC })
        {
            long rc = ctx.Kernel.EventFd(5, flags, out var fd);
            Assert.True(rc >= 0, $"eventfd2(5, 0x{flags:X}): {rc}");
            fd!.Dispose();
        }
        foreach (int flags in new[] { 2, 4, 0x100, 0x400, 0x4000, -1 })
        {
            long rc = ctx.Kernel.EventFd(5, flags, out var fd);
            fd?.Dispose();
            AssertErrno(Errno.EINVAL, rc, $"eventfd2(5, 0x{flags:X})");
        }
    }

    [ConformanceCase(Src + " eventfd_read / eventfd_write: a read needs at least 8 bytes and returns 8; a write exactly 8; 2^64 - 1 is EINVAL; the sum must stay below 2^64 - 1 (EAGAIN when non-blocking); a read of 0 is EAGAIN; the initial count is the unsigned int")]
    public static void reads_and_writes_are_eight_bytes(CaseContext ctx)
    {
        var k = ctx.Kernel;
        Assert.True(k.EventFd(uint.MaxValue, EFD_NONBLOCK, out var fd) >= 0);
        using var e = fd!;
        var buf = new byte[16];
        buf.AsSpan().Fill(0xAA);
        Assert.Equal(8, k.Read(e, buf));
        Assert.Equal((ulong)uint.MaxValue, BinaryPrimitives.ReadUInt64LittleEndian(buf));
        Assert.Equal(0xAA, buf[8]);
        AssertErrno(Errno.EAGAIN, k.Read(e, buf.AsSpan(0, 8)), "read of 0");
        AssertErrno(Errno.EINVAL, k.Read(e, buf.AsSpan(0, 4)), "read of 4 bytes");
        AssertErrno(Errno.EINVAL, k.Read(e, Span<byte>.Empty), "read of 0 bytes");
        AssertErrno(Errno.EINVAL, k.Write(e, U64(3).AsSpan(0, 4)), "write of 4 bytes");
        AssertErrno(Errno.EINVAL, k.Write(e, new byte[16]), "write of 16 bytes");
        AssertErrno(Errno.EINVAL, k.Write(e, ReadOnlySpan<byte>.Empty), "write of 0 bytes");
        AssertErrno(Errno.EINVAL, k.Write(e, U64(ulong.MaxValue)), "write of 2^64 - 1");
        Assert.Equal(8, k.Write(e, U64(ulong.MaxValue - 1)));
        Assert.Equal(8, k.Write(e, U64(0)));
        AssertErrno(Errno.EAGAIN, k.Write(e, U64(1)), "write of 1 at 2^64 - 2");
        Assert.Equal(8, k.Read(e, buf));
        Assert.Equal(ulong.MaxValue - 1, BinaryPrimitives.ReadUInt64LittleEndian(buf));
        Assert.Equal(8, k.Write(e, U64(0)));
        AssertErrno(Errno.EAGAIN, k.Read(e, buf), "a write of 0 adds nothing");
    }

    [ConformanceCase(Src + " eventfd_ctx_do_read: with EFD_SEMAPHORE a read takes 1 and returns 1")]
    public static void semaphore_reads_take_one(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var e = kvm.CreateEventFd(3, EventFdOptions.Semaphore | EventFdOptions.NonBlocking);
        for (int i = 0; i < 3; i++) Assert.Equal(1UL, e.Read());
        Assert.False(e.TryRead(out _));
        e.Add(2);
        Assert.Equal(1UL, e.Read());
    }

    [ConformanceCase(Src + " eventfd_fops has llseek = noop_llseek and no ioctl, mmap or fallocate; an anon inode file: pread ESPIPE, lseek 0, ioctl ENOTTY, mmap ENODEV, fallocate ENODEV, ftruncate EINVAL; fstat shows the shared anon inode (as a VM fd's), size 0")]
    public static void the_vfs_answers_the_rest(CaseContext ctx)
    {
        var k = ctx.Kernel;
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        var buf = new byte[8];
        AssertErrno(Errno.ESPIPE, k.Pread(e.Handle, buf, 0), "pread");
        AssertErrno(Errno.ESPIPE, k.Pwrite(e.Handle, buf, 0), "pwrite");
        AssertErrno(Errno.EINVAL, k.Pread(e.Handle, buf, -1), "pread at -1");
        Assert.Equal(0, k.Lseek(e.Handle, 0, SEEK_SET));
        AssertErrno(Errno.EINVAL, k.Lseek(e.Handle, 0, 9), "lseek whence 9");
        AssertErrno(Errno.ENOTTY, k.Ioctl(e.Handle, Abi.KvmIoctls.KVM_RUN, 0UL), "KVM_RUN on an eventfd");
        AssertErrno(Errno.ENOTTY, k.Ioctl(e.Handle, 0x541B /* FIONREAD */, buf), "FIONREAD");
        long rc = MappedRegion.Map(k, e.Handle, (ulong)PageSize, PROT_READ, MAP_SHARED, 0, out var region);
        region?.Dispose();
        AssertErrno(Errno.ENODEV, rc, "mmap");
        AssertErrno(Errno.ENODEV, k.Fallocate(e.Handle, 0, 0, PageSize), "fallocate");
        AssertErrno(Errno.EINVAL, k.Ftruncate(e.Handle, 0), "ftruncate");
        Assert.Equal(0, k.Fstat(e.Handle, out var st));
        Assert.Equal(0, k.Fstat(vm.Handle, out var vmSt));
        Assert.Equal((vmSt.Device, vmSt.Inode, vmSt.Mode), (st.Device, st.Inode, st.Mode));
        Assert.Equal(0x180u, st.Mode);
        Assert.Equal(0, st.Size);
    }

    [ConformanceCase("fs/ioctl.c ioctl_fionbio: FIONBIO sets O_NONBLOCK on an eventfd, so a read of 0 is EAGAIN instead of waiting")]
    public static void fionbio_makes_reads_non_blocking(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var e = kvm.CreateEventFd();
        Assert.Equal(0, ctx.Kernel.Ioctl(e.Handle, 0x5421 /* FIONBIO */, BitConverter.GetBytes(1)));
        AssertErrno(Errno.EAGAIN, ctx.Kernel.Read(e.Handle, new byte[8]), "read of 0 after FIONBIO");
    }

    [ConformanceCase(Src + " eventfd_read waits while the counter is 0 and wakes when another thread writes")]
    public static void a_blocking_read_waits_for_a_write(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var e = kvm.CreateEventFd();
        ulong got = 0;
        var reader = new Thread(() => got = e.Read()) { IsBackground = true };
        reader.Start();
        Assert.False(reader.Join(100), "the read returned before any write");
        e.Add(42);
        Assert.True(reader.Join(5000), "the read did not wake up after the write");
        Assert.Equal(42UL, got);
    }
}
