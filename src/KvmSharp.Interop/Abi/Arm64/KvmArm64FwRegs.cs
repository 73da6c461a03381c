// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>
/// arm64 firmware pseudo-registers of KVM_GET/SET_ONE_REG (arch/arm64/include/uapi/asm/kvm.h): the KVM_REG_ARM_FW
/// space (PSCI version, SMCCC workaround levels) and the KVM_REG_ARM_FW_FEAT_BMAP space (hypercall service bitmaps),
/// with their values.
/// </summary>
public static class KvmArm64FwRegs
{
    public const ulong KVM_REG_ARM_FW = 0x0014UL << KvmArm64Regs.KVM_REG_ARM_COPROC_SHIFT;
    public const ulong KVM_REG_ARM_FW_FEAT_BMAP = 0x0016UL << KvmArm64Regs.KVM_REG_ARM_COPROC_SHIFT;

    /// <summary>KVM_REG_ARM_FW_REG(r): KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_FW | (r &amp; 0xffff).</summary>
    public static ulong KVM_REG_ARM_FW_REG(int r) =>
        KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U64 | KVM_REG_ARM_FW | ((ulong)r & 0xffff);

    /// <summary>KVM_REG_ARM_FW_FEAT_BMAP_REG(r): KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_FW_FEAT_BMAP | (r &amp; 0xffff).</summary>
    public static ulong KVM_REG_ARM_FW_FEAT_BMAP_REG(int r) =>
        KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U64 | KVM_REG_ARM_FW_FEAT_BMAP | ((ulong)r & 0xffff);

    public static ulong KVM_REG_ARM_PSCI_VERSION => KVM_REG_ARM_FW_REG(0);
    public static ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1 => KVM_REG_ARM_FW_REG(1);
    public static ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2 => KVM_REG_ARM_FW_REG(2);
    public static ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3 => KVM_REG_ARM_FW_REG(3);
    public static ulong KVM_REG_ARM_STD_BMAP => KVM_REG_ARM_FW_FEAT_BMAP_REG(0);
    public static ulong KVM_REG_ARM_STD_HYP_BMAP => KVM_REG_ARM_FW_FEAT_BMAP_REG(1);
    public static ulong KVM_REG_ARM_VENDOR_HYP_BMAP => KVM_REG_ARM_FW_FEAT_BMAP_REG(2);
    public static ulong KVM_REG_ARM_VENDOR_HYP_BMAP_2 => KVM_REG_ARM_FW_FEAT_BMAP_REG(3);

    /// <summary>KVM_REG_FEATURE_LEVEL_WIDTH 4: the level part of a workaround register (KVM_REG_FEATURE_LEVEL_MASK).</summary>
    public const ulong KVM_REG_FEATURE_LEVEL_MASK = 0xf;

    // KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1 levels.
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1_NOT_AVAIL = 0;
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1_AVAIL = 1;
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1_NOT_REQUIRED = 2;

    // KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2 levels and its ENABLED bit.
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_AVAIL = 0;
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_UNKNOWN = 1;
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_AVAIL = 2;
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_REQUIRED = 3;
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_ENABLED = 1UL << 4;

    // KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3 levels.
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3_NOT_AVAIL = 0;
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3_AVAIL = 1;
    public const ulong KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3_NOT_REQUIRED = 2;

    // Bits of the bitmap registers (enum kvm_smccc_*_bit ... in asm/kvm.h).
    public const int KVM_REG_ARM_STD_BIT_TRNG_V1_0 = 0;
    public const int KVM_REG_ARM_STD_HYP_BIT_PV_TIME = 0;
    public const int KVM_REG_ARM_VENDOR_HYP_BIT_FUNC_FEAT = 0;
    public const int KVM_REG_ARM_VENDOR_HYP_BIT_PTP = 1;
    public const int KVM_REG_ARM_VENDOR_HYP_BIT_DISCOVER_IMPL_VER = 0;
    public const int KVM_REG_ARM_VENDOR_HYP_BIT_DISCOVER_IMPL_CPUS = 1;

    // include/kvm/arm_psci.h: KVM_ARM_PSCI_x_y = PSCI_VERSION(x, y) = (x << 16) | y, the values of KVM_REG_ARM_PSCI_VERSION.
    public const ulong KVM_ARM_PSCI_0_1 = 1;
    public const ulong KVM_ARM_PSCI_0_2 = 2;
    public const ulong KVM_ARM_PSCI_1_0 = 0x1_0000;
    public const ulong KVM_ARM_PSCI_1_1 = 0x1_0001;
}
