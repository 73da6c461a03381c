// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Advanced SIMD floating point on .2s/.4s/.2d vectors (Arm ARM C7.2), each lane through the scalar pseudocode of
/// A64Interpreter.FpArithmetic.cs: "three same" FADD, FSUB, FMUL, FDIV, FMLA, FMLS (FPMulAdd), FMULX, FABD, FMAX,
/// FMIN, FMAXNM, FMINNM, FCMEQ/FCMGE/FCMGT (FPCompareEQ/GE/GT), FACGE/FACGT and the pairwise FADDP, FMAXP, FMINP,
/// FMAXNMP, FMINNMP; "two-register miscellaneous" FABS, FNEG, FSQRT, FCMEQ/FCMGE/FCMGT/FCMLE/FCMLT (zero), FRINT*,
/// FCVT{N,M,A,P,Z}{S,U} and SCVTF/UCVTF (vector, integer), FCVTL/FCVTN (A64Interpreter.FpConvert.cs); the scalar
/// pairwise FADDP/FMAXP/FMINP/FMAXNMP/FMINNMP and ADDP (D); the across-lanes FMAXV/FMINV/FMAXNMV/FMINNMV (.4s).
/// The FP16 forms are A64Interpreter.SimdHalf.cs's; FRECPE/FRECPS/FRSQRTE/FRSQRTS/URECPE/URSQRTE and FCVTXN are
/// .SimdEstimates.cs's (this group returns false for them, and TrySimdFp tries those next); FMLAL/FMLSL (FEAT_FHM),
/// FCMLA/FCADD (FEAT_FCMA) and FRINT32/64 (FEAT_FRINTTS) are A64Interpreter.FpExtensions.cs's, decoded first.
/// </summary>
internal sealed partial class A64Interpreter
{
    private enum VFp { Add, Sub, Mul, Div, Mla, Mls, Mulx, Abd, Max, Min, MaxNm, MinNm, Eq, Ge, Gt, AbsGe, AbsGt }

