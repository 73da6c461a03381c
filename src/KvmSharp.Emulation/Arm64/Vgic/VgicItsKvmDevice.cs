// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.KvmMain.Devices;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Abi.Arm64.KvmArm64Vgic;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// The ITS device (arch/arm64/kvm/vgic/vgic-its.c kvm_arm_vgic_its_ops, 6.18). kvm_register_vgic_device registers it
/// with the GICv3 ops when the host's GICv3 is probed, so KVM_CREATE_DEVICE does not need the VM's GICv3 first — but
/// without one (irqchip_in_kernel) KVM_SIGNAL_MSI answers EINVAL and the redistributors that enable LPIs do not exist.
/// </summary>
internal sealed class VgicItsKvmDevice : KvmDeviceOps
{
    public static readonly VgicItsKvmDevice Its = new();

    public override string Name => "kvm-arm-vgic-its";

    /// <summary>
    /// vgic_its_create: msis_require_devid and has_its become true, both BASERs take INITIAL_BASER_VALUE with their
    /// type, GICR_PROPBASER (VM-wide) INITIAL_PROPBASER_VALUE, and the newest table ABI is committed.
    /// </summary>
    public override long Create(KvmDevice dev, uint type)
    {
        var dist = Arm64VmState.Of(dev.Kvm).Vgic;
        var its = new VgicIts(dev)
        {
            BaserDevice = VgicItsMmio.InitialBaser | (VgicItsMmio.BaserTypeDevice << 56),
            BaserColl = VgicItsMmio.InitialBaser | (VgicItsMmio.BaserTypeCollection << 56),
        };
        lock (dist)
        {
            dist.MsisRequireDevid = true;
            dist.Its.Add(its);
            dist.Propbaser = VgicItsMmio.InitialPropbaser;
            VgicItsMmio.CommitAbi(its);
        }
        dev.Private = its;
        return 0;
    }

    /// <summary>vgic_its_has_attr.</summary>
    public override long HasAttr(KvmDevice dev, in kvm_device_attr attr) => attr.group switch
    {
        KVM_DEV_ARM_VGIC_GRP_ADDR => attr.attr == KVM_VGIC_ITS_ADDR_TYPE ? 0 : Err.ENXIO,
        KVM_DEV_ARM_VGIC_GRP_CTRL => attr.attr is KVM_DEV_ARM_VGIC_CTRL_INIT or KVM_DEV_ARM_ITS_CTRL_RESET or
            KVM_DEV_ARM_ITS_SAVE_TABLES or KVM_DEV_ARM_ITS_RESTORE_TABLES ? 0 : Err.ENXIO,
        KVM_DEV_ARM_VGIC_GRP_ITS_REGS => VgicItsMmio.HasRegister(attr.attr),
        _ => Err.ENXIO,
    };

    /// <summary>vgic_its_set_attr.</summary>
    public override long SetAttr(KvmDevice dev, in kvm_device_attr attr)
    {
        var its = (VgicIts)dev.Private!;
        var kvm = dev.Kvm;
        var config = kvm.Kernel.Config;
        switch (attr.group)
        {
            case KVM_DEV_ARM_VGIC_GRP_ADDR:
            {
                if (attr.attr != KVM_VGIC_ITS_ADDR_TYPE) return Err.ENODEV;
                if (!UserMemory.CopyFromUser(config, attr.addr, out ulong addr)) return Err.EFAULT;
                // vgic_check_iorange(kvm, its->vgic_its_base, addr, SZ_64K, KVM_VGIC_V3_ITS_SIZE): EEXIST once set,
                // EINVAL misaligned, E2BIG beyond the IPA space; then vgic_register_its_iodev (under slots_lock).
                lock (kvm.Kernel.SyncRoot)
                {
                    lock (Arm64VmState.Of(kvm).Vgic)
                    {
                        long r = VgicKvmDevice.CheckIoRange(kvm, its.Base, addr, 0x10000, KVM_VGIC_V3_ITS_SIZE);
                        if (r != 0) return r;
                    }
                    // vgic_register_its_iodev: a full MMIO bus (ENOSPC) leaves the base unset.
                    long registered = kvm.IoBus.TryRegister(KvmBus.Mmio, addr, (int)KVM_VGIC_V3_ITS_SIZE, new VgicItsIoDevice(its));
                    if (registered != 0) return registered;
                    lock (Arm64VmState.Of(kvm).Vgic) its.Base = addr;
                }
                return 0;
            }
            case KVM_DEV_ARM_VGIC_GRP_CTRL:
                return Ctrl(kvm, its, attr.attr);
            case KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
            {
                // get_user(reg, uaddr) before vgic_its_attr_regs_access.
                if (!UserMemory.CopyFromUser(config, attr.addr, out ulong reg)) return Err.EFAULT;
                return RegsAccess(kvm, its, attr.attr, ref reg, write: true);
            }
            default:
                return Err.ENXIO;
        }
    }

