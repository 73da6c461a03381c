// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>An IEEE 754 binary format of the SSE registers: binary32 (<see cref="Single"/>) or binary64 (<see cref="Double"/>).</summary>
internal readonly record struct FloatFormat(int Bits, int Precision)
{
    public static readonly FloatFormat Single = new(32, 24);
    public static readonly FloatFormat Double = new(64, 53);

    public int FractionBits => Precision - 1;
    public int Bias => (1 << (Bits - Precision - 1)) - 1;
    public int Emin => 1 - Bias;
    public int Emax => Bias;
    public int ExponentField => (1 << (Bits - Precision)) - 1;
    public ulong SignBit => 1UL << (Bits - 1);
    public ulong FractionMask => (1UL << FractionBits) - 1;
    public ulong QuietBit => 1UL << (FractionBits - 1);

    /// <summary>The default QNaN ("real indefinite", Intel SDM Vol. 1 4.8.3.7): negative, quiet bit only.</summary>
    public ulong DefaultNaN => SignBit | ((ulong)ExponentField << FractionBits) | QuietBit;

    public ulong Infinity(bool negative) => (negative ? SignBit : 0) | ((ulong)ExponentField << FractionBits);

    public ulong MaxFinite(bool negative) => (negative ? SignBit : 0) | ((ulong)(ExponentField - 1) << FractionBits) | FractionMask;

    public ulong Zero(bool negative) => negative ? SignBit : 0;
}

/// <summary>The kind of an SSE floating-point operand after DAZ.</summary>
internal enum FloatKind { Zero, Finite, Infinity, QuietNaN, SignalingNaN }

/// <summary>
/// An operand decoded exactly: value = (-1)^Negative × Mantissa × 2^Exponent; <see cref="Denormal"/> when it was a
/// denormal the CPU reads as such (DAZ clear).
/// </summary>
internal readonly record struct FloatValue(bool Negative, FloatKind Kind, BigInteger Mantissa, int Exponent, bool Denormal)
{
    public bool IsNaN => Kind is FloatKind.QuietNaN or FloatKind.SignalingNaN;

    /// <summary>The exact value as a double (every binary32/binary64 operand is one); NaN for NaNs.</summary>
    public double AsDouble => Kind switch
    {
        FloatKind.Zero => Negative ? -0.0 : 0.0,
        FloatKind.Infinity => Negative ? double.NegativeInfinity : double.PositiveInfinity,
        FloatKind.Finite => (Negative ? -1 : 1) * Math.ScaleB((double)Mantissa, Exponent),
        _ => double.NaN,
    };
}

/// <summary>
/// MXCSR-aware SSE arithmetic on one instruction's elements (Intel SDM Vol. 1 4.8–4.9, 10.2.3, 11.5): exact results
/// rounded once under MXCSR.RC (nearest-even, down, up, toward zero), DAZ on the operands, FTZ on tiny results,
/// tininess detected after rounding (as x86 does), the QNaN rules of Vol. 1 Table 4-7 (the first source NaN wins,
/// quieted) and the default NaN for invalid operations. The six flags of every element collect in <see cref="Flags"/>;
/// the caller writes them to MXCSR and raises #XM/#UD when one is unmasked (<see cref="Unmasked"/>).
/// Exceptions are detected in the SDM's priority order (Vol. 1 4.9.2): SNaN invalid, QNaN operand, other invalid /
/// divide-by-zero, denormal operand, then overflow/underflow and precision.
/// </summary>
internal sealed class SseArithmetic(uint mxcsr)
{
    public const uint IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32;
    private const uint Daz = 1 << 6, Ftz = 1 << 15;

    /// <summary>The exception flags the elements raised so far.</summary>
    public uint Flags { get; private set; }

    /// <summary>A raised flag whose mask bit (MXCSR bits 12:7) is clear: the instruction ends in #XM (or #UD).</summary>
    public bool Unmasked => (Flags & ~(mxcsr >> 7) & 0x3f) != 0;

    private int RoundingControl => (int)(mxcsr >> 13) & 3;

    private bool Masked(uint flag) => ((mxcsr >> 7) & flag) != 0;

    public enum Op { Add, Sub, Mul, Div, Min, Max }

