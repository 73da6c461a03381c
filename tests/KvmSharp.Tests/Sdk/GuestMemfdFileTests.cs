// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>File operations a guest_memfd does not implement (kvm_gmem_fops has no read/write/llseek/setattr).</summary>
public class GuestMemfdFileTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Read_write_pread_pwrite_lseek_and_ftruncate_fail_with_the_kernel_errno(string kernel)
    {
        // test_file_read_write asserts only "< 0"; the errnos are what the real kernel answers.
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        var k = kvm.Kernel;
        byte[] buf = new byte[PageSize];
        Assert.Equal(-(long)Errno.EINVAL, k.Read(gmem.Handle, buf));
        Assert.Equal(-(long)Errno.EINVAL, k.Write(gmem.Handle, buf));
        Assert.Equal(-(long)Errno.ESPIPE, k.Pread(gmem.Handle, buf, 0));
        Assert.Equal(-(long)Errno.ESPIPE, k.Pwrite(gmem.Handle, buf, 0));
        Assert.Equal(-(long)Errno.ESPIPE, k.Lseek(gmem.Handle, 0, LinuxConstants.SEEK_SET));
        Assert.Equal(-(long)Errno.EINVAL, k.Ftruncate(gmem.Handle, 8 * PageSize));
        Assert.Equal(4 * PageSize, gmem.Stat().Size);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Unknown_ioctl_on_a_guest_memfd_is_ENOTTY(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd((ulong)PageSize);
        Assert.Equal(-(long)Errno.ENOTTY, kvm.Kernel.Ioctl(gmem.Handle, KvmSharp.Abi.KvmIoctls.KVM_CREATE_VCPU, 0UL));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_closed_descriptor_is_EBADF_at_the_boundary(string kernel)
    {
        using var kvm = Open(kernel);
        var vm = kvm.CreateVm();
        vm.Dispose();
        Assert.Equal(-(long)Errno.EBADF, kvm.Kernel.Ioctl(vm.Handle, KvmSharp.Abi.KvmIoctls.KVM_CHECK_EXTENSION, 0UL));
        AssertErrno(Errno.EBADF, () => vm.CreateGuestMemfd((ulong)PageSize));
    }
}
