// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// ADDHN/ADDHN2, RADDHN/RADDHN2, SUBHN/SUBHN2, RSUBHN/RSUBHN2 (Arm ARM DDI 0487 C7.2; "Advanced SIMD three different"
/// opcode 0100 and 0110, the only opcodes of the group A64Interpreter.SimdInteger.cs's SimdThreeDifferent and the
/// saturating and polynomial decoders leave): each 2·esize lane of Vn plus (or minus) the one of Vm, plus
/// 2^(esize − 1) for the rounding (R, U = 1) forms, its high half narrowed into Vd; the "2" forms (Q = 1) write the
/// upper 64 bits and keep the lower, the others write the lower and zero the upper. Size 11 is unallocated. Reached
/// through <see cref="TrySimdEstimates"/>.
/// </summary>
internal sealed partial class A64Interpreter
{
    private bool TrySimdNarrowHigh(uint insn)
    {
        // 0 Q U 01110 size 1 Rm 01x0 00 Rn Rd.
        if ((insn & 0x9F20_DC00) != 0x0E20_4000) return false;
        int size = (int)((insn >> 22) & 3);
        if (size == 3) return UndefinedTrue();
        if (FpTrapped()) return true;
        bool q = ((insn >> 30) & 1) != 0, round = ((insn >> 29) & 1) != 0, sub = ((insn >> 13) & 1) != 0;
        int esize = 8 << size, rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31];
        ulong result = 0;
        for (int e = 0; e < 64 / esize; e++)
        {
            // The sum in 2·esize bits wraps; with 2·esize = 64, ulong arithmetic is that wrap.
            ulong a = Elem(n, e, 2 * esize), b = Elem(m, e, 2 * esize);
            ulong sum = (sub ? a - b : a + b) + (round ? 1UL << (esize - 1) : 0);
            result |= ((sum >> esize) & LaneMask(esize)) << (e * esize);
        }
        SetV(rd, q ? ((UInt128)result << 64) | (ulong)cpu.Vregs[rd] : result);
        Next();
        return true;
    }
}
