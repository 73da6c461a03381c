// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The arithmetic of A64Interpreter.FloatingPoint.cs on raw single (in the low 32 bits) or double bit patterns:
/// FPUnpack's flush of denormal inputs, FPProcessNaNs, the operation in .NET's IEEE 754 double (exact for single
/// operands, and a correctly rounded double result rounds correctly to single for +, −, ×, ÷ and √), then FPRoundBase's
/// flags. Inexactness of a double result comes from error-free transformations (TwoSum, the FMA residual).
/// </summary>
internal sealed partial class A64Interpreter
{
    private enum FpOp { Add, Sub, Mul, Div }

    private const double DoubleMinNormal = 2.2250738585072014E-308, SingleMinNormal = 1.1754943508222875E-38;

    private static bool FpIsNan(ulong bits, bool dbl) => dbl ? double.IsNaN(BitConverter.UInt64BitsToDouble(bits)) : float.IsNaN(BitConverter.UInt32BitsToSingle((uint)bits));

    /// <summary>A signalling NaN: the fraction's top bit clear.</summary>
    private static bool FpIsSignalling(ulong bits, bool dbl) => FpIsNan(bits, dbl) && (bits & (dbl ? 1UL << 51 : 1UL << 22)) == 0;

    private static ulong FpQuiet(ulong bits, bool dbl) => bits | (dbl ? 1UL << 51 : 1UL << 22);

    /// <summary>FPDefaultNaN: sign 0, exponent all ones, fraction's top bit set.</summary>
    private static ulong FpDefaultNanBits(bool dbl) => dbl ? 0x7FF8_0000_0000_0000UL : 0x7FC0_0000UL;

    private static double FpToDouble(ulong bits, bool dbl) => dbl ? BitConverter.UInt64BitsToDouble(bits) : BitConverter.UInt32BitsToSingle((uint)bits);

    /// <summary>FPUnpack with FPCR.FZ: a denormal input becomes a zero of its sign and sets IDC.</summary>
    private ulong FpFlushIn(ulong bits, bool dbl)
    {
        if (!FpFlushToZero) return bits;
        bool denormal = dbl ? (bits & 0x7FF0_0000_0000_0000UL) == 0 && (bits & 0x000F_FFFF_FFFF_FFFFUL) != 0
                            : (bits & 0x7F80_0000UL) == 0 && (bits & 0x007F_FFFFUL) != 0;
        if (!denormal) return bits;
        FpFlag(FpsrIdc);
        return bits & (dbl ? 1UL << 63 : 1UL << 31);
    }

    /// <summary>FPProcessNaN: a signalling NaN is quietened and sets IOC; FPCR.DN gives the default NaN instead.</summary>
    private ulong FpProcessNan(ulong bits, bool dbl)
    {
        if (FpIsSignalling(bits, dbl)) FpFlag(FpsrIoc);
        return FpDefaultNan ? FpDefaultNanBits(dbl) : FpQuiet(bits, dbl);
    }

    /// <summary>FPProcessNaNs(3): the first signalling NaN in operand order, else the first quiet NaN.</summary>
    private bool FpProcessNans(ReadOnlySpan<ulong> operands, bool dbl, out ulong result)
    {
        foreach (ulong op in operands)
        {
            if (FpIsSignalling(op, dbl))
            {
                result = FpProcessNan(op, dbl);
                return true;
            }
        }
        foreach (ulong op in operands)
        {
            if (FpIsNan(op, dbl))
            {
                result = FpProcessNan(op, dbl);
                return true;
            }
        }
        result = 0;
        return false;
    }

    /// <summary>An invalid operation (∞−∞, 0×∞, 0÷0, ∞÷∞, √negative): IOC and the default NaN.</summary>
    private ulong FpInvalid(bool dbl)
    {
        FpFlag(FpsrIoc);
        return FpDefaultNanBits(dbl);
    }

