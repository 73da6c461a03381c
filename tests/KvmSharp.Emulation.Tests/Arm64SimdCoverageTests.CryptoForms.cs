// SPDX-License-Identifier: MIT
// Arm64SimdCoverageTests forms: the Cryptographic Extension (AES, SHA1, SHA256), FPCR/FPSR access.
namespace KvmSharp.Emulation.Tests;

public partial class Arm64SimdCoverageTests
{
    private const string CryptoForms = """
        aese v0.16b, v1.16b|4e284820
        aesd v0.16b, v1.16b|4e285820
        aesmc v0.16b, v1.16b|4e286820
        aesimc v0.16b, v1.16b|4e287820
        sha1c q0, s1, v2.4s|5e020020
        sha1p q0, s1, v2.4s|5e021020
        sha1m q0, s1, v2.4s|5e022020
        sha1su0 v0.4s, v1.4s, v2.4s|5e023020
        sha256h q0, q1, v2.4s|5e024020
        sha256h2 q0, q1, v2.4s|5e025020
        sha256su1 v0.4s, v1.4s, v2.4s|5e026020
        sha1h s0, s1|5e280820
        sha1su1 v0.4s, v1.4s|5e281820
        sha256su0 v0.4s, v1.4s|5e282820
        mrs x0, fpcr|d53b4400
        msr fpsr, x0|d51b4420
        """;
}
