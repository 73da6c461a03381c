// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Memory attributes on a VM without private memory (the default x86 VM): the calls the v1/v2 uAPI offers, and
/// what such a VM answers (kernel-spec.md §2.1, §2.7, §4).
/// </summary>
public static class AttributesOnDefaultVm
{
    [ConformanceCase("virt/kvm/kvm_main.c kvm_supported_mem_attributes: no private memory -> 0")]
    public static void default_vm_reports_no_memory_attributes(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(MemoryAttributes.None, vm.SupportedMemoryAttributes);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl_set_mem_attributes: unsupported attribute on a default VM")]
    public static void setting_private_on_a_default_vm_fails(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var args = new kvm_memory_attributes { address = 0x100000, size = (ulong)PageSize, attributes = KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE };
        long rc = ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref args, 1)));
        // Without CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES the ioctl does not exist (ENOTTY); with it, a default VM
        // supports no attribute (EINVAL). Either way the call must fail and the typed API names the capability.
        long kvmAttrs = kvm.CheckExtension(KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES);
        AssertErrno(kvmAttrs == 0 ? Errno.ENOTTY : Errno.EINVAL, rc, "KVM_SET_MEMORY_ATTRIBUTES(PRIVATE) on a default VM");
        var ex = Assert.Throws<KvmCapabilityException>(() => vm.SetMemoryAttributes(0x100000, (ulong)PageSize, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE));
        Assert.Equal(nameof(KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES), ex.Capability);
    }

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_fops (mainline: no unlocked_ioctl); [PATCH v8 13/46]: ENOTTY without in-place conversion", Requires = KernelRequirement.GuestMemfd)]
    public static void attributes2_on_a_gmem_without_in_place_conversion_is_enotty(CaseContext ctx) => ctx.GmemTest(_ => true, (vm, gmem) =>
    {
        if (vm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) != 0)
            Skip("this kernel supports KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd");
        var args = new kvm_memory_attributes2 { offset = 0, size = (ulong)PageSize, attributes = KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE };
        AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(gmem.Handle, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref args, 1))), "KVM_SET_MEMORY_ATTRIBUTES2");
        Assert.Equal(0UL, args.error_offset);
    });
}
