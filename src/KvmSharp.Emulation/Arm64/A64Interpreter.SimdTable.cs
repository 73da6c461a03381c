// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Advanced SIMD table lookup (Arm ARM C7.2 TBL, TBX): 0 Q 001110 000 Rm 0 len op 00 Rn Rd. The table is the bytes of
/// Vn, Vn+1, … (len + 1 registers, modulo 32); each byte of Vm indexes it; an index past the table gives 0 (TBL) or
/// leaves the byte of Vd (TBX). Q = 0 works on 8 bytes and zeroes bits 127:64.
/// </summary>
internal sealed partial class A64Interpreter
{
    private bool SimdTableLookup(uint insn)
    {
        if (FpTrapped()) return true;
        bool q = ((insn >> 30) & 1) != 0, tbx = ((insn >> 12) & 1) != 0;
        int regs = (int)((insn >> 13) & 3) + 1, rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        UInt128 indices = cpu.Vregs[(insn >> 16) & 31], d = cpu.Vregs[rd], result = 0;
        for (int i = 0; i < (q ? 16 : 8); i++)
        {
            int index = (int)Elem(indices, i, 8);
            ulong b = index < 16 * regs ? Elem(cpu.Vregs[(rn + index / 16) & 31], index % 16, 8) : tbx ? Elem(d, i, 8) : 0;
            result = WithElem(result, i, 8, b);
        }
        SetV(rd, q ? result : result & ulong.MaxValue);
        Next();
        return true;
    }
}
