// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The guest's MRS/MSR of a PMUv3 register (MDCR_EL2.TPM traps them all to KVM): arch/arm64/kvm/sys_regs.c
/// access_pmcr, access_pmcnten, access_pminten, access_pmovs, access_pmswinc, access_pmselr, access_pmceid,
/// access_pmu_evcntr, access_pmu_evtyper, access_pmuserenr (6.18), with the PMUSERENR_EL0 checks of
/// check_pmu_access_disabled (pmu-emul.c): at EL0 a register needs PMUSERENR_EL0.EN (or SW / CR / ER for the software
/// increment, the cycle counter and the event counters), else KVM injects UNDEF; a counter index at or past PMCR_EL0.N
/// (other than the cycle counter's 31) is UNDEF (pmu_counter_idx_valid). A vCPU without KVM_ARM_VCPU_PMU_V3 never gets
/// here: pmu_visibility hides the registers (Arm64SysRegs.Hidden: UNDEF).
/// </summary>
internal static class Arm64PmuGuestAccess
{
    // ARMV8_PMU_USERENR_{EN,SW,CR,ER} and ARMV8_PMU_USERENR_MASK (perf_event.h).
    private const ulong UserenrEn = 1, UserenrSw = 2, UserenrCr = 4, UserenrEr = 8, UserenrMask = 0xf;

    // ARMV8_PMU_PMCR_{E,P,C,LP} (bits 0, 1, 2, 7).
    public const ulong PmcrE = 1, PmcrP = 2, PmcrC = 4, PmcrLp = 1UL << 7;

    /// <summary>The guest's MRS.</summary>
    public static SysRegAccess Read(Arm64Cpu cpu, SysRegDesc d, out ulong value)
    {
        value = 0;
        return Access(cpu, d, write: false, ref value);
    }

    /// <summary>The guest's MSR.</summary>
    public static SysRegAccess Write(Arm64Cpu cpu, SysRegDesc d, ulong value) => Access(cpu, d, write: true, ref value);

    /// <summary>
    /// check_pmu_access_disabled: "enabled = (reg &amp; flags) || vcpu_mode_priv(vcpu)"; not enabled → kvm_inject_undefined.
    /// </summary>
    private static bool Disabled(Arm64Cpu cpu, ulong flags) => cpu.AtEl0 && (cpu.SysRegs[Arm64PmuCounters.Userenr] & flags) == 0;

    /// <summary>pmu_counter_idx_valid: idx &lt; PMCR_EL0.N or the cycle counter.</summary>
    private static bool IdxValid(Arm64Cpu cpu, int idx) => idx < cpu.PmuVm.Counters || idx == Arm64PmuRegs.CycleIdx;

