// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Conformance.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// RDMSR/WRMSR in a TD after TDG.VM.WR of TD_CTLS.REDUCE_VE / ENUM_TOPOLOGY (X86/Emulate/X86Emulator.TdxCpuidMsr.cs):
/// intel/tdx-module td_msr_access.c rd_wr_msr_generic_case, td_rdmsr_exit, td_wrmsr_exit and
/// include/auto_gen_2_0/msr_config_lookup.c. Each access reports its outcome (0, or the vector &lt;&lt; 32 | the #VE
/// exit reason or the #GP error code), then EAX and EDX after it.
/// </summary>
public sealed class TdReduceVeMsrTests
{
    private const ulong Marker = 0x600d, TdCtlsField = 0x1110_0003_0000_0017, EnumTopology = 2, ReduceVe = 8;
    private const ulong Ok = 0, VeRd = (20UL << 32) | 31, VeWr = (20UL << 32) | 32, Gp = 13UL << 32;
    private const uint Sentinel = 0xdead_beef;

    private static EmulatedKernel NewKernel() => new(EmulatorConfig.X86_64());

    /// <summary>
    /// A TD that first writes TD_CTLS (TDG.VM.WR, reporting its status) when <paramref name="ctls"/> is not 0, then runs
    /// <paramref name="body"/>. #VE handler: TDG.VP.VEINFO.GET, R15 = 20 &lt;&lt; 32 | exit reason; #GP handler: R15 = 13
    /// &lt;&lt; 32 | error code; both skip the two-byte instruction.
    /// </summary>
    private static TdGuest Td(Kvm kvm, ulong ctls, Action<Assembler> body) => TdGuest.Create(kvm, a =>
    {
        var handlers = TdTestCode.InstallOutcomeHandlers(a);
        if (ctls != 0)
        {
            a.mov(rdx, TdCtlsField);
            a.mov(r8, ctls);
            a.mov(r9, ctls);
            a.mov(eax, 8); // TDG.VM.WR
            a.tdcall();
            TdGuest.Report(a, rax);
        }
        body(a);
        a.mov(r15, Marker);
        TdGuest.Report(a, r15);
        TdTestCode.SpinForever(a);

        TdTestCode.EmitOutcomeHandlers(a, handlers);
    });

    /// <summary>RDMSR of <paramref name="msr"/> with EDX:EAX preset to the sentinel; reports the outcome, EAX, EDX.</summary>
    private static void Rd(Assembler a, uint msr)
    {
        a.xor(r15d, r15d);
        a.mov(ecx, msr);
        a.mov(eax, Sentinel);
        a.mov(edx, Sentinel);
        a.rdmsr();
        a.mov(rsi, rax);
        a.mov(rdi, rdx);
        TdGuest.Report(a, r15);
        TdGuest.Report(a, rsi);
        TdGuest.Report(a, rdi);
    }

    /// <summary>WRMSR of <paramref name="value"/> to <paramref name="msr"/>; reports the outcome.</summary>
    private static void Wr(Assembler a, uint msr, ulong value)
    {
        a.xor(r15d, r15d);
        a.mov(ecx, msr);
        a.mov(eax, (uint)value);
        a.mov(edx, (uint)(value >> 32));
        a.wrmsr();
        TdGuest.Report(a, r15);
    }

    /// <summary>The outcome of an <see cref="Rd"/> (the registers only when it succeeded).</summary>
    private static ulong RdOutcome(TdGuest td, out ulong eax, out ulong edx)
    {
        ulong outcome = td.RunToReport();
        eax = td.RunToReport();
        edx = td.RunToReport();
        return outcome;
    }

    private static void AssertRd(TdGuest td, ulong outcome)
    {
        Assert.Equal(outcome, RdOutcome(td, out ulong eax, out ulong edx));
        if (outcome != Ok) Assert.Equal(((ulong)Sentinel, (ulong)Sentinel), (eax, edx)); // a fault leaves EDX:EAX as they were
    }

