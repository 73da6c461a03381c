// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// GUEST_MEMFD_FLAG_WRITE of "[PATCH v7 1/2] KVM: guest_memfd: add generic population via write" (Nikita Kalyazin,
/// 2025-11-14; unmerged): test_write_supported, test_write_not_supported and test_file_read port [PATCH v7 2/2]'s
/// guest_memfd_test.c; the other cases pin down what fs/read_write.c (vfs_write, rw_verify_area, ksys_write,
/// ksys_pwrite64, default_llseek) and mm/filemap.c generic_perform_write make of the patch's write_begin/write_end, and
/// how it meets NO_DIRECT_MAP (Firecracker's "fixup for write and direct map removal"). On a kernel without the series
/// (this host has no guest_memfd at all) every case is skipped by <see cref="KernelRequirement.WriteGuestMemfd"/>.
/// </summary>
[ConformanceGroup(Requires = KernelRequirement.WriteGuestMemfd)]
public static class GuestMemfdWriteRules
{
    private const string Selftest = "tools/testing/selftests/kvm/guest_memfd_test.c ([PATCH v7 2/2])";
    private const string Series = "[PATCH v7 1/2] KVM: guest_memfd: add generic population via write";
    private const GuestMemfdFlags Write = GuestMemfdFlags.Write;
    private const GuestMemfdFlags Shared = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;
    private const int SEEK_DATA = 3;
    private const int SEEK_HOLE = 4;

