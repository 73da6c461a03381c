// SPDX-License-Identifier: MIT
// Arm64SimdCoverageTests forms: SIMD&FP loads and stores: single register, pair, structures.
namespace KvmSharp.Emulation.Tests;

public partial class Arm64SimdCoverageTests
{
    private const string LoadStoreForms = """
        ldr b0, [x1, #16]|3d404020
        str b0, [x1, #16]|3d004020
        ldur b0, [x1, #-16]|3c5f0020
        stur b0, [x1, #-16]|3c1f0020
        ldr b0, [x1], #16|3c410420
        str b0, [x1, #16]!|3c010c20
        ldr b0, [x1, x2]|3c626820
        str b0, [x1, w2, sxtw]|3c22c820
        ldr h0, [x1, #16]|7d402020
        str h0, [x1, #16]|7d002020
        ldur h0, [x1, #-16]|7c5f0020
        stur h0, [x1, #-16]|7c1f0020
        ldr h0, [x1], #16|7c410420
        str h0, [x1, #16]!|7c010c20
        ldr h0, [x1, x2]|7c626820
        str h0, [x1, w2, sxtw]|7c22c820
        ldr s0, [x1, #16]|bd401020
        str s0, [x1, #16]|bd001020
        ldur s0, [x1, #-16]|bc5f0020
        stur s0, [x1, #-16]|bc1f0020
        ldr s0, [x1], #16|bc410420
        str s0, [x1, #16]!|bc010c20
        ldr s0, [x1, x2]|bc626820
        str s0, [x1, w2, sxtw]|bc22c820
        ldr d0, [x1, #16]|fd400820
        str d0, [x1, #16]|fd000820
        ldur d0, [x1, #-16]|fc5f0020
        stur d0, [x1, #-16]|fc1f0020
        ldr d0, [x1], #16|fc410420
        str d0, [x1, #16]!|fc010c20
        ldr d0, [x1, x2]|fc626820
        str d0, [x1, w2, sxtw]|fc22c820
        ldr q0, [x1, #16]|3dc00420
        str q0, [x1, #16]|3d800420
        ldur q0, [x1, #-16]|3cdf0020
        stur q0, [x1, #-16]|3c9f0020
        ldr q0, [x1], #16|3cc10420
        str q0, [x1, #16]!|3c810c20
        ldr q0, [x1, x2]|3ce26820
        str q0, [x1, w2, sxtw]|3ca2c820
        ldr s0, .+16|1c000080
        ldp s0, s1, [x2, #32]|2d440440
        stp s0, s1, [x2], #32|2c840440
        ldp s0, s1, [x2, #-32]!|2dfc0440
        ldnp s0, s1, [x2]|2c400440
        stnp s0, s1, [x2]|2c000440
        ldr d0, .+16|5c000080
        ldp d0, d1, [x2, #32]|6d420440
        stp d0, d1, [x2], #32|6c820440
        ldp d0, d1, [x2, #-32]!|6dfe0440
        ldnp d0, d1, [x2]|6c400440
        stnp d0, d1, [x2]|6c000440
        ldr q0, .+16|9c000080
        ldp q0, q1, [x2, #32]|ad410440
        stp q0, q1, [x2], #32|ac810440
        ldp q0, q1, [x2, #-32]!|adff0440
        ldnp q0, q1, [x2]|ac400440
        stnp q0, q1, [x2]|ac000440
        ld1 {v0.4s}, [x1]|4c407820
        ld1 {v0.4s}, [x1], #16|4cdf7820
        ld1 {v0.4s}, [x1], x2|4cc27820
        ld1 {v0.s}[1], [x1]|0d409020
        ld1 {v0.s}[3], [x1], #4|4ddf9020
        st1 {v0.4s}, [x1]|4c007820
        st1 {v0.4s}, [x1], #16|4c9f7820
        st1 {v0.4s}, [x1], x2|4c827820
        st1 {v0.s}[1], [x1]|0d009020
        st1 {v0.s}[3], [x1], #4|4d9f9020
        ld1r {v0.8h}, [x1]|4d40c420
        ld1r {v0.8h}, [x1], #2|4ddfc420
        ld2 {v0.4s, v1.4s}, [x1]|4c408820
        ld2 {v0.4s, v1.4s}, [x1], #32|4cdf8820
        ld2 {v0.4s, v1.4s}, [x1], x2|4cc28820
        ld2 {v0.s, v1.s}[1], [x1]|0d609020
        ld2 {v0.s, v1.s}[3], [x1], #8|4dff9020
        st2 {v0.4s, v1.4s}, [x1]|4c008820
        st2 {v0.4s, v1.4s}, [x1], #32|4c9f8820
        st2 {v0.4s, v1.4s}, [x1], x2|4c828820
        st2 {v0.s, v1.s}[1], [x1]|0d209020
        st2 {v0.s, v1.s}[3], [x1], #8|4dbf9020
        ld2r {v0.8h, v1.8h}, [x1]|4d60c420
        ld2r {v0.8h, v1.8h}, [x1], #4|4dffc420
        ld3 {v0.4s, v1.4s, v2.4s}, [x1]|4c404820
        ld3 {v0.4s, v1.4s, v2.4s}, [x1], #48|4cdf4820
        ld3 {v0.4s, v1.4s, v2.4s}, [x1], x2|4cc24820
        ld3 {v0.s, v1.s, v2.s}[1], [x1]|0d40b020
        ld3 {v0.s, v1.s, v2.s}[3], [x1], #12|4ddfb020
        st3 {v0.4s, v1.4s, v2.4s}, [x1]|4c004820
        st3 {v0.4s, v1.4s, v2.4s}, [x1], #48|4c9f4820
        st3 {v0.4s, v1.4s, v2.4s}, [x1], x2|4c824820
        st3 {v0.s, v1.s, v2.s}[1], [x1]|0d00b020
        st3 {v0.s, v1.s, v2.s}[3], [x1], #12|4d9fb020
        ld3r {v0.8h, v1.8h, v2.8h}, [x1]|4d40e420
        ld3r {v0.8h, v1.8h, v2.8h}, [x1], #6|4ddfe420
        ld4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1]|4c400820
        ld4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1], #64|4cdf0820
        ld4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1], x2|4cc20820
        ld4 {v0.s, v1.s, v2.s, v3.s}[1], [x1]|0d60b020
        ld4 {v0.s, v1.s, v2.s, v3.s}[3], [x1], #16|4dffb020
        st4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1]|4c000820
        st4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1], #64|4c9f0820
        st4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1], x2|4c820820
        st4 {v0.s, v1.s, v2.s, v3.s}[1], [x1]|0d20b020
        st4 {v0.s, v1.s, v2.s, v3.s}[3], [x1], #16|4dbfb020
        ld4r {v0.8h, v1.8h, v2.8h, v3.8h}, [x1]|4d60e420
        ld4r {v0.8h, v1.8h, v2.8h, v3.8h}, [x1], #8|4dffe420
        ld1 {v0.8b}, [x1]|0c407020
        ld1 {v0.2d, v1.2d}, [x1]|4c40ac20
        st1 {v0.b}[15], [x1]|4d001c20
        ld1 {v0.d}[1], [x1]|4d408420
        """;
}
