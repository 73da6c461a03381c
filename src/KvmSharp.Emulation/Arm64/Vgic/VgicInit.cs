// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;
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
        // kvm_vgic_dist_init: the SPIs, "irq->mpidr = 0; irq->group = 1" for a GICv3 (edge, disabled, priority 0).
        dist.Spis = new VgicIrq[dist.NrSpis];
        for (int i = 0; i < dist.NrSpis; i++) dist.Spis[i] = new VgicIrq(i + KvmArm64Vgic.VGIC_NR_PRIVATE_IRQS);
        // "ret = kvm_vgic_setup_default_irq_routing(kvm)" before "dist->initialized = true" (VgicIrqfd.cs).
        dist.Routing = VgicIrqfd.DefaultRouting(dist.NrSpis);
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
        // vgic_register_dist_iodev (64 KiB at the distributor base) and vgic_register_redist_iodev (2 x 64 KiB per
        // vCPU at its frame; the kernel registers them when the address is set or the vCPU created — only a guest
        // access, after this point, can tell). A full MMIO bus (NR_IOBUS_DEVS) fails the map (the run) with its errno
        // and leaves nothing registered.
        long r = kvm.IoBus.TryRegister(KvmBus.Mmio, dist.DistBase, (int)KvmArm64Vgic.KVM_VGIC_V3_DIST_SIZE, new VgicIoDevice(kvm, null));
        foreach (var vcpu in kvm.Vcpus)
        {
            if (r == 0 && RedistBase(kvm, vcpu) is ulong rd)
                r = kvm.IoBus.TryRegister(KvmBus.Mmio, rd, (int)KvmArm64Vgic.KVM_VGIC_V3_REDIST_SIZE, new VgicIoDevice(kvm, vcpu));
        }
        if (r != 0)
        {
            kvm.IoBus.UnregisterAll(KvmBus.Mmio, d => d is VgicIoDevice);
            return r;
        }
        dist.Ready = true;
        return 0;
    }

    /// <summary>
    /// The redistributor frame of <paramref name="vcpu"/>: vgic_register_redist_iodev gives each vCPU, in order, the next
    /// free slot of the first region that is not full (vgic_v3_rdist_free_slot); null when none is left.
    /// </summary>
    public static (RedistRegion Region, uint Index)? RedistSlot(Kvm kvm, KvmVcpu vcpu)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        var used = new uint[dist.RdRegions.Count];
        foreach (var v in kvm.Vcpus)
        {
            int r = -1;
            for (int i = 0; i < dist.RdRegions.Count; i++)
            {
                if (dist.RdRegions[i].Count == 0 || used[i] < dist.RdRegions[i].Count)
                {
                    r = i;
                    break;
                }
            }
            if (r < 0) return null;
            if (ReferenceEquals(v, vcpu)) return (dist.RdRegions[r], used[r]);
            used[r]++;
        }
        return null;
    }

    public static ulong? RedistBase(Kvm kvm, KvmVcpu vcpu) =>
        RedistSlot(kvm, vcpu) is var (region, index) ? region.Base + index * KvmArm64Vgic.KVM_VGIC_V3_REDIST_SIZE : null;

    /// <summary>
    /// vgic_mmio_vcpu_rdist_is_last: the vCPU has the last used frame of its region and, when that is the region's
    /// last frame, no region with a used frame starts right after it.
    /// </summary>
    public static bool RdistIsLast(Kvm kvm, KvmVcpu vcpu)
    {
        if (RedistSlot(kvm, vcpu) is not var (region, index)) return false;
        uint free = 0;
        var others = new List<(RedistRegion Region, uint Index)>();
        foreach (var v in kvm.Vcpus)
        {
            if (RedistSlot(kvm, v) is var (r, i))
            {
                others.Add((r, i));
                if (ReferenceEquals(r, region)) free = Math.Max(free, i + 1);
            }
        }
        if (index < free - 1) return false;
        if (region.Count != 0 && index == region.Count - 1)
        {
            ulong end = region.Base + region.Count * KvmArm64Vgic.KVM_VGIC_V3_REDIST_SIZE;
            if (others.Any(o => o.Region.Base == end)) return false;
        }
        return true;
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
