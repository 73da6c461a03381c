// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// System instructions: MRS/MSR on the registers of <see cref="Arm64SysRegs"/> (ID registers read the VM's values and
/// are UNDEFINED to write; the debug, cache-geometry and PMU registers follow Arm64SysRegs.GuestRead/GuestWrite), on
/// the generic timer (<see cref="Arm64Timer"/>) and on the PSTATE and EL1 banked
/// special registers (NZCV, DAIF, CurrentEL, SPSel, SPSR_EL1, ELR_EL1, SP_EL0; PAN, UAO, DIT and SSBS in
/// A64Interpreter.PstateFields.cs), MSR DAIFSet/DAIFClr/SPSel/PAN/UAO/DIT/SSBS (immediate), and ERET. On hardware these EL1 registers are not trapped to KVM (HCR_EL2.TVM/TRVM are only set while
/// KVM tracks cache maintenance), so the guest sees its own values, as here. A register outside this set stops the run
/// with an emulation failure (real hardware would access it), and so does an MSR that would run the stage-1 MMU in a
/// configuration outside the model (A64Interpreter.Mmu.cs RefusesMmuConfig).
/// </summary>
internal sealed partial class A64Interpreter
{
    // The 16-bit op0:op1:CRn:CRm:op2 encodings of the special-purpose registers (Arm ARM C5.2).
    private const ushort SpsrEl1 = 0xC200, ElrEl1 = 0xC201, SpEl0 = 0xC208, SpSel = 0xC210, CurrentEl = 0xC212;
    private const ushort Nzcv = 0xDA10, Daif = 0xDA11;
    private const ushort TpidrroEl0 = 0xDE83, TpidrEl0 = 0xDE82, CtrEl0 = 0xD801;
    private const ulong DaifMask = 0xF << 6;

    /// <summary>Returns null when <paramref name="insn"/> is not a system instruction handled here.</summary>
    private A64Outcome? TrySystem(uint insn)
    {
        // Barriers, TLBI, AT, IC (A64Interpreter.Mmu.cs).
        if (TryMmuSystem(insn) is A64Outcome mmu) return mmu;
        // MSR/MRS (register): 1101010100 L 1 o0 op1 CRn CRm op2 Rt.
        if ((insn & 0xFFD0_0000) == 0xD510_0000)
        {
            bool read = ((insn >> 21) & 1) != 0;
            ushort encoding = (ushort)((insn >> 5) & 0xFFFF);
            int rt = (int)(insn & 31);
            // RNDR/RNDRRS (FEAT_RNG, EL0 too): A64Interpreter.RngSb.cs.
            if (TryRandomNumber(read, encoding, rt) is A64Outcome random) return random;
            // PAN, UAO, DIT, SSBS (A64Interpreter.PstateFields.cs).
            if (TryPstateFieldRegister(read, encoding, rt) is A64Outcome field) return field;
            return read ? Mrs(insn, encoding, rt) : Msr(insn, encoding, cpu.Reg(rt));
        }
        // MSR (immediate) to PSTATE fields: 1101010100 0 00 op1 0100 CRm op2 11111.
        if ((insn & 0xFFF8_F01F) == 0xD500_401F)
        {
            // CFINV, XAFLAG, AXFLAG (FEAT_FlagM/FlagM2, EL0 too): A64Interpreter.FlagM.cs.
            if (TryFlagMSystem(insn) is A64Outcome flagM) return flagM;
            // UAO, DIT, SSBS (A64Interpreter.PstateFields.cs; DIT and SSBS at EL0 too).
            if (TryPstateFieldImmediate(insn) is A64Outcome field) return field;
            int op1 = (int)((insn >> 16) & 7), op2 = (int)((insn >> 5) & 7);
            ulong crm = (insn >> 8) & 0xF;
            if (cpu.AtEl0) return UndefinedContinue();
            switch ((op1, op2))
            {
                case (3, 6): cpu.Pstate |= crm << 6; break;              // DAIFSet
                case (3, 7): cpu.Pstate &= ~(crm << 6); break;           // DAIFClr
                case (0, 5): cpu.Pstate = (cpu.Pstate & ~1UL) | (crm & 1); break; // SPSel
                case (0, 4) when HasPan: cpu.Pstate = (cpu.Pstate & ~PanBit) | ((crm & 1) << 22); break; // PAN (FEAT_PAN)
                default: throw new UnsupportedInstructionStop(insn);
            }
            Next();
            return A64Outcome.Continue;
        }
        // ERET: 1101011 0100 11111 000000 11111 00000. UNDEFINED at EL0; PC = ELR_EL1, PSTATE = SPSR_EL1.
        if (insn == 0xD69F_03E0)
        {
            if (cpu.AtEl0) return UndefinedContinue();
            cpu.Pc = cpu.ElrEl1;
            cpu.Pstate = cpu.Spsr[0];
            return A64Outcome.Continue;
        }
        return null;
    }

    private A64Outcome UndefinedContinue()
    {
        Undefined();
        return A64Outcome.Continue;
    }

