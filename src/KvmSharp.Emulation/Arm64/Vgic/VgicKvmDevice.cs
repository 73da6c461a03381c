// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.KvmMain.Devices;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Abi.Arm64.KvmArm64Vgic;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// The GICv3 device (arch/arm64/kvm/vgic/vgic-kvm-device.c kvm_arm_vgic_v3_ops, 6.18), with the redistributor
/// regions of vgic-mmio-v3.c (vgic_v3_alloc_redist_region). Modelled: KVM_DEV_ARM_VGIC_GRP_ADDR, _NR_IRQS and _CTRL
/// (INIT, SAVE_PENDING_TABLES), and the register groups a VMM saves and restores: DIST_REGS and REDIST_REGS
/// (VgicMmio), CPU_SYSREGS (VgicSysRegs) and LEVEL_INFO. The maintenance-interrupt group (nested virtualization) is
/// not offered.
/// </summary>
internal sealed class VgicKvmDevice : KvmDeviceOps
{
    public static readonly VgicKvmDevice V3 = new();

    public override string Name => "kvm-arm-vgic-v3";

    public override long Create(KvmDevice dev, uint type) => VgicInit.Create(dev.Kvm, type);

    public override long SetAttr(KvmDevice dev, in kvm_device_attr attr) => attr.group switch
    {
        KVM_DEV_ARM_VGIC_GRP_DIST_REGS or KVM_DEV_ARM_VGIC_GRP_REDIST_REGS or KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS or
            KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO => RegsAccess(dev, attr, write: true),
        _ => SetCommon(dev, attr),
    };

    public override long GetAttr(KvmDevice dev, in kvm_device_attr attr) => attr.group switch
    {
        KVM_DEV_ARM_VGIC_GRP_DIST_REGS or KVM_DEV_ARM_VGIC_GRP_REDIST_REGS or KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS or
            KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO => RegsAccess(dev, attr, write: false),
        _ => GetCommon(dev, attr),
    };

    /// <summary>vgic_v3_has_attr.</summary>
    public override long HasAttr(KvmDevice dev, in kvm_device_attr attr)
    {
        switch (attr.group)
        {
            case KVM_DEV_ARM_VGIC_GRP_ADDR:
                return attr.attr is KVM_VGIC_V3_ADDR_TYPE_DIST or KVM_VGIC_V3_ADDR_TYPE_REDIST or KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION
                    ? 0 : Err.ENXIO;
            case KVM_DEV_ARM_VGIC_GRP_DIST_REGS or KVM_DEV_ARM_VGIC_GRP_REDIST_REGS or KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
            {
                // vgic_v3_has_attr_regs: vgic_v3_parse_attr (no such vCPU → EINVAL); CPU_SYSREGS:
                // vgic_v3_has_cpu_sysregs_attr (ENXIO outside the table); "We only support aligned 32-bit accesses"
                // and vgic_get_mmio_region (ENXIO) for the frames.
                if (!ParseVcpu(dev.Kvm, attr)) return Err.EINVAL;
                if (attr.group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS) return VgicSysRegs.Has((ushort)(attr.attr & 0xffff)) ? 0 : Err.ENXIO;
                var frame = attr.group == KVM_DEV_ARM_VGIC_GRP_DIST_REGS ? VgicFrame.Dist : VgicFrame.Redist;
                lock (Arm64VmState.Of(dev.Kvm).Vgic)
                    return VgicMmio.HasRegister(dev.Kvm, frame, (uint)(attr.attr & 0xffff_ffff)) ? 0 : Err.ENXIO;
            }
            case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
                return 0;
            case KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO:
                // KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK (bits 31:10) == VGIC_LEVEL_INFO_LINE_LEVEL (0).
                return ((attr.attr >> 10) & 0x3fffff) == 0 ? 0 : Err.ENXIO;
            case KVM_DEV_ARM_VGIC_GRP_CTRL:
                return attr.attr is KVM_DEV_ARM_VGIC_CTRL_INIT or KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES ? 0 : Err.ENXIO;
            default:
                return Err.ENXIO;
        }
    }

