// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>
/// KVM_GET/SET_ONE_REG ids for arm64 core registers, built as include/uapi/linux/kvm.h and asm/kvm.h do:
/// <c>KVM_REG_ARM64 | KVM_REG_SIZE_* | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(name)</c>, where
/// KVM_REG_ARM_CORE_REG is the field's offset in <c>struct kvm_regs</c> in 32-bit words.
/// </summary>
public static class KvmArm64Regs
{
    public const ulong KVM_REG_ARCH_MASK = 0xff00000000000000;
    public const ulong KVM_REG_ARM64 = 0x6000000000000000;
    public const int KVM_REG_SIZE_SHIFT = 52;
    public const ulong KVM_REG_SIZE_MASK = 0x00f0000000000000;
    public const ulong KVM_REG_SIZE_U32 = 0x0020000000000000;
    public const ulong KVM_REG_SIZE_U64 = 0x0030000000000000;
    public const ulong KVM_REG_SIZE_U128 = 0x0040000000000000;
    public const ulong KVM_REG_ARM_COPROC_MASK = 0x000000000FFF0000;
    public const int KVM_REG_ARM_COPROC_SHIFT = 16;
    public const ulong KVM_REG_ARM_CORE = 0x0010UL << KVM_REG_ARM_COPROC_SHIFT;

    /// <summary>KVM_REG_SIZE(id): 1 &lt;&lt; ((id &amp; KVM_REG_SIZE_MASK) &gt;&gt; KVM_REG_SIZE_SHIFT) bytes.</summary>
    public static int KVM_REG_SIZE(ulong id) => 1 << (int)((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);

    /// <summary>sizeof(struct kvm_regs): user_pt_regs (34 × u64), sp_el1, elr_el1, spsr[5], then user_fpsimd_state at 336.</summary>
    public const int KvmRegsSize = 864;

    // Byte offsets inside struct kvm_regs (offsetof).
    public const int OffsetSp = 31 * 8;
    public const int OffsetPc = 32 * 8;
    public const int OffsetPstate = 33 * 8;
    public const int OffsetSpEl1 = 34 * 8;
    public const int OffsetElrEl1 = 35 * 8;
    public const int OffsetSpsr = 36 * 8;
    /// <summary>fp_regs: struct user_fpsimd_state is 16-byte aligned, so 328 rounds up to 336.</summary>
    public const int OffsetVregs = 336;
    public const int OffsetFpsr = OffsetVregs + 32 * 16;
    public const int OffsetFpcr = OffsetFpsr + 4;

    /// <summary>KVM_REG_ARM_CORE_REG(name) = offsetof(struct kvm_regs, name) / sizeof(__u32).</summary>
    public static ulong KVM_REG_ARM_CORE_REG(int byteOffset) => (ulong)(byteOffset / sizeof(uint));

    /// <summary>The id of a 64-bit core register at <paramref name="byteOffset"/> of struct kvm_regs (selftests' ARM64_CORE_REG).</summary>
    public static ulong ARM64_CORE_REG(int byteOffset) =>
        KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(byteOffset);

    /// <summary>regs.regs[n], n in 0..30.</summary>
    public static ulong X(int n) =>
        n is >= 0 and <= 30 ? ARM64_CORE_REG(n * 8) : throw new ArgumentOutOfRangeException(nameof(n), n, "x0..x30");

    /// <summary>regs.sp: SP_EL0.</summary>
    public static ulong Sp => ARM64_CORE_REG(OffsetSp);

    public static ulong Pc => ARM64_CORE_REG(OffsetPc);

    public static ulong Pstate => ARM64_CORE_REG(OffsetPstate);

    public static ulong SpEl1 => ARM64_CORE_REG(OffsetSpEl1);

    public static ulong ElrEl1 => ARM64_CORE_REG(OffsetElrEl1);

    /// <summary>spsr[KVM_SPSR_EL1]: SPSR_EL1.</summary>
    public static ulong SpsrEl1 => ARM64_CORE_REG(OffsetSpsr);
}
