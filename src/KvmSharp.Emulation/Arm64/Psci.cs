// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// PSCI as arch/arm64/kvm/psci.c kvm_psci_call answers it (6.18), reached from <see cref="Smccc.Call"/> for every id
/// the SMCCC handler does not answer itself. With KVM_ARM_VCPU_PSCI_0_2 the VM speaks the version of
/// KVM_REG_ARM_PSCI_VERSION (default 1.1 here; Arm64FwRegs): kvm_psci_1_x_call (PSCI_VERSION answers 1.0 or 1.1,
/// PSCI_FEATURES exists) falls back to kvm_psci_0_2_call (PSCI_VERSION 0.2, PSCI_FEATURES NOT_SUPPORTED). Without the
/// feature PSCI 0.1, whose only calls are KVM's own CPU_OFF/CPU_ON ids (0x95c1ba5e + n). The vCPU power calls
/// (CPU_ON, CPU_OFF, AFFINITY_INFO, CPU_SUSPEND) are <see cref="Arm64PsciPower"/>; the system calls (SYSTEM_OFF,
/// SYSTEM_RESET, 1.1's SYSTEM_RESET2, 1.0's SYSTEM_SUSPEND behind KVM_CAP_ARM_SYSTEM_SUSPEND) are here. PSCI 1.2/1.3
/// (SYSTEM_OFF2) are not modelled: KVM_REG_ARM_PSCI_VERSION tops out at 1.1 in Arm64FwRegs.
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
    public const uint PSCI_1_0_FN_SYSTEM_SUSPEND = 0x8400_000E;
    public const uint PSCI_1_1_FN_SYSTEM_RESET2 = 0x8400_0012;

    /// <summary>PSCI_0_2_FN64_BASE: the SMC64 ids (PSCI_0_2_64BIT = 0x40000000 set).</summary>
    public const uint PSCI_0_2_FN64_CPU_SUSPEND = 0xC400_0001;
    public const uint PSCI_0_2_FN64_CPU_ON = 0xC400_0003;
    public const uint PSCI_0_2_FN64_AFFINITY_INFO = 0xC400_0004;
    public const uint PSCI_1_0_FN64_SYSTEM_SUSPEND = 0xC400_000E;
    public const uint PSCI_1_1_FN64_SYSTEM_RESET2 = 0xC400_0012;

    /// <summary>include/uapi/linux/psci.h PSCI_1_1_RESET_TYPE_SYSTEM_WARM_RESET (0) and PSCI_1_1_RESET_TYPE_VENDOR_START.</summary>
    public const uint PSCI_1_1_RESET_TYPE_SYSTEM_WARM_RESET = 0;
    public const uint PSCI_1_1_RESET_TYPE_VENDOR_START = 0x8000_0000;

    /// <summary>KVM_PSCI_FN_BASE (arch/arm64/include/uapi/asm/kvm.h): PSCI 0.1's KVM_PSCI_FN(n) = base + n.</summary>
    public const uint KVM_PSCI_FN_BASE = 0x95c1_ba5e;
    public const uint KVM_PSCI_FN_CPU_OFF = KVM_PSCI_FN_BASE + 1;
    public const uint KVM_PSCI_FN_CPU_ON = KVM_PSCI_FN_BASE + 2;

    /// <summary>PSCI_RET_NOT_SUPPORTED / SMCCC_RET_NOT_SUPPORTED (-1).</summary>
    public const ulong NotSupported = unchecked((ulong)-1L);

    public const ulong PSCI_RET_SUCCESS = 0;
    public const ulong PSCI_RET_INVALID_PARAMS = unchecked((ulong)-2L);
    public const ulong PSCI_RET_ALREADY_ON = unchecked((ulong)-4L);
    public const ulong PSCI_RET_INTERNAL_FAILURE = unchecked((ulong)-6L);

    /// <summary>PSCI_0_2_TOS_MP: "Trusted OS is MP hence does not require migration or Trusted OS is not present".</summary>
    public const ulong PSCI_0_2_TOS_MP = 2;

    private static readonly Arm64SystemEvent Shutdown = new(Abi.Arm64.KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, 0);
    private static readonly Arm64SystemEvent Reset = new(Abi.Arm64.KvmArm64Constants.KVM_SYSTEM_EVENT_RESET, 0);
    private static readonly Arm64SystemEvent Reset2 =
        new(Abi.Arm64.KvmArm64Constants.KVM_SYSTEM_EVENT_RESET, Abi.Arm64.KvmArm64Constants.KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2);

    /// <summary>kvm_psci_call on a vCPU: the power calls need the VM's vCPUs, the rest only the registers.</summary>
    public static HvcResult Call(KvmVcpu vcpu, Arm64VcpuState state, out Arm64SystemEvent systemEvent)
    {
        bool psci02 = (state.Features & (1u << Abi.Arm64.KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2)) != 0;
        var vm = Arm64VmState.Of(vcpu.Kvm);
        ulong version;
        lock (vm.Firmware) version = Arm64FwRegs.PsciVersion(vm.Firmware, psci02);
        if (Arm64PsciPower.TryCall(vcpu, state, version) is HvcResult power)
        {
            systemEvent = default;
            return power;
        }
        return Call(state.Cpu, version, out systemEvent, vm.SystemSuspendEnabled);
    }

    /// <summary>
    /// The register-only PSCI calls; <paramref name="systemEvent"/> is set for <see cref="HvcResult.SystemEvent"/>.
    /// <paramref name="systemSuspend"/>: KVM_ARCH_FLAG_SYSTEM_SUSPEND_ENABLED of the VM.
    /// </summary>
    public static HvcResult Call(Arm64Cpu cpu, ulong version, out Arm64SystemEvent systemEvent, bool systemSuspend = false)
    {
        systemEvent = default;
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
                // kvm_psci_0_2_call: kvm_psci_system_off → kvm_prepare_system_event(vcpu, KVM_SYSTEM_EVENT_SHUTDOWN, 0)
                // (every vCPU STOPPED), then "we preload r0 (or x0) with PSCI return value INTERNAL_FAILURE" so a
                // guest resumed by userspace sees the failure: smccc_set_retval(INTERNAL_FAILURE, 0, 0, 0).
                Smccc.SetRetval(cpu, [PSCI_RET_INTERNAL_FAILURE, 0, 0, 0]);
                systemEvent = Shutdown;
                return HvcResult.SystemEvent;
            case PSCI_0_2_FN_SYSTEM_RESET:
                // "Same reason as SYSTEM_OFF for preloading r0 (or x0) with PSCI return value INTERNAL_FAILURE."
                Smccc.SetRetval(cpu, [PSCI_RET_INTERNAL_FAILURE, 0, 0, 0]);
                systemEvent = Reset;
                return HvcResult.SystemEvent;
            case PSCI_1_0_FN_PSCI_FEATURES when version >= Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_1_0:
            {
                // kvm_psci_1_x_call PSCI_FEATURES: the 0.2 calls KVM implements and SMCCC_VERSION answer 0;
                // SYSTEM_SUSPEND only with KVM_ARCH_FLAG_SYSTEM_SUSPEND_ENABLED, SYSTEM_RESET2 only for PSCI 1.1
                // ("if (minor >= 1) val = 0"); anything else NOT_SUPPORTED. The argument is a u32 (arg = x1).
                uint feature = (uint)cpu.X[1];
                bool supported = feature switch
                {
                    PSCI_0_2_FN_PSCI_VERSION or PSCI_0_2_FN_CPU_SUSPEND or PSCI_0_2_FN64_CPU_SUSPEND or PSCI_0_2_FN_CPU_OFF
                        or PSCI_0_2_FN_CPU_ON or PSCI_0_2_FN64_CPU_ON or PSCI_0_2_FN_AFFINITY_INFO or PSCI_0_2_FN64_AFFINITY_INFO
                        or PSCI_0_2_FN_MIGRATE_INFO_TYPE or PSCI_0_2_FN_SYSTEM_OFF or PSCI_0_2_FN_SYSTEM_RESET
                        or PSCI_1_0_FN_PSCI_FEATURES or Smccc.ARM_SMCCC_VERSION_FUNC_ID => true,
                    PSCI_1_0_FN_SYSTEM_SUSPEND or PSCI_1_0_FN64_SYSTEM_SUSPEND => systemSuspend,
                    PSCI_1_1_FN_SYSTEM_RESET2 or PSCI_1_1_FN64_SYSTEM_RESET2 => version >= Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_1_1,
                    _ => false,
                };
                Smccc.SetRetval(cpu, [supported ? 0UL : NotSupported, 0, 0, 0]);
                return HvcResult.Continue;
            }
            case PSCI_1_0_FN_SYSTEM_SUSPEND or PSCI_1_0_FN64_SYSTEM_SUSPEND when version >= Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_1_0:
                // kvm_psci_1_x_call: the SMC32 id narrows x1..x3 first (kvm_psci_narrow_to_32bit); with
                // KVM_ARCH_FLAG_SYSTEM_SUSPEND_ENABLED, kvm_psci_system_suspend: "Return directly to userspace without
                // changing the vCPU's registers" — KVM_SYSTEM_EVENT_SUSPEND (system_event zeroed, ndata 0), no vCPU
                // stopped. Without the flag: NOT_SUPPORTED.
                if (fn == PSCI_1_0_FN_SYSTEM_SUSPEND) NarrowTo32Bit(cpu);
                if (systemSuspend) return HvcResult.SystemSuspend;
                Smccc.SetRetval(cpu, [NotSupported, 0, 0, 0]);
                return HvcResult.Continue;
            case PSCI_1_1_FN_SYSTEM_RESET2 or PSCI_1_1_FN64_SYSTEM_RESET2 when version >= Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_1_0:
            {
                if (fn == PSCI_1_1_FN_SYSTEM_RESET2) NarrowTo32Bit(cpu);
                // PSCI 1.0: "if (minor >= 1)" fails → NOT_SUPPORTED.
                if (version < Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_1_1)
                {
                    Smccc.SetRetval(cpu, [NotSupported, 0, 0, 0]);
                    return HvcResult.Continue;
                }
                // "arg = smccc_get_arg1(vcpu)" (a u32: the reset type); "if (arg <= PSCI_1_1_RESET_TYPE_SYSTEM_WARM_RESET
                // || arg >= PSCI_1_1_RESET_TYPE_VENDOR_START)": kvm_psci_system_reset2 (KVM_SYSTEM_EVENT_RESET with
                // data[0] = KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2, every vCPU STOPPED) and only x0 =
                // INTERNAL_FAILURE (vcpu_set_reg: x1/x2 keep the type and cookie for userspace); else INVALID_PARAMS.
                // The cookie (x2) is not checked.
                uint type = (uint)cpu.X[1];
                if (type <= PSCI_1_1_RESET_TYPE_SYSTEM_WARM_RESET || type >= PSCI_1_1_RESET_TYPE_VENDOR_START)
                {
                    cpu.X[0] = PSCI_RET_INTERNAL_FAILURE;
                    systemEvent = Reset2;
                    return HvcResult.SystemEvent;
                }
                Smccc.SetRetval(cpu, [PSCI_RET_INVALID_PARAMS, 0, 0, 0]);
                return HvcResult.Continue;
            }
            default:
                Smccc.SetRetval(cpu, [NotSupported, 0, 0, 0]);
                return HvcResult.Continue;
        }
    }

    /// <summary>kvm_psci_narrow_to_32bit: "Zero the input registers' upper 32 bits" (x1..x3, in place).</summary>
    internal static void NarrowTo32Bit(Arm64Cpu cpu)
    {
        for (int i = 1; i < 4; i++) cpu.X[i] &= 0xffff_ffff;
    }
}

/// <summary>kvm_prepare_system_event's arguments: system_event.type and data[0] (the flags).</summary>
internal readonly record struct Arm64SystemEvent(uint Type, ulong Flags);
