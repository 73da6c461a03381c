// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The PSTATE fields beyond NZCV, DAIF and SPSel: PAN (FEAT_PAN), UAO (FEAT_UAO), DIT (FEAT_DIT) and SSBS (FEAT_SSBS2),
/// read and written through MRS/MSR (register) and MSR (immediate) (Arm ARM C5.2 "Special-purpose registers", C6.2
/// MSR (immediate)), and what an exception to EL1 does to them (arch/arm64/kvm/hyp/exception.c enter_exception64,
/// which builds the same PSTATE as AArch64.TakeException: "PSTATE.PAN is unchanged unless SCTLR_ELx.SPAN == 0b0",
/// "PSTATE.UAO is set to zero upon any exception to AArch64", "PSTATE.DIT is unchanged", "PSTATE.SSBS is set to
/// SCTLR_ELx.DSSBS upon any exception to AArch64", "PSTATE.BTYPE is set to zero"). DIT, SSBS and UAO are PSTATE
/// accesses the hardware never traps to KVM, so whether they exist follows the host CPU (<see cref="Arm64CpuModel"/>),
/// not the VM's possibly lowered ID registers. UAO only changes LDTR/STTR (A64Interpreter.Unprivileged.cs); DIT and
/// SSBS change timing and speculation only, which an interpreter has none of: both are kept and reported, as the
/// hardware does.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>PSTATE/SPSR bits (asm/ptrace.h PSR_UAO_BIT, PSR_DIT_BIT, PSR_SSBS_BIT).</summary>
    private const ulong UaoBit = 1UL << 23, DitBit = 1UL << 24, SsbsBit = 1UL << 12;

    /// <summary>SCTLR_EL1.DSSBS (bit 44): PSTATE.SSBS on taking an exception to EL1.</summary>
    private const ulong SctlrDssbs = 1UL << 44;

    // The 16-bit op0:op1:CRn:CRm:op2 encodings (Arm ARM C5.2): PAN S3_0_C4_C2_3, UAO S3_0_C4_C2_4, DIT S3_3_C4_C2_5,
    // SSBS S3_3_C4_C2_6.
    private const ushort PanReg = 0xC213, UaoReg = 0xC214, DitReg = 0xDA15, SsbsReg = 0xDA16;

    /// <summary>ID_AA64PFR0_EL1.DIT (bits 51:48) ≥ 1 on the host CPU.</summary>
    private bool HasDit => ((cpu.IdRegs.Model.Aa64Pfr0 >> 48) & 0xf) >= 1;

    /// <summary>ID_AA64PFR1_EL1.SSBS (bits 7:4): 1 = PSTATE.SSBS (MSR immediate only), 2 = also MRS/MSR SSBS.</summary>
    private int SsbsLevel => (int)((cpu.IdRegs.Model.Aa64Pfr1 >> 4) & 0xf);

    /// <summary>ID_AA64MMFR2_EL1.UAO (bits 7:4) ≥ 1 on the host CPU.</summary>
    private bool HasUao => ((cpu.IdRegs.Model.Aa64Mmfr2 >> 4) & 0xf) >= 1;

    /// <summary>
    /// enter_exception64's PSTATE beyond EL1h with DAIF masked: PAN per SCTLR_EL1.SPAN (A64Interpreter.Mmu.cs), DIT
    /// kept, SSBS = SCTLR_EL1.DSSBS, UAO and BTYPE cleared (by not being carried over).
    /// </summary>
    private ulong PstateOnException() =>
        PanOnException() | (HasDit ? cpu.Pstate & DitBit : 0) | (SsbsLevel >= 1 && (cpu.SctlrEl1 & SctlrDssbs) != 0 ? SsbsBit : 0);

    /// <summary>
    /// MSR (immediate) to UAO (op1 0, op2 3; EL1 only), DIT (op1 3, op2 2) or SSBS (op1 3, op2 1), both of which EL0
    /// may write (C6.2.229: "MSR DIT/SSBS, #imm" are not UNDEFINED at EL0). The value is CRm&lt;0&gt;. A field the
    /// host CPU lacks is an unallocated encoding: UNDEFINED. Null for every other field.
    /// </summary>
    private A64Outcome? TryPstateFieldImmediate(uint insn)
    {
        int op1 = (int)((insn >> 16) & 7), op2 = (int)((insn >> 5) & 7);
        ulong set = (insn >> 8) & 1;
        ulong bit;
        switch ((op1, op2))
        {
            case (0, 3) when HasUao:
                if (cpu.AtEl0) return UndefinedContinue();
                bit = UaoBit;
                break;
            case (3, 2) when HasDit: bit = DitBit; break;
            case (3, 1) when SsbsLevel >= 1: bit = SsbsBit; break;
            case (0, 3) or (3, 2) or (3, 1): return UndefinedContinue();
            default: return null;
        }
        cpu.Pstate = set != 0 ? cpu.Pstate | bit : cpu.Pstate & ~bit;
        Next();
        return A64Outcome.Continue;
    }

    /// <summary>
    /// MRS/MSR PAN, UAO (EL1 only), DIT and SSBS (EL0 too): the register form reads and writes the field at its PSTATE
    /// position. One the host CPU lacks is not a register there: UNDEFINED (SSBS's register form needs FEAT_SSBS2).
    /// Null when <paramref name="encoding"/> is none of them.
    /// </summary>
    private A64Outcome? TryPstateFieldRegister(bool read, ushort encoding, int rt)
    {
        ulong bit;
        switch (encoding)
        {
            case PanReg when HasPan:
                if (cpu.AtEl0) return UndefinedContinue();
                bit = PanBit;
                break;
            case UaoReg when HasUao:
                if (cpu.AtEl0) return UndefinedContinue();
                bit = UaoBit;
                break;
            case DitReg when HasDit: bit = DitBit; break;
            case SsbsReg when SsbsLevel >= 2: bit = SsbsBit; break;
            case PanReg or UaoReg or DitReg or SsbsReg: return UndefinedContinue();
            default: return null;
        }
        if (read) cpu.SetReg(rt, cpu.Pstate & bit);
        else cpu.Pstate = (cpu.Pstate & ~bit) | (cpu.Reg(rt) & bit);
        Next();
        return A64Outcome.Continue;
    }
}
