// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The base (ARMv8.0) Advanced SIMD saturating integer instructions the earlier decoders leave (Arm ARM DDI 0487 C7.2;
/// shared pseudocode SatQ, SignedSatQ, UnsignedSatQ: a saturated result sets FPSR.QC through <see cref="Saturate"/>),
/// vector and scalar: three same SQSHL/UQSHL, SQRSHL/UQRSHL, SRSHL/URSHL (register) and SQDMULH/SQRDMULH;
/// two-register miscellaneous SUQADD/USQADD, SQABS/SQNEG and the scalar SQXTN/UQXTN/SQXTUN (the vector ones are in
/// A64Interpreter.SimdInteger.cs); three different SQDMULL/SQDMLAL/SQDMLSL (and "2"); by element SQDMULH/SQRDMULH,
/// SQDMULL/SQDMLAL/SQDMLSL (and "2"); the shifts by immediate SQSHL/UQSHL/SQSHLU and the narrowing SQSHRN/SQRSHRN/
/// UQSHRN/UQRSHRN/SQSHRUN/SQRSHRUN (and "2") in A64Interpreter.SimdSaturatingShift.cs. <see cref="TrySimdFp"/> calls
/// <see cref="TrySimdSaturating"/> after <see cref="TrySimdData"/>, whose decoders return false for these opcodes.
/// Unallocated sizes are UNDEFINED before the CPACR_EL1.FPEN check (AArch64.CheckFPAdvSIMDEnabled).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// The saturating groups: vector (0 Q U 0111x …, bit 31 = 0) or scalar (01 U 1111x …: bit 28 = 1 needs bit 30 = 1,
    /// the scalar FP space 0 0 0 11110 is not SIMD). False: not one of the encodings here.
    /// </summary>
    private bool TrySimdSaturating(uint insn)
    {
        bool scalar = ((insn >> 28) & 1) != 0;
        if ((insn >> 31) != 0 || (scalar && ((insn >> 30) & 1) == 0)) return false;
        // Three same: x U x1110 size 1 Rm opcode 1 Rn Rd.
        if ((insn & 0x0F20_0400) == 0x0E20_0400) return SatThreeSame(insn, scalar);
        // Two-register miscellaneous: x U x1110 size 10000 opcode 10 Rn Rd.
        if ((insn & 0x0F3E_0C00) == 0x0E20_0800) return SatTwoRegisterMisc(insn, scalar);
        // Three different: x U x1110 size 1 Rm opcode 00 Rn Rd.
        if ((insn & 0x0F20_0C00) == 0x0E20_0000) return SatThreeDifferent(insn, scalar);
        // Shift by immediate: x U x11110 immh immb opcode 1 Rn Rd.
        if ((insn & 0x0F80_0400) == 0x0F00_0400) return SatShiftImmediate(insn, scalar);
        // (Scalar) x indexed element: x U x1111 size L M Rm opcode H 0 Rn Rd.
        if ((insn & 0x0F00_0400) == 0x0F00_0000) return SatByElement(insn, scalar);
        return false;
    }

    /// <summary>
    /// Three same opcodes 01001 SQSHL/UQSHL, 01010 SRSHL/URSHL, 01011 SQRSHL/UQRSHL (register; size 11 with Q = 0 is
    /// unallocated, the scalar SRSHL/URSHL exist on Dd only) and 10110 SQDMULH (U 0) / SQRDMULH (U 1) on H and S lanes.
    /// </summary>
    private bool SatThreeSame(uint insn, bool scalar)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 11) & 31;
        bool? valid = opcode switch
        {
            9 or 11 => !(size == 3 && !q),                    // scalar: Q (bit 30) is 1, every size
            10 => scalar ? size == 3 : !(size == 3 && !q),
            22 => size is 1 or 2,
            _ => null,
        };
        if (valid is null) return false;
        if (valid == false) return UndefinedTrue();
        if (FpTrapped()) return true;
        if (opcode == 22)
        {
            SatDoublingHigh(insn, round: u, index: -1, rm: (int)((insn >> 16) & 31));
            return true;
        }
        int esize = 8 << size, elements = scalar ? 1 : (q ? 128 : 64) / esize, rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], result = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong r = ShiftByRegisterQ(Elem(n, i, esize), (sbyte)Elem(m, i, esize), esize, u, round: opcode != 9, saturate: opcode != 10);
            result = WithElem(result, i, esize, r);
        }
        SetV(rd, q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>
    /// SQSHL/UQSHL, SRSHL/URSHL, SQRSHL/UQRSHL (register) on one lane (C7.2, their shared Operation): shift =
    /// SInt(Vm lane&lt;7:0&gt;); round_const = 1 &lt;&lt; (−shift − 1) for a rounding right shift, else 0; element =
    /// (Int(Vn lane, unsigned) + round_const) &lt;&lt; shift (an arithmetic right shift when negative); then SatQ
    /// (FPSR.QC) or, for SRSHL/URSHL, the low esize bits.
    /// </summary>
    private ulong ShiftByRegisterQ(ulong e, int shift, int esize, bool unsigned, bool round, bool saturate)
    {
        Int128 v = Lane(e, esize, unsigned);
        if (shift >= 0)
        {
            // A nonzero lane shifted by esize or more is outside every esize-bit range and its low esize bits are 0:
            // ±2^esize stands for it (the exact value would not fit 128 bits).
            v = v == 0 ? 0 : shift >= esize ? Int128.Sign(v) * (Int128.One << esize) : v << shift;
        }
        else
        {
            // Right shifts beyond esize + 1 give what esize + 1 gives: 0, or −1 for a negative unrounded lane.
            int right = Math.Min(-shift, esize + 1);
            v = (v + (round ? Int128.One << (right - 1) : 0)) >> right;
        }
        return saturate ? Saturate(v, esize, unsigned) : (ulong)v & LaneMask(esize);
    }

    /// <summary>
    /// Two-register miscellaneous opcodes 00011 SUQADD (U 0) / USQADD (U 1) and 00111 SQABS / SQNEG (size 11 with
    /// Q = 0 unallocated), and the scalar 10010 SQXTUN (U 1), 10100 SQXTN / UQXTN (size 11 unallocated).
    /// </summary>
    private bool SatTwoRegisterMisc(uint insn, bool scalar)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 12) & 31;
        bool narrow = scalar && (opcode == 20 || (opcode == 18 && u));
        if (!narrow && opcode is not (3 or 7)) return false;
        if (narrow ? size == 3 : size == 3 && !q) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = 8 << size, rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], d = cpu.Vregs[rd], result = 0;
        if (narrow)
        {
            // SQXTN (signed to signed), UQXTN (unsigned to unsigned), SQXTUN (signed to unsigned): Bd/Hd/Sd from Hn/Sn/Dn.
            SetV(rd, NarrowSat(Elem(n, 0, 2 * esize), esize, srcUnsigned: u && opcode == 20, dstUnsigned: u, shift: 0, round: false));
            Next();
            return true;
        }
        for (int i = 0; i < (scalar ? esize : q ? 128 : 64) / esize; i++)
        {
            ulong e = Elem(n, i, esize), acc = Elem(d, i, esize);
            Int128 value = (opcode, u) switch
            {
                (3, false) => (Int128)e + SignExtend(acc, esize),  // SUQADD: SignedSatQ(UInt(Vn) + SInt(Vd))
                (3, true) => SignExtend(e, esize) + (Int128)acc,   // USQADD: UnsignedSatQ(SInt(Vn) + UInt(Vd))
                (7, false) => Int128.Abs(SignExtend(e, esize)),    // SQABS
                _ => -(Int128)SignExtend(e, esize),                // SQNEG
            };
            result = WithElem(result, i, esize, Saturate(value, esize, unsigned: opcode == 3 && u));
        }
        SetV(rd, q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>
    /// Three different, U 0: opcode 1001 SQDMLAL, 1011 SQDMLSL, 1101 SQDMULL (vector, the "2" forms on the upper
    /// halves; scalar Sd from Hn, Hm or Dd from Sn, Sm); size 00 and 11 are unallocated.
    /// </summary>
    private bool SatThreeDifferent(uint insn, bool scalar)
    {
        uint opcode = (insn >> 12) & 15;
        if (((insn >> 29) & 1) != 0 || opcode is not (9 or 11 or 13)) return false;
        if (((insn >> 22) & 3) is 0 or 3) return UndefinedTrue();
        if (FpTrapped()) return true;
        SatDoublingLong(insn, scalar, accumulate: opcode == 13 ? 0 : opcode == 9 ? 1 : -1, index: -1, rm: (int)((insn >> 16) & 31));
        return true;
    }

    /// <summary>
    /// (Scalar) x indexed element, U 0: opcode 0011 SQDMLAL, 0111 SQDMLSL, 1011 SQDMULL (and "2"), 1100 SQDMULH, 1101
    /// SQRDMULH; size 01 (H: index H:L:M, Rm in V0–V15) or 10 (S: index H:L, Vm = M:Rm), 00 and 11 unallocated.
    /// </summary>
    private bool SatByElement(uint insn, bool scalar)
    {
        uint opcode = (insn >> 12) & 15;
        if (((insn >> 29) & 1) != 0 || opcode is not (3 or 7 or 11 or 12 or 13)) return false;
        int size = (int)((insn >> 22) & 3);
        if (size is 0 or 3) return UndefinedTrue();
        if (FpTrapped()) return true;
        int h = (int)((insn >> 11) & 1), l = (int)((insn >> 21) & 1), mBit = (int)((insn >> 20) & 1);
        int index = size == 1 ? (h << 2) | (l << 1) | mBit : (h << 1) | l;
        int rm = (int)((insn >> 16) & (size == 1 ? 15u : 31u));
        if (opcode >= 12) SatDoublingHigh(insn, round: opcode == 13, index, rm);
        else SatDoublingLong(insn, scalar, accumulate: opcode == 11 ? 0 : opcode == 3 ? 1 : -1, index, rm);
        return true;
    }

    /// <summary>
    /// SQDMULH/SQRDMULH (vector, scalar, by element): Vd lane = SignedSatQ((2 × a × b + round_const) &gt;&gt; esize),
    /// round_const = 1 &lt;&lt; (esize − 1) for SQRDMULH (C7.2); b is Vm's lane, or Vm[<paramref name="index"/>] when
    /// ≥ 0. Only −2^(esize−1) squared saturates.
    /// </summary>
    private void SatDoublingHigh(uint insn, bool round, int index, int rm)
    {
        bool q = ((insn >> 30) & 1) != 0, scalar = ((insn >> 28) & 1) != 0;
        int esize = 8 << (int)((insn >> 22) & 3), rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[rm], result = 0;
        for (int i = 0; i < (scalar ? esize : q ? 128 : 64) / esize; i++)
        {
            Int128 a = SignExtend(Elem(n, i, esize), esize), b = SignExtend(Elem(m, index < 0 ? i : index, esize), esize);
            Int128 product = 2 * a * b + (round ? Int128.One << (esize - 1) : 0);
            result = WithElem(result, i, esize, Saturate(product >> esize, esize, unsigned: false));
        }
        SetV(rd, q ? result : result & ulong.MaxValue);
        Next();
    }

    /// <summary>
    /// SQDMULL/SQDMLAL/SQDMLSL (vector, scalar, by element; C7.2): product = SignedSatQ(2 × a × b, 2 × esize); the
    /// accumulating forms then SignedSatQ(Vd lane ± product, 2 × esize), FPSR.QC when either saturated. The vector "2"
    /// forms (Q = 1) take a from the upper half of Vn (and b from that of Vm when not indexed); the scalar forms one lane.
    /// </summary>
    private void SatDoublingLong(uint insn, bool scalar, int accumulate, int index, int rm)
    {
        bool upper = !scalar && ((insn >> 30) & 1) != 0;
        int esize = 8 << (int)((insn >> 22) & 3), wide = 2 * esize, rd = (int)(insn & 31);
        int elements = scalar ? 1 : 64 / esize, part = upper ? elements : 0;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[rm], d = cpu.Vregs[rd], result = 0;
        for (int i = 0; i < elements; i++)
        {
            Int128 a = SignExtend(Elem(n, part + i, esize), esize);
            Int128 b = SignExtend(Elem(m, index < 0 ? part + i : index, esize), esize);
            ulong product = Saturate(2 * a * b, wide, unsigned: false);
            ulong r = accumulate == 0
                ? product
                : Saturate(SignExtend(Elem(d, i, wide), wide) + accumulate * (Int128)SignExtend(product, wide), wide, unsigned: false);
            result = WithElem(result, i, wide, r);
        }
        SetV(rd, result);
        Next();
    }
}
