// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// What the guest PMU counts (arch/arm64/kvm/pmu-emul.c, 6.18, with the interpreter in the role of the perf events
/// kvm_pmu_create_perf_event programs). A counter counts while PMCR_EL0.E and its PMCNTENSET_EL0 bit are set
/// (kvm_pmu_counter_is_enabled), its event is allowed by the VM's KVM_ARM_VCPU_PMU_V3_FILTER bitmap (a filtered-out
/// event gets no perf event: kvm_pmu_create_perf_event "if (vcpu->kvm->arch.pmu_filter &amp;&amp; !test_bit(eventsel, …))
/// return") and PMEVTYPERn / PMCCFILTR_EL0.P (bit 31, exclude EL1) and .U (bit 30, exclude EL0) do not exclude the
/// level the instruction ran at (attr.exclude_kernel / exclude_user). Counted honestly [D: the model]:
/// <list type="bullet">
/// <item>INST_RETIRED (0x08): every instruction the interpreter completes; one that takes a synchronous exception
/// (UNDEF, an injected abort, an FPAC fault), traps to KVM before executing (SMC) or exits to userspace (an MMIO access
/// KVM completes) does not retire in the guest.</item>
/// <item>CPU_CYCLES (0x11) and the cycle counter PMCCNTR_EL0 (eventsel CPU_CYCLES for the filter): one cycle per
/// retired instruction (no cycles while the vCPU waits in WFI). PMCR_EL0.D (divide by 64) is not modelled.</item>
/// <item>SW_INCR (0x00): PMSWINC_EL0 writes (kvm_pmu_software_increment), and CHAIN (0x1E) on the odd counter of a pair
/// when the even one overflows (kvm_pmu_counter_can_chain).</item>
/// </list>
/// Other events stay still (PMCEID0_EL0 advertises only SW_INCR, INST_RETIRED, CPU_CYCLES and CHAIN). Counter width:
/// the event counters are 32-bit (kvm_pmc_is_64bit: FEAT_PMUv3p5 absent, so PMCR_EL0.LP is RES0), the cycle counter
/// 64-bit, overflowing at 64 bits with PMCR_EL0.LC and at 32 bits without (kvm_pmc_has_64bit_overflow). An overflow
/// sets PMOVSSET_EL0; the PMU interrupt follows kvm_pmu_overflow_status (<see cref="UpdateIrq"/>).
/// </summary>
internal static class Arm64PmuCounters
{
    /// <summary>ARMV8_PMUV3_PERFCTR_SW_INCR, _INST_RETIRED, _CPU_CYCLES, _CHAIN.</summary>
    public const int SwIncr = 0x00, InstRetired = 0x08, CpuCycles = 0x11, Chain = 0x1e;

    private const ulong ExcludeEl1 = 1UL << 31, ExcludeEl0 = 1UL << 30;

    /// <summary>The SysRegs slots of PMCR, PMCNTENSET, PMINTENSET, PMOVSSET, PMSELR, PMUSERENR.</summary>
    public static readonly int Pmcr = Arm64SysRegs.Index("PMCR_EL0"), Cnten = Arm64SysRegs.Index("PMCNTENSET_EL0"),
        Inten = Arm64SysRegs.Index("PMINTENSET_EL1"), Ovs = Arm64SysRegs.Index("PMOVSSET_EL0"),
        Selr = Arm64SysRegs.Index("PMSELR_EL0"), Userenr = Arm64SysRegs.Index("PMUSERENR_EL0");

    /// <summary>counter_index_to_reg: PMEVCNTRn_EL0, 31 → PMCCNTR_EL0.</summary>
    public static readonly int[] Evcntr =
        [.. Enumerable.Range(0, 31).Select(n => Arm64SysRegs.Index($"PMEVCNTR{n}_EL0")), Arm64SysRegs.Index("PMCCNTR_EL0")];

    /// <summary>counter_index_to_evtreg: PMEVTYPERn_EL0, 31 → PMCCFILTR_EL0.</summary>
    public static readonly int[] Evtyper =
        [.. Enumerable.Range(0, 31).Select(n => Arm64SysRegs.Index($"PMEVTYPER{n}_EL0")), Arm64SysRegs.Index("PMCCFILTR_EL0")];

