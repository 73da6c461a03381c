// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Scalar floating point, single (ftype 00) and double (01) precision (Arm ARM C7.2 and the shared pseudocode
/// FPAdd/FPSub/FPMul/FPDiv/FPSqrt/FPMulAdd/FPCompare/FPToFixed/FixedToFP/FPConvert/FPRoundBase/FPProcessNaNs):
/// FMOV (register, general, immediate), FABS, FNEG, FSQRT, FCVT (S↔D), FADD, FSUB, FMUL, FNMUL, FDIV, FMAX, FMIN,
/// FMAXNM, FMINNM, FMADD, FMSUB, FNMADD, FNMSUB, FCMP, FCMPE, FCCMP, FCCMPE, FCSEL, SCVTF, UCVTF and
/// FCVT{N,P,M,Z,A}{S,U} (integer; the fixed-point forms and FCVT to/from half precision are in A64Interpreter.FpConvert.cs),
/// FRINT{N,P,M,Z,A,X,I}. Other half-precision (ftype 11) arithmetic stops as unsupported.
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

    /// <summary>ftype 00 (single) or 01 (double) runs <paramref name="body"/> after the FPEN check; 10 is unallocated, 11 (half) unsupported.</summary>
    private bool FpGroup(uint insn, uint ftype, Func<uint, bool, bool> body)
    {
        if (ftype == 2)
        {
            Undefined();
            return true;
        }
        if (ftype == 3) return false;
        return body(insn, ftype == 1);
    }

    private bool FpDataProcessing1(uint insn, bool dbl)
    {
        uint opcode = (insn >> 15) & 63;
        // FCVT to the same type is unallocated, to half precision (7) outside the subset: both refused; 13 is unallocated.
        if (opcode is 6 or 7 or 13 or > 15 || (opcode == 4 && !dbl) || (opcode == 5 && dbl)) return false;
        if (FpTrapped()) return true;
        int rd = (int)(insn & 31);
        ulong a = FpReg((int)((insn >> 5) & 31), dbl);
        ulong sign = dbl ? 1UL << 63 : 1UL << 31;
        int width = dbl ? 64 : 32;
        switch (opcode)
        {
            case 0: SetVScalar(rd, a, width); break;              // FMOV (register)
            case 1: SetVScalar(rd, a & ~sign, width); break;      // FABS: FPAbs, no NaN processing
            case 2: SetVScalar(rd, a ^ sign, width); break;       // FNEG: FPNeg
            case 3: SetVScalar(rd, FpSqrt(a, dbl), width); break; // FSQRT
            case 4: SetVScalar(rd, FpConvertToSingle(a), 32); break;   // FCVT Sd, Dn
            case 5: SetVScalar(rd, FpConvertToDouble(a), 64); break;   // FCVT Dd, Sn
            default: SetVScalar(rd, FpRoundInt(a, dbl, opcode), width); break; // FRINTN/P/M/Z/A/X/I
        }
        Next();
        return true;
    }

    private bool FpDataProcessing2(uint insn, bool dbl)
    {
        uint opcode = (insn >> 12) & 15;
        if (opcode > 8) return false;
        if (FpTrapped()) return true;
        ulong a = FpReg((int)((insn >> 5) & 31), dbl), b = FpReg((int)((insn >> 16) & 31), dbl);
        ulong result = opcode switch
        {
            0 => FpArith(FpOp.Mul, a, b, dbl),
            1 => FpArith(FpOp.Div, a, b, dbl),
            2 => FpArith(FpOp.Add, a, b, dbl),
            3 => FpArith(FpOp.Sub, a, b, dbl),
            4 => FpMinMax(a, b, dbl, max: true, numeric: false),
            5 => FpMinMax(a, b, dbl, max: false, numeric: false),
            6 => FpMinMax(a, b, dbl, max: true, numeric: true),
            7 => FpMinMax(a, b, dbl, max: false, numeric: true),
            _ => FpArith(FpOp.Mul, a, b, dbl) ^ (dbl ? 1UL << 63 : 1UL << 31), // FNMUL: FPNeg(FPMul(…))
        };
        SetVScalar((int)(insn & 31), result, dbl ? 64 : 32);
        Next();
        return true;
    }

    /// <summary>FMADD (o1:o0 00), FMSUB (01: op1 negated), FNMADD (10: both negated), FNMSUB (11: addend negated).</summary>
    private bool FpDataProcessing3(uint insn, bool dbl)
    {
        if (FpTrapped()) return true;
        bool o1 = ((insn >> 21) & 1) != 0, o0 = ((insn >> 15) & 1) != 0;
        ulong sign = dbl ? 1UL << 63 : 1UL << 31;
        ulong n = FpReg((int)((insn >> 5) & 31), dbl), m = FpReg((int)((insn >> 16) & 31), dbl);
        ulong addend = FpReg((int)((insn >> 10) & 31), dbl);
        if (o0 != o1) n ^= sign;
        if (o1) addend ^= sign;
        SetVScalar((int)(insn & 31), FpMulAdd(addend, n, m, dbl), dbl ? 64 : 32);
        Next();
        return true;
    }

    /// <summary>FCMP/FCMPE (with Rm or #0.0): PSTATE.NZCV = FPCompare; FCMPE signals IOC for a quiet NaN too.</summary>
    private bool FpCompare(uint insn, bool dbl)
    {
        if (FpTrapped()) return true;
        uint opcode2 = insn & 31;
        ulong a = FpReg((int)((insn >> 5) & 31), dbl);
        ulong b = (opcode2 & 8) != 0 ? 0 : FpReg((int)((insn >> 16) & 31), dbl);
        SetNzcv(FpCompareFlags(a, b, dbl, signalNans: (opcode2 & 16) != 0));
        Next();
        return true;
    }

    /// <summary>FCCMP/FCCMPE: NZCV = FPCompare when the condition holds, else the immediate nzcv.</summary>
    private bool FpConditionalCompare(uint insn, bool dbl)
    {
        if (FpTrapped()) return true;
        ulong a = FpReg((int)((insn >> 5) & 31), dbl), b = FpReg((int)((insn >> 16) & 31), dbl);
        uint flags = ConditionHolds((insn >> 12) & 15) ? FpCompareFlags(a, b, dbl, signalNans: ((insn >> 4) & 1) != 0) : insn & 15;
        SetNzcv(flags);
        Next();
        return true;
    }

    private bool FpConditionalSelect(uint insn, bool dbl)
    {
        if (FpTrapped()) return true;
        int n = ConditionHolds((insn >> 12) & 15) ? (int)((insn >> 5) & 31) : (int)((insn >> 16) & 31);
        SetVScalar((int)(insn & 31), FpReg(n, dbl), dbl ? 64 : 32);
        Next();
        return true;
    }

    /// <summary>FMOV (scalar, immediate): VFPExpandImm(imm8).</summary>
    private bool FpImmediate(uint insn, bool dbl)
    {
        if ((insn & 0x3E0) != 0)
        {
            Undefined();
            return true;
        }
        if (FpTrapped()) return true;
        SetVScalar((int)(insn & 31), VfpExpandImm((insn >> 13) & 0xff, dbl), dbl ? 64 : 32);
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
    /// general register; rmode 01 with ftype 10 and sf 1 is the top half, V.D[1]).
    /// </summary>
    private bool FpIntegerConversion(uint insn, uint ftype)
    {
        bool sf = (insn >> 31) != 0;
        uint rmode = (insn >> 19) & 3, opcode = (insn >> 16) & 7;
        int rd = (int)(insn & 31), rn = (int)((insn >> 5) & 31);
        if (opcode >= 6)
        {
            bool top = rmode == 1 && ftype == 2 && sf;
            bool plain = rmode == 0 && ((!sf && ftype == 0) || (sf && ftype == 1));
            if (!top && !plain) return false; // half precision, or unallocated: refused
            if (FpTrapped()) return true;
            if (opcode == 6) cpu.SetReg(rd, top ? (ulong)(cpu.Vregs[rn] >> 64) : sf ? (ulong)cpu.Vregs[rn] : (uint)cpu.Vregs[rn]);
            else if (top) SetV(rd, WithElem(cpu.Vregs[rd], 1, 64, cpu.Reg(rn))); // FMOV Vd.D[1], Xn keeps D[0]
            else SetVScalar(rd, cpu.Reg(rn), sf ? 64 : 32);
            Next();
            return true;
        }
        if (ftype > 1) return ftype == 2 ? UndefinedTrue() : false;
        bool dbl = ftype == 1;
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
            cpu.SetReg(rd, FpToInteger(FpReg(rn, dbl), dbl, sf, unsigned, rounding));
        }
        else
        {
            ulong x = cpu.Reg(rn);
            Int128 value = sf ? (unsigned ? x : (Int128)(long)x) : (unsigned ? (uint)x : (Int128)(int)x);
            SetVScalar(rd, FixedToFp(value, dbl), dbl ? 64 : 32);
        }
        Next();
        return true;
    }

    private void SetNzcv(uint flags) => cpu.Pstate = (cpu.Pstate & ~0xF000_0000UL) | ((ulong)flags << 28);

    private ulong FpReg(int n, bool dbl) => dbl ? (ulong)cpu.Vregs[n] : (uint)cpu.Vregs[n];

    private void FpFlag(uint flags) => cpu.Fpsr |= flags;
}
