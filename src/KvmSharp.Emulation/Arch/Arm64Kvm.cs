// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Emulation.Arm64.Vgic;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.KvmMain.Devices;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>arch/arm64/kvm/arm.c and mmu.c [D: not observable on this x86 host].</summary>
internal sealed class Arm64Kvm : KvmArch
{
    // arch/arm64/kvm/mmu.c: the largest IPA size a VM may ask for (kvm_ipa_limit); 48 on common hosts [D].
    internal const int IpaLimit = 48;

    public Arm64Kvm(EmulatorConfig config) : base(config) { }

    // No internal memslots on arm64: KVM_USER_MEM_SLOTS = KVM_MEM_SLOTS_NUM = SHRT_MAX.
    public override int UserMemSlots => short.MaxValue;

    // kvm_dev_ioctl KVM_GET_VCPU_MMAP_SIZE: kvm_run page + coalesced MMIO page (no PIO page on arm64).
    public override long VcpuMmapSize => 2L * EmulatorConfig.PageSize;

    public override int MaxVcpuIds => Config.MaxVcpus;

    public override int MaxNrAddressSpaces => 1;

    public override long InitVm(ulong type, out VmArchState state)
    {
        state = default;
        // kvm_init_ipa_range: bits other than KVM_VM_TYPE_ARM_IPA_SIZE_MASK (0xff) → EINVAL; an explicit IPA size
        // must lie in [ARM64_MIN_PARANGE_BITS (32), kvm_ipa_limit]; 0 means the default KVM_PHYS_SHIFT (40).
        if ((type & ~0xffUL) != 0) return Err.EINVAL;
        int ipa = (int)(type & 0xff);
        if (ipa == 0) ipa = Config.MaxGpaBits;
        else if (ipa < 32 || ipa > IpaLimit) return Err.EINVAL;
        state = new VmArchState(HasPrivateMem: false, HasProtectedState: false, PhysBits: ipa);
        return 0;
    }

    public override int NrMemslotAsIds(Kvm kvm) => 1;

    public override bool HasPrivateMem(Kvm kvm) => false;

    public override bool HasReadonlyMem(Kvm kvm) => true;

    public override long? CheckExtension(Kvm? kvm, long cap) => cap switch
    {
        // arm64 does not implement KVM_CAP_VM_TYPES (selftest falls back to BIT(VM_TYPE_DEFAULT)).
        KvmCaps.KVM_CAP_VM_TYPES => 0,
        KvmCaps.KVM_CAP_READONLY_MEM => 1,
        // arm.c kvm_vm_ioctl_check_extension: "case KVM_CAP_IRQCHIP: r = vgic_present;" — the emulated host has a
        // GICv3 KVM can virtualize [D].
        KvmCaps.KVM_CAP_IRQCHIP => 1,
        // kvm_main.c kvm_vm_ioctl_check_extension_generic (arm64 selects HAVE_KVM_IRQ_ROUTING and HAVE_KVM_MSI):
        // "case KVM_CAP_IRQ_ROUTING: return KVM_MAX_IRQ_ROUTES;", KVM_CAP_SIGNAL_MSI 1 (Arm64/Vgic/VgicIrqfd.cs).
        KvmCaps.KVM_CAP_IRQ_ROUTING => Emulation.X86.Irqchip.IrqRouting.MaxIrqRoutes,
        KvmCaps.KVM_CAP_SIGNAL_MSI => 1,
        // arm.c: "case KVM_CAP_MSI_DEVID: if (!kvm) r = -EINVAL; else r = kvm->arch.vgic.msis_require_devid;" — set by
        // vgic_its_create (Arm64/Vgic/VgicItsKvmDevice.cs).
        KvmCaps.KVM_CAP_MSI_DEVID => kvm is null ? Err.EINVAL : Arm64VmState.Of(kvm).Vgic.MsisRequireDevid ? 1 : 0,
        KvmCaps.KVM_CAP_NR_VCPUS => Math.Min(Config.OnlineCpus, Config.MaxVcpus),
        KvmCaps.KVM_CAP_MAX_VCPUS => Config.MaxVcpus,
        // arm.c: "case KVM_CAP_ARM_PMU_V3: r = kvm_supports_guest_pmuv3();" — the emulated host has a PMUv3 [D]
        // (Arm64/Arm64PmuRegs.cs).
        KvmArm64PmuRegs.KVM_CAP_ARM_PMU_V3 => 1,
        // arm.c: "case KVM_CAP_ARM_PTRAUTH_ADDRESS: case KVM_CAP_ARM_PTRAUTH_GENERIC: r = kvm_has_full_ptr_auth();" —
        // a property of the emulated host CPU (Arm64/Arm64CpuModel.cs; the default N1 has none).
        KvmArm64PtrAuth.KVM_CAP_ARM_PTRAUTH_ADDRESS or KvmArm64PtrAuth.KVM_CAP_ARM_PTRAUTH_GENERIC => Config.Arm64Cpu.HasFullPtrAuth ? 1 : 0,
        // arm.c: "case KVM_CAP_ARM_SVE: r = system_supports_sve();" (Arm64/Arm64CpuModel.cs; the default N1 has none).
        KvmArm64Sve.KVM_CAP_ARM_SVE => Config.Arm64Cpu.HasSve ? 1 : 0,
        // arm.c: "case KVM_CAP_STEAL_TIME: r = kvm_arm_pvtime_supported();" (Arm64/Arm64PvTime.cs).
        KvmArm64PvTime.KVM_CAP_STEAL_TIME => Arm64PvTime.Supported ? 1 : 0,
        // arm.c: "case KVM_CAP_ARM_SYSTEM_SUSPEND: … case KVM_CAP_COUNTER_OFFSET: case KVM_CAP_ARM_WRITABLE_IMP_ID_REGS:
        // r = 1;" (6.18; COUNTER_OFFSET only depends on the VM being a realm in the CCA series, not modelled).
        KvmArm64Constants.KVM_CAP_ARM_SYSTEM_SUSPEND or KvmArm64CounterOffset.KVM_CAP_COUNTER_OFFSET
            or KvmArm64IdRegs.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS => 1,
        // arm.c kvm_vm_ioctl_check_extension: "case KVM_CAP_ARM_NISV_TO_USER: … r = 1;" (on /dev/kvm too).
        KvmArm64Constants.KVM_CAP_ARM_NISV_TO_USER => 1,
        _ => null,
    };

