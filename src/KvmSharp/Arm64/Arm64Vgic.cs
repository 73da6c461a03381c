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