    /// <summary>Decodes <paramref name="bits"/>; a denormal is ±0 under DAZ.</summary>
    public FloatValue Decode(ulong bits, FloatFormat fmt)
    {
        bool neg = (bits & fmt.SignBit) != 0;
        int exp = (int)((bits >> fmt.FractionBits) & (ulong)fmt.ExponentField);
        ulong frac = bits & fmt.FractionMask;
        if (exp == fmt.ExponentField)
        {
            if (frac == 0) return new(neg, FloatKind.Infinity, 0, 0, false);
            return new(neg, (frac & fmt.QuietBit) != 0 ? FloatKind.QuietNaN : FloatKind.SignalingNaN, 0, 0, false);
        }
        if (exp == 0)
        {
            if (frac == 0) return new(neg, FloatKind.Zero, 0, 0, false);
            if ((mxcsr & Daz) != 0) return new(neg, FloatKind.Zero, 0, 0, false);
            return new(neg, FloatKind.Finite, frac, fmt.Emin - fmt.FractionBits, true);
        }
        return new(neg, FloatKind.Finite, frac | (1UL << fmt.FractionBits), exp - fmt.Bias - fmt.FractionBits, false);
    }

    private static ulong Quiet(ulong bits, FloatFormat fmt) => bits | fmt.QuietBit;

    /// <summary>
    /// Raises DE for a denormal operand; true when DE is unmasked: the operation stops there (no result, no
    /// post-computation flag; seen on this host's CPU: ADDSD 1 + denormal with DM clear leaves DE alone, not PE).
    /// </summary>
    private bool DenormalStops(bool denormal)
    {
        if (!denormal) return false;
        Flags |= DE;
        return !Masked(DE);
    }

    /// <summary>ADD/SUB/MUL/DIV/MIN/MAX of one element: <paramref name="a"/> is the first source (the destination).</summary>
    public ulong Binary(Op op, ulong a, ulong b, FloatFormat fmt)
    {
        var x = Decode(a, fmt);
        var y = Decode(b, fmt);
        if (op is Op.Min or Op.Max) return MinMax(op, x, y, b, fmt);
        if (x.IsNaN || y.IsNaN)
        {
            // Vol. 1 Table 4-7: an SNaN operand is invalid; the first source's NaN wins, quieted.
            if (x.Kind == FloatKind.SignalingNaN || y.Kind == FloatKind.SignalingNaN) Flags |= IE;
            return x.IsNaN ? Quiet(a, fmt) : Quiet(b, fmt);
        }
        bool yNeg = op == Op.Sub ? !y.Negative : y.Negative;
        bool xInf = x.Kind == FloatKind.Infinity, yInf = y.Kind == FloatKind.Infinity;
        bool xZero = x.Kind == FloatKind.Zero, yZero = y.Kind == FloatKind.Zero;
        bool invalid = op switch
        {
            Op.Add or Op.Sub => xInf && yInf && x.Negative != yNeg,
            Op.Mul => (xInf && yZero) || (xZero && yInf),
            _ => (xZero && yZero) || (xInf && yInf),
        };
        if (invalid)
        {
            Flags |= IE;
            return fmt.DefaultNaN;
        }
        bool productSign = x.Negative != y.Negative;
        if (op == Op.Div && yZero && !xInf)
        {
            Flags |= ZE;
            return fmt.Infinity(productSign);
        }
        if (DenormalStops(x.Denormal || y.Denormal)) return a;
        switch (op)
        {
            case Op.Add or Op.Sub:
                if (xInf) return fmt.Infinity(x.Negative);
                if (yInf) return fmt.Infinity(yNeg);
                return AddExact(x.Negative, x.Mantissa, x.Exponent, yNeg, y.Mantissa, y.Exponent, fmt);
            case Op.Mul:
                if (xInf || yInf) return fmt.Infinity(productSign);
                if (xZero || yZero) return fmt.Zero(productSign);
                return Round(productSign, x.Mantissa * y.Mantissa, x.Exponent + y.Exponent, fmt);
            default:
                if (xInf) return fmt.Infinity(productSign);
                if (yInf || xZero) return fmt.Zero(productSign);
                int k = fmt.Precision + 4 + (int)y.Mantissa.GetBitLength();
                var q = BigInteger.DivRem(x.Mantissa << k, y.Mantissa, out var r);
                return Round(productSign, (q << 1) | (r.IsZero ? 0 : 1), x.Exponent - y.Exponent - k - 1, fmt);
        }
    }

