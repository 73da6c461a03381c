// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// kvm->arch.nr_pmu_counters (PMCR_EL0.N) of a VM whose vCPUs have KVM_ARM_VCPU_PMU_V3: kvm_arm_set_default_pmu sets it
/// to the host PMU's counter count at the first PMU vCPU's KVM_ARM_VCPU_INIT; set_pmcr may lower it before the VM runs.
/// </summary>
internal sealed class Arm64PmuVm
{
    /// <summary>kvm_arm_pmu_get_max_counters of the emulated host: Neoverse N1 has 6 event counters [D].</summary>
    public const int MaxCounters = 6;

    public int Counters { get; set; }

    /// <summary>
    /// kvm->arch.pmu_filter: one bit per event (set: allowed), null until the first KVM_ARM_VCPU_PMU_V3_FILTER
    /// (Arm64PmuAttrs).
    /// </summary>
    public ulong[]? Filter { get; set; }
}

/// <summary>
/// The PMUv3 registers of arch/arm64/kvm/sys_regs.c sys_reg_descs[] (PMU_SYS_REG: visibility = pmu_visibility, so
/// hidden — not listed, ENOENT, UNDEF to the guest — unless the vCPU has KVM_ARM_VCPU_PMU_V3), with their reset and
/// userspace rules:
/// <list type="bullet">
/// <item>PMINTENSET/CLR_EL1, PMCNTENSET/CLR_EL0, PMOVSCLR/SET_EL0: one storage per pair (.reg), reset_pmu_reg
/// (reset_unknown &amp; (BIT(31) | GENMASK(N - 1, 0))), get_pmreg / set_pmreg mask with
/// kvm_pmu_accessible_counter_mask.</item>
/// <item>PMCR_EL0: reset_pmcr (LC, bit 6, when there is no 32-bit EL0); get_pmcr is kvm_vcpu_read_pmcr (N from the VM);
/// set_pmcr takes N into the VM if the VM has not run and N &lt;= the host's counters (else silently ignores it), keeps
/// bits [7:0] of the value and forces LC.</item>
/// <item>PMSWINC_EL0: get_raz_reg / set_wi_reg. PMSELR_EL0: reset_unknown &amp; SEL (0x1f), plain store.</item>
/// <item>PMCCNTR_EL0 (reset_unknown) and PMEVCNTRn_EL0 (reset_pmevcntr: reset_unknown &amp; GENMASK(31, 0)):
/// get_pmu_evcntr / set_pmu_evcntr. The stored value is returned as is for the cycle counter, its low 32 bits for an
/// event counter (kvm_pmu_get_pmc_value: the VM's PMUVer is below V3P5, kvm_pmc_is_64bit is false).</item>
/// <item>PMEVTYPERn_EL0: reset_pmevtyper (reset_unknown &amp; kvm_pmu_evtyper_mask), plain store; PMCCFILTR_EL0 and
/// PMUSERENR_EL0: reset_val 0, plain store.</item>
/// <item>PMCEID0/1_EL0, PMXEVTYPER_EL0, PMXEVCNTR_EL0: no storage, not listed.</item>
/// </list>
/// The guest's MRS/MSR reach the access_pm* handlers (<see cref="Arm64PmuGuestAccess"/>, PMCEID0/1, PMXEVTYPER and
/// PMXEVCNTR included) and the counters count what the interpreter can count (<see cref="Arm64PmuCounters"/>). A PMU
/// vCPU runs once KVM_ARM_VCPU_PMU_V3_INIT created its PMU (Arm64PmuAttrs).
/// </summary>
internal static class Arm64PmuRegs
{
    /// <summary>ARMV8_PMU_CYCLE_IDX.</summary>
    public const int CycleIdx = 31;

    /// <summary>ARMV8_PMU_PMCR_MASK: E, P, C, D, X, DP, LC, LP (bits 7:0).</summary>
    public const ulong PmcrMask = 0xff;

    /// <summary>ARMV8_PMU_PMCR_LC (bit 6), RES1 without AArch32.</summary>
    public const ulong PmcrLc = 1UL << 6;

    /// <summary>ARMV8_PMU_PMCR_N: bits 15:11.</summary>
    public const int PmcrNShift = 11;

    /// <summary>ID_AA64DFR0_EL1.PMUVer of the emulated host's PMU (kvm_arm_pmu_get_pmuver_limit): V3P1 (4), N1 is Armv8.2 [D].</summary>
    public const ulong PmuVer = 4;

    private static SysRegDesc Pmu(string name, int op1, int crn, int crm, int op2, SysRegReset reset, SysRegUser user = SysRegUser.Plain,
        string? storage = null) =>
        new(name, 3, op1, crn, crm, op2, reset, User: user, Guest: SysRegGuest.Pmu, Pmu: true, Storage: storage);

