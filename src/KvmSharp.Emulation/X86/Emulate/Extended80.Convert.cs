// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Conversions between <see cref="Extended80"/> and binary32/binary64 (FLD/FST m32/m64), the integers (FILD, FIST,
/// FISTTP) and integral values (FRNDINT). SDM Vol. 2A FLD, FST/FSTP, FILD, FIST/FISTP, FISTTP, FRNDINT; Vol. 1 4.8.3.7
/// (the integer indefinite: the most negative integer of the destination size).
/// </summary>
internal static partial class X87Math
{
    /// <summary>
    /// binary32/binary64 widened exactly (SDM Vol. 1 4.2.2: every value is representable); <paramref name="denormal"/>
    /// reports a denormal source (normal once widened) for #D. An SNaN stays signaling: the caller raises #IA.
    /// </summary>
    public static Extended80 FromBinary(ulong bits, FloatFormat f, out bool denormal)
    {
        denormal = false;
        bool sign = (bits & f.SignBit) != 0;
        int field = (int)((bits >> f.FractionBits) & (ulong)f.ExponentField);
        ulong fraction = bits & f.FractionMask;
        ushort s = (ushort)(sign ? 0x8000 : 0);
        if (field == f.ExponentField)
            return new((ushort)(s | Extended80.MaxExp), Extended80.IntegerBit | (fraction << (63 - f.FractionBits)));
        if (field == 0)
        {
            if (fraction == 0) return new(s, 0);
            denormal = true;
            int lz = System.Numerics.BitOperations.LeadingZeroCount(fraction);
            int exp = 63 - lz + 1 - f.Bias - f.FractionBits + Extended80.Bias;
            return new((ushort)(s | exp), fraction << lz);
        }
        return new((ushort)(s | (field - f.Bias + Extended80.Bias)), Extended80.IntegerBit | (fraction << (63 - f.FractionBits)));
    }

    /// <summary>FLD m32/m64: an SNaN is #IA and loaded quiet; a denormal is #D (SDM Vol. 2A FLD).</summary>
    public static Extended80 Load(ulong bits, FloatFormat f, ref X87Env env)
    {
        var x = FromBinary(bits, f, out bool denormal);
        if (x.IsSignalingNaN)
        {
            env.Flags |= X87Env.IE;
            return x.Quiet();
        }
        if (denormal) env.Flags |= X87Env.DE;
        return x;
    }

    /// <summary>FILD: every int16/32/64 is exact in 64 significand bits.</summary>
    public static Extended80 FromInteger(long value)
    {
        if (value == 0) return Extended80.PositiveZero;
        ulong magnitude = value < 0 ? (ulong)-value : (ulong)value;
        int lz = System.Numerics.BitOperations.LeadingZeroCount(magnitude);
        return new((ushort)((value < 0 ? 0x8000 : 0) | (Extended80.Bias + 63 - lz)), magnitude << lz);
    }

    /// <summary>
    /// FST m32/m64: rounded by RC to the destination's precision and exponent range (FCW.PC does not apply); an SNaN
    /// is #IA and stored quiet, its significand truncated; an unsupported encoding stores the default QNaN. False: an
    /// unmasked exception leaves memory unwritten (SDM Vol. 1 8.5).
    /// </summary>
    public static bool Store(Extended80 x, FloatFormat f, ref X87Env env, out ulong bits)
    {
        bits = 0;
        if (x.IsUnsupported)
        {
            env.Flags |= X87Env.IE;
            bits = f.DefaultNaN;
            return env.Masked(X87Env.IE);
        }
        ulong sign = x.Sign ? f.SignBit : 0;
        if (x.IsNaN)
        {
            if (x.IsSignalingNaN) env.Flags |= X87Env.IE;
            bits = sign | f.Infinity(false) | ((x.Significand | Extended80.QuietBit) & ~Extended80.IntegerBit) >> (63 - f.FractionBits);
            return !x.IsSignalingNaN || env.Masked(X87Env.IE);
        }
        if (x.IsInfinity) { bits = f.Infinity(x.Sign); return true; }
        if (x.IsZero) { bits = sign; return true; }
        // No #D for a denormal source (seen on this EPYC: x87_sweep.c fst32, FSW UE and PE only).
        var (e, m) = x.Normalized();
        return X87Round.ToBinary(x.Sign, e, (UInt128)m << 64, f, ref env, out bits);
    }