    private ulong AddExact(bool xNeg, BigInteger xm, int xe, bool yNeg, BigInteger ym, int ye, FloatFormat fmt)
    {
        int e = Math.Min(xm.IsZero ? ye : xe, ym.IsZero ? xe : ye);
        var sx = (xNeg ? -xm : xm) << (xm.IsZero ? 0 : xe - e);
        var sy = (yNeg ? -ym : ym) << (ym.IsZero ? 0 : ye - e);
        var sum = sx + sy;
        if (sum.IsZero)
        {
            // IEEE 754 6.3: an exact zero sum of opposite signs is +0, -0 when rounding down; x + x keeps the sign.
            return fmt.Zero(xNeg == yNeg ? xNeg : RoundingControl == 1);
        }
        return Round(sum.Sign < 0, BigInteger.Abs(sum), e, fmt);
    }

    /// <summary>
    /// MINSS/MINSD/MINPS/MINPD and MAX* (SDM Vol. 2B MINPS): a NaN in either source (invalid for SNaN and QNaN alike)
    /// or two zeros return the second source (as DAZ read it); otherwise the smaller (larger) value.
    /// </summary>
    private ulong MinMax(Op op, FloatValue x, FloatValue y, ulong b, FloatFormat fmt)
    {
        if (x.IsNaN || y.IsNaN)
        {
            Flags |= IE;
            return y.IsNaN ? b : Encode(y, fmt); // a denormal second source comes back zeroed under DAZ
        }
        if (DenormalStops(x.Denormal || y.Denormal)) return b;
        double dx = x.AsDouble, dy = y.AsDouble;
        bool first = op == Op.Min ? dx < dy : dx > dy;
        return first ? Encode(x, fmt) : Encode(y, fmt);
    }

    /// <summary>The bits of an exact operand (a DAZ-zeroed denormal comes back as the signed zero the CPU used).</summary>
    private static ulong Encode(FloatValue v, FloatFormat fmt) => v.Kind switch
    {
        FloatKind.Zero => fmt.Zero(v.Negative),
        FloatKind.Infinity => fmt.Infinity(v.Negative),
        _ => EncodeExact(v.Negative, v.Mantissa, v.Exponent, fmt),
    };

    /// <summary>An exactly representable finite value into <paramref name="fmt"/>.</summary>
    private static ulong EncodeExact(bool neg, BigInteger m, int e, FloatFormat fmt)
    {
        // Normalise to the format's quantum: m × 2^e with e >= emin - p + 1.
        int q = Math.Max(e + (int)m.GetBitLength() - fmt.Precision, fmt.Emin - fmt.FractionBits);
        var mant = q >= e ? m >> (q - e) : m << (e - q);
        return Pack(neg, mant, q, fmt);
    }

    private static ulong Pack(bool neg, BigInteger mant, int q, FloatFormat fmt)
    {
        ulong sign = neg ? fmt.SignBit : 0;
        if (mant.IsZero) return sign;
        if (mant.GetBitLength() > fmt.Precision)
        {
            mant >>= 1;
            q++;
        }
        if (mant.GetBitLength() == fmt.Precision)
        {
            ulong biased = (ulong)(q + fmt.FractionBits + fmt.Bias);
            return sign | (biased << fmt.FractionBits) | ((ulong)mant & fmt.FractionMask);
        }
        return sign | (ulong)mant;
    }

    /// <summary>SQRTSS/SQRTSD/SQRTPS/SQRTPD of one element (-0 → -0, a negative value → invalid).</summary>
    public ulong Sqrt(ulong a, FloatFormat fmt)
    {
        var x = Decode(a, fmt);
        if (x.IsNaN)
        {
            if (x.Kind == FloatKind.SignalingNaN) Flags |= IE;
            return Quiet(a, fmt);
        }
        if (x.Negative && x.Kind != FloatKind.Zero)
        {
            Flags |= IE;
            return fmt.DefaultNaN;
        }
        if (DenormalStops(x.Denormal)) return a;
        if (x.Kind != FloatKind.Finite) return Encode(x, fmt);
        var m = x.Mantissa;
        int e = x.Exponent;
        if ((e & 1) != 0)
        {
            m <<= 1;
            e--;
        }
        int k = fmt.Precision + 4;
        var n = m << (2 * k);
        var s = IntegerSqrt(n);
        return Round(false, (s << 1) | (s * s == n ? 0 : 1), e / 2 - k - 1, fmt);
    }

