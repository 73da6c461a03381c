// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>
/// KVM_GET/SET_ONE_REG ids of the arm64 self-hosted debug registers (arch/arm64/kvm/sys_regs.c sys_reg_descs[]: the
/// DBG{BVR,BCR,WVR,WCR}n_EL1 expanded by DBG_BCR_BVR_WCR_WVR_EL1(n), MDCCINT_EL1, MDSCR_EL1, OSLSR_EL1, DBGVCR32_EL2;
/// encodings from arch/arm64/tools/sysreg and asm/sysreg.h).
/// </summary>
public static class KvmArm64DebugRegs
{
    public static ulong MDCCINT_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 0, 2, 0);
    public static ulong MDSCR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 0, 2, 2);
    public static ulong OSLSR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 1, 1, 4);
    public static ulong DBGVCR32_EL2 => KvmArm64SysRegs.ARM64_SYS_REG(2, 4, 0, 7, 0);

    /// <summary>SYS_DBGBVRn_EL1(n) = sys_reg(2, 0, 0, n, 4), n = 0..15.</summary>
    public static ulong DBGBVRn_EL1(int n) => KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 0, n, 4);

    /// <summary>SYS_DBGBCRn_EL1(n) = sys_reg(2, 0, 0, n, 5).</summary>
    public static ulong DBGBCRn_EL1(int n) => KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 0, n, 5);

    /// <summary>SYS_DBGWVRn_EL1(n) = sys_reg(2, 0, 0, n, 6).</summary>
    public static ulong DBGWVRn_EL1(int n) => KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 0, n, 6);

    /// <summary>SYS_DBGWCRn_EL1(n) = sys_reg(2, 0, 0, n, 7).</summary>
    public static ulong DBGWCRn_EL1(int n) => KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 0, n, 7);
}

/// <summary>
/// The PMUv3 registers KVM exposes to a vCPU initialised with KVM_ARM_VCPU_PMU_V3 (sys_regs.c PMU_SYS_REG entries,
/// pmu_visibility), and KVM_CAP_ARM_PMU_V3 (include/uapi/linux/kvm.h).
/// </summary>
public static class KvmArm64PmuRegs
{
    public const int KVM_CAP_ARM_PMU_V3 = 126;

    public static ulong PMINTENSET_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 9, 14, 1);
    public static ulong PMINTENCLR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 9, 14, 2);
    public static ulong PMCR_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 12, 0);
    public static ulong PMCNTENSET_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 12, 1);
    public static ulong PMCNTENCLR_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 12, 2);
    public static ulong PMOVSCLR_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 12, 3);
    public static ulong PMSWINC_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 12, 4);
    public static ulong PMSELR_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 12, 5);
    public static ulong PMCCNTR_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 13, 0);
    public static ulong PMUSERENR_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 14, 0);
    public static ulong PMOVSSET_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 14, 3);
    public static ulong PMCCFILTR_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 15, 7);

    /// <summary>SYS_PMEVCNTRn_EL0(n) = sys_reg(3, 3, 14, 0b10 n[4:3], n[2:0]), n = 0..30.</summary>
    public static ulong PMEVCNTRn_EL0(int n) => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 8 | (n >> 3), n & 7);

    /// <summary>SYS_PMEVTYPERn_EL0(n) = sys_reg(3, 3, 14, 0b11 n[4:3], n[2:0]), n = 0..30.</summary>
    public static ulong PMEVTYPERn_EL0(int n) => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 12 | (n >> 3), n & 7);
}

/// <summary>
/// The cache-geometry registers: CLIDR_EL1 and CSSELR_EL1 (ARM64_SYS_REG ids) and the CCSIDR values behind
/// KVM_REG_ARM_DEMUX (arch/arm64/include/uapi/asm/kvm.h: one 32-bit id per CSSELR value 0..13).
/// </summary>
public static class KvmArm64CacheRegs
{
    public const ulong KVM_REG_ARM_DEMUX = 0x0011UL << KvmArm64Regs.KVM_REG_ARM_COPROC_SHIFT;
    public const ulong KVM_REG_ARM_DEMUX_ID_MASK = 0x000000000000FF00;
    public const int KVM_REG_ARM_DEMUX_ID_SHIFT = 8;
    public const ulong KVM_REG_ARM_DEMUX_ID_CCSIDR = 0x00UL << KVM_REG_ARM_DEMUX_ID_SHIFT;
    public const ulong KVM_REG_ARM_DEMUX_VAL_MASK = 0x00000000000000FF;
    public const int KVM_REG_ARM_DEMUX_VAL_SHIFT = 0;

    public static ulong CLIDR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 1, 0, 0, 1);
    public static ulong CSSELR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 2, 0, 0, 0);

    /// <summary>KVM_REG_ARM64 | KVM_REG_SIZE_U32 | KVM_REG_ARM_DEMUX | KVM_REG_ARM_DEMUX_ID_CCSIDR | csselr.</summary>
    public static ulong Ccsidr(int csselr) =>
        KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U32 | KVM_REG_ARM_DEMUX | KVM_REG_ARM_DEMUX_ID_CCSIDR | (uint)csselr;
}
