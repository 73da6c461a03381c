// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE2 integer instructions on same-size elements (Arm ARM C4.1 "SVE2 Integer - Predicated", "SVE2 Integer
/// Multiply - Unpredicated", "SVE2 bitwise ternary operations", "SVE2 Accumulate", "SVE2 crypto/XAR"; C8.2
/// pseudocode): halving add/subtract, saturating add/subtract, saturating and rounding shifts, pairwise operations,
/// SADALP/UADALP, SQABS/SQNEG, MUL/PMUL/SMULH/UMULH/SQDMULH/SQRDMULH (vectors), SQRDMLAH/SQRDMLSH, EOR3, BCAX,
/// BSL, BSL1N, BSL2N, NBSL, XAR, SSRA/USRA/SRSRA/URSRA, SRI/SLI, SABA/UABA, CADD/SQCADD. Saturating SVE
/// instructions do not touch FPSR.QC.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>Applies <paramref name="op"/>(Zdn[e], Zm[e]) to the active elements; inactive ones keep Zdn (merging).</summary>
    private void Sve2Merging(uint insn, int esz, Func<ulong, ulong, ulong> op)
    {
        int zdn = (int)(insn & 31);
        var a = Z(zdn, _z0);
        var b = Z((int)((insn >> 5) & 31), _z1);
        var g = P((int)((insn >> 10) & 7), _p0);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (Act(g, e, esz)) SetE(a, e, esz, op(E(a, e, esz), E(b, e, esz)) & EMask(esz));
        }
        SetZ(zdn, a);
        Next();
    }

    /// <summary>
    /// 01000100 size 0 opc 100 Pg Zm Zdn. Bits 20:19 = 10: SHADD/UHADD/SHSUB/UHSUB/SRHADD/URHADD/SHSUBR/UHSUBR (bits
    /// 18:16 = R S U: infinite-precision sum or difference, plus 1 when rounding, shifted right by 1). 11: SQADD,
    /// UQADD, SQSUB, UQSUB, SUQADD, USQADD, SQSUBR, UQSUBR. 0x: SRSHL, URSHL, SQSHL, UQSHL, SQRSHL, UQRSHL and their
    /// reversed forms (bits 19:16 = Q N R U; a negative shift shifts right).
    /// </summary>
    private bool Sve2IntPredicated(uint insn)
    {
        int esz = Esz(insn);
        uint opc = (insn >> 16) & 31;
        if ((opc >> 3) == 2)
        {
            bool round = (opc & 4) != 0, sub = (opc & 2) != 0, u = (opc & 1) != 0;
            Sve2Merging(insn, esz, (x, y) =>
            {
                Int128 a = u ? x : Sx(x, esz), b = u ? y : Sx(y, esz);
                Int128 r = round && sub ? b - a : sub ? a - b : a + b + (round ? 1 : 0);
                return (ulong)(r >> 1);
            });
            return true;
        }
        if ((opc >> 3) == 3)
        {
            uint k = opc & 7;
            Sve2Merging(insn, esz, (x, y) =>
            {
                Int128 sx = Sx(x, esz), sy = Sx(y, esz);
                return k switch
                {
                    0 => SatS(sx + sy, esz),
                    1 => SatU((Int128)x + y, esz),
                    2 => SatS(sx - sy, esz),
                    3 => SatU((Int128)x - y, esz),
                    4 => SatS(sx + y, esz),             // SUQADD: signed + unsigned
                    5 => SatU(x + sy, esz),             // USQADD: unsigned + signed
                    6 => SatS(sy - sx, esz),
                    _ => SatU((Int128)y - x, esz),
                };
            });
            return true;
        }
        bool q = (opc & 8) != 0, reversed = (opc & 4) != 0, rnd = (opc & 2) != 0, uns = (opc & 1) != 0;
        if (!q && !rnd) return false;
        Sve2Merging(insn, esz, (x, y) => reversed ? Sve2ShiftByElement(y, x, esz, q, rnd, uns) : Sve2ShiftByElement(x, y, esz, q, rnd, uns));
        return true;
    }

    /// <summary>
    /// The SRSHL…UQRSHL element operation: shift = ShiftSat(SInt(element2), esize) (the whole element, clamped to
    /// ±(esize + 1); AdvSIMD's forms use the low byte instead); round_const = 1 &lt;&lt; (−1 − shift)
    /// when rounding a right shift; res = (element1 + round_const) &lt;&lt; shift (a negative shift is a floor right
    /// shift); saturated when Q, else its low esize bits.
    /// </summary>
    private static ulong Sve2ShiftByElement(ulong x, ulong y, int esz, bool sat, bool round, bool unsigned)
    {
        int bits = 8 * esz, shift = (int)Math.Clamp(Sx(y, esz), -(bits + 1), bits + 1);
        BigInteger v = unsigned ? x : Sx(x, esz);
        if (round && shift < 0) v += BigInteger.One << (-1 - shift);
        v = shift >= 0 ? v << shift : v >> -shift;
        if (!sat) return (ulong)(v & EMask(esz));
        BigInteger max = unsigned ? EMask(esz) : (BigInteger)(EMask(esz) >> 1), min = unsigned ? BigInteger.Zero : -max - 1;
        return Low(v > max ? max : v < min ? min : v, esz);
    }

    /// <summary>The low esize bits of an integer (two's complement).</summary>
    private static ulong Low(BigInteger v, int esz) => (ulong)(v & EMask(esz));

    /// <summary>
    /// 01000100 size 0 opc 101 Pg Zn Zd (C8.2): SADALP/UADALP (opc 0010U: Zda[e] += the sum of the two half-size
    /// elements 2e, 2e+1 of Zn), SQABS/SQNEG (0100 op: saturating), ADDP/SMAXP/UMAXP/SMINP/UMINP (10 opc U: pairs of
    /// Zdn at even results, of Zm at odd ones). Predicated merging.
    /// </summary>
    private bool Sve2IntPredicatedUnary(uint insn)
    {
        int esz = Esz(insn);
        uint opc = (insn >> 16) & 31;
        if ((opc >> 1) == 2)
        {
            if (esz == 1) return false;
            bool u = (opc & 1) != 0;
            int half = esz / 2;
            int zda = (int)(insn & 31);
            var d = Z(zda, _z0);
            var n = Z((int)((insn >> 5) & 31), _z1);
            var g = P((int)((insn >> 10) & 7), _p0);
            for (int e = 0; e < Elements(esz); e++)
            {
                if (!Act(g, e, esz)) continue;
                Int128 sum = (Int128)E(d, e, esz) + Ev(n, 2 * e, half, u) + Ev(n, 2 * e + 1, half, u);
                SetE(d, e, esz, (ulong)sum & EMask(esz));
            }
            SetZ(zda, d);
            Next();
            return true;
        }
        if ((opc >> 1) == 4)
        {
            bool neg = (opc & 1) != 0;
            int zd = (int)(insn & 31);
            var d = Z(zd, _z0);
            var n = Z((int)((insn >> 5) & 31), _z1);
            var g = P((int)((insn >> 10) & 7), _p0);
            for (int e = 0; e < Elements(esz); e++)
            {
                if (!Act(g, e, esz)) continue;
                Int128 v = Sx(E(n, e, esz), esz);
                SetE(d, e, esz, SatS(neg ? -v : Int128.Abs(v), esz));
            }
            SetZ(zd, d);
            Next();
            return true;
        }
        if ((opc >> 3) == 2)
        {
            uint k = (opc >> 1) & 3;
            bool u = (opc & 1) != 0;
            if (k == 1 || (k == 0 && !u)) return false;
            Sve2Pairwise(insn, esz, (x, y) => k switch
            {
                0 => x + y,
                2 => u ? Math.Max(x, y) : (ulong)Math.Max(Sx(x, esz), Sx(y, esz)),
                _ => u ? Math.Min(x, y) : (ulong)Math.Min(Sx(x, esz), Sx(y, esz)),
            });
            return true;
        }
        if ((opc >> 1) == 0) return Sve2UnsignedEstimate(insn, sqrt: (opc & 1) != 0);
        return false;
    }

    /// <summary>
    /// The SVE2 pairwise shape (ADDP/SMAXP/…, and FADDP/FMAXP/… in A64Interpreter.Sve2Fp.cs; C8.2): Pg Zm Zdn, an
    /// active element e is <paramref name="op"/> of the pair (e &amp; ~1, e | 1) of Zdn (e even) or Zm (e odd),
    /// truncated to the element; inactive elements keep Zdn. Then the next instruction.
    /// </summary>
    private void Sve2Pairwise(uint insn, int esz, Func<ulong, ulong, ulong> op)
    {
        int zdn = (int)(insn & 31);
        var a = Z(zdn, _z0);
        var b = Z((int)((insn >> 5) & 31), _z1);
        var g = P((int)((insn >> 10) & 7), _p0);
        var r = _z2;
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(g, e, esz))
            {
                SetE(r, e, esz, E(a, e, esz));
                continue;
            }
            var src = (e & 1) == 0 ? a : b;
            int i = e & ~1;
            SetE(r, e, esz, op(E(src, i, esz), E(src, i + 1, esz)) & EMask(esz));
        }
        SetZ(zdn, r);
        Next();
    }

    /// <summary>
    /// URECPE (opc 00000) and URSQRTE (00001) of 01000100 size 0 opc 101 Pg Zn Zd, words only (C8.2; shared pseudocode
    /// UnsignedRecipEstimate: all ones when bit 31 is clear, else RecipEstimate(operand&lt;31:23&gt;) in bits 31:23;
    /// UnsignedRSqrtEstimate: all ones when bits 31:30 are clear, else RecipSqrtEstimate(operand&lt;31:23&gt;)):
    /// predicated merging.
    /// </summary>
    private bool Sve2UnsignedEstimate(uint insn, bool sqrt)
    {
        if (Esz(insn) != 4) return false;
        int zd = (int)(insn & 31);
        var d = Z(zd, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var g = P((int)((insn >> 10) & 7), _p0);
        for (int e = 0; e < Elements(4); e++)
        {
            if (!Act(g, e, 4)) continue;
            uint x = (uint)E(n, e, 4), r;
            if (!sqrt) r = (x >> 31) == 0 ? uint.MaxValue : RecipEstimate(x >> 23) << 23;
            else if ((x >> 30) == 0) r = uint.MaxValue;
            else r = RecipSqrtEstimate(x >> 23) << 23; // operand<31:23>, 128 … 511 (0.25 ≤ x < 1)
            SetE(d, e, 4, r);
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>RecipEstimate(a), 256 ≤ a &lt; 512: a = 2a + 1, b = 2^19 DIV a, r = (b + 1) DIV 2.</summary>
    private static uint RecipEstimate(uint a)
    {
        a = a * 2 + 1;
        uint b = (1u << 19) / a;
        return (b + 1) / 2;
    }

    /// <summary>
    /// RecipSqrtEstimate(a), 128 ≤ a &lt; 512: a &lt; 256 → a = 2a + 1, else a = ((a &gt;&gt; 1) &lt;&lt; 1 + 1) × 2; the
    /// least b ≥ 512 with a × (b + 1)^2 ≥ 2^28; r = (b + 1) DIV 2.
    /// </summary>
    private static uint RecipSqrtEstimate(uint a)
    {
        a = a < 256 ? a * 2 + 1 : ((a >> 1) << 1 | 1) * 2;
        ulong b = 512;
        while ((ulong)a * (b + 1) * (b + 1) < 1UL << 28) b++;
        return (uint)((b + 1) / 2);
    }

    /// <summary>
    /// SQSHL/UQSHL/SQSHLU (immediate, shift = UInt(tsz:imm3) − esize) and SRSHR/URSHR (shift = 2 × esize −
    /// UInt(tsz:imm3)) of 00000100 tszh 00 opc 100 Pg tszl imm3 Zdn (C8.2), predicated merging.
    /// </summary>
    private bool Sve2ShiftImmPredicated(uint insn)
    {
        uint tsz = (((insn >> 22) & 3) << 2) | ((insn >> 8) & 3);
        if (tsz == 0) return false;
        int esz = 1 << (31 - BitOperations.LeadingZeroCount(tsz)), bits = 8 * esz;
        int imm = (int)((tsz << 3) | ((insn >> 5) & 7));
        uint opc = (insn >> 16) & 15;
        int zdn = (int)(insn & 31);
        var a = Z(zdn, _z0);
        var g = P((int)((insn >> 10) & 7), _p0);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(g, e, esz)) continue;
            ulong x = E(a, e, esz), r;
            if (opc is 12 or 13)
            {
                int shift = 2 * bits - imm;
                BigInteger v = opc == 13 ? x : Sx(x, esz);
                r = (ulong)(((v + (BigInteger.One << (shift - 1))) >> shift) & EMask(esz));
            }
            else
            {
                int shift = imm - bits;
                bool srcUnsigned = opc == 7, dstUnsigned = opc is 7 or 15;
                BigInteger v = (srcUnsigned ? x : (BigInteger)Sx(x, esz)) << shift;
                BigInteger max = dstUnsigned ? EMask(esz) : (BigInteger)(EMask(esz) >> 1), min = dstUnsigned ? BigInteger.Zero : -max - 1;
                r = Low(v > max ? max : v < min ? min : v, esz);
            }
            SetE(a, e, esz, r);
        }
        SetZ(zdn, a);
        Next();
        return true;
    }

    /// <summary>
    /// 00000100 size 1 Zm 0110 opc Zn Zd: MUL, PMUL (bytes only), SMULH, UMULH (vectors, unpredicated); 01110 R:
    /// SQDMULH (SignedSat((2 × a × b) &gt;&gt; esize)) and SQRDMULH (with 1 &lt;&lt; (esize − 1) added first) (C8.2).
    /// </summary>
    private bool Sve2MulUnpredicated(uint insn)
    {
        int esz = Esz(insn), bits = 8 * esz;
        uint opc = (insn >> 10) & 7; // bit 12 selects SQDMULH/SQRDMULH
        if (opc == 1 && esz != 1) return false;
        var a = Z((int)((insn >> 5) & 31), _z0);
        var b = Z((int)((insn >> 16) & 31), _z1);
        var d = _z2;
        for (int e = 0; e < Elements(esz); e++)
        {
            ulong x = E(a, e, esz), y = E(b, e, esz);
            Int128 sx = Sx(x, esz), sy = Sx(y, esz);
            ulong r = ((insn >> 12) & 1) != 0
                ? SatS((sx * sy + ((insn & 0x400) != 0 ? (Int128)1 << (bits - 2) : 0)) >> (bits - 1), esz)
                : opc switch
                {
                    0 => x * y,
                    1 => PolyMul(x, y, 8),
                    2 => (ulong)((sx * sy) >> bits),
                    _ => (ulong)(((UInt128)x * y) >> bits),
                };
            SetE(d, e, esz, r & EMask(esz));
        }
        SetZ((int)(insn & 31), d);
        Next();
        return true;
    }

    /// <summary>PolynomialMult: the carry-less product of the low <paramref name="bits"/> bits of each operand.</summary>
    private static ulong PolyMul(ulong x, ulong y, int bits)
    {
        ulong r = 0;
        for (int i = 0; i < bits; i++) if (((y >> i) & 1) != 0) r ^= x << i;
        return r;
    }

    /// <summary>
    /// SQRDMLAH/SQRDMLSH (vectors, 01000100 size 0 Zm 0111 0 S Zn Zda; C8.2): SignedSat(((acc &lt;&lt; esize) ± 2 × a
    /// × b + (1 &lt;&lt; (esize − 1))) &gt;&gt; esize), computed halved to stay within 128 bits.
    /// </summary>
    private bool Sve2RoundingMulAdd(uint insn)
    {
        int esz = Esz(insn), zda = (int)(insn & 31);
        bool sub = ((insn >> 10) & 1) != 0;
        var d = Z(zda, _z0);
        var a = Z((int)((insn >> 5) & 31), _z1);
        var b = Z((int)((insn >> 16) & 31), _z2);
        for (int e = 0; e < Elements(esz); e++)
            SetE(d, e, esz, Sve2Sqrdmlah(Ev(d, e, esz, false), Ev(a, e, esz, false), Ev(b, e, esz, false), esz, sub));
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>
    /// EOR3, BCAX, BSL, BSL1N, BSL2N, NBSL (00000100 opc 1 Zm 00111 o2 Zk Zdn; C8.2): with n = Zdn, m = Zm, k = Zk,
    /// EOR3 n⊕m⊕k, BCAX n⊕(m∧¬k), BSL (n∧k)∨(m∧¬k), BSL1N (¬n∧k)∨(m∧¬k), BSL2N (n∧k)∨(¬m∧¬k), NBSL ¬BSL.
    /// </summary>
    private bool Sve2BitwiseTernary(uint insn)
    {
        uint op = (((insn >> 22) & 3) << 1) | ((insn >> 10) & 1);
        if (op is 4 or 6) return false;
        int zdn = (int)(insn & 31);
        var n = Z(zdn, _z0);
        var m = Z((int)((insn >> 16) & 31), _z1);
        var k = Z((int)((insn >> 5) & 31), _z2);
        for (int i = 0; i < _vl; i++)
        {
            int x = n[i], y = m[i], z = k[i];
            n[i] = (byte)(op switch
            {
                0 => x ^ y ^ z,
                2 => x ^ (y & ~z),
                1 => (x & z) | (y & ~z),
                3 => (~x & z) | (y & ~z),
                5 => (x & z) | (~y & ~z),
                _ => ~((x & z) | (y & ~z)),
            });
        }
        SetZ(zdn, n);
        Next();
        return true;
    }

    /// <summary>XAR (00000100 tszh 1 tszl imm3 001101 Zm Zdn; C8.2): ROR(Zdn ⊕ Zm, 2 × esize − UInt(tsz:imm3)).</summary>
    private bool Sve2Xar(uint insn)
    {
        uint tsz = (((insn >> 22) & 3) << 2) | ((insn >> 19) & 3);
        if (tsz == 0) return false;
        int esz = 1 << (31 - BitOperations.LeadingZeroCount(tsz)), bits = 8 * esz;
        int shift = 2 * bits - (int)((tsz << 3) | ((insn >> 16) & 7));
        int zdn = (int)(insn & 31);
        var a = Z(zdn, _z0);
        var b = Z((int)((insn >> 5) & 31), _z1);
        for (int e = 0; e < Elements(esz); e++)
        {
            ulong v = E(a, e, esz) ^ E(b, e, esz);
            SetE(a, e, esz, ((v >> shift) | (v << (bits - shift))) & EMask(esz));
        }
        SetZ(zdn, a);
        Next();
        return true;
    }

    /// <summary>(tsz, imm3) of the unpredicated SVE2 shift-immediate forms: tsz = tszh(23:22):tszl(20:19).</summary>
    private static (int Esz, int Imm) Sve2ShiftImm(uint insn)
    {
        uint tsz = (((insn >> 22) & 3) << 2) | ((insn >> 19) & 3);
        if (tsz == 0) return (0, 0);
        return (1 << (31 - BitOperations.LeadingZeroCount(tsz)), (int)((tsz << 3) | ((insn >> 16) & 7)));
    }

    /// <summary>
    /// SSRA/USRA/SRSRA/URSRA (01000101 tszh 0 tszl imm3 1110 R U Zn Zda; C8.2): Zda += Zn &gt;&gt; (2 × esize −
    /// UInt(tsz:imm3)), rounded (1 &lt;&lt; (shift − 1) added first) when R.
    /// </summary>
    private bool Sve2ShiftAccumulate(uint insn)
    {
        var (esz, imm) = Sve2ShiftImm(insn);
        if (esz == 0) return false;
        int shift = 16 * esz - imm, zda = (int)(insn & 31);
        bool round = ((insn >> 11) & 1) != 0, u = ((insn >> 10) & 1) != 0;
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        for (int e = 0; e < Elements(esz); e++)
        {
            Int128 v = Ev(n, e, esz, u);
            if (round) v += (Int128)1 << (shift - 1);
            SetE(d, e, esz, (E(d, e, esz) + (ulong)(v >> shift)) & EMask(esz));
        }
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>
    /// SRI (shift = 2 × esize − UInt(tsz:imm3)) and SLI (shift = UInt(tsz:imm3) − esize) (01000101 tszh 0 tszl imm3
    /// 11110 op Zn Zd; C8.2): the shifted Zn replaces Zd's bits under the shifted all-ones mask.
    /// </summary>
    private bool Sve2ShiftInsert(uint insn)
    {
        var (esz, imm) = Sve2ShiftImm(insn);
        if (esz == 0) return false;
        bool left = ((insn >> 10) & 1) != 0;
        int bits = 8 * esz, shift = left ? imm - bits : 2 * bits - imm, zd = (int)(insn & 31);
        ulong ones = EMask(esz);
        var d = Z(zd, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        for (int e = 0; e < Elements(esz); e++)
        {
            ulong x = E(n, e, esz), old = E(d, e, esz);
            ulong mask = left ? (ones << shift) & ones : shift >= 64 ? 0 : ones >> shift;
            ulong v = left ? x << shift : shift >= 64 ? 0 : x >> shift;
            SetE(d, e, esz, ((old & ~mask) | (v & mask)) & ones);
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>SABA/UABA (01000101 size 0 Zm 11111 U Zn Zda; C8.2): Zda += |Zn − Zm|.</summary>
    private bool Sve2AbsDiffAccumulate(uint insn)
    {
        int esz = Esz(insn), zda = (int)(insn & 31);
        bool u = ((insn >> 10) & 1) != 0;
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z((int)((insn >> 16) & 31), _z2);
        for (int e = 0; e < Elements(esz); e++)
        {
            Int128 diff = Ev(n, e, esz, u) - Ev(m, e, esz, u);
            SetE(d, e, esz, (E(d, e, esz) + (ulong)Int128.Abs(diff)) & EMask(esz));
        }
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>
    /// CADD/SQCADD (01000101 size 00000 op 11011 rot Zm Zdn; C8.2): on (real, imaginary) pairs, #90: (r − m.i,
    /// i + m.r), #270: (r + m.i, i − m.r); SQCADD saturates.
    /// </summary>
    private bool Sve2ComplexAdd(uint insn)
    {
        int esz = Esz(insn), zdn = (int)(insn & 31);
        bool sat = ((insn >> 16) & 1) != 0, rot270 = ((insn >> 10) & 1) != 0;
        var a = Z(zdn, _z0);
        var b = Z((int)((insn >> 5) & 31), _z1);
        for (int e = 0; e < Elements(esz); e += 2)
        {
            Int128 ar = Sx(E(a, e, esz), esz), ai = Sx(E(a, e + 1, esz), esz), br = Sx(E(b, e, esz), esz), bi = Sx(E(b, e + 1, esz), esz);
            Int128 r = rot270 ? ar + bi : ar - bi, i = rot270 ? ai - br : ai + br;
            SetE(a, e, esz, sat ? SatS(r, esz) : (ulong)r & EMask(esz));
            SetE(a, e + 1, esz, sat ? SatS(i, esz) : (ulong)i & EMask(esz));
        }
        SetZ(zdn, a);
        Next();
        return true;
    }
}