    private static void AssertRdValue(TdGuest td, ulong eax, ulong edx) =>
        Assert.Equal((Ok, eax, edx), (RdOutcome(td, out ulong a, out ulong d), a, d));

    /// <summary>
    /// The accesses whose answer REDUCE_VE changes: IA32_TSC_ADJUST (GP_OR_VE_BY_REDUCED_VE), IA32_MTRR_PHYSBASE0
    /// (GP_OR_VE_BY_MTRR), IA32_MCG_CAP (GP_OR_VE_BY_MCA), IA32_VMX_PINBASED_CTLS (td_rdmsr_exit), IA32_TSC_DEADLINE
    /// (GP_OR_VE_BY_TSC_DEADLINE), 0x1100 (in the bitmap, in neither table), WRMSR IA32_DEBUG_INTERFACE (GP_OR_VE_BY_REDUCED_VE),
    /// the reserved x2APIC 0x83B and WRMSR of the x2APIC version (not in the older table: #VE without REDUCE_VE).
    /// </summary>
    private static void ChangingAccesses(Assembler a)
    {
        Rd(a, 0x3b);
        Rd(a, 0x200);
        Rd(a, 0x179);
        Rd(a, 0x481);
        Rd(a, 0x6e0);
        Rd(a, 0x1100);
        Wr(a, 0xc80, 0);
        Rd(a, 0x83b);
        Wr(a, 0x803, 0);
    }

