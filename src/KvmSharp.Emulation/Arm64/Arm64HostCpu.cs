// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The emulated arm64 host [D: this machine is x86_64, so no host fact is observable]: a fixed Neoverse-N1-like CPU
/// (Arm Neoverse N1 TRM, ID register reset values) after KVM's sanitisation for guests (arch/arm64/kvm/sys_regs.c
/// read_sanitised_id_* / sanitise_id_*): AArch64 only at EL0/EL1 (so kvm_supports_32bit_el0() is false and the AArch32
/// ID registers are RAZ), no SVE, no pointer authentication, PMUVer 0 unless the VM's vCPUs have KVM_ARM_VCPU_PMU_V3
/// (then PMUv3p1, Arm64PmuRegs), SPE and trace hidden, GICv3 system registers. These values are the "limit" of arm64_check_features: userspace may only
/// lower a field to what this host supports.
/// </summary>
internal static class Arm64HostCpu
{
    /// <summary>MIDR_EL1: implementer 0x41 (Arm), variant 3, architecture 0xF, part 0xD0C (Neoverse N1), revision 1.</summary>
    public const ulong Midr = 0x413F_D0C1;

    public const ulong Revidr = 0;

    public const ulong Aidr = 0;

    /// <summary>
    /// CTR_EL0: RES1 bit 31, IDC 1 (bit 28), CWG 4, ERG 4, DminLine 4 (64-byte lines), L1Ip PIPT (3), IminLine 4.
    /// </summary>
    public const ulong Ctr = 0x9444_C004;

    /// <summary>
    /// ID_AA64PFR0_EL1: CSV3 1, CSV2 1, RAS 1, GIC 1 (GICv3 system registers), AdvSIMD 1, FP 1 (FP16), EL3 1,
    /// EL2 1, EL1 1, EL0 1 (AArch64 only). DIT 0: N1 has no FEAT_DIT (qemu's neoverse-n1 0x1100000010111112 and a
    /// Graviton2's /proc/cpuinfo, which lists ssbs but not dit); the V1/V2 presets add it (Arm64CpuModel.Dit).
    /// </summary>
    public const ulong Aa64Pfr0 = 0x1100_0000_1111_1111;

    /// <summary>ID_AA64PFR1_EL1: SSBS 2 (PSTATE.SSBS with MSR/MRS), no BTI/MTE.</summary>
    public const ulong Aa64Pfr1 = 0x20;

    /// <summary>
    /// ID_AA64DFR0_EL1: CTX_CMPs 1, WRPs 3 (4 watchpoints), BRPs 5 (6 breakpoints), PMUVer 0 (sanitise_id_aa64dfr0_el1
    /// for a vCPU without PMU), TraceVer 0 (hidden), DebugVer 8 (v8.2). KVM still lists and stores all 16
    /// DBG{B,W}{V,C}Rn_EL1 (Arm64DebugRegs).
    /// </summary>
    public const ulong Aa64Dfr0 = 0x1030_5008;

    /// <summary>ID_AA64ISAR0_EL1: DP 1, RDM 1, ATOMIC 2, CRC32 1, SHA2 1, SHA1 1, AES 2 (with PMULL).</summary>
    public const ulong Aa64Isar0 = 0x0000_1000_1021_1120;

    /// <summary>ID_AA64ISAR1_EL1: LRCPC 1, DPB 1.</summary>
    public const ulong Aa64Isar1 = 0x0010_0001;

    /// <summary>
    /// ID_AA64MMFR0_EL1: TGRAN4 0, TGRAN64 0, TGRAN16 1 (all supported), SNSMEM 1, BIGEND 1, ASIDBITS 2 (16 bits),
    /// PARANGE 5 (48 bits, the IPA limit of Arch/Arm64Kvm.cs).
    /// </summary>
    public const ulong Aa64Mmfr0 = 0x0010_1125;

    /// <summary>ID_AA64MMFR1_EL1: XNX 1, PAN 2, LO 1, HPDS 2, VH 1, VMIDBits 2 (16 bits), HAFDBS 2.</summary>
    public const ulong Aa64Mmfr1 = 0x1021_2122;

    /// <summary>ID_AA64MMFR2_EL1: IESB 1, UAO 1, CnP 1.</summary>
    public const ulong Aa64Mmfr2 = 0x1011;

    /// <summary>kvm_supports_32bit_el0(): false (Arm64CoreRegs agrees), so the AArch32 ID registers are RAZ/USER_WI.</summary>
    public const bool Supports32BitEl0 = false;

    /// <summary>
    /// CNTFRQ_EL0: the generic timer's frequency. 25 MHz, a common server-platform choice (the Arm ARM only fixes
    /// 1 GHz from Armv8.6, N1 is Armv8.2).
    /// </summary>
    public const ulong CounterFrequency = 25_000_000;

    // arm64_get_spectre_*_state() of the host (arch/arm64/kernel/proton-pack.c), what kvm_arm_get_fw_reg reports:
    // N1 sets CSV2 (Spectre-v2 unaffected), has SSBS (Spectre-v4 mitigated by SSBS) and is in the Spectre-BHB loop
    // list (k = 24: mitigated).

    /// <summary>Spectre-v2: SPECTRE_UNAFFECTED.</summary>
    public const SpectreState SpectreV2 = SpectreState.Unaffected;

    /// <summary>Spectre-v4 (SSB): SPECTRE_MITIGATED with ARM64_SSBS.</summary>
    public const SpectreState SpectreV4 = SpectreState.Mitigated;

    public const bool HasSsbs = true;

    /// <summary>Spectre-BHB: SPECTRE_MITIGATED (branch-history loop).</summary>
    public const SpectreState SpectreBhb = SpectreState.Mitigated;
}

/// <summary>arch/arm64/include/asm/spectre.h enum mitigation_state.</summary>
internal enum SpectreState
{
    Unaffected,
    Mitigated,
    Vulnerable,
}
