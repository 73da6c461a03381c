// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// FEAT_FlagM (ID_AA64ISAR0_EL1.TS ≥ 1): CFINV, RMIF, SETF8, SETF16; FEAT_FlagM2 (TS ≥ 2): AXFLAG, XAFLAG (Arm ARM
/// DDI 0487 C6.2 pseudocode of each; encodings from C4.1 "Data Processing -- Register" (Rotate right into flags,
/// Evaluate into flags) and "Branches, Exception Generating and System instructions" (PSTATE: op1 000, CRn 0100,
/// Rt 11111). A model without the feature leaves the encoding unallocated: UNDEFINED. All of them run at EL0 too.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ID_AA64ISAR0_EL1.TS (bits 55:52).</summary>
    private int FlagMLevel => (int)((cpu.IdRegs.Model.Aa64Isar0 >> 52) & 0xF);

    /// <summary>One PSTATE flag as 0 or 1 (<paramref name="flag"/> one of the FlagN/Z/C/V masks).</summary>
    private uint Flag(ulong flag) => (cpu.Pstate & flag) != 0 ? 1u : 0u;

    private void SetNzcv(uint n, uint z, uint c, uint v) => SetNzcv((n << 3) | (z << 2) | (c << 1) | v);

    /// <summary>
    /// CFINV / XAFLAG / AXFLAG: 1101010100 0 00 000 0100 CRm op2 11111 with op2 000 / 001 / 010. The Arm ARM shows CRm
    /// as (0000): a non-zero CRm is CONSTRAINED UNPREDICTABLE, taken here as UNDEFINED (a permitted choice, and what
    /// qemu's decodetree does). Null for the other MSR (immediate) encodings.
    /// </summary>
    private A64Outcome? TryFlagMSystem(uint insn)
    {
        if ((insn & 0xFFFF_F09F) != 0xD500_401F) return null; // op1 000, op2 0xx
        int op2 = (int)((insn >> 5) & 7);
        if (op2 == 3) return null;
        int crm = (int)((insn >> 8) & 0xF);
        // C6.2 CFINV: "if !IsFeatureImplemented(FEAT_FlagM) then UNDEFINED"; AXFLAG/XAFLAG: FEAT_FlagM2.
        if (crm != 0 || FlagMLevel < (op2 == 0 ? 1 : 2)) return UndefinedContinue();
        uint n = Flag(FlagN), z = Flag(FlagZ), c = Flag(FlagC), v = Flag(FlagV);
        switch (op2)
        {
            case 0:
                // C6.2 CFINV: PSTATE.C = NOT(PSTATE.C).
                SetNzcv(n, z, c ^ 1, v);
                break;
            case 1:
                // C6.2 XAFLAG: N = NOT(C) AND NOT(Z); Z = Z AND C; C = C OR Z; V = NOT(C) AND Z.
                SetNzcv((c ^ 1) & (z ^ 1), z & c, c | z, (c ^ 1) & z);
                break;
            default:
                // C6.2 AXFLAG: Z = Z OR V; C = C AND NOT(V); N = 0; V = 0.
                SetNzcv(0, z | v, c & (v ^ 1), 0);
                break;
        }
        Next();
        return A64Outcome.Continue;
    }

    /// <summary>
    /// Data-processing (register) op1 0, op2 0000 (sf op S 11010000 … with bits 15:10 ≠ 000000, which is ADC/SBC):
    /// "Rotate right into flags" (bits 14:10 = 00001: RMIF, sf 1 op 0 S 1 o2 0) and "Evaluate into flags" (bits 13:10 =
    /// 0010: SETF8/SETF16, sf 0 op 0 S 1 opcode2 000000 o3 0 mask 1101); the other encodings of the two groups are
    /// unallocated. False for the rest of op2 0000.
    /// </summary>
    private bool TryFlagMDataProcessing(uint insn)
    {
        if ((insn & 0x1FE0_0000) != 0x1A00_0000) return false;
        if (((insn >> 10) & 0x1F) == 0x01)
        {
            // C6.2 RMIF: "if !IsFeatureImplemented(FEAT_FlagM) then UNDEFINED"; sf 1, op 0, S 1, o2 0.
            if (FlagMLevel < 1 || (insn & 0xE000_0010) != 0xA000_0000) return UndefinedTrue();
            int lsb = (int)((insn >> 15) & 0x3F);
            // tmp = (X[n]:X[n])<lsb+3:lsb>, i.e. ROR(X[n], lsb)<3:0>; each flag whose mask bit is set takes its bit.
            ulong tmp = ulong.RotateRight(cpu.Reg((int)((insn >> 5) & 31)), lsb) & 0xF;
            ulong mask = (ulong)(insn & 0xF) << 28;
            cpu.Pstate = (cpu.Pstate & ~mask) | ((tmp << 28) & mask);
            Next();
            return true;
        }
        if (((insn >> 10) & 0xF) == 0x2)
        {
            // C6.2 SETF8/SETF16: "if !IsFeatureImplemented(FEAT_FlagM) then UNDEFINED"; sf 0 op 0 S 1, opcode2 000000,
            // o3 0, mask 1101 (sz, bit 14, picks 8 or 16).
            if (FlagMLevel < 1 || (insn & 0xE01F_801F) != 0x2000_000D) return UndefinedTrue();
            int msb = ((insn >> 14) & 1) != 0 ? 15 : 7;
            uint tmp = (uint)cpu.Reg((int)((insn >> 5) & 31));
            // N = tmp<msb>; Z = IsZero(tmp<msb:0>); V = tmp<msb+1> EOR tmp<msb>; C unchanged.
            uint n = (tmp >> msb) & 1;
            uint z = (tmp & ((2u << msb) - 1)) == 0 ? 1u : 0u;
            uint v = ((tmp >> (msb + 1)) & 1) ^ n;
            SetNzcv(n, z, Flag(FlagC), v);
            Next();
            return true;
        }
        return false;
    }
}
