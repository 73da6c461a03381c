// SPDX-License-Identifier: MIT
// The optional-feature forms swept on the presets that advertise them (Neoverse V1 and V2, Neoverse V2 only).
namespace KvmSharp.Emulation.Tests;

public partial class Arm64SimdCoverageTests
{
    /// <summary>
    /// FEAT_FHM, FEAT_FCMA, FEAT_JSCVT and FEAT_SHA512/SHA3/SM3/SM4 forms (ID_AA64ISAR0_EL1.FHM, SHA2 = 2, SHA3, SM3, SM4
    /// and ID_AA64ISAR1_EL1.FCMA, JSCVT = 1 on Neoverse V1 and V2; the .4h/.8h FCMLA and FCADD also need FEAT_FP16):
    /// "assembly|word" as <see cref="Forms"/>.
    /// </summary>
    private const string FeatureForms = """
        fmlal v0.2s, v1.2h, v2.2h|0e22ec20
        fmlal v0.4s, v1.4h, v2.4h|4e22ec20
        fmlal v0.2s, v1.2h, v2.h[0]|0f820020
        fmlal v0.4s, v1.4h, v15.h[7]|4fbf0820
        fmlal2 v0.2s, v1.2h, v2.2h|2e22cc20
        fmlal2 v0.4s, v1.4h, v2.4h|6e22cc20
        fmlal2 v0.2s, v1.2h, v2.h[0]|2f828020
        fmlal2 v0.4s, v1.4h, v15.h[7]|6fbf8820
        fmlsl v0.2s, v1.2h, v2.2h|0ea2ec20
        fmlsl v0.4s, v1.4h, v2.4h|4ea2ec20
        fmlsl v0.2s, v1.2h, v2.h[0]|0f824020
        fmlsl v0.4s, v1.4h, v15.h[7]|4fbf4820
        fmlsl2 v0.2s, v1.2h, v2.2h|2ea2cc20
        fmlsl2 v0.4s, v1.4h, v2.4h|6ea2cc20
        fmlsl2 v0.2s, v1.2h, v2.h[0]|2f82c020
        fmlsl2 v0.4s, v1.4h, v15.h[7]|6fbfc820
        fcmla v0.4h, v1.4h, v2.4h, #0|2e42c420
        fcmla v0.4h, v1.4h, v2.4h, #90|2e42cc20
        fcmla v0.4h, v1.4h, v2.4h, #180|2e42d420
        fcmla v0.4h, v1.4h, v2.4h, #270|2e42dc20
        fcadd v0.4h, v1.4h, v2.4h, #90|2e42e420
        fcadd v0.4h, v1.4h, v2.4h, #270|2e42f420
        fcmla v0.8h, v1.8h, v2.8h, #0|6e42c420
        fcmla v0.8h, v1.8h, v2.8h, #90|6e42cc20
        fcmla v0.8h, v1.8h, v2.8h, #180|6e42d420
        fcmla v0.8h, v1.8h, v2.8h, #270|6e42dc20
        fcadd v0.8h, v1.8h, v2.8h, #90|6e42e420
        fcadd v0.8h, v1.8h, v2.8h, #270|6e42f420
        fcmla v0.2s, v1.2s, v2.2s, #0|2e82c420
        fcmla v0.2s, v1.2s, v2.2s, #90|2e82cc20
        fcmla v0.2s, v1.2s, v2.2s, #180|2e82d420
        fcmla v0.2s, v1.2s, v2.2s, #270|2e82dc20
        fcadd v0.2s, v1.2s, v2.2s, #90|2e82e420
        fcadd v0.2s, v1.2s, v2.2s, #270|2e82f420
        fcmla v0.4s, v1.4s, v2.4s, #0|6e82c420
        fcmla v0.4s, v1.4s, v2.4s, #90|6e82cc20
        fcmla v0.4s, v1.4s, v2.4s, #180|6e82d420
        fcmla v0.4s, v1.4s, v2.4s, #270|6e82dc20
        fcadd v0.4s, v1.4s, v2.4s, #90|6e82e420
        fcadd v0.4s, v1.4s, v2.4s, #270|6e82f420
        fcmla v0.2d, v1.2d, v2.2d, #0|6ec2c420
        fcmla v0.2d, v1.2d, v2.2d, #90|6ec2cc20
        fcmla v0.2d, v1.2d, v2.2d, #180|6ec2d420
        fcmla v0.2d, v1.2d, v2.2d, #270|6ec2dc20
        fcadd v0.2d, v1.2d, v2.2d, #90|6ec2e420
        fcadd v0.2d, v1.2d, v2.2d, #270|6ec2f420
        fcmla v0.4h, v1.4h, v2.h[0], #0|2f421020
        fcmla v0.4h, v1.4h, v2.h[1], #0|2f621020
        fcmla v0.8h, v1.8h, v2.h[0], #0|6f421020
        fcmla v0.8h, v1.8h, v2.h[1], #0|6f621020
        fcmla v0.8h, v1.8h, v2.h[2], #0|6f421820
        fcmla v0.8h, v1.8h, v2.h[3], #0|6f621820
        fcmla v0.4s, v1.4s, v2.s[0], #0|6f821020
        fcmla v0.4s, v1.4s, v2.s[1], #0|6f821820
        fcmla v0.4h, v1.4h, v2.h[0], #90|2f423020
        fcmla v0.4h, v1.4h, v2.h[1], #90|2f623020
        fcmla v0.8h, v1.8h, v2.h[0], #90|6f423020
        fcmla v0.8h, v1.8h, v2.h[1], #90|6f623020
        fcmla v0.8h, v1.8h, v2.h[2], #90|6f423820
        fcmla v0.8h, v1.8h, v2.h[3], #90|6f623820
        fcmla v0.4s, v1.4s, v2.s[0], #90|6f823020
        fcmla v0.4s, v1.4s, v2.s[1], #90|6f823820
        fcmla v0.4h, v1.4h, v2.h[0], #180|2f425020
        fcmla v0.4h, v1.4h, v2.h[1], #180|2f625020
        fcmla v0.8h, v1.8h, v2.h[0], #180|6f425020
        fcmla v0.8h, v1.8h, v2.h[1], #180|6f625020
        fcmla v0.8h, v1.8h, v2.h[2], #180|6f425820
        fcmla v0.8h, v1.8h, v2.h[3], #180|6f625820
        fcmla v0.4s, v1.4s, v2.s[0], #180|6f825020
        fcmla v0.4s, v1.4s, v2.s[1], #180|6f825820
        fcmla v0.4h, v1.4h, v2.h[0], #270|2f427020
        fcmla v0.4h, v1.4h, v2.h[1], #270|2f627020
        fcmla v0.8h, v1.8h, v2.h[0], #270|6f427020
        fcmla v0.8h, v1.8h, v2.h[1], #270|6f627020
        fcmla v0.8h, v1.8h, v2.h[2], #270|6f427820
        fcmla v0.8h, v1.8h, v2.h[3], #270|6f627820
        fcmla v0.4s, v1.4s, v2.s[0], #270|6f827020
        fcmla v0.4s, v1.4s, v2.s[1], #270|6f827820
        fcmla v0.8h, v1.8h, v31.h[1], #90|6f7f3020
        fcmla v0.4s, v1.4s, v31.s[1], #270|6f9f7820
        fjcvtzs w0, d1|1e7e0020
        sha512h q0, q1, v2.2d|ce628020
        sha512h2 q0, q1, v2.2d|ce628420
        sha512su0 v0.2d, v1.2d|cec08020
        sha512su1 v0.2d, v1.2d, v2.2d|ce628820
        eor3 v0.16b, v1.16b, v2.16b, v3.16b|ce020c20
        rax1 v0.2d, v1.2d, v2.2d|ce628c20
        xar v0.2d, v1.2d, v2.2d, #10|ce822820
        bcax v0.16b, v1.16b, v2.16b, v3.16b|ce220c20
        sm3ss1 v0.4s, v1.4s, v2.4s, v3.4s|ce420c20
        sm3tt1a v0.4s, v1.4s, v2.s[3]|ce42b020
        sm3tt1b v0.4s, v1.4s, v2.s[3]|ce42b420
        sm3tt2a v0.4s, v1.4s, v2.s[3]|ce42b820
        sm3tt2b v0.4s, v1.4s, v2.s[3]|ce42bc20
        sm3partw1 v0.4s, v1.4s, v2.4s|ce62c020
        sm3partw2 v0.4s, v1.4s, v2.4s|ce62c420
        sm4e v0.4s, v1.4s|cec08420
        sm4ekey v0.4s, v1.4s, v2.4s|ce62c820
        """;

    /// <summary>FEAT_FRINTTS forms (ID_AA64ISAR1_EL1.FRINTTS = 1 on Neoverse V2 only).</summary>
    private const string V2Forms = """
        frint32z s0, s1|1e284020
        frint32z d0, d1|1e684020
        frint32z v0.2s, v1.2s|0e21e820
        frint32z v0.4s, v1.4s|4e21e820
        frint32z v0.2d, v1.2d|4e61e820
        frint32x s0, s1|1e28c020
        frint32x d0, d1|1e68c020
        frint32x v0.2s, v1.2s|2e21e820
        frint32x v0.4s, v1.4s|6e21e820
        frint32x v0.2d, v1.2d|6e61e820
        frint64z s0, s1|1e294020
        frint64z d0, d1|1e694020
        frint64z v0.2s, v1.2s|0e21f820
        frint64z v0.4s, v1.4s|4e21f820
        frint64z v0.2d, v1.2d|4e61f820
        frint64x s0, s1|1e29c020
        frint64x d0, d1|1e69c020
        frint64x v0.2s, v1.2s|2e21f820
        frint64x v0.4s, v1.4s|6e21f820
        frint64x v0.2d, v1.2d|6e61f820
        """;
}
