// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Advanced SIMD data processing, integer and bitwise (Arm ARM C7.2): MOVI/MVNI/ORR/BIC (vector, immediate) and FMOV
/// (vector, immediate) — AdvSIMDExpandImm; the "three same" AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF, ADD/SUB, CMEQ/CMTST/
/// CMGT/CMHI/CMGE/CMHS; the "two-register miscellaneous" CMEQ/CMGT/CMGE/CMLE/CMLT (zero), NOT, CNT; the "across lanes"
/// ADDV, SADDLV/UADDLV, SMAXV/UMAXV, SMINV/UMINV; the copies DUP
/// (element, general, scalar), INS (element, general), UMOV, SMOV; EXT; ZIP1/2, UZP1/2, TRN1/2. A 64-bit (Q = 0) form
/// zeroes bits 127:64. Floating-point vector arithmetic and the further integer groups are in A64Interpreter.SimdFp.cs
/// and A64Interpreter.SimdInteger.cs (chained after these decoders: each returns false for an opcode it does not own).
/// </summary>
internal sealed partial class A64Interpreter
{
    private bool TrySimdData(uint insn)
    {
        // Advanced SIMD modified immediate: 0 Q op 0111100000 a b c cmode o2 1 d e f g h Rd.
        if ((insn & 0x9FF8_0400) == 0x0F00_0400) return SimdModifiedImmediate(insn);
        // Advanced SIMD shift by immediate (immh ≠ 0): 0 Q U 011110 immh immb opcode 1 Rn Rd (A64Interpreter.SimdInteger.cs).
        if ((insn & 0x9F80_0400) == 0x0F00_0400) return SimdShiftImmediate(insn);
        // Advanced SIMD three different: 0 Q U 01110 size 1 Rm opcode 00 Rn Rd (A64Interpreter.SimdInteger.cs).
        if ((insn & 0x9F20_0C00) == 0x0E20_0000) return SimdThreeDifferent(insn);
        // Advanced SIMD scalar pairwise: 01 U 11110 size 11000 opcode 10 Rn Rd (A64Interpreter.SimdFp.cs).
        if ((insn & 0xDF3E_0C00) == 0x5E30_0800) return SimdScalarPairwise(insn);
        // Advanced SIMD scalar three same / two-register miscellaneous (FP) and scalar shift by immediate: the vector
        // decoders with bit 28 = 1 (01 U 11110 …, 01 U 111110 immh …).
        if ((insn & 0xDF20_0400) == 0x5E20_0400) return SimdFpThreeSame(insn) || SimdScalarIntThreeSame(insn);
        if ((insn & 0xDF3E_0C00) == 0x5E20_0800) return SimdFpTwoRegisterMisc(insn) || SimdScalarIntTwoRegisterMisc(insn);
        if ((insn & 0xDF80_0400) == 0x5F00_0400) return SimdShiftImmediate(insn);
        // Advanced SIMD (scalar) x indexed element: 0 Q U 01111 / 01 U 11111 size L M Rm opcode H 0 Rn Rd (A64Interpreter.SimdElement.cs).
        if ((insn & 0x9F00_0400) == 0x0F00_0000 || (insn & 0xDF00_0400) == 0x5F00_0000) return SimdByElement(insn);
        // Advanced SIMD three same: 0 Q U 01110 size 1 Rm opcode 1 Rn Rd.
        if ((insn & 0x9F20_0400) == 0x0E20_0400) return SimdThreeSame(insn) || SimdFpThreeSame(insn) || SimdIntThreeSame(insn);
        // Advanced SIMD two-register miscellaneous: 0 Q U 01110 size 10000 opcode 10 Rn Rd.
        if ((insn & 0x9F3E_0C00) == 0x0E20_0800) return SimdTwoRegisterMisc(insn) || SimdFpTwoRegisterMisc(insn) || SimdIntTwoRegisterMisc(insn);
        // Advanced SIMD across lanes: 0 Q U 01110 size 11000 opcode 10 Rn Rd.
        if ((insn & 0x9F3E_0C00) == 0x0E30_0800) return SimdAcrossLanes(insn) || SimdFpAcrossLanes(insn);
        // Advanced SIMD copy: 0 Q op 01110000 imm5 0 imm4 1 Rn Rd.
        if ((insn & 0x9FE0_8400) == 0x0E00_0400) return SimdCopy(insn);
        // Advanced SIMD scalar copy (DUP element, scalar): 01 0 11110000 imm5 0 0000 1 Rn Rd.
        if ((insn & 0xFFE0_FC00) == 0x5E00_0400) return SimdScalarDup(insn);
        // EXT: 0 Q 101110 00 0 Rm 0 imm4 0 Rn Rd.
        if ((insn & 0xBFE0_8400) == 0x2E00_0000) return SimdExt(insn);
        // Advanced SIMD table lookup (TBL/TBX): 0 Q 001110 000 Rm 0 len op 00 Rn Rd (A64Interpreter.SimdTable.cs).
        if ((insn & 0xBFE0_8C00) == 0x0E00_0000) return SimdTableLookup(insn);
        // Advanced SIMD permute: 0 Q 001110 size 0 Rm 0 opcode 10 Rn Rd.
        if ((insn & 0xBF20_8C00) == 0x0E00_0800) return SimdPermute(insn);
        return false;
    }

