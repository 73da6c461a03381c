// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.Tests;

/// <summary>kernel-spec §2.1 capability values per configuration.</summary>
public sealed class CapabilityTests
{
    private const int Flags = KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS;
    private const int Attrs = KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES;
    private const int GmemAttrs = 250;

    private static long VmCap(EmulatedKernel k, ulong type, int cap)
    {
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys, type);
        return Raw.Cap(k, vm, cap);
    }

    [Theory]
    [InlineData(0u, 0x3, 0)]
    [InlineData(1u, 0x1, 0x8)]
    [InlineData(2u, 0x3, 0)]
    [InlineData(3u, 0x3, 0)]
    [InlineData(4u, 0x1, 0x8)]
    [InlineData(5u, 0x1, 0x8)]
    public void X86_mainline_flags_and_attributes_follow_has_private_mem(uint type, long flags, long attrs)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        Assert.Equal(flags, VmCap(k, type, Flags));
        Assert.Equal(attrs, VmCap(k, type, Attrs));
        Assert.Equal(0, VmCap(k, type, GmemAttrs));
        Assert.Equal(1, VmCap(k, type, KvmCaps.KVM_CAP_GUEST_MEMFD));
    }

    [Theory]
    [InlineData(0u, 0)]
    [InlineData(1u, 0x8)]
    [InlineData(4u, 0x8)]
    [InlineData(5u, 0x8)]
    public void X86_in_place_conversion_allows_INIT_SHARED_everywhere_and_moves_attributes_to_gmem(uint type, long gmemAttrs)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        Assert.Equal(0x3, VmCap(k, type, Flags));
        Assert.Equal(0, VmCap(k, type, Attrs));
        Assert.Equal(gmemAttrs, VmCap(k, type, GmemAttrs));
    }

    [Fact]
    public void Dev_kvm_answers_with_kvm_NULL()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(0x3, Raw.Cap(k, sys, Flags));
        Assert.Equal(0x8, Raw.Cap(k, sys, Attrs));
        Assert.Equal(0x3F, Raw.Cap(k, sys, KvmCaps.KVM_CAP_VM_TYPES));
        Assert.Equal(1, Raw.Cap(k, sys, KvmCaps.KVM_CAP_PRE_FAULT_MEMORY));
        Assert.Equal(2, Raw.Cap(k, sys, KvmCaps.KVM_CAP_MULTI_ADDRESS_SPACE));
        Assert.Equal(1, Raw.Cap(k, sys, KvmCaps.KVM_CAP_USER_MEMORY2));
        Assert.Equal(0, Raw.Cap(k, sys, 4000));
        using var v8 = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using var sys8 = Raw.OpenKvm(v8);
        Assert.Equal(0x8, Raw.Cap(v8, sys8, GmemAttrs));
        Assert.Equal(0, Raw.Cap(v8, sys8, Attrs));
    }

    [Fact]
    public void Like_this_host_reports_what_the_host_reports()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(0x3, Raw.Cap(k, sys, Flags));
        Assert.Equal(0, Raw.Cap(k, sys, Attrs));
        Assert.Equal(1, Raw.Cap(k, sys, KvmCaps.KVM_CAP_VM_TYPES));
        Assert.Equal(0, Raw.Cap(k, sys, KvmCaps.KVM_CAP_PRE_FAULT_MEMORY));
        Assert.Equal(12288, k.Ioctl(sys, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL));
        Assert.Equal(Raw.EINVAL, k.Ioctl(sys, KvmIoctls.KVM_CREATE_VM, 1UL));
    }

    [Fact]
    public void Arm64_has_no_vm_types_cap_and_only_the_default_type()
    {
        using var k = new EmulatedKernel(EmulatorConfig.Arm64());
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(0, Raw.Cap(k, sys, KvmCaps.KVM_CAP_VM_TYPES));
        Assert.Equal(0x3, Raw.Cap(k, sys, Flags));
        Assert.Equal(0, Raw.Cap(k, sys, Attrs));
        Assert.Equal(0x3, VmCap(k, 0, Flags));
        Assert.Equal(Raw.EINVAL, k.Ioctl(sys, KvmIoctls.KVM_CREATE_VM, 1UL << 8));
        Assert.Equal(Raw.EINVAL, k.Ioctl(sys, KvmIoctls.KVM_CREATE_VM, 31UL));
        // An explicit 44-bit IPA is a valid arm64 "type".
        long fd = k.Ioctl(sys, KvmIoctls.KVM_CREATE_VM, 44UL);
        Assert.True(fd >= 0);
        Assert.Equal(0, k.Close((int)fd));
        Assert.Equal(2L * Raw.Page, k.Ioctl(sys, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL));
    }

    [Fact]
    public void Flags_hi_cap_reports_bits_63_to_32_when_configured()
    {
        var config = EmulatorConfig.X86_64() with { GuestMemfdFlagsHiCap = 4001, ExtraGuestMemfdFlags = 1UL << 40 };
        using var k = new EmulatedKernel(config);
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(1L << 8, Raw.Cap(k, sys, 4001));
        Assert.Equal(0x3, Raw.Cap(k, sys, Flags));
        using var vm = Raw.CreateVm(k, sys);
        long fd = Raw.CreateGmemRc(k, vm, (ulong)Raw.Page, 1UL << 40);
        Assert.True(fd >= 0);
        Assert.Equal(0, k.Close((int)fd));
        using var plain = new EmulatedKernel(EmulatorConfig.X86_64());
        using var sys2 = Raw.OpenKvm(plain);
        Assert.Equal(0, Raw.Cap(plain, sys2, 4001));
    }

    [Fact]
    public void Without_the_guest_memfd_kconfig_nothing_of_it_exists()
    {
        var config = EmulatorConfig.LikeThisHost() with { Kconfig = new Kconfig { KVM_GUEST_MEMFD = false } };
        using var k = new EmulatedKernel(config);
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(0, Raw.Cap(k, sys, KvmCaps.KVM_CAP_GUEST_MEMFD));
        Assert.Equal(0, Raw.Cap(k, sys, Flags));
        using var vm = Raw.CreateVm(k, sys);
        Assert.Equal(Raw.ENOTTY, Raw.CreateGmemRc(k, vm, (ulong)Raw.Page, 0));
        Assert.Equal(Raw.EINVAL, Raw.Region2(k, vm, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, 0, (ulong)Raw.Page));
    }

    [Fact]
    public void Invalid_configurations_are_refused_at_construction()
    {
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(EmulatorConfig.Arm64() with { VmTypes = new HashSet<uint> { 0, 1 } }));
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(EmulatorConfig.X86_64() with { TdpEnabled = false }));
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(EmulatorConfig.X86_64() with { GmemInPlaceConversion = true }));
    }
}
