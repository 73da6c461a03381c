// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.Arm64;
using System.Numerics;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.A64SimdEncoder;
using static KvmSharp.Emulation.Tests.Arm64SimdTests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// FPCR.RMode (RN, RP, RM, RZ) for the scalar FADD, FSUB, FMUL, FDIV, FSQRT and FMADD of single and double precision.
/// The oracle is exact rational arithmetic (BigInteger) rounded as the Arm ARM's FPRoundBase does: the result bits
/// and the FPSR flags OFC, UFC (tiny before rounding and inexact) and IXC of each of a few hundred operand sets,
/// computed by a guest loop. Emulator-only (the host is x86).
/// </summary>
public class Arm64FpRoundingTests
{
    private const ulong In = 0x6000, Out = 0xA000;
    private const int Count = 200;
    private const uint Ofc = 4, Ufc = 8, Ixc = 16;

    /// <summary>FmaTiny: FMADD whose product is tiny (double: below 2^−969, down to underflowing to 0) beside a larger addend.</summary>
    public enum Op { Add, Sub, Mul, Div, Sqrt, Fma, FmaTiny }

    public static TheoryData<Op, bool, uint> Cases()
    {
        var data = new TheoryData<Op, bool, uint>();
        foreach (Op op in Enum.GetValues<Op>())
            foreach (bool dbl in new[] { false, true })
                for (uint mode = 0; mode < 4; mode++) data.Add(op, dbl, mode);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Directed_rounding_matches_exact_arithmetic(Op op, bool dbl, uint mode)
    {
        // C7.2 FADD/FSUB/FMUL/FDIV/FSQRT/FMADD (scalar) with FPCR.RMode = mode (bits 23:22): FPRoundBase.
        var random = new Random(1000 + (int)op * 16 + (dbl ? 8 : 0) + (int)mode);
        var operands = new (double A, double B, double C)[Count];
        for (int i = 0; i < Count; i++) operands[i] = Operands(random, op, dbl);
        uint ftype = dbl ? D : S;
        int scale = dbl ? 3 : 2;
        uint insn = op switch
        {
            Op.Add => Fp2(ftype, 0b0010, rd: 3, rn: 0, rm: 1),          // fadd d3/s3, d0, d1
            Op.Sub => Fp2(ftype, 0b0011, rd: 3, rn: 0, rm: 1),          // fsub
            Op.Mul => Fp2(ftype, 0b0000, rd: 3, rn: 0, rm: 1),          // fmul
            Op.Div => Fp2(ftype, 0b0001, rd: 3, rn: 0, rm: 1),          // fdiv
            Op.Sqrt => Fp1(ftype, 3, rd: 3, rn: 0),                     // fsqrt
            _ => Fp3(ftype, o1: false, o0: false, rd: 3, rn: 0, rm: 1, ra: 2), // fmadd d3, d0, d1, d2 (d2 + d0 × d1)
        };
        using var s = RunToDone(a =>
        {
            a.MovImm(X(2), In);
            a.MovImm(X(3), Out);
            a.MovImm(X(4), Count);
            a.MovImm(X(6), mode << 22);
            a.Msr(FpcrReg, X(6));
            var loop = a.CreateLabel();
            a.Bind(loop);
            a.Msr(FpsrReg, Xzr);
            a.Emit(LdrStrImm9(load: true, scale, idx: 1, rt: 0, rn: 2, offset: 8));   // ldr d0/s0, [x2], #8
            a.Emit(LdrStrImm9(load: true, scale, idx: 1, rt: 1, rn: 2, offset: 8));   // ldr d1/s1, [x2], #8
            a.Emit(LdrStrImm9(load: true, scale, idx: 1, rt: 2, rn: 2, offset: 8));   // ldr d2/s2, [x2], #8
            a.Emit(insn);
            a.Emit(LdrStrImm9(load: false, scale: 3, idx: 1, rt: 3, rn: 3, offset: 8)); // str d3, [x3], #8
            a.Mrs(X(5), FpsrReg);
            a.StrPost(X(5), X(3), 8);
            a.SubsImm(X(4), X(4), 1);
            a.B(A64Condition.NE, loop);
        }, vm =>
        {
            byte[] image = new byte[24 * Count];
            for (int i = 0; i < Count; i++)
            {
                var (x, y, z) = operands[i];
                BitConverter.TryWriteBytes(image.AsSpan(24 * i), Encode(x, dbl));
                BitConverter.TryWriteBytes(image.AsSpan(24 * i + 8), Encode(y, dbl));
                BitConverter.TryWriteBytes(image.AsSpan(24 * i + 16), Encode(z, dbl));
            }
            vm.Host.Write(In, image);
        });
        byte[] results = new byte[16 * Count];
        s.Host.Read(Out, results);
        for (int i = 0; i < Count; i++)
        {
            var (x, y, z) = operands[i];
            var (bits, flags) = Expected(op, x, y, z, dbl, mode);
            ulong actualBits = BitConverter.ToUInt64(results, 16 * i);
            uint actualFlags = (uint)BitConverter.ToUInt64(results, 16 * i + 8);
            Assert.True(bits == actualBits && flags == actualFlags,
                $"{op} {(dbl ? "double" : "single")} mode {mode}: {x:R} {y:R} {z:R}: expected {bits:X}/{flags:X}, got {actualBits:X}/{actualFlags:X}");
        }
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1u)]
    [InlineData(2u)]
    [InlineData(3u)]
    public void Invalid_double_operations_give_the_default_nan_and_ioc_in_every_rounding_mode(uint mode)
    {
        // FPDiv of 0 by 0 and FPSqrt of a negative (here a negative subnormal): FPProcessException(FPExc_InvalidOp),
        // the result FPDefaultNaN (0x7FF8000000000000 with FPCR.DN or not: no NaN operand), FPSR.IOC — exact, so the
        // rounding mode plays no part (it once stopped the run as a refused directed rounding).
        double negativeTiny = -double.Epsilon * 3;
        using var s = RunToDone(a =>
        {
            a.MovImm(X(2), In);
            a.MovImm(X(3), Out);
            a.MovImm(X(6), mode << 22);
            a.Msr(FpcrReg, X(6));
            a.Emit(LdrStrImm9(load: true, scale: 3, idx: 1, rt: 0, rn: 2, offset: 8)); // ldr d0, [x2], #8 (0.0)
            a.Emit(LdrStrImm9(load: true, scale: 3, idx: 1, rt: 1, rn: 2, offset: 8)); // ldr d1, [x2], #8 (−tiny)
            foreach (uint insn in new[] { Fp2(D, 0b0001, rd: 3, rn: 0, rm: 0), Fp1(D, 3, rd: 3, rn: 1) }) // fdiv d3, d0, d0; fsqrt d3, d1
            {
                a.Msr(FpsrReg, Xzr);
                a.Emit(insn);
                a.Emit(LdrStrImm9(load: false, scale: 3, idx: 1, rt: 3, rn: 3, offset: 8)); // str d3, [x3], #8
                a.Mrs(X(5), FpsrReg);
                a.StrPost(X(5), X(3), 8);
            }
        }, vm =>
        {
            byte[] image = new byte[16];
            BitConverter.TryWriteBytes(image.AsSpan(8), negativeTiny);
            vm.Host.Write(In, image);
        });
        byte[] results = new byte[32];
        s.Host.Read(Out, results);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(0x7FF8_0000_0000_0000UL, BitConverter.ToUInt64(results, 16 * i));
            Assert.Equal(1UL, BitConverter.ToUInt64(results, 16 * i + 8)); // IOC only
        }
    }

    private static ulong Encode(double x, bool dbl) => dbl ? BitConverter.DoubleToUInt64Bits(x) : BitConverter.SingleToUInt32Bits((float)x);

    /// <summary>
    /// Finite operands with random significands: doubles with exponents in ±300 (no overflow, no subnormal product),
    /// singles in ±75 (overflowing and subnormal results included); every fourth addition nearly cancels.
    /// </summary>
    private static (double, double, double) Operands(Random random, Op op, bool dbl)
    {
        double Next()
        {
            int range = dbl ? 300 : 75;
            double significand = 1 + random.NextDouble();
            double v = Math.ScaleB(significand, random.Next(-range, range + 1)) * (random.Next(2) == 0 ? 1 : -1);
            return dbl ? v : (float)v;
        }
        double a = Next(), b = Next(), c = Next();
        if (op == Op.FmaTiny)
        {
            // Factors of 2^−560 … 2^−480 (single: 2^−75 … 2^−60): products from 2^−1120 (below the subnormals) to
            // 2^−960; the addend is a normal number or, one time in four, a product-sized one.
            double Tiny()
            {
                int e = dbl ? random.Next(-560, -479) : random.Next(-75, -59);
                double v = Math.ScaleB(1 + random.NextDouble(), e) * (random.Next(2) == 0 ? 1 : -1);
                return dbl ? v : (float)v;
            }
            a = Tiny();
            b = Tiny();
            if (random.Next(4) == 0)
            {
                double near = Math.ScaleB(1 + random.NextDouble(), dbl ? random.Next(-1074, -960) : random.Next(-149, -120));
                c = dbl ? near : (float)near;
            }
        }
        if (op == Op.Sqrt) a = Math.Abs(a);
        if (op is Op.Add or Op.Sub && random.Next(4) == 0)
        {
            double near = -a * (1 + Math.ScaleB(random.NextDouble(), -(dbl ? 40 : 15)));
            b = dbl ? near : (float)near;
            if (op == Op.Sub) b = -b;
        }
        if (op == Op.Fma && random.Next(4) == 0)
        {
            double near = -(a * b) * (1 + Math.ScaleB(random.NextDouble(), -(dbl ? 40 : 15)));
            if (double.IsFinite(dbl ? near : (float)near)) c = dbl ? near : (float)near; // an addend must be finite
        }
        return (a, b, c);
    }

    /// <summary>An exact rational: numerator / 2^-exponent style pair (num, den), den &gt; 0.</summary>
    private readonly record struct Rational(BigInteger Num, BigInteger Den)
    {
        public static Rational Of(double x)
        {
            long bits = BitConverter.DoubleToInt64Bits(x);
            int exp = (int)((bits >> 52) & 0x7FF);
            long mantissa = bits & 0xF_FFFF_FFFF_FFFF;
            if (exp != 0) mantissa |= 1L << 52;
            else exp = 1;
            int e = exp - 1075;
            BigInteger m = x < 0 ? -mantissa : mantissa;
            return e >= 0 ? new Rational(m << e, 1) : new Rational(m, BigInteger.One << -e);
        }

        public static Rational operator +(Rational p, Rational q) => new(p.Num * q.Den + q.Num * p.Den, p.Den * q.Den);

        public static Rational operator -(Rational p) => new(-p.Num, p.Den);

        public static Rational operator *(Rational p, Rational q) => new(p.Num * q.Num, p.Den * q.Den);

        public static Rational operator /(Rational p, Rational q) =>
            q.Num < 0 ? new(-p.Num * q.Den, p.Den * -q.Num) : new(p.Num * q.Den, p.Den * q.Num);
    }

    private static (ulong Bits, uint Flags) Expected(Op op, double a, double b, double c, bool dbl, uint mode)
    {
        Rational x = Rational.Of(a), y = Rational.Of(b), z = Rational.Of(c);
        if (op == Op.Sqrt) return ExpectedSqrt(a, dbl, mode);
        Rational exact = op switch
        {
            Op.Add => x + y,
            Op.Sub => x + -y,
            Op.Mul => x * y,
            Op.Div => x / y,
            _ => z + x * y,
        };
        return Round(exact, dbl, mode, negativeZero: op switch
        {
            // An exact zero sum is +0 except in RM (FPRoundBase / FPAdd's sign rule); products and quotients keep the sign.
            Op.Add or Op.Sub or Op.Fma or Op.FmaTiny => mode == 2,
            _ => (a < 0) != (b < 0),
        });
    }

    /// <summary>FPRoundBase of an exact value to double or single in <paramref name="mode"/>: the bits and OFC/UFC/IXC.</summary>
    private static (ulong Bits, uint Flags) Round(Rational q, bool dbl, uint mode, bool negativeZero)
    {
        int precision = dbl ? 53 : 24, emin = dbl ? -1022 : -126, emax = dbl ? 1023 : 127;
        if (q.Num.IsZero) return (Encode(negativeZero ? -0.0 : 0.0, dbl), 0);
        bool negative = q.Num < 0;
        BigInteger num = BigInteger.Abs(q.Num), den = q.Den;
        // e = floor(log2(num / den)).
        int e = (int)(num.GetBitLength() - den.GetBitLength());
        if (Compare(num, den, e) < 0) e--;
        bool tiny = e < emin;
        int ulpExp = Math.Max(e, emin) - (precision - 1);
        // m = floor(num / den / 2^ulpExp), rest = the remainder.
        BigInteger n2 = ulpExp >= 0 ? num : num << -ulpExp, d2 = ulpExp >= 0 ? den << ulpExp : den;
        BigInteger m = BigInteger.DivRem(n2, d2, out BigInteger rest);
        bool inexact = !rest.IsZero;
        int half = (rest * 2).CompareTo(d2);
        bool up = mode switch
        {
            0 => half > 0 || (half == 0 && !m.IsEven),
            1 => inexact && !negative,
            2 => inexact && negative,
            _ => false,
        };
        if (up) m++;
        if (m == BigInteger.One << precision)
        {
            m >>= 1;
            ulpExp++;
        }
        int resultExp = ulpExp + precision - 1;
        if (m >= BigInteger.One << (precision - 1) && resultExp > emax)
        {
            bool infinity = mode == 0 || (mode == 1 && !negative) || (mode == 2 && negative);
            double max = dbl ? double.MaxValue : float.MaxValue;
            double v = infinity ? double.PositiveInfinity : max;
            return (Encode(negative ? -v : v, dbl), Ofc | Ixc);
        }
        double value = Math.ScaleB((double)m, ulpExp);
        uint flags = inexact ? (tiny ? Ufc | Ixc : Ixc) : 0;
        return (Encode(negative ? -value : value, dbl), flags);
    }

    /// <summary>Sign of num/den − 2^e.</summary>
    private static int Compare(BigInteger num, BigInteger den, int e) =>
        e >= 0 ? num.CompareTo(den << e) : (num << -e).CompareTo(den);

    /// <summary>
    /// FPSqrt: the nearest result from .NET (correctly rounded), then its neighbour on the mode's side when r² is on
    /// the wrong side of the operand (compared exactly).
    /// </summary>
    private static (ulong Bits, uint Flags) ExpectedSqrt(double a, bool dbl, uint mode)
    {
        double r = dbl ? Math.Sqrt(a) : MathF.Sqrt((float)a);
        Rational rr = Rational.Of(r), x = Rational.Of(a);
        Rational square = rr * rr;
        int cmp = (x.Num * square.Den).CompareTo(square.Num * x.Den); // sign of a − r², the sign of sqrt(a) − r
        if (cmp == 0) return (Encode(r, dbl), 0);
        bool up = mode switch { 1 => cmp > 0, _ => false };
        bool down = mode switch { 2 or 3 => cmp < 0, _ => false };
        if (up) r = dbl ? Math.BitIncrement(r) : MathF.BitIncrement((float)r);
        if (down) r = dbl ? Math.BitDecrement(r) : MathF.BitDecrement((float)r);
        return (Encode(r, dbl), Ixc);
    }
}
