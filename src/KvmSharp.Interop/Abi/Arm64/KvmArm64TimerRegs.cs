// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>
/// arm64 generic-timer registers of KVM_GET/SET_ONE_REG (arch/arm64/include/uapi/asm/kvm.h). "KVM_REG_ARM_TIMER_CVAL and
/// KVM_REG_ARM_TIMER_CNT are not defined with the appropriate register encodings. Their values have been accidentally
/// swapped. As this is set API, the definitions here must be used": TIMER_CVAL is CNTVCT_EL0's encoding (3,3,14,0,2),
/// TIMER_CNT is CNTV_CVAL_EL0's (3,3,14,3,2).
/// </summary>
public static class KvmArm64TimerRegs
{
    public static ulong KVM_REG_ARM_TIMER_CTL => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 3, 1);
    public static ulong KVM_REG_ARM_TIMER_CVAL => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 0, 2);
    public static ulong KVM_REG_ARM_TIMER_CNT => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 3, 2);
    public static ulong KVM_REG_ARM_PTIMER_CTL => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 2, 1);
    public static ulong KVM_REG_ARM_PTIMER_CVAL => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 2, 2);
    public static ulong KVM_REG_ARM_PTIMER_CNT => KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 0, 1);

    // include/clocksource/arm_arch_timer.h CNT*_CTL_EL0 bits.
    public const ulong ARCH_TIMER_CTRL_ENABLE = 1UL << 0;
    public const ulong ARCH_TIMER_CTRL_IT_MASK = 1UL << 1;
    public const ulong ARCH_TIMER_CTRL_IT_STAT = 1UL << 2;
}
