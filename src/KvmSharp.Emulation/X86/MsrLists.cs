// SPDX-License-Identifier: MIT
using KvmSharp.X86;
using static KvmSharp.X86.MsrIndex;

namespace KvmSharp.Emulation.X86;

/// <summary>Which MSRs the emulator models and lists (the numbers: <see cref="MsrIndex"/>).</summary>
internal static class MsrLists
{
    /// <summary>MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL | MSR_IA32_MISC_ENABLE_BTS_UNAVAIL (= MSR_IA32_MISC_ENABLE_PMU_RO_MASK).</summary>
    public const ulong MiscEnablePmuRo = (1UL << 12) | (1UL << 11);

    /// <summary>MSR_IA32_MISC_ENABLE_EMON (bit 7): guest writes are ignored.</summary>
    public const ulong MiscEnableEmon = 1UL << 7;

    /// <summary>
    /// KVM_GET_MSR_INDEX_LIST: msrs_to_save then emulated_msrs (x86.c msrs_to_save_base / emulated_msrs_all),
    /// reduced to the MSRs modeled here, in the kernel's order (emulated_msrs_all: MSR_IA32_TSC_ADJUST, MSR_IA32_TSC_DEADLINE, …) (MCG_STATUS, MCG_CTL, MSR_PLATFORM_INFO, MSR_MISC_FEATURES_ENABLES and MSR_K7_HWCR, near its end, are emulated_msrs_all's; MCG_CAP,
    /// the machine-check banks and the MTRRs are kept per vCPU without being listed): the upstream presets' list. This
    /// host lists 40 (<see cref="KvmPvmHostToSaveAndEmulated"/>; 41 on the Milan machines, not kept); every index here
    /// is also in its list (MsrRules conformance case).
    /// EFER, FS/GS_BASE and APIC_BASE are not listed by either: KVM_GET/SET_SREGS carries them.
    /// </summary>
    public static readonly uint[] ToSaveAndEmulated =
    [
        IA32_SYSENTER_CS, IA32_SYSENTER_ESP, IA32_SYSENTER_EIP, STAR, CSTAR, KERNEL_GS_BASE, SYSCALL_MASK, LSTAR,
        IA32_TSC, IA32_CR_PAT, IA32_TSC_ADJUST, MsrRules.TscDeadline, IA32_MISC_ENABLE, IA32_MCG_STATUS, IA32_MCG_CTL,
        MsrRules.PlatformInfo, MsrRules.MiscFeaturesEnables, MsrRules.K7Hwcr,
    ];

    /// <summary>KVM_GET_MSR_FEATURE_INDEX_LIST: msr_based_features, reduced (this host: 0x8b 0x10a 0x345 0xce).</summary>
    public static readonly uint[] FeatureMsrs = [IA32_UCODE_REV, IA32_ARCH_CAPABILITIES, MsrRules.PlatformInfo];

    /// <summary>
    /// KVM_GET_MSR_INDEX_LIST of this host (kvm_pvm, Linux 6.18, AMD EPYC Genoa), in its order: probed on this host
    /// (tests/KvmSharp.Preload.Tests/CPrograms/kvm_transcript.c). x86.c kvm_init_msr_lists keeps of msrs_to_save_base
    /// what kvm_probe_msr_to_save finds (SYSENTER…LSTAR, TSC, PAT, VM_HSAVE_PA, then DEBUGCTL and the four LBR MSRs) and
    /// of emulated_msrs_all what kvm_x86_ops.has_emulated_msr takes (the KVM PV MSRs, TSC_ADJUST, TSC_DEADLINE,
    /// ARCH_CAPABILITIES, PERF_CAPABILITIES, MISC_ENABLE, MCG_STATUS/CTL, SMI_COUNT, PLATFORM_INFO,
    /// MISC_FEATURES_ENABLES, VIRT_SPEC_CTRL, POWER_CTL, UCODE_REV, HWCR, POLL_CONTROL; no Hyper-V MSRs, no SMBASE
    /// without SMM). The ones the emulator does not model read 0 and take 0 from the host (MsrRules' kvm_do_msr_access
    /// fallback); the kernel keeps what the host writes to some of them (SMI_COUNT, POWER_CTL, the PV MSRs): a gap.
    /// </summary>
    public static readonly uint[] KvmPvmHostToSaveAndEmulated =
    [
        IA32_SYSENTER_CS, IA32_SYSENTER_ESP, IA32_SYSENTER_EIP, STAR, CSTAR, KERNEL_GS_BASE, SYSCALL_MASK, LSTAR,
        IA32_TSC, IA32_CR_PAT, 0xc001_0117, 0x1d9, 0x1db, 0x1dc, 0x1dd, 0x1de,
        0x12, 0x11, 0x4b56_4d01, 0x4b56_4d00, 0x4b56_4d02, 0x4b56_4d03, 0x4b56_4d04, 0x4b56_4d06,
        0x4b56_4d07, IA32_TSC_ADJUST, MsrRules.TscDeadline, IA32_ARCH_CAPABILITIES, 0x345, IA32_MISC_ENABLE, IA32_MCG_STATUS, IA32_MCG_CTL,
        0x34, MsrRules.PlatformInfo, MsrRules.MiscFeaturesEnables, 0xc001_011f, 0x1fc, IA32_UCODE_REV, MsrRules.K7Hwcr, 0x4b56_4d05,
    ];

    /// <summary>
    /// KVM_GET_MSR_FEATURE_INDEX_LIST of this host (kvm_pvm): msr_based_features_all_except_vmx but MSR_AMD64_DE_CFG,
    /// which kvm_get_feature_msr refuses there; probed on this host (kvm_transcript.c). MSR_IA32_PERF_CAPABILITIES reads
    /// 0 on /dev/kvm (kvm_caps.supported_perf_cap, 0 on AMD) as the emulator's fallback answers.
    /// </summary>
    public static readonly uint[] KvmPvmHostFeatureMsrs = [IA32_UCODE_REV, IA32_ARCH_CAPABILITIES, 0x345, MsrRules.PlatformInfo];

    /// <summary>The index lists <paramref name="config"/> answers (<see cref="EmulatorConfig.X86MsrListsOfThisHost"/>).</summary>
    public static uint[] IndexList(EmulatorConfig config) => config.X86MsrListsOfThisHost ? KvmPvmHostToSaveAndEmulated : ToSaveAndEmulated;

    /// <summary>The feature MSR list <paramref name="config"/> answers.</summary>
    public static uint[] FeatureList(EmulatorConfig config) => config.X86MsrListsOfThisHost ? KvmPvmHostFeatureMsrs : FeatureMsrs;

    /// <summary>
    /// x86.c kvm_is_immutable_feature_msr: msr_based_features_all_except_vmx (and the VMX MSRs, not modelled) but
    /// MSR_IA32_UCODE_REV, "which tracks the currently loaded uCode patch".
    /// </summary>
    public static bool IsImmutableFeatureMsr(uint[] features, uint index) => index != IA32_UCODE_REV && Array.IndexOf(features, index) >= 0;

    /// <summary>x86.c kvm_is_advertised_msr: in msrs_to_save, emulated_msrs or msr_based_features.</summary>
    public static bool IsAdvertised(uint[] list, uint[] features, uint index) =>
        Array.IndexOf(list, index) >= 0 || Array.IndexOf(features, index) >= 0;
}
