// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Memory;
using static KvmSharp.Abi.Arm64.KvmArm64FwRegs;
using static KvmSharp.Abi.Arm64.KvmArm64Smccc;

namespace KvmSharp.Emulation.Arm64;

/// <summary>What a trapped HVC or SMC asks of KVM_RUN.</summary>
internal enum HvcResult
{
    /// <summary>Handled in the kernel (x0..x3 hold the result); re-enter the guest.</summary>
    Continue,

    /// <summary>KVM_EXIT_SYSTEM_EVENT of the returned event type and flags, every vCPU stopped (kvm_prepare_system_event).</summary>
    SystemEvent,

    /// <summary>
    /// KVM_EXIT_SYSTEM_EVENT of type KVM_SYSTEM_EVENT_SUSPEND (psci.c kvm_psci_system_suspend): no vCPU stopped,
    /// ndata 0, the guest's registers untouched.
    /// </summary>
    SystemSuspend,

    /// <summary>KVM_EXIT_HYPERCALL prepared (kvm_prepare_hypercall_exit): return 0 to userspace.</summary>
    UserExit,

    /// <summary>x0 set; the vCPU then blocks as for WFI (PSCI CPU_SUSPEND: kvm_psci_vcpu_suspend → kvm_vcpu_wfi).</summary>
    Wfi,
}

/// <summary>
/// arch/arm64/kvm/hypercalls.c kvm_smccc_call_handler (6.18), the target of handle_hvc and handle_smc: the SMCCC
/// filter and the firmware bitmaps decide an action (kvm_smccc_get_action), then the SMCCC arch calls, PV time, the
/// KVM vendor-hypervisor calls and TRNG are answered here and everything else goes to PSCI (kvm_psci_call).
/// </summary>
internal static class Smccc
{
    // include/linux/arm-smccc.h function ids (ARM_SMCCC_CALL_VAL(type, conv, owner, num)).
    public const uint ARM_SMCCC_VERSION_FUNC_ID = 0x8000_0000;
    public const uint ARM_SMCCC_ARCH_FEATURES_FUNC_ID = 0x8000_0001;
    public const uint ARM_SMCCC_ARCH_WORKAROUND_1 = 0x8000_8000;
    public const uint ARM_SMCCC_ARCH_WORKAROUND_2 = 0x8000_7FFF;
    public const uint ARM_SMCCC_ARCH_WORKAROUND_3 = 0x8000_3FFF;
    public const uint ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID = 0x8600_FF01;
    public const uint ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID = 0x8600_0000;
    public const uint ARM_SMCCC_VENDOR_HYP_KVM_PTP_FUNC_ID = 0x8600_0001;

    /// <summary>ARM_SMCCC_VERSION_1_1 = 0x10001.</summary>
    public const ulong ARM_SMCCC_VERSION_1_1 = 0x1_0001;

    public const ulong SMCCC_RET_SUCCESS = 0;
    public const ulong SMCCC_RET_NOT_SUPPORTED = unchecked((ulong)-1L);
    public const ulong SMCCC_RET_NOT_REQUIRED = unchecked((ulong)-2L);

    /// <summary>SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED = 1.</summary>
    public const ulong SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED = 1;

    /// <summary>ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_0..3: KVM UID 28b46fb6-2ec5-11e9-a9ca-4b564d003a74.</summary>
    public static readonly ulong[] KvmUid = [0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d];

