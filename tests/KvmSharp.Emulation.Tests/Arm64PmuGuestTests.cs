// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The guest's PMUv3 (Emulation/Arm64/Arm64PmuGuestAccess.cs, Arm64PmuCounters.cs): the access_pm* rules of
/// arch/arm64/kvm/sys_regs.c (PMUSERENR_EL0 at EL0, pmu_counter_idx_valid, PMCR_EL0's RAZ P/C), and what the counters
/// count in the emulator's model (pmu-emul.c): INST_RETIRED and the cycle counter (one cycle per retired instruction),
/// SW_INCR, CHAIN, the KVM_ARM_VCPU_PMU_V3_FILTER event filter, and an overflow raising the PMU PPI through the vGIC.
/// </summary>
public class Arm64PmuGuestTests
{
    private const ulong Dist = Arm64VgicGuestVm.Dist, Redist = Arm64VgicGuestVm.Redist;
    private const int Ppi = 23;
    private const ulong Undef = 3;

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Pmcr = Enc(3, 9, 12, 0), Pmcntenset = Enc(3, 9, 12, 1), Pmcntenclr = Enc(3, 9, 12, 2),
        Pmovsclr = Enc(3, 9, 12, 3), Pmswinc = Enc(3, 9, 12, 4), Pmselr = Enc(3, 9, 12, 5), Pmceid0 = Enc(3, 9, 12, 6),
        Pmccntr = Enc(3, 9, 13, 0), Pmxevtyper = Enc(3, 9, 13, 1), Pmxevcntr = Enc(3, 9, 13, 2), Pmuserenr = Enc(3, 9, 14, 0),
        Pmovsset = Enc(3, 9, 14, 3), Pmintenset = Enc(0, 9, 14, 1), Pmintenclr = Enc(0, 9, 14, 2), Pmccfiltr = Enc(3, 14, 15, 7),
        EsrEl1 = Enc(0, 5, 2, 0), SpsrEl1 = Enc(0, 4, 0, 0), ElrEl1 = Enc(0, 4, 0, 1);

    private static ulong Pmevcntr(int n) => Enc(3, 14, 8 | (n >> 3), n & 7);

    private static ulong Pmevtyper(int n) => Enc(3, 14, 12 | (n >> 3), n & 7);

    /// <summary>
    /// <see cref="Arm64TestVm"/> with one vCPU (with KVM_ARM_VCPU_PMU_V3 unless <c>pmu</c> is false), a GICv3, the PMU
    /// on PPI 23 and created; <c>configure</c> runs before KVM_ARM_VCPU_PMU_V3_INIT (filters). Vectors: synchronous
    /// from EL1h (0x200) and from EL0 (0x400) record ESR_EL1 in x25 and ucall 3; IRQ (0x280) as given; EL0 code at 0x4000.
    /// </summary>
    private sealed class PmuVm : Arm64TestVm
    {
        public PmuVm(Action<A64Assembler> program, bool pmu = true, Action<KvmSharp.Vcpu>? configure = null,
            Action<A64Assembler>? irq = null, Action<A64Assembler>? el0 = null)
            : base(program)
        {
            Host.Write(0x200, Arm64Guest.Assemble(SyncHandler));
            Host.Write(0x400, Arm64Guest.Assemble(SyncHandler));
            if (irq is not null) Host.Write(0x280, Arm64Guest.Assemble(irq));
            if (el0 is not null) Host.Write(0x4000, Arm64Guest.Assemble(el0));
            var vcpu = AddVcpu(pmu ? 1u << KvmArm64Constants.KVM_ARM_VCPU_PMU_V3 : 0);
            Gic = Vm.CreateVgicV3(Dist, Redist, 1, interrupts: 128);
            Gic.InitializeVgic();
            if (pmu)
            {
                configure?.Invoke(vcpu);
                vcpu.SetPmuInterrupt(Ppi);
                vcpu.InitPmu();
            }
        }