    private static readonly int Dfr0 = Arm64IdRegs.IndexOf("ID_AA64DFR0_EL1");

    /// <summary>
    /// kvm_pmu_event_mask → __kvm_pmu_event_mask of the VM's ID_AA64DFR0_EL1.PMUVer: 10 bits for PMUv3 (IMP), 16 from
    /// PMUv3p1. The ID registers are frozen once the VM ran, so the value is read without the ID-register lock.
    /// </summary>
    public static ulong EventMask(Arm64Cpu cpu) => ((cpu.IdRegs.Values[Dfr0] >> 8) & 0xf) == 1 ? 0x3ffUL : 0xffffUL;

    /// <summary>kvm_pmu_get_counter_value: the low 32 bits of an event counter, all 64 of the cycle counter.</summary>
    public static ulong Value(Arm64Cpu cpu, int idx)
    {
        ulong v = cpu.SysRegs[Evcntr[idx]];
        return idx == Arm64PmuRegs.CycleIdx ? v : v & 0xffff_ffff;
    }

    /// <summary>
    /// kvm_pmu_get_pmceid: compute_pmceid0 / compute_pmceid1 of the emulated host PMU [D: the events the emulator
    /// counts; "always support SW_INCR" and "always support CHAIN"], then, with a filter, only the allowed events
    /// (bits 31:0 events base..base+31, bits 63:32 events 0x4000+base.. when the event space reaches them).
    /// </summary>
    public static ulong Pmceid(Arm64Cpu cpu, bool pmceid1)
    {
        ulong val = pmceid1 ? 0 : (1UL << SwIncr) | (1UL << InstRetired) | (1UL << CpuCycles) | (1UL << Chain);
        ulong[]? bmap = cpu.PmuVm.Filter;
        if (bmap is null) return val;
        int nrEvents = (int)EventMask(cpu) + 1, b = pmceid1 ? 32 : 0;
        ulong mask = 0;
        for (int i = 0; i < 32; i++)
        {
            if (Allowed(bmap, b + i)) mask |= 1UL << i;
            if (nrEvents >= 0x4000 + b + 32 && Allowed(bmap, 0x4000 + b + i)) mask |= 1UL << (32 + i);
        }
        return val & mask;
    }

    private static bool Allowed(ulong[] bmap, int e) => (bmap[e >> 6] & (1UL << (e & 63))) != 0;

    /// <summary>
    /// One instruction retired at EL0 (<paramref name="atEl0"/>) or EL1: the enabled counters whose event is
    /// INST_RETIRED or CPU_CYCLES, and the cycle counter, count it. Called only for a vCPU with a PMU.
    /// </summary>
    public static void Retire(Arm64Cpu cpu, bool atEl0)
    {
        ulong[] r = cpu.SysRegs;
        if ((r[Pmcr] & Arm64PmuGuestAccess.PmcrE) == 0) return;
        ulong enabled = r[Cnten] & Arm64PmuRegs.CounterMask(cpu);
        if (enabled == 0) return;
        ulong[]? filter = cpu.PmuVm.Filter;
        if ((enabled & (1UL << Arm64PmuRegs.CycleIdx)) != 0 && Counts(r[Evtyper[Arm64PmuRegs.CycleIdx]], CpuCycles, filter, atEl0))
            Tick(cpu, Arm64PmuRegs.CycleIdx);
        enabled &= ~(1UL << Arm64PmuRegs.CycleIdx);
        if (enabled == 0) return;
        ulong eventMask = EventMask(cpu);
        for (int i = 0; enabled >> i != 0; i++)
        {
            if ((enabled & (1UL << i)) == 0) continue;
            ulong type = r[Evtyper[i]];
            int ev = (int)(type & eventMask);
            if ((ev == InstRetired || ev == CpuCycles) && Counts(type, ev, filter, atEl0)) Tick(cpu, i);
        }
    }

    /// <summary>kvm_pmu_create_perf_event's filter test and the exclude_kernel / exclude_user attributes.</summary>
    private static bool Counts(ulong type, int eventsel, ulong[]? filter, bool atEl0)
    {
        if (filter is not null && !Allowed(filter, eventsel)) return false;
        return (type & (atEl0 ? ExcludeEl0 : ExcludeEl1)) == 0;
    }

