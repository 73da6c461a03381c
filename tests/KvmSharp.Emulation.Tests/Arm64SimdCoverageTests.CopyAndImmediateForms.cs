// SPDX-License-Identifier: MIT
// Arm64SimdCoverageTests forms: Advanced SIMD copy (DUP, SMOV, UMOV, INS) and modified immediate (MOVI, MVNI, …).
namespace KvmSharp.Emulation.Tests;

public partial class Arm64SimdCoverageTests
{
    private const string CopyAndImmediateForms = """
        dup v0.8b, v1.b[7]|0e0f0420
        dup v0.16b, v1.b[15]|4e1f0420
        dup v0.4h, v1.h[3]|0e0e0420
        dup v0.8h, v1.h[7]|4e1e0420
        dup v0.2s, v1.s[1]|0e0c0420
        dup v0.4s, v1.s[3]|4e1c0420
        dup v0.2d, v1.d[1]|4e180420
        dup v0.8b, w1|0e010c20
        dup v0.16b, w1|4e010c20
        dup v0.4h, w1|0e020c20
        dup v0.8h, w1|4e020c20
        dup v0.2s, w1|0e040c20
        dup v0.4s, w1|4e040c20
        dup v0.2d, x1|4e080c20
        smov w0, v1.b[3]|0e072c20
        smov w0, v1.h[3]|0e0e2c20
        smov x0, v1.b[3]|4e072c20
        smov x0, v1.h[3]|4e0e2c20
        smov x0, v1.s[3]|4e1c2c20
        umov w0, v1.b[3]|0e073c20
        umov w0, v1.h[3]|0e0e3c20
        umov w0, v1.s[3]|0e1c3c20
        umov x0, v1.d[1]|4e183c20
        ins v0.b[1], w1|4e031c20
        ins v0.h[1], w1|4e061c20
        ins v0.s[1], w1|4e0c1c20
        ins v0.d[1], x1|4e181c20
        ins v0.b[1], v1.b[0]|6e030420
        ins v0.h[1], v1.h[0]|6e060420
        ins v0.s[1], v1.s[0]|6e0c0420
        ins v0.d[1], v1.d[0]|6e180420
        dup b0, v1.b[1]|5e030420
        dup h0, v1.h[1]|5e060420
        dup s0, v1.s[1]|5e0c0420
        dup d0, v1.d[1]|5e180420
        movi v0.8b, #0xab|0f05e560
        movi v0.16b, #0xab|4f05e560
        movi v0.4h, #0xab|0f058560
        movi v0.8h, #0xab, lsl #8|4f05a560
        movi v0.2s, #0xab|0f050560
        movi v0.4s, #0xab, lsl #24|4f056560
        movi v0.2s, #0xab, msl #8|0f05c560
        movi v0.4s, #0xab, msl #16|4f05d560
        movi d0, #0xff00ff00ff00ff00|2f05e540
        movi v0.2d, #0xff00ff00ff00ff00|6f05e540
        mvni v0.4h, #0xab|2f058560
        mvni v0.8h, #0xab, lsl #8|6f05a560
        mvni v0.2s, #0xab, lsl #16|2f054560
        mvni v0.4s, #0xab, msl #8|6f05c560
        orr v0.4h, #0xab|0f059560
        orr v0.4s, #0xab, lsl #8|4f053560
        bic v0.8h, #0xab|6f059560
        bic v0.2s, #0xab, lsl #24|2f057560
        fmov v0.2s, #1.5|0f03f700
        fmov v0.4s, #-2.0|4f04f400
        fmov v0.2d, #0.5|6f03f400
        fmov v0.4h, #1.5|0f03ff00
        fmov v0.8h, #-2.0|4f04fc00
        """;
}