        public KvmDevice Gic { get; }

        public KvmSharp.Vcpu Vcpu => Vcpus[0];

        protected override void DisposeExtras() => Gic.Dispose();

        private static void SyncHandler(A64Assembler a)
        {
            a.Mrs(X(25), EsrEl1);
            Arm64Guest.Ucall(a, Undef);
        }

        /// <summary>Runs to a ucall and returns its code.</summary>
        public ulong Run()
        {
            var exit = Vcpu.RunBounded();
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
            Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
            return BitConverter.ToUInt64(exit.MmioData);
        }
    }

    private static void Set(A64Assembler a, ulong encoding, ulong value)
    {
        a.MovImm(X(1), value);
        a.Msr(encoding, X(1));
    }

    private static void Done(A64Assembler a) => Arm64Guest.Ucall(a, Arm64Guest.UcallDone);

    [Fact]
    public void Without_the_pmu_feature_a_pmu_register_is_undefined()
    {
        // pmu_visibility → REG_HIDDEN: emulate_sys_reg injects UNDEF.
        using var s = new PmuVm(a =>
        {
            a.Mrs(X(0), Pmcr);
            Done(a);
        }, pmu: false);
        Assert.Equal(Undef, s.Run());
        Assert.Equal(0UL, s.Vcpu.GetX(25) >> 26); // EC 0: unknown reason
    }

    [Fact]
    public void Inst_retired_and_the_cycle_counter_count_retired_instructions_while_enabled()
    {
        using var s = new PmuVm(a =>
        {
            Set(a, Pmevtyper(0), 0x08);                     // INST_RETIRED
            Set(a, Pmevtyper(1), 0x08 | (1UL << 31));       // INST_RETIRED, P: EL1 excluded
            Set(a, Pmcntenset, (1UL << 31) | 3);
            Set(a, Pmccfiltr, 0);
            a.MovImm(X(1), 0x7);                            // E | P | C: counters zeroed, counting on
            a.Msr(Pmcr, X(1));                              // retires with E set: counted
            for (int i = 0; i < 10; i++) a.Nop();
            a.Mrs(X(2), Pmevcntr(0));                       // 11
            a.Mrs(X(3), Pmccntr);                           // 12
            a.Mrs(X(4), Pmevcntr(1));                       // 0: only EL1 ran
            a.Mrs(X(5), Pmcr);                              // P and C read as zero
            Set(a, Pmcntenclr, 1);                          // counter 0 stops after this MSR retires
            a.Mrs(X(6), Pmevcntr(0));
            for (int i = 0; i < 5; i++) a.Nop();
            a.Mrs(X(7), Pmevcntr(0));
            Done(a);
        });
        Assert.Equal(Arm64Guest.UcallDone, s.Run());
        Assert.Equal(11UL, s.Vcpu.GetX(2));
        Assert.Equal(12UL, s.Vcpu.GetX(3));
        Assert.Equal(0UL, s.Vcpu.GetX(4));
        Assert.Equal(1UL | (1UL << 6) | (6UL << 11), s.Vcpu.GetX(5)); // E, LC, N = 6
        Assert.Equal(s.Vcpu.GetX(6), s.Vcpu.GetX(7));
        // KVM_GET_ONE_REG sees the same counters: get_pmu_evcntr.
        Assert.Equal(s.Vcpu.GetX(7), s.Vcpu.GetOneReg(KvmArm64PmuRegs.PMEVCNTRn_EL0(0)));
        Assert.True(s.Vcpu.GetOneReg(KvmArm64PmuRegs.PMCCNTR_EL0) > 12);
    }

