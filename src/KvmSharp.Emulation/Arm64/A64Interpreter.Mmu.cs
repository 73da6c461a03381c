// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The guest's stage-1 MMU (SCTLR_EL1.M; the walk is <see cref="A64Stage1"/>): translation of fetches and data
/// accesses, their faults as synchronous exceptions to EL1, KVM's handling of a walk that leaves guest memory, the
/// barriers, TLBI and AT. PSTATE.PAN (FEAT_PAN, which the VM's ID_AA64MMFR1_EL1 reports) is honoured by the walk,
/// set by MSR PAN and kept or set on exception entry per SCTLR_EL1.SPAN. Alignment faults (SCTLR_EL1.A,
/// Device memory) are in A64Interpreter.Alignment.cs; SCTLR_EL1.C/I and the Normal memory types change nothing.
/// </summary>
internal sealed partial class A64Interpreter
{
    private const ulong PanBit = 1UL << 22;
    private const ulong TcrHa = 1UL << 39, TcrHd = 1UL << 40, TcrDs = 1UL << 59;

    private static readonly int TcrSysRegIndex = Arm64SysRegs.Index("TCR_EL1"), ParIndex = Arm64SysRegs.Index("PAR_EL1"),
        Mmfr1Index = Arm64IdRegs.IndexOf("ID_AA64MMFR1_EL1");

    private bool MmuOn => (cpu.SctlrEl1 & 1) != 0;

    /// <summary>ID_AA64MMFR1_EL1.PAN (bits 23:20) non-zero: PSTATE.PAN exists.</summary>
    private bool HasPan => ((Arm64IdRegs.Read(cpu.IdRegs, Mmfr1Index) >> 20) & 0xf) != 0;

    /// <summary>
    /// AArch64.TakeException: PSTATE.PAN on entry to EL1 is set when SCTLR_EL1.SPAN (bit 23) is 0, else kept.
    /// </summary>
    private ulong PanOnException() =>
        !HasPan ? 0 : (cpu.SctlrEl1 & (1UL << 23)) == 0 ? PanBit : cpu.Pstate & PanBit;

    /// <summary>
    /// Stage 1 for one access of the current instruction. False: the instruction took an exception (the fault is
    /// delivered). MMU off: the VA is the IPA (D8.2.11 "The effects of disabling the stage 1 MMU"), as before.
    /// </summary>
    private bool Translate(ulong va, S1Access access, out ulong ipa, bool aligned = true) =>
        Translate(va, access, out ipa, out _, aligned);

    /// <summary>
    /// <see cref="Translate(ulong, S1Access, out ulong, bool)"/>, also telling whether the page is guarded (the leaf's
    /// GP bit with FEAT_BTI). With the MMU off there is no descriptor and so no GP bit: nothing is guarded
    /// (AArch64.S1DisabledOutput leaves the result's GP '0'). <paramref name="unprivileged"/>: an EL0 access made at EL1
    /// (LDTR/STTR with PSTATE.UAO = 0, A64Interpreter.Unprivileged.cs): the walk checks EL0's permissions, without PAN,
    /// and a fault is still taken from EL1.
    /// </summary>
    private bool Translate(ulong va, S1Access access, out ulong ipa, out bool guarded, bool aligned = true, bool unprivileged = false)
    {
        ipa = va;
        guarded = false;
        if (!MmuOn)
        {
            // AArch64.S1DisabledOutput: data accesses are Device-nGnRnE (Attr 0x00), so an unaligned one faults.
            if (!DeviceAlignmentFault(access, aligned, 0)) return true;
            AlignmentAbort(va, access);
            return false;
        }
        bool el0 = cpu.AtEl0 || unprivileged;
        bool pan = access != S1Access.Fetch && !el0 && (cpu.Pstate & PanBit) != 0 && HasPan;
        // A remembered walk reused unchanged (A64Interpreter.WalkCache.cs TryReuseWalk): TranslateStage1's answer for
        // it, S1Status.Ok with the remembered IPA page, attributes and GP bit, then the same checks as the Ok case below.
        if (TryReuseWalk(va, access, el0, pan, out ulong reusedIpa, out byte reusedAttr, out bool reusedGuarded))
        {
            if (DeviceAlignmentFault(access, aligned, reusedAttr))
            {
                AlignmentAbort(va, access);
                return false;
            }
            ipa = reusedIpa;
            guarded = reusedGuarded;
            return true;
        }
        var r = TranslateStage1(va, access, el0, pan); // A64Interpreter.WalkCache.cs: the walk, or one reused unchanged
        switch (r.Status)
        {
            case S1Status.Ok or S1Status.Fault when (r.Status == S1Status.Ok || r.Fsc >> 2 == A64Stage1.FscPermission >> 2) &&
                DeviceAlignmentFault(access, aligned, r.Attr):
                // AArch64.S1Translate: the Device alignment fault comes after the walk, before the permission check.
                AlignmentAbort(va, access);
                return false;
            case S1Status.Ok:
                ipa = r.Ipa;
                guarded = r.Guarded;
                return true;
            case S1Status.Fault:
                // D8.16 / AArch64.Abort → AArch64.DataAbort / InstructionAbort taken to EL1: EC 0x20/0x21 or 0x24/0x25,
                // ISS = DFSC/IFSC, WnR (bit 6) for a write, FnV = 0, ISV = 0 (ESR_EL1 never reports ISV), FAR_EL1 = VA.
                Stage1Abort(va, access, r.Fsc | (access == S1Access.Write ? 1u << 6 : 0));
                return false;
            case S1Status.WalkStage2:
                WalkAbort(va, access, r);
                return false;
            default:
                throw new UnsupportedInstructionStop(access == S1Access.Fetch ? 0 : LastInstruction);
        }
    }

