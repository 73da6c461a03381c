// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Scalar floating point, single (ftype 00) and double (01) precision (Arm ARM C7.2 and the shared pseudocode
/// FPAdd/FPSub/FPMul/FPDiv/FPSqrt/FPMulAdd/FPCompare/FPToFixed/FixedToFP/FPConvert/FPRoundBase/FPProcessNaNs):
/// FMOV (register, general, immediate), FABS, FNEG, FSQRT, FCVT (S↔D), FADD, FSUB, FMUL, FNMUL, FDIV, FMAX, FMIN,
/// FMAXNM, FMINNM, FMADD, FMSUB, FNMADD, FNMSUB, FCMP, FCMPE, FCCMP, FCCMPE, FCSEL, SCVTF, UCVTF and
/// FCVT{N,P,M,Z,A}{S,U} (integer; the fixed-point forms and FCVT to/from half precision are in A64Interpreter.FpConvert.cs),
/// FRINT{N,P,M,Z,A,X,I}; with FEAT_FP16 the same in half precision (ftype 11: every group but FCVT to/from itself,
/// FRINT32/64 and the 2-source opcodes above FNMUL, which are UNDEFINED; the element operations of
/// A64Interpreter.FpHalf.cs with FPCR.FZ16, not FZ). FRINT32Z/32X/64Z/64X (FEAT_FRINTTS) and FJCVTZS (FEAT_JSCVT) are
/// A64Interpreter.FpExtensions.cs's, decoded before this group.
/// NaNs follow FPProcessNaNs (signalling first, operand order) or, with FPCR.DN, the default NaN; an invalid
/// operation gives the default NaN (not x86's negative "indefinite"). FPCR.FZ flushes denormal inputs (IDC) and tiny
/// results (UFC only). FPSR flags set: IOC, DZC, OFC, IDC, UFC, IXC.
/// Rounding: FPCR.RMode RN, RP, RM and RZ (A64Interpreter.FpRounding.cs: the nearest result and the sign of its exact
/// error). [D] IXC/UFC of double-precision FMUL/FDIV/FSQRT/FMADD results in or near the subnormal range (where the
/// residual that shows inexactness can underflow) are not set, and such results under a directed mode stop the run as
/// unsupported. Tininess is judged before rounding.
/// </summary>
internal sealed partial class A64Interpreter
{
    private const uint FpsrIoc = 1, FpsrDzc = 2, FpsrOfc = 4, FpsrUfc = 8, FpsrIxc = 16, FpsrIdc = 128;

    private bool FpDefaultNan => (cpu.Fpcr & (1u << 25)) != 0;

    private bool FpFlushToZero => (cpu.Fpcr & (1u << 24)) != 0;

    private bool TryScalarFp(uint insn)
    {
        // Every scalar FP group: M (31) = 0 except the conversions' sf, bit 30 = 0, S (29) = 0, bits 28:24 = 11110 or 11111.
        if ((insn & 0xFF00_0000) == 0x1F00_0000)
            return FpGroup(insn, (insn >> 22) & 3, FpDataProcessing3);
        // Conversion between floating-point and fixed-point: sf 0 0 11110 ftype 0 rmode opcode scale Rn Rd (A64Interpreter.FpConvert.cs).
        if ((insn & 0x7F20_0000) == 0x1E00_0000) return FpFixedConversion(insn);
        if ((insn & 0x7F20_0000) != 0x1E20_0000) return false;
        uint ftype = (insn >> 22) & 3;
        // Conversion between floating-point and integer: sf 0 0 11110 ftype 1 rmode opcode 000000 Rn Rd.
        if ((insn & 0x0000_FC00) == 0) return FpIntegerConversion(insn, ftype);
        if ((insn >> 31) != 0) return false;
        // FP data-processing (1 source): 000 11110 ftype 1 opcode(6) 10000 Rn Rd.
        if ((insn & 0x7C00) == 0x4000) return FpHalfConvert(insn) || FpGroup(insn, ftype, FpDataProcessing1);
        // FP compare: 000 11110 ftype 1 Rm 00 1000 Rn opcode2 (bits 2:0 = 000).
        if ((insn & 0xFC07) == 0x2000) return FpGroup(insn, ftype, FpCompare);
        // FP immediate: 000 11110 ftype 1 imm8 100 00000 Rd.
        if ((insn & 0x1FE0) == 0x1000) return FpGroup(insn, ftype, FpImmediate);
        return ((insn >> 10) & 3) switch
        {
            1 => FpGroup(insn, ftype, FpConditionalCompare),  // 000 11110 ftype 1 Rm cond 01 Rn op nzcv
            2 => FpGroup(insn, ftype, FpDataProcessing2),     // 000 11110 ftype 1 Rm opcode 10 Rn Rd
            3 => FpGroup(insn, ftype, FpConditionalSelect),   // 000 11110 ftype 1 Rm cond 11 Rn Rd
            _ => false,
        };
    }

