// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>arm64 uAPI constants: targets, vCPU features, PSTATE modes, system events (asm/kvm.h, linux/kvm.h).</summary>
public static class KvmArm64Constants
{
    /// <summary>asm/kvm.h: the only target modern KVM answers to KVM_ARM_PREFERRED_TARGET.</summary>
    public const uint KVM_ARM_TARGET_GENERIC_V8 = 5;

    // asm/kvm.h feature bits of kvm_vcpu_init.features[0].
    public const int KVM_ARM_VCPU_POWER_OFF = 0;
    public const int KVM_ARM_VCPU_EL1_32BIT = 1;
    public const int KVM_ARM_VCPU_PSCI_0_2 = 2;
    public const int KVM_ARM_VCPU_PMU_V3 = 3;
    public const int KVM_ARM_VCPU_SVE = 4;
    public const int KVM_ARM_VCPU_PTRAUTH_ADDRESS = 5;
    public const int KVM_ARM_VCPU_PTRAUTH_GENERIC = 6;
    public const int KVM_ARM_VCPU_HAS_EL2 = 7;
    public const int KVM_ARM_VCPU_HAS_EL2_E2H0 = 8;

    // asm/ptrace.h PSTATE fields.
    public const ulong PSR_MODE_EL0t = 0x0;
    public const ulong PSR_MODE_EL1t = 0x4;
    public const ulong PSR_MODE_EL1h = 0x5;
    public const ulong PSR_F_BIT = 0x40;
    public const ulong PSR_I_BIT = 0x80;
    public const ulong PSR_A_BIT = 0x100;
    public const ulong PSR_D_BIT = 0x200;

    /// <summary>linux/kvm.h kvm_run.system_event.type values.</summary>
    public const uint KVM_SYSTEM_EVENT_SHUTDOWN = 1;
    public const uint KVM_SYSTEM_EVENT_RESET = 2;
    public const uint KVM_SYSTEM_EVENT_CRASH = 3;

    /// <summary>linux/kvm.h: a KVM_MP_STATE_SUSPENDED vCPU has a wakeup event (arm.c kvm_vcpu_suspend).</summary>
    public const uint KVM_SYSTEM_EVENT_WAKEUP = 4;

    /// <summary>linux/kvm.h: the guest called PSCI SYSTEM_SUSPEND on a VM with KVM_CAP_ARM_SYSTEM_SUSPEND enabled.</summary>
    public const uint KVM_SYSTEM_EVENT_SUSPEND = 5;

    /// <summary>
    /// asm/kvm.h "#define KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2 (1ULL &lt;&lt; 0)": system_event.data[0] of a
    /// KVM_SYSTEM_EVENT_RESET that came from PSCI 1.1 SYSTEM_RESET2 (the reset type and cookie are in x1/x2).
    /// </summary>
    public const ulong KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2 = 1UL << 0;

    /// <summary>linux/kvm.h "#define KVM_CAP_ARM_SYSTEM_SUSPEND 216": PSCI SYSTEM_SUSPEND exits to userspace once enabled.</summary>
    public const int KVM_CAP_ARM_SYSTEM_SUSPEND = 216;

    /// <summary>linux/kvm.h: exit reason for a data abort without a valid syndrome (KVM_CAP_ARM_NISV_TO_USER).</summary>
    public const uint KVM_EXIT_ARM_NISV = 28;

    /// <summary>
    /// linux/kvm.h "#define KVM_CAP_ARM_NISV_TO_USER 177": once enabled on the VM, a data abort on MMIO without a valid
    /// syndrome (ESR_EL2.ISV = 0) exits with <see cref="KVM_EXIT_ARM_NISV"/> instead of failing KVM_RUN with ENOSYS.
    /// </summary>
    public const int KVM_CAP_ARM_NISV_TO_USER = 177;
}
