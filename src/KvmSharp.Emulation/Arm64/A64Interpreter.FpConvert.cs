// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Floating-point conversions beyond the integer ones of A64Interpreter.FloatingPoint.cs (Arm ARM C7.2 and the shared
/// pseudocode FPToFixed, FixedToFP, FPConvert, FPConvertNaN, FPRoundCV): SCVTF/UCVTF/FCVTZS/FCVTZU (scalar,
/// fixed-point, #fbits), the vector fixed-point forms' lane operations, FCVT between half precision and single/double
/// (scalar) and FCVTL/FCVTN (vector: half↔single, single↔double); the half-precision fixed-point forms (FEAT_FP16). A conversion to half precision rounds in
/// FPCR.RMode (every mode, computed exactly); half-precision operands and results are never flushed (FPRoundCV and
/// FPUnpackCV ignore FPCR.FZ16). [D] FPCR.AHP = 1 (the alternative half-precision format) stops as unsupported.
/// </summary>
internal sealed partial class A64Interpreter
{
    private const ulong HalfDefaultNan = 0x7E00;

    /// <summary>
    /// FPToFixed(op, fbits, unsigned, rounding) to a 32- or 64-bit integer: round(op × 2^fbits), saturated. A NaN gives 0,
    /// out of range the nearest bound, both with IOC (and no IXC); an in-range rounded value sets IXC when inexact.
    /// </summary>
    private ulong FpToFixed(ulong a, bool dbl, int fbits, bool sf, bool unsigned, MidpointRounding rounding)
    {
        a = FpFlushIn(a, dbl);
        int bits = sf ? 64 : 32;
        Int128 min = unsigned ? 0 : -(Int128.One << (bits - 1));
        Int128 max = unsigned ? (Int128.One << bits) - 1 : (Int128.One << (bits - 1)) - 1;
        ulong mask = sf ? ulong.MaxValue : 0xFFFF_FFFFUL;
        if (FpIsNan(a, dbl))
        {
            FpFlag(FpsrIoc);
            return 0;
        }
        // Scaling by 2^fbits is exact (or overflows to an infinity, out of range anyway).
        double x = Math.ScaleB(FpToDouble(a, dbl), fbits);
        double rounded = Math.Round(x, rounding);
        Int128 value = Math.Abs(rounded) < 36893488147419103232.0 ? (Int128)rounded : rounded < 0 ? min - 1 : max + 1;
        if (value < min || value > max)
        {
            FpFlag(FpsrIoc);
            return (ulong)(value < min ? min : max) & mask;
        }
        if (rounded != x) FpFlag(FpsrIxc);
        return (ulong)value & mask;
    }

    /// <summary>FixedToFP(value, fbits): value ÷ 2^fbits rounded once (the division by a power of two is exact: no result is subnormal for fbits ≤ 64).</summary>
    private ulong FixedToFpScaled(Int128 value, bool dbl, int fbits)
    {
        ulong bits = FixedToFp(value, dbl);
        if (fbits == 0) return bits;
        return dbl ? BitConverter.DoubleToUInt64Bits(Math.ScaleB(BitConverter.UInt64BitsToDouble(bits), -fbits))
                   : BitConverter.SingleToUInt32Bits(MathF.ScaleB(BitConverter.UInt32BitsToSingle((uint)bits), -fbits));
    }

