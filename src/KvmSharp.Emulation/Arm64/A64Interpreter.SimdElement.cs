// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Advanced SIMD (vector and scalar) x indexed element (Arm ARM C7.2): FMLA, FMLS, FMUL, FMULX (by element) on S and D
/// lanes, and the vector integer MUL, MLA, MLS, SMULL/UMULL, SMLAL/UMLAL, SMLSL/UMLSL (by element) on H and S lanes.
/// The index is H:L (S), H (D, L = 1 unallocated), H:L:M (H, with Rm limited to V0–V15). The FP16 forms (size 00) fall
/// through to A64Interpreter.SimdHalf.cs and the saturating ones (SQDMULH, SQRDMULH, SQDMLAL…) to .SimdSaturating.cs;
/// SDOT/UDOT and SQRDMLAH/SQRDMLSH (by element) are decoded
/// before this group (A64Interpreter.SimdDotProd.cs, .SimdRdm.cs).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>0 Q U 01111 size L M Rm opcode H 0 Rn Rd, or the scalar 01 U 11111 … (bit 28 = 1).</summary>
    private bool SimdByElement(uint insn)
    {
        bool scalar = ((insn >> 28) & 1) != 0, q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        bool l = ((insn >> 21) & 1) != 0, mBit = ((insn >> 20) & 1) != 0, h = ((insn >> 11) & 1) != 0;
        int size = (int)((insn >> 22) & 3), rm = (int)((insn >> 16) & 15), rd = (int)(insn & 31);
        uint opcode = (insn >> 12) & 15;
        // FMLA (0001, U 0), FMLS (0101, U 0), FMUL (1001, U 0), FMULX (1001, U 1).
        bool fp = (opcode is 1 or 5 && !u) || opcode == 9;
        if (fp)
        {
            if (size < 2) return false; // half precision (size 00) or unallocated
            bool dbl = size == 3;
            if (dbl && (l || (!q && !scalar))) return UndefinedTrue();
            if (FpTrapped()) return true;
            int index = dbl ? (h ? 1 : 0) : ((h ? 2 : 0) | (l ? 1 : 0));
            int esize = dbl ? 64 : 32, elements = scalar ? 1 : (q ? 128 : 64) / esize;
            rm |= mBit ? 16 : 0;
            ulong element = Elem(cpu.Vregs[rm], index, esize), sign = dbl ? 1UL << 63 : 1UL << 31;
            UInt128 n = cpu.Vregs[(insn >> 5) & 31], d = cpu.Vregs[rd], result = 0;
            for (int i = 0; i < elements; i++)
            {
                ulong x = Elem(n, i, esize), acc = Elem(d, i, esize);
                ulong r = (opcode, u) switch
                {
                    (1, _) => FpMulAdd(acc, x, element, dbl),         // FMLA
                    (5, _) => FpMulAdd(acc, x ^ sign, element, dbl),  // FMLS
                    (_, false) => FpArith(FpOp.Mul, x, element, dbl), // FMUL
                    _ => FpMulX(x, element, dbl),                     // FMULX
                };
                result = WithElem(result, i, esize, r);
            }
            SetV(rd, scalar ? result & LaneMask(esize) : q ? result : result & ulong.MaxValue);
            Next();
            return true;
        }
        bool known = (opcode, u) switch
        {
            (8, false) or (0, true) or (4, true) => true,  // MUL, MLA, MLS
            (10, _) or (2, _) or (6, _) => true,          // xMULL, xMLAL, xMLSL
            _ => false,
        };
        if (scalar || !known) return false;
        if (size is 0 or 3) return UndefinedTrue();
        if (FpTrapped()) return true;
        int ix = size == 1 ? ((h ? 4 : 0) | (l ? 2 : 0) | (mBit ? 1 : 0)) : ((h ? 2 : 0) | (l ? 1 : 0));
        if (size == 2) rm |= mBit ? 16 : 0;
        int es = 8 << size;
        ulong e = Elem(cpu.Vregs[rm], ix, es);
        UInt128 vn = cpu.Vregs[(insn >> 5) & 31], vd = cpu.Vregs[rd], res = 0;
        if (opcode is 8 or 0 or 4)
        {
            for (int i = 0; i < (q ? 128 : 64) / es; i++)
            {
                ulong product = Elem(vn, i, es) * e, acc = Elem(vd, i, es);
                res = WithElem(res, i, es, opcode == 8 ? product : opcode == 0 ? acc + product : acc - product);
            }
            SetV(rd, q ? res : res & ulong.MaxValue);
        }
        else
        {
            // The long forms: the low (or, for the "2" forms, high) half of Vn, products of 2 × esize.
            ulong half = q ? (ulong)(vn >> 64) : (ulong)vn;
            Int128 b = u ? e : SignExtend(e, es);
            for (int i = 0; i < 64 / es; i++)
            {
                Int128 a = u ? Elem(half, i, es) : SignExtend(Elem(half, i, es), es);
                ulong product = (ulong)(a * b), acc = Elem(vd, i, 2 * es);
                res = WithElem(res, i, 2 * es, opcode == 10 ? product : opcode == 2 ? acc + product : acc - product);
            }
            SetV(rd, res);
        }
        Next();
        return true;
    }
}
