// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Rounding an exact (or sticky-jammed) result to a destination: the 64-bit x87 registers under FCW.PC, or binary32 /
/// binary64 for FST. SDM Vol. 1 4.8.4 (rounding), 4.9.1.4-4.9.1.6 and 8.5.4-8.5.6 (overflow, underflow, inexact):
/// tininess is detected after rounding (as Berkeley SoftFloat's 8086 specialization, roundPackToExtF80, has it); a
/// masked underflow is flagged only when the denormalized result is inexact, an unmasked one whenever the result is
/// tiny; with OE/UE unmasked a register destination gets the result rounded with the exponent unbounded and then
/// biased by ∓24576 (SDM Vol. 1 8.5.4, 8.5.5), a memory destination nothing. PC keeps the 15-bit exponent range
/// (SDM Vol. 1 8.1.5.2), so a reduced-precision denormal is rounded at the same significand bit.
/// </summary>
internal static class X87Round
{
    /// <summary>SDM Vol. 1 8.5.4: the bias adjustment of an unmasked overflow/underflow to a register.</summary>
    public const int RegisterBiasAdjust = 24576;

    /// <summary>
    /// Rounds (-1)^sign × v/2^127 × 2^(exp - 16383) (v's bit 127 set) to a register at FCW.PC.
    /// <paramref name="precision"/> overrides PC (64 for the instructions PC does not apply to).
    /// </summary>
    public static Extended80 ToRegister(bool sign, int exp, UInt128 v, ref X87Env env, int precision = 0)
    {
        var (e, s) = Core(sign, exp, v, precision == 0 ? env.Precision : precision, Extended80.MaxExp - 1, RegisterBiasAdjust, ref env);
        ulong sig = e == Extended80.MaxExp && s == 0 ? Extended80.IntegerBit : (ulong)(s >> 64); // overflow to infinity
        return new((ushort)((sign ? 0x8000 : 0) | (e & Extended80.MaxExp)), sig);
    }

    /// <summary>Rounds to binary32/binary64 (FST m32/m64); false when an unmasked OE/UE leaves memory unwritten.</summary>
    public static bool ToBinary(bool sign, int exp, UInt128 v, FloatFormat f, ref X87Env env, out ulong bits)
    {
        ushort before = env.Flags;
        var (e, s) = Core(sign, exp - Extended80.Bias + f.Bias, v, f.Precision, f.ExponentField - 1, 0, ref env);
        bits = (sign ? f.SignBit : 0) | ((ulong)e << f.FractionBits) | ((ulong)(s >> (128 - f.Precision)) & f.FractionMask);
        ushort raised = (ushort)(env.Flags & ~before);
        return (raised & ~env.Fcw & (X87Env.OE | X87Env.UE)) == 0;
    }

    /// <summary>
    /// The rounded exponent (target-biased; 0 for a denormal, maxExp + 1 for infinity) and the significand with the
    /// integer bit at 127. <paramref name="biasAdjust"/> 0: a memory destination.
    /// </summary>
    private static (int Exp, UInt128 Sig) Core(bool sign, int exp, UInt128 v, int precision, int maxExp, int biasAdjust, ref X87Env env)
    {
        int k = 128 - precision;
        if (v == 0) return (0, 0);
        if (exp <= 0)
        {
            var (e1, s1, up1, inexact1) = RoundAt(sign, exp, v, k, env.Rc);
            bool tiny = e1 < 1;
            // Out of range even biased (FSCALE's huge scales): the masked response (seen on this EPYC: fscale).
            if (tiny && !env.Masked(X87Env.UE) && (biasAdjust == 0 || e1 + biasAdjust >= 1))
            {
                env.Flags |= X87Env.UE;
                if (biasAdjust == 0) return (0, 0);
                if (inexact1) env.Flags |= X87Env.PE;
                env.RoundedUp = up1;
                return (e1 + biasAdjust, s1);
            }
            UInt128 shifted = ShiftRightJam(v, 1 - exp);
            var (_, s2, up2, inexact2) = RoundAt(sign, 0, shifted, k, env.Rc);
            if (inexact2) env.Flags |= (ushort)(X87Env.PE | (tiny ? X87Env.UE : 0));
            env.RoundedUp = up2;
            return ((s2 >> 127) != 0 ? 1 : 0, s2);
        }
        var (e, s, up, inexact) = RoundAt(sign, exp, v, k, env.Rc);
        if (e > maxExp)
        {
            env.Flags |= X87Env.OE;
            if (!env.Masked(X87Env.OE) && (biasAdjust == 0 || e - biasAdjust <= maxExp))
            {
                if (biasAdjust == 0) return (0, 0);
                if (inexact) env.Flags |= X87Env.PE;
                env.RoundedUp = up;
                return (e - biasAdjust, s);
            }
            env.Flags |= X87Env.PE;
            bool toInfinity = env.Rc == 0 || (env.Rc == 1 && sign) || (env.Rc == 2 && !sign);
            env.RoundedUp = toInfinity;
            return toInfinity ? (maxExp + 1, 0) : (maxExp, UInt128.MaxValue << k);
        }
        if (inexact) env.Flags |= X87Env.PE;
        env.RoundedUp = up;
        return (e, s);
    }

    /// <summary>Rounds away the low <paramref name="k"/> bits by RC (SDM Vol. 1 Table 4-8); a carry out renormalizes.</summary>
    public static (int Exp, UInt128 Sig, bool Up, bool Inexact) RoundAt(bool sign, int exp, UInt128 v, int k, int rc)
    {
        UInt128 unit = UInt128.One << k, mask = unit - 1, rem = v & mask, trunc = v & ~mask, half = unit >> 1;
        bool inexact = rem != 0;
        bool up = rc switch
        {
            0 => rem > half || (rem == half && (trunc & unit) != 0),
            1 => sign && inexact,
            2 => !sign && inexact,
            _ => false,
        };
        if (up)
        {
            trunc += unit;
            if (trunc == 0) { trunc = UInt128.One << 127; exp++; }
        }
        return (exp, trunc, up, inexact);
    }

    public static UInt128 ShiftRightJam(UInt128 v, int n) =>
        n <= 0 ? v : n >= 128 ? (v != 0 ? UInt128.One : UInt128.Zero) : (v >> n) | ((v & ((UInt128.One << n) - 1)) != 0 ? UInt128.One : UInt128.Zero);
}
