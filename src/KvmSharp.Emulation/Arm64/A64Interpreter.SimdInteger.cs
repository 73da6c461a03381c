// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Advanced SIMD integer operations compilers emit beyond A64Interpreter.SimdData.cs (Arm ARM C7.2): three same
/// SHADD/UHADD, SRHADD/URHADD, SHSUB/UHSUB, SQADD/UQADD, SQSUB/UQSUB (saturation sets FPSR.QC), SSHL/USHL, SMAX/UMAX,
/// SMIN/UMIN, SABD/UABD, SABA/UABA, MLA/MLS, MUL, ADDP, SMAXP/UMAXP, SMINP/UMINP; two-register miscellaneous REV16/
/// REV32/REV64, SADDLP/UADDLP, SADALP/UADALP, CLS/CLZ, RBIT, ABS/NEG, XTN, SHLL; three different SADDL/UADDL, SADDW/UADDW,
/// SSUBL/USUBL, SSUBW/USUBW, SABAL/UABAL, SABDL/UABDL, SMLAL/UMLAL, SMLSL/UMLSL, SMULL/UMULL (and the "2" forms);
/// shift by immediate SSHR/USHR, SSRA/USRA, SRSHR/URSHR, SRSRA/URSRA, SRI, SHL, SLI, SHRN/RSHRN, SSHLL/USHLL
/// (UXTL/SXTL) and the fixed-point SCVTF/UCVTF/FCVTZS/FCVTZU (vector). SQXTN/UQXTN/SQXTUN (vector) are here; the
/// other saturating forms (SQDMULH, SQSHL, SQRSHRN…) are A64Interpreter.SimdSaturating.cs's and .SimdSaturatingShift.cs's,
/// PMUL/PMULL .SimdPolynomial.cs's, ADDHN/SUBHN/RADDHN/RSUBHN .SimdNarrowHigh.cs's, the by-element forms
/// .SimdElement.cs's.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>SatQ: <paramref name="value"/> clamped to the esize-bit range, setting FPSR.QC when it saturated.</summary>
    private ulong Saturate(Int128 value, int esize, bool unsigned)
    {
        Int128 min = unsigned ? 0 : -(Int128.One << (esize - 1));
        Int128 max = unsigned ? (Int128.One << esize) - 1 : (Int128.One << (esize - 1)) - 1;
        if (value < min || value > max)
        {
            cpu.Fpsr |= 1u << 27;
            value = value < min ? min : max;
        }
        return (ulong)value & LaneMask(esize);
    }

    private static Int128 Lane(ulong e, int esize, bool unsigned) => unsigned ? e : SignExtend(e, esize);

    /// <summary>Advanced SIMD three same, integer opcodes not in A64Interpreter.SimdData.cs.</summary>
    private bool SimdIntThreeSame(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 11) & 31;
        bool known = opcode switch
        {
            0 or 2 or 4 or 12 or 13 or 14 or 15 or 18 or 20 or 21 => size != 3,
            1 or 5 or 8 => !(size == 3 && !q),
            19 => !u && size != 3,
            23 => !u && !(size == 3 && !q),
            _ => false,
        };
        if (!known)
        {
            // Allocated but outside the subset, or reserved sizes: recognise the reserved sizes of the supported ones.
            bool reservedSize = (opcode is 0 or 2 or 4 or 12 or 13 or 14 or 15 or 18 or 20 or 21 && size == 3) ||
                                (opcode is 1 or 5 or 8 && size == 3 && !q) || (opcode == 23 && !u && size == 3 && !q) ||
                                (opcode == 19 && !u && size == 3);
            return reservedSize && UndefinedTrue();
        }
        if (FpTrapped()) return true;
        int esize = 8 << size, elements = (q ? 128 : 64) / esize, rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], d = cpu.Vregs[rd], result = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong ea, eb;
            if (opcode is 20 or 21 or 23)
            {
                int j = 2 * i; // pairwise over the concatenation Vm:Vn
                ea = j < elements ? Elem(n, j, esize) : Elem(m, j - elements, esize);
                eb = j + 1 < elements ? Elem(n, j + 1, esize) : Elem(m, j + 1 - elements, esize);
            }
            else
            {
                ea = Elem(n, i, esize);
                eb = Elem(m, i, esize);
            }
            Int128 a = Lane(ea, esize, u), b = Lane(eb, esize, u);
            Int128 absDiff = a > b ? a - b : b - a;
            ulong r = opcode switch
            {
                0 => (ulong)((a + b) >> 1),                                        // SHADD/UHADD
                2 => (ulong)((a + b + 1) >> 1),                                    // SRHADD/URHADD
                4 => (ulong)((a - b) >> 1),                                        // SHSUB/UHSUB
                1 => Saturate(a + b, esize, u),                                    // SQADD/UQADD
                5 => Saturate(a - b, esize, u),                                    // SQSUB/UQSUB
                8 => ShiftByRegister(ea, (sbyte)eb, esize, u),                      // SSHL/USHL
                12 or 20 => (ulong)(a > b ? a : b),                                 // SMAX/UMAX, SMAXP/UMAXP
                13 or 21 => (ulong)(a < b ? a : b),                                 // SMIN/UMIN, SMINP/UMINP
                14 => (ulong)absDiff,                                               // SABD/UABD
                15 => Elem(d, i, esize) + (ulong)absDiff,                          // SABA/UABA
                18 => u ? Elem(d, i, esize) - ea * eb : Elem(d, i, esize) + ea * eb, // MLS / MLA
                19 => ea * eb,                                                      // MUL
                _ => ea + eb,                                                       // ADDP
            };
            result = WithElem(result, i, esize, r);
        }
        SetV(rd, q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>SSHL/USHL: the signed shift amount is the low byte of the Vm lane; negative shifts right (arithmetic for SSHL).</summary>
    private static ulong ShiftByRegister(ulong e, int shift, int esize, bool unsigned)
    {
        if (shift >= 0) return shift >= esize ? 0 : e << shift;
        int right = -shift;
        if (unsigned) return right >= esize ? 0 : e >> right;
        return (ulong)(SignExtend(e, esize) >> Math.Min(right, 63));
    }

    /// <summary>Advanced SIMD two-register miscellaneous, integer opcodes not in A64Interpreter.SimdData.cs.</summary>
    private bool SimdIntTwoRegisterMisc(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 12) & 31;
        bool? valid = (opcode, u) switch
        {
            (0, _) => size < (u ? 2 : 3),           // REV64 (U 0), REV32 (U 1)
            (1, false) => size == 0,                // REV16
            (2, _) or (6, _) => size != 3,          // SADDLP/UADDLP, SADALP/UADALP
            (4, _) => size != 3,                    // CLS / CLZ
            (5, true) when size == 1 => true,       // RBIT
            (11, _) => !(size == 3 && !q),          // ABS / NEG
            (18, _) or (20, _) => size != 3,        // XTN / SQXTUN (U 1), SQXTN / UQXTN (and the "2" forms)
            (19, true) => size != 3,                // SHLL / SHLL2
            _ => null,
        };
        if (valid is null) return false;
        if (valid == false) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = 8 << size, rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], d = cpu.Vregs[rd], result = 0;
        if (opcode is 18 or 20)
        {
            // XTN: each 2 × esize lane of Vn truncated into the low (Q = 0, the top zeroed) or high half (XTN2) of Vd;
            // SQXTUN (signed source, unsigned result), SQXTN, UQXTN saturate (SatQ: FPSR.QC).
            for (int i = 0; i < 64 / esize; i++)
            {
                ulong e = Elem(n, i, 2 * esize);
                ulong r = (opcode, u) switch
                {
                    (18, false) => e,
                    (18, true) => Saturate(SignExtend(e, 2 * esize), esize, unsigned: true),
                    (20, false) => Saturate(SignExtend(e, 2 * esize), esize, unsigned: false),
                    _ => Saturate(e, esize, unsigned: true),
                };
                result = WithElem(result, i, esize, r);
            }
            SetV(rd, q ? (result << 64) | (ulong)d : result);
            Next();
            return true;
        }
        if (opcode == 19)
        {
            // SHLL/SHLL2 (Arm ARM C7.2 "SHLL, SHLL2": shift left long by element size): each esize lane of the low
            // (Q = 0) or high half (SHLL2) of Vn, shifted left by esize into a 2 × esize lane. gcc's vectoriser
            // emits it for (u16)byte << 8 (CompiledCorpusTests, sha256 at -O2/-O3).
            for (int i = 0; i < 64 / esize; i++)
                result = WithElem(result, i, 2 * esize, Elem(n, (q ? 64 / esize : 0) + i, esize) << esize);
            SetV(rd, result);
            Next();
            return true;
        }
        if (opcode is 2 or 6)
        {
            int wide = 2 * esize;
            for (int i = 0; i < (q ? 128 : 64) / wide; i++)
            {
                Int128 sum = Lane(Elem(n, 2 * i, esize), esize, u) + Lane(Elem(n, 2 * i + 1, esize), esize, u);
                ulong r = (ulong)sum + (opcode == 6 ? Elem(d, i, wide) : 0);
                result = WithElem(result, i, wide, r);
            }
            SetV(rd, q ? result : result & ulong.MaxValue);
            Next();
            return true;
        }
        if (opcode is 0 or 1)
        {
            // REV16/REV32/REV64: reverse the esize elements within each 16/32/64-bit container.
            int container = opcode == 1 ? 16 : u ? 32 : 64, per = container / esize;
            for (int i = 0; i < (q ? 128 : 64) / esize; i++)
                result = WithElem(result, i, esize, Elem(n, (i / per) * per + (per - 1 - i % per), esize));
            SetV(rd, q ? result : result & ulong.MaxValue);
            Next();
            return true;
        }
        for (int i = 0; i < (q ? 128 : 64) / esize; i++)
        {
            ulong e = Elem(n, i, esize);
            ulong r = opcode switch
            {
                4 when u => (ulong)(BitOperations.LeadingZeroCount(e) - (64 - esize)),                        // CLZ
                4 => (ulong)(BitOperations.LeadingZeroCount(SignExtend(e, esize) < 0 ? ~e & LaneMask(esize) : e) - (64 - esize) - 1), // CLS
                5 => (ulong)(ReverseBits(e) >> 56),                                                               // RBIT (bytes)
                _ => u ? 0 - e : (ulong)Int128.Abs(SignExtend(e, esize)),                                  // NEG / ABS
            };
            result = WithElem(result, i, esize, r);
        }
        SetV(rd, q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    private static ulong ReverseBits(ulong x)
    {
        ulong r = 0;
        for (int i = 0; i < 64; i++) r |= ((x >> i) & 1) << (63 - i);
        return r;
    }

    /// <summary>
    /// Advanced SIMD three different: 0 Q U 01110 size 1 Rm opcode 00 Rn Rd. The "2" forms (Q = 1) take the upper
    /// halves of the narrow operands. opcode 0000 xADDL, 0001 xADDW, 0010 xSUBL, 0011 xSUBW, 0101 xABAL, 0111 xABDL,
    /// 1000 xMLAL, 1010 xMLSL, 1100 xMULL; size 11 is unallocated.
    /// </summary>
    private bool SimdThreeDifferent(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 12) & 15;
        if (opcode is not (0 or 1 or 2 or 3 or 5 or 7 or 8 or 10 or 12)) return false;
        if (size == 3) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = 8 << size, wide = 2 * esize, rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], d = cpu.Vregs[rd], result = 0;
        ulong nHalf = q ? (ulong)(n >> 64) : (ulong)n, mHalf = q ? (ulong)(m >> 64) : (ulong)m;
        bool wideN = opcode is 1 or 3;
        for (int i = 0; i < 64 / esize; i++)
        {
            Int128 a = wideN ? Lane(Elem(n, i, wide), wide, u) : Lane(Elem(nHalf, i, esize), esize, u);
            Int128 b = Lane(Elem(mHalf, i, esize), esize, u);
            ulong acc = Elem(d, i, wide);
            Int128 absDiff = a > b ? a - b : b - a;
            ulong r = opcode switch
            {
                0 or 1 => (ulong)(a + b),
                2 or 3 => (ulong)(a - b),
                5 => acc + (ulong)absDiff,
                7 => (ulong)absDiff,
                8 => acc + (ulong)(a * b),
                10 => acc - (ulong)(a * b),
                _ => (ulong)(a * b),
            };
            result = WithElem(result, i, wide, r);
        }
        SetV(rd, result);
        Next();
        return true;
    }

    /// <summary>
    /// Advanced SIMD shift by immediate: 0 Q U 011110 immh immb opcode 1 Rn Rd (immh ≠ 0). esize = 8 &lt;&lt;
    /// HighestSetBit(immh); right shifts are 2 × esize − immh:immb, left shifts immh:immb − esize. immh&lt;3&gt; = 1
    /// with Q = 0 is unallocated, and for the narrowing/widening forms always.
    /// </summary>
    private bool SimdShiftImmediate(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        uint immh = (insn >> 19) & 15, immhb = (insn >> 16) & 127, opcode = (insn >> 11) & 31;
        bool supported = opcode switch
        {
            0 or 2 or 4 or 6 or 0x14 or 0x1C or 0x1F => true,
            8 => u,           // SRI
            0x0A => true,     // SHL / SLI
            0x10 or 0x11 => !u, // SHRN / RSHRN
            _ => false,
        };
        if (!supported) return false;
        int hsb = 31 - BitOperations.LeadingZeroCount(immh);
        int esize = 8 << hsb;
        bool narrowOrWide = opcode is 0x10 or 0x11 or 0x14;
        bool fixedPoint = opcode is 0x1C or 0x1F;
        // Advanced SIMD scalar shift by immediate (01 U 111110 …, bit 28 = 1): the integer shifts on Dd (immh<3> = 1),
        // the fixed-point conversions on Sd/Dd; the narrowing scalar forms are the saturating ones (not here).
        bool scalar = ((insn >> 28) & 1) != 0;
        if (scalar && narrowOrWide) return false;
        if (fixedPoint && esize < 32) return esize == 16 ? false : UndefinedTrue(); // FP16 forms; immh 0001 unallocated
        if (scalar && !fixedPoint && hsb != 3) return UndefinedTrue();
        if (!scalar && ((narrowOrWide && hsb == 3) || (!narrowOrWide && hsb == 3 && !q))) return UndefinedTrue();
        if (FpTrapped()) return true;
        int right = 2 * esize - (int)immhb, left = (int)immhb - esize;
        int rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], d = cpu.Vregs[rd], result = 0;
        if (opcode is 0x10 or 0x11)
        {
            // SHRN/RSHRN: 2 × esize source lanes shifted right (rounded), truncated into the low half or the high half (SHRN2).
            int wide = 2 * esize, shift = right;
            for (int i = 0; i < 64 / esize; i++)
            {
                UInt128 e = Elem(n, i, wide);
                if (opcode == 0x11) e += UInt128.One << (shift - 1);
                result = WithElem(result, i, esize, (ulong)(e >> shift));
            }
            SetV(rd, q ? (result << 64) | (ulong)d : result);
            Next();
            return true;
        }
        if (opcode == 0x14)
        {
            // SSHLL/USHLL (#0: SXTL/UXTL): the low (or, for the "2" form, high) esize lanes widened, then shifted left.
            ulong half = q ? (ulong)(n >> 64) : (ulong)n;
            for (int i = 0; i < 64 / esize; i++)
                result = WithElem(result, i, 2 * esize, (ulong)(Lane(Elem(half, i, esize), esize, u) << left));
            SetV(rd, result);
            Next();
            return true;
        }
        for (int i = 0; i < (scalar ? esize : q ? 128 : 64) / esize; i++)
        {
            ulong e = Elem(n, i, esize), acc = Elem(d, i, esize);
            ulong r = opcode switch
            {
                0 => ShiftRight(e, right, esize, u, round: false),
                2 => acc + ShiftRight(e, right, esize, u, round: false),
                4 => ShiftRight(e, right, esize, u, round: true),
                6 => acc + ShiftRight(e, right, esize, u, round: true),
                8 => right == esize ? acc : (acc & ~(LaneMask(esize) >> right)) | (e >> right),          // SRI
                0x0A when u => (acc & ((1UL << left) - 1)) | (e << left),                               // SLI
                0x0A => e << left,                                                                       // SHL
                0x1C => FixedToFpScaled(u ? e : (Int128)SignExtend(e, esize), esize == 64, right),       // SCVTF/UCVTF
                _ => FpToFixed(e, esize == 64, right, esize == 64, u, MidpointRounding.ToZero),          // FCVTZS/FCVTZU
            };
            result = WithElem(result, i, esize, r);
        }
        SetV(rd, scalar ? result & LaneMask(esize) : q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>SSHR/USHR/SRSHR/URSHR of one lane by 1..esize: an arithmetic (signed) or logical shift, rounded by adding 2^(shift−1) first.</summary>
    private static ulong ShiftRight(ulong e, int shift, int esize, bool unsigned, bool round)
    {
        Int128 value = Lane(e, esize, unsigned);
        if (round) value += Int128.One << (shift - 1);
        return (ulong)(value >> shift);
    }
}
