// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// What changes between kernel generations (KernelGenerations), raw and through the SDK: the rules a VMM's
/// fallback path meets on a 6.1, 6.8–6.17 or 6.18 host.
/// </summary>
public sealed class KernelGenerationTests
{
    private static readonly ulong Page = (ulong)Raw.Page;
    private static readonly ulong Mmap = KvmConstants.GUEST_MEMFD_FLAG_MMAP;
    private static readonly ulong InitShared = KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED;

    // Host memory for plain slots, unmapped when the test ends.
    private static MappedRegion Anonymous(IKernel k, ulong size)
    {
        Assert.Equal(0, MappedRegion.Map(k, null, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0, out var region));
        return region!;
    }

    [Theory]
    [InlineData(KernelGeneration.Linux61, 0x1)]
    [InlineData(KernelGeneration.Linux68, 0x3)]
    [InlineData(KernelGeneration.Linux610, 0xF)]
    [InlineData(KernelGeneration.Linux611, 0x1F)]
    [InlineData(KernelGeneration.Linux616, 0x3F)]
    [InlineData(KernelGeneration.Linux618, 0x3F)]
    public void Each_generation_creates_the_VM_types_it_knows_and_no_later_one(KernelGeneration g, int mask)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(g));
        using var sys = Raw.OpenKvm(k);
        // KVM_CAP_VM_TYPES itself is 6.8+: a 6.1 kernel answers 0 for it (and knows only type 0).
        Assert.Equal(g == KernelGeneration.Linux61 ? 0 : mask, Raw.Cap(k, sys, KvmCaps.KVM_CAP_VM_TYPES));
        for (uint type = 0; type <= 6; type++)
        {
            long rc = k.Ioctl(sys, KvmIoctls.KVM_CREATE_VM, type);
            if ((mask & (1 << (int)type)) != 0)
            {
                Assert.True(rc >= 0, $"type {type} on {g}: {rc}");
                k.Close((int)rc);
            }
            else
            {
                Assert.Equal(Raw.EINVAL, rc);
            }
        }
    }

    [Fact]
    public void Linux61_has_neither_REGION2_nor_guest_memfd_nor_attributes()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(KernelGeneration.Linux61));
        using var sys = Raw.OpenKvm(k);
        foreach (int cap in new[]
        {
            KvmCaps.KVM_CAP_USER_MEMORY2, KvmCaps.KVM_CAP_MEMORY_FAULT_INFO, KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES,
            KvmCaps.KVM_CAP_GUEST_MEMFD, KvmCaps.KVM_CAP_VM_TYPES, KvmCaps.KVM_CAP_PRE_FAULT_MEMORY, KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS,
        })
        {
            Assert.Equal(0, Raw.Cap(k, sys, cap));
        }
        Assert.Equal(1, Raw.Cap(k, sys, KvmCaps.KVM_CAP_USER_MEMORY));
        using var vm = Raw.CreateVm(k, sys);
        // Unknown VM ioctls reach x86 kvm_arch_vm_ioctl: -ENOTTY.
        using var host = Anonymous(k, Page);
        Assert.Equal(Raw.ENOTTY, Raw.Region2(k, vm, 0, 0, 0, Page, (ulong)host.Address));
        Assert.Equal(Raw.ENOTTY, Raw.CreateGmemRc(k, vm, Page, 0));
        Assert.Equal(Raw.ENOTTY, Raw.VmAttributes(k, vm, 0, Page, 0));
        // The legacy ioctl works as it always did.
        Assert.Equal(0, Raw.Region1(k, vm, 0, 0, 0, Page, (ulong)host.Address));
    }

    [Theory]
    [InlineData(KernelGeneration.Linux68)]
    [InlineData(KernelGeneration.Linux611)]
    [InlineData(KernelGeneration.Linux616)]
    public void Before_618_guest_memfd_takes_no_flags_and_only_private_memory_VMs_may_bind_it(KernelGeneration g)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(g));
        using var sys = Raw.OpenKvm(k);
        // KVM_CAP_GUEST_MEMFD: !kvm || kvm_arch_has_private_mem(kvm); no KVM_CAP_GUEST_MEMFD_FLAGS yet.
        Assert.Equal(1, Raw.Cap(k, sys, KvmCaps.KVM_CAP_GUEST_MEMFD));
        Assert.Equal(0, Raw.Cap(k, sys, KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS));
        Assert.Equal(1, Raw.Cap(k, sys, KvmCaps.KVM_CAP_USER_MEMORY2));

        using var plain = Raw.CreateVm(k, sys, KvmConstants.KVM_X86_DEFAULT_VM);
        using var swp = Raw.CreateVm(k, sys, KvmConstants.KVM_X86_SW_PROTECTED_VM);
        Assert.Equal(0, Raw.Cap(k, plain, KvmCaps.KVM_CAP_GUEST_MEMFD));
        Assert.Equal(1, Raw.Cap(k, swp, KvmCaps.KVM_CAP_GUEST_MEMFD));

        // kvm_gmem_create: valid_flags = 0, so MMAP and INIT_SHARED are invalid; flags 0 works on every VM.
        Assert.Equal(Raw.EINVAL, Raw.CreateGmemRc(k, plain, Page, Mmap));
        Assert.Equal(Raw.EINVAL, Raw.CreateGmemRc(k, swp, Page, Mmap | InitShared));
        Assert.Equal(Raw.EINVAL, Raw.CreateGmemRc(k, swp, Page, InitShared));
        using var plainGmem = Raw.CreateGmem(k, plain, 2 * Page, 0);
        using var swpGmem = Raw.CreateGmem(k, swp, 2 * Page, 0);

        // check_memory_region_flags: KVM_MEM_GUEST_MEMFD only where kvm_arch_has_private_mem(kvm).
        using var hostMemory = Anonymous(k, 2 * Page);
        ulong host = (ulong)hostMemory.Address;
        Assert.Equal(Raw.EINVAL, Raw.Region2(k, plain, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, 0, 2 * Page, host, 0, plainGmem.Number));
        Assert.Equal(0, Raw.Region2(k, swp, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, 0, 2 * Page, host, 0, swpGmem.Number));
        // A plain slot still works on the default VM.
        Assert.Equal(0, Raw.Region2(k, plain, 0, 0, 0, 2 * Page, host));
        // guest_memfd has no .mmap: ENODEV, as for a 6.18 file created without MMAP.
        Assert.Equal(Raw.ENODEV, k.Mmap(0, Page, PROT_READ, MAP_SHARED, swpGmem, 0, out _));
    }

    [Fact]
    public void Linux618_lets_every_VM_bind_guest_memfd_and_reports_flags()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(KernelGeneration.Linux618));
        using var sys = Raw.OpenKvm(k);
        using var plain = Raw.CreateVm(k, sys);
        Assert.Equal(1, Raw.Cap(k, plain, KvmCaps.KVM_CAP_GUEST_MEMFD));
        Assert.Equal(0x3, Raw.Cap(k, plain, KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS));
        using var gmem = Raw.CreateGmem(k, plain, Page, Mmap | InitShared);
        Assert.Equal(0, Raw.Region2(k, plain, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, 0, Page, 0, 0, gmem.Number));
    }

    [Theory]
    [InlineData(KernelGeneration.Linux68, 0)]
    [InlineData(KernelGeneration.Linux610, 0)]
    [InlineData(KernelGeneration.Linux611, 1)]
    [InlineData(KernelGeneration.Linux618, 1)]
    public void KVM_PRE_FAULT_MEMORY_arrives_with_611(KernelGeneration g, long cap)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(g));
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(cap, Raw.Cap(k, sys, KvmCaps.KVM_CAP_PRE_FAULT_MEMORY));
        using var vm = Raw.CreateVm(k, sys);
        using var host = Anonymous(k, Page);
        Assert.Equal(0, Raw.Region2(k, vm, 0, 0, 0, Page, (ulong)host.Address));
        long vcpuFd = k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL);
        Assert.True(vcpuFd >= 0);
        using var vcpu = k.Adopt((int)vcpuFd);
        var range = new kvm_pre_fault_memory { gpa = 0, size = Page };
        long rc = k.Ioctl(vcpu, KvmIoctls.KVM_PRE_FAULT_MEMORY, Raw.Bytes(ref range));
        // Before 6.11 the request is unknown to kvm_vcpu_ioctl and x86 kvm_arch_vcpu_ioctl answers -EINVAL.
        Assert.Equal(cap == 0 ? Raw.EINVAL : 0, rc);
    }

    [Fact]
    public void Arm64_gets_guest_memfd_only_with_618()
    {
        using var old = new EmulatedKernel(EmulatorConfig.Arm64(KernelGeneration.Linux616));
        using var oldSys = Raw.OpenKvm(old);
        Assert.Equal(0, Raw.Cap(old, oldSys, KvmCaps.KVM_CAP_GUEST_MEMFD));
        Assert.Equal(1, Raw.Cap(old, oldSys, KvmCaps.KVM_CAP_USER_MEMORY2));
        using var oldVm = Raw.CreateVm(old, oldSys);
        // arm64 kvm_arch_vm_ioctl: unknown → -EINVAL.
        Assert.Equal(Raw.EINVAL, Raw.CreateGmemRc(old, oldVm, Page, 0));

        using var now = new EmulatedKernel(EmulatorConfig.Arm64(KernelGeneration.Linux618));
        using var nowSys = Raw.OpenKvm(now);
        Assert.Equal(0x3, Raw.Cap(now, nowSys, KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS));
    }

    [Fact]
    public void A_configuration_the_generation_cannot_have_is_refused_with_the_reason()
    {
        var tdxOn611 = EmulatorConfig.X86_64(KernelGeneration.Linux618) with { Generation = KernelGeneration.Linux611 };
        var e = Assert.Throws<ArgumentException>(() => new EmulatedKernel(tdxOn611));
        Assert.Contains("VM types up to 4", e.Message);

        var gmemOn61 = EmulatorConfig.X86_64(KernelGeneration.Linux61) with { Kconfig = new Kconfig { KVM_GUEST_MEMFD = true } };
        Assert.Contains("6.8+", Assert.Throws<ArgumentException>(() => new EmulatedKernel(gmemOn61)).Message);

        var arm64Gmem = EmulatorConfig.Arm64(KernelGeneration.Linux616) with { Kconfig = new Kconfig { KVM_GUEST_MEMFD = true } };
        Assert.Contains("arm64", Assert.Throws<ArgumentException>(() => new EmulatedKernel(arm64Gmem)).Message);

        var hiOn68 = EmulatorConfig.X86_64(KernelGeneration.Linux68) with { GuestMemfdFlagsHiCap = 300 };
        Assert.Contains("6.18+", Assert.Throws<ArgumentException>(() => new EmulatedKernel(hiOn68)).Message);
    }

    [Theory]
    [InlineData("6.1", KernelGeneration.Linux61)]
    [InlineData("6.6.63", KernelGeneration.Linux61)]
    [InlineData("6.8", KernelGeneration.Linux68)]
    [InlineData("6.9.12", KernelGeneration.Linux68)]
    [InlineData("6.10", KernelGeneration.Linux610)]
    [InlineData("6.12.58", KernelGeneration.Linux611)]
    [InlineData("6.15", KernelGeneration.Linux611)]
    [InlineData("6.17.1", KernelGeneration.Linux616)]
    [InlineData("6.18.44", KernelGeneration.Linux618)]
    [InlineData("6.19", KernelGeneration.Linux619)]
    [InlineData("7.0", KernelGeneration.Linux619)]
    public void A_release_maps_to_its_generation(string release, KernelGeneration expected)
    {
        Assert.True(KernelGenerations.TryParseRelease(release, out var g));
        Assert.Equal(expected, g);
    }

    [Theory]
    [InlineData("5.15")]
    [InlineData("6")]
    [InlineData("six.eight")]
    [InlineData("6.8-rc1")]
    [InlineData("")]
    public void A_release_before_61_or_not_a_release_is_refused(string release) =>
        Assert.False(KernelGenerations.TryParseRelease(release, out _));
}
