// SPDX-License-Identifier: MIT
// Arm64SimdCoverageTests forms: Advanced SIMD scalar forms.
namespace KvmSharp.Emulation.Tests;

public partial class Arm64SimdCoverageTests
{
    private const string ScalarForms = """
        addp d0, v1.2d|5ef1b820
        faddp s0, v1.2s|7e30d820
        faddp d0, v1.2d|7e70d820
        faddp h0, v1.2h|5e30d820
        fmaxp s0, v1.2s|7e30f820
        fmaxp d0, v1.2d|7e70f820
        fmaxp h0, v1.2h|5e30f820
        fminp s0, v1.2s|7eb0f820
        fminp d0, v1.2d|7ef0f820
        fminp h0, v1.2h|5eb0f820
        fmaxnmp s0, v1.2s|7e30c820
        fmaxnmp d0, v1.2d|7e70c820
        fmaxnmp h0, v1.2h|5e30c820
        fminnmp s0, v1.2s|7eb0c820
        fminnmp d0, v1.2d|7ef0c820
        fminnmp h0, v1.2h|5eb0c820
        sqadd b0, b1, b2|5e220c20
        sqadd h0, h1, h2|5e620c20
        sqadd s0, s1, s2|5ea20c20
        sqadd d0, d1, d2|5ee20c20
        uqadd b0, b1, b2|7e220c20
        uqadd h0, h1, h2|7e620c20
        uqadd s0, s1, s2|7ea20c20
        uqadd d0, d1, d2|7ee20c20
        sqsub b0, b1, b2|5e222c20
        sqsub h0, h1, h2|5e622c20
        sqsub s0, s1, s2|5ea22c20
        sqsub d0, d1, d2|5ee22c20
        uqsub b0, b1, b2|7e222c20
        uqsub h0, h1, h2|7e622c20
        uqsub s0, s1, s2|7ea22c20
        uqsub d0, d1, d2|7ee22c20
        sqshl b0, b1, b2|5e224c20
        sqshl h0, h1, h2|5e624c20
        sqshl s0, s1, s2|5ea24c20
        sqshl d0, d1, d2|5ee24c20
        uqshl b0, b1, b2|7e224c20
        uqshl h0, h1, h2|7e624c20
        uqshl s0, s1, s2|7ea24c20
        uqshl d0, d1, d2|7ee24c20
        sqrshl b0, b1, b2|5e225c20
        sqrshl h0, h1, h2|5e625c20
        sqrshl s0, s1, s2|5ea25c20
        sqrshl d0, d1, d2|5ee25c20
        uqrshl b0, b1, b2|7e225c20
        uqrshl h0, h1, h2|7e625c20
        uqrshl s0, s1, s2|7ea25c20
        uqrshl d0, d1, d2|7ee25c20
        cmgt d0, d1, d2|5ee23420
        cmhi d0, d1, d2|7ee23420
        cmge d0, d1, d2|5ee23c20
        cmhs d0, d1, d2|7ee23c20
        sshl d0, d1, d2|5ee24420
        ushl d0, d1, d2|7ee24420
        srshl d0, d1, d2|5ee25420
        urshl d0, d1, d2|7ee25420
        add d0, d1, d2|5ee28420
        sub d0, d1, d2|7ee28420
        cmtst d0, d1, d2|5ee28c20
        cmeq d0, d1, d2|7ee28c20
        sqdmulh h0, h1, h2|5e62b420
        sqdmulh s0, s1, s2|5ea2b420
        sqrdmulh h0, h1, h2|7e62b420
        sqrdmulh s0, s1, s2|7ea2b420
        sqrdmlah h0, h1, h2|7e428420
        sqrdmlah s0, s1, s2|7e828420
        sqrdmlsh h0, h1, h2|7e428c20
        sqrdmlsh s0, s1, s2|7e828c20
        fmulx s0, s1, s2|5e22dc20
        fmulx d0, d1, d2|5e62dc20
        fmulx h0, h1, h2|5e421c20
        fcmeq s0, s1, s2|5e22e420
        fcmeq d0, d1, d2|5e62e420
        fcmeq h0, h1, h2|5e422420
        frecps s0, s1, s2|5e22fc20
        frecps d0, d1, d2|5e62fc20
        frecps h0, h1, h2|5e423c20
        frsqrts s0, s1, s2|5ea2fc20
        frsqrts d0, d1, d2|5ee2fc20
        frsqrts h0, h1, h2|5ec23c20
        fcmge s0, s1, s2|7e22e420
        fcmge d0, d1, d2|7e62e420
        fcmge h0, h1, h2|7e422420
        facge s0, s1, s2|7e22ec20
        facge d0, d1, d2|7e62ec20
        facge h0, h1, h2|7e422c20
        fabd s0, s1, s2|7ea2d420
        fabd d0, d1, d2|7ee2d420
        fabd h0, h1, h2|7ec21420
        fcmgt s0, s1, s2|7ea2e420
        fcmgt d0, d1, d2|7ee2e420
        fcmgt h0, h1, h2|7ec22420
        facgt s0, s1, s2|7ea2ec20
        facgt d0, d1, d2|7ee2ec20
        facgt h0, h1, h2|7ec22c20
        suqadd b0, b1|5e203820
        suqadd h0, h1|5e603820
        suqadd s0, s1|5ea03820
        suqadd d0, d1|5ee03820
        usqadd b0, b1|7e203820
        usqadd h0, h1|7e603820
        usqadd s0, s1|7ea03820
        usqadd d0, d1|7ee03820
        sqabs b0, b1|5e207820
        sqabs h0, h1|5e607820
        sqabs s0, s1|5ea07820
        sqabs d0, d1|5ee07820
        sqneg b0, b1|7e207820
        sqneg h0, h1|7e607820
        sqneg s0, s1|7ea07820
        sqneg d0, d1|7ee07820
        abs d0, d1|5ee0b820
        neg d0, d1|7ee0b820
        cmgt d0, d1, #0|5ee08820
        cmeq d0, d1, #0|5ee09820
        cmlt d0, d1, #0|5ee0a820
        cmge d0, d1, #0|7ee08820
        cmle d0, d1, #0|7ee09820
        sqxtn b0, h1|5e214820
        sqxtn h0, s1|5e614820
        sqxtn s0, d1|5ea14820
        uqxtn b0, h1|7e214820
        uqxtn h0, s1|7e614820
        uqxtn s0, d1|7ea14820
        sqxtun b0, h1|7e212820
        sqxtun h0, s1|7e612820
        sqxtun s0, d1|7ea12820
        fcvtxn s0, d1|7e616820
        fcvtns s0, s1|5e21a820
        fcvtns d0, d1|5e61a820
        fcvtns h0, h1|5e79a820
        fcvtms s0, s1|5e21b820
        fcvtms d0, d1|5e61b820
        fcvtms h0, h1|5e79b820
        fcvtas s0, s1|5e21c820
        fcvtas d0, d1|5e61c820
        fcvtas h0, h1|5e79c820
        fcvtps s0, s1|5ea1a820
        fcvtps d0, d1|5ee1a820
        fcvtps h0, h1|5ef9a820
        fcvtzs s0, s1|5ea1b820
        fcvtzs d0, d1|5ee1b820
        fcvtzs h0, h1|5ef9b820
        fcvtnu s0, s1|7e21a820
        fcvtnu d0, d1|7e61a820
        fcvtnu h0, h1|7e79a820
        fcvtmu s0, s1|7e21b820
        fcvtmu d0, d1|7e61b820
        fcvtmu h0, h1|7e79b820
        fcvtau s0, s1|7e21c820
        fcvtau d0, d1|7e61c820
        fcvtau h0, h1|7e79c820
        fcvtpu s0, s1|7ea1a820
        fcvtpu d0, d1|7ee1a820
        fcvtpu h0, h1|7ef9a820
        fcvtzu s0, s1|7ea1b820
        fcvtzu d0, d1|7ee1b820
        fcvtzu h0, h1|7ef9b820
        scvtf s0, s1|5e21d820
        scvtf d0, d1|5e61d820
        scvtf h0, h1|5e79d820
        ucvtf s0, s1|7e21d820
        ucvtf d0, d1|7e61d820
        ucvtf h0, h1|7e79d820
        frecpe s0, s1|5ea1d820
        frecpe d0, d1|5ee1d820
        frecpe h0, h1|5ef9d820
        frsqrte s0, s1|7ea1d820
        frsqrte d0, d1|7ee1d820
        frsqrte h0, h1|7ef9d820
        frecpx s0, s1|5ea1f820
        frecpx d0, d1|5ee1f820
        frecpx h0, h1|5ef9f820
        fcmgt s0, s1, #0.0|5ea0c820
        fcmgt d0, d1, #0.0|5ee0c820
        fcmgt h0, h1, #0.0|5ef8c820
        fcmeq s0, s1, #0.0|5ea0d820
        fcmeq d0, d1, #0.0|5ee0d820
        fcmeq h0, h1, #0.0|5ef8d820
        fcmlt s0, s1, #0.0|5ea0e820
        fcmlt d0, d1, #0.0|5ee0e820
        fcmlt h0, h1, #0.0|5ef8e820
        fcmge s0, s1, #0.0|7ea0c820
        fcmge d0, d1, #0.0|7ee0c820
        fcmge h0, h1, #0.0|7ef8c820
        fcmle s0, s1, #0.0|7ea0d820
        fcmle d0, d1, #0.0|7ee0d820
        fcmle h0, h1, #0.0|7ef8d820
        sshr d0, d1, #17|5f6f0420
        ssra d0, d1, #17|5f6f1420
        srshr d0, d1, #17|5f6f2420
        srsra d0, d1, #17|5f6f3420
        ushr d0, d1, #17|7f6f0420
        usra d0, d1, #17|7f6f1420
        urshr d0, d1, #17|7f6f2420
        ursra d0, d1, #17|7f6f3420
        sri d0, d1, #17|7f6f4420
        shl d0, d1, #17|5f515420
        sli d0, d1, #17|7f515420
        sqshl b0, b1, #3|5f0b7420
        sqshl h0, h1, #9|5f197420
        sqshl s0, s1, #20|5f347420
        sqshl d0, d1, #40|5f687420
        uqshl b0, b1, #3|7f0b7420
        uqshl h0, h1, #9|7f197420
        uqshl s0, s1, #20|7f347420
        uqshl d0, d1, #40|7f687420
        sqshlu b0, b1, #3|7f0b6420
        sqshlu h0, h1, #9|7f196420
        sqshlu s0, s1, #20|7f346420
        sqshlu d0, d1, #40|7f686420
        sqshrn b0, h1, #3|5f0d9420
        sqshrn h0, s1, #9|5f179420
        sqshrn s0, d1, #20|5f2c9420
        sqrshrn b0, h1, #3|5f0d9c20
        sqrshrn h0, s1, #9|5f179c20
        sqrshrn s0, d1, #20|5f2c9c20
        uqshrn b0, h1, #3|7f0d9420
        uqshrn h0, s1, #9|7f179420
        uqshrn s0, d1, #20|7f2c9420
        uqrshrn b0, h1, #3|7f0d9c20
        uqrshrn h0, s1, #9|7f179c20
        uqrshrn s0, d1, #20|7f2c9c20
        sqshrun b0, h1, #3|7f0d8420
        sqshrun h0, s1, #9|7f178420
        sqshrun s0, d1, #20|7f2c8420
        sqrshrun b0, h1, #3|7f0d8c20
        sqrshrun h0, s1, #9|7f178c20
        sqrshrun s0, d1, #20|7f2c8c20
        """;
}
