// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// x87 add, subtract, multiply, divide and square root on <see cref="Extended80"/>, exact then rounded once
/// (<see cref="X87Round"/>) at FCW.PC. Operand checks in the SDM's order (Vol. 1 4.9.2 precedence, 8.5.1-8.5.3):
/// an unsupported encoding or SNaN, then a QNaN operand, then the invalid operations (∞ − ∞, 0 × ∞, 0/0, ∞/∞,
/// √negative), then a denormal operand (#D), then divide by zero. <c>bDenormal</c>: the second operand came from a
/// binary32/binary64 denormal in memory (normal once widened, but still #D).
/// </summary>
internal static partial class X87Math
{
    public static Extended80 Add(Extended80 a, Extended80 b, bool subtract, ref X87Env env, bool bDenormal = false)
    {
        if (Special(a, b, ref env) is { } nan) return nan;
        if (subtract) b = b.Negate();
        if (a.IsInfinity || b.IsInfinity)
        {
            if (a.IsInfinity && b.IsInfinity && a.Sign != b.Sign) return Invalid(ref env);
            Denormals(a, b, bDenormal, ref env);
            return a.IsInfinity ? a : b;
        }
        if (Denormals(a, b, bDenormal, ref env)) return a;
        if (a.IsZero && b.IsZero) return a.Sign == b.Sign ? a : Extended80.Zero(env.Rc == 1);
        if (a.IsZero) return Round(b, ref env);
        if (b.IsZero) return Round(a, ref env);
        var (ea, ma) = a.Normalized();
        var (eb, mb) = b.Normalized();
        bool sa = a.Sign, sb = b.Sign;
        if (ea < eb || (ea == eb && ma < mb)) { (ea, ma, sa, eb, mb, sb) = (eb, mb, sb, ea, ma, sa); }
        // The integer bit at 126 leaves room for the carry; the smaller operand is jammed (≥ 62 guard bits remain).
        UInt128 x = (UInt128)ma << 63, y = X87Round.ShiftRightJam((UInt128)mb << 63, ea - eb);
        UInt128 sum = sa == sb ? x + y : x - y;
        if (sum == 0) return Extended80.Zero(env.Rc == 1); // exact cancellation: +0, −0 rounding down (SDM Vol. 1 4.8.3.2)
        int lz = (int)UInt128.LeadingZeroCount(sum);
        return X87Round.ToRegister(sa, ea + 1 - lz, sum << lz, ref env);
    }

    public static Extended80 Multiply(Extended80 a, Extended80 b, ref X87Env env, bool bDenormal = false)
    {
        if (Special(a, b, ref env) is { } nan) return nan;
        if ((a.IsInfinity && b.IsZero) || (a.IsZero && b.IsInfinity)) return Invalid(ref env);
        if (Denormals(a, b, bDenormal, ref env)) return a;
        bool sign = a.Sign ^ b.Sign;
        if (a.IsInfinity || b.IsInfinity) return Extended80.Infinity(sign);
        if (a.IsZero || b.IsZero) return Extended80.Zero(sign);
        var (ea, ma) = a.Normalized();
        var (eb, mb) = b.Normalized();
        UInt128 p = (UInt128)ma * mb; // exact, in [2^126, 2^128)
        int lz = (int)UInt128.LeadingZeroCount(p);
        return X87Round.ToRegister(sign, ea + eb - Extended80.Bias + 1 - lz, p << lz, ref env);
    }

    public static Extended80 Divide(Extended80 a, Extended80 b, ref X87Env env, bool bDenormal = false)
    {
        if (Special(a, b, ref env) is { } nan) return nan;
        if ((a.IsInfinity && b.IsInfinity) || (a.IsZero && b.IsZero)) return Invalid(ref env);
        bool sign = a.Sign ^ b.Sign;
        if (b.IsZero && !a.IsInfinity)
        {
            // SDM Vol. 1 8.5.3: masked response ∞ with the XOR of the signs. A denormal dividend is not #D as well
            // (seen on this EPYC: x87_sweep.c fdiv, FSW ZE alone).
            env.Flags |= X87Env.ZE;
            return Extended80.Infinity(sign);
        }
        if (Denormals(a, b, bDenormal, ref env)) return a;
        if (a.IsInfinity) return Extended80.Infinity(sign);
        if (b.IsInfinity) return Extended80.Zero(sign);
        if (a.IsZero) return Extended80.Zero(sign);
        var (ea, ma) = a.Normalized();
        var (eb, mb) = b.Normalized();
        // Two 64-bit quotient digits and a sticky bit from the remainder: 128 bits with the integer bit at 127.
        bool shift = ma < mb;
        UInt128 n = (UInt128)ma << (shift ? 64 : 63);
        ulong q1 = (ulong)(n / mb), r1 = (ulong)(n % mb);
        UInt128 n2 = (UInt128)r1 << 64;
        ulong q2 = (ulong)(n2 / mb);
        bool sticky = n2 % mb != 0;
        UInt128 v = ((UInt128)q1 << 64) | q2 | (sticky ? UInt128.One : 0);
        return X87Round.ToRegister(sign, ea - eb + Extended80.Bias - (shift ? 1 : 0), v, ref env);
    }

