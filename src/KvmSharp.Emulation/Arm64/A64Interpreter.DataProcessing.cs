// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>Data processing: move wide, add/subtract (immediate, shifted register), logical (shifted register).</summary>
internal sealed partial class A64Interpreter
{
    private bool TryDataProcessing(uint insn)
    {
        if ((insn & 0x1F80_0000) == 0x1280_0000)
        {
            MoveWide(insn);
            return true;
        }
        if ((insn & 0x1F80_0000) == 0x1100_0000)
        {
            AddSubImmediate(insn);
            return true;
        }
        if ((insn & 0x1F20_0000) == 0x0B00_0000)
        {
            AddSubShifted(insn);
            return true;
        }
        if ((insn & 0x1F00_0000) == 0x0A00_0000)
        {
            LogicalShifted(insn);
            return true;
        }
        return false;
    }

    private static bool Sf(uint insn) => (insn >> 31) != 0;

    private static ulong Truncate(ulong value, bool sf) => sf ? value : (uint)value;

    /// <summary>MOVN (opc 00), MOVZ (10), MOVK (11); opc 01 and, for 32-bit, hw ≥ 2 are unallocated.</summary>
    private void MoveWide(uint insn)
    {
        bool sf = Sf(insn);
        uint opc = (insn >> 29) & 3;
        int hw = (int)((insn >> 21) & 3);
        if (opc == 1 || (!sf && hw >= 2))
        {
            Undefined();
            return;
        }
        int rd = (int)(insn & 31);
        int shift = hw * 16;
        ulong imm = (ulong)((insn >> 5) & 0xffff) << shift;
        ulong result = opc switch
        {
            0 => ~imm,
            2 => imm,
            _ => (cpu.Reg(rd) & ~(0xffffUL << shift)) | imm,
        };
        cpu.SetReg(rd, Truncate(result, sf));
        Next();
    }

    /// <summary>ADD/ADDS/SUB/SUBS (immediate): Rn may be SP; Rd is SP unless S is set (then XZR).</summary>
    private void AddSubImmediate(uint insn)
    {
        bool sf = Sf(insn);
        bool sub = ((insn >> 30) & 1) != 0;
        bool setFlags = ((insn >> 29) & 1) != 0;
        ulong imm = (insn >> 10) & 0xfff;
        if (((insn >> 22) & 1) != 0) imm <<= 12;
        int rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong result = AddWithCarry(Truncate(cpu.RegOrSp(rn), sf), sub ? ~imm : imm, sub ? 1UL : 0UL, sf, setFlags);
        if (setFlags) cpu.SetReg(rd, result);
        else cpu.SetRegOrSp(rd, result);
        Next();
    }

    /// <summary>ADD/ADDS/SUB/SUBS (shifted register): shift 11 and, for 32-bit, amounts ≥ 32 are unallocated.</summary>
    private void AddSubShifted(uint insn)
    {
        bool sf = Sf(insn);
        uint shift = (insn >> 22) & 3;
        int amount = (int)((insn >> 10) & 63);
        if (shift == 3 || (!sf && amount >= 32))
        {
            Undefined();
            return;
        }
        bool sub = ((insn >> 30) & 1) != 0;
        bool setFlags = ((insn >> 29) & 1) != 0;
        int rm = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong operand2 = Shift(cpu.Reg(rm), shift, amount, sf);
        ulong result = AddWithCarry(Truncate(cpu.Reg(rn), sf), sub ? ~operand2 : operand2, sub ? 1UL : 0UL, sf, setFlags);
        cpu.SetReg(rd, result);
        Next();
    }

    /// <summary>AND/BIC, ORR/ORN, EOR/EON, ANDS/BICS (shifted register; N inverts operand 2).</summary>
    private void LogicalShifted(uint insn)
    {
        bool sf = Sf(insn);
        int amount = (int)((insn >> 10) & 63);
        if (!sf && amount >= 32)
        {
            Undefined();
            return;
        }
        uint opc = (insn >> 29) & 3;
        uint shift = (insn >> 22) & 3;
        bool invert = ((insn >> 21) & 1) != 0;
        int rm = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong operand2 = Shift(cpu.Reg(rm), shift, amount, sf);
        if (invert) operand2 = Truncate(~operand2, sf);
        ulong operand1 = Truncate(cpu.Reg(rn), sf);
        ulong result = opc switch
        {
            0 or 3 => operand1 & operand2,
            1 => operand1 | operand2,
            _ => operand1 ^ operand2,
        };
        if (opc == 3)
        {
            // ANDS: N and Z from the result, C and V cleared.
            bool negative = sf ? (long)result < 0 : (int)(uint)result < 0;
            cpu.Pstate = (cpu.Pstate & ~NzcvMask) | (negative ? FlagN : 0) | (result == 0 ? FlagZ : 0);
        }
        cpu.SetReg(rd, result);
        Next();
    }

    /// <summary>ShiftReg: LSL, LSR, ASR, ROR by <paramref name="amount"/> within the operand size.</summary>
    private static ulong Shift(ulong value, uint type, int amount, bool sf)
    {
        int width = sf ? 64 : 32;
        value = Truncate(value, sf);
        if (amount == 0) return value;
        ulong result = type switch
        {
            0 => value << amount,
            1 => value >> amount,
            2 => sf ? (ulong)((long)value >> amount) : (uint)((int)(uint)value >> amount),
            _ => (value >> amount) | (value << (width - amount)),
        };
        return Truncate(result, sf);
    }

    private const ulong FlagN = 1UL << 31, FlagZ = 1UL << 30, FlagC = 1UL << 29, FlagV = 1UL << 28;
    private const ulong NzcvMask = FlagN | FlagZ | FlagC | FlagV;

    /// <summary>AddWithCarry (Arm ARM shared pseudocode), setting NZCV when <paramref name="setFlags"/>.</summary>
    private ulong AddWithCarry(ulong x, ulong y, ulong carryIn, bool sf, bool setFlags)
    {
        y = Truncate(y, sf);
        ulong result;
        bool carry, overflow, negative;
        if (sf)
        {
            UInt128 unsigned = (UInt128)x + y + carryIn;
            result = (ulong)unsigned;
            carry = unsigned >> 64 != 0;
            Int128 signed = (Int128)(long)x + (long)y + (long)carryIn;
            overflow = signed != (long)result;
            negative = (long)result < 0;
        }
        else
        {
            ulong unsigned = x + y + carryIn;
            result = (uint)unsigned;
            carry = unsigned >> 32 != 0;
            long signed = (long)(int)(uint)x + (int)(uint)y + (long)carryIn;
            overflow = signed != (int)(uint)result;
            negative = (int)(uint)result < 0;
        }
        if (setFlags)
        {
            cpu.Pstate = (cpu.Pstate & ~NzcvMask) | (negative ? FlagN : 0) | (result == 0 ? FlagZ : 0) |
                (carry ? FlagC : 0) | (overflow ? FlagV : 0);
        }
        return result;
    }

    /// <summary>ConditionHolds (Arm ARM): cond[3:1] selects the test, cond[0] inverts it (except AL/NV).</summary>
    private bool ConditionHolds(uint cond)
    {
        ulong p = cpu.Pstate;
        bool n = (p & FlagN) != 0, z = (p & FlagZ) != 0, c = (p & FlagC) != 0, v = (p & FlagV) != 0;
        bool result = (cond >> 1) switch
        {
            0 => z,
            1 => c,
            2 => n,
            3 => v,
            4 => c && !z,
            5 => n == v,
            6 => n == v && !z,
            _ => true,
        };
        return (cond & 1) != 0 && cond != 15 ? !result : result;
    }
}
