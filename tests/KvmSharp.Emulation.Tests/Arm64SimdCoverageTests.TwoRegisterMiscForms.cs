// SPDX-License-Identifier: MIT
// Arm64SimdCoverageTests forms: Advanced SIMD two-register miscellaneous.
namespace KvmSharp.Emulation.Tests;

public partial class Arm64SimdCoverageTests
{
    private const string TwoRegisterMiscForms = """
        rev64 v0.8b, v1.8b|0e200820
        rev64 v0.16b, v1.16b|4e200820
        rev64 v0.4h, v1.4h|0e600820
        rev64 v0.8h, v1.8h|4e600820
        rev64 v0.2s, v1.2s|0ea00820
        rev64 v0.4s, v1.4s|4ea00820
        rev32 v0.8b, v1.8b|2e200820
        rev32 v0.16b, v1.16b|6e200820
        rev32 v0.4h, v1.4h|2e600820
        rev32 v0.8h, v1.8h|6e600820
        rev16 v0.8b, v1.8b|0e201820
        rev16 v0.16b, v1.16b|4e201820
        saddlp v0.4h, v1.8b|0e202820
        saddlp v0.8h, v1.16b|4e202820
        saddlp v0.2s, v1.4h|0e602820
        saddlp v0.4s, v1.8h|4e602820
        saddlp v0.1d, v1.2s|0ea02820
        saddlp v0.2d, v1.4s|4ea02820
        uaddlp v0.4h, v1.8b|2e202820
        uaddlp v0.8h, v1.16b|6e202820
        uaddlp v0.2s, v1.4h|2e602820
        uaddlp v0.4s, v1.8h|6e602820
        uaddlp v0.1d, v1.2s|2ea02820
        uaddlp v0.2d, v1.4s|6ea02820
        sadalp v0.4h, v1.8b|0e206820
        sadalp v0.8h, v1.16b|4e206820
        sadalp v0.2s, v1.4h|0e606820
        sadalp v0.4s, v1.8h|4e606820
        sadalp v0.1d, v1.2s|0ea06820
        sadalp v0.2d, v1.4s|4ea06820
        uadalp v0.4h, v1.8b|2e206820
        uadalp v0.8h, v1.16b|6e206820
        uadalp v0.2s, v1.4h|2e606820
        uadalp v0.4s, v1.8h|6e606820
        uadalp v0.1d, v1.2s|2ea06820
        uadalp v0.2d, v1.4s|6ea06820
        suqadd v0.8b, v1.8b|0e203820
        suqadd v0.16b, v1.16b|4e203820
        suqadd v0.4h, v1.4h|0e603820
        suqadd v0.8h, v1.8h|4e603820
        suqadd v0.2s, v1.2s|0ea03820
        suqadd v0.4s, v1.4s|4ea03820
        suqadd v0.2d, v1.2d|4ee03820
        usqadd v0.8b, v1.8b|2e203820
        usqadd v0.16b, v1.16b|6e203820
        usqadd v0.4h, v1.4h|2e603820
        usqadd v0.8h, v1.8h|6e603820
        usqadd v0.2s, v1.2s|2ea03820
        usqadd v0.4s, v1.4s|6ea03820
        usqadd v0.2d, v1.2d|6ee03820
        sqabs v0.8b, v1.8b|0e207820
        sqabs v0.16b, v1.16b|4e207820
        sqabs v0.4h, v1.4h|0e607820
        sqabs v0.8h, v1.8h|4e607820
        sqabs v0.2s, v1.2s|0ea07820
        sqabs v0.4s, v1.4s|4ea07820
        sqabs v0.2d, v1.2d|4ee07820
        sqneg v0.8b, v1.8b|2e207820
        sqneg v0.16b, v1.16b|6e207820
        sqneg v0.4h, v1.4h|2e607820
        sqneg v0.8h, v1.8h|6e607820
        sqneg v0.2s, v1.2s|2ea07820
        sqneg v0.4s, v1.4s|6ea07820
        sqneg v0.2d, v1.2d|6ee07820
        abs v0.8b, v1.8b|0e20b820
        abs v0.16b, v1.16b|4e20b820
        abs v0.4h, v1.4h|0e60b820
        abs v0.8h, v1.8h|4e60b820
        abs v0.2s, v1.2s|0ea0b820
        abs v0.4s, v1.4s|4ea0b820
        abs v0.2d, v1.2d|4ee0b820
        neg v0.8b, v1.8b|2e20b820
        neg v0.16b, v1.16b|6e20b820
        neg v0.4h, v1.4h|2e60b820
        neg v0.8h, v1.8h|6e60b820
        neg v0.2s, v1.2s|2ea0b820
        neg v0.4s, v1.4s|6ea0b820
        neg v0.2d, v1.2d|6ee0b820
        cmgt v0.8b, v1.8b, #0|0e208820
        cmgt v0.16b, v1.16b, #0|4e208820
        cmgt v0.4h, v1.4h, #0|0e608820
        cmgt v0.8h, v1.8h, #0|4e608820
        cmgt v0.2s, v1.2s, #0|0ea08820
        cmgt v0.4s, v1.4s, #0|4ea08820
        cmgt v0.2d, v1.2d, #0|4ee08820
        cmeq v0.8b, v1.8b, #0|0e209820
        cmeq v0.16b, v1.16b, #0|4e209820
        cmeq v0.4h, v1.4h, #0|0e609820
        cmeq v0.8h, v1.8h, #0|4e609820
        cmeq v0.2s, v1.2s, #0|0ea09820
        cmeq v0.4s, v1.4s, #0|4ea09820
        cmeq v0.2d, v1.2d, #0|4ee09820
        cmlt v0.8b, v1.8b, #0|0e20a820
        cmlt v0.16b, v1.16b, #0|4e20a820
        cmlt v0.4h, v1.4h, #0|0e60a820
        cmlt v0.8h, v1.8h, #0|4e60a820
        cmlt v0.2s, v1.2s, #0|0ea0a820
        cmlt v0.4s, v1.4s, #0|4ea0a820
        cmlt v0.2d, v1.2d, #0|4ee0a820
        cmge v0.8b, v1.8b, #0|2e208820
        cmge v0.16b, v1.16b, #0|6e208820
        cmge v0.4h, v1.4h, #0|2e608820
        cmge v0.8h, v1.8h, #0|6e608820
        cmge v0.2s, v1.2s, #0|2ea08820
        cmge v0.4s, v1.4s, #0|6ea08820
        cmge v0.2d, v1.2d, #0|6ee08820
        cmle v0.8b, v1.8b, #0|2e209820
        cmle v0.16b, v1.16b, #0|6e209820
        cmle v0.4h, v1.4h, #0|2e609820
        cmle v0.8h, v1.8h, #0|6e609820
        cmle v0.2s, v1.2s, #0|2ea09820
        cmle v0.4s, v1.4s, #0|6ea09820
        cmle v0.2d, v1.2d, #0|6ee09820
        cls v0.8b, v1.8b|0e204820
        cls v0.16b, v1.16b|4e204820
        cls v0.4h, v1.4h|0e604820
        cls v0.8h, v1.8h|4e604820
        cls v0.2s, v1.2s|0ea04820
        cls v0.4s, v1.4s|4ea04820
        clz v0.8b, v1.8b|2e204820
        clz v0.16b, v1.16b|6e204820
        clz v0.4h, v1.4h|2e604820
        clz v0.8h, v1.8h|6e604820
        clz v0.2s, v1.2s|2ea04820
        clz v0.4s, v1.4s|6ea04820
        cnt v0.8b, v1.8b|0e205820
        cnt v0.16b, v1.16b|4e205820
        not v0.8b, v1.8b|2e205820
        not v0.16b, v1.16b|6e205820
        rbit v0.8b, v1.8b|2e605820
        rbit v0.16b, v1.16b|6e605820
        mvn v0.16b, v1.16b|6e205820
        xtn v0.8b, v1.8h|0e212820
        xtn2 v0.16b, v1.8h|4e212820
        xtn v0.4h, v1.4s|0e612820
        xtn v0.2s, v1.2d|0ea12820
        xtn2 v0.4s, v1.2d|4ea12820
        sqxtn v0.8b, v1.8h|0e214820
        sqxtn2 v0.16b, v1.8h|4e214820
        sqxtn v0.4h, v1.4s|0e614820
        sqxtn v0.2s, v1.2d|0ea14820
        sqxtn2 v0.4s, v1.2d|4ea14820
        uqxtn v0.8b, v1.8h|2e214820
        uqxtn2 v0.16b, v1.8h|6e214820
        uqxtn v0.4h, v1.4s|2e614820
        uqxtn v0.2s, v1.2d|2ea14820
        uqxtn2 v0.4s, v1.2d|6ea14820
        sqxtun v0.8b, v1.8h|2e212820
        sqxtun2 v0.16b, v1.8h|6e212820
        sqxtun v0.4h, v1.4s|2e612820
        sqxtun v0.2s, v1.2d|2ea12820
        sqxtun2 v0.4s, v1.2d|6ea12820
        shll v0.8h, v1.8b, #8|2e213820
        shll2 v0.4s, v1.8h, #16|6e613820
        shll v0.2d, v1.2s, #32|2ea13820
        fcvtn v0.4h, v1.4s|0e216820
        fcvtn2 v0.8h, v1.4s|4e216820
        fcvtn v0.2s, v1.2d|0e616820
        fcvtn2 v0.4s, v1.2d|4e616820
        fcvtl v0.4s, v1.4h|0e217820
        fcvtl2 v0.4s, v1.8h|4e217820
        fcvtl v0.2d, v1.2s|0e617820
        fcvtl2 v0.2d, v1.4s|4e617820
        fcvtxn v0.2s, v1.2d|2e616820
        fcvtxn2 v0.4s, v1.2d|6e616820
        frintn v0.2s, v1.2s|0e218820
        frintn v0.4s, v1.4s|4e218820
        frintn v0.2d, v1.2d|4e618820
        frintn v0.4h, v1.4h|0e798820
        frintn v0.8h, v1.8h|4e798820
        frintm v0.2s, v1.2s|0e219820
        frintm v0.4s, v1.4s|4e219820
        frintm v0.2d, v1.2d|4e619820
        frintm v0.4h, v1.4h|0e799820
        frintm v0.8h, v1.8h|4e799820
        frintp v0.2s, v1.2s|0ea18820
        frintp v0.4s, v1.4s|4ea18820
        frintp v0.2d, v1.2d|4ee18820
        frintp v0.4h, v1.4h|0ef98820
        frintp v0.8h, v1.8h|4ef98820
        frintz v0.2s, v1.2s|0ea19820
        frintz v0.4s, v1.4s|4ea19820
        frintz v0.2d, v1.2d|4ee19820
        frintz v0.4h, v1.4h|0ef99820
        frintz v0.8h, v1.8h|4ef99820
        frinta v0.2s, v1.2s|2e218820
        frinta v0.4s, v1.4s|6e218820
        frinta v0.2d, v1.2d|6e618820
        frinta v0.4h, v1.4h|2e798820
        frinta v0.8h, v1.8h|6e798820
        frintx v0.2s, v1.2s|2e219820
        frintx v0.4s, v1.4s|6e219820
        frintx v0.2d, v1.2d|6e619820
        frintx v0.4h, v1.4h|2e799820
        frintx v0.8h, v1.8h|6e799820
        frinti v0.2s, v1.2s|2ea19820
        frinti v0.4s, v1.4s|6ea19820
        frinti v0.2d, v1.2d|6ee19820
        frinti v0.4h, v1.4h|2ef99820
        frinti v0.8h, v1.8h|6ef99820
        fcvtns v0.2s, v1.2s|0e21a820
        fcvtns v0.4s, v1.4s|4e21a820
        fcvtns v0.2d, v1.2d|4e61a820
        fcvtns v0.4h, v1.4h|0e79a820
        fcvtns v0.8h, v1.8h|4e79a820
        fcvtms v0.2s, v1.2s|0e21b820
        fcvtms v0.4s, v1.4s|4e21b820
        fcvtms v0.2d, v1.2d|4e61b820
        fcvtms v0.4h, v1.4h|0e79b820
        fcvtms v0.8h, v1.8h|4e79b820
        fcvtas v0.2s, v1.2s|0e21c820
        fcvtas v0.4s, v1.4s|4e21c820
        fcvtas v0.2d, v1.2d|4e61c820
        fcvtas v0.4h, v1.4h|0e79c820
        fcvtas v0.8h, v1.8h|4e79c820
        fcvtps v0.2s, v1.2s|0ea1a820
        fcvtps v0.4s, v1.4s|4ea1a820
        fcvtps v0.2d, v1.2d|4ee1a820
        fcvtps v0.4h, v1.4h|0ef9a820
        fcvtps v0.8h, v1.8h|4ef9a820
        fcvtzs v0.2s, v1.2s|0ea1b820
        fcvtzs v0.4s, v1.4s|4ea1b820
        fcvtzs v0.2d, v1.2d|4ee1b820
        fcvtzs v0.4h, v1.4h|0ef9b820
        fcvtzs v0.8h, v1.8h|4ef9b820
        fcvtnu v0.2s, v1.2s|2e21a820
        fcvtnu v0.4s, v1.4s|6e21a820
        fcvtnu v0.2d, v1.2d|6e61a820
        fcvtnu v0.4h, v1.4h|2e79a820
        fcvtnu v0.8h, v1.8h|6e79a820
        fcvtmu v0.2s, v1.2s|2e21b820
        fcvtmu v0.4s, v1.4s|6e21b820
        fcvtmu v0.2d, v1.2d|6e61b820
        fcvtmu v0.4h, v1.4h|2e79b820
        fcvtmu v0.8h, v1.8h|6e79b820
        fcvtau v0.2s, v1.2s|2e21c820
        fcvtau v0.4s, v1.4s|6e21c820
        fcvtau v0.2d, v1.2d|6e61c820
        fcvtau v0.4h, v1.4h|2e79c820
        fcvtau v0.8h, v1.8h|6e79c820
        fcvtpu v0.2s, v1.2s|2ea1a820
        fcvtpu v0.4s, v1.4s|6ea1a820
        fcvtpu v0.2d, v1.2d|6ee1a820
        fcvtpu v0.4h, v1.4h|2ef9a820
        fcvtpu v0.8h, v1.8h|6ef9a820
        fcvtzu v0.2s, v1.2s|2ea1b820
        fcvtzu v0.4s, v1.4s|6ea1b820
        fcvtzu v0.2d, v1.2d|6ee1b820
        fcvtzu v0.4h, v1.4h|2ef9b820
        fcvtzu v0.8h, v1.8h|6ef9b820
        scvtf v0.2s, v1.2s|0e21d820
        scvtf v0.4s, v1.4s|4e21d820
        scvtf v0.2d, v1.2d|4e61d820
        scvtf v0.4h, v1.4h|0e79d820
        scvtf v0.8h, v1.8h|4e79d820
        ucvtf v0.2s, v1.2s|2e21d820
        ucvtf v0.4s, v1.4s|6e21d820
        ucvtf v0.2d, v1.2d|6e61d820
        ucvtf v0.4h, v1.4h|2e79d820
        ucvtf v0.8h, v1.8h|6e79d820
        fabs v0.2s, v1.2s|0ea0f820
        fabs v0.4s, v1.4s|4ea0f820
        fabs v0.2d, v1.2d|4ee0f820
        fabs v0.4h, v1.4h|0ef8f820
        fabs v0.8h, v1.8h|4ef8f820
        fneg v0.2s, v1.2s|2ea0f820
        fneg v0.4s, v1.4s|6ea0f820
        fneg v0.2d, v1.2d|6ee0f820
        fneg v0.4h, v1.4h|2ef8f820
        fneg v0.8h, v1.8h|6ef8f820
        fsqrt v0.2s, v1.2s|2ea1f820
        fsqrt v0.4s, v1.4s|6ea1f820
        fsqrt v0.2d, v1.2d|6ee1f820
        fsqrt v0.4h, v1.4h|2ef9f820
        fsqrt v0.8h, v1.8h|6ef9f820
        frecpe v0.2s, v1.2s|0ea1d820
        frecpe v0.4s, v1.4s|4ea1d820
        frecpe v0.2d, v1.2d|4ee1d820
        frecpe v0.4h, v1.4h|0ef9d820
        frecpe v0.8h, v1.8h|4ef9d820
        frsqrte v0.2s, v1.2s|2ea1d820
        frsqrte v0.4s, v1.4s|6ea1d820
        frsqrte v0.2d, v1.2d|6ee1d820
        frsqrte v0.4h, v1.4h|2ef9d820
        frsqrte v0.8h, v1.8h|6ef9d820
        fcmgt v0.2s, v1.2s, #0.0|0ea0c820
        fcmgt v0.4s, v1.4s, #0.0|4ea0c820
        fcmgt v0.2d, v1.2d, #0.0|4ee0c820
        fcmgt v0.4h, v1.4h, #0.0|0ef8c820
        fcmgt v0.8h, v1.8h, #0.0|4ef8c820
        fcmeq v0.2s, v1.2s, #0.0|0ea0d820
        fcmeq v0.4s, v1.4s, #0.0|4ea0d820
        fcmeq v0.2d, v1.2d, #0.0|4ee0d820
        fcmeq v0.4h, v1.4h, #0.0|0ef8d820
        fcmeq v0.8h, v1.8h, #0.0|4ef8d820
        fcmlt v0.2s, v1.2s, #0.0|0ea0e820
        fcmlt v0.4s, v1.4s, #0.0|4ea0e820
        fcmlt v0.2d, v1.2d, #0.0|4ee0e820
        fcmlt v0.4h, v1.4h, #0.0|0ef8e820
        fcmlt v0.8h, v1.8h, #0.0|4ef8e820
        fcmge v0.2s, v1.2s, #0.0|2ea0c820
        fcmge v0.4s, v1.4s, #0.0|6ea0c820
        fcmge v0.2d, v1.2d, #0.0|6ee0c820
        fcmge v0.4h, v1.4h, #0.0|2ef8c820
        fcmge v0.8h, v1.8h, #0.0|6ef8c820
        fcmle v0.2s, v1.2s, #0.0|2ea0d820
        fcmle v0.4s, v1.4s, #0.0|6ea0d820
        fcmle v0.2d, v1.2d, #0.0|6ee0d820
        fcmle v0.4h, v1.4h, #0.0|2ef8d820
        fcmle v0.8h, v1.8h, #0.0|6ef8d820
        urecpe v0.2s, v1.2s|0ea1c820
        urecpe v0.4s, v1.4s|4ea1c820
        ursqrte v0.2s, v1.2s|2ea1c820
        ursqrte v0.4s, v1.4s|6ea1c820
        """;
}