    /// <summary>vgic_set_common_attr.</summary>
    private static long SetCommon(KvmDevice dev, in kvm_device_attr attr)
    {
        var kvm = dev.Kvm;
        var dist = Arm64VmState.Of(kvm).Vgic;
        switch (attr.group)
        {
            case KVM_DEV_ARM_VGIC_GRP_ADDR:
            {
                long r = Addr(kvm, attr, write: true);
                return r == Err.ENODEV ? Err.ENXIO : r;
            }
            case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
            {
                if (!UserMemory.CopyFromUser(kvm.Kernel.Config, attr.addr, out uint val)) return Err.EFAULT;
                // "at least 32 SPIs on top of the 16 SGIs and 16 PPIs, at most 1024 interrupts, a multiple of 32".
                if (val < VGIC_NR_PRIVATE_IRQS + 32 || val > VGIC_MAX_RESERVED || (val & 31) != 0) return Err.EINVAL;
                if (dist.Ready || dist.NrSpis != 0) return Err.EBUSY;
                dist.NrSpis = (int)val - VGIC_NR_PRIVATE_IRQS;
                return 0;
            }
            case KVM_DEV_ARM_VGIC_GRP_CTRL:
                if (attr.attr == KVM_DEV_ARM_VGIC_CTRL_INIT) return VgicInit.Init(kvm);
                // vgic_v3_save_pending_tables: each LPI's pending state into its target's pending table (VgicLpi).
                if (attr.attr == KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)
                {
                    lock (dist) return VgicLpi.SavePendingTables(kvm);
                }
                return Err.ENXIO;
            default:
                return Err.ENXIO;
        }
    }

    /// <summary>vgic_get_common_attr.</summary>
    private static long GetCommon(KvmDevice dev, in kvm_device_attr attr)
    {
        var kvm = dev.Kvm;
        switch (attr.group)
        {
            case KVM_DEV_ARM_VGIC_GRP_ADDR:
            {
                long r = Addr(kvm, attr, write: false);
                return r == Err.ENODEV ? Err.ENXIO : r;
            }
            case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
                uint irqs = (uint)(Arm64VmState.Of(kvm).Vgic.NrSpis + VGIC_NR_PRIVATE_IRQS);
                return UserMemory.CopyToUser(kvm.Kernel.Config, attr.addr, irqs) ? 0 : Err.EFAULT;
            default:
                return Err.ENXIO;
        }
    }

    /// <summary>kvm_vgic_addr for a GICv3 (the GICv2 and ITS address types: vgic_check_type / default → ENODEV).</summary>
    private static long Addr(Kvm kvm, in kvm_device_attr attr, bool write)
    {
        var config = kvm.Kernel.Config;
        var dist = Arm64VmState.Of(kvm).Vgic;
        // "Reading a redistributor region addr implies getting the index".
        ulong addr = 0;
        if ((write || attr.attr == KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION) && !UserMemory.CopyFromUser(config, attr.addr, out addr))
            return Err.EFAULT;
        switch (attr.attr)
        {
            case KVM_VGIC_V3_ADDR_TYPE_DIST:
                if (!write) break;
                long r = CheckIoRange(kvm, dist.DistBase, addr, 0x10000, KVM_VGIC_V3_DIST_SIZE);
                if (r != 0) return r;
                dist.DistBase = addr;
                return 0;
            case KVM_VGIC_V3_ADDR_TYPE_REDIST:
                if (write) return AllocRedistRegion(kvm, dist, 0, addr, 0);
                addr = dist.RdRegions.Count == 0 ? VgicDist.AddrUndef : dist.RdRegions[0].Base;
                return PutAddr(config, attr.addr, addr);
            case KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION:
            {
                uint index = (uint)(addr & KVM_VGIC_V3_RDIST_INDEX_MASK);
                if (write)
                {
                    uint count = (uint)((addr & KVM_VGIC_V3_RDIST_COUNT_MASK) >> KVM_VGIC_V3_RDIST_COUNT_SHIFT);
                    uint flags = (uint)((addr & KVM_VGIC_V3_RDIST_FLAGS_MASK) >> KVM_VGIC_V3_RDIST_FLAGS_SHIFT);
                    if (count == 0 || flags != 0) return Err.EINVAL;
                    return AllocRedistRegion(kvm, dist, index, addr & KVM_VGIC_V3_RDIST_BASE_MASK, count);
                }
                var region = dist.RdRegions.FirstOrDefault(r => r.Index == index);
                if (region is null) return Err.ENOENT;
                return PutAddr(config, attr.addr, index | region.Base | ((ulong)region.Count << KVM_VGIC_V3_RDIST_COUNT_SHIFT));
            }
            default:
                return Err.ENODEV;
        }
        return PutAddr(config, attr.addr, dist.DistBase);
    }