    /// <summary>
    /// MOVI, MVNI, ORR, BIC (vector, immediate) and FMOV (vector, immediate): AdvSIMDExpandImm(op, cmode, imm8).
    /// cmode 0xx0/10x0 MOVI (op 0) or MVNI (op 1), 0xx1/10x1 ORR/BIC, 110x MOVI/MVNI shifting ones, 1110 MOVI (8-bit
    /// with op 0, 64-bit byte mask with op 1), 1111 FMOV (single with op 0, double with op 1 and Q = 1).
    /// </summary>
    private bool SimdModifiedImmediate(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, op = ((insn >> 29) & 1) != 0;
        uint cmode = (insn >> 12) & 15, imm8 = ((insn >> 11) & 0xE0) | ((insn >> 5) & 0x1F);
        if (((insn >> 11) & 1) != 0) return false; // o2 = 1: FMOV (vector, immediate, half-precision)
        if (cmode == 15 && op && !q)
        {
            Undefined();
            return true;
        }
        if (FpTrapped()) return true;
        ulong imm = AdvSimdExpandImm(op, cmode, imm8);
        int rd = (int)(insn & 31);
        ulong low = (ulong)cpu.Vregs[rd], high = (ulong)(cpu.Vregs[rd] >> 64);
        bool logical = (cmode & 1) != 0 && cmode < 12; // ORR / BIC
        bool invert = op && cmode < 14;                 // MVNI, BIC
        if (logical)
        {
            low = invert ? low & ~imm : low | imm;
            high = invert ? high & ~imm : high | imm;
        }
        else
        {
            low = high = invert ? ~imm : imm;
        }
        SetV(rd, q ? ((UInt128)high << 64) | low : low);
        Next();
        return true;
    }

    /// <summary>AdvSIMDExpandImm (shared/functions/vector): the 64-bit pattern a modified immediate stands for.</summary>
    internal static ulong AdvSimdExpandImm(bool op, uint cmode, uint imm8)
    {
        ulong b = imm8;
        static ulong Rep32(ulong x) => x | (x << 32);
        static ulong Rep16(ulong x) => x * 0x0001_0001_0001_0001UL;
        switch (cmode >> 1)
        {
            case 0: return Rep32(b);
            case 1: return Rep32(b << 8);
            case 2: return Rep32(b << 16);
            case 3: return Rep32(b << 24);
            case 4: return Rep16(b);
            case 5: return Rep16(b << 8);
            case 6: return Rep32((cmode & 1) == 0 ? (b << 8) | 0xFF : (b << 16) | 0xFFFF);
        }
        if ((cmode & 1) == 0 && !op) return b * 0x0101_0101_0101_0101UL;
        if ((cmode & 1) == 0)
        {
            ulong mask = 0;
            for (int i = 0; i < 8; i++)
                if (((b >> i) & 1) != 0) mask |= 0xFFUL << (i * 8);
            return mask;
        }
        // a:NOT(b):Replicate(b, 5):c:d:e:f:g:h:Zeros(19), or for op 1 the double: a:NOT(b):Replicate(b, 8):cdefgh:Zeros(48).
        return op ? VfpExpandImm(imm8, dbl: true) : Rep32(VfpExpandImm(imm8, dbl: false));
    }

