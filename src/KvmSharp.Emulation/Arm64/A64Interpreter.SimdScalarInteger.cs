// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Advanced SIMD scalar integer operations (Arm ARM C7.2, the scalar three same and two-register miscellaneous groups):
/// ADD/SUB, CMEQ/CMTST/CMGT/CMHI/CMGE/CMHS (register) and SSHL/USHL on Dd; SQADD/UQADD/SQSUB/UQSUB on Bd/Hd/Sd/Dd
/// (FPSR.QC); CMGT/CMGE/CMEQ/CMLE/CMLT (zero), ABS and NEG on Dd. Other sizes of the D-only operations are
/// unallocated; the rest of the groups (SQDMULH, SQSHL, SUQADD…) are A64Interpreter.SimdSaturating.cs's.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>01 U 11110 size 1 Rm opcode 1 Rn Rd, integer opcodes.</summary>
    private bool SimdScalarIntThreeSame(uint insn)
    {
        bool u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 11) & 31;
        bool saturating = opcode is 1 or 5;
        if (!saturating && opcode is not (6 or 7 or 8 or 16 or 17)) return false;
        if (!saturating && size != 3) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = 8 << size;
        ulong a = Elem(cpu.Vregs[(insn >> 5) & 31], 0, esize), b = Elem(cpu.Vregs[(insn >> 16) & 31], 0, esize);
        long sa = SignExtend(a, esize), sb = SignExtend(b, esize);
        ulong r = (opcode, u) switch
        {
            (1, _) => Saturate(Lane(a, esize, u) + Lane(b, esize, u), esize, u),   // SQADD / UQADD
            (5, _) => Saturate(Lane(a, esize, u) - Lane(b, esize, u), esize, u),   // SQSUB / UQSUB
            (6, false) => sa > sb ? ulong.MaxValue : 0,                            // CMGT
            (6, true) => a > b ? ulong.MaxValue : 0,                               // CMHI
            (7, false) => sa >= sb ? ulong.MaxValue : 0,                           // CMGE
            (7, true) => a >= b ? ulong.MaxValue : 0,                              // CMHS
            (8, _) => ShiftByRegister(a, (sbyte)b, esize, u),                      // SSHL / USHL
            (16, false) => a + b,                                                  // ADD
            (16, true) => a - b,                                                   // SUB
            (17, false) => (a & b) != 0 ? ulong.MaxValue : 0,                      // CMTST
            _ => a == b ? ulong.MaxValue : 0,                                      // CMEQ
        };
        SetVScalar((int)(insn & 31), r, esize);
        Next();
        return true;
    }

    /// <summary>01 U 11110 size 10000 opcode 10 Rn Rd, integer opcodes: compares with zero (01000–01010), ABS/NEG (01011).</summary>
    private bool SimdScalarIntTwoRegisterMisc(uint insn)
    {
        bool u = ((insn >> 29) & 1) != 0;
        int size = (int)((insn >> 22) & 3);
        uint opcode = (insn >> 12) & 31;
        if (opcode is not (8 or 9 or 11) && !(opcode == 10 && !u)) return false;
        if (size != 3) return UndefinedTrue();
        if (FpTrapped()) return true;
        ulong a = (ulong)cpu.Vregs[(insn >> 5) & 31];
        long s = (long)a;
        ulong r = (opcode, u) switch
        {
            (8, false) => s > 0 ? ulong.MaxValue : 0,   // CMGT #0
            (8, true) => s >= 0 ? ulong.MaxValue : 0,   // CMGE #0
            (9, false) => s == 0 ? ulong.MaxValue : 0,  // CMEQ #0
            (9, true) => s <= 0 ? ulong.MaxValue : 0,   // CMLE #0
            (10, _) => s < 0 ? ulong.MaxValue : 0,      // CMLT #0
            (11, false) => s < 0 ? 0 - a : a,           // ABS
            _ => 0 - a,                                 // NEG
        };
        SetVScalar((int)(insn & 31), r, 64);
        Next();
        return true;
    }
}
