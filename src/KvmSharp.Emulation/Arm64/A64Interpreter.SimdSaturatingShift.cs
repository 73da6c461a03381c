// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The saturating Advanced SIMD (scalar) shifts by immediate (Arm ARM DDI 0487 C7.2), decoded from
/// <see cref="TrySimdSaturating"/> (A64Interpreter.SimdSaturating.cs): SQSHL/UQSHL (immediate), SQSHLU, and the
/// narrowing SQSHRN/SQRSHRN, UQSHRN/UQRSHRN, SQSHRUN/SQRSHRUN (and the "2" forms). The non-saturating shifts by
/// immediate are in A64Interpreter.SimdInteger.cs (SimdShiftImmediate, which returns false for these opcodes).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// 0 Q U 011110 immh immb opcode 1 Rn Rd, or the scalar 01 U 111110 …: opcode 01100 SQSHLU (U 1), 01110 SQSHL /
    /// UQSHL, 10000 SQSHRUN (U 1), 10001 SQRSHRUN (U 1), 10010 SQSHRN / UQSHRN, 10011 SQRSHRN / UQRSHRN. esize = 8 &lt;&lt;
    /// HighestSetBit(immh), the left shift immh:immb − esize, the narrowing right shift 2 × esize − immh:immb.
    /// Unallocated: the scalar immh 0000 (the vector one is the modified immediate group), immh&lt;3&gt; = 1 for the
    /// narrowing forms and for the vector left shifts with Q = 0.
    /// </summary>
    private bool SatShiftImmediate(uint insn, bool scalar)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        uint immh = (insn >> 19) & 15, immhb = (insn >> 16) & 127, opcode = (insn >> 11) & 31;
        bool narrow = opcode is 16 or 17 ? u : opcode is 18 or 19;
        bool left = opcode == 14 || (opcode == 12 && u);
        if (!narrow && !left) return false;
        if (immh == 0) return scalar && UndefinedTrue();
        int hsb = 31 - BitOperations.LeadingZeroCount(immh), esize = 8 << hsb, rd = (int)(insn & 31);
        if (hsb == 3 && (narrow || !q)) return UndefinedTrue(); // the scalar forms have Q (bit 30) = 1
        if (FpTrapped()) return true;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], d = cpu.Vregs[rd], result = 0;
        if (narrow)
        {
            // SQSHRN/SQRSHRN signed to signed, UQSHRN/UQRSHRN unsigned to unsigned, SQSHRUN/SQRSHRUN signed to
            // unsigned; the vector form writes the low half (upper zeroed) or, for "2", the upper half (lower kept).
            int shift = 2 * esize - (int)immhb;
            bool round = (opcode & 1) != 0, srcUnsigned = u && opcode >= 18;
            for (int i = 0; i < (scalar ? 1 : 64 / esize); i++)
                result = WithElem(result, i, esize, NarrowSat(Elem(n, i, 2 * esize), esize, srcUnsigned, dstUnsigned: u, shift, round));
            SetV(rd, !scalar && q ? (result << 64) | (ulong)d : result);
            Next();
            return true;
        }
        // SQSHL: SignedSatQ(SInt << shift); UQSHL: UnsignedSatQ(UInt << shift); SQSHLU: UnsignedSatQ(SInt << shift).
        int leftShift = (int)immhb - esize;
        for (int i = 0; i < (scalar ? 1 : (q ? 128 : 64) / esize); i++)
        {
            Int128 value = Lane(Elem(n, i, esize), esize, unsigned: u && opcode == 14) << leftShift;
            result = WithElem(result, i, esize, Saturate(value, esize, unsigned: u));
        }
        SetV(rd, q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>
    /// The saturating narrowing of one 2 × esize lane: SatQ((Int(lane, srcUnsigned) + round_const) &gt;&gt; shift,
    /// esize, dstUnsigned), round_const = 1 &lt;&lt; (shift − 1) when rounding (C7.2 SQSHRN, SQRSHRUN…; with shift 0,
    /// SQXTN/UQXTN/SQXTUN).
    /// </summary>
    private ulong NarrowSat(ulong e, int esize, bool srcUnsigned, bool dstUnsigned, int shift, bool round)
    {
        Int128 value = Lane(e, 2 * esize, srcUnsigned);
        if (round) value += Int128.One << (shift - 1);
        return Saturate(value >> shift, esize, dstUnsigned);
    }
}
