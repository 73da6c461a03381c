// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>Memory attributes v1 (VM) and v2 (guest_memfd, v8 proposal) where the kernel lacks them.</summary>
public class MemoryAttributesTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Setting_private_on_a_vm_without_attributes_names_the_missing_capability(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        if (vm.SupportedMemoryAttributes != MemoryAttributes.None)
        {
            // A VM with private memory accepts the attribute.
            vm.SetMemoryAttributes(0, (ulong)PageSize, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            return;
        }
        var ex = Assert.Throws<KvmCapabilityException>(() =>
            vm.SetMemoryAttributes(0x100000, (ulong)PageSize, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE));
        Assert.Equal(nameof(KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES), ex.Capability);
        Assert.Equal(0, ex.Reported);
        Assert.Contains("KVM_CAP_MEMORY_ATTRIBUTES = 0x0", ex.Message, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Attributes2_on_a_guest_memfd_without_in_place_conversion_names_the_missing_capability(string kernel)
    {
        using var kvm = Open(kernel);
        RequireGuestMemfd(kvm);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        if (vm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) != 0)
        {
            // A kernel with in-place conversion: the page becomes private and the host is refused.
            gmem.SetAttributes(0, (ulong)PageSize, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            using var mapped = gmem.Map();
            Assert.Throws<GuestMemoryFaultException>(() => mapped.Read<byte>(0));
            return;
        }
        var ex = Assert.Throws<KvmCapabilityException>(() =>
            gmem.SetAttributes(0, (ulong)PageSize, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE));
        Assert.Equal(Errno.ENOTTY, ex.Errno);
        Assert.Equal(nameof(KvmCaps.KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES), ex.Capability);
        // A failed call changes nothing: the page is still shared for the host.
        using var map = gmem.Map();
        map.Write<byte>(0, 1);
    }
}