    /// <summary>
    /// ftype 00 (single), 01 (double) or 11 (half: UNDEFINED without FEAT_FP16, HaveFP16Ext()) runs
    /// <paramref name="body"/> with the element size in bytes (4, 8, 2); 10 is unallocated.
    /// </summary>
    private bool FpGroup(uint insn, uint ftype, Func<uint, int, bool> body)
    {
        if (ftype == 2 || (ftype == 3 && !Fp16))
        {
            Undefined();
            return true;
        }
        return body(insn, ftype switch { 0 => 4, 1 => 8, _ => 2 });
    }

    private bool FpDataProcessing1(uint insn, int esz)
    {
        uint opcode = (insn >> 15) & 63;
        bool dbl = esz == 8;
        // Half: FCVT to half (7) and opcodes 6, 13 and ≥ 16 (FRINT32/64 are single/double only) are unallocated; FCVT
        // to single/double (4, 5) is FpHalfConvert's.
        if (esz == 2 && opcode is 6 or 7 or 13 or > 15) return UndefinedTrue();
        // FCVT to the same type is unallocated, to half precision (7) outside the subset: both refused; 13 is unallocated;
        // 16–19 (FRINT32/64) never get here (TryFpExtensions), above them unallocated.
        if (opcode is 6 or 7 or 13 or > 15 || (opcode == 4 && esz != 8) || (opcode == 5 && esz != 4)) return false;
        if (FpTrapped()) return true;
        int rd = (int)(insn & 31);
        ulong a = FpRegE((int)((insn >> 5) & 31), esz);
        ulong sign = SignBitE(esz);
        int width = 8 * esz;
        switch (opcode)
        {
            case 0: SetVScalar(rd, a, width); break;                // FMOV (register)
            case 1: SetVScalar(rd, a & ~sign, width); break;        // FABS: FPAbs, no NaN processing
            case 2: SetVScalar(rd, a ^ sign, width); break;         // FNEG: FPNeg
            case 3: SetVScalar(rd, FpSqrtE(a, esz), width); break;  // FSQRT
            case 4: SetVScalar(rd, FpConvertToSingle(a), 32); break;   // FCVT Sd, Dn
            case 5: SetVScalar(rd, FpConvertToDouble(a), 64); break;   // FCVT Dd, Sn
            default: SetVScalar(rd, FpRoundIntE(a, esz, opcode), width); break; // FRINTN/P/M/Z/A/X/I
        }
        Next();
        return true;
    }

    private bool FpDataProcessing2(uint insn, int esz)
    {
        uint opcode = (insn >> 12) & 15;
        if (opcode > 8) return esz == 2 ? UndefinedTrue() : false;
        if (FpTrapped()) return true;
        ulong a = FpRegE((int)((insn >> 5) & 31), esz), b = FpRegE((int)((insn >> 16) & 31), esz);
        ulong result = opcode switch
        {
            0 => FpArithE(FpOp.Mul, a, b, esz),
            1 => FpArithE(FpOp.Div, a, b, esz),
            2 => FpArithE(FpOp.Add, a, b, esz),
            3 => FpArithE(FpOp.Sub, a, b, esz),
            4 => FpMinMaxE(a, b, esz, max: true, numeric: false),
            5 => FpMinMaxE(a, b, esz, max: false, numeric: false),
            6 => FpMinMaxE(a, b, esz, max: true, numeric: true),
            7 => FpMinMaxE(a, b, esz, max: false, numeric: true),
            _ => FpArithE(FpOp.Mul, a, b, esz) ^ SignBitE(esz), // FNMUL: FPNeg(FPMul(…))
        };
        SetVScalar((int)(insn & 31), result, 8 * esz);
        Next();
        return true;
    }

