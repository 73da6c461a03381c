// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The AdvSIMD Int8 matrix multiply instructions (FEAT_I8MM, ID_AA64ISAR1_EL1.I8MM bits 55:52 ≥ 1; Arm ARM DDI 0487
/// C7.2 SMMLA, UMMLA, USMMLA, USDOT, SUDOT), decoded and feature-checked with the BFloat16 ones
/// (A64Interpreter.SimdBf16.cs <see cref="TrySimdBf16"/>).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>Byte <paramref name="index"/> of <paramref name="v"/>, zero- or sign-extended.</summary>
    private static int Byte(UInt128 v, int index, bool unsigned) =>
        unsigned ? (int)Elem(v, index, 8) : (sbyte)(byte)Elem(v, index, 8);

    /// <summary>
    /// SMMLA (both signed), USMMLA (Vn unsigned, Vm signed), UMMLA (both unsigned) (C7.2; MatMulAdd, Q = 1 only):
    /// Vd.S[2i + j] += Σk Vn.B[8i + k] × Vm.B[8j + k], i, j &lt; 2, k &lt; 8, wrapping — SVE SMMLA on one segment.
    /// </summary>
    private void SimdIntMatMul(uint insn, bool nUnsigned, bool mUnsigned)
    {
        int rd = (int)(insn & 31);
        UInt128 d = cpu.Vregs[rd], n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], result = 0;
        for (int i = 0; i < 2; i++)
        {
            for (int j = 0; j < 2; j++)
            {
                int sum = (int)Elem(d, 2 * i + j, 32);
                for (int k = 0; k < 8; k++) sum += Byte(n, 8 * i + k, nUnsigned) * Byte(m, 8 * j + k, mUnsigned);
                result = WithElem(result, 2 * i + j, 32, (uint)sum);
            }
        }
        SetV(rd, result);
    }

    /// <summary>
    /// USDOT (vector: Vd.S[e] += Σk UInt(Vn.B[4e + k]) × SInt(Vm.B[4e + k]); by element: Vm = M:Rm and the group H:L of
    /// the whole 128-bit Vm for every e) and SUDOT (by element only: Vn signed, Vm unsigned); Q selects 64 or 128 bits,
    /// wrapping (C7.2 USDOT, SUDOT).
    /// </summary>
    private void SimdMixedDot(uint insn, bool indexed, bool sudot) => SimdByteDot(insn, indexed, !sudot, sudot);
}
