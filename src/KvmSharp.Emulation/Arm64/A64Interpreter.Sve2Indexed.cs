// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE2 indexed multiplies and complex integer arithmetic (Arm ARM DDI 0487 C4.1 "SVE Multiply - Indexed": "SVE2
/// integer multiply-add (indexed)", "SVE2 saturating multiply-add high (indexed)", "SVE2 saturating multiply-add
/// (indexed)", "SVE2 complex integer dot product (indexed)", "SVE2 complex integer multiply-add (indexed)", "SVE2
/// complex saturating integer multiply-add (indexed)", "SVE2 integer multiply-add long (indexed)", "SVE2 integer
/// multiply long (indexed)", "SVE2 saturating multiply (indexed)", "SVE2 saturating multiply high (indexed)", "SVE2
/// integer multiply (indexed)"; "SVE2 Integer Multiply-Add - Unpredicated": CDOT, CMLA, SQRDCMLAH (vectors); C8.2
/// pseudocode). An indexed operand is, in each 128-bit segment, the element of Zm at index within that segment
/// ("segmentbase = e − (e MOD eltspersegment); s = segmentbase + index"; for the long forms s = 2 × segmentbase +
/// index over the half-size elements).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// Zm and the index of a same-size indexed form: size 0x (halfwords) i3h:i3l = bit 22:bits 20:19 with Zm in bits
    /// 18:16; 10 (words) i2 = bits 20:19, Zm 18:16; 11 (doublewords) i1 = bit 20, Zm 19:16.
    /// </summary>
    private static (int Esz, int Zm, int Index) Sve2IndexSame(uint insn)
    {
        uint size = (insn >> 22) & 3;
        return size switch
        {
            0 or 1 => (2, (int)((insn >> 16) & 7), (int)((((insn >> 22) & 1) << 2) | ((insn >> 19) & 3))),
            2 => (4, (int)((insn >> 16) & 7), (int)((insn >> 19) & 3)),
            _ => (8, (int)((insn >> 16) & 15), (int)((insn >> 20) & 1)),
        };
    }

    /// <summary>
    /// Applies <paramref name="op"/>(Zd[e] (signed), Zn[e] (signed), Zm[segmentbase + index] (signed), esize) to every
    /// element of a same-size indexed form and writes Zd.
    /// </summary>
    private bool Sve2IndexedSame(uint insn, Func<Int128, Int128, Int128, int, ulong> op)
    {
        var (esz, zm, index) = Sve2IndexSame(insn);
        int zd = (int)(insn & 31), perSegment = 16 / esz;
        var d = Z(zd, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z(zm, _z2);
        for (int e = 0; e < Elements(esz); e++)
        {
            int s = e - e % perSegment + index;
            SetE(d, e, esz, op(Ev(d, e, esz, false), Ev(n, e, esz, false), Ev(m, s, esz, false), esz) & EMask(esz));
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>
    /// SQRDMLAH/SQRDMLSH element: SignedSat(((acc &lt;&lt; esize) ± 2 × a × b + (1 &lt;&lt; (esize − 1))) &gt;&gt; esize)
    /// (C8.2 SQRDMLAH), computed halved so 64-bit elements stay within 128 bits.
    /// </summary>
    private static ulong Sve2Sqrdmlah(Int128 acc, Int128 a, Int128 b, int esz, bool sub) =>
        SatS(SqrdmlahUnsaturated(acc, a, b, 8 * esz, sub), esz);

    /// <summary>
    /// ((acc &lt;&lt; bits) ± 2 × a × b + (1 &lt;&lt; (bits − 1))) &gt;&gt; bits before SignedSat — the SQRDMLAH/SQRDMLSH
    /// element of SVE2 and of AdvSIMD (A64Interpreter.SimdRdm.cs, which saturates with FPSR.QC) (C7.2, C8.2 SQRDMLAH).
    /// </summary>
    private static Int128 SqrdmlahUnsaturated(Int128 acc, Int128 a, Int128 b, int bits, bool sub)
    {
        Int128 p = a * b, sum = acc << (bits - 1);
        return ((sub ? sum - p : sum + p) + ((Int128)1 << (bits - 2))) >> (bits - 1);
    }

    /// <summary>SQDMULH/SQRDMULH element: SignedSat((2 × a × b (+ 1 &lt;&lt; (esize − 1) when rounding)) &gt;&gt; esize).</summary>
    private static ulong Sve2Sqdmulh(Int128 a, Int128 b, int esz, bool round)
    {
        int bits = 8 * esz;
        return SatS((a * b + (round ? (Int128)1 << (bits - 2) : 0)) >> (bits - 1), esz);
    }

    /// <summary>MLA/MLS (indexed: 01000100 size 1 opc 00001 S Zn Zda): Zda ± Zn × Zm[index].</summary>
    private bool Sve2MulAddIndexed(uint insn)
    {
        bool sub = ((insn >> 10) & 1) != 0;
        return Sve2IndexedSame(insn, (acc, a, b, _) => (ulong)(sub ? acc - a * b : acc + a * b));
    }

    /// <summary>SQRDMLAH/SQRDMLSH (indexed: 01000100 size 1 opc 00010 S Zn Zda).</summary>
    private bool Sve2RoundingMulAddIndexed(uint insn)
    {
        bool sub = ((insn >> 10) & 1) != 0;
        return Sve2IndexedSame(insn, (acc, a, b, sz) => Sve2Sqrdmlah(acc, a, b, sz, sub));
    }

    /// <summary>
    /// SQDMULH/SQRDMULH (indexed: 01000100 size 1 opc 11110 R Zn Zd) and MUL (indexed: 111110): Zd = op(Zn, Zm[index]).
    /// </summary>
    private bool Sve2MulIndexed(uint insn)
    {
        if (((insn >> 11) & 1) != 0) return Sve2IndexedSame(insn, (_, a, b, _) => (ulong)(a * b));
        bool round = ((insn >> 10) & 1) != 0;
        return Sve2IndexedSame(insn, (_, a, b, sz) => Sve2Sqdmulh(a, b, sz, round));
    }

    /// <summary>
    /// The long indexed forms (size 10: .S from .H, i3h:i3l = bits 20:19:bit 11, Zm 18:16; size 11: .D from .S, i2h:i2l
    /// = bit 20:bit 11, Zm 19:16; size 0x reserved): <paramref name="op"/>(Zda[e], Zn half-size element 2e + T, Zm
    /// half-size element 2 × segmentbase + index, esize) into Zd; <paramref name="unsigned"/> picks the extension.
    /// </summary>
    private bool Sve2IndexedLong(uint insn, bool unsigned, Func<Int128, Int128, Int128, int, ulong> op)
    {
        uint size = (insn >> 22) & 3;
        if (size < 2) return false;
        int esz = size == 2 ? 4 : 8, half = esz / 2, t = (int)((insn >> 10) & 1), zd = (int)(insn & 31);
        int zm = (int)((insn >> 16) & (esz == 4 ? 7u : 15u));
        uint high = esz == 4 ? (insn >> 19) & 3 : (insn >> 20) & 1;
        int index = (int)((high << 1) | ((insn >> 11) & 1));
        int perSegment = 16 / esz;
        var d = Z(zd, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z(zm, _z2);
        for (int e = 0; e < Elements(esz); e++)
        {
            int s = 2 * (e - e % perSegment) + index;
            SetE(d, e, esz, op(Ev(d, e, esz, unsigned), Ev(n, 2 * e + t, half, unsigned), Ev(m, s, half, unsigned), esz) & EMask(esz));
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>
    /// SQDMLALB/T, SQDMLSLB/T (indexed: 01000100 size 1 opc 0010 S il T Zn Zda): SignedSat(acc ± SignedSat(2 × a × b)).
    /// </summary>
    private bool Sve2SatMulAddLongIndexed(uint insn)
    {
        bool sub = ((insn >> 12) & 1) != 0;
        return Sve2IndexedLong(insn, false, (acc, a, b, sz) =>
        {
            Int128 p = Sx(SatS(2 * a * b, sz), sz);
            return SatS(sub ? acc - p : acc + p, sz);
        });
    }

    /// <summary>SMLALB/T, UMLALB/T, SMLSLB/T, UMLSLB/T (indexed: 01000100 size 1 opc 10 S U il T Zn Zda): Zda ± a × b.</summary>
    private bool Sve2MulAddLongIndexed(uint insn)
    {
        bool sub = ((insn >> 13) & 1) != 0, u = ((insn >> 12) & 1) != 0;
        return Sve2IndexedLong(insn, u, (acc, a, b, _) => (ulong)(sub ? acc - a * b : acc + a * b));
    }

    /// <summary>SMULLB/T, UMULLB/T (indexed: 01000100 size 1 opc 110 U il T Zn Zd).</summary>
    private bool Sve2MulLongIndexed(uint insn)
    {
        bool u = ((insn >> 12) & 1) != 0;
        return Sve2IndexedLong(insn, u, (_, a, b, _) => (ulong)(a * b));
    }

    /// <summary>SQDMULLB/T (indexed: 01000100 size 1 opc 1110 il T Zn Zd): SignedSat(2 × a × b).</summary>
    private bool Sve2SatMulLongIndexed(uint insn) => Sve2IndexedLong(insn, false, (_, a, b, sz) => SatS(2 * a * b, sz));

    /// <summary>
    /// CMLA / SQRDCMLAH on complex pairs (C8.2 CMLA, SQRDCMLAH): with sel_a = rot&lt;0&gt;, sel_b = NOT rot&lt;0&gt;,
    /// sub_r = rot&lt;0&gt; ≠ rot&lt;1&gt;, sub_i = rot&lt;1&gt;: real = Zda[2p] ± Zn[2p + sel_a] × Zm[2q + sel_a], imaginary
    /// = Zda[2p + 1] ± Zn[2p + sel_a] × Zm[2q + sel_b], q = p for the vector form and the pair at index in p's
    /// 128-bit segment for the indexed one; SQRDCMLAH rounds, doubles and saturates as SQRDMLAH does.
    /// </summary>
    private bool Sve2ComplexMulAdd(uint insn, int esz, int zm, int index, bool saturating)
    {
        uint rot = (insn >> 10) & 3;
        int selA = (int)(rot & 1), selB = selA ^ 1, zda = (int)(insn & 31), perSegment = 16 / esz;
        bool subR = (rot & 1) != (rot >> 1), subI = (rot >> 1) != 0;
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z(zm, _z2);
        for (int p = 0; p < Elements(esz) / 2; p++)
        {
            int q = index < 0 ? 2 * p : 2 * p - 2 * p % perSegment + 2 * index;
            Int128 a = Ev(n, 2 * p + selA, esz, false), br = Ev(m, q + selA, esz, false), bi = Ev(m, q + selB, esz, false);
            Int128 accR = Ev(d, 2 * p, esz, false), accI = Ev(d, 2 * p + 1, esz, false);
            ulong r = saturating ? Sve2Sqrdmlah(accR, a, br, esz, subR) : (ulong)(subR ? accR - a * br : accR + a * br);
            ulong i = saturating ? Sve2Sqrdmlah(accI, a, bi, esz, subI) : (ulong)(subI ? accI - a * bi : accI + a * bi);
            SetE(d, 2 * p, esz, r & EMask(esz));
            SetE(d, 2 * p + 1, esz, i & EMask(esz));
        }
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>CMLA (vectors: 01000100 size 0 Zm 0010 rot Zn Zda), SQRDCMLAH (vectors: 0011 rot).</summary>
    private bool Sve2ComplexMulAddVectors(uint insn) =>
        Sve2ComplexMulAdd(insn, Esz(insn), (int)((insn >> 16) & 31), -1, ((insn >> 12) & 1) != 0);

    /// <summary>
    /// CMLA (indexed: 01000100 1 size 1 opc 0110 rot Zn Zda), SQRDCMLAH (indexed: 0111 rot): size 10 halfwords with
    /// i2 = bits 20:19, Zm 18:16; 11 words with i1 = bit 20, Zm 19:16; 0x reserved.
    /// </summary>
    private bool Sve2ComplexMulAddIndexed(uint insn)
    {
        uint size = (insn >> 22) & 3;
        if (size < 2) return false;
        bool sat = ((insn >> 12) & 1) != 0;
        return size == 2
            ? Sve2ComplexMulAdd(insn, 2, (int)((insn >> 16) & 7), (int)((insn >> 19) & 3), sat)
            : Sve2ComplexMulAdd(insn, 4, (int)((insn >> 16) & 15), (int)((insn >> 20) & 1), sat);
    }

    /// <summary>
    /// CDOT (C8.2): for each element e (words from bytes or doublewords from halfwords), for the two complex pairs
    /// i of its quarter-size elements: Zda[e] += Zn_r × Zm[sel_a] + Zn_i × Zm[sel_b] × (−1 for rot 0 and 270, +1 for
    /// 90 and 180), sel_a = rot&lt;0&gt;, sel_b = NOT rot&lt;0&gt;; Zm's group is e's own (vectors) or the one at index
    /// in e's 128-bit segment (indexed). Wraps at esize.
    /// </summary>
    private bool Sve2ComplexDot(uint insn, int esz, int zm, int index)
    {
        uint rot = (insn >> 10) & 3;
        int selA = (int)(rot & 1), selB = selA ^ 1, q = esz / 4, zda = (int)(insn & 31), perSegment = 16 / esz;
        int sign = rot is 0 or 3 ? -1 : 1;
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z(zm, _z2);
        for (int e = 0; e < Elements(esz); e++)
        {
            int g = index < 0 ? e : e - e % perSegment + index;
            Int128 res = Ev(d, e, esz, false);
            for (int i = 0; i < 2; i++)
            {
                Int128 r = Ev(n, 4 * e + 2 * i, q, false), im = Ev(n, 4 * e + 2 * i + 1, q, false);
                Int128 a = Ev(m, 4 * g + 2 * i + selA, q, false), b = Ev(m, 4 * g + 2 * i + selB, q, false);
                res += r * a + sign * im * b;
            }
            SetE(d, e, esz, (ulong)res & EMask(esz));
        }
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>CDOT (vectors: 01000100 size 0 Zm 0001 rot Zn Zda; size 10 .S from .B, 11 .D from .H, 0x reserved).</summary>
    private bool Sve2ComplexDotVectors(uint insn)
    {
        int esz = Esz(insn);
        if (esz < 4) return false;
        return Sve2ComplexDot(insn, esz, (int)((insn >> 16) & 31), -1);
    }

    /// <summary>
    /// CDOT (indexed: 01000100 1 size 1 opc 0100 rot Zn Zda): size 10 (.S) i2 = bits 20:19, Zm 18:16; 11 (.D) i1 = bit
    /// 20, Zm 19:16; 0x reserved.
    /// </summary>
    private bool Sve2ComplexDotIndexed(uint insn)
    {
        uint size = (insn >> 22) & 3;
        if (size < 2) return false;
        return size == 2
            ? Sve2ComplexDot(insn, 4, (int)((insn >> 16) & 7), (int)((insn >> 19) & 3))
            : Sve2ComplexDot(insn, 8, (int)((insn >> 16) & 15), (int)((insn >> 20) & 1));
    }
}
