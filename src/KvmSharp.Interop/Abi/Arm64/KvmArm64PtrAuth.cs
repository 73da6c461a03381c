// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>
/// Pointer authentication for arm64 guests: the capabilities (include/uapi/linux/kvm.h) that tell whether
/// KVM_ARM_VCPU_PTRAUTH_ADDRESS / KVM_ARM_VCPU_PTRAUTH_GENERIC may be requested, and the KVM_GET/SET_ONE_REG ids of the
/// ten key registers (arch/arm64/kvm/sys_regs.c PTRAUTH_KEY, encodings from arch/arm64/tools/sysreg), listed by
/// KVM_GET_REG_LIST only for a vCPU with the features.
/// </summary>
public static class KvmArm64PtrAuth
{
    public const int KVM_CAP_ARM_PTRAUTH_ADDRESS = 171;
    public const int KVM_CAP_ARM_PTRAUTH_GENERIC = 172;

    public static ulong APIAKEYLO_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 1, 0);
    public static ulong APIAKEYHI_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 1, 1);
    public static ulong APIBKEYLO_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 1, 2);
    public static ulong APIBKEYHI_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 1, 3);
    public static ulong APDAKEYLO_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 2, 0);
    public static ulong APDAKEYHI_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 2, 1);
    public static ulong APDBKEYLO_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 2, 2);
    public static ulong APDBKEYHI_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 2, 3);
    public static ulong APGAKEYLO_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 3, 0);
    public static ulong APGAKEYHI_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 3, 1);
}
