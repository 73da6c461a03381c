// SPDX-License-Identifier: MIT
// Arm64SimdCoverageTests forms: Advanced SIMD permute (UZP, TRN, ZIP), extract and table lookup (TBL, TBX).
namespace KvmSharp.Emulation.Tests;

public partial class Arm64SimdCoverageTests
{
    private const string PermuteAndTableForms = """
        uzp1 v0.8b, v1.8b, v2.8b|0e021820
        uzp1 v0.16b, v1.16b, v2.16b|4e021820
        uzp1 v0.4h, v1.4h, v2.4h|0e421820
        uzp1 v0.8h, v1.8h, v2.8h|4e421820
        uzp1 v0.2s, v1.2s, v2.2s|0e821820
        uzp1 v0.4s, v1.4s, v2.4s|4e821820
        uzp1 v0.2d, v1.2d, v2.2d|4ec21820
        uzp2 v0.8b, v1.8b, v2.8b|0e025820
        uzp2 v0.16b, v1.16b, v2.16b|4e025820
        uzp2 v0.4h, v1.4h, v2.4h|0e425820
        uzp2 v0.8h, v1.8h, v2.8h|4e425820
        uzp2 v0.2s, v1.2s, v2.2s|0e825820
        uzp2 v0.4s, v1.4s, v2.4s|4e825820
        uzp2 v0.2d, v1.2d, v2.2d|4ec25820
        trn1 v0.8b, v1.8b, v2.8b|0e022820
        trn1 v0.16b, v1.16b, v2.16b|4e022820
        trn1 v0.4h, v1.4h, v2.4h|0e422820
        trn1 v0.8h, v1.8h, v2.8h|4e422820
        trn1 v0.2s, v1.2s, v2.2s|0e822820
        trn1 v0.4s, v1.4s, v2.4s|4e822820
        trn1 v0.2d, v1.2d, v2.2d|4ec22820
        trn2 v0.8b, v1.8b, v2.8b|0e026820
        trn2 v0.16b, v1.16b, v2.16b|4e026820
        trn2 v0.4h, v1.4h, v2.4h|0e426820
        trn2 v0.8h, v1.8h, v2.8h|4e426820
        trn2 v0.2s, v1.2s, v2.2s|0e826820
        trn2 v0.4s, v1.4s, v2.4s|4e826820
        trn2 v0.2d, v1.2d, v2.2d|4ec26820
        zip1 v0.8b, v1.8b, v2.8b|0e023820
        zip1 v0.16b, v1.16b, v2.16b|4e023820
        zip1 v0.4h, v1.4h, v2.4h|0e423820
        zip1 v0.8h, v1.8h, v2.8h|4e423820
        zip1 v0.2s, v1.2s, v2.2s|0e823820
        zip1 v0.4s, v1.4s, v2.4s|4e823820
        zip1 v0.2d, v1.2d, v2.2d|4ec23820
        zip2 v0.8b, v1.8b, v2.8b|0e027820
        zip2 v0.16b, v1.16b, v2.16b|4e027820
        zip2 v0.4h, v1.4h, v2.4h|0e427820
        zip2 v0.8h, v1.8h, v2.8h|4e427820
        zip2 v0.2s, v1.2s, v2.2s|0e827820
        zip2 v0.4s, v1.4s, v2.4s|4e827820
        zip2 v0.2d, v1.2d, v2.2d|4ec27820
        ext v0.8b, v1.8b, v2.8b, #3|2e021820
        ext v0.16b, v1.16b, v2.16b, #9|6e024820
        tbl v0.8b, {v1.16b}, v7.8b|0e070020
        tbx v0.16b, {v1.16b}, v7.16b|4e071020
        tbl v0.8b, {v1.16b, v2.16b}, v7.8b|0e072020
        tbx v0.16b, {v1.16b, v2.16b}, v7.16b|4e073020
        tbl v0.8b, {v1.16b, v2.16b, v3.16b}, v7.8b|0e074020
        tbx v0.16b, {v1.16b, v2.16b, v3.16b}, v7.16b|4e075020
        tbl v0.8b, {v1.16b, v2.16b, v3.16b, v4.16b}, v7.8b|0e076020
        tbx v0.16b, {v1.16b, v2.16b, v3.16b, v4.16b}, v7.16b|4e077020
        """;
}