    /// <summary>
    /// kvm_pmu_counter_increment: nothing unless PMCR_EL0.E; the counters of <paramref name="mask"/> below the cycle
    /// counter that are enabled and programmed with <paramref name="eventsel"/> (no filter: SW_INCR and CHAIN get no
    /// perf event) count one.
    /// </summary>
    public static void Increment(Arm64Cpu cpu, ulong mask, int eventsel)
    {
        ulong[] r = cpu.SysRegs;
        if ((r[Pmcr] & Arm64PmuGuestAccess.PmcrE) == 0) return;
        mask &= r[Cnten] & Arm64PmuRegs.CounterMask(cpu) & ~(1UL << Arm64PmuRegs.CycleIdx);
        ulong eventMask = EventMask(cpu);
        for (int i = 0; mask >> i != 0; i++)
        {
            if ((mask & (1UL << i)) == 0) continue;
            if ((int)(r[Evtyper[i]] & eventMask) != eventsel) continue;
            Tick(cpu, i);
        }
    }

    /// <summary>
    /// One count on counter <paramref name="idx"/>: "if (!kvm_pmc_is_64bit(pmc)) reg = lower_32_bits(reg)"; an
    /// overflow ("kvm_pmc_has_64bit_overflow(pmc) ? reg : lower_32_bits(reg)" is 0) sets PMOVSSET_EL0 and, for an even
    /// counter with a 32-bit overflow below 30, counts CHAIN on the next one.
    /// </summary>
    private static void Tick(Arm64Cpu cpu, int idx)
    {
        ulong[] r = cpu.SysRegs;
        int reg = Evcntr[idx];
        bool cycle = idx == Arm64PmuRegs.CycleIdx;
        ulong v = r[reg] + 1;
        if (!cycle) v &= 0xffff_ffff;
        r[reg] = v;
        bool overflow64 = cycle && (r[Pmcr] & Arm64PmuRegs.PmcrLc) != 0;
        if ((overflow64 ? v : v & 0xffff_ffff) != 0) return;
        r[Ovs] |= 1UL << idx;
        // kvm_pmu_counter_can_chain: "!(pmc->idx & 1) && (pmc->idx + 1) < ARMV8_PMU_CYCLE_IDX && !kvm_pmc_has_64bit_overflow(pmc)".
        if ((idx & 1) == 0 && idx + 1 < Arm64PmuRegs.CycleIdx && !overflow64) Increment(cpu, 1UL << (idx + 1), Chain);
    }

    /// <summary>
    /// kvm_pmu_overflow_status: PMOVSSET_EL0 &amp; PMINTENSET_EL1, nothing while PMCR_EL0.E is clear (no EL2 counters).
    /// </summary>
    public static bool OverflowStatus(Arm64Cpu cpu)
    {
        ulong[] r = cpu.SysRegs;
        return (r[Pmcr] & Arm64PmuGuestAccess.PmcrE) != 0 && (r[Ovs] & r[Inten] & Arm64PmuRegs.CounterMask(cpu)) != 0;
    }

    /// <summary>
    /// kvm_pmu_update_state (kvm_pmu_flush_hwstate at guest entry): when the overflow status changes, pmu->irq_level
    /// follows it and, with an in-kernel vGIC, kvm_vgic_inject_irq(kvm, vcpu, pmu->irq_num, overflow, pmu) drives the
    /// line (level-sensitive; a PPI the PMU owns since KVM_ARM_VCPU_PMU_V3_INIT, or its SPI).
    /// </summary>
    public static void UpdateIrq(KvmVcpu vcpu, Arm64VcpuState state)
    {
        var pmu = state.Pmu;
        bool overflow = OverflowStatus(state.Cpu);
        if (pmu.IrqLevel == overflow) return;
        pmu.IrqLevel = overflow;
        var vm = Arm64VmState.Of(vcpu.Kvm);
        if (vm.Vgic.InKernel && pmu.IrqInitialized)
            _ = Vgic.VgicDelivery.Inject(vcpu.Kvm, vcpu, pmu.IrqNum, overflow, PpiOwner.Pmu);
    }
}