    /// <summary>
    /// Conversion between floating-point and fixed-point: sf 0 0 11110 ftype 0 rmode opcode scale Rn Rd. SCVTF (rmode
    /// 00, opcode 010), UCVTF (011), FCVTZS (rmode 11, 000), FCVTZU (001); fbits = 64 − scale, and a 32-bit form
    /// with scale&lt;5&gt; = 0 is unallocated. ftype 11 (Hn/Hd, FEAT_FP16) through the half element operations of
    /// A64Interpreter.FpHalf.cs (FixedToFP at N = 16 can give a subnormal, flushed with FPCR.FZ16).
    /// </summary>
    private bool FpFixedConversion(uint insn)
    {
        bool sf = (insn >> 31) != 0;
        uint ftype = (insn >> 22) & 3, rmode = (insn >> 19) & 3, opcode = (insn >> 16) & 7, scale = (insn >> 10) & 63;
        bool toFp = rmode == 0 && opcode is 2 or 3, toFixed = rmode == 3 && opcode is 0 or 1;
        if (ftype == 2 || (ftype == 3 && !Fp16) || (!toFp && !toFixed) || (!sf && scale < 32)) return UndefinedTrue();
        if (FpTrapped()) return true;
        bool unsigned = (opcode & 1) != 0;
        int esz = ftype switch { 0 => 4, 1 => 8, _ => 2 };
        int fbits = 64 - (int)scale, rd = (int)(insn & 31), rn = (int)((insn >> 5) & 31);
        if (toFixed)
        {
            cpu.SetReg(rd, FpToFixedE(FpRegE(rn, esz), esz, fbits, sf ? 64 : 32, unsigned, MidpointRounding.ToZero));
        }
        else
        {
            ulong x = cpu.Reg(rn);
            Int128 value = sf ? (unsigned ? x : (Int128)(long)x) : (unsigned ? (uint)x : (Int128)(int)x);
            SetVScalar(rd, FixedToFpE(value, esz, fbits), 8 * esz);
        }
        Next();
        return true;
    }

    /// <summary>
    /// FCVT with half precision (FP data-processing 1 source): Hd from Sn (ftype 00, opcode 000111) or Dn (01, 000111),
    /// Sd from Hn (11, 000100), Dd from Hn (11, 000101). False for every other encoding.
    /// </summary>
    private bool FpHalfConvert(uint insn)
    {
        uint ftype = (insn >> 22) & 3, opcode = (insn >> 15) & 63;
        bool toHalf = ftype <= 1 && opcode == 7, fromHalf = ftype == 3 && opcode is 4 or 5;
        if (!toHalf && !fromHalf) return false;
        if (FpTrapped()) return true;
        RefuseAlternativeHalf();
        int rd = (int)(insn & 31), rn = (int)((insn >> 5) & 31);
        if (toHalf) SetVScalar(rd, FpToHalf(FpReg(rn, ftype == 1), ftype == 1), 16);
        else SetVScalar(rd, FpFromHalf((ushort)cpu.Vregs[rn], opcode == 5), opcode == 5 ? 64 : 32);
        Next();
        return true;
    }

    /// <summary>[D] FPCR.AHP = 1 selects the alternative half-precision format, not modelled.</summary>
    private void RefuseAlternativeHalf()
    {
        if ((cpu.Fpcr & (1u << 26)) != 0) throw new UnsupportedInstructionStop(LastInstruction);
    }