    /// <summary>vgic_its_get_attr.</summary>
    public override long GetAttr(KvmDevice dev, in kvm_device_attr attr)
    {
        var its = (VgicIts)dev.Private!;
        var config = dev.Kvm.Kernel.Config;
        switch (attr.group)
        {
            case KVM_DEV_ARM_VGIC_GRP_ADDR:
                if (attr.attr != KVM_VGIC_ITS_ADDR_TYPE) return Err.ENODEV;
                return UserMemory.CopyToUser(config, attr.addr, its.Base) ? 0 : Err.EFAULT;
            case KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
            {
                ulong reg = 0;
                long r = RegsAccess(dev.Kvm, its, attr.attr, ref reg, write: false);
                if (r != 0) return r;
                return UserMemory.CopyToUser(config, attr.addr, reg) ? 0 : Err.EFAULT;
            }
            default:
                return Err.ENXIO;
        }
    }

    /// <summary>
    /// vgic_its_ctrl: INIT does nothing; the others take every vCPU's mutex (lock_all_vcpus: EBUSY while one runs) and
    /// then reset the ITS, save or restore its tables; any other attribute does nothing and succeeds (the switch has
    /// no default), though KVM_HAS_DEVICE_ATTR denies it.
    /// </summary>
    private static long Ctrl(Kvm kvm, VgicIts its, ulong attribute)
    {
        if (attribute == KVM_DEV_ARM_VGIC_CTRL_INIT) return 0;
        return WithAllVcpus(kvm, () => attribute switch
        {
            KVM_DEV_ARM_ITS_CTRL_RESET => Run(its.Reset),
            KVM_DEV_ARM_ITS_SAVE_TABLES => VgicItsTables.Save(its),
            KVM_DEV_ARM_ITS_RESTORE_TABLES => VgicItsTables.Restore(its),
            _ => 0,
        });
    }

    private static long Run(Action a)
    {
        a();
        return 0;
    }

    /// <summary>
    /// vgic_its_attr_regs_access: the alignment (32-bit for GITS_CTLR, GITS_IIDR and the ID registers, 64-bit
    /// otherwise: "the userspace ABI requires 64-bit accesses to all 64-bit wide registers") → EINVAL; then, with every
    /// vCPU locked (kvm_trylock_all_vcpus → EBUSY) and config_lock held, no address yet → ENXIO, no register → ENXIO;
    /// then the access at the register's width.
    /// </summary>
    private static long RegsAccess(Kvm kvm, VgicIts its, ulong offset, ref ulong reg, bool write)
    {
        ulong align = offset < VgicItsMmio.Typer || offset >= VgicItsMmio.Pidr4 ? 3UL : 7UL;
        if ((offset & align) != 0) return Err.EINVAL;
        ulong value = reg, result = 0;
        long r = WithAllVcpus(kvm, () =>
        {
            if (its.Base == VgicDist.AddrUndef) return Err.ENXIO;
            if (VgicItsMmio.HasRegister(offset) != 0) return Err.ENXIO;
            uint off = (uint)offset;
            int len = VgicItsMmio.UaccessLen(off);
            if (write) return VgicItsMmio.UaccessWrite(its, off, len, value);
            result = VgicItsMmio.Read(its, off, len);
            return 0;
        });
        if (!write) reg = result;
        return r;
    }

    /// <summary>lock_all_vcpus (EBUSY when a vCPU's mutex is held: a KVM_RUN in progress), then the dist lock.</summary>
    private static long WithAllVcpus(Kvm kvm, Func<long> body)
    {
        lock (kvm.Kernel.SyncRoot)
        {
            var locked = new List<KvmSharp.Emulation.Vcpu.KvmVcpu>();
            try
            {
                foreach (var v in kvm.Vcpus)
                {
                    if (!v.Mutex.TryEnter()) return Err.EBUSY;
                    locked.Add(v);
                }
                lock (Arm64VmState.Of(kvm).Vgic) return body();
            }
            finally
            {
                foreach (var v in locked) v.Mutex.Exit();
            }
        }
    }
}