    [Fact]
    public void Without_reduce_ve_msrs_the_old_table_leaves_to_a_ve_stay_a_ve()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, 0, a =>
        {
            ChangingAccesses(a);
            Rd(a, 0x802);  // x2APIC ID without ENUM_TOPOLOGY
            Rd(a, 0x3a);   // IA32_FEATURE_CONTROL
            Wr(a, 0x1a0, 0);
        });
        foreach (var _ in Enumerable.Range(0, 6)) AssertRd(td, VeRd);
        Assert.Equal(VeWr, td.RunToReport());
        AssertRd(td, VeRd);
        Assert.Equal(VeWr, td.RunToReport());
        AssertRd(td, VeRd);
        AssertRd(td, VeRd);
        Assert.Equal(VeWr, td.RunToReport());
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void With_reduce_ve_gp_or_ve_feature_and_unlisted_msrs_are_a_gp_0()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, ReduceVe, ChangingAccesses);
        Assert.Equal(0UL, td.RunToReport()); // TDG.VM.WR: TDX_SUCCESS
        foreach (var _ in Enumerable.Range(0, 6)) AssertRd(td, Gp);
        Assert.Equal(Gp, td.RunToReport());
        AssertRd(td, Gp);
        Assert.Equal(Gp, td.RunToReport());
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void With_reduce_ve_x2apic_registers_and_msrs_outside_the_bitmap_keep_their_ve_and_the_x2apic_id_is_read()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, ReduceVe, a =>
        {
            Rd(a, 0x80f);                // x2APIC SVR: action VE
            Wr(a, 0x830, 0);             // x2APIC ICR: action VE
            Wr(a, 0x839, 0);             // x2APIC current count: write GP
            Rd(a, 0x1b);                 // IA32_APIC_BASE: action VE
            Rd(a, 0x4b56_4d00);          // MSR_KVM_WALL_CLOCK_NEW: outside the bitmap
            Rd(a, 0x802);                // x2APIC ID: ENUM_TOPOLOGY (on with REDUCE_VE)
            Rd(a, 0x10);                 // IA32_TIME_STAMP_COUNTER: bitmap 0, the CPU's
            Wr(a, 0x10, 0);              // its write: action VE
        });
        Assert.Equal(0UL, td.RunToReport());
        AssertRd(td, VeRd);
        Assert.Equal(VeWr, td.RunToReport());
        Assert.Equal(Gp, td.RunToReport());
        AssertRd(td, VeRd);
        AssertRd(td, VeRd);
        AssertRdValue(td, 0, 0);          // vCPU 0's x2APIC ID
        Assert.Equal(Ok, RdOutcome(td, out _, out _));
        Assert.Equal(VeWr, td.RunToReport());
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void With_reduce_ve_the_module_answers_platform_msrs_itself()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, ReduceVe, a =>
        {
            Rd(a, 0x3a);                 // IA32_FEATURE_CONTROL: 1 (locked)
            Rd(a, 0x4e);                 // IA32_PPIN_CTL: 1 (locked)
            Rd(a, 0x8b);                 // IA32_BIOS_SIGN_ID: 0xFFFFFFFF
            Rd(a, 0xce);                 // MSR_PLATFORM_INFO: 0
            Rd(a, 0x140);                // MSR_FEATURE_ENABLES: 0
            Wr(a, 0x140, 0);             // … only 0 may be written
            Wr(a, 0x140, 1);
            Wr(a, 0x3a, 1);              // IA32_FEATURE_CONTROL write: GP_OR_VE_BY_REDUCED_VE
            Wr(a, 0x79, 0x1234);         // IA32_BIOS_UPDT_TRIG: ignored
            Wr(a, 0x8b, 0);              // IA32_BIOS_SIGN_ID: ignored
            Rd(a, 0x79);                 // IA32_BIOS_UPDT_TRIG read: GP_OR_VE_BY_REDUCED_VE
            Rd(a, 0x34);                 // MSR_SMI_COUNT: the TDVPS copy, 0 …
            Wr(a, 0x34, 0x1234_0000_5678);
            Rd(a, 0x34);                 // … then what was written
        });
        Assert.Equal(0UL, td.RunToReport());
        AssertRdValue(td, 1, 0);
        AssertRdValue(td, 1, 0);
        AssertRdValue(td, 0xffff_ffff, 0);
        AssertRdValue(td, 0, 0);
        AssertRdValue(td, 0, 0);
        Assert.Equal([Ok, Gp, Gp, Ok, Ok], Enumerable.Range(0, 5).Select(_ => td.RunToReport()));
        AssertRd(td, Gp);
        AssertRdValue(td, 0, 0);
        Assert.Equal(Ok, td.RunToReport());
        AssertRdValue(td, 0x5678, 0x1234);
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void With_reduce_ve_wrmsr_misc_enable_is_checked_and_kept_by_the_module()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, ReduceVe, a =>
        {
            Rd(a, 0x1a0);
            Wr(a, 0x1a0, 1);             // fast strings: allowed; PMU bits 11/12 keep their values
            Rd(a, 0x1a0);
            Wr(a, 0x1a0, 1UL << 1);      // in GP_ON_NON_0_MASK
            Wr(a, 0x1a0, 1UL << 16);     // EST: not supported under REDUCE_VE
            Wr(a, 0x1a0, 1UL << 22);     // LIMIT_CPUID_MAXVAL: #VE
            Wr(a, 0x1a0, 1UL << 18);     // ENABLE_MONITOR_FSM changed: #VE
        });
        Assert.Equal(0UL, td.RunToReport());
        Assert.Equal(Ok, RdOutcome(td, out ulong before, out _));
        Assert.Equal(Ok, td.RunToReport());
        AssertRdValue(td, 1 | (before & 0x1880), 0);
        Assert.Equal([Gp, Gp, VeWr, VeWr], Enumerable.Range(0, 4).Select(_ => td.RunToReport()));
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Enum_topology_alone_makes_rdmsr_of_the_x2apic_id_the_modules_without_reducing_other_ves()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, EnumTopology, a =>
        {
            Rd(a, 0x802);
            Wr(a, 0x802, 0);             // the write is still the old table's #VE
            Rd(a, 0x3b);
        });
        Assert.Equal(0UL, td.RunToReport());
        AssertRdValue(td, 0, 0);
        Assert.Equal(VeWr, td.RunToReport());
        AssertRd(td, VeRd);
        Assert.Equal(Marker, td.RunToReport());
    }
}