    /// <summary>FSQRT (SDM Vol. 2A FSQRT: −0 gives −0; any other negative, −∞ included, is #IA).</summary>
    public static Extended80 Sqrt(Extended80 a, ref X87Env env)
    {
        if (Special(a, a, ref env) is { } nan) return nan;
        if (a.IsZero) return a;
        if (a.Sign) return Invalid(ref env);
        if (a.IsInfinity) return a;
        if (Denormals(a, a, false, ref env)) return a;
        var (e, m) = a.Normalized();
        int unbiased = e - Extended80.Bias;
        bool odd = (unbiased & 1) != 0;
        UInt128 n = (UInt128)m << (odd ? 64 : 63);
        ulong r = IntegerSqrt(n);
        UInt128 rem = n - (UInt128)r * r;
        // The root is never a tie: rem > r means the fraction is above one half (r² + r + ¼ < n).
        ulong extra = rem == 0 ? 0 : rem > r ? 0xc000_0000_0000_0000 : 0x4000_0000_0000_0000;
        int exp = (odd ? unbiased - 1 : unbiased) / 2 + Extended80.Bias;
        return X87Round.ToRegister(false, exp, ((UInt128)r << 64) | extra, ref env);
    }

    private static ulong IntegerSqrt(UInt128 n)
    {
        UInt128 r = (UInt128)Math.Sqrt((double)n);
        for (int k = 0; k < 2 && r != 0; k++) r = (r + n / r) >> 1;
        while (r * r > n) r--;
        while (r < ulong.MaxValue && (r + 1) * (r + 1) <= n) r++;
        return (ulong)r;
    }

    /// <summary>A register result of FCW.PC precision from an unrounded operand (0 + x, x − 0).</summary>
    private static Extended80 Round(Extended80 x, ref X87Env env)
    {
        var (e, m) = x.Normalized();
        return X87Round.ToRegister(x.Sign, e, (UInt128)m << 64, ref env);
    }

    /// <summary>
    /// Unsupported encodings and NaNs (SDM Vol. 1 Table 4-7 for the x87): #IA with the real indefinite for an
    /// unsupported operand; an SNaN is #IA and quieted; of two NaNs the larger significand wins (a QNaN over an
    /// SNaN), equal ones the positive (SoftFloat's 8086 propagateNaNExtF80UI); null when neither operand is special.
    /// </summary>
    private static Extended80? Special(Extended80 a, Extended80 b, ref X87Env env)
    {
        if (a.IsUnsupported || b.IsUnsupported) return Invalid(ref env);
        bool nanA = a.IsNaN, nanB = b.IsNaN;
        if (!nanA && !nanB) return null;
        if (a.IsSignalingNaN || b.IsSignalingNaN) env.Flags |= X87Env.IE;
        return PropagateNaN(a, b);
    }

    public static Extended80 PropagateNaN(Extended80 a, Extended80 b)
    {
        bool nanA = a.IsNaN, nanB = b.IsNaN;
        if (!nanB) return a.Quiet();
        if (!nanA) return b.Quiet();
        bool sA = a.IsSignalingNaN, sB = b.IsSignalingNaN;
        if (sA != sB) return (sA ? b : a).Quiet();
        ulong magA = a.Significand & ~Extended80.IntegerBit, magB = b.Significand & ~Extended80.IntegerBit;
        if (magA != magB) return (magA > magB ? a : b).Quiet();
        return (a.SignExp <= b.SignExp ? a : b).Quiet();
    }

    public static Extended80 Invalid(ref X87Env env)
    {
        env.Flags |= X87Env.IE;
        return Extended80.Indefinite;
    }

    /// <summary>#D; true when it is unmasked, which stops the operation before any other flag (SDM Vol. 1 8.5.2).</summary>
    private static bool Denormals(Extended80 a, Extended80 b, bool bDenormal, ref X87Env env)
    {
        if (!(a.IsDenormal || b.IsDenormal || bDenormal)) return false;
        env.Flags |= X87Env.DE;
        return !env.Masked(X87Env.DE);
    }
}