    /// <summary>Runs <paramref name="body"/> on a fresh 4-page file of <paramref name="flags"/> for every VM type listing them all.</summary>
    private static void WithFile(CaseContext ctx, GuestMemfdFlags flags, Action<Vm, GuestMemfd> body)
    {
        using var kvm = ctx.OpenKvm();
        bool ran = false;
        foreach (var type in VmTypes(kvm))
        {
            using var vm = kvm.CreateVm(type);
            if ((vm.SupportedGuestMemfdFlags & flags) != flags) continue;
            using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize, flags);
            body(vm, gmem);
            ran = true;
        }
        if (!ran) Skip($"no VM type of this kernel lists {flags.ToKernelString()}");
    }

    [ConformanceCase(Selftest + " test_write_supported (__test_guest_memfd(vm, GUEST_MEMFD_FLAG_WRITE))",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void test_write_supported(CaseContext ctx) => WithFile(ctx, Write, (vm, gmem) =>
    {
        var k = ctx.Kernel;
        long ps = PageSize;
        long total = (long)gmem.Size;
        byte[] buf = new byte[total];
        AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, buf.AsSpan(0, (int)ps), total), "writing past the file size");
        AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, buf.AsSpan(0, 1), 0), "writing an unaligned count");
        AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, buf.AsSpan(0, (int)ps), 1), "writing to an unaligned offset");
        Assert.Equal(ps, k.Pwrite(gmem.Handle, buf.AsSpan(0, (int)ps), 0));
    });

    [ConformanceCase(Selftest + " test_write_not_supported (__test_guest_memfd(vm, MMAP) and (vm, MMAP|INIT_SHARED)): kvm_gmem_write_begin → ENODEV",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void test_write_not_supported(CaseContext ctx) => ctx.GmemTest(f => f != GuestMemfdFlags.None, (vm, gmem) =>
    {
        byte[] buf = new byte[PageSize];
        AssertErrno(Errno.ENODEV, ctx.Kernel.Pwrite(gmem.Handle, buf, 0), $"pwrite without WRITE ({gmem.Flags.ToKernelString()})");
    });

    /// <summary>
    /// test_file_read replaces 6.18's test_file_read_write: read and pread still fail. The errnos are fs/read_write.c's:
    /// no read op (FMODE_CAN_READ unset) → EINVAL; the patch sets FMODE_PWRITE but not FMODE_PREAD → ESPIPE.
    /// </summary>
    [ConformanceCase(Selftest + " test_file_read (every flag set, WRITE included)", Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void test_file_read(CaseContext ctx)
    {
        void Check(GuestMemfd gmem)
        {
            byte[] buf = new byte[64];
            AssertErrno(Errno.EINVAL, ctx.Kernel.Read(gmem.Handle, buf), $"read ({gmem.Flags.ToKernelString()})");
            AssertErrno(Errno.ESPIPE, ctx.Kernel.Pread(gmem.Handle, buf, 0), $"pread ({gmem.Flags.ToKernelString()})");
        }
        ctx.GmemTest(_ => true, (vm, gmem) => Check(gmem));
        WithFile(ctx, Write, (vm, gmem) => Check(gmem));
    }

    [ConformanceCase(Series + ": kvm_gmem_get_supported_flags adds WRITE together with INIT_SHARED (\"!kvm || kvm_arch_supports_gmem_init_shared(kvm)\"); WRITE needs no other flag",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void write_flag_listed_with_init_shared(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var system = (GuestMemfdFlags)(ulong)kvm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS);
        Assert.True(system.HasFlag(Write) && system.HasFlag(GuestMemfdFlags.InitShared), $"/dev/kvm: {system.ToKernelString()}");
        foreach (var type in VmTypes(kvm))
        {
            using var vm = kvm.CreateVm(type);
            var supported = vm.SupportedGuestMemfdFlags;
            Assert.True(supported.HasFlag(Write) == supported.HasFlag(GuestMemfdFlags.InitShared), $"VM type {type}: {supported.ToKernelString()}");
            if (supported.HasFlag(Write))
            {
                using var gmem = vm.CreateGuestMemfd((ulong)PageSize, Write);
                Assert.Equal(Write, gmem.Flags);
            }
            else
            {
                AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd((ulong)PageSize, Write).Dispose());
            }
        }
    }

    /// <summary>
    /// generic_perform_write (mm/filemap.c) writes one PAGE_SIZE chunk at a time (guest_memfd's folios are order 0) and
    /// stops at the first chunk kvm_gmem_write_begin refuses: "if (!written) return status", else the bytes written.
    /// </summary>
    [ConformanceCase(Series + " + mm/filemap.c generic_perform_write: multi-page writes, partial writes at an unaligned tail or the end of the file",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void write_chunks_and_partial_writes(CaseContext ctx) => WithFile(ctx, Write, (vm, gmem) =>
    {
        var k = ctx.Kernel;
        int ps = PageSize;
        long total = (long)gmem.Size;
        byte[] buf = new byte[3 * ps + 100];
        Assert.Equal(3L * ps, k.Pwrite(gmem.Handle, buf.AsSpan(0, 3 * ps), 0));
        // The unaligned tail is the refused chunk: the three whole pages before it count.
        Assert.Equal(3L * ps, k.Pwrite(gmem.Handle, buf, 0));
        Assert.Equal(2L * ps, k.Pwrite(gmem.Handle, buf.AsSpan(0, 2 * ps + 1), ps));
        // Crossing i_size: the page inside is written, the next chunk fails "pos + len > i_size".
        Assert.Equal((long)ps, k.Pwrite(gmem.Handle, buf.AsSpan(0, 2 * ps), total - ps));
        // Nothing written: the first chunk's error.
        AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, buf.AsSpan(0, 2 * ps), ps / 2), "unaligned offset");
        AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, buf.AsSpan(0, ps - 1), 0), "a count below a page");
        AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, buf.AsSpan(0, ps), total + ps), "beyond i_size");
    });

    /// <summary>
    /// write(2) uses and advances f_pos (ksys_write: file_ppos, f_pos = pos when the result is &gt;= 0; new_sync_write
    /// moves it only by what was written); pwrite(2) leaves it; lseek moves it (default_llseek).
    /// </summary>
    [ConformanceCase(Series + " + fs/read_write.c ksys_write/ksys_pwrite64: write() at f_pos advances it by the bytes written, pwrite() does not move it",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void write_at_file_position(CaseContext ctx) => WithFile(ctx, Write, (vm, gmem) =>
    {
        var k = ctx.Kernel;
        int ps = PageSize;
        byte[] buf = new byte[2 * ps + 1];
        Assert.Equal(0L, k.Lseek(gmem.Handle, 0, SEEK_CUR));
        Assert.Equal(2L * ps, k.Write(gmem.Handle, buf.AsSpan(0, 2 * ps)));
        Assert.Equal(2L * ps, k.Lseek(gmem.Handle, 0, SEEK_CUR));
        Assert.Equal((long)ps, k.Pwrite(gmem.Handle, buf.AsSpan(0, ps), 0));
        Assert.Equal(2L * ps, k.Lseek(gmem.Handle, 0, SEEK_CUR));
        // A partial write advances f_pos by what it wrote.
        Assert.Equal((long)ps, k.Write(gmem.Handle, buf.AsSpan(0, ps + 1)));
        Assert.Equal(3L * ps, k.Lseek(gmem.Handle, 0, SEEK_CUR));
        // A failed write leaves it.
        AssertErrno(Errno.EINVAL, k.Write(gmem.Handle, buf.AsSpan(0, 1)), "write of one byte at f_pos");
        Assert.Equal(3L * ps, k.Lseek(gmem.Handle, 0, SEEK_CUR));
        // f_pos may sit beyond i_size (default_llseek has no limit); writing there is kvm_gmem_write_begin's EINVAL.
        Assert.Equal((long)gmem.Size + ps, k.Lseek(gmem.Handle, (long)gmem.Size + ps, SEEK_SET));
        AssertErrno(Errno.EINVAL, k.Write(gmem.Handle, buf.AsSpan(0, ps)), "write at f_pos beyond i_size");
    });

    /// <summary>
    /// A zero-length write still runs: vfs_write has no "count == 0" shortcut and generic_perform_write's do-while calls
    /// write_begin with len 0 (ENODEV / EINVAL as usual), and when that accepts, write_end returns copied = 0 and
    /// fault_in_iov_iter_readable(i, 0) == 0 == bytes turns it into EFAULT.
    /// </summary>
    [ConformanceCase(Series + " + mm/filemap.c generic_perform_write: a zero-length write is EFAULT where a page write would be accepted, else write_begin's errno",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void zero_length_write(CaseContext ctx)
    {
        WithFile(ctx, Write, (vm, gmem) =>
        {
            var k = ctx.Kernel;
            long total = (long)gmem.Size;
            AssertErrno(Errno.EFAULT, k.Pwrite(gmem.Handle, [], 0), "pwrite(len 0, 0)");
            AssertErrno(Errno.EFAULT, k.Pwrite(gmem.Handle, [], total), "pwrite(len 0, i_size)");
            AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, [], total + PageSize), "pwrite(len 0) beyond i_size");
            AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, [], 1), "pwrite(len 0) at an unaligned offset");
            AssertErrno(Errno.EFAULT, k.Write(gmem.Handle, []), "write(len 0) at f_pos 0");
            Assert.Equal(0L, k.Lseek(gmem.Handle, 0, SEEK_CUR));
        });
        WithFile(ctx, Shared, (vm, gmem) =>
            AssertErrno(Errno.ENODEV, ctx.Kernel.Pwrite(gmem.Handle, [], 0), "pwrite(len 0) without WRITE"));
    }

    [ConformanceCase(Series + " + fs/read_write.c: ksys_pwrite64 refuses pos < 0 (EINVAL, before the fd lookup); rw_verify_area refuses pos + count overflowing loff_t",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void write_offsets_out_of_range(CaseContext ctx) => WithFile(ctx, Write, (vm, gmem) =>
    {
        var k = ctx.Kernel;
        byte[] page = new byte[PageSize];
        AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, page, -1), "pwrite at -1");
        AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, page, long.MinValue), "pwrite at LLONG_MIN");
        AssertErrno(Errno.EINVAL, k.Pwrite(gmem.Handle, page, long.MaxValue - 10), "pwrite whose end overflows");
        Assert.Equal(long.MaxValue - 10, k.Lseek(gmem.Handle, long.MaxValue - 10, SEEK_SET));
        AssertErrno(Errno.EINVAL, k.Write(gmem.Handle, page), "write at f_pos whose end overflows");
    });

    /// <summary>
    /// default_llseek (fs/read_write.c) on every guest_memfd file, WRITE or not: the whole file is data with a virtual
    /// hole at i_size; a negative result is EINVAL; whence &gt; SEEK_MAX is ksys_lseek's EINVAL.
    /// </summary>
    [ConformanceCase(Series + " + fs/read_write.c default_llseek: SEEK_SET/CUR/END/DATA/HOLE on every guest_memfd file",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void lseek_is_default_llseek(CaseContext ctx)
    {
        void Check(GuestMemfd gmem)
        {
            var k = ctx.Kernel;
            var fd = gmem.Handle;
            long total = (long)gmem.Size;
            long ps = PageSize;
            Assert.Equal(ps, k.Lseek(fd, ps, SEEK_SET));
            Assert.Equal(2 * ps, k.Lseek(fd, ps, SEEK_CUR));
            Assert.Equal(total, k.Lseek(fd, 0, SEEK_END));
            Assert.Equal(total - ps, k.Lseek(fd, -ps, SEEK_END));
            Assert.Equal(total + 5, k.Lseek(fd, 5, SEEK_END));
            AssertErrno(Errno.EINVAL, k.Lseek(fd, -total - 1, SEEK_END), "SEEK_END to a negative offset");
            AssertErrno(Errno.EINVAL, k.Lseek(fd, -1, SEEK_SET), "SEEK_SET -1");
            Assert.Equal(total + 5, k.Lseek(fd, 0, SEEK_CUR));
            Assert.Equal(ps, k.Lseek(fd, ps, SEEK_DATA));
            AssertErrno(Errno.ENXIO, k.Lseek(fd, total, SEEK_DATA), "SEEK_DATA at i_size");
            AssertErrno(Errno.EINVAL, k.Lseek(fd, -1, SEEK_DATA), "SEEK_DATA at -1");
            Assert.Equal(total, k.Lseek(fd, 0, SEEK_HOLE));
            Assert.Equal(total, k.Lseek(fd, -5, SEEK_HOLE));
            AssertErrno(Errno.ENXIO, k.Lseek(fd, total, SEEK_HOLE), "SEEK_HOLE at i_size");
            AssertErrno(Errno.EINVAL, k.Lseek(fd, 0, 5), "whence 5");
            AssertErrno(Errno.EINVAL, k.Lseek(fd, 0, -1), "whence -1");
            Assert.Equal(total, k.Lseek(fd, 0, SEEK_CUR));
        }
        WithFile(ctx, Write, (vm, gmem) => Check(gmem));
        WithFile(ctx, Shared, (vm, gmem) => Check(gmem));
    }

    /// <summary>
    /// kvm_gmem_write_end marks the folio up to date: the bytes written are what a host mapping then reads (the fault
    /// does not zero an up-to-date folio); punch-hole frees the folio, so the page reads zero and can be written again.
    /// </summary>
    [ConformanceCase(Series + ": written pages are up to date (a host fault does not zero them); punch-hole zeroes them",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void written_pages_are_prepared(CaseContext ctx) => WithFile(ctx, Shared | Write, (vm, gmem) =>
    {
        int ps = PageSize;
        byte[] data = new byte[2 * ps];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7 + 1);
        Assert.Equal(data.Length, ctx.Kernel.Pwrite(gmem.Handle, data, ps));
        using var mem = gmem.Map();
        Assert.Equal(0, mem.Read<byte>(0));
        for (int i = 0; i < data.Length; i += 509) Assert.Equal(data[i], mem.Read<byte>((ulong)(ps + i)));
        gmem.PunchHole(ps, ps);
        Assert.Equal(0, mem.Read<byte>((ulong)ps));
        Assert.Equal(data[ps], mem.Read<byte>(2 * (ulong)ps));
        Assert.Equal((long)ps, ctx.Kernel.Pwrite(gmem.Handle, data.AsSpan(0, ps), ps));
        Assert.Equal(data[1], mem.Read<byte>((ulong)ps + 1));
    });

    /// <summary>
    /// With NO_DIRECT_MAP: a page that a host fault or an earlier write made up to date has left the direct map ("sealed"),
    /// and write() refuses it with EEXIST (Firecracker hiding_ci 0062 "fixup for write and direct map removal";
    /// v7's cover letter); a fresh or fallocated page takes a write; punch-hole restores the direct map.
    /// </summary>
    [ConformanceCase(Series + " cover letter + Firecracker 0062 fixup: with NO_DIRECT_MAP, write() to a page already removed from the direct map is EEXIST",
        Profile = EmulatedProfile.X86GuestMemfdWrite)]
    public static void write_refuses_pages_removed_from_direct_map(CaseContext ctx) =>
        WithFile(ctx, Shared | Write | GuestMemfdFlags.NoDirectMap, (vm, gmem) =>
        {
            var k = ctx.Kernel;
            int ps = PageSize;
            byte[] page = new byte[ps];
            page[0] = 0x5a;
            Assert.Equal((long)ps, k.Pwrite(gmem.Handle, page, 0));
            AssertErrno(Errno.EEXIST, k.Pwrite(gmem.Handle, page, 0), "a second write to a written page");
            using (var mem = gmem.Map())
            {
                Assert.Equal(0x5a, mem.Read<byte>(0));
                mem.Write<byte>((ulong)ps, 1); // host fault: page 1 is zeroed, prepared and zapped
            }
            AssertErrno(Errno.EEXIST, k.Pwrite(gmem.Handle, page, ps), "a write to a host-faulted page");
            // fallocate allocates without preparing (or zapping): the page takes a write.
            gmem.Allocate(2 * ps, ps);
            Assert.Equal((long)ps, k.Pwrite(gmem.Handle, page, 2 * ps));
            // Punch-hole frees page 0 (the direct map comes back); a two-page write stops at sealed page 1.
            gmem.PunchHole(0, ps);
            Assert.Equal((long)ps, k.Pwrite(gmem.Handle, new byte[2 * ps], 0));
            gmem.PunchHole(0, 2 * ps);
            Assert.Equal(2L * ps, k.Pwrite(gmem.Handle, new byte[2 * ps], 0));
        });
}
