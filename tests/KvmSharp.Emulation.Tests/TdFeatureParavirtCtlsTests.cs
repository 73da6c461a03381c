// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation.Arch;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The CPUID feature bits the TDX module virtualizes from TDCS.CPUID_FLAGS (Arch/X86/TdxCpuidFlags.cs): intel/tdx-module
/// (2.x, 1666adc) helpers.c update_mutable_cpuid_flags, td_cpuid.c td_cpuid_exit's "mutable cases", td_msr_access.c
/// rd_wr_msr_generic_case's GP_OR_VE_BY_&lt;feature&gt; actions, and TDCS.FEATURE_PARAVIRT_CTLS as TDG.VM.RD/WR see it
/// (metadata_td.c md_td_write_element, auto_gen_2_0/tdr_tdcs_fields_lookup.c row 37). The TD's configured CPUID is
/// the emulated TDX module's (TdxModule: TSC_DEADLINE, MCE, MCA and MTRR configured; DCA, EST, TM2, ACPI, RDT, TME,
/// PCONFIG and CORE_CAPABILITIES not).
/// </summary>
public sealed class TdFeatureParavirtCtlsTests
{
    private const int TdgVmRd = 7, TdgVmWr = 8;
    private const ulong TdCtls = 0x1110_0003_0000_0017, FeatureParavirtCtls = 0x9110_0003_0000_0022;
    private const ulong VeReductionValid = 0x9110_0000_0000_001A, Mrtd = 0x1310_0003_0000_0000;
    private const ulong ReduceVe = 8, EnumTopology = 2, VirtCpuid2 = 4, Lock = 1UL << 63;
    private const ulong Success = 0, NotWritable = 0xC000_0C01_0000_0000, ValueNotValid = 0xC000_0C03_0000_0000;
    private const ulong Marker = 0x600d, VeRd = (20UL << 32) | 31, Gp = 13UL << 32, VeCpuid = (20UL << 32) | 10;

    // FEATURE_PARAVIRT_CTLS bits (tdx_tdcs.h feature_paravirt_ctls_t).
    private const ulong PvCoreCapabilities = 1UL << 0, PvDca = 1UL << 1, PvEst = 1UL << 2, PvMca = 1UL << 3,
        PvMtrr = 1UL << 4, PvTscDeadline = 1UL << 11;

    // CPUID(1).ECX / EDX and CPUID(7,0).EDX bits.
    private const ulong TscDeadline = 1UL << 24, Dca = 1UL << 18, Est = 1UL << 7, Mce = 1UL << 7, Mtrr = 1UL << 12,
        Mca = 1UL << 14, CoreCapabilities = 1UL << 30;

    private static EmulatedKernel NewKernel() => new(EmulatorConfig.X86_64());

    /// <summary>
    /// A TD running <paramref name="body"/>. #VE handler: TDG.VP.VEINFO.GET, R15 = 20 &lt;&lt; 32 | exit reason; #GP
    /// handler: R15 = 13 &lt;&lt; 32 | error code; both skip the two-byte instruction (CPUID, RDMSR, WRMSR).
    /// </summary>
    private static TdGuest Td(Kvm kvm, Action<Assembler> body) => TdGuest.Create(kvm, a =>
    {
        var handlers = TdTestCode.InstallOutcomeHandlers(a);
        body(a);
        a.mov(r15, Marker);
        TdGuest.Report(a, r15);
        TdTestCode.SpinForever(a);

        TdTestCode.EmitOutcomeHandlers(a, handlers);
    });

    /// <summary>TDCALL leaf with RDX = field, R8 = value, R9 = mask (RCX 0); reports RAX, R8 and RDX.</summary>
    private static void Call(Assembler a, int leaf, ulong field, ulong value = 0, ulong mask = 0, int version = 0)
    {
        a.xor(ecx, ecx);
        a.mov(rdx, field);
        a.mov(r8, value);
        a.mov(r9, mask);
        a.mov(eax, leaf | (version << 16));
        a.tdcall();
        TdGuest.Report(a, rax);
        TdGuest.Report(a, r8);
        TdGuest.Report(a, rdx);
    }

