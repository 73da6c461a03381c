// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>PLACEHOLDER (helper "crypto" replaces it): FEAT_SHA512, FEAT_SHA3, FEAT_SM3, FEAT_SM4.</summary>
internal sealed partial class A64Interpreter
{
    private static bool TrySimdCryptoExtensions(uint insn) => false;
}