    private void Stage1Abort(ulong va, S1Access access, uint iss)
    {
        uint ec = access == S1Access.Fetch ? (cpu.AtEl0 ? EcIabtLow : EcIabtCur) : (cpu.AtEl0 ? EcDabtLow : EcDabtCur);
        TakeException(ec, cpu.Pc, far: va, iss: iss);
    }

    /// <summary>
    /// A stage-2 fault on a descriptor read (ESR_EL2.S1PTW): arch/arm64/kvm/mmu.c kvm_handle_guest_abort. Outside
    /// every memslot (or a read-only slot's write, never for a read): "if (is_iabt) … kvm_inject_sea_iabt(vcpu,
    /// kvm_vcpu_get_hfar(vcpu))" / "if (kvm_vcpu_abt_iss1tw(vcpu)) … kvm_inject_sea_dabt(vcpu, kvm_vcpu_get_hfar(vcpu))"
    /// — never an MMIO exit; inject_fault.c inject_abt64 rewalks the tables (__kvm_find_s1_desc_level) and reports
    /// FSC = ESR_ELx_FSC_SEA_TTW(level), FAR_EL1 = the VA (HFAR). An IPA beyond the VM's IPA space:
    /// kvm_inject_size_fault (FSC 0, FAR = the IPA | VA[11:0]). A failed fault-in ends KVM_RUN as a data access does.
    /// </summary>
    private void WalkAbort(ulong va, S1Access access, S1Result r)
    {
        switch (r.Walk.Status)
        {
            case Stage2Status.Mmio:
                Stage1Abort(va, access, A64Stage1.FscSeaTtw + (uint)r.Level);
                break;
            case Stage2Status.InjectAbort:
            case Stage2Status.InjectSeaIpa:
                // (For a walk between the VM's IPA size and the limit, 6.18's kvm_inject_sea → inject_abt64 rewalks
                // from the IPA-valued addr with __kvm_find_s1_desc_level; that corner is kept as the size fault.)
                uint ec = access == S1Access.Fetch ? (cpu.AtEl0 ? EcIabtLow : EcIabtCur) : (cpu.AtEl0 ? EcDabtLow : EcDabtCur);
                TakeException(ec, cpu.Pc, far: (r.WalkIpa & ~0xfffUL) | (va & 0xfff));
                break;
            default:
                throw new RunErrorStop(r.Walk.Errno, r.WalkIpa, r.Walk.MemoryFaultExit, r.Walk.Userfault);
        }
    }

    /// <summary>
    /// Refuses (emulation failure before the write) an MSR that would run the MMU in a configuration the emulator
    /// does not model: SCTLR_EL1.M with a 16K/64K/reserved granule in an enabled TTBR half, TCR_EL1.HA/HD
    /// (FEAT_HAFDBS hardware updates) or TCR_EL1.DS (FEAT_LPA2).
    /// </summary>
    private bool RefusesMmuConfig(int index, ulong value)
    {
        string name = Arm64SysRegs.Table[index].Name;
        ulong sctlr = name == "SCTLR_EL1" ? value : cpu.SctlrEl1;
        ulong tcr = name == "TCR_EL1" ? value : cpu.SysRegs[TcrSysRegIndex];
        if (name == "TCR_EL1" && (value & (TcrHa | TcrHd | TcrDs)) != 0) return true;
        if (name is not ("SCTLR_EL1" or "TCR_EL1") || (sctlr & 1) == 0) return false;
        return (!A64Stage1.WalkDisabled(tcr, false) && !A64Stage1.Is4K(tcr, false)) ||
               (!A64Stage1.WalkDisabled(tcr, true) && !A64Stage1.Is4K(tcr, true));
    }