    private static (ulong Status, ulong R8, ulong Rdx) CallResult(TdGuest td) => (td.RunToReport(), td.RunToReport(), td.RunToReport());

    /// <summary>CPUID(1) and CPUID(7,0): reports the outcome (0 or the #VE), CPUID(1) ECX, EDX, then CPUID(7,0)'s outcome and EDX.</summary>
    private static void Cpuids(Assembler a)
    {
        foreach (uint leaf in new uint[] { 1, 7 })
        {
            a.xor(r15d, r15d);
            a.mov(eax, leaf);
            a.xor(ecx, ecx);
            a.cpuid();
            a.mov(rsi, rcx);
            a.mov(rdi, rdx);
            TdGuest.Report(a, r15);
            if (leaf == 1) TdGuest.Report(a, rsi);
            TdGuest.Report(a, rdi);
        }
    }

    private static (ulong Ecx1, ulong Edx1, ulong Edx7) CpuidResult(TdGuest td)
    {
        Assert.Equal(0UL, td.RunToReport());
        ulong ecx1 = td.RunToReport(), edx1 = td.RunToReport();
        Assert.Equal(0UL, td.RunToReport());
        return (ecx1, edx1, td.RunToReport());
    }

    /// <summary>RDMSR of each MSR with its outcome reported (0, the #VE or the #GP).</summary>
    private static void Rdmsrs(Assembler a, params uint[] msrs)
    {
        foreach (uint msr in msrs)
        {
            a.xor(r15d, r15d);
            a.mov(ecx, msr);
            a.rdmsr();
            TdGuest.Report(a, r15);
        }
    }

    /// <summary>IA32_TSC_DEADLINE (TSC_DEADLINE), IA32_MCG_CAP (MCA), IA32_MTRR_DEF_TYPE (MTRR), IA32_CORE_CAPABILITIES, IA32_PLATFORM_DCA_CAP (DCA), IA32_PERF_STATUS (EST).</summary>
    private static readonly uint[] s_featureMsrs = [0x6e0, 0x179, 0x2ff, 0xcf, 0x1f8, 0x198];

    private static ulong[] Outcomes(TdGuest td) => [.. s_featureMsrs.Select(_ => td.RunToReport())];