    public static IEnumerable<SysRegDesc> Descs()
    {
        yield return Pmu("PMINTENSET_EL1", 0, 9, 14, 1, SysRegReset.PmuCounterMask, SysRegUser.PmCounterMask);
        yield return Pmu("PMINTENCLR_EL1", 0, 9, 14, 2, SysRegReset.PmuCounterMask, SysRegUser.PmCounterMask, "PMINTENSET_EL1");
        yield return Pmu("PMCR_EL0", 3, 9, 12, 0, SysRegReset.Pmcr, SysRegUser.Pmcr);
        yield return Pmu("PMCNTENSET_EL0", 3, 9, 12, 1, SysRegReset.PmuCounterMask, SysRegUser.PmCounterMask);
        yield return Pmu("PMCNTENCLR_EL0", 3, 9, 12, 2, SysRegReset.PmuCounterMask, SysRegUser.PmCounterMask, "PMCNTENSET_EL0");
        yield return Pmu("PMOVSCLR_EL0", 3, 9, 12, 3, SysRegReset.PmuCounterMask, SysRegUser.PmCounterMask, "PMOVSSET_EL0");
        yield return Pmu("PMSWINC_EL0", 3, 9, 12, 4, SysRegReset.None, SysRegUser.PmRazWi);
        yield return Pmu("PMSELR_EL0", 3, 9, 12, 5, SysRegReset.PmSelr);
        yield return Pmu("PMCEID0_EL0", 3, 9, 12, 6, SysRegReset.None, SysRegUser.NotListed);
        yield return Pmu("PMCEID1_EL0", 3, 9, 12, 7, SysRegReset.None, SysRegUser.NotListed);
        yield return Pmu("PMCCNTR_EL0", 3, 9, 13, 0, SysRegReset.Unknown, SysRegUser.PmEvCounter);
        yield return Pmu("PMXEVTYPER_EL0", 3, 9, 13, 1, SysRegReset.None, SysRegUser.NotListed);
        yield return Pmu("PMXEVCNTR_EL0", 3, 9, 13, 2, SysRegReset.None, SysRegUser.NotListed);
        yield return Pmu("PMUSERENR_EL0", 3, 9, 14, 0, SysRegReset.Value);
        yield return Pmu("PMOVSSET_EL0", 3, 9, 14, 3, SysRegReset.PmuCounterMask, SysRegUser.PmCounterMask);
        for (int n = 0; n < 31; n++)
            yield return Pmu($"PMEVCNTR{n}_EL0", 3, 14, 8 | (n >> 3), n & 7, SysRegReset.PmEvCounter, SysRegUser.PmEvCounter);
        for (int n = 0; n < 31; n++)
            yield return Pmu($"PMEVTYPER{n}_EL0", 3, 14, 12 | (n >> 3), n & 7, SysRegReset.PmEvTyper);
        yield return Pmu("PMCCFILTR_EL0", 3, 14, 15, 7, SysRegReset.Value);
    }

    /// <summary>kvm_pmu_implemented_counter_mask (= kvm_pmu_accessible_counter_mask without NV): BIT(31) | GENMASK(N - 1, 0).</summary>
    public static ulong CounterMask(Arm64Cpu cpu)
    {
        int n = cpu.PmuVm.Counters;
        return (1UL << CycleIdx) | (n == 0 ? 0 : (1UL << n) - 1);
    }

    /// <summary>
    /// kvm_pmu_evtyper_mask: EXCLUDE_EL1 | EXCLUDE_EL0 | the event mask (0xffff from PMUv3p1), INCLUDE_EL2 when the VM's
    /// ID_AA64PFR0_EL1.EL2 is implemented, EXCLUDE_NS_EL0 | EXCLUDE_NS_EL1 | EXCLUDE_EL3 when EL3 is.
    /// </summary>
    public static ulong EvtyperMask(Arm64Cpu cpu)
    {
        ulong mask = (1UL << 31) | (1UL << 30) | 0xffff;
        ulong pfr0;
        lock (cpu.IdRegs) pfr0 = Arm64IdRegs.Read(cpu.IdRegs, Pfr0Index);
        if (((pfr0 >> 8) & 0xf) != 0) mask |= 1UL << 27;
        if (((pfr0 >> 12) & 0xf) != 0) mask |= (1UL << 28) | (1UL << 29) | (1UL << 26);
        return mask;
    }

    private static readonly int Pfr0Index = Arm64IdRegs.IndexOf("ID_AA64PFR0_EL1");

    /// <summary>reset_pmcr: LC when the host has no 32-bit EL0 (N is not stored: kvm_vcpu_read_pmcr adds it).</summary>
    public static ulong ResetPmcr() => Arm64HostCpu.Supports32BitEl0 ? 0 : PmcrLc;

    /// <summary>kvm_vcpu_read_pmcr: the stored PMCR_EL0 with N replaced by the VM's counter count.</summary>
    public static ulong ReadPmcr(Arm64Cpu cpu, ulong stored) =>
        (stored & ~(0x1fUL << PmcrNShift)) | ((ulong)cpu.PmuVm.Counters << PmcrNShift);

    /// <summary>set_pmcr (under config_lock): N into the VM when allowed, then bits [7:0] plus LC stored.</summary>
    public static ulong SetPmcr(Arm64Cpu cpu, ulong val)
    {
        int newN = (int)((val >> PmcrNShift) & 0x1f);
        lock (cpu.IdRegs)
        {
            // "The vCPU can't have more counters than the PMU hardware implements. Ignore this error".
            if (!cpu.IdRegs.HasRanOnce && newN <= Arm64PmuVm.MaxCounters) cpu.PmuVm.Counters = newN;
        }
        val &= PmcrMask;
        if (!Arm64HostCpu.Supports32BitEl0) val |= PmcrLc;
        return val;
    }

    /// <summary>
    /// First KVM_ARM_VCPU_INIT of a PMU VM: kvm_arm_set_default_pmu (N = the host's counters) and reset_vm_ftr_id_reg of
    /// ID_AA64DFR0_EL1, whose sanitise_id_aa64dfr0_el1 sets PMUVer to the PMU's version when the vCPU has a PMU.
    /// </summary>
    public static void InitVm(Arm64VmState vm)
    {
        vm.Pmu.Counters = Arm64PmuVm.MaxCounters;
        lock (vm.IdRegs)
        {
            int i = Arm64IdRegs.IndexOf("ID_AA64DFR0_EL1");
            vm.IdRegs.Values[i] = (vm.IdRegs.Values[i] & ~(0xfUL << 8)) | (PmuVer << 8);
        }
    }
}
