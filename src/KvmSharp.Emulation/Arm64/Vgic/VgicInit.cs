// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// arch/arm64/kvm/vgic/vgic-init.c (6.18): creating the vGIC, vgic_init, and kvm_vgic_map_resources at a VM's first
/// KVM_RUN, with vgic-v3.c's vgic_v3_map_resources / vgic_v3_check_base.
/// </summary>
internal static class VgicInit
{
    /// <summary>VGIC_V3_MAX_CPUS: kvm->max_vcpus once a GICv3 exists.</summary>
    public const int VgicV3MaxCpus = 512;

    /// <summary>
    /// kvm_vgic_create: EBUSY while a vCPU is half created (never, here) or when one has run; EEXIST when the VM has
    /// an irqchip; E2BIG when it has more vCPUs than the model allows. GICv2 emulation is not offered by the emulated
    /// host (can_emulate_gicv2 = false [D]): its type is not registered at all.
    /// </summary>
    public static long Create(Kvm kvm, uint type)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        if (dist.InKernel) return Err.EEXIST;
        foreach (var vcpu in kvm.Vcpus)
        {
            if (Arm64VcpuState.Of(vcpu).HasRunOnce) return Err.EBUSY;
        }
        if (kvm.Vcpus.Count > VgicV3MaxCpus) return Err.E2BIG;
        dist.InKernel = true;
        dist.Model = type;
        dist.DistBase = VgicDist.AddrUndef;
        return 0;
    }

    /// <summary>
    /// vgic_init: nothing to do once initialized; "freeze the number of spis" (VGIC_NR_IRQS_LEGACY when unset).
    /// </summary>
    public static long Init(Kvm kvm)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        if (dist.Initialized) return 0;
        if (dist.NrSpis == 0) dist.NrSpis = KvmArm64Vgic.VGIC_NR_IRQS_LEGACY - KvmArm64Vgic.VGIC_NR_PRIVATE_IRQS;
        dist.Initialized = true;
        return 0;
    }

    /// <summary>
    /// kvm_vgic_map_resources → vgic_v3_map_resources, from kvm_arch_vcpu_run_pid_change on a vCPU's first run: every
    /// vCPU needs a redistributor frame (ENXIO), the distributor an address (ENXIO), the frames must not overlap
    /// (vgic_v3_check_base: EINVAL), and a GICv3 must have been initialized by userspace (EBUSY).
    /// </summary>
    public static long MapResources(Kvm kvm)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        if (dist.Ready || !dist.InKernel) return 0;
        if (RedistFrames(dist) < (ulong)kvm.Vcpus.Count) return Err.ENXIO;
        if (dist.DistBase == VgicDist.AddrUndef) return Err.ENXIO;
        if (!CheckBase(kvm, dist)) return Err.EINVAL;
        if (!dist.Initialized) return Err.EBUSY;
        dist.Ready = true;
        return 0;
    }

    /// <summary>vgic_v3_rd_region_size: count frames, or one per online vCPU for a legacy region.</summary>
    public static ulong RegionSize(Kvm kvm, RedistRegion region) =>
        (region.Count != 0 ? region.Count : (ulong)kvm.Vcpus.Count) * KvmArm64Vgic.KVM_VGIC_V3_REDIST_SIZE;

    /// <summary>
    /// How many vCPUs get a redistributor (vgic_register_redist_iodev takes vgic_v3_rdist_free_slot for each vCPU in
    /// turn; a legacy region has room for all of them).
    /// </summary>
    private static ulong RedistFrames(VgicDist dist)
    {
        ulong frames = 0;
        foreach (var region in dist.RdRegions)
        {
            if (region.Count == 0) return ulong.MaxValue;
            frames += region.Count;
        }
        return frames;
    }

    /// <summary>vgic_v3_check_base: regions inside the IPA space, and the distributor clear of them.</summary>
    private static bool CheckBase(Kvm kvm, VgicDist dist)
    {
        foreach (var region in dist.RdRegions)
        {
            if (VgicKvmDevice.CheckIoRange(kvm, VgicDist.AddrUndef, region.Base, 0x10000, RegionSize(kvm, region)) != 0)
                return false;
        }
        return !VgicKvmDevice.RdistOverlap(kvm, dist, dist.DistBase, KvmArm64Vgic.KVM_VGIC_V3_DIST_SIZE);
    }
}