    /// <summary>FPAdd / FPSub / FPMul / FPDiv.</summary>
    private ulong FpArith(FpOp op, ulong a, ulong b, bool dbl)
    {
        a = FpFlushIn(a, dbl);
        b = FpFlushIn(b, dbl);
        if (FpProcessNans([a, b], dbl, out ulong nan)) return nan;
        double x = FpToDouble(a, dbl), y = FpToDouble(b, dbl);
        if (op == FpOp.Sub) y = -y;
        double r, residual; // residual: a value with the sign of (exact result − r)
        bool inexact;
        switch (op)
        {
            case FpOp.Mul:
                r = x * y;
                residual = double.IsFinite(r) ? Math.FusedMultiplyAdd(x, y, -r) : 0;
                inexact = double.IsFinite(r) && (r == 0 ? x != 0 && y != 0 : residual != 0);
                // A residual below the subnormal range is lost: an exact-looking tiny product is refused under RMode ≠ RN [D].
                if (dbl && !inexact && r != 0 && Math.Abs(r) < ResidualUnderflowBound) RefuseDirectedRounding();
                break;
            case FpOp.Div:
                r = x / y;
                if (y == 0 && double.IsFinite(x) && x != 0) FpFlag(FpsrDzc);
                residual = double.IsFinite(r) && double.IsFinite(y) && y != 0 ? Math.FusedMultiplyAdd(-r, y, x) * Math.Sign(y) : 0;
                inexact = double.IsFinite(r) && double.IsFinite(y) && y != 0 && (r == 0 ? x != 0 : residual != 0);
                // A NaN (0/0: FPProcessNaNs → the default NaN, IOC) is exact in every mode: nothing to refuse.
                if (dbl && !inexact && double.IsFinite(r) && r != 0 && (Math.Abs(r) < ResidualUnderflowBound || Math.Abs(x) < ResidualUnderflowBound)) RefuseDirectedRounding();
                break;
            default:
                r = x + y;
                residual = double.IsFinite(r) ? TwoSumError(x, y, r) : 0;
                inexact = double.IsFinite(r) && residual != 0;
                // FPAdd: an exact zero sum is −0 in RM and +0 otherwise, unless both operands are zeros of one sign.
                if (r == 0 && !(x == 0 && y == 0 && double.IsNegative(x) == double.IsNegative(y))) r = FpRMode == 2 ? -0.0 : 0.0;
                break;
        }
        if (double.IsNaN(r)) return FpInvalid(dbl);
        bool exactInfinity = double.IsInfinity(x) || double.IsInfinity(y) || (op == FpOp.Div && y == 0);
        return FpRound(r, inexact, dbl, exactInfinity, residual);
    }

    /// <summary>TwoSum (Knuth): the exact error of r = fl(x + y).</summary>
    private static double TwoSumError(double x, double y, double r)
    {
        double yv = r - x, xv = r - yv;
        return (x - xv) + (y - yv);
    }

    /// <summary>FPSqrt: a negative non-zero operand is invalid; √−0 = −0.</summary>
    private ulong FpSqrt(ulong a, bool dbl)
    {
        a = FpFlushIn(a, dbl);
        if (FpProcessNans([a], dbl, out ulong nan)) return nan;
        double x = FpToDouble(a, dbl);
        if (x < 0) return FpInvalid(dbl);
        double r = Math.Sqrt(x);
        double residual = double.IsFinite(r) && r != 0 ? Math.FusedMultiplyAdd(-r, r, x) : 0;
        bool inexact = residual != 0;
        if (dbl && !inexact && double.IsFinite(r) && x != 0 && Math.Abs(x) < ResidualUnderflowBound) RefuseDirectedRounding(); // √(−tiny) is the default NaN
        return FpRound(r, inexact, dbl, exactInfinity: double.IsInfinity(x), residual);
    }

