// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The AdvSIMD FEAT_FP16 groups (Arm ARM C4.1 "Data Processing -- Scalar Floating-Point and Advanced SIMD" and C7.2):
/// "Advanced SIMD three same (FP16)" and its scalar form, "two-register miscellaneous (FP16)" and its scalar form,
/// the FP16 across-lanes FMAXNMV/FMINNMV/FMAXV/FMINV (.4h/.8h), the FP16 scalar pairwise FADDP/FMAXNMP/FMINNMP/FMAXP/
/// FMINP (.2h), FMLA/FMLS/FMUL/FMULX (by element, size 00, Rm V0–V15, index H:L:M), SCVTF/UCVTF/FCVTZS/FCVTZU
/// (vector and scalar, fixed-point, immh 001x: fbits = 32 − immh:immb) and FMOV (vector, immediate, o2 = 1). Each lane
/// is the half element operation of A64Interpreter.FpHalf.cs / .SveHalf.cs (FPCR.FZ16 for half, FPCR.DN, RMode).
/// FRECPE, FRSQRTE, FRECPS, FRSQRTS and FRECPX are left to A64Interpreter.SimdEstimates.cs (false here); the other
/// unallocated encodings of these groups are UNDEFINED before the CPACR_EL1.FPEN check, as is every one of them when
/// ID_AA64PFR0_EL1.FP does not offer FEAT_FP16.
/// </summary>
internal sealed partial class A64Interpreter
{
    private bool TrySimdHalf(uint insn)
    {
        // Advanced SIMD (scalar) three same (FP16): 0 Q U 01110 a 10 Rm 00 opcode 1 Rn Rd / 01 U 11110 a 10 Rm 00 opcode 1 Rn Rd.
        if ((insn & 0x9F60_C400) == 0x0E40_0400 || (insn & 0xDF60_C400) == 0x5E40_0400) return HalfThreeSame(insn);
        // Advanced SIMD (scalar) two-register miscellaneous (FP16): 0 Q U 01110 a 1111 00 opcode 10 Rn Rd / 01 U 11110 ….
        if ((insn & 0x9F7E_0C00) == 0x0E78_0800 || (insn & 0xDF7E_0C00) == 0x5E78_0800) return HalfTwoRegisterMisc(insn);
        // Advanced SIMD across lanes, U 0, sz 0 (FP16): 0 Q 0 01110 a 0 11000 opcode 10 Rn Rd.
        if ((insn & 0xBF3E_0C00) == 0x0E30_0800) return HalfAcrossLanes(insn);
        // Advanced SIMD scalar pairwise, U 0 (FP16): 01 0 11110 a sz 11000 opcode 10 Rn Rd.
        if ((insn & 0xFF3E_0C00) == 0x5E30_0800) return HalfScalarPairwise(insn);
        // Advanced SIMD (scalar) x indexed element, size 00: 0 Q U 01111 00 L M Rm opcode H 0 Rn Rd / 01 U 11111 00 ….
        if ((insn & 0x9FC0_0400) == 0x0F00_0000 || (insn & 0xDFC0_0400) == 0x5F00_0000) return HalfByElement(insn);
        // Advanced SIMD (scalar) shift by immediate, immh 001x: 0 Q U 011110 0 01x immb opcode 1 Rn Rd / 01 U 111110 ….
        if ((insn & 0x9FF0_0400) == 0x0F10_0400 || (insn & 0xDFF0_0400) == 0x5F10_0400) return HalfFixedPoint(insn);
        // Advanced SIMD modified immediate with o2 = 1: 0 Q op 0111100000 a b c cmode 1 1 d e f g h Rd.
        if ((insn & 0x9FF8_0C00) == 0x0F00_0C00) return HalfMoveImmediate(insn);
        return false;
    }