    /// <summary>FMADD (o1:o0 00), FMSUB (01: op1 negated), FNMADD (10: both negated), FNMSUB (11: addend negated).</summary>
    private bool FpDataProcessing3(uint insn, int esz)
    {
        if (FpTrapped()) return true;
        bool o1 = ((insn >> 21) & 1) != 0, o0 = ((insn >> 15) & 1) != 0;
        ulong sign = SignBitE(esz);
        ulong n = FpRegE((int)((insn >> 5) & 31), esz), m = FpRegE((int)((insn >> 16) & 31), esz);
        ulong addend = FpRegE((int)((insn >> 10) & 31), esz);
        if (o0 != o1) n ^= sign;
        if (o1) addend ^= sign;
        SetVScalar((int)(insn & 31), FpMulAddE(addend, n, m, esz), 8 * esz);
        Next();
        return true;
    }

    /// <summary>FCMP/FCMPE (with Rm or #0.0): PSTATE.NZCV = FPCompare; FCMPE signals IOC for a quiet NaN too.</summary>
    private bool FpCompare(uint insn, int esz)
    {
        if (FpTrapped()) return true;
        uint opcode2 = insn & 31;
        ulong a = FpRegE((int)((insn >> 5) & 31), esz);
        ulong b = (opcode2 & 8) != 0 ? 0 : FpRegE((int)((insn >> 16) & 31), esz);
        SetNzcv(FpCompareFlagsE(a, b, esz, signal: (opcode2 & 16) != 0));
        Next();
        return true;
    }

    /// <summary>FCCMP/FCCMPE: NZCV = FPCompare when the condition holds, else the immediate nzcv.</summary>
    private bool FpConditionalCompare(uint insn, int esz)
    {
        if (FpTrapped()) return true;
        ulong a = FpRegE((int)((insn >> 5) & 31), esz), b = FpRegE((int)((insn >> 16) & 31), esz);
        uint flags = ConditionHolds((insn >> 12) & 15) ? FpCompareFlagsE(a, b, esz, signal: ((insn >> 4) & 1) != 0) : insn & 15;
        SetNzcv(flags);
        Next();
        return true;
    }

    private bool FpConditionalSelect(uint insn, int esz)
    {
        if (FpTrapped()) return true;
        int n = ConditionHolds((insn >> 12) & 15) ? (int)((insn >> 5) & 31) : (int)((insn >> 16) & 31);
        SetVScalar((int)(insn & 31), FpRegE(n, esz), 8 * esz);
        Next();
        return true;
    }

    /// <summary>FMOV (scalar, immediate): VFPExpandImm(imm8).</summary>
    private bool FpImmediate(uint insn, int esz)
    {
        if ((insn & 0x3E0) != 0)
        {
            Undefined();
            return true;
        }
        if (FpTrapped()) return true;
        uint imm8 = (insn >> 13) & 0xff;
        SetVScalar((int)(insn & 31), esz == 2 ? VfpExpandImmHalf(imm8) : VfpExpandImm(imm8, esz == 8), 8 * esz);
        Next();
        return true;
    }

    /// <summary>
    /// VFPExpandImm: sign = imm8&lt;7&gt;, exp = NOT(imm8&lt;6&gt;):Replicate(imm8&lt;6&gt;, E-3):imm8&lt;5:4&gt;,
    /// frac = imm8&lt;3:0&gt;:Zeros(F-4).
    /// </summary>
    internal static ulong VfpExpandImm(uint imm8, bool dbl)
    {
        ulong sign = (imm8 >> 7) & 1, b6 = (imm8 >> 6) & 1, e54 = (imm8 >> 4) & 3, frac = imm8 & 15;
        if (dbl)
        {
            ulong exp = ((b6 ^ 1) << 10) | (b6 != 0 ? 0xFFUL << 2 : 0) | e54;
            return (sign << 63) | (exp << 52) | (frac << 48);
        }
        ulong exp32 = ((b6 ^ 1) << 7) | (b6 != 0 ? 0x1FUL << 2 : 0) | e54;
        return (sign << 31) | (exp32 << 23) | (frac << 19);
    }

