// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Conformance.Cases;

/// <summary>What kvm_gmem_fops does not implement, and the VFS checks in front of fallocate (kernel-spec.md §2.3, §2.4).</summary>
[ConformanceGroup(Requires = KernelRequirement.GuestMemfd)]
public static class FileOperationRules
{
    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_fops: no llseek; kvm_gmem_setattr -> EINVAL")]
    public static void lseek_is_espipe_and_ftruncate_is_einval(CaseContext ctx) => ctx.GmemTest(_ => true, (vm, gmem) =>
    {
        AssertErrno(Errno.ESPIPE, ctx.Kernel.Lseek(gmem.Handle, 0, SEEK_SET), "lseek");
        AssertErrno(Errno.EINVAL, ctx.Kernel.Ftruncate(gmem.Handle, 8L * PageSize), "ftruncate");
        Assert.Equal((long)gmem.Size, gmem.Stat().Size);
    });

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_fops: no unlocked_ioctl on mainline -> ENOTTY")]
    public static void unknown_ioctl_is_enotty(CaseContext ctx) => ctx.GmemTest(_ => true, (vm, gmem) =>
        AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(gmem.Handle, Abi.KvmIoctls.KVM_CREATE_VCPU, 0UL), "KVM_CREATE_VCPU on a guest_memfd"));

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_fallocate + fs/open.c vfs_fallocate")]
    public static void fallocate_modes_and_ranges_the_vfs_rejects(CaseContext ctx) => ctx.GmemTest(_ => true, (vm, gmem) =>
    {
        var k = ctx.Kernel;
        long ps = PageSize;
        AssertErrno(Errno.EOPNOTSUPP, k.Fallocate(gmem.Handle, 0, 0, ps), "allocate without KEEP_SIZE");
        AssertErrno(Errno.EOPNOTSUPP, k.Fallocate(gmem.Handle, FALLOC_FL_PUNCH_HOLE, 0, ps), "PUNCH_HOLE without KEEP_SIZE");
        AssertErrno(Errno.EOPNOTSUPP, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE | 0x08, 0, ps), "COLLAPSE_RANGE");
        AssertErrno(Errno.EINVAL, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE, -ps, ps), "negative offset");
        AssertErrno(Errno.EINVAL, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE, 0, 0), "zero length");
        AssertErrno(Errno.EFBIG, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE, long.MaxValue - ps + 1, 2 * ps), "offset + len overflows");
    });

    [ConformanceCase("fs: a closed descriptor is EBADF for every call", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void closed_descriptor_is_ebadf(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var vm = kvm.CreateVm();
        var gmem = vm.CreateGuestMemfd((ulong)PageSize, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        gmem.Dispose();
        vm.Dispose();
        AssertErrno(Errno.EBADF, ctx.Kernel.Ioctl(vm.Handle, Abi.KvmIoctls.KVM_CHECK_EXTENSION, 0UL), "ioctl on a closed VM fd");
        AssertErrno(Errno.EBADF, ctx.Kernel.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE, 0, PageSize), "fallocate on a closed gmem fd");
        AssertErrno(Errno.EBADF, ctx.Kernel.Fstat(gmem.Handle, out _), "fstat on a closed gmem fd");
        long rc = MappedRegion.Map(ctx.Kernel, gmem.Handle, (ulong)PageSize, PROT_READ, MAP_SHARED, 0, out var region);
        region?.Dispose();
        AssertErrno(Errno.EBADF, rc, "mmap of a closed gmem fd");
    }

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_mmap: a mapping holds its own file reference", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void mapping_outlives_the_descriptor(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var gmem = vm.CreateGuestMemfd(2 * (ulong)PageSize, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var a = gmem.Map();
        using var b = gmem.Map((ulong)PageSize, offset: (ulong)PageSize);
        a.Write<ulong>((ulong)PageSize + 8, 0x1122334455667788);
        Assert.Equal(0x1122334455667788UL, b.Read<ulong>(8));
        gmem.Dispose();
        a.Write<uint>(0, 0xfeedface);
        Assert.Equal(0xfeedfaceu, a.Read<uint>(0));
        Assert.Equal(0x1122334455667788UL, b.Read<ulong>(8));
    }
}
