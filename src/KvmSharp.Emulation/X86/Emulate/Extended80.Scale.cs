// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>FSCALE, FXTRACT, FPREM and FPREM1 (SDM Vol. 2A, each instruction's page and its table of special cases).</summary>
internal static partial class X87Math
{
    /// <summary>FSCALE: ST(0) × 2^trunc(ST(1)); exact unless it overflows or underflows (64-bit precision).</summary>
    public static Extended80 Scale(Extended80 a, Extended80 b, ref X87Env env)
    {
        if (Special(a, b, ref env) is { } nan) return nan;
        if (b.IsInfinity)
        {
            // 0 × 2^+∞ and ∞ × 2^−∞ are #IA; otherwise ∞ or 0 with ST(0)'s sign (SDM Vol. 2A FSCALE, its table of results).
            if ((a.IsZero && !b.Sign) || (a.IsInfinity && b.Sign)) return Invalid(ref env);
            Denormals(a, a, false, ref env);
            return a.IsZero || a.IsInfinity ? a : b.Sign ? Extended80.Zero(a.Sign) : Extended80.Infinity(a.Sign);
        }
        if (Denormals(a, b, false, ref env)) return a;
        if (a.IsZero || a.IsInfinity) return a;
        long n = 0;
        if (!b.IsZero)
        {
            var (eb, mb) = b.Normalized();
            int unbiased = eb - Extended80.Bias;
            n = unbiased < 0 ? 0 : unbiased >= 20 ? 1L << 20 : (long)(mb >> (63 - unbiased));
            if (b.Sign) n = -n;
        }
        var (ea, ma) = a.Normalized();
        return X87Round.ToRegister(a.Sign, (int)Math.Clamp(ea + n, -(1 << 20), 1 << 20), (UInt128)ma << 64, ref env, precision: 64);
    }

    /// <summary>FXTRACT: (exponent, significand); 0 is #Z with −∞ as the exponent (SDM FXTRACT).</summary>
    public static (Extended80 Exponent, Extended80 Significand) Extract(Extended80 a, ref X87Env env)
    {
        if (Special(a, a, ref env) is { } nan) return (nan, nan);
        if (a.IsInfinity) return (Extended80.Infinity(false), a);
        if (a.IsZero)
        {
            env.Flags |= X87Env.ZE;
            return (Extended80.Infinity(true), a);
        }
        if (Denormals(a, a, false, ref env)) return (a, a);
        var (e, m) = a.Normalized();
        return (FromInteger(e - Extended80.Bias), new((ushort)((a.Sign ? 0x8000 : 0) | Extended80.Bias), m));
    }

    /// <summary>
    /// FPREM (truncating quotient) and FPREM1 (IEEE, nearest-even quotient): the exact remainder when the exponents
    /// differ by less than 64, with the quotient's low bits Q2, Q1, Q0 in C0, C3, C1; otherwise a partial reduction by
    /// a multiple of 2^(D − N) and C2 set (N = 32 + (D − 32) mod 32 here: "an implementation-dependent number between
    /// 32 and 63", SDM FPREM). Returns the result and the FSW condition bits.
    /// </summary>
    public static (Extended80 Result, ushort Conditions) Remainder(Extended80 a, Extended80 b, bool ieee, ref X87Env env)
    {
        const ushort C0 = 1 << 8, C1 = 1 << 9, C2 = 1 << 10, C3 = 1 << 14;
        if (Special(a, b, ref env) is { } nan) return (nan, 0);
        if (a.IsInfinity || b.IsZero) return (Invalid(ref env), 0);
        if (Denormals(a, b, false, ref env)) return (a, 0);
        if (a.IsZero) return (a, 0);
        var (ea, ma) = a.Normalized();
        // a itself, normalized: a pseudo-denormal comes back with exponent 1 (seen on this EPYC: x87_sweep.c fprem).
        if (b.IsInfinity) return (X87Round.ToRegister(a.Sign, ea, (UInt128)ma << 64, ref env, precision: 64), 0);
        var (eb, mb) = b.Normalized();
        int d = ea - eb;
        if (d >= 64)
        {
            int n = 32 + (d - 32) % 32;
            int reduce = d - n; // remove an integer multiple of b × 2^reduce
            UInt128 num = (UInt128)ma << n;
            UInt128 part = num % mb;
            return (Exact(a.Sign, eb + reduce, part, ref env), C2);
        }
        UInt128 q, r;
        if (d < 0)
        {
            q = 0;
            r = 0;
        }
        else
        {
            UInt128 num = (UInt128)ma << d;
            q = num / mb;
            r = num % mb;
        }
        bool sign = a.Sign;
        Extended80 result;
        if (d < 0)
        {
            // |a| < |b|: FPREM leaves a; FPREM1 rounds the quotient 0.5…1 up when |a| > |b|/2 (d = −1 only).
            if (ieee && d == -1 && ma > mb)
            {
                q = 1;
                result = Exact(!sign, eb - 1, (UInt128)mb * 2 - ma, ref env);
            }
            // a itself, normalized: a pseudo-denormal comes back with exponent 1 (seen on this EPYC: x87_sweep.c fprem).
            else result = X87Round.ToRegister(a.Sign, ea, (UInt128)ma << 64, ref env, precision: 64);
        }
        else
        {
            if (ieee && (r * 2 > mb || (r * 2 == mb && (q & 1) != 0)))
            {
                q++;
                r = mb - r;
                sign = !sign;
            }
            result = r == 0 ? Extended80.Zero(a.Sign) : Exact(sign, eb, r, ref env);
        }
        ushort cc = (ushort)(((q & 4) != 0 ? C0 : 0) | ((q & 2) != 0 ? C3 : 0) | ((q & 1) != 0 ? C1 : 0));
        return (result, cc);
    }

    /// <summary>r × 2^(unitExp − bias − 63), exactly, as a register value (it may be denormal).</summary>
    private static Extended80 Exact(bool sign, int unitExp, UInt128 r, ref X87Env env)
    {
        if (r == 0) return Extended80.Zero(sign);
        int lz = (int)UInt128.LeadingZeroCount(r);
        return X87Round.ToRegister(sign, unitExp + 64 - lz, r << lz, ref env, precision: 64);
    }
}
