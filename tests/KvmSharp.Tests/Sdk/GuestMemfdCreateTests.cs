// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>KVM_CREATE_GUEST_MEMFD rules (virt/kvm/guest_memfd.c kvm_gmem_create; selftest guest_memfd_test.c).</summary>
public class GuestMemfdCreateTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Every_flag_bit_is_accepted_exactly_when_the_vm_reports_it(string kernel)
    {
        // test_guest_memfd_flags: for each bit 0..63, supported -> fd, else EINVAL.
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong supported = (ulong)vm.SupportedGuestMemfdFlags;
        for (int bit = 0; bit < 64; bit++)
        {
            var flag = (GuestMemfdFlags)(1UL << bit);
            if ((supported & (1UL << bit)) != 0)
            {
                using var gmem = vm.CreateGuestMemfd((ulong)PageSize, flag);
                Assert.Equal(flag, gmem.Flags);
            }
            else
            {
                var ex = AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd((ulong)PageSize, flag).Dispose());
                Assert.Equal("KVM_CREATE_GUEST_MEMFD", ex.Operation);
                Assert.Contains($"flags=0x{1UL << bit:X}", ex.Message, StringComparison.Ordinal);
            }
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Host_supports_mmap_and_init_shared_on_the_default_vm(string kernel)
    {
        // test_guest_memfd_guest: a DEFAULT VM must report MMAP and INIT_SHARED when the cap is non-zero.
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        Assert.True(kvm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD) > 0);
        Assert.True(vm.SupportedGuestMemfdFlags.HasFlag(GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared));
        Assert.Equal(kvm.SupportedGuestMemfdFlags & vm.SupportedGuestMemfdFlags, vm.SupportedGuestMemfdFlags);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Sizes_that_are_not_positive_page_multiples_are_rejected(string kernel)
    {
        // test_create_guest_memfd_invalid_sizes: every size 1..page_size-1; plus 0 and >= 2^63 (size is a signed loff_t).
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        foreach (GuestMemfdFlags flags in new[] { GuestMemfdFlags.None, GuestMemfdFlags.Mmap, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared })
        {
            for (ulong size = 1; size < (ulong)PageSize; size++)
                AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd(size, flags).Dispose());
            AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd(0, flags).Dispose());
            AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd(1UL << 63, flags).Dispose());
            AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd((ulong)PageSize + 1, flags).Dispose());
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Multiple_files_have_their_own_inode_and_size(string kernel)
    {
        // test_create_guest_memfd_multiple
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var a = vm.CreateGuestMemfd((ulong)PageSize);
        using var b = vm.CreateGuestMemfd(2 * (ulong)PageSize);
        var sa = a.Stat();
        var sb = b.Stat();
        Assert.Equal(PageSize, sa.Size);
        Assert.Equal(2 * PageSize, sb.Size);
        Assert.NotEqual(sa.Inode, sb.Inode);
        Assert.Equal(sa, a.Stat());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Fstat_reports_size_and_page_sized_blocks(string kernel)
    {
        // test_file_size
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize, GuestMemfdFlags.Mmap);
        var st = gmem.Stat();
        Assert.Equal(4 * PageSize, st.Size);
        Assert.Equal(PageSize, st.BlockSize);
        Assert.Equal(LinuxConstants.S_IFREG, st.Mode & LinuxConstants.S_IFMT);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Reserved_fields_are_not_validated(string kernel)
    {
        // kvm_gmem_create() never reads reserved[]: non-zero reserved is accepted on mainline.
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var args = new kvm_create_guest_memfd { size = (ulong)PageSize };
        args.reserved[0] = 0xdead;
        args.reserved[5] = ulong.MaxValue;
        long fd = kvm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, Bytes(ref args));
        Assert.True(fd >= 0, $"create with reserved bits set failed: {fd}");
        kvm.Kernel.Adopt((int)fd).Dispose();
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Short_argument_buffer_is_a_fault_not_a_crash(string kernel)
    {
        // The request encodes 64 bytes; an empty buffer means a NULL argument: copy_from_user -> EFAULT.
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        Assert.Equal(-(long)Errno.EFAULT, kvm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, Span<byte>.Empty));
    }

    private static Span<byte> Bytes<T>(ref T value) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref value, 1));
}
