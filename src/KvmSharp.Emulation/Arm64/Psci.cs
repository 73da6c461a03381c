// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// PSCI as arch/arm64/kvm/psci.c kvm_psci_call answers it (6.18), reached from <see cref="Smccc.Call"/> for every id
/// the SMCCC handler does not answer itself. With KVM_ARM_VCPU_PSCI_0_2 the VM speaks the version of
/// KVM_REG_ARM_PSCI_VERSION (default 1.1 here; Arm64FwRegs): kvm_psci_1_x_call (PSCI_VERSION answers 1.0 or 1.1,
/// PSCI_FEATURES exists) falls back to kvm_psci_0_2_call (PSCI_VERSION 0.2, PSCI_FEATURES NOT_SUPPORTED). Without the
/// feature PSCI 0.1, whose only calls are KVM's own CPU_OFF/CPU_ON ids (0x95c1ba5e + n). The vCPU power calls
/// (CPU_ON, CPU_OFF, AFFINITY_INFO, CPU_SUSPEND) are <see cref="Arm64PsciPower"/>.
/// </summary>
internal static class Psci
{
    public const uint PSCI_0_2_FN_PSCI_VERSION = 0x8400_0000;
    public const uint PSCI_0_2_FN_CPU_SUSPEND = 0x8400_0001;
    public const uint PSCI_0_2_FN_CPU_OFF = 0x8400_0002;
    public const uint PSCI_0_2_FN_CPU_ON = 0x8400_0003;
    public const uint PSCI_0_2_FN_AFFINITY_INFO = 0x8400_0004;
    public const uint PSCI_0_2_FN_MIGRATE_INFO_TYPE = 0x8400_0006;
    public const uint PSCI_0_2_FN_SYSTEM_OFF = 0x8400_0008;
    public const uint PSCI_0_2_FN_SYSTEM_RESET = 0x8400_0009;
    public const uint PSCI_1_0_FN_PSCI_FEATURES = 0x8400_000A;

    /// <summary>PSCI_0_2_FN64_BASE: the SMC64 ids (PSCI_0_2_64BIT = 0x40000000 set).</summary>
    public const uint PSCI_0_2_FN64_CPU_SUSPEND = 0xC400_0001;
    public const uint PSCI_0_2_FN64_CPU_ON = 0xC400_0003;
    public const uint PSCI_0_2_FN64_AFFINITY_INFO = 0xC400_0004;

    /// <summary>KVM_PSCI_FN_BASE (arch/arm64/include/uapi/asm/kvm.h): PSCI 0.1's KVM_PSCI_FN(n) = base + n.</summary>
    public const uint KVM_PSCI_FN_BASE = 0x95c1_ba5e;
    public const uint KVM_PSCI_FN_CPU_OFF = KVM_PSCI_FN_BASE + 1;
    public const uint KVM_PSCI_FN_CPU_ON = KVM_PSCI_FN_BASE + 2;

    /// <summary>PSCI_RET_NOT_SUPPORTED / SMCCC_RET_NOT_SUPPORTED (-1).</summary>
    public const ulong NotSupported = unchecked((ulong)-1L);

    public const ulong PSCI_RET_SUCCESS = 0;
    public const ulong PSCI_RET_INVALID_PARAMS = unchecked((ulong)-2L);
    public const ulong PSCI_RET_ALREADY_ON = unchecked((ulong)-4L);

    /// <summary>PSCI_0_2_TOS_MP: "Trusted OS is MP hence does not require migration or Trusted OS is not present".</summary>
    public const ulong PSCI_0_2_TOS_MP = 2;

    public const uint EventShutdown = Abi.Arm64.KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN;
    public const uint EventReset = Abi.Arm64.KvmArm64Constants.KVM_SYSTEM_EVENT_RESET;

