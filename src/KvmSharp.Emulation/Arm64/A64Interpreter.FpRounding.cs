// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// FPCR.RMode for the arithmetic of A64Interpreter.FpArithmetic.cs (Arm ARM FPRoundBase, FPDecodeRounding): .NET
/// rounds to nearest-even, so a directed mode starts from that result r and the sign of the exact error (exact − r:
/// the TwoSum error of an addition, the FMA residual x·y − r of a product, (x − r·y)·sign(y) of a quotient, x − r² of a
/// square root, an error-free expansion for a double fused multiply-add) and steps to r's neighbour on the mode's side
/// when r lies on the wrong side: RP rounds up, RM down, RZ toward zero. [D] Where that error can be lost (a double
/// product, quotient or root in or near the subnormal range whose residual underflows, a double FMA whose product
/// overflows or underflows, a double result that overflows under a mode rounding toward zero), a directed mode stops
/// the run as unsupported instead of guessing.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>2^−969 = 2^−1022 × 2^53: below it a residual of a double result can fall under the subnormal range.</summary>
    private static readonly double ResidualUnderflowBound = Math.ScaleB(1.0, -969);

    private static readonly double SingleOverflowBound = Math.ScaleB(1.0, 128);

    private uint FpRMode => (cpu.Fpcr >> 22) & 3;

    /// <summary>
    /// A rounding mode (FPDecodeRounding: 0 RN, 1 RP, 2 RM, 3 RZ; 4 FPRounding_TIEAWAY) as the MidpointRounding that makes
    /// Math.Round round to an integer in it (exact for every double): FPRoundInt and FPRoundIntN.
    /// </summary>
    private static MidpointRounding FpIntegerRounding(uint mode) => mode switch
    {
        0 => MidpointRounding.ToEven,
        1 => MidpointRounding.ToPositiveInfinity,
        2 => MidpointRounding.ToNegativeInfinity,
        3 => MidpointRounding.ToZero,
        _ => MidpointRounding.AwayFromZero,
    };

    /// <summary>The sign of exact − r: 0 when exact, the residual's sign, or (a result rounded to zero) the sign of the zero.</summary>
    private static int FpDirection(bool inexact, double residual, double r) =>
        !inexact ? 0 : residual != 0 ? Math.Sign(residual) : double.IsNegative(r) ? -1 : 1;

    /// <summary>The neighbour of the nearest result <paramref name="r"/> on the side FPCR.RMode asks for (RN: r itself).</summary>
    private static double FpDirected(double r, int direction, uint mode, bool single = false)
    {
        bool up = mode switch { 1 => direction > 0, 3 => r < 0 && direction > 0, _ => false };
        bool down = mode switch { 2 => direction < 0, 3 => r > 0 && direction < 0, _ => false };
        if (!up && !down) return r;
        if (r == 0) return single ? (up ? float.Epsilon : -float.Epsilon) : (up ? double.Epsilon : -double.Epsilon);
        if (single) return up ? MathF.BitIncrement((float)r) : MathF.BitDecrement((float)r);
        return up ? Math.BitIncrement(r) : Math.BitDecrement(r);
    }

    /// <summary>
    /// FPRoundBase's overflow: RN, and a mode rounding away from zero for this sign, give ∞ with OFC and IXC; a mode
    /// rounding toward zero gives the largest finite value, with OFC only when |exact| reaches 2^(emax+1)
    /// (<paramref name="overflows"/>; null when unknown: refused [D]).
    /// </summary>
    private double FpOverflow(bool negative, uint mode, double max, bool? overflows)
    {
        bool towardInfinity = mode == 0 || (mode == 1 && !negative) || (mode == 2 && negative);
        if (towardInfinity)
        {
            FpFlag(FpsrOfc | FpsrIxc);
            return negative ? double.NegativeInfinity : double.PositiveInfinity;
        }
        if (overflows is null) RefuseDirectedRounding();
        FpFlag(overflows == true ? FpsrOfc | FpsrIxc : FpsrIxc);
        return negative ? -max : max;
    }

    /// <summary>
    /// The sign of (a + x·y) − r for r = fl(a + x·y): p + ep = x·y (FMA residual), p + a = s + e1 (TwoSum),
    /// s − r = t + et (TwoSum), then the sign of the exact sum t + et + e1 + ep (Shewchuk's Grow-Expansion).
    /// When a step can be inexact (the product overflows or is tiny) the sign comes from exact integer arithmetic
    /// (<see cref="ExactResidualSign"/>); <paramref name="certain"/> stays true for finite operands.
    /// </summary>
    private static int FmaResidualSign(double x, double y, double a, double r, out bool certain)
    {
        certain = true;
        if (!double.IsFinite(r) || !double.IsFinite(x) || !double.IsFinite(y) || !double.IsFinite(a)) return 0;
        double p = x * y;
        if (!double.IsFinite(p) || (p != 0 && Math.Abs(p) < ResidualUnderflowBound) || (p == 0 && x != 0 && y != 0))
            return ExactResidualSign(x, y, a, r);
        double ep = Math.FusedMultiplyAdd(x, y, -p);
        double s = p + a;
        if (!double.IsFinite(s)) return ExactResidualSign(x, y, a, r);
        double e1 = TwoSumError(p, a, s);
        double t = s - r, et = TwoSumError(s, -r, t);
        Span<double> expansion = stackalloc double[5];
        int length = 0;
        foreach (double term in (ReadOnlySpan<double>)[t, et, e1, ep])
        {
            // Grow-Expansion: add one term to a non-overlapping expansion, keeping the components exact.
            double q = term;
            int k = 0;
            for (int i = 0; i < length; i++)
            {
                double sum = q + expansion[i];
                double err = TwoSumError(q, expansion[i], sum);
                if (err != 0) expansion[k++] = err;
                q = sum;
            }
            expansion[k++] = q;
            length = k;
        }
        for (int i = length - 1; i >= 0; i--)
            if (expansion[i] != 0) return Math.Sign(expansion[i]);
        return 0;
    }

    /// <summary>
    /// The sign of (a + x·y) − r computed exactly: each finite double is m·2^e with an integer m (IEEE 754 binary64:
    /// 53-bit significand, e from −1074), so the sum is an integer after scaling everything to the smallest exponent
    /// (at most a few thousand bits, for the rare tiny or overflowing products only).
    /// </summary>
    private static int ExactResidualSign(double x, double y, double a, double r)
    {
        var (mx, ex) = Dyadic(x);
        var (my, ey) = Dyadic(y);
        var (ma, ea) = Dyadic(a);
        var (mr, er) = Dyadic(r);
        int ep = ex + ey, min = Math.Min(Math.Min(ep, ea), er);
        BigInteger total = ((mx * my) << (ep - min)) + (ma << (ea - min)) - (mr << (er - min));
        return total.Sign;
    }

    /// <summary>A finite double as m·2^e (m signed, exact).</summary>
    private static (BigInteger M, int E) Dyadic(double v)
    {
        long bits = BitConverter.DoubleToInt64Bits(v);
        int biased = (int)((bits >> 52) & 0x7FF);
        long fraction = bits & 0xF_FFFF_FFFF_FFFFL;
        long m = biased == 0 ? fraction : fraction | (1L << 52);
        int e = (biased == 0 ? 1 : biased) - 1075;
        return (bits < 0 ? -(BigInteger)m : m, e);
    }
}
