// SPDX-License-Identifier: MIT
// Arm64SimdCoverageTests forms: Advanced SIMD across lanes.
namespace KvmSharp.Emulation.Tests;

public partial class Arm64SimdCoverageTests
{
    private const string AcrossLanesForms = """
        saddlv h0, v1.8b|0e303820
        saddlv h0, v1.16b|4e303820
        saddlv s0, v1.4h|0e703820
        saddlv s0, v1.8h|4e703820
        saddlv d0, v1.4s|4eb03820
        uaddlv h0, v1.8b|2e303820
        uaddlv h0, v1.16b|6e303820
        uaddlv s0, v1.4h|2e703820
        uaddlv s0, v1.8h|6e703820
        uaddlv d0, v1.4s|6eb03820
        smaxv b0, v1.8b|0e30a820
        smaxv b0, v1.16b|4e30a820
        smaxv h0, v1.4h|0e70a820
        smaxv h0, v1.8h|4e70a820
        smaxv s0, v1.4s|4eb0a820
        sminv b0, v1.8b|0e31a820
        sminv b0, v1.16b|4e31a820
        sminv h0, v1.4h|0e71a820
        sminv h0, v1.8h|4e71a820
        sminv s0, v1.4s|4eb1a820
        umaxv b0, v1.8b|2e30a820
        umaxv b0, v1.16b|6e30a820
        umaxv h0, v1.4h|2e70a820
        umaxv h0, v1.8h|6e70a820
        umaxv s0, v1.4s|6eb0a820
        uminv b0, v1.8b|2e31a820
        uminv b0, v1.16b|6e31a820
        uminv h0, v1.4h|2e71a820
        uminv h0, v1.8h|6e71a820
        uminv s0, v1.4s|6eb1a820
        addv b0, v1.8b|0e31b820
        addv b0, v1.16b|4e31b820
        addv h0, v1.4h|0e71b820
        addv h0, v1.8h|4e71b820
        addv s0, v1.4s|4eb1b820
        fmaxnmv s0, v1.4s|6e30c820
        fmaxnmv h0, v1.4h|0e30c820
        fmaxnmv h0, v1.8h|4e30c820
        fmaxv s0, v1.4s|6e30f820
        fmaxv h0, v1.4h|0e30f820
        fmaxv h0, v1.8h|4e30f820
        fminnmv s0, v1.4s|6eb0c820
        fminnmv h0, v1.4h|0eb0c820
        fminnmv h0, v1.8h|4eb0c820
        fminv s0, v1.4s|6eb0f820
        fminv h0, v1.4h|0eb0f820
        fminv h0, v1.8h|4eb0f820
        """;
}
