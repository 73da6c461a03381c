// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The BFloat16 arithmetic shared by the SVE (A64Interpreter.SveBf16.cs) and the AdvSIMD/scalar
/// (A64Interpreter.SimdBf16.cs) BF16 instructions: the Arm ARM DDI 0487 shared pseudocode BFUnpack, BFMul, BFAdd,
/// BFRound and BFDotAdd without FEAT_EBF16 (no FP exception, FPCR.RMode/FZ/DN ignored, round to odd, fixed flush to
/// zero), and FPConvertBF (FPCR.RMode, FZ, DN and the FPSR flags) for BFCVT/BFCVTN/BFCVTNT.
/// </summary>
internal sealed partial class A64Interpreter
{
    private const uint BfDefaultNan = 0x7FC0_0000;

    /// <summary>BFUnpack of single bits: 0 zero (any zero exponent), 1 infinity, 2 NaN (always quiet), 3 a normal number.</summary>
    private static int BfClass(uint x, out double value)
    {
        uint exp = (x >> 23) & 0xFF;
        value = 0;
        if (exp == 0) return 0;
        if (exp == 0xFF) return (x & 0x7F_FFFF) == 0 ? 1 : 2;
        value = BitConverter.UInt32BitsToSingle(x);
        return 3;
    }

    /// <summary>
    /// BFRound(exact) for a non-zero exact value s + err (err the exact error of the double s, |err| ≤ ½ ulp(s)): a
    /// magnitude below 2^−126 is a zero of its sign (fixed flush to zero, tininess before rounding), 2^128 or more is
    /// ∞, anything else is truncated to single and its lowest fraction bit set when that was inexact (round to odd).
    /// </summary>
    private static uint BfRound(double s, double err)
    {
        uint sign = double.IsNegative(s) ? 0x8000_0000u : 0;
        double mag = Math.Abs(s), e = s < 0 ? -err : err; // the exact magnitude is mag + e
        if (mag < SingleMinNormal || (mag == SingleMinNormal && e < 0)) return sign;
        if (mag > SingleOverflowBound || (mag == SingleOverflowBound && e >= 0)) return sign | 0x7F80_0000u;
        float f = (float)mag;
        if ((double)f > mag) f = MathF.BitDecrement(f);
        bool inexact = (double)f != mag || e != 0;
        if ((double)f == mag && e < 0) f = MathF.BitDecrement(f);
        uint bits = BitConverter.SingleToUInt32Bits(f);
        return sign | (inexact ? bits | 1 : bits);
    }

    /// <summary>BFMul(op1, op2): the BFloat16 product as single (exact in double, then BFRound).</summary>
    private static uint BfMul(uint a, uint b)
    {
        int ta = BfClass(a << 16, out double va), tb = BfClass(b << 16, out double vb);
        uint sign = ((a ^ b) & 0x8000) << 16;
        if (ta == 2 || tb == 2 || (ta == 1 && tb == 0) || (ta == 0 && tb == 1)) return BfDefaultNan;
        if (ta == 1 || tb == 1) return sign | 0x7F80_0000u;
        if (ta == 0 || tb == 0) return sign;
        return BfRound(va * vb, 0);
    }

    /// <summary>BFAdd(op1, op2) on single bits (TwoSum gives the exact sum s + err).</summary>
    private static uint BfAdd(uint a, uint b)
    {
        int ta = BfClass(a, out double va), tb = BfClass(b, out double vb);
        uint sa = a & 0x8000_0000u, sb = b & 0x8000_0000u;
        if (ta == 2 || tb == 2 || (ta == 1 && tb == 1 && sa != sb)) return BfDefaultNan;
        if (ta == 1) return sa | 0x7F80_0000u;
        if (tb == 1) return sb | 0x7F80_0000u;
        if (ta == 0 && tb == 0 && sa == sb) return sa;
        double s = va + vb, err = TwoSumError(va, vb, s);
        if (s == 0 && err == 0) return 0; // "Positive sign when Round to Odd"
        return BfRound(s, err);
    }

    /// <summary>BFDotAdd(addend, op1_a, op1_b, op2_a, op2_b) without FEAT_EBF16: addend + (a1 × a2 + b1 × b2).</summary>
    private static uint BfDotAdd(uint addend, uint a1, uint b1, uint a2, uint b2) =>
        BfAdd(addend, BfAdd(BfMul(a1, a2), BfMul(b1, b2)));

    /// <summary>
    /// BFMulAddH(addend, op1, op2, FPCR) without FEAT_EBF16: FPMulAdd(addend, op1 : Zeros(16), op2 : Zeros(16), FPCR) —
    /// the BFloat16 operands widened to single exactly (a signalling NaN stays signalling), FPCR.RMode, FZ and DN and
    /// the FPSR flags of the single fused multiply-add.
    /// </summary>
    private ulong BfMulAddH(ulong addend, ulong a, ulong b) => FpMulAdd(addend, (a & 0xFFFF) << 16, (b & 0xFFFF) << 16, dbl: false) & 0xFFFF_FFFF;

    /// <summary>
    /// FPConvertBF(op, FPCR) (FPUnpack, FPRoundBF): the single operand flushed under FPCR.FZ (IDC); a NaN gives the
    /// default NaN under FPCR.DN, else the quietened NaN's top half (IOC when signalling); ∞ and zeros keep their sign;
    /// otherwise the low 16 bits are rounded away in FPCR.RMode — a carry into the exponent is the overflow to ∞ (OFC),
    /// IXC when inexact, and UFC too when the operand was a denormal (tiny before rounding).
    /// </summary>
    private ulong FpConvertBf(uint a)
    {
        a = (uint)FpFlushIn(a, dbl: false);
        uint exp = (a >> 23) & 0xFF, hi = a >> 16, low = a & 0xFFFF;
        if (exp == 0xFF && (a & 0x7F_FFFF) != 0)
        {
            if ((a & 0x40_0000) == 0) FpFlag(FpsrIoc);
            return FpDefaultNan ? BfDefaultNan >> 16 : (a | 0x40_0000) >> 16;
        }
        if (low == 0 || exp == 0xFF) return hi; // exact (∞ has a zero fraction)
        bool negative = (a >> 31) != 0;
        bool up = FpRMode switch
        {
            0 => low > 0x8000 || (low == 0x8000 && (hi & 1) != 0),
            1 => !negative,
            2 => negative,
            _ => false,
        };
        if (up) hi++;
        if ((hi & 0x7F80) == 0x7F80) FpFlag(FpsrOfc | FpsrIxc);
        else FpFlag(exp == 0 ? FpsrUfc | FpsrIxc : FpsrIxc);
        return hi;
    }
}