    /// <summary>
    /// Barriers, TLBI, AT, IC IALLU[IS] and the by-VA cache maintenance; null when <paramref name="insn"/> is none of them. Nothing is cached
    /// (no TLB, no I-cache), so the barriers, TLBI and IC complete at once.
    /// </summary>
    private A64Outcome? TryMmuSystem(uint insn)
    {
        // Barriers: 11010101 00000011 0011 CRm op2 11111 — CLREX (010), DSB (100), DMB (101), ISB (110), SB (111).
        if ((insn & 0xFFFF_F01F) == 0xD503_301F)
        {
            if (((insn >> 5) & 7) is 2 or 4 or 5 or 6) { Next(); return A64Outcome.Continue; }
            // SB (FEAT_SB): A64Interpreter.RngSb.cs.
            if (((insn >> 5) & 7) == 7) return SpeculationBarrier(insn);
            return null;
        }
        // SYS: 1101010100 0 01 op1 CRn CRm op2 Rt.
        if ((insn & 0xFFF8_0000) != 0xD508_0000) return null;
        int op1 = (int)((insn >> 16) & 7), crn = (int)((insn >> 12) & 15), crm = (int)((insn >> 8) & 15), op2 = (int)((insn >> 5) & 7);
        int rt = (int)(insn & 31);
        if (op1 == 0 && crn == 8)
        {
            // TLBI <EL1 op>: UNDEFINED at EL0; not trapped by KVM (HCR_EL2.TTLB clear); no TLB to invalidate.
            if (cpu.AtEl0) return UndefinedContinue();
            Next();
            return A64Outcome.Continue;
        }
        if (op1 == 0 && crn == 7 && crm is 1 or 5 && op2 == 0)
        {
            // IC IALLUIS / IC IALLU: EL1 only; no instruction cache.
            if (cpu.AtEl0) return UndefinedContinue();
            Next();
            return A64Outcome.Continue;
        }
        if (op1 == 0 && crn == 7 && ((crm == 8 && op2 <= 3) || (crm == 9 && op2 <= 1 && HasPan)))
        {
            // AT S1E1R/W (CRm 8, op2 0/1), S1E0R/W (op2 2/3), S1E1RP/WP (CRm 9, FEAT_PAN2: PAN applies). EL1 only.
            if (cpu.AtEl0) return UndefinedContinue();
            AddressTranslate(cpu.Reg(rt), write: (op2 & 1) != 0, el0: crm == 8 && op2 >= 2,
                pan: crm == 9 && (cpu.Pstate & PanBit) != 0);
            return A64Outcome.Continue;
        }
        // IC IVAU, DC CVAU/CVAC/CIVAC/CVAP/CVADP/IVAC, DC ZVA (A64Interpreter.CacheMaintenance.cs).
        return TryCacheMaintenance(insn, op1, crn, crm, op2, rt);
    }

    /// <summary>
    /// AT (Arm ARM C5.5 / D8.15 "Address translation instructions"): PAR_EL1 = the output address (PA [47:12]),
    /// SH [8:7], bit 11 RES1 and ATTR [63:56] (MAIR_EL1's attribute; Device-nGnRnE, SH 0b10 with the MMU off), or
    /// F = 1 with FST [6:1] for a stage-1 fault (no exception). A stage-2 fault on the walk is an abort as for a load.
    /// </summary>
    private void AddressTranslate(ulong va, bool write, bool el0, bool pan)
    {
        ulong par;
        if (!MmuOn)
        {
            par = (va & 0x0000_FFFF_FFFF_F000) | (2UL << 7) | (1UL << 11);
        }
        else
        {
            var r = A64Stage1.Translate(cpu, memory, va, write ? S1Access.Write : S1Access.Read, el0, pan && HasPan);
            switch (r.Status)
            {
                case S1Status.Ok:
                    par = (r.Ipa & 0x0000_FFFF_FFFF_F000) | ((ulong)r.Sh << 7) | (1UL << 11) | ((ulong)r.Attr << 56);
                    break;
                case S1Status.Fault:
                    par = 1 | ((ulong)r.Fsc << 1) | (1UL << 11);
                    break;
                case S1Status.WalkStage2:
                    WalkAbort(va, S1Access.Read, r);
                    return;
                default:
                    throw new UnsupportedInstructionStop(LastInstruction);
            }
        }
        cpu.SysRegs[ParIndex] = par;
        Next();
    }
}