    /// <summary>
    /// FPMulAdd(addend, op1, op2) = addend + op1 × op2 rounded once. FPProcessNaNs3 order (addend, op1, op2), except that
    /// a quiet NaN addend with ∞ × 0 is invalid (the default NaN).
    /// </summary>
    private ulong FpMulAdd(ulong addend, ulong n, ulong m, bool dbl)
    {
        addend = FpFlushIn(addend, dbl);
        n = FpFlushIn(n, dbl);
        m = FpFlushIn(m, dbl);
        double a = FpToDouble(addend, dbl), x = FpToDouble(n, dbl), y = FpToDouble(m, dbl);
        bool infTimesZero = (double.IsInfinity(x) && y == 0) || (x == 0 && double.IsInfinity(y));
        if (FpIsNan(addend, dbl) && !FpIsSignalling(addend, dbl) && infTimesZero) return FpInvalid(dbl);
        if (FpProcessNans([addend, n, m], dbl, out ulong nan)) return nan;
        double r;
        bool inexact;
        double residual = 0;
        if (dbl)
        {
            r = Math.FusedMultiplyAdd(x, y, a);
            int direction = FmaResidualSign(x, y, a, r, out bool certain);
            if (!certain) RefuseDirectedRounding(); // not reached for finite operands (ExactResidualSign)
            inexact = direction != 0;
            residual = direction;
            if (r == 0 && certain && !inexact) r = FpExactZeroSum(a, x, y);
        }
        else
        {
            // The single product is exact in double; TwoSum of it and the addend is the exact sum s + e.
            double p = x * y;
            double s = p + a, e = TwoSumError(p, a, s);
            float f = MathF.FusedMultiplyAdd((float)x, (float)y, (float)a);
            if (s == 0 && e == 0) f = (float)FpExactZeroSum(a, x, y);
            r = f;
            inexact = double.IsFinite(s) && (s != f || e != 0);
            if (double.IsNaN(r)) return FpInvalid(dbl);
            return FpRoundSingle(f, s, e, inexact, exactInfinity: double.IsInfinity(a) || double.IsInfinity(x) || double.IsInfinity(y));
        }
        if (double.IsNaN(r)) return FpInvalid(dbl);
        return FpRound(r, inexact, dbl, exactInfinity: double.IsInfinity(a) || double.IsInfinity(x) || double.IsInfinity(y), residual);
    }

    /// <summary>
    /// FPMulAdd's exact zero: a zero addend and a zero product of one sign keep it; any other exact zero is −0 in RM and
    /// +0 otherwise.
    /// </summary>
    private double FpExactZeroSum(double addend, double x, double y)
    {
        bool productNegative = double.IsNegative(x) != double.IsNegative(y);
        if (addend == 0 && (x == 0 || y == 0) && double.IsNegative(addend) == productNegative) return addend;
        return FpRMode == 2 ? -0.0 : 0.0;
    }

    /// <summary>
    /// FPMax / FPMin (NaNs processed; the larger/smaller, +0 above −0) and FPMaxNum / FPMinNum (one quiet NaN against
    /// a number gives the number).
    /// </summary>
    private ulong FpMinMax(ulong a, ulong b, bool dbl, bool max, bool numeric)
    {
        a = FpFlushIn(a, dbl);
        b = FpFlushIn(b, dbl);
        if (numeric)
        {
            bool qa = FpIsNan(a, dbl) && !FpIsSignalling(a, dbl), qb = FpIsNan(b, dbl) && !FpIsSignalling(b, dbl);
            if (qa && !FpIsNan(b, dbl)) return b;
            if (qb && !FpIsNan(a, dbl)) return a;
        }
        if (FpProcessNans([a, b], dbl, out ulong nan)) return nan;
        double x = FpToDouble(a, dbl), y = FpToDouble(b, dbl);
        if (x == 0 && y == 0)
        {
            // Zeros of different sign: max gives +0 (sign1 AND sign2), min gives −0 (sign1 OR sign2).
            return max ? a & b : a | b;
        }
        return max ? (x > y ? a : b) : (x < y ? a : b);
    }

    /// <summary>
    /// FPRoundBase for a result already rounded to nearest double (<paramref name="inexact"/>: it differs from the exact
    /// value; <paramref name="residual"/>: a value with the sign of exact − r): to single if needed, then tininess
    /// before rounding (|exact| below the smallest normal), FPCR.FZ (a tiny result becomes a zero of its sign with UFC
    /// alone), FPCR.RMode (A64Interpreter.FpRounding.cs: the neighbour on the mode's side), overflow (OFC and IXC),
    /// underflow (tiny and inexact: UFC) and inexact (IXC).
    /// </summary>
    private ulong FpRound(double r, bool inexact, bool dbl, bool exactInfinity, double residual = 0)
    {
        if (!dbl)
        {
            float f = (float)r;
            return FpRoundSingle(f, r, residual, inexact || (double.IsFinite(r) && (double)f != r && !float.IsInfinity(f)), exactInfinity);
        }
        uint mode = FpRMode;
        if (double.IsInfinity(r) && !exactInfinity)
            return BitConverter.DoubleToUInt64Bits(FpOverflow(double.IsNegative(r), mode, double.MaxValue, overflows: null));
        int direction = FpDirection(inexact, residual, r);
        double magnitude = Math.Abs(r);
        bool tiny = r != 0 ? magnitude < DoubleMinNormal || (magnitude == DoubleMinNormal && direction != 0 && (direction < 0) != (r < 0)) : inexact;
        if (tiny && FpFlushToZero)
        {
            FpFlag(FpsrUfc);
            return BitConverter.DoubleToUInt64Bits(r) & (1UL << 63);
        }
        if (inexact)
        {
            r = FpDirected(r, direction, mode);
            if (double.IsInfinity(r))
            {
                FpFlag(FpsrOfc | FpsrIxc);
                return BitConverter.DoubleToUInt64Bits(r);
            }
            FpFlag(tiny ? FpsrUfc | FpsrIxc : FpsrIxc);
        }
        return BitConverter.DoubleToUInt64Bits(r);
    }

