// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// FEAT_BTI, branch target identification (Arm ARM DDI 0487, "Branch Target Identification" and the pseudocode
/// BranchTargetCheck, BTypeCompatible_BTI, BTypeCompatible_PACIXSP, AArch64.BranchTargetException), on a host CPU
/// whose ID_AA64PFR1_EL1.BT is 1 (<see cref="Arm64CpuModel.Bt"/>; the hardware does not trap any of it to KVM, so it
/// follows the host model, not the VM's ID registers). Without it everything below is skipped: BTI is a NOP hint,
/// the GP bit is ignored, PSTATE bits 11:10 are not touched.
/// <list type="bullet">
/// <item>PSTATE.BTYPE (bits 11:10, saved in and restored from SPSR_EL1) is "BTypeNext" of the instruction that just
/// completed: BR/BRAA/BRAB/BRAAZ/BRABZ set 0b01 when they are in a non-guarded page or branch through X16/X17, else
/// 0b11; BLR/BLRAA/BLRAB/BLRAAZ/BLRABZ set 0b10; every other instruction (RET/RETAA/RETAB and BTI explicitly,
/// the rest by BranchTargetCheck's "PSTATE.BTYPE defaults to 00") sets 0b00. An exception return (ERET, ERETAA,
/// ERETAB) takes it from SPSR_EL1 (SetPSTATEFromPSR), and an exception entry clears it (AArch64.TakeException;
/// PstateOnException), after TakeException saved it in SPSR_EL1 — the "zero_btype = FALSE" choice the pseudocode
/// permits for every exception type, and requires for the PC alignment, Instruction Abort, Breakpoint, interrupt
/// and Branch Target exceptions.</item>
/// <item>Guarded pages: the GP bit (50) of the stage-1 leaf descriptor (A64Stage1), carried through the walk and
/// fetch caches to <see cref="Step"/>; with the MMU off no page is guarded.</item>
/// <item>The check: an instruction in a guarded page, with PSTATE.BTYPE != 0b00, that is not compatible with it
/// takes the Branch Target exception before it executes — after the PC alignment fault and the Instruction Abort
/// of its fetch, before any UNDEFINED or trap of the instruction itself.</item>
/// <item>KVM: nothing traps. HCR_EL2 has no control routing EC 0x0D to EL2 (arch/arm64/kvm/handle_exit.c
/// arm_exit_handlers has no ESR_ELx_EC_BTI entry; the guest's exception goes to its own VBAR_EL1), and the exceptions
/// KVM injects clear PSTATE.BTYPE (arch/arm64/kvm/hyp/exception.c enter_exception64: "PSTATE.BTYPE is set to zero
/// upon any exception to AArch64"). An instruction KVM emulates and skips has it cleared by kvm_incr_pc
/// (hyp/include/hyp/adjust_pc.h: "*vcpu_cpsr(vcpu) &amp;= ~PSR_BTYPE_MASK"): the same 0b00 BTypeNext gives.</item>
/// </list>
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ESR_ELx.EC 0x0D: Branch Target exception (asm/esr.h ESR_ELx_EC_BTI).</summary>
    private const uint EcBranchTarget = 0x0D;

    /// <summary>PSTATE/SPSR.BTYPE, bits 11:10 (asm/ptrace.h PSR_BTYPE_SHIFT, PSR_BTYPE_MASK).</summary>
    private const int BtypeShift = 10;

    private const ulong BtypeMask = 3UL << BtypeShift;

    /// <summary>SCTLR_EL1.BT0 (bit 35, EL0) and BT1 (bit 36, EL1): PACIASP/PACIBSP are not compatible with BTYPE 0b11.</summary>
    private const ulong SctlrBt0 = 1UL << 35, SctlrBt1 = 1UL << 36;

    // BTypeNext of the instruction being executed (0 unless a BR/BLR form sets it) and InGuardedPage of its own page.
    private int _btypeNext;
    private bool _inGuardedPage;

    /// <summary>
    /// <see cref="Step"/>'s execution with FEAT_BTI: BranchTargetCheck, then the instruction, then PSTATE.BTYPE =
    /// BTypeNext unless the instruction took an exception (which set PSTATE itself) or was an exception return.
    /// </summary>
    private A64Outcome StepWithBti(uint insn, bool guarded)
    {
        int btype = (int)((cpu.Pstate >> BtypeShift) & 3);
        // BranchTargetCheck: "if InGuardedPage && PSTATE.BTYPE != '00' && !BTypeCompatible && !Halted() then
        // AArch64.BranchTargetException(ThisInstrAddr())".
        if (guarded && btype != 0 && !BTypeCompatible(insn, btype))
        {
            // AArch64.BranchTargetException: EC 0x0D, ISS<1:0> = PSTATE.BTYPE (the rest RES0), preferred return = this
            // instruction, taken to EL1 (no EL2 routing without HCR_EL2.TGE). SPSR_EL1.BTYPE keeps the value.
            TakeException(EcBranchTarget, cpu.Pc, far: null, iss: (ulong)btype);
            return A64Outcome.Continue;
        }
        _inGuardedPage = guarded;
        _btypeNext = 0;
        _tookSyncException = false;
        A64Outcome outcome = cpu.HasPmu ? ExecuteCounted(insn) : Execute(insn);
        // (Nothing to write when BTYPE was 00 and stays 00: no instruction but an exception return or entry writes it.)
        if ((btype | _btypeNext) != 0 && !_tookSyncException && !IsExceptionReturn(insn))
            cpu.Pstate = (cpu.Pstate & ~BtypeMask) | ((ulong)_btypeNext << BtypeShift);
        return outcome;
    }

    /// <summary>ERET (1101011 0100 11111 000000 11111 00000), ERETAA / ERETAB (… 00001 M 11111 11111).</summary>
    private static bool IsExceptionReturn(uint insn) => insn == 0xD69F_03E0 || (insn & 0xFFFF_FBFF) == 0xD69F_0BFF;

    /// <summary>
    /// BTypeCompatible as the instruction's decode sets it (default FALSE): BTI &lt;targets&gt; (HINT CRm 0100, op2
    /// xx0: BTypeCompatible_BTI(op2&lt;2:1&gt;)); PACIASP / PACIBSP (HINT CRm 0011, op2 001 / 011: "if
    /// !IsFeatureImplemented(FEAT_PAuth) then EndOfDecode(Decode_NOP)", else BTypeCompatible_PACIXSP()); BRK and HLT
    /// ("if IsFeatureImplemented(FEAT_BTI) then SetBTypeCompatible(TRUE)", so a debugger may break on a landing pad).
    /// </summary>
    private bool BTypeCompatible(uint insn, int btype)
    {
        if ((insn & 0xFFFF_F01F) == 0xD503_201F)
        {
            uint crm = (insn >> 8) & 15, op2 = (insn >> 5) & 7;
            // AArch64.ExecutingBTIInstr: CRm == '0100' && op2<0> == '0'.
            if (crm == 0b0100 && (op2 & 1) == 0) return BTypeCompatibleBti(op2 >> 1, btype);
            if (crm == 0b0011 && (op2 == 0b001 || op2 == 0b011)) return HostAddressAuth != 0 && BTypeCompatiblePacixsp(btype);
            return false;
        }
        // BRK #imm16: 11010100 001 imm16 000 00; HLT #imm16: 11010100 010 imm16 000 00.
        return (insn & 0xFFE0_001F) is 0xD420_0000 or 0xD440_0000;
    }

    /// <summary>
    /// BTypeCompatible_BTI(hintcode): '00' (BTI) FALSE; '01' (BTI c) PSTATE.BTYPE != '11'; '10' (BTI j)
    /// PSTATE.BTYPE != '10'; '11' (BTI jc) TRUE.
    /// </summary>
    private static bool BTypeCompatibleBti(uint hintcode, int btype) => hintcode switch
    {
        0b00 => false,
        0b01 => btype != 0b11,
        0b10 => btype != 0b10,
        _ => true,
    };

    /// <summary>
    /// BTypeCompatible_PACIXSP: BTYPE '01' or '10' TRUE; '11' only when SCTLR_ELx.BT0 (EL0, bit 35) / BT1 (EL1, bit 36)
    /// of the current EL is 0 ("index = if PSTATE.EL == EL0 then 35 else 36; return SCTLR[]&lt;index&gt; == '0'").
    /// </summary>
    private bool BTypeCompatiblePacixsp(int btype) =>
        btype != 0b11 || (cpu.SctlrEl1 & (cpu.AtEl0 ? SctlrBt0 : SctlrBt1)) == 0;

    /// <summary>
    /// BTypeNext of BR, BRAA, BRAB, BRAAZ, BRABZ through X<paramref name="n"/> (BranchType_INDIR): "if InGuardedPage
    /// then if n == 16 || n == 17 then BTypeNext = '01' else BTypeNext = '11'; else BTypeNext = '01'" — InGuardedPage
    /// of the branch's own page.
    /// </summary>
    private void IndirectJumpBType(int n) => _btypeNext = _inGuardedPage && n != 16 && n != 17 ? 0b11 : 0b01;

    /// <summary>BTypeNext of BLR, BLRAA, BLRAB, BLRAAZ, BLRABZ (BranchType_INDCALL): '10'.</summary>
    private void IndirectCallBType() => _btypeNext = 0b10;
}
