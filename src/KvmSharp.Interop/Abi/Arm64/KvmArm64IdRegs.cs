// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>
/// KVM_GET/SET_ONE_REG ids of the arm64 ID registers a VMM reads at bring-up (ARM64_SYS_REG of their op0:op1:CRn:CRm:op2,
/// arch/arm64/tools/sysreg), in the kernel's spelling.
/// </summary>
public static class KvmArm64IdRegs
{
    /// <summary>
    /// linux/kvm.h "#define KVM_CAP_ARM_WRITABLE_IMP_ID_REGS 239" (6.15+): enabled on the VM before any vCPU exists,
    /// MIDR_EL1, REVIDR_EL1 and AIDR_EL1 become writable through KVM_SET_ONE_REG until the VM has run.
    /// </summary>
    public const int KVM_CAP_ARM_WRITABLE_IMP_ID_REGS = 239;

    public static ulong MIDR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 0, 0);
    public static ulong REVIDR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 0, 6);
    public static ulong ID_PFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 1, 0);
    public static ulong ID_DFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 1, 2);
    public static ulong ID_ISAR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 2, 0);
    public static ulong MVFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 3, 0);
    public static ulong ID_AA64PFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 4, 0);
    public static ulong ID_AA64PFR1_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 4, 1);
    public static ulong ID_AA64PFR2_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 4, 2);
    public static ulong ID_AA64ZFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 4, 4);
    public static ulong ID_AA64SMFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 4, 5);
    public static ulong ID_AA64DFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 5, 0);
    public static ulong ID_AA64DFR1_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 5, 1);
    public static ulong ID_AA64AFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 5, 4);
    public static ulong ID_AA64ISAR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 6, 0);
    public static ulong ID_AA64ISAR1_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 6, 1);
    public static ulong ID_AA64ISAR2_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 6, 2);
    public static ulong ID_AA64ISAR3_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 6, 3);
    public static ulong ID_AA64MMFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 7, 0);
    public static ulong ID_AA64MMFR1_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 7, 1);
    public static ulong ID_AA64MMFR2_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 7, 2);
    public static ulong ID_AA64MMFR3_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 7, 3);
    public static ulong AIDR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 1, 0, 0, 7);
    public static ulong CTR_EL0 => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 0, 0, 1);
}
