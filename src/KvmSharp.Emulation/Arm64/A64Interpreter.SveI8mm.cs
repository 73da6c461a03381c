// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The SVE Int8 matrix multiply instructions (FEAT_I8MM with FEAT_SVE, ID_AA64ZFR0_EL1.I8MM bits 47:44 ≥ 1; Arm ARM
/// DDI 0487 C8.2 SMMLA, UMMLA, USMMLA, USDOT, SUDOT), decoded and feature-checked with the BFloat16 ones
/// (A64Interpreter.SveBf16.cs <see cref="TrySveBf16"/>).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// SMMLA (uns 00: both signed), USMMLA (10: Zn unsigned, Zm signed), UMMLA (11: both unsigned) (C8.2; MatMulAdd
    /// per 128-bit segment): Zda.S[2i + j] += Σk Zn.B[8i + k] × Zm.B[8j + k], i, j &lt; 2, k &lt; 8, wrapping.
    /// </summary>
    private bool SveIntMatMul(uint insn)
    {
        uint uns = (insn >> 22) & 3; // 01 is reserved (TrySveBf16)
        bool nUnsigned = uns != 0, mUnsigned = uns == 3;
        int zda = (int)(insn & 31);
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z((int)((insn >> 16) & 31), _z2);
        Span<uint> r = stackalloc uint[4];
        for (int seg = 0; seg < _vl / 16; seg++)
        {
            int b = 16 * seg;
            for (int i = 0; i < 2; i++)
            {
                for (int j = 0; j < 2; j++)
                {
                    int sum = (int)E(d, 4 * seg + 2 * i + j, 4);
                    for (int k = 0; k < 8; k++)
                        sum += (int)Ev(n, b + 8 * i + k, 1, nUnsigned) * (int)Ev(m, b + 8 * j + k, 1, mUnsigned);
                    r[2 * i + j] = (uint)sum;
                }
            }
            for (int k = 0; k < 4; k++) SetE(d, 4 * seg + k, 4, r[k]);
        }
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>
    /// USDOT (vectors: Zda.S[e] += Σk UInt(Zn.B[4e + k]) × SInt(Zm.B[4e + k])); USDOT/SUDOT (indexed, U = bit 10: 0
    /// USDOT, 1 SUDOT with Zn signed and Zm unsigned; Zm in bits 18:16, the group segmentbase + i2) (C8.2).
    /// </summary>
    private bool SveMixedDot(uint insn, bool indexed)
    {
        bool sudot = indexed && ((insn >> 10) & 1) != 0;
        int zda = (int)(insn & 31), index = (int)((insn >> 19) & 3);
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z((int)((insn >> 16) & (indexed ? 7u : 31u)), _z2);
        for (int e = 0; e < Elements(4); e++)
        {
            int s = indexed ? e - e % 4 + index : e;
            int sum = (int)E(d, e, 4);
            for (int k = 0; k < 4; k++) sum += (int)Ev(n, 4 * e + k, 1, !sudot) * (int)Ev(m, 4 * s + k, 1, sudot);
            SetE(d, e, 4, (uint)sum);
        }
        SetZ(zda, d);
        Next();
        return true;
    }
}