    [Fact]
    public void Nothing_counts_without_pmcr_e()
    {
        using var s = new PmuVm(a =>
        {
            Set(a, Pmevtyper(0), 0x08);
            Set(a, Pmcntenset, (1UL << 31) | 1);
            Set(a, Pmcr, 0x6);                              // P | C only
            for (int i = 0; i < 4; i++) a.Nop();
            a.Mrs(X(2), Pmevcntr(0));
            a.Mrs(X(3), Pmccntr);
            Done(a);
        });
        Assert.Equal(Arm64Guest.UcallDone, s.Run());
        Assert.Equal(0UL, s.Vcpu.GetX(2));
        Assert.Equal(0UL, s.Vcpu.GetX(3));
    }

    [Fact]
    public void The_event_filter_stops_a_denied_event_and_pmceid_hides_it()
    {
        using var s = new PmuVm(a =>
        {
            Set(a, Pmevtyper(0), 0x08);                     // INST_RETIRED: denied
            Set(a, Pmevtyper(1), 0x11);                     // CPU_CYCLES: allowed
            Set(a, Pmcntenset, 3);
            Set(a, Pmcr, 0x7);
            for (int i = 0; i < 4; i++) a.Nop();
            a.Mrs(X(2), Pmevcntr(0));
            a.Mrs(X(3), Pmevcntr(1));
            a.Mrs(X(4), Pmceid0);
            Done(a);
        }, configure: v => v.SetPmuEventFilter(0x08, 1, allow: false));
        Assert.Equal(Arm64Guest.UcallDone, s.Run());
        Assert.Equal(0UL, s.Vcpu.GetX(2));
        Assert.Equal(6UL, s.Vcpu.GetX(3));                  // MSR PMCR, four NOPs, MRS x2
        // kvm_pmu_get_pmceid: SW_INCR, CPU_CYCLES and CHAIN remain; INST_RETIRED is filtered out.
        Assert.Equal((1UL << 0x00) | (1UL << 0x11) | (1UL << 0x1e), s.Vcpu.GetX(4));
    }

    [Fact]
    public void A_filtered_cpu_cycles_event_stops_the_cycle_counter()
    {
        using var s = new PmuVm(a =>
        {
            Set(a, Pmcntenset, 1UL << 31);
            Set(a, Pmcr, 0x5);
            for (int i = 0; i < 4; i++) a.Nop();
            a.Mrs(X(3), Pmccntr);
            Done(a);
        }, configure: v => v.SetPmuEventFilter(0x11, 1, allow: false));
        Assert.Equal(Arm64Guest.UcallDone, s.Run());
        Assert.Equal(0UL, s.Vcpu.GetX(3));
    }

    [Fact]
    public void Pmswinc_increments_sw_incr_counters_and_an_overflow_chains()
    {
        using var s = new PmuVm(a =>
        {
            Set(a, Pmevtyper(2), 0x00);                     // SW_INCR
            Set(a, Pmevtyper(3), 0x1e);                     // CHAIN: counts counter 2's overflows
            Set(a, Pmevtyper(4), 0x08);                     // not SW_INCR: untouched by PMSWINC
            Set(a, Pmcntenset, 0x1c);
            Set(a, Pmovsclr, 0xFFFF_FFFF);                  // reset_pmu_reg: UNKNOWN at reset
            Set(a, Pmcr, 0x3);                              // E | P: event counters zeroed
            Set(a, Pmevcntr(2), 0xFFFF_FFFE);
            Set(a, Pmswinc, 0x14);                          // counters 2 and 4: only 2 is SW_INCR
            Set(a, Pmswinc, 0x04);                          // wraps: PMOVSSET bit 2, CHAIN on 3
            Set(a, Pmswinc, 0x04);
            a.Mrs(X(2), Pmevcntr(2));
            a.Mrs(X(3), Pmevcntr(3));
            a.Mrs(X(4), Pmovsset);
            Set(a, Pmovsclr, 0x4);
            a.Mrs(X(5), Pmovsset);
            Done(a);
        });
        Assert.Equal(Arm64Guest.UcallDone, s.Run());
        Assert.Equal(1UL, s.Vcpu.GetX(2));
        Assert.Equal(1UL, s.Vcpu.GetX(3));
        Assert.Equal(0x4UL, s.Vcpu.GetX(4) & 0x8000_003F);
        Assert.Equal(0UL, s.Vcpu.GetX(5) & 0x4);
    }

