// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Half precision (.H) in SVE floating point (Arm ARM C8.2 FADD, FMLA, FCMGT… with size = 01; shared pseudocode
/// FPAdd, FPMulAdd, FPCompare… at N = 16). A half operand is widened to double exactly, keeping a NaN's signalling bit
/// and the top of its payload (so FPProcessNaNs picks the same operand and FPQuiet/FPConvertNaN keep the same payload
/// bits), the double operation runs, and its result is rounded to half once (FPRoundCV with FPCR.RMode: IXC, UFC, OFC).
/// That is exact for FADD/FSUB/FMUL/FMAX/FMIN/compares (every sum, difference and product of two halves is a double)
/// and equal to one rounding for FDIV, FSQRT and FMLA: the double result is rounded again only when it is inexact, and
/// 53 ≥ 2 × 11 + 2 bits makes the second rounding innocuous for division and square root; for the fused
/// multiply-add, a product of halves spans at most 22 bits and an addend at least 2^-24, so a double rounding of the
/// exact sum can land on a half midpoint only above 2^29, where the result overflows anyway. FABD rounds the
/// difference first, then clears the sign (FPAbs(FPSub(…))). FPCR.FZ16 (bit 19) is FPUnpackBase's and FPRoundBase's
/// flush at N = 16: a denormal half operand is a zero of its sign without IDC (<see cref="HalfFlushIn"/>), and a
/// result tiny before rounding (|exact| &lt; 2^−14) is a zero of its sign with UFC alone — no IXC (<see
/// cref="HalfOut"/>); the conversions between precisions ignore it (FPUnpackCV, FPRoundCV). SCVTF/UCVTF to .H and
/// FCVTZS/FCVTZU from .H (FixedToFP / FPToFixed at N = 16) are <see cref="FixedToHalf"/> and <see cref="HalfToFixed"/>.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>FPCR.FZ16 (bit 19).</summary>
    private const uint FpcrFz16 = 1u << 19;

    /// <summary>Half bits → double bits, exactly (a NaN keeps its quiet bit and payload, shifted into place).</summary>
    private static ulong HalfToDouble(ulong h)
    {
        ulong sign = (h >> 15) & 1;
        int exp = (int)((h >> 10) & 31);
        ulong frac = h & 0x3FF;
        if (exp == 31) return (sign << 63) | 0x7FF0_0000_0000_0000UL | (frac << 42);
        double value = exp == 0 ? Math.ScaleB((double)frac, -24) : Math.ScaleB((double)(frac | 0x400), exp - 25);
        return (sign << 63) | BitConverter.DoubleToUInt64Bits(value);
    }

    /// <summary>
    /// FPUnpackBase at N = 16 (Arm ARM shared pseudocode): "if IsZero(exp16) then if IsZero(frac16) || fpcr.FZ16 == '1'
    /// then fptype = FPType_Zero" — a denormal half under FPCR.FZ16 is a zero of its sign, and no Input Denormal
    /// exception is raised (unlike FPCR.FZ for single and double).
    /// </summary>
    private ulong HalfFlushIn(ulong h)
    {
        if ((cpu.Fpcr & FpcrFz16) == 0 || (h & 0x7C00) != 0 || (h & 0x3FF) == 0) return h;
        return h & 0x8000;
    }

    /// <summary>
    /// The half result of a double result <paramref name="r"/> computed from half operands: FPRoundBase at N = 16 —
    /// under FPCR.FZ16 a non-zero finite result below 2^−14 (tiny before rounding: a tiny exact result of these
    /// operations is a double exactly, and rounding to double cannot cross the power of two) is a zero of its sign, the
    /// flags the double operation raised (IXC only: every other flag means a NaN, ∞ or non-tiny result) are dropped and
    /// UFC alone is raised ("Flush-to-zero never generates a trapped exception", FPSR.UFC = '1'); otherwise FpToHalf
    /// rounds it in FPCR.RMode.
    /// </summary>
    private ulong HalfOut(ulong r, uint fpsrBefore)
    {
        double v = BitConverter.UInt64BitsToDouble(r);
        if ((cpu.Fpcr & FpcrFz16) != 0 && v != 0 && double.IsFinite(v) && Math.Abs(v) < HalfMinNormal)
        {
            cpu.Fpsr = fpsrBefore | FpsrUfc;
            return (r >> 48) & 0x8000;
        }
        return FpToHalf(r, dbl: true);
    }

    /// <summary>2^−14, the smallest normal half.</summary>
    private const double HalfMinNormal = 1.0 / 16384;

    /// <summary>A half operand (flushed under FPCR.FZ16) as double bits.</summary>
    private ulong HalfIn(ulong h) => HalfToDouble(HalfFlushIn(h & 0xFFFF));

    /// <summary>FpBinary (the SVE predicated FP operation opc) at element size <paramref name="esz"/>.</summary>
    private ulong FpBinaryE(uint opc, ulong x, ulong y, int esz)
    {
        if (esz != 2) return FpBinary(opc, x, y, esz == 8);
        x = HalfFlushIn(x);
        y = HalfFlushIn(y);
        uint before = cpu.Fpsr;
        if (opc == 8) return HalfOut(FpBinary(1, HalfToDouble(x), HalfToDouble(y), true), before) & 0x7FFF; // FABD
        if (opc is 12 or 13 && (x & 0x7FFF) is 0 or 0x7C00 && (x & 0x7FFF) == (y & 0x7FFF))
        {
            // FPDiv: 0 ÷ 0 and ∞ ÷ ∞ are invalid (IOC, the default NaN). Decided here because the double FpArith
            // refuses a NaN quotient of a zero dividend under a directed rounding mode (its residual check).
            return FpToHalf(FpInvalid(dbl: true), dbl: true);
        }
        return HalfOut(FpBinary(opc, HalfToDouble(x), HalfToDouble(y), true), before);
    }

    private ulong FpArithE(FpOp op, ulong x, ulong y, int esz)
    {
        if (esz != 2) return FpArith(op, x, y, esz == 8);
        uint before = cpu.Fpsr;
        return HalfOut(FpArith(op, HalfIn(x), HalfIn(y), true), before);
    }

    private ulong FpMulAddE(ulong addend, ulong n, ulong m, int esz)
    {
        if (esz != 2) return FpMulAdd(addend, n, m, esz == 8);
        uint before = cpu.Fpsr;
        return HalfOut(FpMulAdd(HalfIn(addend), HalfIn(n), HalfIn(m), true), before);
    }

    private uint FpCompareFlagsE(ulong x, ulong y, int esz, bool signal)
    {
        if (esz != 2) return FpCompareFlags(x, y, esz == 8, signal);
        return FpCompareFlags(HalfIn(x), HalfIn(y), true, signal);
    }

    private ulong FpSqrtE(ulong x, int esz)
    {
        if (esz != 2) return FpSqrt(x, esz == 8);
        uint before = cpu.Fpsr;
        return HalfOut(FpSqrt(HalfIn(x), true), before);
    }

    /// <summary>The sign bit of an element of <paramref name="esz"/> bytes.</summary>
    private static ulong SignBitE(int esz) => 1UL << (8 * esz - 1);

    /// <summary>An FP constant as element bits (half, single or double).</summary>
    private static ulong FpConstE(double c, int esz) => esz switch
    {
        2 => BitConverter.HalfToUInt16Bits((Half)c),
        4 => BitConverter.SingleToUInt32Bits((float)c),
        _ => BitConverter.DoubleToUInt64Bits(c),
    };

    /// <summary>
    /// FCVTZS/FCVTZU from .H: FPToFixed(element&lt;15:0&gt;, 0, unsigned, FPCR, FPRounding_ZERO, <paramref name="bits"/>).
    /// </summary>
    private ulong HalfToFixed(ulong x, int bits, bool unsigned) => HalfToFixedScaled(x, 0, bits, unsigned, MidpointRounding.ToZero);

    /// <summary>
    /// FPToFixed(half, <paramref name="fbits"/>, unsigned, FPCR, <paramref name="rounding"/>, <paramref name="bits"/>).
    /// The half converts through the 32- or 64-bit conversion of its exact double scaled by 2^fbits (a NaN: 0 and IOC;
    /// out of range: the bound and IOC, without IXC; IXC for a dropped fraction), then SatQ to 16 bits: every half whose
    /// scaled magnitude is 2^15 or more is an integer after scaling (11 significant bits, fbits ≤ 16), so a 16-bit
    /// overflow never had a fraction to report and only adds IOC. FPToFixed unpacks with FPUnpack, so FPCR.FZ16 flushes
    /// a denormal operand to an exact zero (no IXC, no IDC).
    /// </summary>
    private ulong HalfToFixedScaled(ulong x, int fbits, int bits, bool unsigned, MidpointRounding rounding)
    {
        ulong r = FpToFixed(HalfIn(x), dbl: true, fbits, sf: bits == 64, unsigned, rounding);
        if (bits != 16) return r;
        long v = unsigned ? (uint)r : (int)(uint)r;
        long lo = unsigned ? 0 : short.MinValue, hi = unsigned ? ushort.MaxValue : short.MaxValue;
        if (v < lo || v > hi)
        {
            FpFlag(FpsrIoc);
            v = Math.Clamp(v, lo, hi);
        }
        return (ulong)v & 0xFFFF;
    }

    /// <summary>
    /// SCVTF/UCVTF to .H: FixedToFP(element&lt;bits-1:0&gt;, 0, unsigned, FPCR, FPCR.RMode, 16), zero-extended in the
    /// element (<see cref="FixedToHalfScaled"/>; an integer is never a half subnormal, so FZ16 has no effect).
    /// </summary>
    private ulong FixedToHalf(ulong x, int bits, bool unsigned) => FixedToHalfScaled(bits switch
    {
        16 => unsigned ? (ushort)x : (short)x,
        32 => unsigned ? (uint)x : (int)(uint)x,
        _ => unsigned ? x : (Int128)(long)x,
    }, 0);
}
