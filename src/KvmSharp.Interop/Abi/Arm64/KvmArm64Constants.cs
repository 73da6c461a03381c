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

    /// <summary>linux/kvm.h: exit reason for a data abort without a valid syndrome (KVM_CAP_ARM_NISV_TO_USER).</summary>
    public const uint KVM_EXIT_ARM_NISV = 28;
}
