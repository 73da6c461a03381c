// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.Tests;

/// <summary>kernel-spec §2.7 (KVM_SET_MEMORY_ATTRIBUTES on the VM) and the seed 002 VM-fd ATTRIBUTES2.</summary>
public sealed class VmAttributesTests
{
    private const ulong Private = KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE;

    [Fact]
    public void Checks_run_in_kernel_order()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys, KvmConstants.KVM_X86_SW_PROTECTED_VM);
        ulong ps = (ulong)Raw.Page;
        Assert.Equal(Raw.EINVAL, Raw.VmAttributes(k, vm, 1, 0, 0x10, flags: 1));   // flags first
        Assert.Equal(Raw.EINVAL, Raw.VmAttributes(k, vm, 1, 0, 0x10));             // unsupported attribute
        Assert.Equal(Raw.EINVAL, Raw.VmAttributes(k, vm, 1, 0, Private));          // size 0
        Assert.Equal(Raw.EINVAL, Raw.VmAttributes(k, vm, ulong.MaxValue - ps + 1, 2 * ps, Private)); // wrap
        Assert.Equal(Raw.EINVAL, Raw.VmAttributes(k, vm, 1, ps, Private));         // unaligned
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, new byte[31]));
        Assert.Equal(0, Raw.VmAttributes(k, vm, 1UL << 40, 1UL << 40, Private));   // no memslot needed
    }

    [Fact]
    public void Default_vm_accepts_only_attribute_zero()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        Assert.Equal(Raw.EINVAL, Raw.VmAttributes(k, vm, 0, (ulong)Raw.Page, Private));
        Assert.Equal(0, Raw.VmAttributes(k, vm, 0, (ulong)Raw.Page, 0));
    }

    [Fact]
    public void Attributes_are_per_gfn_and_visible_to_the_guest_path()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys, KvmConstants.KVM_X86_SW_PROTECTED_VM);
        ulong ps = (ulong)Raw.Page;
        Assert.Equal(0, Raw.VmAttributes(k, vm, 4 * ps, 2 * ps, Private));
        var kvm = GuestMemoryPath.VmOf(k, vm)!;
        Assert.False(GuestMemoryPath.MemIsPrivate(kvm, 3));
        Assert.True(GuestMemoryPath.MemIsPrivate(kvm, 4));
        Assert.True(GuestMemoryPath.MemIsPrivate(kvm, 5));
        Assert.False(GuestMemoryPath.MemIsPrivate(kvm, 6));
        long seq = kvm.MmuInvalidateSeq;
        Assert.Equal(0, Raw.VmAttributes(k, vm, 4 * ps, 2 * ps, Private));
        Assert.Equal(seq, kvm.MmuInvalidateSeq); // already equal: no invalidation
        Assert.Equal(0, Raw.VmAttributes(k, vm, 5 * ps, ps, 0));
        Assert.False(GuestMemoryPath.MemIsPrivate(kvm, 5));
        Assert.True(kvm.MmuInvalidateSeq > seq);
    }

    [Fact]
    public void Without_the_kconfig_the_ioctl_is_the_arch_default_and_in_place_conversion_turns_it_off()
    {
        using var host = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(host);
        using var vm = Raw.CreateVm(host, sys);
        Assert.Equal(Raw.ENOTTY, Raw.VmAttributes(host, vm, 0, (ulong)Raw.Page, 0));
        using var v8 = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using var sys8 = Raw.OpenKvm(v8);
        using var vm8 = Raw.CreateVm(v8, sys8, KvmConstants.KVM_X86_SW_PROTECTED_VM);
        Assert.Equal(Raw.ENOTTY, Raw.VmAttributes(v8, vm8, 0, (ulong)Raw.Page, Private));
        using var arm = new EmulatedKernel(EmulatorConfig.Arm64());
        using var sysA = Raw.OpenKvm(arm);
        using var vmA = Raw.CreateVm(arm, sysA);
        Assert.Equal(Raw.EINVAL, Raw.VmAttributes(arm, vmA, 0, (ulong)Raw.Page, 0)); // arm64 kvm_arch_vm_ioctl default
    }

    [Fact]
    public void Seed_002_variant_on_the_vm_fd_rejects_reserved_words()
    {
        var config = EmulatorConfig.X86_64() with { VmMemoryAttributes2 = true };
        using var k = new EmulatedKernel(config);
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(0x8, Raw.Cap(k, sys, 248));
        using var vm = Raw.CreateVm(k, sys, KvmConstants.KVM_X86_SW_PROTECTED_VM);
        ulong ps = (ulong)Raw.Page;
        var a = new kvm_memory_attributes2 { offset = 0, size = ps, attributes = Private };
        a.reserved[10] = 1;
        Assert.Equal(Raw.EINVAL, Raw.Attributes2(k, vm, ref a));
        a.reserved[10] = 0;
        a.error_offset = 1; // reserved[0] in the seed 002 layout
        Assert.Equal(Raw.EINVAL, Raw.Attributes2(k, vm, ref a));
        a.error_offset = 0;
        Assert.Equal(0, Raw.Attributes2(k, vm, ref a));
        Assert.True(GuestMemoryPath.MemIsPrivate(GuestMemoryPath.VmOf(k, vm)!, 0));
        // Not configured: the request is unknown to the VM fd.
        using var plain = new EmulatedKernel(EmulatorConfig.X86_64());
        using var sys2 = Raw.OpenKvm(plain);
        using var vm2 = Raw.CreateVm(plain, sys2, KvmConstants.KVM_X86_SW_PROTECTED_VM);
        Assert.Equal(Raw.ENOTTY, Raw.Attributes2(plain, vm2, ref a));
        Assert.Equal(0, Raw.Cap(plain, sys2, 248));
    }

    [Fact]
    public void One_TiB_range_takes_microseconds_and_one_entry()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys, KvmConstants.KVM_X86_SW_PROTECTED_VM);
        var kvm = GuestMemoryPath.VmOf(k, vm)!;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(0, Raw.VmAttributes(k, vm, 0, 1UL << 40, Private));
        Assert.Equal(0, Raw.VmAttributes(k, vm, 1UL << 30, 1UL << 30, 0));
        sw.Stop();
        Assert.Equal(2, kvm.MemAttrArray.RangeCount);
        Assert.True(sw.ElapsedMilliseconds < 50, $"took {sw.ElapsedMilliseconds} ms");
    }
}
