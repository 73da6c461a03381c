// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Tests.Sdk;

/// <summary>fallocate on guest_memfd (kvm_gmem_fallocate; selftest test_fallocate, test_invalid_punch_hole).</summary>
public class GuestMemfdFallocateTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Fallocate_follows_the_selftest_sequence(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        long total = 4L * PageSize;
        using var gmem = vm.CreateGuestMemfd((ulong)total, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);

        gmem.Allocate(0, total);
        AssertErrno(Errno.EINVAL, () => gmem.PunchHole(PageSize - 1, PageSize));
        AssertErrno(Errno.EINVAL, () => gmem.Allocate(total, PageSize));
        AssertErrno(Errno.EINVAL, () => gmem.Allocate(total + PageSize, PageSize));
        gmem.PunchHole(total, PageSize);              // beyond the end: a successful no-op
        gmem.PunchHole(total + PageSize, PageSize);
        AssertErrno(Errno.EINVAL, () => gmem.Allocate(PageSize, PageSize - 1));
        gmem.PunchHole(PageSize, PageSize);
        gmem.Allocate(PageSize, PageSize);            // re-allocate the punched page
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Every_misaligned_punch_hole_is_EINVAL(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize);
        long ps = PageSize;
        (long Offset, long Len)[] cases =
        [
            (0, 1), (0, ps - 1), (0, ps + 1), (1, 1), (1, ps - 1), (1, ps), (1, ps + 1), (ps, 1), (ps, ps - 1), (ps, ps + 1),
        ];
        foreach (var (offset, len) in cases)
            Assert.Equal(-(long)Errno.EINVAL, kvm.Kernel.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, offset, len));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Modes_and_ranges_the_vfs_rejects(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize);
        var k = kvm.Kernel;
        long ps = PageSize;
        Assert.Equal(-(long)Errno.EOPNOTSUPP, k.Fallocate(gmem.Handle, 0, 0, ps));                  // no KEEP_SIZE
        Assert.Equal(-(long)Errno.EOPNOTSUPP, k.Fallocate(gmem.Handle, FALLOC_FL_PUNCH_HOLE, 0, ps)); // punch without KEEP_SIZE
        Assert.Equal(-(long)Errno.EOPNOTSUPP, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE | 0x08, 0, ps)); // COLLAPSE_RANGE
        Assert.Equal(-(long)Errno.EINVAL, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE, -ps, ps));
        Assert.Equal(-(long)Errno.EINVAL, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE, 0, 0));
        Assert.Equal(-(long)Errno.EFBIG, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE, long.MaxValue - ps + 1, 2 * ps));
    }
}
