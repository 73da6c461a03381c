// SPDX-License-Identifier: MIT
// Arm64SimdCoverageTests forms: Floating-point data processing, compare, select and conversions to and from integers.
namespace KvmSharp.Emulation.Tests;

public partial class Arm64SimdCoverageTests
{
    private const string FloatingPointForms = """
        fmov s0, s1|1e204020
        fabs s0, s1|1e20c020
        fneg s0, s1|1e214020
        fsqrt s0, s1|1e21c020
        frintn s0, s1|1e244020
        frintp s0, s1|1e24c020
        frintm s0, s1|1e254020
        frintz s0, s1|1e25c020
        frinta s0, s1|1e264020
        frintx s0, s1|1e274020
        frinti s0, s1|1e27c020
        fadd s0, s1, s2|1e222820
        fsub s0, s1, s2|1e223820
        fmul s0, s1, s2|1e220820
        fdiv s0, s1, s2|1e221820
        fmax s0, s1, s2|1e224820
        fmin s0, s1, s2|1e225820
        fmaxnm s0, s1, s2|1e226820
        fminnm s0, s1, s2|1e227820
        fnmul s0, s1, s2|1e228820
        fmadd s0, s1, s2, s3|1f020c20
        fmsub s0, s1, s2, s3|1f028c20
        fnmadd s0, s1, s2, s3|1f220c20
        fnmsub s0, s1, s2, s3|1f228c20
        fcmp s1, s2|1e222020
        fcmp s1, #0.0|1e202028
        fcmpe s1, s2|1e222030
        fcmpe s1, #0.0|1e202038
        fccmp s1, s2, #5, ne|1e221425
        fccmpe s1, s2, #5, ne|1e221435
        fcsel s0, s1, s2, lt|1e22bc20
        fmov s0, #1.25|1e2e9000
        fcvtns w0, s1|1e200020
        fcvtnu w0, s1|1e210020
        fcvtps w0, s1|1e280020
        fcvtpu w0, s1|1e290020
        fcvtms w0, s1|1e300020
        fcvtmu w0, s1|1e310020
        fcvtas w0, s1|1e240020
        fcvtau w0, s1|1e250020
        fcvtzs w0, s1|1e380020
        fcvtzu w0, s1|1e390020
        scvtf s0, w1|1e220020
        scvtf s0, w1, #7|1e02e420
        ucvtf s0, w1|1e230020
        ucvtf s0, w1, #7|1e03e420
        fcvtzs w0, s1, #7|1e18e420
        fcvtzu w0, s1, #7|1e19e420
        fcvtns x0, s1|9e200020
        fcvtnu x0, s1|9e210020
        fcvtps x0, s1|9e280020
        fcvtpu x0, s1|9e290020
        fcvtms x0, s1|9e300020
        fcvtmu x0, s1|9e310020
        fcvtas x0, s1|9e240020
        fcvtau x0, s1|9e250020
        fcvtzs x0, s1|9e380020
        fcvtzu x0, s1|9e390020
        scvtf s0, x1|9e220020
        scvtf s0, x1, #7|9e02e420
        ucvtf s0, x1|9e230020
        ucvtf s0, x1, #7|9e03e420
        fcvtzs x0, s1, #7|9e18e420
        fcvtzu x0, s1, #7|9e19e420
        fmov d0, d1|1e604020
        fabs d0, d1|1e60c020
        fneg d0, d1|1e614020
        fsqrt d0, d1|1e61c020
        frintn d0, d1|1e644020
        frintp d0, d1|1e64c020
        frintm d0, d1|1e654020
        frintz d0, d1|1e65c020
        frinta d0, d1|1e664020
        frintx d0, d1|1e674020
        frinti d0, d1|1e67c020
        fadd d0, d1, d2|1e622820
        fsub d0, d1, d2|1e623820
        fmul d0, d1, d2|1e620820
        fdiv d0, d1, d2|1e621820
        fmax d0, d1, d2|1e624820
        fmin d0, d1, d2|1e625820
        fmaxnm d0, d1, d2|1e626820
        fminnm d0, d1, d2|1e627820
        fnmul d0, d1, d2|1e628820
        fmadd d0, d1, d2, d3|1f420c20
        fmsub d0, d1, d2, d3|1f428c20
        fnmadd d0, d1, d2, d3|1f620c20
        fnmsub d0, d1, d2, d3|1f628c20
        fcmp d1, d2|1e622020
        fcmp d1, #0.0|1e602028
        fcmpe d1, d2|1e622030
        fcmpe d1, #0.0|1e602038
        fccmp d1, d2, #5, ne|1e621425
        fccmpe d1, d2, #5, ne|1e621435
        fcsel d0, d1, d2, lt|1e62bc20
        fmov d0, #1.25|1e6e9000
        fcvtns w0, d1|1e600020
        fcvtnu w0, d1|1e610020
        fcvtps w0, d1|1e680020
        fcvtpu w0, d1|1e690020
        fcvtms w0, d1|1e700020
        fcvtmu w0, d1|1e710020
        fcvtas w0, d1|1e640020
        fcvtau w0, d1|1e650020
        fcvtzs w0, d1|1e780020
        fcvtzu w0, d1|1e790020
        scvtf d0, w1|1e620020
        scvtf d0, w1, #7|1e42e420
        ucvtf d0, w1|1e630020
        ucvtf d0, w1, #7|1e43e420
        fcvtzs w0, d1, #7|1e58e420
        fcvtzu w0, d1, #7|1e59e420
        fcvtns x0, d1|9e600020
        fcvtnu x0, d1|9e610020
        fcvtps x0, d1|9e680020
        fcvtpu x0, d1|9e690020
        fcvtms x0, d1|9e700020
        fcvtmu x0, d1|9e710020
        fcvtas x0, d1|9e640020
        fcvtau x0, d1|9e650020
        fcvtzs x0, d1|9e780020
        fcvtzu x0, d1|9e790020
        scvtf d0, x1|9e620020
        scvtf d0, x1, #7|9e42e420
        ucvtf d0, x1|9e630020
        ucvtf d0, x1, #7|9e43e420
        fcvtzs x0, d1, #7|9e58e420
        fcvtzu x0, d1, #7|9e59e420
        fmov h0, h1|1ee04020
        fabs h0, h1|1ee0c020
        fneg h0, h1|1ee14020
        fsqrt h0, h1|1ee1c020
        frintn h0, h1|1ee44020
        frintp h0, h1|1ee4c020
        frintm h0, h1|1ee54020
        frintz h0, h1|1ee5c020
        frinta h0, h1|1ee64020
        frintx h0, h1|1ee74020
        frinti h0, h1|1ee7c020
        fadd h0, h1, h2|1ee22820
        fsub h0, h1, h2|1ee23820
        fmul h0, h1, h2|1ee20820
        fdiv h0, h1, h2|1ee21820
        fmax h0, h1, h2|1ee24820
        fmin h0, h1, h2|1ee25820
        fmaxnm h0, h1, h2|1ee26820
        fminnm h0, h1, h2|1ee27820
        fnmul h0, h1, h2|1ee28820
        fmadd h0, h1, h2, h3|1fc20c20
        fmsub h0, h1, h2, h3|1fc28c20
        fnmadd h0, h1, h2, h3|1fe20c20
        fnmsub h0, h1, h2, h3|1fe28c20
        fcmp h1, h2|1ee22020
        fcmp h1, #0.0|1ee02028
        fcmpe h1, h2|1ee22030
        fcmpe h1, #0.0|1ee02038
        fccmp h1, h2, #5, ne|1ee21425
        fccmpe h1, h2, #5, ne|1ee21435
        fcsel h0, h1, h2, lt|1ee2bc20
        fmov h0, #1.25|1eee9000
        fcvtns w0, h1|1ee00020
        fcvtnu w0, h1|1ee10020
        fcvtps w0, h1|1ee80020
        fcvtpu w0, h1|1ee90020
        fcvtms w0, h1|1ef00020
        fcvtmu w0, h1|1ef10020
        fcvtas w0, h1|1ee40020
        fcvtau w0, h1|1ee50020
        fcvtzs w0, h1|1ef80020
        fcvtzu w0, h1|1ef90020
        scvtf h0, w1|1ee20020
        scvtf h0, w1, #7|1ec2e420
        ucvtf h0, w1|1ee30020
        ucvtf h0, w1, #7|1ec3e420
        fcvtzs w0, h1, #7|1ed8e420
        fcvtzu w0, h1, #7|1ed9e420
        fcvtns x0, h1|9ee00020
        fcvtnu x0, h1|9ee10020
        fcvtps x0, h1|9ee80020
        fcvtpu x0, h1|9ee90020
        fcvtms x0, h1|9ef00020
        fcvtmu x0, h1|9ef10020
        fcvtas x0, h1|9ee40020
        fcvtau x0, h1|9ee50020
        fcvtzs x0, h1|9ef80020
        fcvtzu x0, h1|9ef90020
        scvtf h0, x1|9ee20020
        scvtf h0, x1, #7|9ec2e420
        ucvtf h0, x1|9ee30020
        ucvtf h0, x1, #7|9ec3e420
        fcvtzs x0, h1, #7|9ed8e420
        fcvtzu x0, h1, #7|9ed9e420
        fcvt d0, s1|1e22c020
        fcvt s0, d1|1e624020
        fcvt h0, s1|1e23c020
        fcvt h0, d1|1e63c020
        fcvt s0, h1|1ee24020
        fcvt d0, h1|1ee2c020
        fmov w0, s1|1e260020
        fmov s0, w1|1e270020
        fmov x0, d1|9e660020
        fmov d0, x1|9e670020
        fmov x0, v1.d[1]|9eae0020
        fmov v0.d[1], x1|9eaf0020
        fmov w0, h1|1ee60020
        fmov h0, w1|1ee70020
        fmov x0, h1|9ee60020
        fmov h0, x1|9ee70020
        """;
}
