// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86;

/// <summary>The MSR numbers the emulator models (arch/x86/include/asm/msr-index.h; not uapi).</summary>
internal static class MsrIndex
{
    public const uint IA32_P5_MC_ADDR = 0x0;
    public const uint IA32_P5_MC_TYPE = 0x1;
    public const uint IA32_TSC = 0x10;
    public const uint IA32_APICBASE = 0x1b;
    public const uint IA32_UCODE_REV = 0x8b;
    public const uint IA32_ARCH_CAPABILITIES = 0x10a;
    public const uint IA32_SYSENTER_CS = 0x174;
    public const uint IA32_SYSENTER_ESP = 0x175;
    public const uint IA32_SYSENTER_EIP = 0x176;
    public const uint IA32_MISC_ENABLE = 0x1a0;
    public const uint IA32_CR_PAT = 0x277;
    public const uint EFER = 0xc000_0080;
    public const uint STAR = 0xc000_0081;
    public const uint LSTAR = 0xc000_0082;
    public const uint CSTAR = 0xc000_0083;
    public const uint SYSCALL_MASK = 0xc000_0084;
    public const uint FS_BASE = 0xc000_0100;
    public const uint GS_BASE = 0xc000_0101;
    public const uint KERNEL_GS_BASE = 0xc000_0102;
    public const uint TSC_AUX = 0xc000_0103;

    /// <summary>MSR_IA32_CR_PAT_DEFAULT (PAT_VALUE(WB, WT, UC_MINUS, UC, WB, WT, UC_MINUS, UC)).</summary>
    public const ulong PatDefault = 0x0007_0406_0007_0406;

    /// <summary>MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL | MSR_IA32_MISC_ENABLE_BTS_UNAVAIL (= MSR_IA32_MISC_ENABLE_PMU_RO_MASK).</summary>
    public const ulong MiscEnablePmuRo = (1UL << 12) | (1UL << 11);

    /// <summary>MSR_IA32_MISC_ENABLE_EMON (bit 7): guest writes are ignored.</summary>
    public const ulong MiscEnableEmon = 1UL << 7;

    /// <summary>
    /// KVM_GET_MSR_INDEX_LIST: msrs_to_save then emulated_msrs (x86.c msrs_to_save_base / emulated_msrs_all),
    /// reduced to the MSRs modeled here, in the kernel's order. This host lists 41 (the KVM PV MSRs, TSC_ADJUST,
    /// TSC_DEADLINE, the AMD and PMU MSRs …); every index here is also in its list (MsrRules conformance case).
    /// EFER, FS/GS_BASE and APIC_BASE are not listed by either: KVM_GET/SET_SREGS carries them.
    /// </summary>
    public static readonly uint[] ToSaveAndEmulated =
    [
        IA32_SYSENTER_CS, IA32_SYSENTER_ESP, IA32_SYSENTER_EIP, STAR, CSTAR, KERNEL_GS_BASE, SYSCALL_MASK, LSTAR,
        IA32_TSC, IA32_CR_PAT, IA32_MISC_ENABLE,
    ];

    /// <summary>KVM_GET_MSR_FEATURE_INDEX_LIST: msr_based_features, reduced (this host: 0x8b 0x10a 0x345 0xce).</summary>
    public static readonly uint[] FeatureMsrs = [IA32_UCODE_REV, IA32_ARCH_CAPABILITIES];

    /// <summary>x86.c kvm_is_advertised_msr: in msrs_to_save, emulated_msrs or msr_based_features.</summary>
    public static bool IsAdvertised(uint index) =>
        Array.IndexOf(ToSaveAndEmulated, index) >= 0 || Array.IndexOf(FeatureMsrs, index) >= 0;
}
