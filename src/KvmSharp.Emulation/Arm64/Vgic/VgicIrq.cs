// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// <c>struct vgic_irq</c> (include/kvm/arm_vgic.h) as the register model needs it. Defaults are vgic-init.c's:
/// kzalloc'ed (priority 0, disabled, edge = VGIC_CONFIG_EDGE 0), then vgic_allocate_private_irqs_locked ("SGIs:
/// enabled, edge; PPIs: level") and vgic_init ("irq->group = 1" for a GICv3 model, private and shared).
/// </summary>
internal sealed class VgicIrq(int intid)
{
    public int Intid { get; } = intid;
    public bool Enabled { get; set; }
    public bool PendingLatch { get; set; }
    public bool LineLevel { get; set; }
    public bool Active { get; set; }
    public byte Priority { get; set; }

    /// <summary>config == VGIC_CONFIG_EDGE (false: VGIC_CONFIG_LEVEL).</summary>
    public bool Edge { get; set; } = true;

    public bool Group { get; set; } = true;

    /// <summary>irq->mpidr for an SPI (GICD_IROUTER: Aff2.Aff1.Aff0 only).</summary>
    public ulong Mpidr { get; set; }

    /// <summary>irq->target_vcpu of an LPI (vgic-its.c update_affinity; null: its collection is not mapped).</summary>
    public KvmVcpu? TargetVcpu { get; set; }

    /// <summary>vgic.h irq_is_pending: an edge interrupt's latch; a level one's latch or line.</summary>
    public bool Pending => Edge ? PendingLatch : PendingLatch || LineLevel;
}

/// <summary>
/// <c>struct vgic_cpu</c> plus the GICv3 CPU interface (struct vgic_v3_cpu_if) of one vCPU: the 32 private
/// interrupts and the ICC state userspace saves through KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS (the VMCR fields, the
/// active-priority registers, SRE, num_pri_bits / num_id_bits).
/// </summary>
internal sealed class VgicCpu
{
    private static readonly ConditionalWeakTable<KvmVcpu, VgicCpu> States = [];

    /// <summary>
    /// The emulated host's ICH_VTR_EL2 [D]: 5 priority bits (PRIbits = 4), 16-bit INTIDs (IDbits = 0), SEIS = 0,
    /// A3V = 1 — a GIC-600 class CPU interface. vgic_v3_vcpu_init copies PRIbits + 1 and IDbits.
    /// </summary>
    public const int HostPriBits = 5, HostIdBits = 0, HostSeis = 0, HostA3v = 1;

    private VgicCpu()
    {
        for (int i = 0; i < Private.Length; i++)
            Private[i] = new VgicIrq(i) { Enabled = i < 16, Edge = i < 16 };
    }

    public VgicIrq[] Private { get; } = new VgicIrq[32];

    // struct vgic_vmcr (vgic_v3_get_vmcr / vgic_v3_set_vmcr keep them in ICH_VMCR_EL2 fields).
    public uint Pmr { get; set; }
    public uint Bpr0 { get; set; }
    public uint Bpr1 { get; set; }
    public bool Cbpr { get; set; }
    public bool EoiMode { get; set; }
    public bool Grpen0 { get; set; }
    public bool Grpen1 { get; set; }

    public uint[] Ap0r { get; } = new uint[4];
    public uint[] Ap1r { get; } = new uint[4];

    /// <summary>vgic_v3->vgic_sre: "ICC_SRE_EL1_DIB | ICC_SRE_EL1_DFB | ICC_SRE_EL1_SRE" (vgic_v3_vcpu_init).</summary>
    public ulong Sre { get; set; } = 7;

    /// <summary>vgic_cpu->ctlr == GICR_CTLR_ENABLE_LPIS (vgic_lpis_enabled), set by GICR_CTLR with an ITS.</summary>
    public bool LpisEnabled { get; set; }

    /// <summary>vgic_cpu->pendbaser (GICR_PENDBASER).</summary>
    public ulong Pendbaser { get; set; }

    public int NumPriBits { get; set; } = HostPriBits;
    public int NumIdBits { get; set; } = HostIdBits;

    /// <summary>The interrupts this vCPU has acknowledged (ICC_IAR1_EL1) and not yet EOIed, innermost last.</summary>
    public List<VgicIrq> ActiveStack { get; } = [];

    public static VgicCpu Of(KvmVcpu vcpu) => States.GetValue(vcpu, _ => new VgicCpu());
}