    /// <summary>
    /// kvm_smccc_call_handler for the function id in w0; <paramref name="smc"/> when the SMC conduit trapped
    /// (kvm_prepare_hypercall_exit's ESR_ELx_EC_SMC64 test).
    /// </summary>
    public static HvcResult Call(KvmVcpu vcpu, Arm64VcpuState state, bool smc, out Arm64SystemEvent systemEvent)
    {
        systemEvent = default;
        var cpu = state.Cpu;
        var vm = Arm64VmState.Of(vcpu.Kvm);
        uint fn = (uint)cpu.X[0];
        // "u64 val[4] = {SMCCC_RET_NOT_SUPPORTED};"
        Span<ulong> val = [SMCCC_RET_NOT_SUPPORTED, 0, 0, 0];
        switch (GetAction(vm, fn))
        {
            case KVM_SMCCC_FILTER_HANDLE:
                break;
            case KVM_SMCCC_FILTER_FWD_TO_USER:
                PrepareHypercallExit(vcpu, fn, smc);
                return HvcResult.UserExit;
            default:
                // KVM_SMCCC_FILTER_DENY: "goto out" with NOT_SUPPORTED.
                SetRetval(cpu, val);
                return HvcResult.Continue;
        }
        var fw = vm.Firmware;
        switch (fn)
        {
            case ARM_SMCCC_VERSION_FUNC_ID:
                val[0] = ARM_SMCCC_VERSION_1_1;
                break;
            case ARM_SMCCC_ARCH_FEATURES_FUNC_ID:
                val[0] = ArchFeatures(fw, (uint)cpu.X[1]);
                break;
            case Arm64PvTime.PvTimeFeatures:
                // kvm_hypercall_pv_features.
                val[0] = Arm64PvTime.Features(state, (uint)cpu.X[1]);
                break;
            case Arm64PvTime.PvTimeSt:
                // kvm_init_stolen_time: "if (gpa != INVALID_GPA) val[0] = gpa;".
                ulong gpa = Arm64PvTime.InitStolenTime(vcpu, state);
                if (gpa != Arm64PvTime.InvalidGpa) val[0] = gpa;
                break;
            case ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID:
                KvmUid.CopyTo(val);
                break;
            case ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID:
                lock (fw)
                {
                    val[0] = fw.VendorHypBmap;
                    // 6.16 target-implementation series: "Function numbers 2-63 are reserved for pKVM for now",
                    // val[2] = vendor_hyp_bmap_2 (functions 64..127) [recalled from the series, not re-read here].
                    val[2] = fw.VendorHypBmap2;
                }
                break;
            case ARM_SMCCC_VENDOR_HYP_KVM_PTP_FUNC_ID:
                PtpGetTime(vm, (uint)cpu.X[1], val);
                break;
            case >= Arm64Trng.Version and <= Arm64Trng.Rnd32:
            case Arm64Trng.Rnd64:
                // kvm_trng_call sets its own return values.
                Arm64Trng.Call(cpu);
                return HvcResult.Continue;
            default:
                return Psci.Call(vcpu, state, out systemEvent);
        }
        SetRetval(cpu, val);
        return HvcResult.Continue;
    }

