// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>
/// The arm64 vGIC device attributes (arch/arm64/include/uapi/asm/kvm.h, Documentation/virt/kvm/devices/arm-vgic-v3.rst):
/// attribute groups, address types, control attributes and the redistributor-region encoding.
/// </summary>
public static class KvmArm64Vgic
{
    // Attribute groups.
    public const uint KVM_DEV_ARM_VGIC_GRP_ADDR = 0;
    public const uint KVM_DEV_ARM_VGIC_GRP_DIST_REGS = 1;
    public const uint KVM_DEV_ARM_VGIC_GRP_CPU_REGS = 2;
    public const uint KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 3;
    public const uint KVM_DEV_ARM_VGIC_GRP_CTRL = 4;
    public const uint KVM_DEV_ARM_VGIC_GRP_REDIST_REGS = 5;
    public const uint KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS = 6;
    public const uint KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO = 7;
    public const uint KVM_DEV_ARM_VGIC_GRP_ITS_REGS = 8;
    public const uint KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ = 9;

    // KVM_DEV_ARM_VGIC_GRP_ADDR attributes (the address types).
    public const ulong KVM_VGIC_V2_ADDR_TYPE_DIST = 0;
    public const ulong KVM_VGIC_V2_ADDR_TYPE_CPU = 1;
    public const ulong KVM_VGIC_V3_ADDR_TYPE_DIST = 2;
    public const ulong KVM_VGIC_V3_ADDR_TYPE_REDIST = 3;
    public const ulong KVM_VGIC_ITS_ADDR_TYPE = 4;
    public const ulong KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION = 5;

    // KVM_DEV_ARM_VGIC_GRP_CTRL attributes.
    public const ulong KVM_DEV_ARM_VGIC_CTRL_INIT = 0;
    public const ulong KVM_DEV_ARM_ITS_SAVE_TABLES = 1;
    public const ulong KVM_DEV_ARM_ITS_RESTORE_TABLES = 2;
    public const ulong KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES = 3;
    public const ulong KVM_DEV_ARM_ITS_CTRL_RESET = 4;

    /// <summary>The distributor frame: 64 KiB.</summary>
    public const ulong KVM_VGIC_V3_DIST_SIZE = 0x10000;
    /// <summary>One vCPU's redistributor: RD_base and SGI_base frames, 2 × 64 KiB.</summary>
    public const ulong KVM_VGIC_V3_REDIST_SIZE = 2 * 0x10000;
    /// <summary>The ITS frame: control page and translation page (GITS_TRANSLATER), 2 × 64 KiB.</summary>
    public const ulong KVM_VGIC_V3_ITS_SIZE = 2 * 0x10000;

    // A KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION value: index[11:0], flags[15:12], base[51:16], count[63:52].
    public const ulong KVM_VGIC_V3_RDIST_INDEX_MASK = 0xfff;
    public const int KVM_VGIC_V3_RDIST_FLAGS_SHIFT = 12;
    public const ulong KVM_VGIC_V3_RDIST_FLAGS_MASK = 0xfUL << KVM_VGIC_V3_RDIST_FLAGS_SHIFT;
    public const ulong KVM_VGIC_V3_RDIST_BASE_MASK = ((1UL << 52) - 1) & ~0xffffUL;
    public const int KVM_VGIC_V3_RDIST_COUNT_SHIFT = 52;
    public const ulong KVM_VGIC_V3_RDIST_COUNT_MASK = 0xfffUL << KVM_VGIC_V3_RDIST_COUNT_SHIFT;

    /// <summary>KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT: REDIST_REGS / CPU_SYSREGS / LEVEL_INFO name a vCPU by its packed affinity
    /// (Aff3.Aff2.Aff1.Aff0) in attr[63:32].</summary>
    public const int KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT = 32;
    /// <summary>KVM_DEV_ARM_VGIC_OFFSET_MASK: the register offset in attr[31:0] (DIST_REGS, REDIST_REGS).</summary>
    public const ulong KVM_DEV_ARM_VGIC_OFFSET_MASK = 0xffff_ffff;
    /// <summary>KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK: op0:op1:CRn:CRm:op2 of an ICC register in attr[15:0] (CPU_SYSREGS).</summary>
    public const ulong KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK = 0xffff;
    /// <summary>KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT: the info type in attr[31:10] (LEVEL_INFO).</summary>
    public const int KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT = 10;
    /// <summary>KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK: the first INTID (a multiple of 32) in attr[9:0].</summary>
    public const ulong KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK = 0x3ff;
    /// <summary>VGIC_LEVEL_INFO_LINE_LEVEL: the only LEVEL_INFO type, 32 line levels.</summary>
    public const ulong VGIC_LEVEL_INFO_LINE_LEVEL = 0;

    /// <summary>KVM_ARM_IRQ_TYPE_SHIFT: KVM_IRQ_LINE's irq is vcpu2[31:28] type[27:24] vcpu[23:16] num[15:0].</summary>
    public const int KVM_ARM_IRQ_TYPE_SHIFT = 24;
    /// <summary>KVM_ARM_IRQ_VCPU_SHIFT: the low 8 bits of the target vCPU index (PPIs).</summary>
    public const int KVM_ARM_IRQ_VCPU_SHIFT = 16;
    /// <summary>KVM_ARM_IRQ_VCPU2_SHIFT: vCPU index bits 11:8.</summary>
    public const int KVM_ARM_IRQ_VCPU2_SHIFT = 28;
    /// <summary>KVM_ARM_IRQ_TYPE_SPI: a shared interrupt (INTID ≥ 32) of the in-kernel vGIC.</summary>
    public const uint KVM_ARM_IRQ_TYPE_SPI = 1;
    /// <summary>KVM_ARM_IRQ_TYPE_PPI: a vCPU's private peripheral interrupt (INTID 16..31).</summary>
    public const uint KVM_ARM_IRQ_TYPE_PPI = 2;

    /// <summary>VGIC_NR_PRIVATE_IRQS: 16 SGIs + 16 PPIs (include/kvm/arm_vgic.h).</summary>
    public const int VGIC_NR_PRIVATE_IRQS = 32;
    /// <summary>VGIC_MAX_RESERVED: interrupt IDs 1020..1023 are special, so at most 1024 interrupt lines.</summary>
    public const int VGIC_MAX_RESERVED = 1023;
    /// <summary>VGIC_NR_IRQS_LEGACY: the interrupt count vgic_init takes when KVM_DEV_ARM_VGIC_GRP_NR_IRQS was not set.</summary>
    public const int VGIC_NR_IRQS_LEGACY = 256;
}
