// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>What a trapped HVC asks of KVM_RUN.</summary>
internal enum HvcResult
{
    /// <summary>Handled in the kernel (x0 holds the result); re-enter the guest.</summary>
    Continue,

    /// <summary>KVM_EXIT_SYSTEM_EVENT of the returned event type, every vCPU stopped.</summary>
    SystemEvent,
}

/// <summary>
/// HVC handling for the PSCI subset a small guest uses: arch/arm64/kvm/handle_exit.c handle_hvc →
/// arch/arm64/kvm/hypercalls.c kvm_smccc_call_handler → arch/arm64/kvm/psci.c kvm_psci_call. With
/// KVM_ARM_VCPU_PSCI_0_2 the VM speaks the version of KVM_REG_ARM_PSCI_VERSION (default KVM_ARM_PSCI_LATEST, 1.1;
/// Arm64FwRegs): kvm_psci_call dispatches on it to kvm_psci_1_x_call (PSCI_VERSION answers 1.0 or 1.1, PSCI_FEATURES
/// exists) or kvm_psci_0_2_call (PSCI_VERSION answers 0.2, PSCI_FEATURES is NOT_SUPPORTED). Without the feature PSCI
/// 0.1, whose KVM-specific function ids a guest must learn from firmware tables: every standard id then answers
/// NOT_SUPPORTED.
/// </summary>
internal static class Psci
{
    public const uint PSCI_0_2_FN_PSCI_VERSION = 0x8400_0000;
    public const uint PSCI_0_2_FN_SYSTEM_OFF = 0x8400_0008;
    public const uint PSCI_0_2_FN_SYSTEM_RESET = 0x8400_0009;
    public const uint PSCI_1_0_FN_PSCI_FEATURES = 0x8400_000A;

    /// <summary>PSCI_RET_NOT_SUPPORTED / SMCCC_RET_NOT_SUPPORTED (-1).</summary>
    public const ulong NotSupported = unchecked((ulong)-1L);

    public const uint EventShutdown = Abi.Arm64.KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN;
    public const uint EventReset = Abi.Arm64.KvmArm64Constants.KVM_SYSTEM_EVENT_RESET;

    /// <summary>Handles the HVC in x0..x3; <paramref name="eventType"/> is set for <see cref="HvcResult.SystemEvent"/>.</summary>
    public static HvcResult Call(Arm64Cpu cpu, ulong version, out uint eventType)
    {
        eventType = 0;
        // SMCCC: the function id is w0; a 64-bit call (bit 30) keeps the same PSCI semantics for these ids.
        uint fn = (uint)cpu.X[0];
        if (version == Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_0_1)
        {
            // kvm_psci_0_1_call: only KVM_PSCI_FN_CPU_OFF/CPU_ON (0x95c1ba5e…); anything else → NOT_SUPPORTED.
            cpu.X[0] = NotSupported;
            return HvcResult.Continue;
        }
        switch (fn)
        {
            case PSCI_0_2_FN_PSCI_VERSION:
                // kvm_psci_0_2_call: KVM_ARM_PSCI_0_2; kvm_psci_1_x_call: "minor == 0 ? KVM_ARM_PSCI_1_0 : KVM_ARM_PSCI_1_1".
                cpu.X[0] = version;
                return HvcResult.Continue;
            case PSCI_0_2_FN_SYSTEM_OFF:
                // kvm_psci_system_off → kvm_prepare_system_event(vcpu, KVM_SYSTEM_EVENT_SHUTDOWN, 0): every vCPU is
                // made KVM_MP_STATE_STOPPED; x0 is left as it was ("the guest can't tell").
                eventType = EventShutdown;
                return HvcResult.SystemEvent;
            case PSCI_0_2_FN_SYSTEM_RESET:
                eventType = EventReset;
                return HvcResult.SystemEvent;
            case PSCI_1_0_FN_PSCI_FEATURES when version >= Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_1_0:
            {
                uint feature = (uint)cpu.X[1];
                cpu.X[0] = feature is PSCI_0_2_FN_PSCI_VERSION or PSCI_0_2_FN_SYSTEM_OFF or PSCI_0_2_FN_SYSTEM_RESET or PSCI_1_0_FN_PSCI_FEATURES
                    ? 0UL
                    : NotSupported;
                return HvcResult.Continue;
            }
            default:
                // Not modelled here (CPU_ON/OFF, SUSPEND, AFFINITY_INFO, SMCCC arch/vendor calls): NOT_SUPPORTED.
                cpu.X[0] = NotSupported;
                return HvcResult.Continue;
        }
    }
}
