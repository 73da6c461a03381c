// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.Arm64;

/// <summary>What one A64 instruction asks of KVM_RUN.</summary>
internal enum A64Outcome
{
    /// <summary>Keep running the guest.</summary>
    Continue,

    /// <summary>HVC trapped to KVM (handle_hvc); PC already points after it.</summary>
    Hvc,

    /// <summary>WFI trapped to KVM (kvm_handle_wfx): the vCPU blocks until an interrupt or a signal.</summary>
    Wfi,

    /// <summary>
    /// SMC trapped to KVM (HCR_EL2.TSC: handle_smc); PC still points at it (ELR_EL2 of a trap), KVM skips it.
    /// <see cref="A64Interpreter.ExceptionImm16"/> holds its immediate.
    /// </summary>
    Smc,
}

/// <summary>
/// Runs A64 guest code one instruction at a time. With the stage-1 MMU off (SCTLR_EL1.M = 0, KVM's reset value) every
/// virtual address is the IPA; with it on, fetches and data accesses are translated first (A64Interpreter.Mmu.cs,
/// <see cref="A64Stage1"/>). Fetches, loads and stores then go through <see cref="Stage2Access"/> (a fetch from the page
/// of the last one reads through a view of that page while neither would decide differently: A64Interpreter.FetchCache.cs). The subset: MOVZ/MOVN/MOVK; ADD/ADDS/SUB/SUBS (immediate and
/// shifted register, so CMP/CMN/MOV to and from SP); AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS (shifted register, so MOV);
/// LDR/STR/LDRB/STRB/LDRH/STRH/LDRSB/LDRSH/LDRSW (unsigned immediate offset, and pre/post-index, whose writeback
/// leaves no valid syndrome); B, BL, B.cond, CBZ, CBNZ, BR, BLR, RET; NOP and the other hints; WFI; HVC; SMC; UDF; MRS/MSR
/// on the modelled system registers, MSR DAIFSet/DAIFClr/SPSel and ERET (A64Interpreter.System.cs); the pointer
/// authentication instructions (A64Interpreter.PointerAuth.cs); retired instructions counted by a vCPU's PMU
/// (A64Interpreter.Pmu.cs); the FP/SIMD subset behind the CPACR_EL1.FPEN trap (A64Interpreter.Simd.cs); branch target
/// identification on guarded pages where the host CPU has FEAT_BTI (A64Interpreter.Bti.cs).
/// Architectural exceptions the hardware would take to EL1 without KVM (UDF, a misaligned PC or SP) and the aborts
/// KVM injects are delivered through VBAR_EL1, as an EL1 guest would see them. Any other encoding ends the run
/// with an emulation failure (documented gap: real hardware would execute it).
/// </summary>
internal sealed partial class A64Interpreter(Arm64Cpu cpu, Stage2Access memory)
{
    // ESR_ELx.EC values (asm/esr.h).
    private const uint EcUnknown = 0x00;
    private const uint EcIabtLow = 0x20, EcIabtCur = 0x21, EcPcAlign = 0x22, EcDabtLow = 0x24, EcDabtCur = 0x25, EcSpAlign = 0x26;
    private const ulong EsrIl = 1UL << 25;

    /// <summary>asm/esr.h ESR_ELx_FSC_EXTABT: a synchronous external abort, not on a translation table walk.</summary>
    private const uint FscExtAbt = 0x10;

    private readonly byte[] _word = new byte[4];

    /// <summary>The last fetched instruction (for an emulation-failure report).</summary>
    public uint LastInstruction { get; private set; }

    /// <summary>Fetches and executes one instruction.</summary>
    public A64Outcome Step()
    {
        ulong pc = cpu.Pc;
        if ((pc & 3) != 0)
        {
            // PC alignment fault: taken to EL1 by the hardware (not trapped to KVM).
            TakeException(EcPcAlign, pc, far: pc);
            return A64Outcome.Continue;
        }
        // The page of the last fetch, while Translate and Access would read the same bytes (A64Interpreter.FetchCache.cs).
        if (!TryFetchRemembered(pc, out uint insn, out bool guarded))
        {
            // Stage 1 first when the MMU is on (A64Interpreter.Mmu.cs): a fault becomes an Instruction Abort to EL1.
            // It also says whether the page is guarded (FEAT_BTI's InGuardedPage, A64Interpreter.Bti.cs).
            if (!Translate(pc, S1Access.Fetch, out ulong fetchIpa, out guarded)) return A64Outcome.Continue;
            var r = memory.Access(fetchIpa, _word, write: false, fetch: true);
            switch (r.Status)
            {
                case Stage2Status.Done:
                    break;
                case Stage2Status.InjectAbort:
                    // kvm_handle_guest_abort: beyond the IPA space → kvm_inject_size_fault (FSC 0: level-0 address size).
                    TakeException(cpu.AtEl0 ? EcIabtLow : EcIabtCur, pc, far: pc);
                    return A64Outcome.Continue;
                case Stage2Status.InjectSeaIpa:
                    // kvm_inject_sea(vcpu, is_iabt, fault_ipa | hfar[11:0]): FSC EXTABT, FAR = the IPA with the VA's low bits.
                    TakeException(cpu.AtEl0 ? EcIabtLow : EcIabtCur, pc, far: (fetchIpa & ~0xfffUL) | (pc & 0xfff), iss: FscExtAbt);
                    return A64Outcome.Continue;
                case Stage2Status.InjectSea:
                    // 6.18 kvm_handle_guest_abort → kvm_inject_sea_iabt(vcpu, hfar) → inject_abt64: EC IABT_LOW from EL0,
                    // IABT_CUR from EL1, IL, FSC = ESR_ELx_FSC_EXTABT (0x10), FAR_EL1 = the faulting VA.
                    TakeException(cpu.AtEl0 ? EcIabtLow : EcIabtCur, pc, far: pc, iss: FscExtAbt);
                    return A64Outcome.Continue;
                default:
                    throw new RunErrorStop(r.Errno, pc, r.MemoryFaultExit, r.Userfault);
            }
            insn = BinaryPrimitives.ReadUInt32LittleEndian(_word);
            RememberFetch(pc, fetchIpa, guarded);
        }
        LastInstruction = insn;
        // FEAT_BTI (host CPU with ID_AA64PFR1_EL1.BT = 1): the branch target check and PSTATE.BTYPE (A64Interpreter.Bti.cs).
        if (cpu.IdRegs.Model.Bt != 0) return StepWithBti(insn, guarded);
        // A vCPU with a PMU counts retired instructions (Arm64PmuCounters); without one this is the only cost.
        return cpu.HasPmu ? ExecuteCounted(insn) : Execute(insn);
    }

