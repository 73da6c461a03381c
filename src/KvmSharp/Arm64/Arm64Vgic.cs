// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Arm64;

/// <summary>
/// The GICv3 set-up an arm64 VMM does (Documentation/virt/kvm/devices/arm-vgic-v3.rst; Firecracker's and the
/// selftests' vgic_v3_setup): create the device, place the distributor and the redistributors in guest physical
/// memory, optionally size the interrupt space, create every vCPU, then initialize. After the initialization no
/// vCPU can be added (EBUSY).
/// </summary>
public static class Arm64Vgic
{
    /// <summary>
    /// Creates a GICv3 (KVM_DEV_TYPE_ARM_VGIC_V3) with its distributor at <paramref name="distributorBase"/> and one
    /// redistributor region of <paramref name="redistributorCount"/> frames at <paramref name="redistributorBase"/>
    /// (both 64 KiB aligned), and, when given, <paramref name="interrupts"/> interrupt lines (a multiple of 32, 64..992).
    /// Call <see cref="InitializeVgic"/> once every vCPU exists.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The redistributor base or count does not fit its field.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmCapabilityException">The kernel has no GICv3 device.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused a step (EEXIST: the VM has an irqchip;
    /// EINVAL: misaligned; E2BIG: beyond the VM's IPA space; …). The device's descriptor is closed, but the kernel
    /// keeps the vGIC in the VM (the device has no release callback): start again with a new VM.</exception>
    public static KvmDevice CreateVgicV3(this Vm vm, ulong distributorBase, ulong redistributorBase, uint redistributorCount, uint? interrupts = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ulong region = RedistributorRegion(index: 0, redistributorBase, redistributorCount);
        var gic = vm.CreateDevice(KvmDeviceType.ArmVgicV3);
        try
        {
            gic.SetAttribute64(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_ADDR, KvmArm64Vgic.KVM_VGIC_V3_ADDR_TYPE_DIST, distributorBase);
            gic.SetAttribute64(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_ADDR, KvmArm64Vgic.KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, region);
            if (interrupts is uint n) gic.SetAttribute32(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, n);
            return gic;
        }
        catch
        {
            gic.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates a GICv3 ITS (KVM_DEV_TYPE_ARM_VGIC_ITS, Documentation/virt/kvm/devices/arm-vgic-its.rst) with its
    /// 128 KiB frame (control page, then GITS_TRANSLATER's page) at <paramref name="baseAddress"/> (64 KiB aligned). MSIs
    /// then need a device ID (<see cref="Vm.SignalMsi"/> with devid; KVM_CAP_MSI_DEVID becomes 1) and reach the guest
    /// as LPIs once it has mapped them through the ITS command queue.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmCapabilityException">The kernel has no ITS device.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused the address (EINVAL: misaligned; E2BIG: beyond
    /// the VM's IPA space). The descriptor is closed; the VM keeps its ITS flag (the device has no release callback).</exception>
    public static KvmDevice CreateVgicIts(this Vm vm, ulong baseAddress)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var its = vm.CreateDevice(KvmDeviceType.ArmVgicIts);
        try
        {
            its.SetAttribute64(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_ADDR, KvmArm64Vgic.KVM_VGIC_ITS_ADDR_TYPE, baseAddress);
            its.SetAttribute(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_CTRL, KvmArm64Vgic.KVM_DEV_ARM_VGIC_CTRL_INIT);
            return its;
        }
        catch
        {
            its.Dispose();
            throw;
        }
    }

    /// <summary>KVM_DEV_ARM_VGIC_CTRL_INIT: the vGIC takes its final shape for the vCPUs that exist now.</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused (EBUSY: a vCPU is being created or runs).</exception>
    public static void InitializeVgic(this KvmDevice gic)
    {
        ArgumentNullException.ThrowIfNull(gic);
        gic.SetAttribute(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_CTRL, KvmArm64Vgic.KVM_DEV_ARM_VGIC_CTRL_INIT);
    }

    /// <summary>The number of interrupt lines (SGIs, PPIs and SPIs) the vGIC has (KVM_DEV_ARM_VGIC_GRP_NR_IRQS; 32 before
    /// it is sized or initialized).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused.</exception>
    public static uint GetVgicInterrupts(this KvmDevice gic)
    {
        ArgumentNullException.ThrowIfNull(gic);
        return gic.GetAttribute32(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0);
    }

    /// <summary>
    /// Reads a 32-bit distributor register at <paramref name="offset"/> in the GICD frame (KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
    /// the VMM's save path). An offset with no register reads 0; <see cref="KvmDevice.HasAttribute"/> tells them apart.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused (EBUSY: not initialized, or a vCPU is running).</exception>
    public static uint GetDistributorRegister(this KvmDevice gic, uint offset)
    {
        ArgumentNullException.ThrowIfNull(gic);
        return gic.GetAttribute32(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_DIST_REGS, offset);
    }

    /// <summary>Writes a 32-bit distributor register (the restore path: ISPENDR sets and clears pending, GICD_IIDR
    /// may only change its revision, read-only registers ignore the write).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused (EINVAL: a GICD_IIDR/TYPER2 value this vGIC
    /// cannot take; EBUSY: not initialized, or a vCPU is running).</exception>
    public static void SetDistributorRegister(this KvmDevice gic, uint offset, uint value)
    {
        ArgumentNullException.ThrowIfNull(gic);
        gic.SetAttribute32(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_DIST_REGS, offset, value);
    }

    /// <summary>
    /// Reads a 32-bit register of the redistributor of the vCPU with packed affinity <paramref name="affinity"/>
    /// (Aff3.Aff2.Aff1.Aff0, see <see cref="VcpuAffinity"/>) at <paramref name="offset"/>: RD_base at 0, SGI_base at 0x10000
    /// (KVM_DEV_ARM_VGIC_GRP_REDIST_REGS).
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused (EINVAL: no such vCPU; EBUSY: not initialized,
    /// or a vCPU is running).</exception>
    public static uint GetRedistributorRegister(this KvmDevice gic, uint affinity, uint offset)
    {
        ArgumentNullException.ThrowIfNull(gic);
        return gic.GetAttribute32(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, VcpuAttr(affinity, offset));
    }

    /// <summary>Writes a 32-bit redistributor register (see <see cref="GetRedistributorRegister"/>).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused.</exception>
    public static void SetRedistributorRegister(this KvmDevice gic, uint affinity, uint offset, uint value)
    {
        ArgumentNullException.ThrowIfNull(gic);
        gic.SetAttribute32(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, VcpuAttr(affinity, offset), value);
    }

    /// <summary>
    /// Reads a vCPU's ICC_* register (KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, 64 bits) by its op0:op1:CRn:CRm:op2
    /// <paramref name="encoding"/> (KvmArm64SysRegs.Encoding).
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused (ENOENT: not an ICC register it saves; EINVAL:
    /// an active-priority register beyond the implemented priority bits).</exception>
    public static ulong GetCpuInterfaceRegister(this KvmDevice gic, uint affinity, ulong encoding)
    {
        ArgumentNullException.ThrowIfNull(gic);
        return gic.GetAttribute64(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, VcpuAttr(affinity, (uint)(encoding & KvmArm64Vgic.KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK)));
    }

    /// <summary>Writes a vCPU's ICC_* register (see <see cref="GetCpuInterfaceRegister"/>).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused (EINVAL: e.g. ICC_CTLR_EL1 with more priority
    /// bits than the host has, ICC_SRE_EL1 without SRE).</exception>
    public static void SetCpuInterfaceRegister(this KvmDevice gic, uint affinity, ulong encoding, ulong value)
    {
        ArgumentNullException.ThrowIfNull(gic);
        gic.SetAttribute64(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, VcpuAttr(affinity, (uint)(encoding & KvmArm64Vgic.KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK)), value);
    }

    /// <summary>The line levels of the 32 interrupts from <paramref name="firstIntid"/> (a multiple of 32) as seen by
    /// the vCPU <paramref name="affinity"/> (KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, VGIC_LEVEL_INFO_LINE_LEVEL).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused (EINVAL: not a multiple of 32).</exception>
    public static uint GetLineLevels(this KvmDevice gic, uint affinity, uint firstIntid)
    {
        ArgumentNullException.ThrowIfNull(gic);
        return gic.GetAttribute32(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, VcpuAttr(affinity, firstIntid));
    }

    /// <summary>Restores the line levels of 32 interrupts (see <see cref="GetLineLevels"/>).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused.</exception>
    public static void SetLineLevels(this KvmDevice gic, uint affinity, uint firstIntid, uint levels)
    {
        ArgumentNullException.ThrowIfNull(gic);
        gic.SetAttribute32(KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, VcpuAttr(affinity, firstIntid), levels);
    }

    /// <summary>
    /// The packed affinity KVM gives vCPU <paramref name="vcpuId"/> by default (reset_mpidr: Aff0 = id[3:0],
    /// Aff1 = id[11:4], Aff2 = id[19:12]) — valid unless the VMM changed MPIDR_EL1.
    /// </summary>
    public static uint VcpuAffinity(int vcpuId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(vcpuId);
        uint n = (uint)vcpuId;
        return (n & 0xf) | (((n >> 4) & 0xff) << 8) | (((n >> 12) & 0xff) << 16);
    }

    /// <summary>
    /// KVM_IRQ_LINE for a shared interrupt of the vGIC (KVM_ARM_IRQ_TYPE_SPI): a level-configured line follows
    /// <paramref name="level"/>, an edge one latches pending on a raise.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="intid"/> is below 32 or above 0xFFFF.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused (ENXIO: no vGIC; EBUSY: not initialized; EINVAL:
    /// beyond the interrupt count).</exception>
    public static void SetSpiLevel(this Vm vm, uint intid, bool level)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentOutOfRangeException.ThrowIfLessThan(intid, 32u);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(intid, 0xffffu);
        vm.SetIrqLine((KvmArm64Vgic.KVM_ARM_IRQ_TYPE_SPI << KvmArm64Vgic.KVM_ARM_IRQ_TYPE_SHIFT) | intid, level);
    }

    /// <summary>KVM_IRQ_LINE for vCPU <paramref name="vcpuIndex"/>'s private peripheral interrupt <paramref name="intid"/>
    /// (KVM_ARM_IRQ_TYPE_PPI, 16..31); a PPI a timer or the PMU owns ignores it.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The vCPU index does not fit 12 bits or the INTID is not a PPI.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">The kernel refused (EINVAL: no such vCPU).</exception>
    public static void SetPpiLevel(this Vm vm, uint vcpuIndex, uint intid, bool level)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vcpuIndex, 0xfffu);
        ArgumentOutOfRangeException.ThrowIfLessThan(intid, 16u);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(intid, 31u);
        uint irq = (KvmArm64Vgic.KVM_ARM_IRQ_TYPE_PPI << KvmArm64Vgic.KVM_ARM_IRQ_TYPE_SHIFT) |
            ((vcpuIndex & 0xff) << KvmArm64Vgic.KVM_ARM_IRQ_VCPU_SHIFT) | ((vcpuIndex >> 8) << KvmArm64Vgic.KVM_ARM_IRQ_VCPU2_SHIFT) | intid;
        vm.SetIrqLine(irq, level);
    }

    private static ulong VcpuAttr(uint affinity, uint low) =>
        ((ulong)affinity << KvmArm64Vgic.KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | low;

    /// <summary>
    /// The KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION value: index[11:0], flags[15:12] = 0, base[51:16], count[63:52].
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The index, base or count does not fit its field.</exception>
    public static ulong RedistributorRegion(uint index, ulong baseAddress, uint count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, (uint)KvmArm64Vgic.KVM_VGIC_V3_RDIST_INDEX_MASK);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, 0xfffu);
        if ((baseAddress & ~KvmArm64Vgic.KVM_VGIC_V3_RDIST_BASE_MASK) != 0)
            throw new ArgumentOutOfRangeException(nameof(baseAddress), $"0x{baseAddress:X} is not a 64 KiB aligned address below 2^52");
        return index | baseAddress | ((ulong)count << KvmArm64Vgic.KVM_VGIC_V3_RDIST_COUNT_SHIFT);
    }
}