    private static SysRegAccess Access(Arm64Cpu cpu, SysRegDesc d, bool write, ref ulong value)
    {
        const SysRegAccess Undef = SysRegAccess.Undefined;
        ulong[] r = cpu.SysRegs;
        ulong mask = Arm64PmuRegs.CounterMask(cpu); // kvm_pmu_accessible_counter_mask
        switch (d.CRn, d.CRm, d.Op2)
        {
            case (9, 14, 1 or 2) when d.Op1 == 0:
                // access_pminten: check_pmu_access_disabled(vcpu, 0) (an EL1 register: UNDEF at EL0).
                if (Disabled(cpu, 0)) return Undef;
                if (!write) value = r[Arm64PmuCounters.Inten];
                else if ((d.Op2 & 1) != 0) r[Arm64PmuCounters.Inten] |= value & mask;
                else r[Arm64PmuCounters.Inten] &= ~(value & mask);
                return SysRegAccess.Done;
            case (9, 12, 0):
                return Pmcr(cpu, write, ref value);
            case (9, 12, 1 or 2):
                // access_pmcnten: pmu_access_el0_disabled; SET ors, CLR clears (masked), reads return the register.
                if (Disabled(cpu, UserenrEn)) return Undef;
                if (!write) value = r[Arm64PmuCounters.Cnten];
                else if ((d.Op2 & 1) != 0) r[Arm64PmuCounters.Cnten] |= value & mask;
                else r[Arm64PmuCounters.Cnten] &= ~(value & mask);
                return SysRegAccess.Done;
            case (9, 12, 3):
            case (9, 14, 3):
                // access_pmovs: "if (r->CRm & 0x2)" PMOVSSET_EL0 else PMOVSCLR_EL0.
                if (Disabled(cpu, UserenrEn)) return Undef;
                if (!write) value = r[Arm64PmuCounters.Ovs];
                else if ((d.CRm & 2) != 0) r[Arm64PmuCounters.Ovs] |= value & mask;
                else r[Arm64PmuCounters.Ovs] &= ~(value & mask);
                return SysRegAccess.Done;
            case (9, 12, 4):
                // access_pmswinc: a read is read_from_write_only (UNDEF); pmu_write_swinc_el0_disabled (SW | EN);
                // kvm_pmu_software_increment(vcpu, p->regval & mask).
                if (!write) return Undef;
                if (Disabled(cpu, UserenrSw | UserenrEn)) return Undef;
                Arm64PmuCounters.Increment(cpu, value & mask & ~(1UL << Arm64PmuRegs.CycleIdx), Arm64PmuCounters.SwIncr);
                return SysRegAccess.Done;
            case (9, 12, 5):
                // access_pmselr: pmu_access_event_counter_el0_disabled (ER | EN); written as is, read as SEL.
                if (Disabled(cpu, UserenrEr | UserenrEn)) return Undef;
                if (write) r[Arm64PmuCounters.Selr] = value;
                else value = r[Arm64PmuCounters.Selr] & 0x1f;
                return SysRegAccess.Done;
            case (9, 12, 6 or 7):
                // access_pmceid: read-only (an MSR is UNDEFINED), pmu_access_el0_disabled, kvm_pmu_get_pmceid.
                if (write || Disabled(cpu, UserenrEn)) return Undef;
                value = Arm64PmuCounters.Pmceid(cpu, d.Op2 == 7);
                return SysRegAccess.Done;
            case (9, 13, 0):
                // access_pmu_evcntr, PMCCNTR_EL0: pmu_access_cycle_counter_el0_disabled (CR | EN).
                if (Disabled(cpu, UserenrCr | UserenrEn)) return Undef;
                return Counter(cpu, Arm64PmuRegs.CycleIdx, write, ref value);
            case (9, 13, 1):
                // access_pmu_evtyper, PMXEVTYPER_EL0: the counter PMSELR_EL0.SEL selects (31: PMCCFILTR_EL0).
                if (Disabled(cpu, UserenrEn)) return Undef;
                return Evtyper(cpu, (int)(r[Arm64PmuCounters.Selr] & 0x1f), write, ref value);
            case (9, 13, 2):
                // access_pmu_evcntr, PMXEVCNTR_EL0: pmu_access_event_counter_el0_disabled, the PMSELR_EL0.SEL counter.
                if (Disabled(cpu, UserenrEr | UserenrEn)) return Undef;
                return Counter(cpu, (int)(r[Arm64PmuCounters.Selr] & 0x1f), write, ref value);
            case (9, 14, 0):
                // access_pmuserenr: a write at EL0 is undef_access; stored and read masked with USERENR_MASK.
                if (write)
                {
                    if (cpu.AtEl0) return Undef;
                    r[Arm64PmuCounters.Userenr] = value & UserenrMask;
                }
                else
                {
                    value = r[Arm64PmuCounters.Userenr] & UserenrMask;
                }
                return SysRegAccess.Done;
            case (14, >= 8 and <= 11, _):
                // access_pmu_evcntr, PMEVCNTRn_EL0: idx = ((CRm & 3) << 3) | (Op2 & 7).
                if (Disabled(cpu, UserenrEr | UserenrEn)) return Undef;
                return Counter(cpu, ((d.CRm & 3) << 3) | (d.Op2 & 7), write, ref value);
            case (14, >= 12, _):
                // access_pmu_evtyper, PMEVTYPERn_EL0 (n = 31: PMCCFILTR_EL0).
                if (Disabled(cpu, UserenrEn)) return Undef;
                return Evtyper(cpu, ((d.CRm & 3) << 3) | (d.Op2 & 7), write, ref value);
        }
        return SysRegAccess.Unsupported;
    }