    /// <summary>
    /// arm.c kvm_vm_ioctl_enable_cap: "if (cap->flags) return -EINVAL"; KVM_CAP_ARM_SYSTEM_SUSPEND sets
    /// KVM_ARCH_FLAG_SYSTEM_SUSPEND_ENABLED (no argument or vCPU check); KVM_CAP_ARM_WRITABLE_IMP_ID_REGS sets
    /// KVM_ARCH_FLAG_WRITABLE_IMP_ID_REGS under kvm->lock only "if (!kvm->created_vcpus)", else r stays -EINVAL;
    /// KVM_CAP_ARM_NISV_TO_USER: "r = 0; set_bit(KVM_ARCH_FLAG_RETURN_NISV_IO_ABORT_TO_USER, …)" (args are not
    /// checked, any time, idempotent). The other arm64 caps (MTE, EAGER_SPLIT_CHUNK_SIZE …) are not modelled: -EINVAL
    /// like an unknown cap.
    /// </summary>
    public override long EnableCap(Kvm kvm, in kvm_enable_cap cap)
    {
        if (cap.flags != 0) return Err.EINVAL;
        var vm = Arm64VmState.Of(kvm);
        switch (cap.cap)
        {
            case (uint)KvmArm64Constants.KVM_CAP_ARM_SYSTEM_SUSPEND:
                vm.SystemSuspendEnabled = true;
                return 0;
            case (uint)KvmArm64Constants.KVM_CAP_ARM_NISV_TO_USER:
                vm.ReturnNisvIoAbortToUser = true;
                return 0;
            case (uint)KvmArm64IdRegs.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS:
                lock (kvm.Kernel.SyncRoot)
                {
                    if (kvm.Vcpus.Count != 0) return Err.EINVAL;
                    lock (vm.IdRegs) vm.IdRegs.WritableImpIdRegs = true;
                }
                return 0;
            default:
                return Err.EINVAL;
        }
    }