    /// <summary>
    /// sf 0 0 11110 ftype 1 rmode opcode 000000 Rn Rd: FCVT{N,P,M,Z}{S,U} (rmode 00..11, opcode 000/001), FCVTA{S,U}
    /// (rmode 00, opcode 100/101), SCVTF/UCVTF (rmode 00, opcode 010/011), FMOV general (opcode 110 to, 111 from a
    /// general register; rmode 01 with ftype 10 and sf 1 is the top half, V.D[1]). ftype 11 (half, FEAT_FP16): the
    /// same conversions from/to Hn, and FMOV Wd/Xd, Hn (zero-extended) and FMOV Hd, Wn/Xn (the low 16 bits).
    /// </summary>
    private bool FpIntegerConversion(uint insn, uint ftype)
    {
        bool sf = (insn >> 31) != 0;
        uint rmode = (insn >> 19) & 3, opcode = (insn >> 16) & 7;
        int rd = (int)(insn & 31), rn = (int)((insn >> 5) & 31);
        bool half = ftype == 3;
        if (half && !Fp16) return UndefinedTrue();
        if (opcode >= 6)
        {
            bool top = rmode == 1 && ftype == 2 && sf;
            bool plain = rmode == 0 && ((!sf && ftype == 0) || (sf && ftype == 1));
            if (half) return rmode != 0 ? UndefinedTrue() : FpMoveHalf(opcode == 6, rd, rn);
            if (!top && !plain) return false; // unallocated: refused
            if (FpTrapped()) return true;
            if (opcode == 6) cpu.SetReg(rd, top ? (ulong)(cpu.Vregs[rn] >> 64) : sf ? (ulong)cpu.Vregs[rn] : (uint)cpu.Vregs[rn]);
            else if (top) SetV(rd, WithElem(cpu.Vregs[rd], 1, 64, cpu.Reg(rn))); // FMOV Vd.D[1], Xn keeps D[0]
            else SetVScalar(rd, cpu.Reg(rn), sf ? 64 : 32);
            Next();
            return true;
        }
        if (ftype == 2) return UndefinedTrue();
        int esz = ftype switch { 0 => 4, 1 => 8, _ => 2 };
        bool toInt = opcode is 0 or 1 or 4 or 5;
        if (!toInt && rmode != 0) return UndefinedTrue();
        if (opcode >= 4 && rmode != 0) return UndefinedTrue();
        if (FpTrapped()) return true;
        bool unsigned = (opcode & 1) != 0;
        if (toInt)
        {
            var rounding = opcode >= 4 ? MidpointRounding.AwayFromZero : rmode switch
            {
                0 => MidpointRounding.ToEven,
                1 => MidpointRounding.ToPositiveInfinity,
                2 => MidpointRounding.ToNegativeInfinity,
                _ => MidpointRounding.ToZero,
            };
            cpu.SetReg(rd, FpToFixedE(FpRegE(rn, esz), esz, 0, sf ? 64 : 32, unsigned, rounding));
        }
        else
        {
            ulong x = cpu.Reg(rn);
            Int128 value = sf ? (unsigned ? x : (Int128)(long)x) : (unsigned ? (uint)x : (Int128)(int)x);
            SetVScalar(rd, FixedToFpE(value, esz, 0), 8 * esz);
        }
        Next();
        return true;
    }

    /// <summary>FMOV Wd/Xd, Hn (<paramref name="toGeneral"/>: Hn zero-extended) and FMOV Hd, Wn/Xn (the low 16 bits; the rest of Vd zeroed).</summary>
    private bool FpMoveHalf(bool toGeneral, int rd, int rn)
    {
        if (FpTrapped()) return true;
        if (toGeneral) cpu.SetReg(rd, (ushort)cpu.Vregs[rn]);
        else SetVScalar(rd, cpu.Reg(rn), 16);
        Next();
        return true;
    }

    private void SetNzcv(uint flags) => cpu.Pstate = (cpu.Pstate & ~0xF000_0000UL) | ((ulong)flags << 28);

    private ulong FpReg(int n, bool dbl) => dbl ? (ulong)cpu.Vregs[n] : (uint)cpu.Vregs[n];

    private void FpFlag(uint flags) => cpu.Fpsr |= flags;
}