    private static long PutAddr(EmulatorConfig config, ulong uaddr, ulong value) =>
        UserMemory.CopyToUser(config, uaddr, value) ? 0 : Err.EFAULT;

    /// <summary>vgic-mmio-v3.c vgic_v3_alloc_redist_region (via vgic_v3_set_redist_base).</summary>
    private static long AllocRedistRegion(Kvm kvm, VgicDist dist, uint index, ulong baseAddress, uint count)
    {
        ulong size = (count != 0 ? count : (ulong)kvm.Vcpus.Count) * KVM_VGIC_V3_REDIST_SIZE;
        // "cross the end of memory?"
        if (baseAddress + size < baseAddress) return Err.EINVAL;
        if (dist.RdRegions.Count == 0)
        {
            if (index != 0) return Err.EINVAL;
        }
        else
        {
            var last = dist.RdRegions[^1];
            // "Don't mix single region and discrete redist regions".
            if (count == 0 && last.Count != 0) return Err.EINVAL;
            if (count == 0) return Err.EEXIST;
            if (index != last.Index + 1) return Err.EINVAL;
        }
        // A legacy region must not overlap the distributor; no region may overlap another.
        if (count == 0 && dist.DistBase != VgicDist.AddrUndef && Overlap(baseAddress, size, dist.DistBase, KVM_VGIC_V3_DIST_SIZE))
            return Err.EINVAL;
        if (RdistOverlap(kvm, dist, baseAddress, size)) return Err.EINVAL;
        long r = CheckIoRange(kvm, VgicDist.AddrUndef, baseAddress, 0x10000, size);
        if (r != 0) return r;
        dist.RdRegions.Add(new RedistRegion(index, baseAddress, count));
        return 0;
    }

    /// <summary>
    /// vgic_check_iorange: EEXIST when already set, EINVAL misaligned or wrapping, E2BIG beyond the VM's IPA space
    /// (kvm_phys_mask / kvm_phys_size).
    /// </summary>
    public static long CheckIoRange(Kvm kvm, ulong ioaddr, ulong addr, ulong alignment, ulong size)
    {
        if (ioaddr != VgicDist.AddrUndef) return Err.EEXIST;
        if (addr % alignment != 0 || size % alignment != 0) return Err.EINVAL;
        if (addr + size < addr) return Err.EINVAL;
        ulong physSize = 1UL << kvm.ArchState.PhysBits;
        if ((addr & ~(physSize - 1)) != 0 || addr + size > physSize) return Err.E2BIG;
        return 0;
    }

    /// <summary>vgic_v3_rdist_overlap: whether [base, base + size) meets a redistributor region.</summary>
    public static bool RdistOverlap(Kvm kvm, VgicDist dist, ulong baseAddress, ulong size) =>
        dist.RdRegions.Any(r => Overlap(baseAddress, size, r.Base, VgicInit.RegionSize(kvm, r)));

    private static bool Overlap(ulong base1, ulong size1, ulong base2, ulong size2) =>
        base1 < base2 + size2 && base2 < base1 + size1;