    /// <summary>Advanced SIMD three same, opcode 11xxx (the FP half of the group): 0 Q U 01110 a sz 1 Rm opcode 1 Rn Rd.</summary>
    private bool SimdFpThreeSame(uint insn)
    {
        uint opcode = (insn >> 11) & 31;
        if (opcode < 0x18) return false;
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0, a = ((insn >> 23) & 1) != 0, dbl = ((insn >> 22) & 1) != 0;
        bool pairwise = u && opcode is 0x18 or 0x1A or 0x1E && !(opcode == 0x1A && a);
        VFp? op = (opcode, u, a) switch
        {
            (0x18, _, false) => VFp.MaxNm,
            (0x18, _, true) => VFp.MinNm,
            (0x19, false, false) => VFp.Mla,
            (0x19, false, true) => VFp.Mls,
            (0x1A, false, false) => VFp.Add,
            (0x1A, false, true) => VFp.Sub,
            (0x1A, true, false) => VFp.Add,  // FADDP
            (0x1A, true, true) => VFp.Abd,
            (0x1B, false, false) => VFp.Mulx,
            (0x1B, true, false) => VFp.Mul,
            (0x1C, false, false) => VFp.Eq,
            (0x1C, true, false) => VFp.Ge,
            (0x1C, true, true) => VFp.Gt,
            (0x1D, true, false) => VFp.AbsGe,
            (0x1D, true, true) => VFp.AbsGt,
            (0x1E, _, false) => VFp.Max,
            (0x1E, _, true) => VFp.Min,
            (0x1F, true, false) => VFp.Div,
            _ => null,
        };
        if (op is null) return false; // FRECPS, FRSQRTS and the unallocated slots (FMLAL/FMLSL: TryFpExtensions, earlier)
        // Advanced SIMD scalar three same (bit 28 = 1): FMULX, FCMEQ, FCMGE, FCMGT, FACGE, FACGT, FABD on Sd/Dd only.
        bool scalar = ((insn >> 28) & 1) != 0;
        if (scalar && (pairwise || op is not (VFp.Mulx or VFp.Eq or VFp.Ge or VFp.Gt or VFp.AbsGe or VFp.AbsGt or VFp.Abd))) return false;
        if (dbl && !q) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = dbl ? 64 : 32, elements = scalar ? 1 : (q ? 128 : 64) / esize, rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], d = cpu.Vregs[rd], result = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong x, y;
            if (pairwise)
            {
                // The pairs of the concatenation Vm:Vn (Vn in the low half).
                int j = 2 * i;
                x = j < elements ? Elem(n, j, esize) : Elem(m, j - elements, esize);
                y = j + 1 < elements ? Elem(n, j + 1, esize) : Elem(m, j + 1 - elements, esize);
            }
            else
            {
                x = Elem(n, i, esize);
                y = Elem(m, i, esize);
            }
            result = WithElem(result, i, esize, FpVectorOp(op.Value, x, y, Elem(d, i, esize), dbl));
        }
        SetV(rd, scalar ? result & LaneMask(esize) : q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>One lane of a vector FP operation (FPAdd, FPMulAdd, FPMulX, FPAbs(FPSub), FPMax…, FPCompareEQ/GE/GT).</summary>
    private ulong FpVectorOp(VFp op, ulong x, ulong y, ulong acc, bool dbl)
    {
        ulong sign = dbl ? 1UL << 63 : 1UL << 31, ones = dbl ? ulong.MaxValue : 0xFFFF_FFFFUL;
        return op switch
        {
            VFp.Add => FpArith(FpOp.Add, x, y, dbl),
            VFp.Sub => FpArith(FpOp.Sub, x, y, dbl),
            VFp.Mul => FpArith(FpOp.Mul, x, y, dbl),
            VFp.Div => FpArith(FpOp.Div, x, y, dbl),
            VFp.Mla => FpMulAdd(acc, x, y, dbl),
            VFp.Mls => FpMulAdd(acc, x ^ sign, y, dbl),
            VFp.Mulx => FpMulX(x, y, dbl),
            VFp.Abd => FpAbsUnlessNan(FpArith(FpOp.Sub, x, y, dbl), dbl),
            VFp.Max => FpMinMax(x, y, dbl, max: true, numeric: false),
            VFp.Min => FpMinMax(x, y, dbl, max: false, numeric: false),
            VFp.MaxNm => FpMinMax(x, y, dbl, max: true, numeric: true),
            VFp.MinNm => FpMinMax(x, y, dbl, max: false, numeric: true),
            VFp.Eq => FpCompareMask(x, y, dbl, 0) ? ones : 0,
            VFp.Ge => FpCompareMask(x, y, dbl, 1) ? ones : 0,
            VFp.Gt => FpCompareMask(x, y, dbl, 2) ? ones : 0,
            VFp.AbsGe => FpCompareMask(x & ~sign, y & ~sign, dbl, 1) ? ones : 0,
            _ => FpCompareMask(x & ~sign, y & ~sign, dbl, 2) ? ones : 0,
        };
    }

    /// <summary>FPAbs of an FABD difference: the sign of a (default or propagated) NaN is cleared too (FPAbs does no NaN processing).</summary>
    private static ulong FpAbsUnlessNan(ulong value, bool dbl) => value & ~(dbl ? 1UL << 63 : 1UL << 31);

    /// <summary>FPMulX: FPMul, except that ∞ × 0 gives 2.0 with the sign of the product (no IOC).</summary>
    private ulong FpMulX(ulong x, ulong y, bool dbl)
    {
        ulong fx = FpFlushIn(x, dbl), fy = FpFlushIn(y, dbl);
        if (!FpIsNan(fx, dbl) && !FpIsNan(fy, dbl))
        {
            double a = FpToDouble(fx, dbl), b = FpToDouble(fy, dbl);
            if ((double.IsInfinity(a) && b == 0) || (a == 0 && double.IsInfinity(b)))
            {
                bool negative = (double.IsNegative(a) ^ double.IsNegative(b));
                return dbl ? BitConverter.DoubleToUInt64Bits(negative ? -2.0 : 2.0) : BitConverter.SingleToUInt32Bits(negative ? -2.0f : 2.0f);
            }
        }
        return FpArith(FpOp.Mul, x, y, dbl);
    }

    /// <summary>
    /// FPCompareEQ (kind 0: IOC only for a signalling NaN), FPCompareGE (1) and FPCompareGT (2) (IOC for any NaN); a
    /// NaN compares false. Denormal inputs are flushed with FPCR.FZ.
    /// </summary>
    private bool FpCompareMask(ulong a, ulong b, bool dbl, int kind)
    {
        a = FpFlushIn(a, dbl);
        b = FpFlushIn(b, dbl);
        if (FpIsNan(a, dbl) || FpIsNan(b, dbl))
        {
            if (kind != 0 || FpIsSignalling(a, dbl) || FpIsSignalling(b, dbl)) FpFlag(FpsrIoc);
            return false;
        }
        double x = FpToDouble(a, dbl), y = FpToDouble(b, dbl);
        return kind switch { 0 => x == y, 1 => x >= y, _ => x > y };
    }

    /// <summary>
    /// The lane operation of an FP two-register miscellaneous opcode (the vector, scalar and FP16 forms alike): kind
    /// 0..4 compare with zero (GT, EQ, LT, GE, LE), 5 FABS, 6 FNEG, 7 FSQRT, 8 FRINT (sub = FpRoundInt opcode),
    /// 9 FCVT*S/U (sub = rounding 0 N, 1 P, 2 M, 3 Z, 4 A), 10 SCVTF/UCVTF; −1 for any other opcode.
    /// </summary>
    private static (int Kind, uint Sub) FpTwoRegisterMiscKind(uint opcode, bool u, bool a) => (opcode, u, a) switch
    {
        (0x0C, false, true) => (0, 0),
        (0x0D, false, true) => (1, 0),
        (0x0E, false, true) => (2, 0),
        (0x0C, true, true) => (3, 0),
        (0x0D, true, true) => (4, 0),
        (0x0F, false, true) => (5, 0),
        (0x0F, true, true) => (6, 0),
        (0x1F, true, true) => (7, 0),
        (0x18, false, false) => (8, 8),   // FRINTN
        (0x18, false, true) => (8, 9),    // FRINTP
        (0x19, false, false) => (8, 10),  // FRINTM
        (0x19, false, true) => (8, 11),   // FRINTZ
        (0x18, true, false) => (8, 12),   // FRINTA
        (0x19, true, false) => (8, 14),   // FRINTX
        (0x19, true, true) => (8, 15),    // FRINTI
        (0x1A, _, false) => (9, 0),       // FCVTNS/NU
        (0x1A, _, true) => (9, 1),        // FCVTPS/PU
        (0x1B, _, false) => (9, 2),       // FCVTMS/MU
        (0x1B, _, true) => (9, 3),        // FCVTZS/ZU
        (0x1C, _, false) => (9, 4),       // FCVTAS/AU
        (0x1D, _, false) => (10, 0),      // SCVTF/UCVTF
        _ => (-1, 0),
    };

    /// <summary>
    /// Advanced SIMD two-register miscellaneous, FP opcodes (01100–01111 with a = 1, 1xxxx): 0 Q U 01110 a sz 10000
    /// opcode 10 Rn Rd. FCVTL/FCVTN (10111/10110, a = 0) are in A64Interpreter.FpConvert.cs.
    /// </summary>
    private bool SimdFpTwoRegisterMisc(uint insn)
    {
        uint opcode = (insn >> 12) & 31;
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0, a = ((insn >> 23) & 1) != 0, dbl = ((insn >> 22) & 1) != 0;
        // Advanced SIMD scalar two-register miscellaneous (bit 28 = 1): the same lane operations on Sd/Dd.
        bool scalar = ((insn >> 28) & 1) != 0;
        if (!a && opcode is 0x16 or 0x17) return !scalar && SimdFpConvertLongNarrow(insn);
        (int Kind, uint Sub) sel = FpTwoRegisterMiscKind(opcode, u, a);
        if (sel.Kind < 0 || (scalar && sel.Kind is 5 or 6 or 7 or 8)) return false; // no scalar FABS/FNEG/FSQRT/FRINT here
        if (dbl && !q) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = dbl ? 64 : 32, elements = scalar ? 1 : (q ? 128 : 64) / esize;
        ulong sign = dbl ? 1UL << 63 : 1UL << 31, ones = dbl ? ulong.MaxValue : 0xFFFF_FFFFUL;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], result = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong x = Elem(n, i, esize);
            ulong r = sel.Kind switch
            {
                0 => FpCompareMask(x, 0, dbl, 2) ? ones : 0,
                1 => FpCompareMask(x, 0, dbl, 0) ? ones : 0,
                2 => FpCompareMask(0, x, dbl, 2) ? ones : 0,
                3 => FpCompareMask(x, 0, dbl, 1) ? ones : 0,
                4 => FpCompareMask(0, x, dbl, 1) ? ones : 0,
                5 => x & ~sign,
                6 => x ^ sign,
                7 => FpSqrt(x, dbl),
                8 => FpRoundInt(x, dbl, sel.Sub),
                9 => FpToFixed(x, dbl, 0, dbl, u, FpRounding(sel.Sub)),
                _ => FixedToFpScaled(u ? (Int128)x : (Int128)SignExtend(x, esize), dbl, 0),
            };
            result = WithElem(result, i, esize, r);
        }
        SetV((int)(insn & 31), scalar ? result & LaneMask(esize) : q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>FPDecodeRounding order N, P, M, Z, then A (ties away).</summary>
    private static MidpointRounding FpRounding(uint mode) => mode switch
    {
        0 => MidpointRounding.ToEven,
        1 => MidpointRounding.ToPositiveInfinity,
        2 => MidpointRounding.ToNegativeInfinity,
        3 => MidpointRounding.ToZero,
        _ => MidpointRounding.AwayFromZero,
    };

    /// <summary>
    /// Advanced SIMD scalar pairwise: 01 U 11110 a sz 11000 opcode 10 Rn Rd. ADDP (U 0, size 11, 11011) adds the two
    /// D lanes; FADDP (U 1, 01101), FMAXNMP (01100) / FMINNMP (a = 1), FMAXP (01111) / FMINP (a = 1) combine lanes 0
    /// and 1 of the 2S or 2D source.
    /// </summary>
    private bool SimdScalarPairwise(uint insn)
    {
        bool u = ((insn >> 29) & 1) != 0, a = ((insn >> 23) & 1) != 0, dbl = ((insn >> 22) & 1) != 0;
        uint opcode = (insn >> 12) & 31;
        UInt128 n;
        if (!u)
        {
            if (opcode != 0x1B) return false;
            if (!(a && dbl)) return UndefinedTrue();
            if (FpTrapped()) return true;
            n = cpu.Vregs[(insn >> 5) & 31];
            SetV((int)(insn & 31), (ulong)n + (ulong)(n >> 64));
            Next();
            return true;
        }
        VFp? op = (opcode, a) switch
        {
            (0x0D, false) => VFp.Add,
            (0x0C, false) => VFp.MaxNm,
            (0x0C, true) => VFp.MinNm,
            (0x0F, false) => VFp.Max,
            (0x0F, true) => VFp.Min,
            _ => null,
        };
        if (op is null) return false;
        if (FpTrapped()) return true;
        int esize = dbl ? 64 : 32;
        n = cpu.Vregs[(insn >> 5) & 31];
        SetVScalar((int)(insn & 31), FpVectorOp(op.Value, Elem(n, 0, esize), Elem(n, 1, esize), 0, dbl), esize);
        Next();
        return true;
    }

    /// <summary>
    /// FMAXNMV (01100), FMAXV (01111) and, with a = 1, FMINNMV / FMINV across the four S lanes (U 1, Q 1, sz 0):
    /// Reduce() pairs lanes (0, 1) and (2, 3), then the two results.
    /// </summary>
    private bool SimdFpAcrossLanes(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0, a = ((insn >> 23) & 1) != 0, dbl = ((insn >> 22) & 1) != 0;
        uint opcode = (insn >> 12) & 31;
        if (!u || opcode is not (0x0C or 0x0F)) return false;
        if (!q || dbl) return UndefinedTrue();
        if (FpTrapped()) return true;
        VFp op = opcode == 0x0C ? (a ? VFp.MinNm : VFp.MaxNm) : (a ? VFp.Min : VFp.Max);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31];
        ulong lo = FpVectorOp(op, Elem(n, 0, 32), Elem(n, 1, 32), 0, dbl: false);
        ulong hi = FpVectorOp(op, Elem(n, 2, 32), Elem(n, 3, 32), 0, dbl: false);
        SetVScalar((int)(insn & 31), FpVectorOp(op, lo, hi, 0, dbl: false), 32);
        Next();
        return true;
    }
}