    public override long VmIoctl(Kvm kvm, uint request, IoctlArg arg)
    {
        if (request == KvmArm64Ioctls.KVM_ARM_PREFERRED_TARGET)
        {
            // kvm_arch_vm_ioctl: { .target = KVM_ARM_TARGET_GENERIC_V8 }, features zeroed; copy_to_user → -EFAULT.
            var init = new kvm_vcpu_init { target = KvmArm64Constants.KVM_ARM_TARGET_GENERIC_V8 };
            return arg.CopyToUser(init) ? 0 : Err.EFAULT;
        }
        // arm.c kvm_arch_vm_ioctl KVM_ARM_GET_REG_WRITABLE_MASKS (Arm64/Arm64IdRegMasks.cs).
        if (request == KvmArm64Ioctls.KVM_ARM_GET_REG_WRITABLE_MASKS) return Arm64IdRegMasks.Ioctl(Config, arg);
        // arm.c kvm_arch_vm_ioctl KVM_ARM_SET_COUNTER_OFFSET → kvm_vm_ioctl_set_counter_offset (Arm64/Arm64CounterOffset.cs).
        if (request == KvmArm64Ioctls.KVM_ARM_SET_COUNTER_OFFSET) return Arm64CounterOffset.Ioctl(kvm, arg);
        // arm.c kvm_arch_vm_ioctl KVM_CREATE_IRQCHIP: vgic_present (KVM_CAP_IRQCHIP = 1 here), then
        // kvm_vgic_create(kvm, KVM_DEV_TYPE_ARM_VGIC_V2), whose first check is "type == V2 &&
        // !can_emulate_gicv2 → -ENODEV": the emulated host's GICv3 cannot emulate a GICv2 [D].
        if (request == KvmIoctls.KVM_CREATE_IRQCHIP) return Err.ENODEV;
        // arm.c kvm_arch_vm_ioctl KVM_HAS/SET_DEVICE_ATTR: copy_from_user (EFAULT), then kvm_vm_has_attr /
        // kvm_vm_set_attr: group KVM_ARM_VM_SMCCC_CTRL (Arm64/Arm64SmcccFilter.cs), any other → ENXIO. No
        // KVM_GET_DEVICE_ATTR on the arm64 VM fd (default: EINVAL).
        if (request == KvmIoctls.KVM_HAS_DEVICE_ATTR || request == KvmIoctls.KVM_SET_DEVICE_ATTR)
        {
            if (!arg.CopyFromUser(out kvm_device_attr attr)) return Err.EFAULT;
            if (attr.group != KvmArm64Smccc.KVM_ARM_VM_SMCCC_CTRL) return Err.ENXIO;
            return request == KvmIoctls.KVM_HAS_DEVICE_ATTR ? Arm64SmcccFilter.HasAttr(attr) : Arm64SmcccFilter.SetAttr(kvm, attr);
        }
        // kvm_main.c KVM_IRQ_LINE(_STATUS) → arm.c kvm_vm_ioctl_irq_line (Arm64/Vgic/VgicDelivery.cs).
        if (request == KvmIoctls.KVM_IRQ_LINE || request == KvmIoctls.KVM_IRQ_LINE_STATUS)
            return VgicDelivery.IrqLine(kvm, arg, status: request == KvmIoctls.KVM_IRQ_LINE_STATUS);
        // kvm_main.c KVM_SET_GSI_ROUTING and KVM_SIGNAL_MSI (generic on arm64; Arm64/Vgic/VgicIrqfd.cs).
        if (request == KvmIoctls.KVM_SET_GSI_ROUTING) return VgicIrqfd.SetGsiRoutingIoctl(kvm, arg);
        if (request == KvmIoctls.KVM_SIGNAL_MSI) return VgicIrqfd.SignalMsiIoctl(kvm, arg);
        // kvm_arch_vm_ioctl: default → EINVAL.
        return Err.EINVAL;
    }

    /// <summary>
    /// kvm_register_vgic_device(KVM_DEV_TYPE_ARM_VGIC_V3) at vgic init: the GICv3 device and, with it,
    /// kvm_vgic_register_its_device (Arm64/Vgic/VgicItsKvmDevice.cs). The GICv2 (the emulated host cannot emulate one
    /// [D]) is not registered: ENODEV.
    /// </summary>
    public override KvmDeviceOps? DeviceOps(uint type) => type switch
    {
        KvmDeviceConstants.KVM_DEV_TYPE_ARM_VGIC_V3 => VgicKvmDevice.V3,
        KvmDeviceConstants.KVM_DEV_TYPE_ARM_VGIC_ITS => VgicItsKvmDevice.Its,
        _ => null,
    };

    /// <summary>kvm_arch_vcpu_precreate: "if (irqchip_in_kernel(kvm) &amp;&amp; vgic_initialized(kvm)) return -EBUSY;".</summary>
    public override long VcpuPrecreate(Kvm kvm, int id)
    {
        var vgic = Arm64VmState.Of(kvm).Vgic;
        return vgic.InKernel && vgic.Initialized ? Err.EBUSY : 0;
    }

    public override long PrepareMemoryRegion(Kvm kvm, KvmMemorySlot newSlot, MemslotChange change)
    {
        // kvm_arch_prepare_memory_region: a slot beyond the VM's IPA space → EFAULT.
        if (change is MemslotChange.Create or MemslotChange.Move &&
            newSlot.BaseGfn + newSlot.NPages > (1UL << (kvm.ArchState.PhysBits - EmulatorConfig.PageShift)))
            return Err.EFAULT;
        return 0;
    }
}
