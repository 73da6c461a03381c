// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// <c>struct vgic_dist</c> as far as KVM's device API shows it (include/kvm/arm_vgic.h): whether a vGIC exists and
/// which model, where userspace placed the distributor and the redistributor regions, the SPI count and the
/// initialized / ready steps, and the distributor's register state (vgic-mmio-v3.c): the SPIs, GICD_CTLR's enable,
/// the implementation revision and GICR_PROPBASER. Register accesses hold the lock of this object (config_lock and
/// the irq locks of the kernel).
/// </summary>
internal sealed class VgicDist
{
    /// <summary>VGIC_ADDR_UNDEF: an address userspace has not set.</summary>
    public const ulong AddrUndef = ulong.MaxValue;

    /// <summary>vgic.in_kernel: KVM_CREATE_DEVICE (or KVM_CREATE_IRQCHIP) made one; irqchip_in_kernel(kvm).</summary>
    public bool InKernel { get; set; }

    /// <summary>vgic.vgic_model: the KVM_DEV_TYPE_ARM_VGIC_* it was created as.</summary>
    public uint Model { get; set; }

    public ulong DistBase { get; set; } = AddrUndef;

    /// <summary>vgic.rd_regions, in the order they were added (index 0, 1, …).</summary>
    public List<RedistRegion> RdRegions { get; } = [];

    /// <summary>vgic.nr_spis (0 until KVM_DEV_ARM_VGIC_GRP_NR_IRQS or vgic_init sets it).</summary>
    public int NrSpis { get; set; }

    /// <summary>vgic_initialized(kvm): vgic_init ran (KVM_DEV_ARM_VGIC_CTRL_INIT).</summary>
    public bool Initialized { get; set; }

    /// <summary>vgic_ready(kvm): kvm_vgic_map_resources ran (the first KVM_RUN).</summary>
    public bool Ready { get; set; }

    /// <summary>dist->spis: allocated by vgic_init (kvm_vgic_dist_init), nr_spis of them.</summary>
    public VgicIrq[] Spis { get; set; } = [];

    /// <summary>dist->enabled: GICD_CTLR.EnableGrp1NS (ENABLE_SS_G1).</summary>
    public bool Enabled { get; set; }

    /// <summary>dist->implementation_rev: KVM_VGIC_IMP_REV_LATEST (3) until userspace restores GICD_IIDR.</summary>
    public uint ImplementationRev { get; set; } = 3;

    /// <summary>dist->propbaser (GICR_PROPBASER is VM-wide in KVM).</summary>
    public ulong Propbaser { get; set; }

    /// <summary>
    /// kvm->irq_routing on arm64 (virt/kvm/irqchip.c): empty from kvm_create_vm, the default GSI n → SPI n + 32 table
    /// from vgic_init, or what KVM_SET_GSI_ROUTING last set (<see cref="VgicIrqfd"/>). Replaced whole, never changed.
    /// </summary>
    public X86.Irqchip.IrqRoutingTable Routing { get; set; } = X86.Irqchip.IrqRoutingTable.Empty;

    /// <summary>vgic.has_its: an ITS device was created (vgic_its_create); the ITS instances themselves.</summary>
    public List<VgicIts> Its { get; } = [];

    /// <summary>vgic.msis_require_devid (KVM_CAP_MSI_DEVID): set by vgic_its_create.</summary>
    public bool MsisRequireDevid { get; set; }

    /// <summary>dist->lpi_xa: the LPIs some ITS maps, by INTID, with their reference counts (<see cref="VgicLpi"/>).</summary>
    public Dictionary<int, (VgicIrq Irq, int Refs)> Lpis { get; } = [];
}

/// <summary>
/// <c>struct vgic_redist_region</c>: <see cref="Count"/> redistributor frames (0: a legacy single region sized by the
/// VM's vCPU count) at <see cref="Base"/>.
/// </summary>
internal sealed record RedistRegion(uint Index, ulong Base, uint Count);