    [Fact]
    public void Reduce_ve_clears_cpuid_feature_bits_and_feature_paravirt_ctls_restores_the_configured_ones()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            Cpuids(a);
            Call(a, TdgVmWr, TdCtls, ReduceVe, ReduceVe);
            Cpuids(a);
            Call(a, TdgVmWr, FeatureParavirtCtls, PvTscDeadline | PvMca | PvMtrr | PvCoreCapabilities | PvDca | PvEst, 0xFFF);
            Cpuids(a);
            Call(a, TdgVmWr, FeatureParavirtCtls, PvTscDeadline, 0xFFF);
            Cpuids(a);
        });

        // Without REDUCE_VE: TSC_DEADLINE as configured (1); MCE, MCA, MTRR and CORE_CAPABILITIES always 1 (their
        // *_not_supported flags need REDUCE_VE), DCA and EST as configured (0).
        var before = CpuidResult(td);
        Assert.Equal((TscDeadline, 0UL, 0UL), (before.Ecx1 & TscDeadline, before.Ecx1 & Dca, before.Ecx1 & Est));
        Assert.Equal(Mce | Mca | Mtrr, before.Edx1 & (Mce | Mca | Mtrr));
        Assert.Equal(CoreCapabilities, before.Edx7 & CoreCapabilities);

        Assert.Equal((Success, 0UL, TdCtls), CallResult(td));
        // REDUCE_VE with FEATURE_PARAVIRT_CTLS 0: all of them clear; the other bits unchanged.
        var reduced = CpuidResult(td);
        Assert.Equal(0UL, reduced.Ecx1 & (TscDeadline | Dca | Est));
        Assert.Equal(0UL, reduced.Edx1 & (Mce | Mca | Mtrr));
        Assert.Equal(0UL, reduced.Edx7 & CoreCapabilities);
        Assert.Equal(before.Ecx1 & ~TscDeadline, reduced.Ecx1);
        Assert.Equal(before.Edx1 & ~(Mce | Mca | Mtrr), reduced.Edx1);

        Assert.Equal((Success, 0UL, FeatureParavirtCtls), CallResult(td));
        // The PV controls bring back what was configured — TSC_DEADLINE, MCE (MCA's control), MCA, MTRR — but not DCA,
        // EST or CORE_CAPABILITIES, which the TD's CPUID configuration lacks.
        var pv = CpuidResult(td);
        Assert.Equal(before.Ecx1, pv.Ecx1);
        Assert.Equal(before.Edx1, pv.Edx1);
        Assert.Equal(0UL, pv.Edx7 & CoreCapabilities);

        Assert.Equal((Success, PvTscDeadline | PvMca | PvMtrr | PvCoreCapabilities | PvDca | PvEst, FeatureParavirtCtls), CallResult(td));
        var tscOnly = CpuidResult(td);
        Assert.Equal((TscDeadline, 0UL), (tscOnly.Ecx1 & TscDeadline, tscOnly.Edx1 & (Mce | Mca | Mtrr)));
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Feature_msrs_are_a_ve_exactly_while_cpuid_reports_the_feature()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            Rdmsrs(a, s_featureMsrs);
            Call(a, TdgVmWr, TdCtls, ReduceVe, ReduceVe);
            Rdmsrs(a, s_featureMsrs);
            Call(a, TdgVmWr, FeatureParavirtCtls, PvTscDeadline | PvMca | PvMtrr | PvCoreCapabilities | PvDca | PvEst, 0xFFF);
            Rdmsrs(a, s_featureMsrs);
        });

        // Without REDUCE_VE: TSC_DEADLINE (configured), MCA, MTRR and CORE_CAPABILITIES (always on) are a #VE for the
        // VMM; DCA and EST, which CPUID(1) does not report, are a #GP (GP_OR_VE_BY_DCA / _EST).
        Assert.Equal([VeRd, VeRd, VeRd, VeRd, Gp, Gp], Outcomes(td));
        Assert.Equal((Success, 0UL, TdCtls), CallResult(td));
        Assert.Equal([Gp, Gp, Gp, Gp, Gp, Gp], Outcomes(td));
        Assert.Equal((Success, 0UL, FeatureParavirtCtls), CallResult(td));
        // With the PV controls: the configured features are a #VE again; CORE_CAPABILITIES, DCA and EST stay #GP.
        Assert.Equal([VeRd, VeRd, VeRd, Gp, Gp, Gp], Outcomes(td));
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Reduce_ve_without_dca_answers_cpuid_9_and_keeps_answering_it_with_the_pv_dca_bit()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            void Leaf9()
            {
                a.xor(r15d, r15d);
                a.mov(eax, 9);
                a.xor(ecx, ecx);
                a.cpuid();
                TdGuest.Report(a, r15);
            }
            Leaf9();
            Call(a, TdgVmWr, TdCtls, ReduceVe, ReduceVe);
            Leaf9();
            Call(a, TdgVmWr, FeatureParavirtCtls, PvDca, PvDca);
            Leaf9();
        });
        Assert.Equal(VeCpuid, td.RunToReport());          // FAULTING_OR_FIXED without REDUCE_VE
        Assert.Equal(Success, CallResult(td).Status);
        Assert.Equal(0UL, td.RunToReport());              // REDUCE_VE, DCA not supported: answered
        Assert.Equal(Success, CallResult(td).Status);
        Assert.Equal(0UL, td.RunToReport());              // the PV bit alone does not make DCA supported (not configured)
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Feature_paravirt_ctls_reads_writes_and_errors_are_the_modules()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            Call(a, TdgVmRd, FeatureParavirtCtls);
            Call(a, TdgVmWr, FeatureParavirtCtls, PvTscDeadline, PvTscDeadline);
            Call(a, TdgVmRd, FeatureParavirtCtls);
            Call(a, TdgVmWr, FeatureParavirtCtls, 1UL << 12, 1UL << 12);      // only a reserved bit: nothing writable
            Call(a, TdgVmWr, FeatureParavirtCtls, 1UL << 12, 0x1FFF);         // a reserved bit changed
            Call(a, TdgVmWr, FeatureParavirtCtls, (1UL << 12) | PvMca, 0xFFF); // reserved bits outside the mask are ignored
            Call(a, TdgVmRd, FeatureParavirtCtls);
            Call(a, TdgVmRd, VeReductionValid, version: 1);                    // the next readable field
            Call(a, TdgVmRd, FeatureParavirtCtls, version: 1);
            Call(a, TdgVmWr, TdCtls, Lock, Lock);
            Call(a, TdgVmWr, FeatureParavirtCtls, 0, 0xFFF);                   // TD_CTLS.LOCK: no change
            Call(a, TdgVmWr, FeatureParavirtCtls, PvMca, 0xFFF);               // the same value: fine
            Call(a, TdgVmRd, FeatureParavirtCtls);
        });
        Assert.Equal((Success, 0UL), Pair(CallResult(td)));                    // TDH.MNG.INIT leaves it 0
        Assert.Equal((Success, 0UL), Pair(CallResult(td)));                    // the old value
        Assert.Equal((Success, PvTscDeadline), Pair(CallResult(td)));
        Assert.Equal((NotWritable, 0UL), Pair(CallResult(td)));
        Assert.Equal((ValueNotValid, 0UL), Pair(CallResult(td)));
        Assert.Equal((Success, PvTscDeadline), Pair(CallResult(td)));
        Assert.Equal((Success, PvMca), Pair(CallResult(td)));
        Assert.Equal((Success, 1UL, FeatureParavirtCtls), CallResult(td));   // VE_REDUCTION_VALID = 1, next = this field
        Assert.Equal((Success, PvMca, Mrtd), CallResult(td));                 // then MRTD (CPUID_FIXED0_BITMAP: guest read mask 0)
        Assert.Equal(Success, CallResult(td).Status);
        Assert.Equal((ValueNotValid, 0UL), Pair(CallResult(td)));
        Assert.Equal((Success, PvMca), Pair(CallResult(td)));
        Assert.Equal((Success, PvMca), Pair(CallResult(td)));
        Assert.Equal(Marker, td.RunToReport());
    }

    private static (ulong, ulong) Pair((ulong Status, ulong R8, ulong Rdx) r) => (r.Status, r.R8);

    /// <summary>update_mutable_cpuid_flags' polarity, feature by feature (pure function, no guest).</summary>
    [Theory]
    [InlineData(false, 0UL, true)]
    [InlineData(false, 0xFFFUL, true)]
    [InlineData(true, 0UL, false)]
    [InlineData(true, 0xFFFUL, true)]
    public void Cpuid_flags_follow_update_mutable_cpuid_flags(bool reduceVe, ulong pv, bool configuredOn)
    {
        uint all1 = TdxCpuidFlags.EcxDca | TdxCpuidFlags.EcxTscDeadline | TdxCpuidFlags.EcxEst | TdxCpuidFlags.EcxTm2;
        uint allEdx = TdxCpuidFlags.EdxMce | TdxCpuidFlags.EdxMca | TdxCpuidFlags.EdxMtrr | TdxCpuidFlags.EdxAcpi;
        var on = TdxCpuidFlags.Compute(all1, allEdx, TdxCpuidFlags.Ebx7RdtA | TdxCpuidFlags.Ebx7RdtM, TdxCpuidFlags.Ecx7Tme,
            TdxCpuidFlags.Edx7Pconfig | TdxCpuidFlags.Edx7CoreCapabilities, reduceVe, pv);
        Assert.Equal(new TdxCpuidFlags(configuredOn, configuredOn, configuredOn, configuredOn, configuredOn, configuredOn,
            configuredOn, configuredOn, configuredOn, configuredOn, configuredOn, configuredOn, configuredOn), on);
        var off = TdxCpuidFlags.Compute(0, 0, 0, 0, 0, reduceVe, pv);
        // Positive flags follow the configured 0; MCE/MCA/MTRR/CORE_CAPABILITIES are on without REDUCE_VE only.
        Assert.Equal(new TdxCpuidFlags(false, false, false, false, !reduceVe, !reduceVe, !reduceVe, false,
            false, false, false, false, !reduceVe), off);
    }
}