    private static BigInteger IntegerSqrt(BigInteger n)
    {
        var x = BigInteger.One << (int)((n.GetBitLength() + 1) / 2);
        while (true)
        {
            var y = (x + n / x) >> 1;
            if (y >= x) return x;
            x = y;
        }
    }

    /// <summary>
    /// Rounds (-1)^neg × m × 2^e (m &gt; 0) into <paramref name="fmt"/> under MXCSR.RC: PE when inexact; OE when the
    /// rounded value exceeds the largest finite (masked: ∞ or the largest finite, by RC and sign, with PE; unmasked:
    /// OE alone); UE when tiny after rounding and inexact (masked, with PE), or tiny at all (unmasked: UE alone); FTZ
    /// (with UE masked) flushes a tiny result to ±0 setting UE and PE (SDM Vol. 1 10.2.3.3).
    /// </summary>
    public ulong Round(bool neg, BigInteger m, int e, FloatFormat fmt)
    {
        int p = fmt.Precision;
        int bits = (int)m.GetBitLength();
        int unbounded = e + bits - p; // quantum with an unbounded exponent range
        var wide = RoundShift(m, unbounded - e, neg, out _);
        bool tiny = (int)wide.GetBitLength() + unbounded - 1 < fmt.Emin;
        int q = Math.Max(unbounded, fmt.Emin - fmt.FractionBits);
        var mant = RoundShift(m, q - e, neg, out bool inexact);
        if (tiny)
        {
            if (Masked(UE))
            {
                if ((mxcsr & Ftz) != 0)
                {
                    Flags |= UE | PE;
                    return fmt.Zero(neg);
                }
                if (inexact) Flags |= UE;
            }
            else
            {
                // Unmasked: UE alone, even when exact or inexact (the CPU's MXCSR at the #XM of MULSD).
                Flags |= UE;
                return Pack(neg, mant, q, fmt);
            }
        }
        if ((int)mant.GetBitLength() + q - 1 > fmt.Emax)
        {
            // Masked OE comes with PE; unmasked, OE alone (the CPU's MXCSR at the #XM of MULSD).
            Flags |= Masked(OE) ? OE | PE : OE;
            bool toInfinity = RoundingControl switch { 0 => true, 1 => neg, 2 => !neg, _ => false };
            return toInfinity ? fmt.Infinity(neg) : fmt.MaxFinite(neg);
        }
        if (inexact) Flags |= PE;
        return Pack(neg, mant, q, fmt);
    }

    /// <summary>m / 2^shift rounded to an integer under MXCSR.RC for a value of sign <paramref name="neg"/>.</summary>
    private BigInteger RoundShift(BigInteger m, int shift, bool neg, out bool inexact) =>
        RoundShift(m, shift, neg, RoundingControl, out inexact);

    private static BigInteger RoundShift(BigInteger m, int shift, bool neg, int rc, out bool inexact)
    {
        if (shift <= 0)
        {
            inexact = false;
            return m << -shift;
        }
        var quotient = m >> shift;
        var rest = m - (quotient << shift);
        inexact = !rest.IsZero;
        if (!inexact) return quotient;
        bool up = rc switch
        {
            0 => rest > (BigInteger.One << (shift - 1)) || (rest == (BigInteger.One << (shift - 1)) && !quotient.IsEven),
            1 => neg,
            2 => !neg,
            _ => false,
        };
        return up ? quotient + 1 : quotient;
    }

    /// <summary>
    /// COMISS/COMISD/UCOMISS/UCOMISD (SDM Vol. 2A COMISD): ZF,PF,CF = 111 unordered, 000 greater, 001 less, 100 equal;
    /// invalid for an SNaN (UCOMIS*) or any NaN (COMIS*).
    /// </summary>
    public (bool Zf, bool Pf, bool Cf) Compare(ulong a, ulong b, FloatFormat fmt, bool signalQuiet)
    {
        var x = Decode(a, fmt);
        var y = Decode(b, fmt);
        if (x.IsNaN || y.IsNaN)
        {
            if (signalQuiet || x.Kind == FloatKind.SignalingNaN || y.Kind == FloatKind.SignalingNaN) Flags |= IE;
            return (true, true, true);
        }
        if (DenormalStops(x.Denormal || y.Denormal)) return (false, false, false);
        double dx = x.AsDouble, dy = y.AsDouble;
        return dx == dy ? (true, false, false) : dx < dy ? (false, false, true) : (false, false, false);
    }