    /// <summary>
    /// FIST/FISTP/FISTTP to an integer of <paramref name="bits"/> bits, rounded by RC (or truncated); NaN, ∞, an
    /// unsupported encoding or a value out of range is #IA with the integer indefinite. False: nothing is stored.
    /// </summary>
    public static bool ToInteger(Extended80 x, int bits, bool truncate, ref X87Env env, out long value)
    {
        long indefinite = bits == 64 ? long.MinValue : -(1L << (bits - 1));
        value = indefinite;
        if (x.IsUnsupported || x.IsNaN || x.IsInfinity)
        {
            env.Flags |= X87Env.IE;
            return env.Masked(X87Env.IE);
        }
        if (x.IsZero) { value = 0; return true; }
        // No #D for a denormal source (SDM Vol. 2A FIST lists none; seen on this EPYC: x87_sweep.c fistp32, PE only).
        var (e, m) = x.Normalized();
        var (magnitude, up, inexact, tooBig) = IntegerPart(x.Sign, e, m, truncate ? 3 : env.Rc);
        UInt128 limit = x.Sign ? UInt128.One << (bits - 1) : (UInt128.One << (bits - 1)) - 1;
        if (tooBig || magnitude > limit)
        {
            env.Flags |= X87Env.IE;
            return env.Masked(X87Env.IE);
        }
        if (inexact)
        {
            env.Flags |= X87Env.PE;
            env.RoundedUp = up;
        }
        value = x.Sign ? -(long)(ulong)magnitude : (long)(ulong)magnitude;
        return true;
    }

    /// <summary>FRNDINT: the integral value by RC, 64-bit precision whatever FCW.PC says (SDM Vol. 2A FRNDINT).</summary>
    public static Extended80 RoundToIntegral(Extended80 x, ref X87Env env)
    {
        if (Special(x, x, ref env) is { } nan) return nan;
        if (x.IsZero || x.IsInfinity) return x;
        if (Denormals(x, x, false, ref env)) return x;
        var (e, m) = x.Normalized();
        if (e >= Extended80.Bias + 63) return x;
        var (magnitude, up, inexact, _) = IntegerPart(x.Sign, e, m, env.Rc);
        if (inexact)
        {
            env.Flags |= X87Env.PE;
            env.RoundedUp = up;
        }
        if (magnitude == 0) return Extended80.Zero(x.Sign);
        ulong mag = (ulong)magnitude; // < 2^63 + 1: fits, as e < bias + 63
        int lz = System.Numerics.BitOperations.LeadingZeroCount(mag);
        return new((ushort)((x.Sign ? 0x8000 : 0) | (Extended80.Bias + 63 - lz)), mag << lz);
    }

    /// <summary>The rounded integer magnitude of m/2^63 × 2^(e − bias); tooBig above 2^64.</summary>
    private static (UInt128 Magnitude, bool Up, bool Inexact, bool TooBig) IntegerPart(bool sign, int e, ulong m, int rc)
    {
        int unbiased = e - Extended80.Bias;
        if (unbiased >= 64) return (0, false, false, true);
        if (unbiased >= 63) return (m, false, false, false);
        // Fixed point with 64 fraction bits below the 64 integer bits: m × 2^(unbiased − 63) × 2^64.
        int shift = 63 - unbiased; // 1 … ; beyond 127 only the sticky bit is left
        UInt128 v = X87Round.ShiftRightJam((UInt128)m << 64, shift);
        UInt128 frac = v & ulong.MaxValue, whole = v >> 64;
        const ulong half = 1UL << 63;
        bool inexact = frac != 0;
        bool up = rc switch
        {
            0 => frac > half || (frac == half && (whole & 1) != 0),
            1 => sign && inexact,
            2 => !sign && inexact,
            _ => false,
        };
        return (up ? whole + 1 : whole, up, inexact, false);
    }
}
