// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Abi.Arm64.KvmArm64Vgic;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The arm64 GICv3 device as a VMM sets it up (arch/arm64/kvm/vgic/vgic-kvm-device.c, vgic-init.c, vgic-mmio-v3.c,
/// Linux 6.18; Documentation/virt/kvm/devices/arm-vgic-v3.rst). Emulator only: this host is x86_64.
/// </summary>
public static class Arm64VgicRules
{
    private const string Device = "arch/arm64/kvm/vgic/vgic-kvm-device.c";
    private const ulong Dist = 0x0800_0000, Redist = 0x080A_0000;

    private static void RequireArm64(CaseContext ctx)
    {
        if (ctx.Target.IsReal) Skip("arm64 case: this host is x86_64, an arm64 VM cannot be created here");
    }

    [ConformanceCase("arch/arm64/kvm/arm.c: KVM_CAP_IRQCHIP = vgic_present; kvm_register_vgic_device registers KVM_DEV_TYPE_ARM_VGIC_V3 (GICv2 only where the host GIC can emulate one: not here); vgic-init.c kvm_vgic_create: a second vGIC is EEXIST", Profile = EmulatedProfile.Arm64)]
    public static void vgic_v3_is_the_one_irqchip(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_IRQCHIP));
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_DEVICE_CTRL));
        Assert.True(vm.SupportsDevice(KvmDeviceType.ArmVgicV3));
        Assert.True(vm.SupportsDevice(KvmDeviceType.Vfio));
        Assert.False(vm.SupportsDevice(KvmDeviceType.ArmVgicV2));
        using var gic = vm.CreateDevice(KvmDeviceType.ArmVgicV3);
        var cd = new kvm_create_device { type = KvmDeviceConstants.KVM_DEV_TYPE_ARM_VGIC_V3 };
        AssertErrno(Errno.EEXIST, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_DEVICE, Raw(ref cd)), "a second GICv3");
        Assert.True(gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT));
        Assert.True(gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0));
        Assert.True(gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION));
        Assert.False(gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST));
        Assert.False(gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES));
    }

    [ConformanceCase(Device + " kvm_vgic_addr / vgic_check_iorange: the distributor is set once (EEXIST), 64 KiB aligned (EINVAL), inside the IPA space (E2BIG), reads back (VGIC_ADDR_UNDEF before); GICv2 and ITS address types are ENXIO", Profile = EmulatedProfile.Arm64)]
    public static void vgic_distributor_address(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var gic = vm.CreateDevice(KvmDeviceType.ArmVgicV3);
        Assert.Equal(ulong.MaxValue, gic.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST));
        AssertErrno(Errno.EINVAL, () => gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, Dist + 0x1000));
        AssertErrno(Errno.E2BIG, () => gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 1UL << 40));
        AssertErrno(Errno.E2BIG, () => gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, (1UL << 40) - 0x10000 + 0x10000));
        AssertErrno(Errno.ENXIO, () => gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, Dist));
        AssertErrno(Errno.ENXIO, () => gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, Dist));
        gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, (1UL << 40) - 0x10000);
        Assert.Equal((1UL << 40) - 0x10000, gic.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST));
        AssertErrno(Errno.EEXIST, () => gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, Dist));
        var attr = new kvm_device_attr { group = KVM_DEV_ARM_VGIC_GRP_ADDR, attr = KVM_VGIC_V3_ADDR_TYPE_DIST, addr = 0 };
        AssertErrno(Errno.EFAULT, vm.Kernel.Ioctl(gic.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "SET with addr 0");
    }

    [ConformanceCase("arch/arm64/kvm/vgic/vgic-mmio-v3.c vgic_v3_alloc_redist_region: regions come in index order from 0 (EINVAL), need a count and no flags (EINVAL), must not overlap (EINVAL) and read back by index (ENOENT for none); a legacy single region cannot follow them (EINVAL) and the legacy address reads the first region's base", Profile = EmulatedProfile.Arm64)]
    public static void vgic_redistributor_regions(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var gic = vm.CreateDevice(KvmDeviceType.ArmVgicV3);
        void Region(ulong value) => gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, value);
        Assert.Equal(ulong.MaxValue, gic.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST));
        AssertErrno(Errno.EINVAL, () => Region(Arm64Vgic.RedistributorRegion(1, Redist, 2)));
        AssertErrno(Errno.EINVAL, () => Region(Arm64Vgic.RedistributorRegion(0, Redist, 0)));
        AssertErrno(Errno.EINVAL, () => Region(Arm64Vgic.RedistributorRegion(0, Redist, 2) | (1UL << KVM_VGIC_V3_RDIST_FLAGS_SHIFT)));
        Region(Arm64Vgic.RedistributorRegion(0, Redist, 2));
        AssertErrno(Errno.EINVAL, () => Region(Arm64Vgic.RedistributorRegion(2, 0x0900_0000, 1)));
        AssertErrno(Errno.EINVAL, () => Region(Arm64Vgic.RedistributorRegion(1, Redist + 0x30000, 1)));
        Region(Arm64Vgic.RedistributorRegion(1, 0x0900_0000, 1));
        Assert.Equal(Arm64Vgic.RedistributorRegion(1, 0x0900_0000, 1),
            ReadRegion(vm, gic, 1));
        Assert.Equal(Redist, gic.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST));
        AssertErrno(Errno.ENOENT, vm.Kernel.Ioctl(gic.Handle, KvmIoctls.KVM_GET_DEVICE_ATTR, RegionAttr(vm, 7, out _)), "region 7");
        AssertErrno(Errno.EINVAL, () => gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, 0x0a00_0000));
    }

    private static ulong ReadRegion(Vm vm, KvmDevice gic, uint index)
    {
        long rc = vm.Kernel.Ioctl(gic.Handle, KvmIoctls.KVM_GET_DEVICE_ATTR, RegionAttr(vm, index, out var value));
        Assert.True(rc == 0, $"read of region {index}: {rc}");
        return value.Span[0];
    }

    /// <summary>A GET of REDIST_REGION passes the index in the value it reads back.</summary>
    private static byte[] RegionAttr(Vm vm, uint index, out Memory.PinnedArray<ulong> value)
    {
        value = new Memory.PinnedArray<ulong>(1);
        value.Span[0] = index;
        var attr = new kvm_device_attr { group = KVM_DEV_ARM_VGIC_GRP_ADDR, attr = KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, addr = value.Address };
        return Raw(ref attr).ToArray();
    }

    [ConformanceCase(Device + " KVM_DEV_ARM_VGIC_GRP_NR_IRQS: 32 before it is set, a multiple of 32 from 64 up to 1023 (EINVAL), set once (EBUSY); vgic_init freezes 256 when unset", Profile = EmulatedProfile.Arm64)]
    public static void vgic_interrupt_count(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using (var vm = kvm.CreateVm())
        using (var gic = vm.CreateDevice(KvmDeviceType.ArmVgicV3))
        {
            Assert.Equal(32u, gic.GetVgicInterrupts());
            foreach (uint bad in new uint[] { 0, 32, 63, 65, 1024, 1056 })
                AssertErrno(Errno.EINVAL, () => gic.SetAttribute32(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, bad));
            gic.SetAttribute32(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 992);
            Assert.Equal(992u, gic.GetVgicInterrupts());
            AssertErrno(Errno.EBUSY, () => gic.SetAttribute32(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 128));
        }
        using (var vm = kvm.CreateVm())
        using (var gic = vm.CreateDevice(KvmDeviceType.ArmVgicV3))
        {
            gic.InitializeVgic();
            Assert.Equal(256u, gic.GetVgicInterrupts());
        }
    }

    [ConformanceCase("arch/arm64/kvm/arm.c kvm_arch_vcpu_run_pid_change → vgic-init.c kvm_vgic_map_resources → vgic_v3_map_resources: a first KVM_RUN needs every vCPU's redistributor (ENXIO), the distributor (ENXIO) and the initialization (EBUSY); kvm_arch_vcpu_precreate refuses vCPUs after it (EBUSY); kvm_vgic_create refuses once a vCPU ran (EBUSY)", Profile = EmulatedProfile.Arm64)]
    public static void vgic_must_be_ready_before_the_first_run(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using (var guest = Arm64Guest.Create(kvm, Arm64Guest.SystemOff))
        {
            using var gic = guest.Vm.CreateDevice(KvmDeviceType.ArmVgicV3);
            AssertErrno(Errno.ENXIO, () => guest.Vcpu.Run());
            gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, Arm64Vgic.RedistributorRegion(0, Redist, 1));
            AssertErrno(Errno.ENXIO, () => guest.Vcpu.Run());
            gic.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, Dist);
            AssertErrno(Errno.EBUSY, () => guest.Vcpu.Run());
            AssertErrno(Errno.EBUSY, () => gic.GetAttribute32(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0));
            gic.InitializeVgic();
            AssertErrno(Errno.EBUSY, () => guest.Vm.CreateVcpu(1));
            var exit = guest.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"expected KVM_EXIT_SYSTEM_EVENT, got {exit.ToString()}");
        }
        using (var guest = Arm64Guest.Create(kvm, Arm64Guest.SystemOff))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, guest.Vcpu.Run().Reason);
            var ex = AssertErrno(Errno.EBUSY, () => guest.Vm.CreateDevice(KvmDeviceType.ArmVgicV3));
            Assert.Equal("KVM_CREATE_DEVICE", ex.Operation);
        }
    }

    [ConformanceCase(Device + " vgic_v3_parse_attr / vgic_v3_attr_regs_access: a register access names its vCPU (EINVAL for none), reads a written value first (EFAULT) and needs an initialized vGIC (EBUSY); Arm64Vgic.CreateVgicV3 does a VMM's whole set-up, and a failed one leaves the vGIC in the VM (no ops->release: EEXIST); virt/kvm/eventfd.c kvm_irqfd_assign waits for the initialization (kvm_arch_intc_initialized: EAGAIN)", Profile = EmulatedProfile.Arm64)]
    public static void vgic_setup_as_a_vmm_does_it(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using (var failed = Arm64Guest.Create(kvm, Arm64Guest.SystemOff))
        {
            AssertErrno(Errno.EINVAL, () => failed.Vm.CreateVgicV3(Dist + 0x1000, Redist, 1));
            // The device has no release callback: closing its fd leaves the vGIC in the VM until the VM goes.
            AssertErrno(Errno.EEXIST, () => failed.Vm.CreateVgicV3(Dist, Redist, 1));
        }
        using var guest = Arm64Guest.Create(kvm, Arm64Guest.SystemOff);
        using var gic = guest.Vm.CreateVgicV3(Dist, Redist, 1, interrupts: 128);
        AssertErrno(Errno.EINVAL, () => gic.GetAttribute32(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 5UL << 32));
        AssertErrno(Errno.EBUSY, () => gic.GetAttribute32(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 0));
        var attr = new kvm_device_attr { group = KVM_DEV_ARM_VGIC_GRP_DIST_REGS, attr = 0, addr = 0 };
        AssertErrno(Errno.EFAULT, guest.Vm.Kernel.Ioctl(gic.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "DIST_REGS write from addr 0");
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        Assert.Equal(Errno.EAGAIN, Assert.Throws<IrqchipRequiredException>(() => guest.Vm.AssignIrqFd(e, 40)).Errno);
        gic.InitializeVgic();
        Assert.Equal(128u, gic.GetVgicInterrupts());
        // eventfd.c kvm_irqfd_assign: kvm_arch_intc_initialized now holds; the same eventfd twice → EBUSY.
        using (guest.Vm.AssignIrqFd(e, 40))
            AssertErrno(Errno.EBUSY, () => guest.Vm.AssignIrqFd(e, 41));
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, guest.Vcpu.Run().Reason);
    }
}