    /// <summary>
    /// CMPSS/CMPSD/CMPPS/CMPPD predicate imm8[2:0] (SDM Vol. 2A CMPPS Table 3-1): EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD;
    /// all ones when true. An SNaN is invalid for every predicate, a QNaN too for the signaling ones (LT, LE, NLT, NLE).
    /// </summary>
    public ulong CompareMask(ulong a, ulong b, FloatFormat fmt, int predicate)
    {
        var x = Decode(a, fmt);
        var y = Decode(b, fmt);
        bool signaling = predicate is 1 or 2 or 5 or 6;
        bool result;
        if (x.IsNaN || y.IsNaN)
        {
            if (signaling || x.Kind == FloatKind.SignalingNaN || y.Kind == FloatKind.SignalingNaN) Flags |= IE;
            result = predicate is 3 or 4 or 5 or 6; // unordered: UNORD, NEQ, NLT, NLE are true
        }
        else
        {
            if (DenormalStops(x.Denormal || y.Denormal)) return 0;
            double dx = x.AsDouble, dy = y.AsDouble;
            result = predicate switch
            {
                0 => dx == dy,
                1 => dx < dy,
                2 => dx <= dy,
                3 => false,
                4 => dx != dy,
                5 => !(dx < dy),
                6 => !(dx <= dy),
                _ => true,
            };
        }
        return result ? (fmt.Bits == 32 ? 0xffff_ffffUL : ulong.MaxValue) : 0;
    }

    /// <summary>
    /// CVTSS2SD/CVTSD2SS/CVTPS2PD/CVTPD2PS of one element: a NaN keeps its sign and top fraction bits, quieted (an SNaN
    /// is invalid); a denormal source is DE; a narrowing is rounded.
    /// </summary>
    public ulong Convert(ulong a, FloatFormat from, FloatFormat to)
    {
        var x = Decode(a, from);
        if (x.IsNaN)
        {
            if (x.Kind == FloatKind.SignalingNaN) Flags |= IE;
            ulong frac = a & from.FractionMask;
            frac = to.FractionBits > from.FractionBits ? frac << (to.FractionBits - from.FractionBits) : frac >> (from.FractionBits - to.FractionBits);
            return (x.Negative ? to.SignBit : 0) | ((ulong)to.ExponentField << to.FractionBits) | frac | to.QuietBit;
        }
        if (DenormalStops(x.Denormal)) return a;
        return x.Kind switch
        {
            FloatKind.Zero => to.Zero(x.Negative),
            FloatKind.Infinity => to.Infinity(x.Negative),
            _ => Round(x.Negative, x.Mantissa, x.Exponent, to),
        };
    }

    /// <summary>CVTSI2SS/CVTSI2SD/CVTDQ2PS/CVTDQ2PD: a signed integer rounded under RC (PE when inexact).</summary>
    public ulong FromInteger(long value, FloatFormat to) =>
        value == 0 ? 0 : Round(value < 0, BigInteger.Abs(value), 0, to);

    /// <summary>
    /// CVTSS2SI/CVTSD2SI (RC) and CVTTSS2SI/CVTTSD2SI (truncating), CVT(T)PS2DQ/CVT(T)PD2DQ: a NaN, ∞ or out-of-range
    /// value is invalid and gives the integer indefinite (the most negative integer, SDM Vol. 1 4.8.3.7); else PE
    /// when inexact. Denormal sources do not raise DE (SDM Vol. 2A CVTSD2SI: Invalid, Precision).
    /// </summary>
    public ulong ToInteger(ulong a, FloatFormat from, int size, bool truncate)
    {
        ulong indefinite = size == 4 ? 0x8000_0000UL : 0x8000_0000_0000_0000UL;
        var x = Decode(a, from);
        if (x.IsNaN || x.Kind == FloatKind.Infinity)
        {
            Flags |= IE;
            return indefinite;
        }
        if (x.Kind == FloatKind.Zero) return 0;
        var magnitude = RoundShift(x.Mantissa, -x.Exponent, x.Negative, truncate ? 3 : RoundingControl, out bool inexact);
        var value = x.Negative ? -magnitude : magnitude;
        var min = -(BigInteger.One << (size * 8 - 1));
        if (value < min || value > -min - 1)
        {
            Flags |= IE;
            return indefinite;
        }
        if (inexact) Flags |= PE;
        return (ulong)(long)value & (size == 4 ? 0xffff_ffffUL : ulong.MaxValue);
    }
}