    /// <summary>kvm_psci_call on a vCPU: the power calls need the VM's vCPUs, the rest only the registers.</summary>
    public static HvcResult Call(KvmVcpu vcpu, Arm64VcpuState state, out uint eventType)
    {
        bool psci02 = (state.Features & (1u << Abi.Arm64.KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2)) != 0;
        var fw = Arm64VmState.Of(vcpu.Kvm).Firmware;
        ulong version;
        lock (fw) version = Arm64FwRegs.PsciVersion(fw, psci02);
        if (Arm64PsciPower.TryCall(vcpu, state, version) is HvcResult power)
        {
            eventType = 0;
            return power;
        }
        return Call(state.Cpu, version, out eventType);
    }

    /// <summary>The register-only PSCI calls; <paramref name="eventType"/> is set for <see cref="HvcResult.SystemEvent"/>.</summary>
    public static HvcResult Call(Arm64Cpu cpu, ulong version, out uint eventType)
    {
        eventType = 0;
        // SMCCC: the function id is w0; a 64-bit call (bit 30) keeps the same PSCI semantics for these ids.
        uint fn = (uint)cpu.X[0];
        if (version == Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_0_1)
        {
            // kvm_psci_0_1_call: only KVM_PSCI_FN_CPU_OFF/CPU_ON (Arm64PsciPower); anything else → NOT_SUPPORTED.
            Smccc.SetRetval(cpu, [NotSupported, 0, 0, 0]);
            return HvcResult.Continue;
        }
        switch (fn)
        {
            case PSCI_0_2_FN_PSCI_VERSION:
                // kvm_psci_0_2_call: KVM_ARM_PSCI_0_2; kvm_psci_1_x_call: "minor == 0 ? KVM_ARM_PSCI_1_0 : KVM_ARM_PSCI_1_1".
                Smccc.SetRetval(cpu, [version, 0, 0, 0]);
                return HvcResult.Continue;
            case PSCI_0_2_FN_MIGRATE_INFO_TYPE:
                Smccc.SetRetval(cpu, [PSCI_0_2_TOS_MP, 0, 0, 0]);
                return HvcResult.Continue;
            case PSCI_0_2_FN_SYSTEM_OFF:
                // kvm_psci_system_off → kvm_prepare_system_event(vcpu, KVM_SYSTEM_EVENT_SHUTDOWN, 0): every vCPU is
                // made KVM_MP_STATE_STOPPED; x0 is left as it was here (upstream preloads PSCI_RET_INTERNAL_FAILURE
                // [gap: kept as before this dispatcher]).
                eventType = EventShutdown;
                return HvcResult.SystemEvent;
            case PSCI_0_2_FN_SYSTEM_RESET:
                eventType = EventReset;
                return HvcResult.SystemEvent;
            case PSCI_1_0_FN_PSCI_FEATURES when version >= Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_1_0:
            {
                // kvm_psci_1_x_call PSCI_FEATURES: the 0.2 calls KVM implements and SMCCC_VERSION answer 0.
                // SYSTEM_SUSPEND (KVM_CAP_ARM_SYSTEM_SUSPEND) and SYSTEM_RESET2 are not modelled: NOT_SUPPORTED [gap].
                uint feature = (uint)cpu.X[1];
                ulong answer = feature is PSCI_0_2_FN_PSCI_VERSION or PSCI_0_2_FN_CPU_SUSPEND or PSCI_0_2_FN64_CPU_SUSPEND
                    or PSCI_0_2_FN_CPU_OFF or PSCI_0_2_FN_CPU_ON or PSCI_0_2_FN64_CPU_ON or PSCI_0_2_FN_AFFINITY_INFO
                    or PSCI_0_2_FN64_AFFINITY_INFO or PSCI_0_2_FN_MIGRATE_INFO_TYPE or PSCI_0_2_FN_SYSTEM_OFF
                    or PSCI_0_2_FN_SYSTEM_RESET or PSCI_1_0_FN_PSCI_FEATURES or Smccc.ARM_SMCCC_VERSION_FUNC_ID
                    ? 0UL
                    : NotSupported;
                Smccc.SetRetval(cpu, [answer, 0, 0, 0]);
                return HvcResult.Continue;
            }
            default:
                Smccc.SetRetval(cpu, [NotSupported, 0, 0, 0]);
                return HvcResult.Continue;
        }
    }
}