    /// <summary>
    /// access_pmcr: pmu_access_el0_disabled; a read is kvm_vcpu_read_pmcr without P and C ("PMCR.P &amp; PMCR.C are
    /// RAZ"); a write replaces the writable bits (ARMV8_PMU_PMCR_MASK) of kvm_vcpu_read_pmcr, forces LC without 32-bit
    /// EL0 and goes to kvm_pmu_handle_pmcr.
    /// </summary>
    private static SysRegAccess Pmcr(Arm64Cpu cpu, bool write, ref ulong value)
    {
        if (Disabled(cpu, UserenrEn)) return SysRegAccess.Undefined;
        ulong current = Arm64PmuRegs.ReadPmcr(cpu, cpu.SysRegs[Arm64PmuCounters.Pmcr]);
        if (!write)
        {
            value = current & ~(PmcrP | PmcrC);
            return SysRegAccess.Done;
        }
        ulong val = (current & ~Arm64PmuRegs.PmcrMask) | (value & Arm64PmuRegs.PmcrMask);
        if (!Arm64HostCpu.Supports32BitEl0) val |= Arm64PmuRegs.PmcrLc;
        HandlePmcr(cpu, val);
        return SysRegAccess.Done;
    }

    /// <summary>
    /// pmu-emul.c kvm_pmu_handle_pmcr: LP cleared without FEAT_PMUv3p5 (the emulated PMU is PMUv3p1, so always);
    /// "The reset bits don't indicate any state, and shouldn't be saved": C and P are not stored; C zeroes the cycle
    /// counter, P every accessible event counter.
    /// </summary>
    public static void HandlePmcr(Arm64Cpu cpu, ulong val)
    {
        val &= ~PmcrLp;
        ulong[] r = cpu.SysRegs;
        r[Arm64PmuCounters.Pmcr] = val & ~(PmcrC | PmcrP);
        if ((val & PmcrC) != 0) r[Arm64PmuCounters.Evcntr[Arm64PmuRegs.CycleIdx]] = 0;
        if ((val & PmcrP) != 0)
        {
            for (int i = 0; i < cpu.PmuVm.Counters; i++) r[Arm64PmuCounters.Evcntr[i]] = 0;
        }
    }

    /// <summary>
    /// access_pmu_evcntr after its EL0 check: pmu_counter_idx_valid; a write also needs pmu_access_el0_disabled to
    /// pass, then kvm_pmu_set_counter_value (stored as is); a read is kvm_pmu_get_counter_value (event counters are
    /// 32-bit below PMUv3p5, the cycle counter 64-bit).
    /// </summary>
    private static SysRegAccess Counter(Arm64Cpu cpu, int idx, bool write, ref ulong value)
    {
        if (!IdxValid(cpu, idx)) return SysRegAccess.Undefined;
        int reg = Arm64PmuCounters.Evcntr[idx];
        if (write)
        {
            if (Disabled(cpu, UserenrEn)) return SysRegAccess.Undefined;
            cpu.SysRegs[reg] = value;
        }
        else
        {
            value = Arm64PmuCounters.Value(cpu, idx);
        }
        return SysRegAccess.Done;
    }

    /// <summary>
    /// access_pmu_evtyper after its EL0 check: pmu_counter_idx_valid; a write is kvm_pmu_set_counter_event_type (the
    /// value masked with kvm_pmu_evtyper_mask), a read the stored register.
    /// </summary>
    private static SysRegAccess Evtyper(Arm64Cpu cpu, int idx, bool write, ref ulong value)
    {
        if (!IdxValid(cpu, idx)) return SysRegAccess.Undefined;
        int reg = Arm64PmuCounters.Evtyper[idx];
        if (write) cpu.SysRegs[reg] = value & Arm64PmuRegs.EvtyperMask(cpu);
        else value = cpu.SysRegs[reg];
        return SysRegAccess.Done;
    }
}