    /// <summary>
    /// EL0 may reach only NZCV, TPIDR_EL0 and (read-only) TPIDRRO_EL0 and DCZID_EL0; DAIF needs SCTLR_EL1.UMA (clear at reset),
    /// CTR_EL0 SCTLR_EL1.UCT (bit 15, clear at reset), the timer registers their CNTKCTL_EL1 enable bits; the EL0 PMU
    /// registers go on to their handlers, which check PMUSERENR_EL0.
    /// </summary>
    private bool El0Denied(ushort encoding, bool write) =>
        cpu.AtEl0 && !(encoding is Nzcv or TpidrEl0 || (encoding is TpidrroEl0 or DczidEl0 && !write) ||
                       (encoding == Daif && (cpu.SctlrEl1 & (1UL << 9)) != 0) ||
                       (encoding == CtrEl0 && !write && (cpu.SctlrEl1 & (1UL << 15)) != 0) ||
                       (Arm64Timer.IsTimerEncoding(encoding) && Arm64Timer.El0Allowed(encoding, cpu.CntkctlEl1)) ||
                       IsPmuEl0Encoding(encoding));

    /// <summary>
    /// The EL0 PMU registers (op0 3, op1 3, CRn 9 CRm 12..14 or CRn 14): MDCR_EL2.TPM traps them to KVM, whose
    /// access_pm* handlers apply PMUSERENR_EL0 (Arm64PmuGuestAccess).
    /// </summary>
    private static bool IsPmuEl0Encoding(ushort encoding) =>
        ((encoding & 0xFF80) == 0xDC80 && ((encoding >> 3) & 0xF) is >= 12 and <= 14) || (encoding & 0xFF80) == 0xDF00;

    private A64Outcome Mrs(uint insn, ushort encoding, int rt)
    {
        if (El0Denied(encoding, write: false)) return UndefinedContinue();
        ulong value;
        switch (encoding)
        {
            case Nzcv: value = cpu.Pstate & 0xF000_0000UL; break;
            case Daif: value = cpu.Pstate & DaifMask; break;
            case CurrentEl: value = cpu.Pstate & 0xC; break;
            case DczidEl0: value = DczidValue(); break; // A64Interpreter.CacheMaintenance.cs
            case SpSel: value = cpu.Pstate & 1; break;
            case SpsrEl1: value = cpu.Spsr[0]; break;
            case ElrEl1: value = cpu.ElrEl1; break;
            case SpEl0:
                // Accessing SP_EL0 while it is the current stack pointer (SPSel = 0) is UNDEFINED.
                if ((cpu.Pstate & 1) == 0) return UndefinedContinue();
                value = cpu.SpEl0;
                break;
            default:
                if (Arm64Timer.IsTimerEncoding(encoding))
                {
                    value = cpu.Timer.GuestRead(encoding);
                    break;
                }
                // The GICv3 CPU interface (Vgic/VgicCpuInterface.cs) once the vGIC is ready.
                if (cpu.CpuInterface?.IsUndefined(encoding, write: false) == true) return UndefinedContinue();
                if (cpu.CpuInterface?.TryRead(encoding, out value) == true) break;
                int i = Arm64SysRegs.Find(encoding);
                if (i < 0) throw new UnsupportedInstructionStop(insn);
                switch (Arm64SysRegs.GuestRead(cpu, i, out value))
                {
                    case SysRegAccess.Undefined: return UndefinedContinue();
                    case SysRegAccess.Unsupported: throw new UnsupportedInstructionStop(insn);
                }
                break;
        }
        cpu.SetReg(rt, value);
        Next();
        return A64Outcome.Continue;
    }

    private A64Outcome Msr(uint insn, ushort encoding, ulong value)
    {
        if (El0Denied(encoding, write: true)) return UndefinedContinue();
        switch (encoding)
        {
            case Nzcv: cpu.Pstate = (cpu.Pstate & ~0xF000_0000UL) | (value & 0xF000_0000UL); break;
            case Daif: cpu.Pstate = (cpu.Pstate & ~DaifMask) | (value & DaifMask); break;
            case SpSel: cpu.Pstate = (cpu.Pstate & ~1UL) | (value & 1); break;
            case SpsrEl1: cpu.Spsr[0] = value; break;
            case ElrEl1: cpu.ElrEl1 = value; break;
            case CurrentEl or DczidEl0: return UndefinedContinue(); // read-only
            case SpEl0:
                if ((cpu.Pstate & 1) == 0) return UndefinedContinue();
                cpu.SpEl0 = value;
                break;
            default:
                switch (cpu.Timer.GuestWrite(encoding, value))
                {
                    case TimerWrite.Done: Next(); return A64Outcome.Continue;
                    case TimerWrite.Undefined: return UndefinedContinue();
                }
                if (cpu.CpuInterface?.IsUndefined(encoding, write: true) == true) return UndefinedContinue();
                if (cpu.CpuInterface?.TryWrite(encoding, value) == true) break;
                int i = Arm64SysRegs.Find(encoding);
                if (i < 0) throw new UnsupportedInstructionStop(insn);
                // An MMU configuration outside the model (A64Interpreter.Mmu.cs): refuse before the write commits.
                if (RefusesMmuConfig(i, value)) throw new UnsupportedInstructionStop(insn);
                switch (Arm64SysRegs.GuestWrite(cpu, i, value))
                {
                    case SysRegAccess.Undefined: return UndefinedContinue();
                    case SysRegAccess.Unsupported: throw new UnsupportedInstructionStop(insn);
                }
                break;
        }
        Next();
        return A64Outcome.Continue;
    }
}