    /// <summary>
    /// kvm_ptp_get_time: the emulated host's clocksource is the arch counter [D] (CSID_ARM_ARCH_COUNTER); x1 picks
    /// KVM_PTP_VIRT_COUNTER (0: cycles - voffset) or KVM_PTP_PHYS_COUNTER (1: cycles - poffset), anything else leaves
    /// val[] as it was (NOT_SUPPORTED); x0/x1 = upper/lower 32 bits of CLOCK_REALTIME ns, x2/x3 those of the counter.
    /// </summary>
    private static void PtpGetTime(Arm64VmState vm, uint feature, Span<ulong> val)
    {
        ulong offset;
        if (feature == 0) offset = vm.TimerOffsets.Voffset;
        else if (feature == 1) offset = vm.TimerOffsets.Poffset;
        else return;
        ulong real = (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        ulong cycles = Arm64Timer.PhysicalCounter() - offset;
        val[0] = real >> 32;
        val[1] = real & 0xffff_ffff;
        val[2] = cycles >> 32;
        val[3] = cycles & 0xffff_ffff;
    }

    /// <summary>smccc_set_retval: x0..x3.</summary>
    public static void SetRetval(Arm64Cpu cpu, ReadOnlySpan<ulong> val)
    {
        for (int i = 0; i < 4; i++) cpu.X[i] = val[i];
    }

    /// <summary>ARM_SMCCC_ARCH_FEATURES_FUNC_ID: the workaround answers from the host's Spectre state (Arm64HostCpu), PV time from the bitmap.</summary>
    private static ulong ArchFeatures(Arm64FwState fw, uint feature)
    {
        switch (feature)
        {
            case ARM_SMCCC_ARCH_WORKAROUND_1:
                return Arm64HostCpu.SpectreV2 switch
                {
                    SpectreState.Mitigated => SMCCC_RET_SUCCESS,
                    SpectreState.Unaffected => SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED,
                    _ => SMCCC_RET_NOT_SUPPORTED,
                };
            case ARM_SMCCC_ARCH_WORKAROUND_2:
                // "SSBS everywhere: Indicate no firmware support … Otherwise, expose a permanent mitigation".
                return Arm64HostCpu.SpectreV4 switch
                {
                    SpectreState.Mitigated when Arm64HostCpu.HasSsbs => SMCCC_RET_NOT_SUPPORTED,
                    SpectreState.Mitigated or SpectreState.Unaffected => SMCCC_RET_NOT_REQUIRED,
                    _ => SMCCC_RET_NOT_SUPPORTED,
                };
            case ARM_SMCCC_ARCH_WORKAROUND_3:
                return Arm64HostCpu.SpectreBhb switch
                {
                    SpectreState.Mitigated => SMCCC_RET_SUCCESS,
                    SpectreState.Unaffected => SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED,
                    _ => SMCCC_RET_NOT_SUPPORTED,
                };
            case Arm64PvTime.PvTimeFeatures:
                lock (fw) return (fw.StdHypBmap & (1UL << KVM_REG_ARM_STD_HYP_BIT_PV_TIME)) != 0 ? SMCCC_RET_SUCCESS : SMCCC_RET_NOT_SUPPORTED;
            default:
                return SMCCC_RET_NOT_SUPPORTED;
        }
    }

    /// <summary>
    /// kvm_smccc_get_action: "Intervening actions in the SMCCC filter take precedence over the pseudo-firmware
    /// register bitmaps"; then kvm_smccc_test_fw_bmap || kvm_smccc_default_allowed → HANDLE, else DENY.
    /// </summary>
    public static byte GetAction(Arm64VmState vm, uint fn)
    {
        byte action = vm.SmcccFilter.GetAction(fn);
        if (action != KVM_SMCCC_FILTER_HANDLE) return action;
        return TestFwBmap(vm.Firmware, fn) || DefaultAllowed(fn) ? KVM_SMCCC_FILTER_HANDLE : KVM_SMCCC_FILTER_DENY;
    }

    /// <summary>kvm_smccc_test_fw_bmap: the calls each bitmap bit gates; any other id is not bitmap-gated (false).</summary>
    private static bool TestFwBmap(Arm64FwState fw, uint fn)
    {
        lock (fw)
        {
            return fn switch
            {
                (>= Arm64Trng.Version and <= Arm64Trng.Rnd32) or Arm64Trng.Rnd64 => (fw.StdBmap & (1UL << KVM_REG_ARM_STD_BIT_TRNG_V1_0)) != 0,
                Arm64PvTime.PvTimeFeatures or Arm64PvTime.PvTimeSt => (fw.StdHypBmap & (1UL << KVM_REG_ARM_STD_HYP_BIT_PV_TIME)) != 0,
                ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID or ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID =>
                    (fw.VendorHypBmap & (1UL << KVM_REG_ARM_VENDOR_HYP_BIT_FUNC_FEAT)) != 0,
                ARM_SMCCC_VENDOR_HYP_KVM_PTP_FUNC_ID => (fw.VendorHypBmap & (1UL << KVM_REG_ARM_VENDOR_HYP_BIT_PTP)) != 0,
                // The DISCOVER_IMPL_VER/CPUS ids (vendor_hyp_bmap_2) are never handled in the kernel: HANDLE and DENY
                // both end in NOT_SUPPORTED for them, so they are not listed here.
                _ => false,
            };
        }
    }

    /// <summary>
    /// kvm_smccc_default_allowed: SMCCC_VERSION, ARCH_FEATURES, "PSCI 0.2 and up is in the 0:0x1f range" of the
    /// standard owner, and KVM's PSCI 0.1 ids KVM_PSCI_FN(0..3).
    /// </summary>
    private static bool DefaultAllowed(uint fn)
    {
        if (fn is ARM_SMCCC_VERSION_FUNC_ID or ARM_SMCCC_ARCH_FEATURES_FUNC_ID) return true;
        // ARM_SMCCC_OWNER_NUM (bits 29:24) == ARM_SMCCC_OWNER_STANDARD (4) && ARM_SMCCC_FUNC_NUM (bits 15:0) <= 0x1f.
        if (((fn >> 24) & 0x3f) == 4 && (fn & 0xffff) <= 0x1f) return true;
        return fn >= Psci.KVM_PSCI_FN_BASE && fn <= Psci.KVM_PSCI_FN_BASE + 3;
    }

    /// <summary>
    /// kvm_prepare_hypercall_exit: KVM_EXIT_HYPERCALL with run->hypercall = { .nr = func_id, .flags = flags } (args,
    /// ret zeroed); KVM_HYPERCALL_EXIT_SMC for an SMC trap; KVM_HYPERCALL_EXIT_16BIT never for A64 (ESR.IL = 1). The PC
    /// is already past the HVC/SMC; userspace answers by writing x0..x3 with KVM_SET_ONE_REG (no completion callback).
    /// </summary>
    private static void PrepareHypercallExit(KvmVcpu vcpu, uint fn, bool smc)
    {
        Span<byte> hc = stackalloc byte[KvmRunLayout.hypercall_flags + 8 - KvmRunLayout.hypercall_nr];
        hc.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(hc, fn);
        BinaryPrimitives.WriteUInt64LittleEndian(hc[(KvmRunLayout.hypercall_flags - KvmRunLayout.hypercall_nr)..], smc ? KVM_HYPERCALL_EXIT_SMC : 0);
        _ = HostMemory.Pwrite(vcpu.Run.MemfdFd, hc, KvmRunLayout.hypercall_nr);
        vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_HYPERCALL;
    }
}
