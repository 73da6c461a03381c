// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi.Arm64;

/// <summary>
/// The arm64 vCPU device-attribute groups and attributes (arch/arm64/include/uapi/asm/kvm.h "Device Control API on
/// vcpu fd"; Documentation/virt/kvm/devices/vcpu.rst), taken by KVM_SET/GET/HAS_DEVICE_ATTR on a vCPU descriptor, and
/// the event-filter actions of <see cref="kvm_pmu_event_filter"/>.
/// </summary>
public static class KvmArm64VcpuAttrs
{
    public const uint KVM_ARM_VCPU_PMU_V3_CTRL = 0;
    public const ulong KVM_ARM_VCPU_PMU_V3_IRQ = 0;
    public const ulong KVM_ARM_VCPU_PMU_V3_INIT = 1;
    public const ulong KVM_ARM_VCPU_PMU_V3_FILTER = 2;
    public const ulong KVM_ARM_VCPU_PMU_V3_SET_PMU = 3;
    public const ulong KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS = 4;

    public const uint KVM_ARM_VCPU_TIMER_CTRL = 1;
    public const ulong KVM_ARM_VCPU_TIMER_IRQ_VTIMER = 0;
    public const ulong KVM_ARM_VCPU_TIMER_IRQ_PTIMER = 1;
    public const ulong KVM_ARM_VCPU_TIMER_IRQ_HVTIMER = 2;
    public const ulong KVM_ARM_VCPU_TIMER_IRQ_HPTIMER = 3;

    public const uint KVM_ARM_VCPU_PVTIME_CTRL = 2;
    public const ulong KVM_ARM_VCPU_PVTIME_IPA = 0;

    /// <summary>kvm_pmu_event_filter.action: the events of the range may be counted.</summary>
    public const byte KVM_PMU_EVENT_ALLOW = 0;

    /// <summary>kvm_pmu_event_filter.action: the events of the range are not counted.</summary>
    public const byte KVM_PMU_EVENT_DENY = 1;
}

/// <summary>
/// arch/arm64/include/uapi/asm/kvm.h <c>struct kvm_pmu_event_filter { __u16 base_event; __u16 nevents; __u8 action;
/// __u8 pad[3]; }</c>, 8 bytes: the value of KVM_ARM_VCPU_PMU_V3_FILTER.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_pmu_event_filter
{
    public ushort base_event;
    public ushort nevents;
    public byte action;
    /// <summary>__u8 pad[3].</summary>
    public U8x3 pad;
}

/// <summary>
/// KVM_GET/SET_ONE_REG ids of DISR_EL1 and the AArch32 EL2 shadow registers DACR32_EL2, IFSR32_EL2 and FPEXC32_EL2
/// (arch/arm64/kvm/sys_regs.c sys_reg_descs[]; encodings from arch/arm64/tools/sysreg).
/// </summary>
public static class KvmArm64ShadowRegs
{
    public static ulong DISR_EL1 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 12, 1, 1);
    public static ulong DACR32_EL2 => KvmArm64SysRegs.ARM64_SYS_REG(3, 4, 3, 0, 0);
    public static ulong IFSR32_EL2 => KvmArm64SysRegs.ARM64_SYS_REG(3, 4, 5, 0, 1);
    public static ulong FPEXC32_EL2 => KvmArm64SysRegs.ARM64_SYS_REG(3, 4, 5, 3, 0);
}