    /// <summary>
    /// FPRoundBase to single: <paramref name="f"/> is the result rounded to nearest, <paramref name="approx"/> the exact
    /// value rounded to nearest double and <paramref name="residual"/> the sign of exact − approx.
    /// </summary>
    private ulong FpRoundSingle(float f, double approx, double residual, bool inexact, bool exactInfinity)
    {
        uint mode = FpRMode;
        if (float.IsInfinity(f) && !exactInfinity)
        {
            // |exact| ≥ 2^128 (the exponent overflows in every mode) unless approx is 2^128 rounded up from below.
            double m = Math.Abs(approx);
            bool beyond = m > SingleOverflowBound || (m == SingleOverflowBound && (residual == 0 || (residual < 0) == (approx < 0)));
            return BitConverter.SingleToUInt32Bits((float)FpOverflow(float.IsNegative(f), mode, float.MaxValue, beyond));
        }
        // exact − f: the double difference when it is not zero (it outweighs the residual), else the residual.
        int direction = !inexact ? 0 : (double)f != approx ? Math.Sign(approx - f) : FpDirection(inexact, residual, f);
        double magnitude = Math.Abs(approx);
        bool tiny = approx != 0
            ? magnitude < SingleMinNormal || (magnitude == SingleMinNormal && residual != 0 && (residual < 0) != (approx < 0))
            : inexact;
        if (tiny && FpFlushToZero)
        {
            FpFlag(FpsrUfc);
            return BitConverter.SingleToUInt32Bits(f) & (1u << 31);
        }
        if (inexact)
        {
            f = (float)FpDirected(f, direction, mode, single: true);
            if (float.IsInfinity(f))
            {
                FpFlag(FpsrOfc | FpsrIxc);
                return BitConverter.SingleToUInt32Bits(f);
            }
            FpFlag(tiny ? FpsrUfc | FpsrIxc : FpsrIxc);
        }
        return BitConverter.SingleToUInt32Bits(f);
    }

    /// <summary>[D] Where the exact error of a result is not known (A64Interpreter.FpRounding.cs), FPCR.RMode ≠ RN is an emulation failure.</summary>
    private void RefuseDirectedRounding()
    {
        if (((cpu.Fpcr >> 22) & 3) != 0) throw new UnsupportedInstructionStop(LastInstruction);
    }

    /// <summary>
    /// FPCompare: unordered 0011 (IOC for a signalling NaN, or any NaN when <paramref name="signalNans"/>: FCMPE),
    /// equal 0110, less 1000, greater 0010. Denormal inputs are flushed with FPCR.FZ.
    /// </summary>
    private uint FpCompareFlags(ulong a, ulong b, bool dbl, bool signalNans)
    {
        a = FpFlushIn(a, dbl);
        b = FpFlushIn(b, dbl);
        if (FpIsNan(a, dbl) || FpIsNan(b, dbl))
        {
            if (signalNans || FpIsSignalling(a, dbl) || FpIsSignalling(b, dbl)) FpFlag(FpsrIoc);
            return 0b0011;
        }
        double x = FpToDouble(a, dbl), y = FpToDouble(b, dbl);
        return x == y ? 0b0110u : x < y ? 0b1000u : 0b0010u;
    }

    /// <summary>FPConvert double → single; a NaN keeps its sign and the fraction's top bits (FPConvertNaN), quietened.</summary>
    private ulong FpConvertToSingle(ulong a)
    {
        a = FpFlushIn(a, dbl: true);
        if (FpIsNan(a, dbl: true))
        {
            if (FpIsSignalling(a, dbl: true)) FpFlag(FpsrIoc);
            if (FpDefaultNan) return FpDefaultNanBits(dbl: false);
            return ((a >> 32) & 0x8000_0000UL) | 0x7FC0_0000UL | ((a >> 29) & 0x003F_FFFFUL);
        }
        double x = BitConverter.UInt64BitsToDouble(a);
        return FpRound(x, inexact: false, dbl: false, exactInfinity: double.IsInfinity(x));
    }