    /// <summary>
    /// vgic_v3_attr_regs_access: vgic_v3_parse_attr (EINVAL), get_user of a written 32-bit value (not for CPU_SYSREGS,
    /// whose accessors copy 64 bits themselves; EFAULT), lock_all_vcpus (EBUSY while a vCPU's mutex is held — a
    /// KVM_RUN in progress), "!vgic_initialized → EBUSY" (no implicit vgic_init for a GICv3), then the access; a read
    /// is put_user'd after the locks are dropped. An offset with no register behind it reads 0 and ignores a write
    /// (vgic_uaccess_read / _write) — only KVM_HAS_DEVICE_ATTR tells it apart.
    /// </summary>
    private static long RegsAccess(KvmDevice dev, in kvm_device_attr attr, bool write)
    {
        var kvm = dev.Kvm;
        var config = kvm.Kernel.Config;
        var vcpu = FindVcpu(kvm, attr);
        if (vcpu is null) return Err.EINVAL;
        bool uaccess = attr.group != KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;
        uint val = 0;
        if (uaccess && write && !UserMemory.CopyFromUser(config, attr.addr, out val)) return Err.EFAULT;
        long r;
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
                var dist = Arm64VmState.Of(kvm).Vgic;
                if (!dist.Initialized) return Err.EBUSY;
                uint offset = (uint)(attr.attr & 0xffff_ffff);
                lock (dist)
                {
                    switch (attr.group)
                    {
                        case KVM_DEV_ARM_VGIC_GRP_DIST_REGS or KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
                        {
                            var frame = attr.group == KVM_DEV_ARM_VGIC_GRP_DIST_REGS ? VgicFrame.Dist : VgicFrame.Redist;
                            if (write) r = VgicMmio.Write(kvm, vcpu, frame, offset, 4, val, uaccess: true);
                            else
                            {
                                val = (uint)VgicMmio.Read(kvm, vcpu, frame, offset, 4, uaccess: true);
                                r = 0;
                            }
                            break;
                        }
                        case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
                        {
                            ushort e = (ushort)(attr.attr & 0xffff);
                            if (write)
                            {
                                // kvm_sys_reg_set_user: get_user first, then the table (ENOENT).
                                if (!UserMemory.CopyFromUser(config, attr.addr, out ulong v64)) return Err.EFAULT;
                                r = VgicSysRegs.Set(vcpu, e, v64);
                            }
                            else
                            {
                                r = VgicSysRegs.Get(vcpu, e, out ulong v64);
                                if (r == 0 && !UserMemory.CopyToUser(config, attr.addr, v64)) r = Err.EFAULT;
                            }
                            break;
                        }
                        default:
                            r = LevelInfo(kvm, vcpu, attr.attr, write, ref val);
                            break;
                    }
                }
            }
            finally
            {
                foreach (var v in locked) v.Mutex.Exit();
            }
        }
        if (r == 0 && uaccess && !write && !UserMemory.CopyToUser(config, attr.addr, val)) return Err.EFAULT;
        return r;
    }

    /// <summary>
    /// KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO: info (attr[31:10]) must be VGIC_LEVEL_INFO_LINE_LEVEL (else EINVAL), the INTID
    /// (attr[9:0]) a multiple of 32 (vgic_v3_line_level_info_uaccess: EINVAL). vgic_read/write_irq_line_level_info
    /// skip the SGIs and INTIDs beyond nr_irqs; a read reports level-configured lines that are high, a write sets
    /// line_level "irrespective of irq type".
    /// </summary>
    private static long LevelInfo(Kvm kvm, KvmSharp.Emulation.Vcpu.KvmVcpu vcpu, ulong attribute, bool write, ref uint val)
    {
        if (((attribute >> 10) & 0x3fffff) != 0) return Err.EINVAL;
        int intid = (int)(attribute & 0x3ff);
        if (intid % 32 != 0) return Err.EINVAL;
        int nrIrqs = Arm64VmState.Of(kvm).Vgic.NrSpis + VGIC_NR_PRIVATE_IRQS;
        uint read = 0;
        for (int i = 0; i < 32; i++)
        {
            if (intid + i < 16 || intid + i >= nrIrqs) continue;
            if (VgicMmio.GetIrq(kvm, vcpu, intid + i) is not { } irq) continue;
            if (write) irq.LineLevel = ((val >> i) & 1) != 0;
            else if (!irq.Edge && irq.LineLevel) read |= 1u << i;
        }
        if (!write) val = read;
        return 0;
    }

    /// <summary>
    /// vgic_v3_parse_attr: the DIST_REGS group addresses vCPU 0; the others name a vCPU by its MPIDR affinity in
    /// attr[63:32] (kvm_mpidr_to_vcpu; reset_mpidr gives vCPU n Aff0 = n[3:0], Aff1 = n[11:4], Aff2 = n[19:12]).
    /// </summary>
    private static bool ParseVcpu(Kvm kvm, in kvm_device_attr attr) => FindVcpu(kvm, attr) is not null;

    private static KvmSharp.Emulation.Vcpu.KvmVcpu? FindVcpu(Kvm kvm, in kvm_device_attr attr)
    {
        if (attr.group == KVM_DEV_ARM_VGIC_GRP_DIST_REGS) return kvm.Vcpus.FirstOrDefault(v => v.Id == 0) ?? kvm.Vcpus.FirstOrDefault();
        ulong affinity = attr.attr >> 32;
        if ((affinity >> 24) != 0) return null;
        return kvm.Vcpus.FirstOrDefault(v => Mpidr(v.Id) == affinity);
    }

    private static ulong Mpidr(int id)
    {
        uint n = (uint)id;
        return (n & 0xf) | (((n >> 4) & 0xff) << 8) | (((n >> 12) & 0xff) << 16);
    }
}