    /// <summary>
    /// FCVTL/FCVTL2 (opcode 10111) and FCVTN/FCVTN2 (10110), U 0, a 0: sz 0 half↔single, sz 1 single↔double. The
    /// "2" forms (Q = 1) read (FCVTL) or write (FCVTN, keeping the low half) the upper 64 bits.
    /// </summary>
    private bool SimdFpConvertLongNarrow(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0, dbl = ((insn >> 22) & 1) != 0;
        bool narrow = ((insn >> 12) & 1) == 0;
        if (u) return false; // FCVTXN
        if (FpTrapped()) return true;
        if (!dbl) RefuseAlternativeHalf();
        int rd = (int)(insn & 31), wide = dbl ? 64 : 32, half = dbl ? 32 : 16;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31];
        UInt128 result = 0;
        if (narrow)
        {
            for (int i = 0; i < 64 / half; i++)
            {
                ulong x = Elem(n, i, wide);
                result = WithElem(result, i, half, dbl ? FpConvertToSingle(x) : FpToHalf(x, dbl: false));
            }
            SetV(rd, q ? (result << 64) | (ulong)cpu.Vregs[rd] : result);
        }
        else
        {
            ulong source = q ? (ulong)(n >> 64) : (ulong)n;
            for (int i = 0; i < 64 / half; i++)
            {
                ulong x = Elem(source, i, half);
                result = WithElem(result, i, wide, dbl ? FpConvertToDouble(x) : FpFromHalf((ushort)x, dbl: false));
            }
            SetV(rd, result);
        }
        Next();
        return true;
    }

    /// <summary>FPConvert half → single/double: exact; a NaN through FPConvertNaN (IOC when signalling, FPCR.DN).</summary>
    private ulong FpFromHalf(ushort h, bool dbl)
    {
        ulong sign = (ulong)(h >> 15);
        int exp = (h >> 10) & 31;
        ulong frac = h & 0x3FFUL;
        if (exp == 31 && frac != 0)
        {
            if ((frac & 0x200) == 0) FpFlag(FpsrIoc);
            if (FpDefaultNan) return FpDefaultNanBits(dbl);
            return dbl ? (sign << 63) | 0x7FF8_0000_0000_0000UL | ((frac & 0x1FF) << 42) : (sign << 31) | 0x7FC0_0000UL | ((frac & 0x1FF) << 13);
        }
        double value = exp == 31 ? double.PositiveInfinity : exp == 0 ? Math.ScaleB((double)frac, -24) : Math.ScaleB((double)(frac | 0x400), exp - 25);
        if (sign != 0) value = -value;
        return dbl ? BitConverter.DoubleToUInt64Bits(value) : BitConverter.SingleToUInt32Bits((float)value);
    }

    /// <summary>
    /// FPConvert single/double → half (FPRoundCV): the operand flushed with FPCR.FZ, a NaN through FPConvertNaN (the
    /// fraction's top bits), else rounded in FPCR.RMode. IXC when inexact, UFC when also tiny before rounding, OFC and
    /// IXC when the rounded exponent is too large (∞ or the largest finite value, as the mode says).
    /// </summary>
    private ulong FpToHalf(ulong a, bool dbl)
    {
        a = FpFlushIn(a, dbl);
        ulong sign = dbl ? a >> 63 : (a >> 31) & 1;
        if (FpIsNan(a, dbl))
        {
            if (FpIsSignalling(a, dbl)) FpFlag(FpsrIoc);
            if (FpDefaultNan) return HalfDefaultNan;
            ulong top = dbl ? (a >> 42) & 0x1FF : (a >> 13) & 0x1FF;
            return (sign << 15) | 0x7E00 | top;
        }
        double x = Math.Abs(FpToDouble(a, dbl));
        if (double.IsInfinity(x)) return (sign << 15) | 0x7C00;
        if (x == 0) return sign << 15;
        uint mode = (cpu.Fpcr >> 22) & 3;
        int exp = Math.ILogB(x);
        int ulpExp = Math.Max(exp, -14) - 10;
        double scaled = Math.ScaleB(x, -ulpExp); // exact: a power-of-two scaling upwards or to at most 2^11
        double whole = Math.Floor(scaled), rest = scaled - whole;
        ulong m = (ulong)whole;
        bool up = mode switch
        {
            0 => rest > 0.5 || (rest == 0.5 && (m & 1) != 0),
            1 => rest != 0 && sign == 0,
            2 => rest != 0 && sign != 0,
            _ => false,
        };
        if (up) m++;
        if (m == 2048)
        {
            m = 1024;
            ulpExp++;
        }
        if (rest != 0) FpFlag(exp < -14 ? FpsrUfc | FpsrIxc : FpsrIxc);
        if (m < 1024) return (sign << 15) | m; // subnormal (ulpExp is −24)
        int biased = ulpExp + 10 + 15;
        if (biased >= 31)
        {
            FpFlag(FpsrOfc | FpsrIxc);
            bool infinity = mode == 0 || (mode == 1 && sign == 0) || (mode == 2 && sign != 0);
            return (sign << 15) | (infinity ? 0x7C00UL : 0x7BFFUL);
        }
        return (sign << 15) | ((ulong)biased << 10) | (m - 1024);
    }
}
