// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Cache maintenance by virtual address (Arm ARM C5.3 "A64 system instructions for cache maintenance", D7.5) and
/// DC ZVA. The emulator has no caches (memory is coherent with instruction fetch), so IC IVAU, DC CVAU, CVAC, CIVAC,
/// CVAP, CVADP and IVAC change no data; what remains are the architecture's checks, since they are address-translating
/// operations (the AArch64.DC / AArch64.IC pseudocode calls AArch64.TranslateAddress):
/// <list type="bullet">
/// <item>EL0: IC IVAU and DC CVAU/CVAC/CIVAC/CVAP/CVADP need SCTLR_EL1.UCI (bit 26), DC ZVA SCTLR_EL1.DZE (bit 14),
/// else they trap to EL1 with EC 0x18 (ISS: Op0, Op2, Op1, CRn, Rt, CRm, Direction 0); DC IVAC is UNDEFINED at EL0.
/// KVM sets none of HCR_EL2.TPU/TOCU/TPCP/TDZ, so nothing goes to EL2.</item>
/// <item>Stage 1: a translation, access-flag or address-size fault is a Data Abort with ESR.CM (bit 8) = 1 and
/// WnR (bit 6) = 1 (Arm ARM D24 "ISS encoding for an exception from a Data Abort": "For faults on cache maintenance
/// and address translation instructions, this bit always returns a value of 1"), FAR = the VA in Xt. PSTATE.PAN does
/// not apply (D8.4.2: PAN has no effect on "data cache instructions other than DC ZVA"); so a clean at EL1 takes no
/// Permission fault; at EL0 one without read permission does (for IC IVAU that is IMPLEMENTATION DEFINED; taken
/// here). DC IVAC at EL1 runs as DC CIVAC under KVM's HCR_EL2.VM, so it needs no write permission either.</item>
/// <item>Stage 2: arch/arm64/kvm/mmu.c kvm_handle_guest_abort, for a CM abort on an IPA outside every memslot:
/// "if (kvm_is_error_hva(hva) &amp;&amp; kvm_vcpu_dabt_is_cm(vcpu)) { kvm_incr_pc(vcpu); ret = 1; … }" — the
/// instruction is skipped, with no MMIO exit. Inside a memslot the page is faulted in (user_mem_abort); a walk that
/// leaves memory is WalkAbort's. A CM operation needs only read permission at stage 2, so a page stage 2 already maps
/// (the emulator's per-VM leaves, Mmu/MmuMappings.cs, as each fault installed them) takes no abort at all. On a page
/// it does not map, KVM sees the CM abort as a write (kvm_emulate.h kvm_is_write_fault → kvm_vcpu_dabt_iswrite: WnR
/// = 1): user_mem_abort maps it writable and marks it dirty under dirty logging ("if (writable &amp;&amp; !ret)
/// mark_page_dirty_in_slot"), and in a READONLY slot ("write_fault &amp;&amp; !writable", a slot exists) it is
/// io_mem_abort without a syndrome: KVM_EXIT_ARM_NISV (esr_iss CM | WnR | FSC) with KVM_CAP_ARM_NISV_TO_USER, else
/// KVM_RUN fails with ENOSYS (Arm64/Stage2Access.cs CacheMaintenance).</item>
/// <item>DC ZVA: zeroes the DCZID_EL0.BS block (64 bytes) holding Xt as one store (PAN applies, MMIO is a
/// no-syndrome abort); any Device memory type (the MMU off included) is an Alignment fault (AArch64.DC ZVA:
/// "if memaddrdesc.memattrs.memtype == MemType_Device … AArch64.AlignmentFault").</item>
/// </list>
/// </summary>
internal sealed partial class A64Interpreter
{
    private const uint EcSysTrap = 0x18;

    /// <summary>SCTLR_EL1.UCI (bit 26) and DZE (bit 14): EL0 may use cache maintenance by VA / DC ZVA.</summary>
    private const ulong SctlrUci = 1UL << 26, SctlrDze = 1UL << 14;

    /// <summary>
    /// DCZID_EL0: BS (bits 3:0) = 4, a 64-byte block (log2 of words), equal to CTR_EL0.DminLine (Arm64HostCpu.Ctr);
    /// DZP (bit 4) reads 1 at EL0 while SCTLR_EL1.DZE is clear (D24 DCZID_EL0.DZP).
    /// </summary>
    private const ulong DczidBs = 4;

    private const int ZvaBlock = 4 << (int)DczidBs;

    /// <summary>The 16-bit encoding of DCZID_EL0 (op0 3, op1 3, CRn 0, CRm 0, op2 7).</summary>
    private const ushort DczidEl0 = 0xD807;

    private static readonly int Isar1Index = Arm64IdRegs.IndexOf("ID_AA64ISAR1_EL1");

    private ulong DczidValue() => DczidBs | (cpu.AtEl0 && (cpu.SctlrEl1 & SctlrDze) == 0 ? 1UL << 4 : 0);

    private readonly byte[] _zvaZeros = new byte[ZvaBlock];

    /// <summary>
    /// kvm_vcpu_dabt_iss_nisv_sanitized of a CM abort on a READONLY slot: CM (bit 8), WnR (bit 6) and the stage-2 FSC
    /// the emulator reports for load/stores (<see cref="NisvIss"/>: translation fault, level 3).
    /// </summary>
    private static readonly ulong CmNisvIss = NisvIss(write: true) | (1UL << 8);

