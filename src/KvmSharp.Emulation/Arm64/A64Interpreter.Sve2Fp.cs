// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE2 floating point (Arm ARM DDI 0487 C4.1 "SVE2 floating-point pairwise operations", "SVE2 floating-point convert
/// precision odd elements", "SVE2 floating-point convert to integer" (FLOGB), "SVE2 floating-point multiply-add long",
/// "SVE2 floating-point multiply-add long (indexed)"; C8.2 pseudocode). The element operations are the SVE ones
/// (A64Interpreter.SveHalf.cs, FpArithmetic.cs: FPCR.RMode/FZ/DN, FPSR cumulative flags; FPCR.FZ16 flushes FLOGB's
/// and FMLALB/T's half operands without IDC, <see cref="HalfFlushIn"/>); FMLALB/T and
/// FMLSLB/T (FPMulAddH) widen their half operands to single exactly — a NaN keeps its signalling bit, so
/// FPProcessNaNs3H's choice is the single one's — and round once in the single fused multiply-add.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// FADDP (opc 000), FMAXNMP (100), FMINNMP (101), FMAXP (110), FMINP (111) (01100100 size 010 opc 100 Pg Zm Zdn; size
    /// 00 and other opc reserved; C8.2): an active element e is op of the pair (e &amp; ~1, e | 1) of Zdn (e even) or Zm
    /// (e odd); inactive elements keep Zdn.
    /// </summary>
    private bool Sve2FpPairwise(uint insn)
    {
        int esz = Esz(insn);
        uint opc = (insn >> 16) & 7;
        if (esz == 1 || opc is 1 or 2 or 3) return false;
        Sve2Pairwise(insn, esz, (x, y) => FpBinaryE(opc, x, y, esz));
        return true;
    }

    /// <summary>
    /// FLOGB (01100101 00 011 size 0 101 Pg Zn Zd; size 00 reserved; C8.2 FLOGB): the signed base-2 exponent of each
    /// active element, denormals normalised (flushed first under FPCR.FZ, IDC; .H under FPCR.FZ16, no IDC); a zero or NaN gives −2^(esize−1) and an
    /// infinity 2^(esize−1) − 1, each with IOC. Inactive elements keep Zd.
    /// </summary>
    private bool Sve2FpLogb(uint insn)
    {
        int esz = 1 << (int)((insn >> 17) & 3);
        if (esz == 1) return false;
        int zd = (int)(insn & 31);
        var d = Z(zd, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var g = P((int)((insn >> 10) & 7), _p0);
        ulong minInt = SignBitE(esz), maxInt = minInt - 1;
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(g, e, esz)) continue;
            ulong x = E(n, e, esz);
            double v = esz switch
            {
                2 => BitConverter.UInt64BitsToDouble(HalfIn(x)), // FPUnpack at N = 16: FZ16 flushes, no IDC
                4 => FpToDouble(FpFlushIn(x, dbl: false), dbl: false),
                _ => FpToDouble(FpFlushIn(x, dbl: true), dbl: true),
            };
            ulong r;
            if (double.IsNaN(v) || v == 0 || double.IsInfinity(v))
            {
                FpFlag(FpsrIoc);
                r = double.IsInfinity(v) ? maxInt : minInt;
            }
            else r = (ulong)(long)Math.ILogB(v);
            SetE(d, e, esz, r & EMask(esz));
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>
    /// 01100100 size 0010 opc 101 Pg Zn Zd (C8.2), predicated merging: FCVTNT (size 10 opc 00: .S → the odd .H elements;
    /// 11 10: .D → the odd .S elements; the even ones kept), FCVTLT (10 01: the odd .H elements → .S; 11 11: the odd .S
    /// → .D), FCVTXNT (00 10: .D → the odd .S elements, rounding to odd); FCVTX (01100101 00 001010 101: .D → .S in the
    /// low half of each doubleword, zero-extended, rounding to odd).
    /// </summary>
    private bool Sve2FpConvertOdd(uint insn)
    {
        uint size = (insn >> 22) & 3, opc = (insn >> 16) & 3;
        bool fcvtx = ((insn >> 24) & 1) != 0;
        int kind = fcvtx ? 0 : (int)(size << 2 | opc);
        if (!fcvtx && kind is not (0b1000 or 0b1001 or 0b1110 or 0b1111 or 0b0010)) return false;
        if (fcvtx && (size != 0 || opc != 2)) return false;
        if (kind is 0b1000 or 0b1001) RefuseAlternativeHalf();
        int zd = (int)(insn & 31);
        var d = Z(zd, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var g = P((int)((insn >> 10) & 7), _p0);
        int esz = kind is 0b1000 or 0b1001 ? 4 : 8, half = esz / 2;
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(g, e, esz)) continue;
            switch (kind)
            {
                case 0b1000: SetE(d, 2 * e + 1, 2, FpToHalf(E(n, e, 4), dbl: false) & 0xFFFF); break;
                case 0b1110: SetE(d, 2 * e + 1, 4, FpConvertToSingle(E(n, e, 8)) & 0xFFFF_FFFF); break;
                case 0b1001: SetE(d, e, 4, FpFromHalf((ushort)E(n, 2 * e + 1, 2), dbl: false) & 0xFFFF_FFFF); break;
                case 0b1111: SetE(d, e, 8, FpConvertToDouble(E(n, 2 * e + 1, 4))); break;
                case 0b0010: SetE(d, 2 * e + 1, half, FpConvertToSingleOdd(E(n, e, 8))); break;
                default: SetE(d, e, 8, FpConvertToSingleOdd(E(n, e, 8))); break;
            }
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>
    /// FPConvert double → single with FPRounding_ODD (FPRoundBase): the operand flushed under FPCR.FZ; NaNs, infinities
    /// and zeros as FPConvert; otherwise truncated to single, with the lowest fraction bit set when inexact (IXC). A
    /// tiny result (|x| below 2^−126 before rounding) under FPCR.FZ is a zero of its sign with UFC alone; otherwise a tiny
    /// inexact one adds UFC. Round-to-odd never overflows to ∞: |x| ≥ 2^128 gives the largest finite single, OFC and IXC.
    /// </summary>
    private ulong FpConvertToSingleOdd(ulong a)
    {
        a = FpFlushIn(a, dbl: true);
        double x = BitConverter.UInt64BitsToDouble(a);
        if (double.IsNaN(x) || double.IsInfinity(x) || x == 0) return FpConvertToSingle(a);
        ulong sign = (a >> 63) << 31;
        double mag = Math.Abs(x);
        if (mag >= Math.ScaleB(1.0, 128))
        {
            FpFlag(FpsrOfc | FpsrIxc);
            return sign | 0x7F7F_FFFFUL;
        }
        bool tiny = mag < SingleMinNormal;
        if (tiny && FpFlushToZero)
        {
            FpFlag(FpsrUfc);
            return sign;
        }
        float f = (float)mag;
        if ((double)f > mag) f = MathF.BitDecrement(f);
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if ((double)f != mag)
        {
            bits |= 1;
            FpFlag(tiny ? FpsrUfc | FpsrIxc : FpsrIxc);
        }
        return sign | bits;
    }

    /// <summary>
    /// Half bits → single bits exactly, a NaN keeping its signalling bit and payload (so the single FPProcessNaNs sees
    /// what FPProcessNaNs3H would, and FPConvertNaN's result is the quietened single).
    /// </summary>
    private static ulong HalfToSingleBits(ulong h)
    {
        ulong sign = (h >> 15) & 1, frac = h & 0x3FF;
        if (((h >> 10) & 31) == 31) return (sign << 31) | 0x7F80_0000UL | (frac << 13);
        return BitConverter.SingleToUInt32Bits((float)BitConverter.UInt64BitsToDouble(HalfToDouble(h)));
    }

    /// <summary>
    /// FPMulAddH(addend, FPNeg(n) when subtracting, m): the single fused multiply-add of the widened halves. FPMulAddH
    /// unpacks op1 and op2 with FPUnpack at N = 16 under the same FPCR, so FPCR.FZ16 makes a denormal half a zero of its
    /// sign without IDC (<see cref="HalfFlushIn"/>); the single addend and result follow FPCR.FZ as FPMulAdd does.
    /// </summary>
    private ulong FpMulAddHalfWide(ulong addend, ulong n, ulong m, bool sub)
    {
        if (sub) n ^= 0x8000;
        n = HalfFlushIn(n & 0xFFFF);
        m = HalfFlushIn(m & 0xFFFF);
        return FpMulAdd(addend, HalfToSingleBits(n), HalfToSingleBits(m), dbl: false) & 0xFFFF_FFFF;
    }

    /// <summary>
    /// FMLALB/FMLALT/FMLSLB/FMLSLT (vectors: 01100100 10 1 Zm 10 S 00 T Zn Zda; indexed: 01100100 10 1 i3h Zm 01 S 0 i3l T
    /// Zn Zda, Zm in bits 18:16 and the half element 2 × segmentbase + i3h:i3l): Zda.S[e] = FPMulAddH(Zda.S[e], ±Zn.H[2e
    /// + T], Zm.H[…]) (C8.2).
    /// </summary>
    private bool Sve2FpMulAddLong(uint insn, bool indexed)
    {
        bool sub = ((insn >> 13) & 1) != 0;
        int t = (int)((insn >> 10) & 1), zda = (int)(insn & 31);
        int zm = (int)((insn >> 16) & (indexed ? 7u : 31u));
        int index = (int)((((insn >> 19) & 3) << 1) | ((insn >> 11) & 1));
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z(zm, _z2);
        for (int e = 0; e < Elements(4); e++)
        {
            int s = indexed ? 2 * (e - e % 4) + index : 2 * e + t;
            SetE(d, e, 4, FpMulAddHalfWide(E(d, e, 4), E(n, 2 * e + t, 2), E(m, s, 2), sub));
        }
        SetZ(zda, d);
        Next();
        return true;
    }
}
