// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>KVM_CREATE_GUEST_MEMFD rules beyond the selftest (kernel-spec.md §2.2; guest_memfd.c kvm_gmem_create).</summary>
public static class CreationRules
{
    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_create: size is a signed loff_t; <= 0 -> EINVAL", Requires = KernelRequirement.GuestMemfd)]
    public static void zero_and_negative_sizes_are_einval(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (var flags in FlagSets(vm))
        {
            AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd(0, flags).Dispose());
            AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd(1UL << 63, flags).Dispose());
            AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd(ulong.MaxValue - (ulong)PageSize + 1, flags).Dispose());
            AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd((ulong)PageSize + 1, flags).Dispose());
        }
    }

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_create: reserved[] is never read", Requires = KernelRequirement.GuestMemfd)]
    public static void reserved_fields_are_not_validated(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var args = new kvm_create_guest_memfd { size = (ulong)PageSize };
        args.reserved[0] = 0xdead;
        args.reserved[5] = ulong.MaxValue;
        long fd = ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref args, 1)));
        Assert.True(fd >= 0, $"create with reserved bits set failed: {fd}");
        ctx.Kernel.Adopt((int)fd).Dispose();
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl: copy_from_user of a NULL argument -> EFAULT", Requires = KernelRequirement.GuestMemfd)]
    public static void null_argument_is_efault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, Span<byte>.Empty), "KVM_CREATE_GUEST_MEMFD(NULL)");
        AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Span<byte>.Empty), "KVM_SET_USER_MEMORY_REGION2(NULL)");
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl_check_extension_generic: GUEST_MEMFD, GUEST_MEMFD_FLAGS", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void default_vm_reports_guest_memfd_and_its_flags(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD));
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD));
        // kvm_gmem_get_supported_flags(NULL) = MMAP|INIT_SHARED; a default x86 VM has no private memory.
        Assert.Equal(GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared, kvm.SupportedGuestMemfdFlags);
        Assert.Equal(GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared, vm.SupportedGuestMemfdFlags);
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY2));
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_dev_ioctl_create_vm: an unknown VM type -> EINVAL")]
    public static void unsupported_vm_type_is_einval(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var supported = kvm.SupportedVmTypes;
        for (uint type = 0; type < 8; type++)
        {
            if (supported.Contains((VmType)type)) kvm.CreateVm((VmType)type).Dispose();
            else AssertErrno(Errno.EINVAL, () => kvm.CreateVm((VmType)type).Dispose());
        }
    }
}
