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
    /// the machine-check banks and the MTRRs are kept per vCPU without being listed). This host lists 41 (the KVM PV MSRs, TSC_ADJUST,
    /// TSC_DEADLINE, the AMD and PMU MSRs …); every index here is also in its list (MsrRules conformance case).
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
    /// x86.c kvm_is_immutable_feature_msr: msr_based_features_all_except_vmx (and the VMX MSRs, not modelled) but
    /// MSR_IA32_UCODE_REV, "which tracks the currently loaded uCode patch".
    /// </summary>
    public static bool IsImmutableFeatureMsr(uint index) => index != IA32_UCODE_REV && Array.IndexOf(FeatureMsrs, index) >= 0;

    /// <summary>x86.c kvm_is_advertised_msr: in msrs_to_save, emulated_msrs or msr_based_features.</summary>
    public static bool IsAdvertised(uint index) =>
        Array.IndexOf(ToSaveAndEmulated, index) >= 0 || Array.IndexOf(FeatureMsrs, index) >= 0;
}