    /// <summary>FPConvert single → double: exact; a NaN as FPConvertNaN.</summary>
    private ulong FpConvertToDouble(ulong a)
    {
        a = FpFlushIn(a, dbl: false);
        if (FpIsNan(a, dbl: false))
        {
            if (FpIsSignalling(a, dbl: false)) FpFlag(FpsrIoc);
            if (FpDefaultNan) return FpDefaultNanBits(dbl: true);
            return ((a & 0x8000_0000UL) << 32) | 0x7FF8_0000_0000_0000UL | ((a & 0x003F_FFFFUL) << 29);
        }
        return BitConverter.DoubleToUInt64Bits(BitConverter.UInt32BitsToSingle((uint)a));
    }

    /// <summary>
    /// FPToFixed with fbits 0: round in <paramref name="rounding"/>, then saturate. A NaN gives 0, out of range the
    /// nearest bound, both with IOC (and no IXC); an in-range rounded value sets IXC when it is not the operand.
    /// </summary>
    private ulong FpToInteger(ulong a, bool dbl, bool sf, bool unsigned, MidpointRounding rounding) =>
        FpToFixed(a, dbl, fbits: 0, sf, unsigned, rounding);

    /// <summary>
    /// FixedToFP with fbits 0 (SCVTF/UCVTF), rounded here in FPCR.RMode (not through .NET's integer conversions, some
    /// of which round twice): the top 24 or 53 significant bits, the rest rounded; IXC when bits were dropped.
    /// </summary>
    private ulong FixedToFp(Int128 value, bool dbl)
    {
        int precision = dbl ? 53 : 24;
        UInt128 magnitude = (UInt128)(value < 0 ? -value : value);
        int shift = Math.Max(0, 128 - (int)UInt128.LeadingZeroCount(magnitude) - precision);
        UInt128 mantissa = magnitude >> shift;
        UInt128 rest = shift == 0 ? 0 : magnitude & ((UInt128.One << shift) - 1);
        if (shift > 0)
        {
            // FPRoundBase in FPCR.RMode: RN ties to even, RP/RM away from zero for a positive/negative value, RZ truncates.
            UInt128 half = UInt128.One << (shift - 1);
            bool up = FpRMode switch
            {
                0 => rest > half || (rest == half && (mantissa & 1) != 0),
                1 => rest != 0 && value >= 0,
                2 => rest != 0 && value < 0,
                _ => false,
            };
            if (up) mantissa++;
        }
        if (rest != 0) FpFlag(FpsrIxc);
        // mantissa ≤ 2^precision converts exactly; scaling by a power of two below 2^128 is exact too.
        double d = Math.ScaleB((double)(ulong)mantissa, shift) * (value < 0 ? -1 : 1);
        return dbl ? BitConverter.DoubleToUInt64Bits(d) : BitConverter.SingleToUInt32Bits((float)d);
    }

    /// <summary>
    /// FPRoundInt (FRINTN 8, FRINTP 9, FRINTM 10, FRINTZ 11, FRINTA 12, FRINTX 14 and FRINTI 15 in FPCR.RMode): a NaN is
    /// processed, an infinity or zero returned, a zero result keeps the operand's sign; only FRINTX signals IXC.
    /// </summary>
    private ulong FpRoundInt(ulong a, bool dbl, uint opcode)
    {
        a = FpFlushIn(a, dbl);
        if (FpProcessNans([a], dbl, out ulong nan)) return nan;
        double x = FpToDouble(a, dbl);
        if (double.IsInfinity(x) || x == 0) return a;
        uint mode = opcode >= 14 ? (cpu.Fpcr >> 22) & 3 : opcode == 12 ? 4u : opcode - 8;
        double r = Math.Round(x, FpIntegerRounding(mode));
        if (r == 0) r = double.CopySign(0, x);
        if (opcode == 14 && r != x) FpFlag(FpsrIxc);
        // r is an integer of at most the operand's precision: exact in single too.
        return dbl ? BitConverter.DoubleToUInt64Bits(r) : BitConverter.SingleToUInt32Bits((float)r);
    }
}
