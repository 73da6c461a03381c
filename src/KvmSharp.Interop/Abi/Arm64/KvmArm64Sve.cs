// SPDX-License-Identifier: MIT
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Abi.Arm64;

/// <summary>
/// The Scalable Vector Extension for arm64 guests: KVM_CAP_ARM_SVE and KVM_ARM_VCPU_FINALIZE (include/uapi/linux/kvm.h),
/// the register-size codes its ids use, and the KVM_REG_ARM64_SVE register ids of arch/arm64/include/uapi/asm/kvm.h
/// (Z0..Z31, P0..P15, FFR, each in slices of which only slice 0 exists, and the KVM_REG_ARM64_SVE_VLS pseudo-register,
/// a bitmap of the vector lengths the vCPU may use; Documentation/virt/kvm/api.rst).
/// </summary>
public static class KvmArm64Sve
{
    /// <summary>KVM_CAP_ARM_SVE: the host can give vCPUs KVM_ARM_VCPU_SVE.</summary>
    public const int KVM_CAP_ARM_SVE = 170;

    /// <summary>vCPU ioctl: <c>_IOW(KVMIO, 0xc2, int)</c>, the int naming the feature to finalize (KVM_ARM_VCPU_SVE).</summary>
    public static readonly uint KVM_ARM_VCPU_FINALIZE = _IOW(KvmIoctls.KVMIO, 0xc2, sizeof(int));

    public const ulong KVM_REG_SIZE_U256 = 0x0050000000000000;
    public const ulong KVM_REG_SIZE_U512 = 0x0060000000000000;
    public const ulong KVM_REG_SIZE_U2048 = 0x0080000000000000;

    /// <summary>asm/kvm.h KVM_REG_ARM64_SVE: coprocessor 0x15.</summary>
    public const ulong KVM_REG_ARM64_SVE = 0x0015UL << KvmArm64Regs.KVM_REG_ARM_COPROC_SHIFT;

    public const ulong KVM_REG_ARM64_SVE_ZREG_BASE = 0;
    public const ulong KVM_REG_ARM64_SVE_PREG_BASE = 0x400;
    public const ulong KVM_REG_ARM64_SVE_FFR_BASE = 0x600;

    public const int KVM_ARM64_SVE_NUM_ZREGS = 32;
    public const int KVM_ARM64_SVE_NUM_PREGS = 16;
    public const int KVM_ARM64_SVE_MAX_SLICES = 32;

    /// <summary>asm/sve_context.h __SVE_VQ_MIN / __SVE_VQ_MAX: vector lengths in 128-bit quadwords.</summary>
    public const int KVM_ARM64_SVE_VQ_MIN = 1;
    public const int KVM_ARM64_SVE_VQ_MAX = 512;

    /// <summary>(KVM_ARM64_SVE_VQ_MAX - KVM_ARM64_SVE_VQ_MIN) / 64 + 1: the __u64 words of the VLS bitmap.</summary>
    public const int KVM_ARM64_SVE_VLS_WORDS = (KVM_ARM64_SVE_VQ_MAX - KVM_ARM64_SVE_VQ_MIN) / 64 + 1;

    /// <summary>KVM_REG_ARM64 | KVM_REG_ARM64_SVE | KVM_REG_SIZE_U512 | 0xffff.</summary>
    public const ulong KVM_REG_ARM64_SVE_VLS = KvmArm64Regs.KVM_REG_ARM64 | KVM_REG_ARM64_SVE | KVM_REG_SIZE_U512 | 0xffff;

    /// <summary>KVM_REG_ARM64_SVE_ZREG(n, i): a 2048-bit slice of Zn.</summary>
    public static ulong KVM_REG_ARM64_SVE_ZREG(int n, int i) =>
        KvmArm64Regs.KVM_REG_ARM64 | KVM_REG_ARM64_SVE | KVM_REG_ARM64_SVE_ZREG_BASE | KVM_REG_SIZE_U2048 |
        ((ulong)(uint)(n & (KVM_ARM64_SVE_NUM_ZREGS - 1)) << 5) | (uint)(i & (KVM_ARM64_SVE_MAX_SLICES - 1));

    /// <summary>KVM_REG_ARM64_SVE_PREG(n, i): a 256-bit slice of Pn.</summary>
    public static ulong KVM_REG_ARM64_SVE_PREG(int n, int i) =>
        KvmArm64Regs.KVM_REG_ARM64 | KVM_REG_ARM64_SVE | KVM_REG_ARM64_SVE_PREG_BASE | KVM_REG_SIZE_U256 |
        ((ulong)(uint)(n & (KVM_ARM64_SVE_NUM_PREGS - 1)) << 5) | (uint)(i & (KVM_ARM64_SVE_MAX_SLICES - 1));

    /// <summary>KVM_REG_ARM64_SVE_FFR(i): a 256-bit slice of the first-fault register.</summary>
    public static ulong KVM_REG_ARM64_SVE_FFR(int i) =>
        KvmArm64Regs.KVM_REG_ARM64 | KVM_REG_ARM64_SVE | KVM_REG_ARM64_SVE_FFR_BASE | KVM_REG_SIZE_U256 |
        (uint)(i & (KVM_ARM64_SVE_MAX_SLICES - 1));

    /// <summary>ZCR_EL1 (op0 3, op1 0, CRn 1, CRm 2, op2 0): the guest's SVE control register (LEN).</summary>
    public static ulong ZCR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 1, 2, 0);

    /// <summary>ID_AA64ZFR0_EL1 (op0 3, op1 0, CRn 0, CRm 4, op2 4): the SVE feature ID register.</summary>
    public static ulong ID_AA64ZFR0_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 4, 4);
}
