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
/// difference first, then clears the sign (FPAbs(FPSub(…))). FPCR.FZ16 (flush half denormals) is not modelled: an
/// SVE half-precision operation with it set stops the run as an emulation failure. SCVTF/UCVTF to .H and
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

    private void RefuseFz16()
    {
        if ((cpu.Fpcr & FpcrFz16) != 0) throw new UnsupportedInstructionStop(LastInstruction);
    }

    /// <summary>FpBinary (the SVE predicated FP operation opc) at element size <paramref name="esz"/>.</summary>
    private ulong FpBinaryE(uint opc, ulong x, ulong y, int esz)
    {
        if (esz != 2) return FpBinary(opc, x, y, esz == 8);
        RefuseFz16();
        if (opc == 8) return FpToHalf(FpBinary(1, HalfToDouble(x), HalfToDouble(y), true), dbl: true) & 0x7FFF; // FABD
        if (opc is 12 or 13 && (x & 0x7FFF) is 0 or 0x7C00 && (x & 0x7FFF) == (y & 0x7FFF))
        {
            // FPDiv: 0 ÷ 0 and ∞ ÷ ∞ are invalid (IOC, the default NaN). Decided here because the double FpArith
            // refuses a NaN quotient of a zero dividend under a directed rounding mode (its residual check).
            return FpToHalf(FpInvalid(dbl: true), dbl: true);
        }
        return FpToHalf(FpBinary(opc, HalfToDouble(x), HalfToDouble(y), true), dbl: true);
    }

    private ulong FpArithE(FpOp op, ulong x, ulong y, int esz)
    {
        if (esz != 2) return FpArith(op, x, y, esz == 8);
        RefuseFz16();
        return FpToHalf(FpArith(op, HalfToDouble(x), HalfToDouble(y), true), dbl: true);
    }

    private ulong FpMulAddE(ulong addend, ulong n, ulong m, int esz)
    {
        if (esz != 2) return FpMulAdd(addend, n, m, esz == 8);
        RefuseFz16();
        return FpToHalf(FpMulAdd(HalfToDouble(addend), HalfToDouble(n), HalfToDouble(m), true), dbl: true);
    }

    private uint FpCompareFlagsE(ulong x, ulong y, int esz, bool signal)
    {
        if (esz != 2) return FpCompareFlags(x, y, esz == 8, signal);
        RefuseFz16();
        return FpCompareFlags(HalfToDouble(x), HalfToDouble(y), true, signal);
    }

    private ulong FpSqrtE(ulong x, int esz)
    {
        if (esz != 2) return FpSqrt(x, esz == 8);
        RefuseFz16();
        return FpToHalf(FpSqrt(HalfToDouble(x), true), dbl: true);
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
    /// The half converts through the 32- or 64-bit conversion of its exact double (a NaN: 0 and IOC; out of range: the
    /// bound and IOC, without IXC; IXC for a dropped fraction), then SatQ to 16 bits: every half of magnitude 2^15 or
    /// more is an integer, so a 16-bit overflow never had a fraction to report and only adds IOC.
    /// </summary>
    private ulong HalfToFixed(ulong x, int bits, bool unsigned)
    {
        RefuseFz16();
        ulong r = FpToInteger(HalfToDouble(x & 0xFFFF), dbl: true, sf: bits == 64, unsigned, MidpointRounding.ToZero);
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
    /// element. A 16- or 32-bit integer is a double exactly and FpToHalf rounds it once (IXC, OFC); a 64-bit one beyond
    /// 2^53 may round on its way to double, but any magnitude of 2^16 or more overflows half in every mode (OFC, IXC)
    /// whatever the first rounding did. FixedToFP ignores FPCR.AHP and FZ16 (an integer is never a half subnormal).
    /// </summary>
    private ulong FixedToHalf(ulong x, int bits, bool unsigned)
    {
        double value = bits switch
        {
            16 => unsigned ? (ushort)x : (short)x,
            32 => unsigned ? (uint)x : (int)(uint)x,
            _ => unsigned ? (double)x : (long)x,
        };
        return FpToHalf(BitConverter.DoubleToUInt64Bits(value), dbl: true);
    }
}