    [Fact]
    public void A_pmswinc_read_and_a_counter_past_n_are_undefined()
    {
        // access_pmswinc: read_from_write_only.
        using (var s = new PmuVm(a =>
        {
            a.Mrs(X(0), Pmswinc);
            Done(a);
        }))
        {
            Assert.Equal(Undef, s.Run());
        }
        // pmu_counter_idx_valid: PMEVCNTR6_EL0 with N = 6 (and PMXEVTYPER with SEL = 6).
        using (var s = new PmuVm(a =>
        {
            a.Mrs(X(0), Pmevcntr(6));
            Done(a);
        }))
        {
            Assert.Equal(Undef, s.Run());
        }
        using (var s = new PmuVm(a =>
        {
            Set(a, Pmselr, 31);
            Set(a, Pmxevtyper, 1UL << 31);                  // SEL = 31: PMCCFILTR_EL0
            a.Mrs(X(2), Pmccfiltr);
            Set(a, Pmselr, 6);
            a.Mrs(X(0), Pmxevcntr);
            Done(a);
        }))
        {
            Assert.Equal(Undef, s.Run());
            Assert.Equal(1UL << 31, s.Vcpu.GetX(2));
        }
    }

    /// <summary>Drops to EL0 at 0x4000 with PMUSERENR_EL0 = <paramref name="userenr"/>.</summary>
    private static ulong RunAtEl0(ulong userenr, Action<A64Assembler> el0, out ulong esr)
    {
        using var s = new PmuVm(a =>
        {
            Set(a, Pmuserenr, userenr);
            Set(a, ElrEl1, 0x4000);
            Set(a, SpsrEl1, 0);                             // EL0t
            a.Eret();
        }, el0: el0);
        ulong code = s.Run();
        esr = s.Vcpu.GetX(25);
        return code;
    }

    [Fact]
    public void Pmuserenr_gates_el0_access()
    {
        static void ReadCycles(A64Assembler a)
        {
            a.Mrs(X(0), Pmccntr);
            Done(a);
        }
        static void ReadEvent(A64Assembler a)
        {
            a.Mrs(X(0), Pmevcntr(0));
            Done(a);
        }
        static void WritePmuserenr(A64Assembler a)
        {
            a.Msr(Pmuserenr, Xzr);
            Done(a);
        }
        static void ReadPmintenset(A64Assembler a)
        {
            a.Mrs(X(0), Pmintenset);
            Done(a);
        }
        // check_pmu_access_disabled: UNDEF at EL0 unless PMUSERENR_EL0 has EN or the register's own bit.
        Assert.Equal(Undef, RunAtEl0(0, ReadCycles, out ulong esr));
        Assert.Equal(0UL, esr >> 26);
        Assert.Equal(Arm64Guest.UcallDone, RunAtEl0(1, ReadCycles, out _));   // EN
        Assert.Equal(Arm64Guest.UcallDone, RunAtEl0(4, ReadCycles, out _));   // CR
        Assert.Equal(Undef, RunAtEl0(4, ReadEvent, out _));                   // CR does not open the event counters
        Assert.Equal(Arm64Guest.UcallDone, RunAtEl0(8, ReadEvent, out _));    // ER
        // access_pmuserenr: an EL0 write is undef_access; access_pminten: an EL1 register, UNDEF at EL0 whatever EN says.
        Assert.Equal(Undef, RunAtEl0(0xf, WritePmuserenr, out _));
        Assert.Equal(Undef, RunAtEl0(0xf, ReadPmintenset, out _));
    }