    /// <summary>
    /// The by-VA cache maintenance instructions and DC ZVA (SYS op1, CRn 7, CRm, op2); null for other SYS encodings.
    /// </summary>
    private A64Outcome? TryCacheMaintenance(uint insn, int op1, int crn, int crm, int op2, int rt)
    {
        if (crn != 7 || op2 != 1) return null;
        if (op1 == 0 && crm == 6)
        {
            // DC IVAC: UNDEFINED at EL0. At EL1 "elsif EL2Enabled() && HCR_EL2.<DC,VM> != '00' then DC_CIVAC(X[t])"
            // (Arm ARM DC IVAC pseudocode): KVM always sets HCR_EL2.VM (HCR_GUEST_FLAGS), so it is a clean and
            // invalidate, which needs no write permission (the plain invalidate would).
            if (cpu.AtEl0) return UndefinedContinue();
            CacheMaintenanceByVa(cpu.Reg(rt));
            return A64Outcome.Continue;
        }
        if (op1 != 3) return null;
        // ID_AA64ISAR1_EL1.DPB (bits 3:0): 1 DC CVAP (FEAT_DPB), 2 also DC CVADP (FEAT_DPB2).
        ulong dpb = Arm64IdRegs.Read(cpu.IdRegs, Isar1Index) & 0xf;
        bool byVa = crm switch
        {
            5 or 10 or 11 or 14 => true, // IC IVAU, DC CVAC, DC CVAU, DC CIVAC
            12 => dpb >= 1,              // DC CVAP
            13 => dpb >= 2,              // DC CVADP
            _ => false,
        };
        if (!byVa && crm != 4) return null;
        if (cpu.AtEl0 && (cpu.SctlrEl1 & (crm == 4 ? SctlrDze : SctlrUci)) == 0)
        {
            // AArch64.SystemAccessTrap(EL1, 0x18): ISS Op0 [21:20] = 1, Op2 [19:17], Op1 [16:14], CRn [13:10],
            // Rt [9:5], CRm [4:1], Direction [0] = 0.
            ulong iss = (1UL << 20) | ((ulong)op2 << 17) | ((ulong)op1 << 14) | ((ulong)crn << 10) | ((ulong)rt << 5) |
                        ((ulong)crm << 1);
            TakeException(EcSysTrap, cpu.Pc, far: null, iss: iss);
            return A64Outcome.Continue;
        }
        if (crm == 4)
        {
            DcZva(cpu.Reg(rt));
            return A64Outcome.Continue;
        }
        CacheMaintenanceByVa(cpu.Reg(rt));
        return A64Outcome.Continue;
    }

    /// <summary>
    /// One by-VA maintenance operation on <paramref name="va"/>: its stage-1 and stage-2 checks (class comment), then
    /// nothing to do on the data.
    /// </summary>
    private void CacheMaintenanceByVa(ulong va)
    {
        ulong ipa = va;
        if (MmuOn)
        {
            bool el0 = cpu.AtEl0;
            var r = TranslateStage1(va, S1Access.Read, el0, pan: false);
            switch (r.Status)
            {
                case S1Status.Ok:
                    ipa = r.Ipa;
                    break;
                case S1Status.Fault:
                    // CM (bit 8) and WnR (bit 6) set for every cache maintenance fault.
                    Stage1Abort(va, S1Access.Read, r.Fsc | (1u << 8) | (1u << 6));
                    return;
                case S1Status.WalkStage2:
                    // A stage-2 fault on the walk: kvm_vcpu_abt_iss1tw comes before the CM check.
                    WalkAbort(va, S1Access.Read, r);
                    return;
                default:
                    throw new UnsupportedInstructionStop(LastInstruction);
            }
        }
        // Stage 2 (Stage2Access.CacheMaintenance): a mapped page takes no fault; an unmapped one is a write fault
        // (mapped writable, marked dirty under dirty logging); outside every memslot KVM skips the instruction
        // (kvm_handle_guest_abort, kvm_incr_pc); in a READONLY slot it is io_mem_abort without ISV (mmio.c: "No valid
        // syndrome?" → KVM_EXIT_ARM_NISV with esr_iss CM | WnR | FSC, or -ENOSYS), the PC left on the instruction.
        var s2 = memory.CacheMaintenance(ipa, out bool outsideMemslots);
        switch (s2.Status)
        {
            case Stage2Status.Done:
                Next();
                return;
            case Stage2Status.Mmio when outsideMemslots:
                Next();
                return;
            case Stage2Status.Mmio:
                throw new NisvStop(CmNisvIss, ipa);
            case Stage2Status.InjectAbort:
            case Stage2Status.InjectSeaIpa:
                InjectDataAbort(ipa, sea: s2.Status == Stage2Status.InjectSeaIpa);
                return;
            default:
                throw new RunErrorStop(s2.Errno, ipa, s2.MemoryFaultExit, s2.Userfault);
        }
    }

    /// <summary>DC ZVA (AArch64.DC ZVA / MemZero): the block holding <paramref name="va"/> written with zeros.</summary>
    private void DcZva(ulong va)
    {
        ulong start = va & ~(ulong)(ZvaBlock - 1);
        if (!MemoryAccess(start, _zvaZeros, write: true, default, isvValid: false, alignment: 1, deviceFaults: true)) return;
        Next();
    }
}