    /// <summary>
    /// Three same (FP16), opcode = bits 13:11, the single/double "three same" operations of opcode 11xxx
    /// (A64Interpreter.SimdFp.cs) on H lanes. Scalar: FMULX, FCMEQ, FCMGE, FCMGT, FACGE, FACGT, FABD only.
    /// </summary>
    private bool HalfThreeSame(uint insn)
    {
        bool scalar = ((insn >> 28) & 1) != 0, q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0, a = ((insn >> 23) & 1) != 0;
        uint opcode = (insn >> 11) & 7;
        if (opcode == 7 && !u) return false; // FRECPS, FRSQRTS (A64Interpreter.SimdEstimates.cs)
        bool pairwise = u && opcode is 0 or 2 or 6 && !(opcode == 2 && a);
        VFp? op = (opcode, u, a) switch
        {
            (0, _, false) => VFp.MaxNm,
            (0, _, true) => VFp.MinNm,
            (1, false, false) => VFp.Mla,
            (1, false, true) => VFp.Mls,
            (2, false, false) => VFp.Add,
            (2, false, true) => VFp.Sub,
            (2, true, false) => VFp.Add, // FADDP
            (2, true, true) => VFp.Abd,
            (3, false, false) => VFp.Mulx,
            (3, true, false) => VFp.Mul,
            (4, false, false) => VFp.Eq,
            (4, true, false) => VFp.Ge,
            (4, true, true) => VFp.Gt,
            (5, true, false) => VFp.AbsGe,
            (5, true, true) => VFp.AbsGt,
            (6, _, false) => VFp.Max,
            (6, _, true) => VFp.Min,
            (7, true, false) => VFp.Div,
            _ => null,
        };
        if (op is null || !Fp16) return UndefinedTrue();
        if (scalar && (pairwise || op is not (VFp.Mulx or VFp.Eq or VFp.Ge or VFp.Gt or VFp.AbsGe or VFp.AbsGt or VFp.Abd))) return UndefinedTrue();
        if (FpTrapped()) return true;
        int elements = scalar ? 1 : q ? 8 : 4, rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], d = cpu.Vregs[rd], result = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong x, y;
            if (pairwise)
            {
                // The pairs of the concatenation Vm:Vn (Vn in the low half).
                int j = 2 * i;
                x = j < elements ? Elem(n, j, 16) : Elem(m, j - elements, 16);
                y = j + 1 < elements ? Elem(n, j + 1, 16) : Elem(m, j + 1 - elements, 16);
            }
            else
            {
                x = Elem(n, i, 16);
                y = Elem(m, i, 16);
            }
            result = WithElem(result, i, 16, FpVectorOpE(op.Value, x, y, Elem(d, i, 16), 2));
        }
        SetV(rd, scalar ? result & 0xFFFF : q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>One lane of a vector FP operation at element size <paramref name="esz"/> (<see cref="FpVectorOp"/> for single and double).</summary>
    private ulong FpVectorOpE(VFp op, ulong x, ulong y, ulong acc, int esz)
    {
        if (esz != 2) return FpVectorOp(op, x, y, acc, esz == 8);
        const ulong sign = 0x8000, ones = 0xFFFF;
        return op switch
        {
            VFp.Add => FpArithE(FpOp.Add, x, y, esz),
            VFp.Sub => FpArithE(FpOp.Sub, x, y, esz),
            VFp.Mul => FpArithE(FpOp.Mul, x, y, esz),
            VFp.Div => FpArithE(FpOp.Div, x, y, esz),
            VFp.Mla => FpMulAddE(acc, x, y, esz),
            VFp.Mls => FpMulAddE(acc, x ^ sign, y, esz),  // FPMulAdd(acc, FPNeg(x), y)
            VFp.Mulx => FpMulXE(x, y, esz),
            VFp.Abd => FpArithE(FpOp.Sub, x, y, esz) & ~sign, // FPAbs(FPSub(…)), a NaN's sign too
            VFp.Max => FpMinMaxE(x, y, esz, max: true, numeric: false),
            VFp.Min => FpMinMaxE(x, y, esz, max: false, numeric: false),
            VFp.MaxNm => FpMinMaxE(x, y, esz, max: true, numeric: true),
            VFp.MinNm => FpMinMaxE(x, y, esz, max: false, numeric: true),
            VFp.Eq => FpCompareMaskE(x, y, esz, 0) ? ones : 0,
            VFp.Ge => FpCompareMaskE(x, y, esz, 1) ? ones : 0,
            VFp.Gt => FpCompareMaskE(x, y, esz, 2) ? ones : 0,
            VFp.AbsGe => FpCompareMaskE(x & ~sign, y & ~sign, esz, 1) ? ones : 0,
            _ => FpCompareMaskE(x & ~sign, y & ~sign, esz, 2) ? ones : 0,
        };
    }

    /// <summary>
    /// Two-register miscellaneous (FP16), opcode = bits 16:12: the single/double table of
    /// A64Interpreter.SimdFp.cs on H lanes (FCVT* and SCVTF/UCVTF to/from 16-bit integers). Scalar: the compares with
    /// zero, FCVT* and SCVTF/UCVTF only. FRECPE, FRSQRTE (opcode 11101, a = 1) and FRECPX (scalar 11111, U 0, a = 1) are
    /// A64Interpreter.SimdEstimates.cs's.
    /// </summary>
    private bool HalfTwoRegisterMisc(uint insn)
    {
        bool scalar = ((insn >> 28) & 1) != 0, q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0, a = ((insn >> 23) & 1) != 0;
        uint opcode = (insn >> 12) & 31;
        if (a && (opcode == 0x1D || (opcode == 0x1F && !u && scalar))) return false; // FRECPE, FRSQRTE, FRECPX
        (int Kind, uint Sub) sel = FpTwoRegisterMiscKind(opcode, u, a);
        if (sel.Kind < 0 || (scalar && sel.Kind is 5 or 6 or 7 or 8) || !Fp16) return UndefinedTrue();
        if (FpTrapped()) return true;
        int elements = scalar ? 1 : q ? 8 : 4;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], result = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong x = Elem(n, i, 16);
            ulong r = sel.Kind switch
            {
                0 => FpCompareMaskE(x, 0, 2, 2) ? 0xFFFFUL : 0,
                1 => FpCompareMaskE(x, 0, 2, 0) ? 0xFFFFUL : 0,
                2 => FpCompareMaskE(0, x, 2, 2) ? 0xFFFFUL : 0,
                3 => FpCompareMaskE(x, 0, 2, 1) ? 0xFFFFUL : 0,
                4 => FpCompareMaskE(0, x, 2, 1) ? 0xFFFFUL : 0,
                5 => x & 0x7FFF,
                6 => x ^ 0x8000,
                7 => FpSqrtE(x, 2),
                8 => FpRoundIntE(x, 2, sel.Sub),
                9 => FpToFixedE(x, 2, 0, 16, u, FpRounding(sel.Sub)),
                _ => FixedToFpE(u ? (ushort)x : (short)x, 2, 0),
            };
            result = WithElem(result, i, 16, r);
        }
        SetV((int)(insn & 31), scalar ? result & 0xFFFF : q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>The FP16 reductions: FMAXNMV (01100), FMAXV (01111) and, with a = 1, FMINNMV / FMINV (U 0, sz 0, .4h or .8h); Reduce() pairs halves recursively.</summary>
    private bool HalfAcrossLanes(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, a = ((insn >> 23) & 1) != 0, sz = ((insn >> 22) & 1) != 0;
        uint opcode = (insn >> 12) & 31;
        if (opcode is not (0x0C or 0x0F)) return false; // the integer across-lanes opcodes (SimdAcrossLanes)
        if (sz || !Fp16) return UndefinedTrue();
        if (FpTrapped()) return true;
        VFp op = opcode == 0x0C ? (a ? VFp.MinNm : VFp.MaxNm) : (a ? VFp.Min : VFp.Max);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31];
        SetVScalar((int)(insn & 31), Reduce(0, q ? 8 : 4), 16);
        Next();
        return true;

        ulong Reduce(int lo, int count) =>
            count == 1 ? Elem(n, lo, 16) : FpVectorOpE(op, Reduce(lo, count / 2), Reduce(lo + count / 2, count / 2), 0, 2);
    }

    /// <summary>FP16 scalar pairwise (U 0, sz 0): FMAXNMP (01100), FADDP (01101, a 0), FMAXP (01111) and, with a = 1, FMINNMP / FMINP of Vn.H[0] and Vn.H[1].</summary>
    private bool HalfScalarPairwise(uint insn)
    {
        bool a = ((insn >> 23) & 1) != 0, sz = ((insn >> 22) & 1) != 0;
        uint opcode = (insn >> 12) & 31;
        if (opcode is not (0x0C or 0x0D or 0x0F)) return false;
        if (sz || (opcode == 0x0D && a) || !Fp16) return UndefinedTrue();
        if (FpTrapped()) return true;
        VFp op = opcode switch { 0x0C => a ? VFp.MinNm : VFp.MaxNm, 0x0D => VFp.Add, _ => a ? VFp.Min : VFp.Max };
        UInt128 n = cpu.Vregs[(insn >> 5) & 31];
        SetVScalar((int)(insn & 31), FpVectorOpE(op, Elem(n, 0, 16), Elem(n, 1, 16), 0, 2), 16);
        Next();
        return true;
    }

    /// <summary>
    /// FMLA (opcode 0001, U 0), FMLS (0101, U 0), FMUL (1001, U 0), FMULX (1001, U 1) by element with size 00: H lanes,
    /// the element Vm.H[H:L:M] with Rm in V0–V15. False for every other opcode (the integer and other by-element groups).
    /// </summary>
    private bool HalfByElement(uint insn)
    {
        bool scalar = ((insn >> 28) & 1) != 0, q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        uint opcode = (insn >> 12) & 15;
        if (!((opcode is 1 or 5 && !u) || opcode == 9)) return false;
        if (!Fp16) return UndefinedTrue();
        if (FpTrapped()) return true;
        int index = (int)((((insn >> 11) & 1) << 2) | (((insn >> 21) & 1) << 1) | ((insn >> 20) & 1));
        int rd = (int)(insn & 31), elements = scalar ? 1 : q ? 8 : 4;
        ulong element = Elem(cpu.Vregs[(insn >> 16) & 15], index, 16);
        VFp op = (opcode, u) switch { (1, _) => VFp.Mla, (5, _) => VFp.Mls, (_, false) => VFp.Mul, _ => VFp.Mulx };
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], d = cpu.Vregs[rd], result = 0;
        for (int i = 0; i < elements; i++)
            result = WithElem(result, i, 16, FpVectorOpE(op, Elem(n, i, 16), element, Elem(d, i, 16), 2));
        SetV(rd, scalar ? result & 0xFFFF : q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>
    /// SCVTF/UCVTF (opcode 11100) and FCVTZS/FCVTZU (11111), vector or scalar, fixed-point with immh = 001x: H lanes,
    /// fbits = 32 − immh:immb (1–16); FixedToFP / FPToFixed(…, FPRounding_ZERO) at N = 16. False for the integer shifts.
    /// </summary>
    private bool HalfFixedPoint(uint insn)
    {
        bool scalar = ((insn >> 28) & 1) != 0, q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        uint opcode = (insn >> 11) & 31;
        if (opcode is not (0x1C or 0x1F)) return false;
        if (!Fp16) return UndefinedTrue();
        if (FpTrapped()) return true;
        int fbits = 32 - (int)((insn >> 16) & 127), elements = scalar ? 1 : q ? 8 : 4;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], result = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong x = Elem(n, i, 16);
            ulong r = opcode == 0x1F ? FpToFixedE(x, 2, fbits, 16, u, MidpointRounding.ToZero) : FixedToFpE(u ? (ushort)x : (short)x, 2, fbits);
            result = WithElem(result, i, 16, r);
        }
        SetV((int)(insn & 31), scalar ? result & 0xFFFF : q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>
    /// FMOV (vector, immediate), half precision: op 0, cmode 1111, o2 1 — VFPExpandImm(imm8) at N = 16 in every H lane.
    /// Every other modified immediate with o2 = 1 is unallocated.
    /// </summary>
    private bool HalfMoveImmediate(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, op = ((insn >> 29) & 1) != 0;
        uint cmode = (insn >> 12) & 15, imm8 = ((insn >> 11) & 0xE0) | ((insn >> 5) & 0x1F);
        if (op || cmode != 15 || !Fp16) return UndefinedTrue();
        if (FpTrapped()) return true;
        ulong lanes = VfpExpandImmHalf(imm8) * 0x0001_0001_0001_0001UL;
        SetV((int)(insn & 31), q ? ((UInt128)lanes << 64) | lanes : lanes);
        Next();
        return true;
    }
}