    [Fact]
    public void The_p_and_u_bits_exclude_el1_and_el0()
    {
        using var s = new PmuVm(a =>
        {
            Set(a, Pmuserenr, 0xf);
            Set(a, Pmevtyper(0), 0x08 | (1UL << 30));       // U: EL0 excluded
            Set(a, Pmevtyper(1), 0x08 | (1UL << 31));       // P: EL1 excluded
            Set(a, Pmcntenset, 3);
            Set(a, ElrEl1, 0x4000);
            Set(a, SpsrEl1, 0);                             // EL0t
            Set(a, Pmcr, 0x3);                              // E | P
            a.Eret();
        }, el0: a =>
        {
            a.Mrs(X(2), Pmevcntr(0));
            a.Nop();
            a.Nop();
            a.Mrs(X(3), Pmevcntr(0));
            a.Mrs(X(4), Pmevcntr(1));
            Done(a);
        });
        Assert.Equal(Arm64Guest.UcallDone, s.Run());
        Assert.Equal(2UL, s.Vcpu.GetX(2));                  // MSR PMCR and ERET, at EL1
        Assert.Equal(2UL, s.Vcpu.GetX(3));
        Assert.Equal(4UL, s.Vcpu.GetX(4));                  // MRS, NOP, NOP, MRS at EL0
    }

    [Fact]
    public void An_overflow_with_pmintenset_raises_the_pmu_ppi()
    {
        using var s = new PmuVm(a =>
        {
            a.MovImm(X(2), Redist + 0x10100);
            a.MovImm(X(3), 1UL << Ppi);
            a.Str(W(3), X(2));                              // GICR_ISENABLER0: PPI 23
            Arm64VgicGuestVm.EnableDistributor(a);
            Arm64VgicGuestVm.EnableCpuInterface(a, group0: false, group1: true);
            Set(a, Pmevtyper(0), 0x08);
            Set(a, Pmevcntr(0), 0xFFFF_FFF0);
            Set(a, Pmovsclr, 0xFFFF_FFFF);                  // PMOVSSET and PMINTENSET are UNKNOWN at reset
            Set(a, Pmintenclr, 0xFFFF_FFFF);
            Set(a, Pmintenset, 1);
            Set(a, Pmcntenset, 1);
            Set(a, Pmcr, 0x1);
            a.MsrDaif(set: false, 2);
            var loop = a.CreateLabel();
            a.Bind(loop);
            a.B(loop);                                      // counts until the counter wraps
        }, irq: a =>
        {
            a.Mrs(X(19), Arm64VgicGuestVm.IccIar1);
            a.Mrs(X(20), Pmovsset);
            Set(a, Pmovsclr, 1);                            // the line drops at the next entry
            a.Msr(Arm64VgicGuestVm.IccEoir1, X(19));
            Done(a);
        });
        Assert.Equal(Arm64Guest.UcallDone, s.Run());
        Assert.Equal((ulong)Ppi, s.Vcpu.GetX(19));
        Assert.Equal(1UL, s.Vcpu.GetX(20) & 1);
        Assert.Equal(0UL, s.Vcpu.GetOneReg(KvmArm64PmuRegs.PMOVSSET_EL0) & 1);
    }

    [Fact]
    public void The_cycle_counter_overflows_at_64_bits_with_lc()
    {
        using var s = new PmuVm(a =>
        {
            Set(a, Pmcntenset, 1UL << 31);
            Set(a, Pmccntr, 0xFFFF_FFFF);
            Set(a, Pmovsclr, 0xFFFF_FFFF);
            Set(a, Pmcr, 0x1);                              // LC stays set (no 32-bit EL0): no overflow at 2^32
            a.Nop();
            a.Mrs(X(2), Pmovsset);
            a.Mrs(X(3), Pmccntr);
            Done(a);
        });
        Assert.Equal(Arm64Guest.UcallDone, s.Run());
        Assert.Equal(0UL, s.Vcpu.GetX(2) >> 31);
        Assert.Equal(0x1_0000_0002UL, s.Vcpu.GetX(3));      // MSR PMCR, NOP, MRS x2 after 0xFFFF_FFFF
    }
}
