// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>Branches, exception generation (HVC, SMC, UDF) and hints.</summary>
internal sealed partial class A64Interpreter
{
    private A64Outcome BranchOrSystem(uint insn)
    {
        // Pointer authentication (A64Interpreter.PointerAuth.cs), before the HINT space it shares.
        if (TryPointerAuth(insn) is A64Outcome pac) return pac;
        // B / BL: op 00101 imm26.
        if ((insn & 0x7C00_0000) == 0x1400_0000)
        {
            long offset = (long)((int)(insn << 6) >> 4);
            if ((insn >> 31) != 0) cpu.X[30] = cpu.Pc + 4;
            cpu.Pc += (ulong)offset;
            return A64Outcome.Continue;
        }
        // B.cond: 0101010 0 imm19 0 cond.
        if ((insn & 0xFF00_0010) == 0x5400_0000)
        {
            if (ConditionHolds(insn & 15)) cpu.Pc += Imm19(insn);
            else Next();
            return A64Outcome.Continue;
        }
        // CBZ / CBNZ: sf 011010 op imm19 Rt.
        if ((insn & 0x7E00_0000) == 0x3400_0000)
        {
            ulong value = Truncate(cpu.Reg((int)(insn & 31)), Sf(insn));
            bool nonZero = ((insn >> 24) & 1) != 0;
            if ((value != 0) == nonZero) cpu.Pc += Imm19(insn);
            else Next();
            return A64Outcome.Continue;
        }
        // BR / BLR / RET: 1101011 0 0 opc(2) 11111 000000 Rn 00000.
        uint unconditionalRegister = insn & 0xFFFF_FC1F;
        if (unconditionalRegister is 0xD61F_0000 or 0xD63F_0000 or 0xD65F_0000)
        {
            int n = (int)((insn >> 5) & 31);
            ulong target = cpu.Reg(n);
            if (unconditionalRegister == 0xD63F_0000) cpu.X[30] = cpu.Pc + 4;
            // BTypeNext (FEAT_BTI, A64Interpreter.Bti.cs): BR by its page and register, BLR '10', RET '00' (the default).
            if (unconditionalRegister == 0xD61F_0000) IndirectJumpBType(n);
            else if (unconditionalRegister == 0xD63F_0000) IndirectCallBType();
            cpu.Pc = target;
            return A64Outcome.Continue;
        }
        // HVC #imm16: 11010100 000 imm16 000 10. Trapped to EL2 (HCR_EL2.HCD clear); UNDEFINED at EL0.
        if ((insn & 0xFFE0_001F) == 0xD400_0002)
        {
            if (cpu.AtEl0)
            {
                Undefined();
                return A64Outcome.Continue;
            }
            // The preferred return address of an HVC exception is the next instruction.
            Next();
            return A64Outcome.Hvc;
        }
        // SMC #imm16: 11010100 000 imm16 000 11. UNDEFINED at EL0; at EL1 HCR_EL2.TSC traps it to KVM as a trap
        // exception ("not a Secure Monitor Call exception"): the return address is the SMC itself.
        if ((insn & 0xFFE0_001F) == 0xD400_0003)
        {
            if (cpu.AtEl0)
            {
                Undefined();
                return A64Outcome.Continue;
            }
            ExceptionImm16 = (ushort)(insn >> 5);
            return A64Outcome.Smc;
        }
        // Hints (HINT #imm: NOP, YIELD, WFE, WFI, SEV, SEVL, …): 11010101 00000011 0010 CRm op2 11111.
        if ((insn & 0xFFFF_F01F) == 0xD503_201F)
        {
            Next();
            // WFI traps to KVM (HCR_EL2.TWI; kvm_handle_wfx → kvm_vcpu_wfi). Every other hint is a NOP here.
            return insn == 0xD503_207F ? A64Outcome.Wfi : A64Outcome.Continue;
        }
        if (TrySystem(insn) is A64Outcome system) return system;
        // UDF #imm16 (and the rest of the reserved op0 = 0000 space): permanently UNDEFINED.
        if ((insn & 0x1E00_0000) == 0 && (insn >> 31) == 0)
        {
            Undefined();
            return A64Outcome.Continue;
        }
        throw new UnsupportedInstructionStop(insn);
    }

    /// <summary>ESR_EL2.ISS imm16 of the last trapped SMC (kvm_vcpu_hvc_get_imm).</summary>
    public ushort ExceptionImm16 { get; private set; }

    /// <summary>imm19 (bits 23:5) × 4, sign-extended.</summary>
    // Arm ARM C6.2 B.cond/CBZ/CBNZ: offset = SignExtend(imm19:'00'); bits 4:0 (cond, Rt) are not part of it.
    private static ulong Imm19(uint insn) => (ulong)(long)(((int)(insn << 8) >> 13) << 2);
}
