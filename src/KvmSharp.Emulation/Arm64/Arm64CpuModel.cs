// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The parts of the emulated arm64 host CPU that differ between presets [D: this machine is x86_64, so no arm64 host
/// fact is observable]: the pointer-authentication fields of ID_AA64ISAR1_EL1 (APA, API, GPA, GPI) and
/// ID_AA64ISAR2_EL1 (APA3, GPA3) as the host's sanitised ftr registers show them, ID_AA64ISAR1_EL1.BF16 and I8MM (the
/// AdvSIMD BFloat16 and Int8 matrix multiply instructions), and the Scalable Vector Extension
/// (ID_AA64PFR0_EL1.SVE, ID_AA64ZFR0_EL1 and the vector lengths). Everything else is the fixed Neoverse-N1-like CPU of
/// Arm64HostCpu. Chosen per emulated kernel through <see cref="EmulatorConfig.Arm64Cpu"/>.
/// </summary>
public sealed record Arm64CpuModel
{
    /// <summary>A short name for diagnostics.</summary>
    public string Name { get; init; } = "neoverse-n1";

    /// <summary>ID_AA64ISAR1_EL1.APA (bits 7:4): address authentication with QARMA5 (1 = FEAT_PAuth).</summary>
    public int Apa { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.API (bits 11:8): address authentication with an IMPLEMENTATION DEFINED algorithm.</summary>
    public int Api { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.GPA (bits 27:24): generic authentication with QARMA5 (1 = implemented).</summary>
    public int Gpa { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.GPI (bits 31:28): generic authentication with an IMPLEMENTATION DEFINED algorithm.</summary>
    public int Gpi { get; init; }

    /// <summary>
    /// ID_AA64ISAR1_EL1.BF16 (bits 47:44): 1 = FEAT_BF16, the AdvSIMD and scalar BFloat16 instructions
    /// (A64Interpreter.SimdBf16.cs; 2, FEAT_EBF16, is not emulated). The SVE forms follow ID_AA64ZFR0_EL1.BF16.
    /// </summary>
    public int Bf16 { get; init; }

    /// <summary>
    /// ID_AA64ISAR1_EL1.I8MM (bits 55:52): 1 = FEAT_I8MM, the AdvSIMD Int8 matrix multiply instructions
    /// (A64Interpreter.SimdI8mm.cs). The SVE forms follow ID_AA64ZFR0_EL1.I8MM.
    /// </summary>
    public int I8mm { get; init; }

    /// <summary>
    /// ID_AA64ISAR0_EL1.DP (bits 47:44): 1 = FEAT_DotProd, AdvSIMD SDOT/UDOT (A64Interpreter.SimdDotProd.cs). 1 on every
    /// preset (Neoverse N1, V1 and V2 TRMs); 0 makes a host without it.
    /// </summary>
    public int DotProd { get; init; } = 1;

    /// <summary>
    /// ID_AA64ISAR0_EL1.RDM (bits 31:28): 1 = FEAT_RDM, AdvSIMD SQRDMLAH/SQRDMLSH (A64Interpreter.SimdRdm.cs). 1 on every
    /// preset; 0 makes a host without it.
    /// </summary>
    public int Rdm { get; init; } = 1;

    /// <summary>
    /// ID_AA64ISAR0_EL1.SHA2 (bits 15:12): 1 = FEAT_SHA256 (every preset), 2 = also FEAT_SHA512 (SHA512H, SHA512H2,
    /// SHA512SU0, SHA512SU1; A64Interpreter.SimdCryptoExtensions.cs).
    /// </summary>
    public int Sha2 { get; init; } = 1;

    /// <summary>ID_AA64ISAR0_EL1.SHA3 (bits 35:32): 1 = FEAT_SHA3, EOR3, RAX1, XAR and BCAX (A64Interpreter.SimdCryptoExtensions.cs).</summary>
    public int Sha3 { get; init; }

    /// <summary>ID_AA64ISAR0_EL1.SM3 (bits 39:36): 1 = FEAT_SM3, SM3SS1, SM3TT1A/B, SM3TT2A/B, SM3PARTW1/2 (A64Interpreter.SimdCryptoExtensions.cs).</summary>
    public int Sm3 { get; init; }

    /// <summary>ID_AA64ISAR0_EL1.SM4 (bits 43:40): 1 = FEAT_SM4, SM4E and SM4EKEY (A64Interpreter.SimdCryptoExtensions.cs).</summary>
    public int Sm4 { get; init; }

    /// <summary>ID_AA64ISAR0_EL1.FHM (bits 51:48): 1 = FEAT_FHM, FMLAL/FMLAL2/FMLSL/FMLSL2 (A64Interpreter.FpExtensions.cs).</summary>
    public int Fhm { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.JSCVT (bits 15:12): 1 = FEAT_JSCVT, FJCVTZS (A64Interpreter.FpExtensions.cs).</summary>
    public int Jscvt { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.FCMA (bits 19:16): 1 = FEAT_FCMA, FCMLA and FCADD (A64Interpreter.FpExtensions.cs).</summary>
    public int Fcma { get; init; }

    /// <summary>
    /// ID_AA64ISAR1_EL1.FRINTTS (bits 35:32): 1 = FEAT_FRINTTS, FRINT32Z/32X/64Z/64X scalar and vector
    /// (A64Interpreter.FpExtensions.cs).
    /// </summary>
    public int Frintts { get; init; }

    /// <summary>
    /// ID_AA64ISAR0_EL1.TS (bits 55:52): 1 = FEAT_FlagM (CFINV, RMIF, SETF8, SETF16), 2 = also FEAT_FlagM2 (AXFLAG,
    /// XAFLAG).
    /// </summary>
    public int Ts { get; init; }

    /// <summary>ID_AA64ISAR0_EL1.RNDR (bits 63:60): 1 = FEAT_RNG, the RNDR and RNDRRS registers.</summary>
    public int Rndr { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.DPB (bits 3:0): 1 = DC CVAP (every preset), 2 = also DC CVADP (FEAT_DPB2).</summary>
    public int Dpb { get; init; } = 1;

    /// <summary>
    /// ID_AA64ISAR1_EL1.LRCPC (bits 23:20): 1 = LDAPR (every preset), 2 = also the unscaled LDAPUR*/STLUR* (FEAT_LRCPC2).
    /// </summary>
    public int Lrcpc { get; init; } = 1;

    /// <summary>ID_AA64ISAR1_EL1.SB (bits 39:36): 1 = FEAT_SB, the SB speculation barrier.</summary>
    public int Sb { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.DGH (bits 51:48): 1 = FEAT_DGH, the data gathering hint (a NOP either way).</summary>
    public int Dgh { get; init; }

    /// <summary>
    /// ID_AA64PFR0_EL1.DIT (bits 51:48): 1 = FEAT_DIT, PSTATE.DIT with MSR/MRS DIT (A64Interpreter.PstateFields.cs).
    /// Mandatory from Armv8.4, so V1 and V2; N1 has none.
    /// </summary>
    public int Dit { get; init; }

    /// <summary>
    /// ID_AA64PFR1_EL1.BT (bits 3:0): 1 = FEAT_BTI, branch target identification (BTI landing pads, PSTATE.BTYPE,
    /// guarded pages; A64Interpreter.Bti.cs). Armv8.5, so V2 only.
    /// </summary>
    public int Bt { get; init; }

    /// <summary>
    /// ID_AA64MMFR2_EL1.AT (bits 35:32): 1 = FEAT_LSE2, unaligned ordered and atomic accesses within a 16-byte block
    /// do not fault (SCTLR_EL1.nAA; A64Interpreter.Alignment.cs). Mandatory from Armv8.4, so V1 and V2.
    /// </summary>
    public int At { get; init; }

    /// <summary>ID_AA64ISAR2_EL1.APA3 (bits 15:12): address authentication with QARMA3.</summary>
    public int Apa3 { get; init; }

    /// <summary>ID_AA64ISAR2_EL1.GPA3 (bits 11:8): generic authentication with QARMA3.</summary>
    public int Gpa3 { get; init; }

    /// <summary>
    /// The largest SVE vector length in bytes (the kernel's sve_max_vl, which KVM takes as kvm_sve_max_vl), 0 for a
    /// host without SVE (the default). A valid length is a power of two from 16 (128 bits) to 256 (2048 bits); the
    /// host then implements every power-of-two length up to it (the Arm ARM requires them; non-power-of-two lengths
    /// are not permitted since the 2021 revision). Any other value means no SVE.
    /// </summary>
    public int SveMaxVectorLength { get; init; }

    /// <summary>
    /// ID_AA64ZFR0_EL1 of an SVE host as the sanitised ftr register shows it (SVEver, BF16, I8MM, …); ignored without
    /// SVE (the register is then RAZ).
    /// </summary>
    public ulong SveFeatures { get; init; }

    /// <summary>Arm Neoverse N1 (Armv8.2): no pointer authentication (the default).</summary>
    public static Arm64CpuModel NeoverseN1 { get; } = new();

    /// <summary>
    /// The N1-like host with FEAT_PAuth using QARMA5 for both address and generic authentication (APA = 1, GPA = 1,
    /// as on Neoverse V1 / N2) [D: a preset for testing the pointer-authentication paths].
    /// </summary>
    public static Arm64CpuModel WithPointerAuth { get; } = new() { Name = "neoverse-n1+pauth", Apa = 1, Gpa = 1 };

    /// <summary>
    /// Arm Neoverse V1-like (Armv8.4 with SVE): FEAT_PAuth with QARMA5 (APA = 1, GPA = 1) and SVE with a 256-bit
    /// maximum vector length, ID_AA64ZFR0_EL1 with BF16 = 1 and I8MM = 1, and ID_AA64ISAR1_EL1 with BF16 = 1 and I8MM = 1
    /// (Neoverse V1 TRM: the core implements FEAT_BF16 and FEAT_I8MM; the SVE forms are in A64Interpreter.SveBf16.cs,
    /// the AdvSIMD and scalar ones in A64Interpreter.SimdBf16.cs) [D: a preset for testing the
    /// SVE and pointer-authentication paths on the N1-like base]. ID_AA64ISAR0_EL1 adds FHM, SM4, SM3, SHA3 = 1 and SHA2 = 2,
    /// ID_AA64ISAR1_EL1 FCMA = 1 and JSCVT = 1, FRINTTS = 0 (Neoverse V1 TRM 3.2.74, as qemu's neoverse-v1 after commit
    /// 8676007eff04: ISAR0 0x1011111110212120, ISAR1 0x0011100001211032) — also RNDR 1, TS 1, DPB 2, LRCPC 2, DGH 1, SB 0;
    /// ID_AA64MMFR2_EL1.AT = 1 (FEAT_LSE2; qemu's neoverse-v1 MMFR2 0x0220011102101011), ID_AA64PFR0_EL1.DIT = 1, no BTI
    /// (PFR1.BT 0: Armv8.5).
    /// </summary>
    public static Arm64CpuModel NeoverseV1 { get; } = new()
    {
        Name = "neoverse-v1", Apa = 1, Gpa = 1, Bf16 = 1, I8mm = 1, SveMaxVectorLength = 32, SveFeatures = (1UL << 44) | (1UL << 20),
        Sha2 = 2, Sha3 = 1, Sm3 = 1, Sm4 = 1, Fhm = 1, Jscvt = 1, Fcma = 1, Ts = 1, Rndr = 1, Dpb = 2, Lrcpc = 2, Dgh = 1,
        At = 1, Dit = 1,
    };

    /// <summary>
    /// Arm Neoverse V2-like (Armv9.0 with SVE2, as in AWS Graviton4): FEAT_PAuth with QARMA5 and SVE2 with a 128-bit
    /// vector length — ID_AA64ZFR0_EL1.SVEver (bits 3:0) = 1, AES (7:4) = 2 (AESE/AESD/AESMC/AESIMC and PMULLB/T .Q),
    /// BitPerm (19:16) = 1 (BEXT/BDEP/BGRP), BF16 (23:20) = 1, SHA3 (35:32) = 1 (RAX1), SM4 (43:40) = 1 (SM4E/SM4EKEY),
    /// I8MM (47:44) = 1 (Neoverse V2 TRM; the optional SVE2 instructions are in A64Interpreter.Sve2Crypto.cs, the SVE
    /// BF16 and I8MM ones in A64Interpreter.SveBf16.cs), and ID_AA64ISAR1_EL1.BF16 = 1, I8MM = 1 (the AdvSIMD and scalar
    /// forms, A64Interpreter.SimdBf16.cs)
    /// [D: a preset for running code built for Armv9 on the N1-like base]. ID_AA64ISAR0_EL1 as V1's (FHM, SM4, SM3,
    /// SHA3 = 1, SHA2 = 2: the Neoverse V2 TRM's optional cryptographic extension taken as present) and
    /// ID_AA64ISAR1_EL1 FCMA, JSCVT and FRINTTS = 1 (FEAT_FRINTTS is mandatory from Armv8.5, so in Armv9.0); RNDR 1,
    /// TS 2 (FEAT_FlagM2, Armv8.5), DPB 2, LRCPC 2, SB 1 (mandatory from Armv8.5), DGH 1;
    /// ID_AA64MMFR2_EL1.AT = 1 (FEAT_LSE2), ID_AA64PFR0_EL1.DIT = 1 and ID_AA64PFR1_EL1.BT = 1 (FEAT_BTI, mandatory from
    /// Armv8.5).
    /// </summary>
    public static Arm64CpuModel NeoverseV2 { get; } = new()
    {
        Name = "neoverse-v2", Apa = 1, Gpa = 1, Bf16 = 1, I8mm = 1, SveMaxVectorLength = 16,
        SveFeatures = (1UL << 44) | (1UL << 40) | (1UL << 32) | (1UL << 20) | (1UL << 16) | (2UL << 4) | 1,
        Sha2 = 2, Sha3 = 1, Sm3 = 1, Sm4 = 1, Fhm = 1, Jscvt = 1, Fcma = 1, Frintts = 1, Ts = 2, Rndr = 1, Dpb = 2, Lrcpc = 2,
        Sb = 1, Dgh = 1, At = 1, Bt = 1, Dit = 1,
    };

    /// <summary>The named presets, in the order a user would list them (N1, N1 with PAuth, V1, V2).</summary>
    public static IReadOnlyList<Arm64CpuModel> Presets { get; } = [NeoverseN1, WithPointerAuth, NeoverseV1, NeoverseV2];

    /// <summary>The preset called <paramref name="name"/> (<see cref="Name"/>, e.g. "neoverse-v2"), or null.</summary>
    public static Arm64CpuModel? FindPreset(string name) =>
        Presets.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.Ordinal));

    /// <summary>ID_AA64ZFR0_EL1.SVEver ≥ 1: the host implements SVE2 (FEAT_SVE2).</summary>
    public bool HasSve2 => HasSve && (SveFeatures & 0xf) >= 1;

    /// <summary>system_supports_sve(): a valid <see cref="SveMaxVectorLength"/>.</summary>
    public bool HasSve => SveMaxVectorLength is >= 16 and <= 256 && (SveMaxVectorLength & (SveMaxVectorLength - 1)) == 0;

    /// <summary>sve_vq_from_vl(kvm_sve_max_vl): the largest vector length in quadwords (0 without SVE).</summary>
    internal int SveMaxVq => HasSve ? SveMaxVectorLength / 16 : 0;

    /// <summary>sve_vq_available(vq): the host implements vector length <paramref name="vq"/> (a power of two up to the maximum).</summary>
    internal bool SveVqAvailable(int vq) => vq >= 1 && vq <= SveMaxVq && (vq & (vq - 1)) == 0;

    /// <summary>
    /// The host's sanitised ID_AA64PFR0_EL1: the fixed fields plus this model's DIT (bits 51:48) and SVE (bits 35:32)
    /// = 1 on an SVE host.
    /// </summary>
    internal ulong Aa64Pfr0 => Arm64HostCpu.Aa64Pfr0 | ((ulong)(Dit & 0xf) << 48) | (HasSve ? 1UL << 32 : 0);

    /// <summary>The host's sanitised ID_AA64PFR1_EL1: Arm64HostCpu's SSBS with this model's BT (bits 3:0).</summary>
    internal ulong Aa64Pfr1 => (Arm64HostCpu.Aa64Pfr1 & ~0xfUL) | (ulong)(Bt & 0xf);

    /// <summary>The host's sanitised ID_AA64MMFR2_EL1: Arm64HostCpu's fields with this model's AT (bits 35:32).</summary>
    internal ulong Aa64Mmfr2 => (Arm64HostCpu.Aa64Mmfr2 & ~(0xfUL << 32)) | ((ulong)(At & 0xf) << 32);

    /// <summary>The host's sanitised ID_AA64ZFR0_EL1 (0 without SVE).</summary>
    internal ulong Aa64Zfr0 => HasSve ? SveFeatures : 0;

    /// <summary>
    /// The host's sanitised ID_AA64ISAR0_EL1: the fixed fields of Arm64HostCpu with this model's RNDR, TS, FHM, DP, SM4,
    /// SM3, SHA3, RDM and SHA2.
    /// </summary>
    internal ulong Aa64Isar0 => (Arm64HostCpu.Aa64Isar0 & ~(0xfUL << 44 | 0xfUL << 28 | 0xfUL << 12)) |
        ((ulong)(Rndr & 0xf) << 60) | ((ulong)(Ts & 0xf) << 52) | ((ulong)(Fhm & 0xf) << 48) | ((ulong)(DotProd & 0xf) << 44) | ((ulong)(Sm4 & 0xf) << 40) | ((ulong)(Sm3 & 0xf) << 36) |
        ((ulong)(Sha3 & 0xf) << 32) | ((ulong)(Rdm & 0xf) << 28) | ((ulong)(Sha2 & 0xf) << 12);

    /// <summary>
    /// The host's sanitised ID_AA64ISAR1_EL1: this model's DPB (bits 3:0), PAuth, JSCVT (15:12), FCMA (19:16), LRCPC
    /// (23:20), FRINTTS (35:32), SB (39:36), BF16 (47:44), DGH (51:48) and I8MM (55:52) fields over Arm64HostCpu's.
    /// </summary>
    internal ulong Aa64Isar1 => (Arm64HostCpu.Aa64Isar1 & ~(0xfUL << 20 | 0xfUL)) | (ulong)(Dpb & 0xf) | ((ulong)(Apa & 0xf) << 4) |
        ((ulong)(Api & 0xf) << 8) | ((ulong)(Jscvt & 0xf) << 12) | ((ulong)(Fcma & 0xf) << 16) | ((ulong)(Lrcpc & 0xf) << 20) |
        ((ulong)(Gpa & 0xf) << 24) | ((ulong)(Gpi & 0xf) << 28) | ((ulong)(Frintts & 0xf) << 32) | ((ulong)(Sb & 0xf) << 36) |
        ((ulong)(Bf16 & 0xf) << 44) | ((ulong)(Dgh & 0xf) << 48) | ((ulong)(I8mm & 0xf) << 52);

    /// <summary>The host's sanitised ID_AA64ISAR2_EL1: only this model's PAuth (QARMA3) fields.</summary>
    internal ulong Aa64Isar2 => ((ulong)(Apa3 & 0xf) << 12) | ((ulong)(Gpa3 & 0xf) << 8);

    /// <summary>
    /// arch/arm64/kvm/arm.c kvm_has_full_ptr_auth: system_has_full_ptr_auth() (address and generic auth both present),
    /// and "both Address and Generic auth are implemented for a given algorithm (Q5, IMPDEF or Q3)" and "only a single
    /// algorithm is implemented" (GPA/GPI/GPA3 must be exactly IMP = 1). This answers KVM_CAP_ARM_PTRAUTH_ADDRESS and
    /// _GENERIC and decides whether system_supported_vcpu_features() keeps the two vCPU features.
    /// </summary>
    internal bool HasFullPtrAuth
    {
        get
        {
            bool apa = Apa != 0, api = Api != 0, apa3 = Apa3 != 0;
            bool gpa = Gpa == 1, gpi = Gpi == 1, gpa3 = Gpa3 == 1;
            bool address = apa || api || apa3, generic = Gpa != 0 || Gpi != 0 || Gpa3 != 0;
            if (!address || !generic) return false;
            return apa == gpa && api == gpi && apa3 == gpa3 && (apa ? 1 : 0) + (api ? 1 : 0) + (apa3 ? 1 : 0) == 1;
        }
    }
}
