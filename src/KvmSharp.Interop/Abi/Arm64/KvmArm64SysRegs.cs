// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>
/// KVM_GET/SET_ONE_REG ids of arm64 system registers (arch/arm64/include/uapi/asm/kvm.h): <c>KVM_REG_ARM64 |
/// KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG | op0:op1:CRn:CRm:op2</c> (selftests' ARM64_SYS_REG), and the encodings of
/// the EL1/EL0 registers the SDK names.
/// </summary>
public static class KvmArm64SysRegs
{
    public const ulong KVM_REG_ARM64_SYSREG = 0x0013UL << KvmArm64Regs.KVM_REG_ARM_COPROC_SHIFT;
    public const ulong KVM_REG_ARM64_SYSREG_OP0_MASK = 0x000000000000c000;
    public const int KVM_REG_ARM64_SYSREG_OP0_SHIFT = 14;
    public const ulong KVM_REG_ARM64_SYSREG_OP1_MASK = 0x0000000000003800;
    public const int KVM_REG_ARM64_SYSREG_OP1_SHIFT = 11;
    public const ulong KVM_REG_ARM64_SYSREG_CRN_MASK = 0x0000000000000780;
    public const int KVM_REG_ARM64_SYSREG_CRN_SHIFT = 7;
    public const ulong KVM_REG_ARM64_SYSREG_CRM_MASK = 0x0000000000000078;
    public const int KVM_REG_ARM64_SYSREG_CRM_SHIFT = 3;
    public const ulong KVM_REG_ARM64_SYSREG_OP2_MASK = 0x0000000000000007;
    public const int KVM_REG_ARM64_SYSREG_OP2_SHIFT = 0;

    /// <summary>The 16-bit op0:op1:CRn:CRm:op2 field of a system register id (also the MRS/MSR encoding's bits 20:5).</summary>
    public static ulong Encoding(int op0, int op1, int crn, int crm, int op2) =>
        ((ulong)op0 << KVM_REG_ARM64_SYSREG_OP0_SHIFT) | ((ulong)op1 << KVM_REG_ARM64_SYSREG_OP1_SHIFT) |
        ((ulong)crn << KVM_REG_ARM64_SYSREG_CRN_SHIFT) | ((ulong)crm << KVM_REG_ARM64_SYSREG_CRM_SHIFT) |
        ((ulong)op2 << KVM_REG_ARM64_SYSREG_OP2_SHIFT);

    /// <summary>ARM64_SYS_REG(op0, op1, crn, crm, op2) of the selftests.</summary>
    public static ulong ARM64_SYS_REG(int op0, int op1, int crn, int crm, int op2) =>
        KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG | Encoding(op0, op1, crn, crm, op2);

    public static ulong MPIDR_EL1 => ARM64_SYS_REG(3, 0, 0, 0, 5);
    public static ulong SCTLR_EL1 => ARM64_SYS_REG(3, 0, 1, 0, 0);
    public static ulong CPACR_EL1 => ARM64_SYS_REG(3, 0, 1, 0, 2);
    public static ulong TTBR0_EL1 => ARM64_SYS_REG(3, 0, 2, 0, 0);
    public static ulong TTBR1_EL1 => ARM64_SYS_REG(3, 0, 2, 0, 1);
    public static ulong TCR_EL1 => ARM64_SYS_REG(3, 0, 2, 0, 2);
    public static ulong ESR_EL1 => ARM64_SYS_REG(3, 0, 5, 2, 0);
    public static ulong FAR_EL1 => ARM64_SYS_REG(3, 0, 6, 0, 0);
    public static ulong MAIR_EL1 => ARM64_SYS_REG(3, 0, 10, 2, 0);
    public static ulong VBAR_EL1 => ARM64_SYS_REG(3, 0, 12, 0, 0);
    public static ulong TPIDR_EL1 => ARM64_SYS_REG(3, 0, 13, 0, 4);
    public static ulong TPIDR_EL0 => ARM64_SYS_REG(3, 3, 13, 0, 2);
}
