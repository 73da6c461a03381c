// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// FMLAL/FMLAL2/FMLSL/FMLSL2 (FEAT_FHM) and FCMLA/FCADD (FEAT_FCMA), decoded in A64Interpreter.FpExtensions.cs (Arm
/// ARM DDI 0487 C7.2 FMLAL, FMLAL2 (by element), FMLAL, FMLAL2 (vector), FMLSL…, FCMLA, FCMLA (by element), FCADD).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>FCMLA/FCADD (vector): size 00 is UNDEFINED, size 11 with Q = 0 too, and size 01 without FEAT_FP16.</summary>
    private bool ComplexUnallocated(uint insn)
    {
        uint size = (insn >> 22) & 3;
        return size == 0 || (size == 3 && (insn & (1u << 30)) == 0) || (size == 1 && !Fp16);
    }

    /// <summary>
    /// FCMLA (by element): size 01 (FEAT_FP16) with H = 1 needs Q = 1; size 10 needs L = 0 and Q = 1; sizes 00 and 11 are
    /// UNDEFINED ("if size == '01' &amp;&amp; H == '1' &amp;&amp; Q == '0' then UNDEFINED", "if size == '10' &amp;&amp; (L == '1' || Q ==
    /// '0') then UNDEFINED").
    /// </summary>
    private bool ComplexIndexedUnallocated(uint insn)
    {
        uint size = (insn >> 22) & 3;
        bool q = (insn & (1u << 30)) != 0, l = (insn & (1u << 21)) != 0, h = (insn & (1u << 11)) != 0;
        return size switch
        {
            1 => !Fp16 || (h && !q),
            2 => l || !q,
            _ => true,
        };
    }

    /// <summary>
    /// FMLAL/FMLSL (U = 0) and FMLAL2/FMLSL2 (U = 1): Vd.S[e] = FPMulAddH(Vd.S[e], ±Vpart[n, part].H[e], Vm.H[…]) for the
    /// 2 (Q = 0) or 4 (Q = 1) single elements, part = U selecting the lower or upper half of the 64 or 128 bits' halves;
    /// the vector form takes Vpart[m, part].H[e], the by-element form the element H:L:M of the whole V0–V15 (Rm
    /// bits 19:16). The subtraction (FMLSL: bit 23 vector, bit 14 by element) negates the Vn element (FPNeg) first.
    /// </summary>
    private void SimdFpMulAddLong(uint insn, bool indexed)
    {
        bool q = ((insn >> 30) & 1) != 0, part = ((insn >> 29) & 1) != 0;
        bool sub = ((insn >> (indexed ? 14 : 23)) & 1) != 0;
        int elements = q ? 4 : 2, rd = (int)(insn & 31), offset = part ? elements : 0;
        int rm = (int)((insn >> 16) & (indexed ? 15u : 31u));
        int index = (int)((((insn >> 11) & 1) << 2) | (((insn >> 21) & 1) << 1) | ((insn >> 20) & 1));
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[rm], d = cpu.Vregs[rd], result = 0;
        for (int e = 0; e < elements; e++)
        {
            ulong b = Elem(m, indexed ? index : offset + e, 16);
            result = WithElem(result, e, 32, FpMulAddHalfWide(Elem(d, e, 32), Elem(n, offset + e, 16), b, sub));
        }
        SetVq(rd, result, insn);
    }

    /// <summary>
    /// FCMLA (vector: rot = bits 12:11, the pairs of Vm in step; by element: rot = bits 14:13, Vm = M:Rm and the pair
    /// index H:L for .H, H for .S): for each complex pair e of Vn (operand1), with the Vm pair (re, im) (operand2), per
    /// the pseudocode's rot cases — 0: d.re += n.re·m.re, d.im += n.re·m.im; 90: d.re += n.im·(−m.im), d.im += n.im·m.re;
    /// 180: d.re += n.re·(−m.re), d.im += n.re·(−m.im); 270: d.re += n.im·m.im, d.im += n.im·(−m.re) — each an
    /// FPMulAdd(Vd element, Vn element, Vm element) (NaN order: addend, Vn, Vm; FPNeg flips a NaN's sign too).
    /// </summary>
    private void SimdFcmla(uint insn, bool indexed)
    {
        int esz = 1 << (int)((insn >> 22) & 3), esize = 8 * esz, rd = (int)(insn & 31);
        int pairs = (((insn >> 30) & 1) != 0 ? 128 : 64) / esize / 2;
        uint rot = indexed ? (insn >> 13) & 3 : (insn >> 11) & 3;
        int index = esz == 2 ? (int)((((insn >> 11) & 1) << 1) | ((insn >> 21) & 1)) : (int)((insn >> 11) & 1);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], d = cpu.Vregs[rd], result = 0;
        ulong sign = SignBitE(esz);
        for (int e = 0; e < pairs; e++)
        {
            int pair = indexed ? index : e;
            ulong mRe = Elem(m, 2 * pair, esize), mIm = Elem(m, 2 * pair + 1, esize);
            ulong nPart = Elem(n, 2 * e + (int)(rot & 1), esize); // element2 = element4: n.re (rot 0, 180) or n.im (90, 270)
            (ulong m1, ulong m3) = rot switch
            {
                0 => (mRe, mIm),
                1 => (mIm ^ sign, mRe),
                2 => (mRe ^ sign, mIm ^ sign),
                _ => (mIm, mRe ^ sign),
            };
            result = WithElem(result, 2 * e, esize, FpMulAddE(Elem(d, 2 * e, esize), nPart, m1, esz));
            result = WithElem(result, 2 * e + 1, esize, FpMulAddE(Elem(d, 2 * e + 1, esize), nPart, m3, esz));
        }
        SetVq(rd, result, insn);
    }

    /// <summary>
    /// FCADD (rot = bit 12: 0 is #90, 1 is #270): for each complex pair, #90: d.re = FPAdd(n.re, −m.im), d.im = FPAdd(n.im,
    /// m.re); #270: d.re = FPAdd(n.re, m.im), d.im = FPAdd(n.im, −m.re).
    /// </summary>
    private void SimdFcadd(uint insn)
    {
        int esz = 1 << (int)((insn >> 22) & 3), esize = 8 * esz, rd = (int)(insn & 31);
        int pairs = (((insn >> 30) & 1) != 0 ? 128 : 64) / esize / 2;
        bool rot270 = ((insn >> 12) & 1) != 0;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], result = 0;
        ulong sign = SignBitE(esz);
        for (int e = 0; e < pairs; e++)
        {
            ulong mRe = Elem(m, 2 * e, esize), mIm = Elem(m, 2 * e + 1, esize);
            ulong e1 = rot270 ? mIm : mIm ^ sign, e3 = rot270 ? mRe ^ sign : mRe;
            result = WithElem(result, 2 * e, esize, FpArithE(FpOp.Add, Elem(n, 2 * e, esize), e1, esz));
            result = WithElem(result, 2 * e + 1, esize, FpArithE(FpOp.Add, Elem(n, 2 * e + 1, esize), e3, esz));
        }
        SetVq(rd, result, insn);
    }
}