    private A64Outcome Execute(uint insn)
    {
        // B/BL (x00101), B.cond (01010100, bit 4 = 0), CBZ/CBNZ (x011010): Arm ARM C4.1 "Branches, Exception
        // Generating and System instructions". No group tried below before BranchOrSystem decodes any of these (their
        // masks all need other values of bits 31:24), so they go to BranchOrSystem at once, as they end up there.
        if ((insn & 0x7C00_0000) == 0x1400_0000 || (insn & 0xFF00_0010) == 0x5400_0000 || (insn & 0x7E00_0000) == 0x3400_0000)
            return BranchOrSystem(insn);
        // SVE: op0 (bits 28:25) = 0b0010 (A64Interpreter.Sve.cs).
        if ((insn & 0x1E00_0000) == 0x0400_0000 && TrySve(insn)) return A64Outcome.Continue;
        if (TryDataProcessing(insn)) return A64Outcome.Continue;
        if (TryLoadStore(insn) || TryExclusive(insn)) return A64Outcome.Continue; // exclusives, LDAR/STLR: A64Interpreter.Exclusive.cs
        // The groups compiled C needs beyond that (A64Interpreter.CompiledCode.cs).
        if (TryCompiledCode(insn)) return A64Outcome.Continue;
        // FP/SIMD (A64Interpreter.Simd.cs), before BranchOrSystem, which would refuse MRS/MSR FPCR/FPSR.
        if (TrySimdFp(insn)) return A64Outcome.Continue;
        return BranchOrSystem(insn);
    }

    private void Next() => cpu.Pc += 4;

    /// <summary>An encoding the Arm ARM leaves unallocated, or UDF: UNDEFINED, taken to EL1 with EC 0 (no KVM trap).</summary>
    private void Undefined() => TakeException(EcUnknown, cpu.Pc, far: null);

    /// <summary>
    /// AArch64.TakeException to EL1 (synchronous): SPSR_EL1 = PSTATE, ELR_EL1 = the faulting instruction, ESR_EL1
    /// (ISS from <paramref name="iss"/>) and (for aborts) FAR_EL1 set, PSTATE = EL1h with D, A, I, F masked (NZCV
    /// kept), PC = VBAR_EL1 + 0x000 (from EL1t),
    /// 0x200 (from EL1h) or 0x400 (from EL0). arch/arm64/kvm/inject_fault.c builds the same frame for injected aborts.
    /// </summary>
    private void TakeException(uint ec, ulong preferredReturn, ulong? far, ulong iss = 0)
    {
        _tookSyncException = true;
        ulong offset = cpu.AtEl0 ? 0x400UL : (cpu.Mode & 1) != 0 ? 0x200UL : 0UL;
        cpu.Spsr[0] = cpu.Pstate;
        cpu.ElrEl1 = preferredReturn;
        cpu.EsrEl1 = ((ulong)ec << 26) | EsrIl | iss;
        if (far is ulong f) cpu.FarEl1 = f;
        cpu.Pstate = (cpu.Pstate & 0xf000_0000UL) | Arm64Cpu.ResetPstateEl1 | PstateOnException();
        cpu.Pc = cpu.VbarEl1 + offset;
    }

    /// <summary>
    /// A data abort KVM reflects into the guest: kvm_inject_size_fault (FSC 0) or, with <paramref name="sea"/>,
    /// kvm_inject_sea → inject_abt64 (FSC ESR_ELx_FSC_EXTABT); FAR = the IPA | VA[11:0] for both.
    /// </summary>
    private void InjectDataAbort(ulong address, bool sea = false) =>
        TakeException(cpu.AtEl0 ? EcDabtLow : EcDabtCur, cpu.Pc, far: address, iss: sea ? FscExtAbt : 0);

    private void SpAlignmentFault() => TakeException(EcSpAlign, cpu.Pc, far: null);
}
