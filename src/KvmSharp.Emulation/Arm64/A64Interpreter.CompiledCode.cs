// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The integer, branch and load/store groups compiled C uses beyond the hand-written subset (what gcc -O2/-O3 emits for
/// a freestanding guest). Encodings and behaviour from the Arm ARM (DDI 0487) C4.1 "A64 instruction set encoding" and
/// the C6.2 pseudocode of each instruction:
/// <list type="bullet">
/// <item>Data processing — immediate (C4.1.86): PC-relative ADR/ADRP, logical (immediate) AND/ORR/EOR/ANDS with
/// DecodeBitMasks, bitfield SBFM/BFM/UBFM (so LSL/LSR/ASR/UXTB/SXTW/BFI … immediate), extract EXTR (ROR immediate).</item>
/// <item>Data processing — register (C4.1.88): add/subtract (extended register), ADC/ADCS/SBC/SBCS, CCMN/CCMP
/// (register and immediate), CSEL/CSINC/CSINV/CSNEG, the 2-source UDIV/SDIV/LSLV/LSRV/ASRV/RORV, the 1-source
/// RBIT/REV16/REV32/REV/CLZ/CLS, the 3-source MADD/MSUB/SMADDL/SMSUBL/UMADDL/UMSUBL/SMULH/UMULH.</item>
/// <item>Branches and exception generation (C4.1.84): TBZ/TBNZ, BRK.</item>
/// <item>Loads and stores (C4.1.87) of general-purpose registers: LDR/LDRSW/PRFM (literal), LDP/STP/LDPSW/LDNP/STNP
/// (offset, pre- and post-index), LDUR/STUR… (unscaled immediate), LDR/STR… (register offset, with extend and
/// shift). The single-register forms go through <see cref="LoadStore"/> (so MMIO has its syndrome); a pair has no
/// valid syndrome (ESR_ELx.ISV = 0), so a pair on MMIO stops the run as KVM's io_mem_abort does.</item>
/// </list>
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ESR_ELx.EC 0x3C: BRK instruction execution in AArch64 state (asm/esr.h ESR_ELx_EC_BRK64).</summary>
    private const uint EcBrk = 0x3C;

    /// <summary>True when <paramref name="insn"/> belongs to one of the groups above (executed, or UNDEFINED).</summary>
    private bool TryCompiledCode(uint insn)
    {
        // Data processing — immediate: op0 bits 28:26 = 100.
        if ((insn & 0x1F00_0000) == 0x1000_0000) { PcRelative(insn); return true; }
        if ((insn & 0x1F80_0000) == 0x1200_0000) { LogicalImmediate(insn); return true; }
        if ((insn & 0x1F80_0000) == 0x1300_0000) { Bitfield(insn); return true; }
        if ((insn & 0x1F80_0000) == 0x1380_0000) { Extract(insn); return true; }
        // Data processing — register: op1 bit 28 = 1, bits 27:25 = 101.
        if ((insn & 0x1F20_0000) == 0x0B20_0000) { AddSubExtended(insn); return true; }
        if ((insn & 0x1FE0_FC00) == 0x1A00_0000) { AddSubCarry(insn); return true; }
        if (TryFlagMDataProcessing(insn)) return true; // RMIF, SETF8/16 (FEAT_FlagM): A64Interpreter.FlagM.cs
        if ((insn & 0x1FE0_0000) == 0x1A40_0000) { ConditionalCompare(insn); return true; }
        if ((insn & 0x1FE0_0000) == 0x1A80_0000) { ConditionalSelect(insn); return true; }
        if ((insn & 0x7FE0_0000) == 0x1AC0_0000 && TwoSource(insn)) return true;
        if ((insn & 0x7FFF_0000) == 0x5AC0_0000 && OneSource(insn)) return true;
        if ((insn & 0x1F00_0000) == 0x1B00_0000) { ThreeSource(insn); return true; }
        // BRK (C6.2 BRK; exception generation, C4.1.84): a Breakpoint instruction exception taken to EL1, EC 0x3C,
        // ISS = imm16 (Arm ARM D1.10.4). KVM does not trap it unless the VMM debugs the guest (vcpu->guest_debug set:
        // debug.c kvm_arm_setup_mdcr_el2 sets MDCR_EL2.TDE, and the exception is a KVM_EXIT_DEBUG — BrkToHost).
        if ((insn & 0xFFE0_001F) == 0xD420_0000)
        {
            uint imm16 = (insn >> 5) & 0xFFFF;
            if (!BrkToHost(imm16)) TakeException(EcBrk, cpu.Pc, far: null, iss: imm16);
            return true;
        }
        // HLT (C6.2 HLT: "if EDSCR.HDE == '0' || !HaltingAllowed() then UNDEFINED"): halting debug belongs to an
        // external debugger, which a KVM guest never has enabled, so it is UNDEFINED (EC 0x00).
        if ((insn & 0xFFE0_001F) == 0xD440_0000)
        {
            Undefined();
            return true;
        }
        // Test and branch (immediate).
        if ((insn & 0x7E00_0000) == 0x3600_0000) { TestBranch(insn); return true; }
        // Loads and stores with V (bit 26) = 0.
        if ((insn & 0x3F00_0000) == 0x1800_0000) { LoadLiteral(insn); return true; }
        if ((insn & 0x3E00_0000) == 0x2800_0000) { LoadStorePair(insn); return true; }
        if ((insn & 0x3F20_0C00) == 0x3800_0000)
        {
            // LDUR/STUR/LDURS*/PRFUM: imm9 unscaled, no writeback (C6.2 LDUR: "offset = SignExtend(imm9, 64)").
            LoadStore(insn, (ulong)(long)((int)(insn << 11) >> 23), writeback: false, postIndex: false);
            return true;
        }
        if ((insn & 0x3F20_0C00) == 0x3820_0800) { LoadStoreRegisterOffset(insn); return true; }
        return false;
    }

    // ---- Data processing — immediate ----

    /// <summary>ADR: Rd = PC + imm21; ADRP: Rd = (PC with bits 11:0 cleared) + imm21 × 4096 (C6.2 ADR, ADRP).</summary>
    private void PcRelative(uint insn)
    {
        long imm = (long)((((insn >> 5) & 0x7FFFF) << 2) | ((insn >> 29) & 3)) << 43 >> 43;
        bool page = (insn >> 31) != 0;
        ulong result = page ? (cpu.Pc & ~0xFFFUL) + (ulong)(imm << 12) : cpu.Pc + (ulong)imm;
        cpu.SetReg((int)(insn & 31), result);
        Next();
    }

    /// <summary>
    /// DecodeBitMasks (Arm ARM shared pseudocode J1.1.3): the wmask and tmask of a logical immediate or bitfield;
    /// false where the encoding is reserved (len &lt; 1, or an all-ones element for a logical immediate).
    /// </summary>
    private static bool DecodeBitMasks(uint n, uint imms, uint immr, bool immediate, int dataSize, out ulong wmask, out ulong tmask)
    {
        wmask = tmask = 0;
        uint combined = (n << 6) | (~imms & 0x3F);
        if (combined == 0) return false;
        int len = 31 - BitOperations.LeadingZeroCount(combined);
        if (len < 1) return false;
        uint levels = (1u << len) - 1;
        if (immediate && (imms & levels) == levels) return false;
        int s = (int)(imms & levels), r = (int)(immr & levels);
        int esize = 1 << len;
        int d = (s - r) & (esize - 1);
        ulong welem = Ones(s + 1), telem = Ones(d + 1);
        ulong rotated = r == 0 ? welem : ((welem >> r) | (welem << (esize - r))) & Ones(esize);
        wmask = Replicate(rotated, esize, dataSize);
        tmask = Replicate(telem, esize, dataSize);
        return true;
    }

    private static ulong Ones(int count) => count >= 64 ? ulong.MaxValue : (1UL << count) - 1;

    private static ulong Replicate(ulong element, int esize, int dataSize)
    {
        ulong result = 0;
        for (int at = 0; at < dataSize; at += esize) result |= element << at;
        return Truncate(result, dataSize == 64);
    }

    /// <summary>AND/ORR/EOR/ANDS (immediate) (C6.2): Rd may be SP except for ANDS; N = 1 with sf = 0 is unallocated.</summary>
    private void LogicalImmediate(uint insn)
    {
        bool sf = Sf(insn);
        uint n = (insn >> 22) & 1;
        if ((!sf && n != 0) || !DecodeBitMasks(n, (insn >> 10) & 0x3F, (insn >> 16) & 0x3F, immediate: true, sf ? 64 : 32, out ulong imm, out _))
        {
            Undefined();
            return;
        }
        uint opc = (insn >> 29) & 3;
        int rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong operand1 = Truncate(cpu.Reg(rn), sf);
        ulong result = opc switch
        {
            0 or 3 => operand1 & imm,
            1 => operand1 | imm,
            _ => operand1 ^ imm,
        };
        if (opc == 3)
        {
            bool negative = sf ? (long)result < 0 : (int)(uint)result < 0;
            cpu.Pstate = (cpu.Pstate & ~NzcvMask) | (negative ? FlagN : 0) | (result == 0 ? FlagZ : 0);
            cpu.SetReg(rd, result);
        }
        else
        {
            cpu.SetRegOrSp(rd, result);
        }
        Next();
    }

    /// <summary>SBFM (opc 00), BFM (01), UBFM (10) (C6.2): opc 11, N ≠ sf, and for 32-bit immr/imms ≥ 32 are unallocated.</summary>
    private void Bitfield(uint insn)
    {
        bool sf = Sf(insn);
        uint opc = (insn >> 29) & 3, n = (insn >> 22) & 1, immr = (insn >> 16) & 0x3F, imms = (insn >> 10) & 0x3F;
        int dataSize = sf ? 64 : 32;
        if (opc == 3 || n != (sf ? 1u : 0u) || (!sf && (immr >= 32 || imms >= 32))
            || !DecodeBitMasks(n, imms, immr, immediate: false, dataSize, out ulong wmask, out ulong tmask))
        {
            Undefined();
            return;
        }
        int rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        bool inZero = opc != 1, extend = opc == 0;
        ulong dst = inZero ? 0 : Truncate(cpu.Reg(rd), sf);
        ulong src = Truncate(cpu.Reg(rn), sf);
        ulong bot = (dst & ~wmask) | (Shift(src, 3, (int)immr, sf) & wmask);
        ulong top = extend ? (((src >> (int)imms) & 1) != 0 ? Ones(dataSize) : 0) : dst;
        cpu.SetReg(rd, Truncate((top & ~tmask) | (bot & tmask), sf));
        Next();
    }

    /// <summary>EXTR (C6.2): Rd = (Rn:Rm) &gt;&gt; lsb; N ≠ sf, op21/o0 ≠ 0 and for 32-bit lsb ≥ 32 are unallocated.</summary>
    private void Extract(uint insn)
    {
        bool sf = Sf(insn);
        uint n = (insn >> 22) & 1, op21 = (insn >> 29) & 3, o0 = (insn >> 21) & 1;
        int lsb = (int)((insn >> 10) & 0x3F);
        if (op21 != 0 || o0 != 0 || n != (sf ? 1u : 0u) || (!sf && lsb >= 32))
        {
            Undefined();
            return;
        }
        int rm = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        int width = sf ? 64 : 32;
        ulong hi = Truncate(cpu.Reg(rn), sf), lo = Truncate(cpu.Reg(rm), sf);
        ulong result = lsb == 0 ? lo : (lo >> lsb) | (hi << (width - lsb));
        cpu.SetReg(rd, Truncate(result, sf));
        Next();
    }

    // ---- Data processing — register ----

    /// <summary>ExtendReg (Arm ARM shared pseudocode): UXTB … SXTX of <paramref name="value"/>, then LSL <paramref name="shift"/>.</summary>
    private static ulong ExtendRegister(ulong value, uint option, int shift, bool sf)
    {
        int bits = 8 << (int)(option & 3);
        ulong extended = bits == 64 ? value : value & Ones(bits);
        if ((option & 4) != 0 && bits < 64 && ((extended >> (bits - 1)) & 1) != 0) extended |= ~Ones(bits);
        return Truncate(extended << shift, sf);
    }

    /// <summary>ADD/ADDS/SUB/SUBS (extended register) (C6.2): Rn may be SP, Rd too unless S; imm3 &gt; 4 and opt ≠ 0 are unallocated.</summary>
    private void AddSubExtended(uint insn)
    {
        bool sf = Sf(insn);
        int imm3 = (int)((insn >> 10) & 7);
        if (imm3 > 4 || ((insn >> 22) & 3) != 0)
        {
            Undefined();
            return;
        }
        bool sub = ((insn >> 30) & 1) != 0, setFlags = ((insn >> 29) & 1) != 0;
        int rm = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong operand2 = ExtendRegister(cpu.Reg(rm), (insn >> 13) & 7, imm3, sf);
        ulong result = AddWithCarry(Truncate(cpu.RegOrSp(rn), sf), sub ? ~operand2 : operand2, sub ? 1UL : 0UL, sf, setFlags);
        if (setFlags) cpu.SetReg(rd, result);
        else cpu.SetRegOrSp(rd, result);
        Next();
    }

    /// <summary>ADC/ADCS/SBC/SBCS (C6.2): AddWithCarry(Rn, Rm or NOT Rm, PSTATE.C).</summary>
    private void AddSubCarry(uint insn)
    {
        bool sf = Sf(insn);
        bool sub = ((insn >> 30) & 1) != 0, setFlags = ((insn >> 29) & 1) != 0;
        int rm = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong operand2 = Truncate(cpu.Reg(rm), sf);
        ulong carry = (cpu.Pstate & FlagC) != 0 ? 1UL : 0UL;
        cpu.SetReg(rd, AddWithCarry(Truncate(cpu.Reg(rn), sf), sub ? ~operand2 : operand2, carry, sf, setFlags));
        Next();
    }

    /// <summary>CCMN/CCMP (register, immediate) (C6.2): the comparison's NZCV when cond holds, else #nzcv; S = 0, o2 or o3 set are unallocated.</summary>
    private void ConditionalCompare(uint insn)
    {
        if (((insn >> 29) & 1) == 0 || ((insn >> 10) & 1) != 0 || ((insn >> 4) & 1) != 0)
        {
            Undefined();
            return;
        }
        bool sf = Sf(insn);
        bool sub = ((insn >> 30) & 1) != 0;
        uint cond = (insn >> 12) & 15;
        int rn = (int)((insn >> 5) & 31);
        ulong operand2 = ((insn >> 11) & 1) != 0 ? (insn >> 16) & 31 : Truncate(cpu.Reg((int)((insn >> 16) & 31)), sf);
        if (ConditionHolds(cond))
            AddWithCarry(Truncate(cpu.Reg(rn), sf), sub ? ~operand2 : operand2, sub ? 1UL : 0UL, sf, setFlags: true);
        else
            cpu.Pstate = (cpu.Pstate & ~NzcvMask) | ((ulong)(insn & 15) << 28);
        Next();
    }

    /// <summary>CSEL/CSINC/CSINV/CSNEG (C6.2): Rn if cond holds, else Rm (+1, inverted, negated); S = 1 or op2[1] = 1 are unallocated.</summary>
    private void ConditionalSelect(uint insn)
    {
        uint op2 = (insn >> 10) & 3;
        if (((insn >> 29) & 1) != 0 || op2 > 1)
        {
            Undefined();
            return;
        }
        bool sf = Sf(insn);
        bool invert = ((insn >> 30) & 1) != 0, increment = op2 == 1;
        int rm = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong result;
        if (ConditionHolds((insn >> 12) & 15))
        {
            result = cpu.Reg(rn);
        }
        else
        {
            result = cpu.Reg(rm);
            if (invert) result = ~result;
            if (increment) result++;
        }
        cpu.SetReg(rd, Truncate(result, sf));
        Next();
    }

    /// <summary>UDIV/SDIV (x / 0 = 0, rounding toward zero) and LSLV/LSRV/ASRV/RORV (amount mod the size) (C6.2); false for the other opcodes.</summary>
    private bool TwoSource(uint insn)
    {
        uint opcode = (insn >> 10) & 0x3F;
        if ((opcode & 0x38) == 0x10) return Crc32(insn); // 010 C sz: A64Interpreter.Crc32.cs
        if (opcode is not (2 or 3 or 8 or 9 or 10 or 11)) return false;
        bool sf = Sf(insn);
        int rm = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong a = Truncate(cpu.Reg(rn), sf), b = Truncate(cpu.Reg(rm), sf);
        ulong result;
        if (opcode == 2)
        {
            result = b == 0 ? 0 : a / b;
        }
        else if (opcode == 3)
        {
            if (b == 0) result = 0;
            else if (sf) result = (long)a == long.MinValue && (long)b == -1 ? a : (ulong)((long)a / (long)b);
            else result = (int)(uint)a == int.MinValue && (int)(uint)b == -1 ? a : (uint)((int)(uint)a / (int)(uint)b);
        }
        else
        {
            result = Shift(a, opcode - 8, (int)(b % (sf ? 64UL : 32UL)), sf);
        }
        cpu.SetReg(rd, Truncate(result, sf));
        Next();
        return true;
    }

    /// <summary>RBIT, REV16, REV32 (REV of a W register), REV, CLZ, CLS (C6.2); false for the other opcodes (PAC, CSSC).</summary>
    private bool OneSource(uint insn)
    {
        uint opcode = (insn >> 10) & 0x3F;
        bool sf = Sf(insn);
        if (opcode > 5) return false;
        if (opcode == 3 && !sf)
        {
            Undefined();
            return true;
        }
        int rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong x = Truncate(cpu.Reg(rn), sf);
        int width = sf ? 64 : 32;
        ulong result = opcode switch
        {
            0 => ReverseBits(x, width),
            1 => ReverseBytesIn(x, 2),
            2 => ReverseBytesIn(x, 4),
            3 => ReverseBytesIn(x, 8),
            4 => (ulong)(sf ? BitOperations.LeadingZeroCount(x) : BitOperations.LeadingZeroCount((uint)x)),
            _ => CountLeadingSignBits(x, width),
        };
        cpu.SetReg(rd, Truncate(result, sf));
        Next();
        return true;
    }

    private static ulong ReverseBits(ulong x, int width)
    {
        ulong r = 0;
        for (int i = 0; i < width; i++) r |= ((x >> i) & 1) << (width - 1 - i);
        return r;
    }

    /// <summary>Reverses the bytes within each <paramref name="container"/>-byte container (REV16/REV32/REV).</summary>
    private static ulong ReverseBytesIn(ulong x, int container)
    {
        ulong r = 0;
        for (int c = 0; c < 8; c += container)
            for (int b = 0; b < container; b++)
                r |= ((x >> ((c + b) * 8)) & 0xFF) << ((c + container - 1 - b) * 8);
        return r;
    }

    /// <summary>CLS: the bits after the top one that equal it (HighestSetBit(x[N-1:1] EOR x[N-2:0]) pseudocode).</summary>
    private static ulong CountLeadingSignBits(ulong x, int width)
    {
        ulong y = ((x >> 1) ^ x) & Ones(width - 1);
        return (ulong)(width - 1 - (y == 0 ? 0 : 64 - BitOperations.LeadingZeroCount(y)));
    }

    /// <summary>MADD/MSUB, SMADDL/SMSUBL, UMADDL/UMSUBL, SMULH, UMULH (C6.2); op54 ≠ 0 and the other op31/o0 are unallocated.</summary>
    private void ThreeSource(uint insn)
    {
        bool sf = Sf(insn);
        uint op54 = (insn >> 29) & 3, op31 = (insn >> 21) & 7, o0 = (insn >> 15) & 1;
        int rm = (int)((insn >> 16) & 31), ra = (int)((insn >> 10) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        ulong n = cpu.Reg(rn), m = cpu.Reg(rm), a = cpu.Reg(ra);
        ulong result;
        if (op54 != 0 || (!sf && op31 != 0))
        {
            Undefined();
            return;
        }
        switch (op31)
        {
            case 0:
                result = Truncate(o0 == 0 ? a + n * m : a - n * m, sf);
                break;
            case 1:
            {
                ulong product = (ulong)((long)(int)(uint)n * (int)(uint)m);
                result = o0 == 0 ? a + product : a - product;
                break;
            }
            case 5:
            {
                ulong product = (ulong)(uint)n * (uint)m;
                result = o0 == 0 ? a + product : a - product;
                break;
            }
            case 2 when o0 == 0:
                result = (ulong)(((Int128)(long)n * (long)m) >> 64);
                break;
            case 6 when o0 == 0:
                result = (ulong)(((UInt128)n * m) >> 64);
                break;
            default:
                Undefined();
                return;
        }
        cpu.SetReg(rd, result);
        Next();
    }

    // ---- Branches ----

    /// <summary>TBZ/TBNZ (C6.2): branch by imm14 × 4 when bit b5:b40 of Rt is zero (TBZ) or one (TBNZ).</summary>
    private void TestBranch(uint insn)
    {
        int bit = (int)(((insn >> 31) << 5) | ((insn >> 19) & 31));
        bool set = ((cpu.Reg((int)(insn & 31)) >> bit) & 1) != 0;
        bool branchIfSet = ((insn >> 24) & 1) != 0;
        if (set == branchIfSet) cpu.Pc += (ulong)((long)((int)(insn << 13) >> 18) << 2);
        else Next();
    }

    // ---- Loads and stores ----

    /// <summary>LDR (literal) W/X, LDRSW (literal), PRFM (literal, a hint) (C6.2): the address is PC + imm19 × 4.</summary>
    private void LoadLiteral(uint insn)
    {
        uint opc = insn >> 30;
        if (opc == 3)
        {
            Next();
            return;
        }
        int rt = (int)(insn & 31);
        ulong address = cpu.Pc + (ulong)((long)((int)(insn << 8) >> 13) << 2);
        int length = opc == 1 ? 8 : 4;
        bool signExtend = opc == 2, sf = opc != 0;
        var data = _data.AsSpan(0, length);
        if (!MemoryAccess(address, data, write: false, new MmioSyndrome(address, false, length, rt, signExtend, sf, 0), isvValid: true)) return;
        cpu.SetReg(rt, Extend(ReadLittleEndian(data), length, signExtend, sf));
        Next();
    }

    /// <summary>
    /// LDR/STR/LDRB/… (register): the offset is Rm extended by option (UXTW 010, LSL 011, SXTW 110, SXTX 111; the
    /// others unallocated) and shifted by the access size when S is set (C6.2 LDR (register)); then as any
    /// single-register access (<see cref="LoadStore"/>), with a valid syndrome.
    /// </summary>
    private void LoadStoreRegisterOffset(uint insn)
    {
        uint option = (insn >> 13) & 7;
        if ((option & 2) == 0)
        {
            Undefined();
            return;
        }
        int size = (int)(insn >> 30);
        int shift = ((insn >> 12) & 1) != 0 ? size : 0;
        ulong offset = ExtendRegister(cpu.Reg((int)((insn >> 16) & 31)), option, shift, sf: true);
        LoadStore(insn, offset, writeback: false, postIndex: false);
    }

    /// <summary>
    /// STP/LDP (32/64-bit), LDPSW, STNP/LDNP (C6.2 LDP, STP, LDPSW, LDNP, STNP): index bits 24:23 = 00 no-allocate
    /// (offset), 01 post-index, 10 offset, 11 pre-index; imm7 scaled by the register size. opc 11, LDPSW's store
    /// form (STGP, MTE: not in this CPU model) and LDNP with opc 01 are unallocated; a load pair with Rt = Rt2 and
    /// writeback with Rn = Rt or Rt2 are CONSTRAINED UNPREDICTABLE, here UNDEFINED (one of the permitted choices).
    /// </summary>
    private void LoadStorePair(uint insn)
    {
        uint opc = insn >> 30, index = (insn >> 23) & 3;
        bool load = ((insn >> 22) & 1) != 0;
        int rt2 = (int)((insn >> 10) & 31), rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31);
        bool writeback = index is 1 or 3, postIndex = index == 1;
        if (opc == 3 || (opc == 1 && (!load || index == 0)) || (load && rt == rt2)
            || (writeback && rn != 31 && (rn == rt || rn == rt2)))
        {
            Undefined();
            return;
        }
        int scale = opc == 2 ? 3 : 2;
        int length = 1 << scale;
        long offset = (long)((int)(insn << 10) >> 25) << scale;
        ulong baseAddress = cpu.RegOrSp(rn);
        if (rn == 31 && (baseAddress & 15) != 0)
        {
            SpAlignmentFault();
            return;
        }
        ulong address = postIndex ? baseAddress : baseAddress + (ulong)offset;
        Span<byte> pair = stackalloc byte[16];
        pair = pair[..(2 * length)];
        bool signExtend = opc == 1, sf = opc != 0;
        if (!load)
        {
            WriteLittleEndian(pair[..length], cpu.Reg(rt));
            WriteLittleEndian(pair[length..], cpu.Reg(rt2));
        }
        // One access of both registers: a pair has no valid syndrome (ISV = 0), so MMIO is a NISV stop.
        if (!MemoryAccess(address, pair, write: !load, new MmioSyndrome(address, !load, 2 * length, rt, false, sf, 0), isvValid: false, alignment: length))
            return;
        if (load)
        {
            cpu.SetReg(rt, Extend(ReadLittleEndian(pair[..length]), length, signExtend, sf));
            cpu.SetReg(rt2, Extend(ReadLittleEndian(pair[length..]), length, signExtend, sf));
        }
        if (writeback) cpu.SetRegOrSp(rn, baseAddress + (ulong)offset);
        Next();
    }
}