    private bool SimdThreeSame(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 11) & 31;
        int esize = 8 << size;
        // Logical (opcode 00011): size selects the operation, not an element size.
        bool logicalOp = opcode == 3;
        bool arith = opcode is 16 or 17 or 6 or 7;
        if (!logicalOp && !arith) return false;
        if (!logicalOp && size == 3 && !q)
        {
            Undefined();
            return true;
        }
        if (FpTrapped()) return true;
        int rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], d = cpu.Vregs[rd];
        UInt128 result;
        if (logicalOp)
        {
            result = (u, size) switch
            {
                (false, 0) => n & m,                       // AND
                (false, 1) => n & ~m,                      // BIC
                (false, 2) => n | m,                       // ORR (MOV when Rn == Rm)
                (false, _) => n | ~m,                      // ORN
                (true, 0) => n ^ m,                        // EOR
                (true, 1) => m ^ ((m ^ n) & d),            // BSL: d selects n (1) or m (0)
                (true, 2) => d ^ ((d ^ n) & m),            // BIT: insert n where m is 1
                _ => d ^ ((d ^ n) & ~m),                   // BIF: insert n where m is 0
            };
        }
        else
        {
            result = 0;
            for (int i = 0; i < (q ? 128 : 64) / esize; i++)
            {
                ulong a = Elem(n, i, esize), b = Elem(m, i, esize);
                long sa = SignExtend(a, esize), sb = SignExtend(b, esize);
                ulong r = (opcode, u) switch
                {
                    (16, false) => a + b,                                    // ADD
                    (16, true) => a - b,                                     // SUB
                    (17, false) => (a & b) != 0 ? ulong.MaxValue : 0,        // CMTST
                    (17, true) => a == b ? ulong.MaxValue : 0,               // CMEQ (register)
                    (6, false) => sa > sb ? ulong.MaxValue : 0,              // CMGT
                    (6, true) => a > b ? ulong.MaxValue : 0,                 // CMHI
                    (7, false) => sa >= sb ? ulong.MaxValue : 0,             // CMGE
                    _ => a >= b ? ulong.MaxValue : 0,                        // CMHS
                };
                result = WithElem(result, i, esize, r);
            }
        }
        SetV(rd, q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    private static long SignExtend(ulong value, int bits) => bits == 64 ? (long)value : (long)(value << (64 - bits)) >> (64 - bits);

    /// <summary>CMGT/CMEQ/CMLT (zero) with U = 0 (opcodes 01000, 01001, 01010), CMGE/CMLE (zero) with U = 1, NOT (U 1, size 00, 00101), CNT (U 0, size 00, 00101).</summary>
    private bool SimdTwoRegisterMisc(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 12) & 31;
        int esize = 8 << size;
        bool compare = opcode is 8 or 9 || (opcode == 10 && !u);
        bool bytewise = opcode == 5 && size == 0;
        if (!compare && !bytewise) return false;
        if (compare && size == 3 && !q)
        {
            Undefined();
            return true;
        }
        if (FpTrapped()) return true;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], result = 0;
        if (bytewise && u)
        {
            result = ~n; // NOT (MVN)
        }
        else
        {
            for (int i = 0; i < (q ? 128 : 64) / esize; i++)
            {
                ulong a = Elem(n, i, esize);
                long s = SignExtend(a, esize);
                ulong r = (opcode, u) switch
                {
                    (5, _) => (ulong)System.Numerics.BitOperations.PopCount(a), // CNT
                    (8, false) => s > 0 ? ulong.MaxValue : 0,   // CMGT #0
                    (8, true) => s >= 0 ? ulong.MaxValue : 0,   // CMGE #0
                    (9, false) => s == 0 ? ulong.MaxValue : 0,  // CMEQ #0
                    (9, true) => s <= 0 ? ulong.MaxValue : 0,   // CMLE #0
                    _ => s < 0 ? ulong.MaxValue : 0,            // CMLT #0
                };
                result = WithElem(result, i, esize, r);
            }
        }
        SetV((int)(insn & 31), q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }

    /// <summary>
    /// DUP (element: op 0 imm4 0000; general: 0001), SMOV (0101), UMOV (0111), INS (general: 0011, Q = 1), INS
    /// (element: op 1, Q = 1). The element size is the lowest set bit of imm5 (x0000 is unallocated).
    /// </summary>
    private bool SimdCopy(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, op = ((insn >> 29) & 1) != 0;
        uint imm5 = (insn >> 16) & 31, imm4 = (insn >> 11) & 15;
        int rd = (int)(insn & 31), rn = (int)((insn >> 5) & 31);
        int size = System.Numerics.BitOperations.TrailingZeroCount(imm5 | 32);
        int esize = 8 << size, index = (int)(imm5 >> (size + 1));
        bool valid = size <= 3 && (op ? q : imm4 switch
        {
            0 => !(size == 3 && !q),             // DUP (element)
            1 => !(size == 3 && !q),             // DUP (general)
            3 => q,                              // INS (general)
            5 => size < (q ? 3 : 2),             // SMOV: W from B/H, X from B/H/S
            7 => q ? size == 3 : size < 3,       // UMOV: W from B/H/S, X from D
            _ => false,
        });
        if (!valid) return UndefinedTrue();
        if (FpTrapped()) return true;
        UInt128 n = cpu.Vregs[rn];
        if (op)
        {
            SetV(rd, WithElem(cpu.Vregs[rd], index, esize, Elem(n, (int)(imm4 >> size), esize)));
        }
        else if (imm4 is 5 or 7)
        {
            ulong e = Elem(n, index, esize);
            ulong value = imm4 == 7 ? e : (ulong)SignExtend(e, esize);
            cpu.SetReg(rd, q ? value : (uint)value);
        }
        else if (imm4 == 3)
        {
            SetV(rd, WithElem(cpu.Vregs[rd], index, esize, cpu.Reg(rn)));
        }
        else
        {
            ulong e = imm4 == 0 ? Elem(n, index, esize) : cpu.Reg(rn) & LaneMask(esize);
            UInt128 result = 0;
            for (int i = 0; i < (q ? 128 : 64) / esize; i++) result = WithElem(result, i, esize, e);
            SetV(rd, result);
        }
        Next();
        return true;
    }

    /// <summary>DUP (element, scalar), alias MOV Bd/Hd/Sd/Dd, Vn.T[index].</summary>
    private bool SimdScalarDup(uint insn)
    {
        uint imm5 = (insn >> 16) & 31;
        int size = System.Numerics.BitOperations.TrailingZeroCount(imm5 | 32);
        if (size > 3) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = 8 << size;
        SetV((int)(insn & 31), Elem(cpu.Vregs[(insn >> 5) & 31], (int)(imm5 >> (size + 1)), esize));
        Next();
        return true;
    }

    /// <summary>EXT: the bytes from position imm4 of Vm:Vn (Q = 0: 8-byte vectors; imm4&lt;3&gt; = 1 is unallocated there).</summary>
    private bool SimdExt(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0;
        int imm4 = (int)((insn >> 11) & 15);
        if (!q && imm4 >= 8) return UndefinedTrue();
        if (FpTrapped()) return true;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31];
        UInt128 result;
        if (q)
        {
            result = imm4 == 0 ? n : (n >> (imm4 * 8)) | (m << ((16 - imm4) * 8));
        }
        else
        {
            UInt128 concat = ((UInt128)(ulong)m << 64) | (ulong)n;
            result = (ulong)(concat >> (imm4 * 8));
        }
        SetV((int)(insn & 31), result);
        Next();
        return true;
    }

    /// <summary>UZP1 (001), TRN1 (010), ZIP1 (011), UZP2 (101), TRN2 (110), ZIP2 (111); size 11 with Q = 0 is unallocated.</summary>
    private bool SimdPermute(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 12) & 7;
        if ((opcode & 3) == 0 || (size == 3 && !q)) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = 8 << size, elements = (q ? 128 : 64) / esize, part = (int)(opcode >> 2);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], result = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong e = (opcode & 3) switch
            {
                // UZP: the even (part 0) or odd elements of the concatenation Vm:Vn.
                1 => 2 * i + part < elements ? Elem(n, 2 * i + part, esize) : Elem(m, 2 * i + part - elements, esize),
                // TRN: pairs (n[2p+part], m[2p+part]).
                2 => (i & 1) == 0 ? Elem(n, (i & ~1) + part, esize) : Elem(m, (i & ~1) + part, esize),
                // ZIP: interleave the low (part 0) or high halves.
                _ => (i & 1) == 0 ? Elem(n, part * elements / 2 + i / 2, esize) : Elem(m, part * elements / 2 + i / 2, esize),
            };
            result = WithElem(result, i, esize, e);
        }
        SetV((int)(insn & 31), result);
        Next();
        return true;
    }

    /// <summary>
    /// ADDV (U 0, opcode 11011), SADDLV/UADDLV (00011: the sum widened to 2 × esize), SMAXV/UMAXV (01010),
    /// SMINV/UMINV (11010); size 11, and size 10 with Q = 0, are unallocated. The scalar result zeroes the rest of Vd.
    /// </summary>
    private bool SimdAcrossLanes(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 12) & 31;
        if (opcode is not (27 or 3 or 10 or 26) || (opcode == 27 && u)) return false;
        if (size == 3 || (size == 2 && !q)) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = 8 << size, elements = (q ? 128 : 64) / esize;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31];
        long acc = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong e = Elem(n, i, esize);
            long value = u ? (long)e : SignExtend(e, esize);
            acc = i == 0 ? value : opcode switch
            {
                10 => u ? (long)Math.Max((ulong)acc, (ulong)value) : Math.Max(acc, value),
                26 => u ? (long)Math.Min((ulong)acc, (ulong)value) : Math.Min(acc, value),
                _ => acc + value,
            };
        }
        int resultBits = opcode == 3 ? 2 * esize : esize;
        SetVScalar((int)(insn & 31), (ulong)acc, resultBits);
        Next();
        return true;
    }
}
