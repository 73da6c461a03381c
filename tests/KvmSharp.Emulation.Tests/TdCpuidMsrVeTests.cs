// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// CPUID, RDMSR and WRMSR in a TD (X86/Emulate/X86Emulator.TdxCpuidMsr.cs): the TDX module's #VE with exit reason 10,
/// 31 or 32 for what it does not virtualize (intel/tdx-module td_cpuid.c, td_msr_access.c, msr_config_lookup.c), served
/// by a #VE handler with TDG.VP.VMCALL&lt;Instruction.CPUID/RDMSR/WRMSR&gt; as Linux's tdx.c handle_cpuid / read_msr /
/// write_msr do, and what the module answers itself without a #VE.
/// </summary>
public sealed class TdCpuidMsrVeTests
{
    private const ulong Marker = 0x600d;

    private static EmulatedKernel NewKernel() => new(EmulatorConfig.X86_64());

    /// <summary>
    /// A #VE handler: TDG.VP.VEINFO.GET and reports of RCX (exit reason), RDX (qualification), R8 (GLA), R9 (GPA), R10
    /// (length | info); then, as tdx.c does, CPUID (10) → TDG.VP.VMCALL&lt;CPUID&gt;(R12 = EAX, R13 = ECX) with R12–R15
    /// into EAX–EDX; RDMSR (31) → &lt;RDMSR&gt;(R12 = ECX), a report of R10 (the status), R11 into EDX:EAX; WRMSR (32) →
    /// &lt;WRMSR&gt;(R12 = ECX, R13 = EDX:EAX), a report of R10. Skips the instruction (R10[31:0] bytes). Clobbers RSI, RDI,
    /// R8–R15.
    /// </summary>
    private static void VeHandler(Assembler a, Label ve)
    {
        Label cpuid = a.CreateLabel(), rdmsr = a.CreateLabel(), wrmsr = a.CreateLabel(), done = a.CreateLabel(), restored = a.CreateLabel();
        a.Label(ref ve);
        a.push(rax);
        a.push(rcx);
        a.push(rdx);
        TdTestCode.ReportVeInfo(a, rcx, rdx, r8, r9, r10);
        a.mov(esi, r10d);
        a.mov(edi, ecx);
        a.mov(rax, __qword_ptr[rsp + 16]);
        a.mov(rcx, __qword_ptr[rsp + 8]);
        a.mov(rdx, __qword_ptr[rsp]);
        a.cmp(edi, 10);
        a.je(cpuid);
        a.cmp(edi, 31);
        a.je(rdmsr);
        a.cmp(edi, 32);
        a.je(wrmsr);
        a.jmp(restored);

        a.Label(ref cpuid);
        a.mov(r12, rax);
        a.mov(r13, rcx);
        Vmcall(a, TdxGhci.EXIT_REASON_CPUID);
        a.mov(eax, r12d);
        a.mov(ebx, r13d);
        a.mov(ecx, r14d);
        a.mov(edx, r15d);
        a.jmp(done);

        a.Label(ref rdmsr);
        a.mov(r12, rcx);
        Vmcall(a, TdxGhci.EXIT_REASON_MSR_READ);
        TdGuest.Report(a, r10);
        a.mov(eax, r11d);
        a.mov(rdx, r11);
        a.shr(rdx, 32);
        a.mov(rcx, __qword_ptr[rsp + 8]);
        a.jmp(done);

        a.Label(ref wrmsr);
        a.mov(r12, rcx);
        a.mov(r13, rdx);
        a.shl(r13, 32);
        a.mov(r14d, eax);
        a.or(r13, r14);
        Vmcall(a, TdxGhci.EXIT_REASON_MSR_WRITE);
        TdGuest.Report(a, r10);

        a.Label(ref restored);
        a.pop(rdx);
        a.pop(rcx);
        a.pop(rax);
        a.add(__qword_ptr[rsp], rsi);
        a.iretq();

        a.Label(ref done);
        a.add(rsp, 24);
        a.add(__qword_ptr[rsp], rsi);
        a.iretq();
    }

    /// <summary>TDG.VP.VMCALL with R12/R13 as they are: RCX = R10–R15 exposed, R10 = 0, R11 = <paramref name="subFunction"/>.</summary>
    private static void Vmcall(Assembler a, ulong subFunction)
    {
        a.mov(ecx, (uint)TdGuest.ExposeR10ToR15);
        a.xor(r10d, r10d);
        a.mov(r11, subFunction);
        a.xor(eax, eax);
        a.tdcall();
    }

    private static TdGuest Td(Kvm kvm, Action<Assembler> body) => TdGuest.Create(kvm, a =>
    {
        var ve = a.CreateLabel();
        TdGuest.InstallHandler(a, 20, ve);
        body(a);
        a.mov(r15, Marker);
        TdGuest.Report(a, r15);
        TdTestCode.SpinForever(a);
        VeHandler(a, ve);
    });

    private static void Cpuid(Assembler a, uint leaf, uint subleaf = 0)
    {
        a.mov(eax, leaf);
        a.mov(ecx, subleaf);
        a.cpuid();
        foreach (var r in new[] { rax, rbx, rcx, rdx }) TdGuest.Report(a, r);
    }

    private static ulong[] Reports(TdGuest td, int n) => [.. Enumerable.Range(0, n).Select(_ => td.RunToReport())];

    /// <summary>
    /// The five reports of <see cref="VeHandler"/> for a #VE on a two-byte instruction (CPUID, RDMSR, WRMSR): exit
    /// reason <paramref name="exitReason"/>, qualification, GLA and GPA 0, length 2.
    /// </summary>
    private static void AssertVe(TdGuest td, ulong exitReason) => Assert.Equal([exitReason, 0UL, 0UL, 0UL, 2UL], Reports(td, 5));

    /// <summary><see cref="AssertVe"/> for RDMSR (31) or WRMSR (32), then the status of the handler's TDVMCALL (its R10 report).</summary>
    private static void AssertMsrVe(TdGuest td, ulong exitReason, ulong status)
    {
        AssertVe(td, exitReason);
        Assert.Equal(status, td.RunToReport());
    }

    private static ulong[] Regs(CpuidEntry e) => [e.Eax, e.Ebx, e.Ecx, e.Edx];

    private static CpuidEntry Supported(Kvm kvm, uint function, uint index = 0) =>
        kvm.GetSupportedCpuid().First(e => e.Function == function && (!e.HasSignificantIndex || e.Index == index));

    /// <summary>kvm_cpuid of a leaf below the maximum on this AMD guest vendor: the table's entry, or zeros without one.</summary>
    private static ulong[] KvmAnswer(Kvm kvm, uint function, uint index = 0) =>
        kvm.GetSupportedCpuid().Where(e => e.Function == function && (!e.HasSignificantIndex || e.Index == index)).Select(Regs).FirstOrDefault() ?? [0, 0, 0, 0];

    [Fact]
    public void Cpuid_of_a_hypervisor_leaf_is_a_ve_10_and_the_vmcall_returns_kvms_answer()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a => Cpuid(a, 0x4000_0000));
        // EXIT_REASON_CPUID, qualification 0, GLA and GPA 0, length 2 (0F A2).
        AssertVe(td, 10);
        // kvm_cpuid over the vCPU's KVM_SET_CPUID2 table: KVM's signature leaf.
        Assert.Equal(Regs(Supported(kvm, 0x4000_0000)), Reports(td, 4));
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Cpuid_of_directly_virtualized_leaves_returns_the_configured_values_without_a_ve()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            Cpuid(a, 0);
            Cpuid(a, 1);
            Cpuid(a, 0x8000_0001);
        });
        // Leaf 0 is not configurable: the module's value, as KVM_TDX_GET_CPUID reports it (the supported table's).
        Assert.Equal(Regs(Supported(kvm, 0)), Reports(td, 4));
        var one = Reports(td, 4);
        var s1 = Supported(kvm, 1);
        Assert.Equal(s1.Eax, one[0]);
        Assert.Equal(0UL, one[1] >> 24);                     // EBX[31:24] = VCPU_INDEX 0
        Assert.Equal(0UL, one[2] & (1UL << 27));             // OSXSAVE = CR4.OSXSAVE (clear in this TD)
        Assert.NotEqual(0UL, one[2] & (1UL << 21));          // x2APIC, configured
        var ext = Reports(td, 4);
        Assert.NotEqual(0UL, ext[3] & (1UL << 11));          // SYSCALL: 64-bit mode
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Cpuid_faulting_leaves_and_subleaves_outside_the_modules_table_are_a_ve()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            Cpuid(a, 0x6);          // "FAULTING_OR_FIXED" without REDUCE_VE
            Cpuid(a, 0xd, 63);      // no such subleaf in the TD's CPUID: CPUID_LOOKUP_IDX_NA
        });
        AssertVe(td, 10);
        Assert.Equal(KvmAnswer(kvm, 0x6), Reports(td, 4));
        AssertVe(td, 10);
        Assert.Equal(KvmAnswer(kvm, 0xd, 63), Reports(td, 4));
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Cpuid_of_a_leaf_above_its_ranges_maximum_reads_the_last_base_leaf_without_a_ve()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        uint lastBase = Supported(kvm, 0).Eax;
        using var td = Td(kvm, a =>
        {
            Cpuid(a, lastBase);
            Cpuid(a, 0x8fff_ffff);
            Cpuid(a, 0x3fff_ffff);
        });
        var expected = Reports(td, 4);
        Assert.Equal(expected, Reports(td, 4));
        Assert.Equal(expected, Reports(td, 4));
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Rdmsr_of_apic_base_is_a_ve_31_and_the_vmcall_reads_kvms_value()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            a.mov(ecx, 0x1b);
            a.rdmsr();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            TdGuest.Report(a, rax);
        });
        AssertMsrVe(td, 31, TdxGhci.TDVMCALL_STATUS_SUCCESS);
        // KVM_TDX_INIT_VCPU: APIC_DEFAULT_PHYS_BASE | X2APIC_ENABLE | XAPIC_ENABLE | BSP.
        Assert.Equal(0xfee0_0d00UL, td.RunToReport());
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Wrmsr_of_the_x2apic_svr_is_a_ve_32_the_vmcall_writes_it_and_a_read_back_sees_it()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            a.mov(ecx, 0x80f);
            a.mov(eax, 0x1ff);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, 0x80f);
            a.rdmsr();
            TdGuest.Report(a, rax);
        });
        AssertMsrVe(td, 32, TdxGhci.TDVMCALL_STATUS_SUCCESS);
        AssertMsrVe(td, 31, TdxGhci.TDVMCALL_STATUS_SUCCESS);
        Assert.Equal(0x1ffUL, td.RunToReport());
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void A_refused_msr_vmcall_is_invalid_operand_and_a_kvm_pv_msr_outside_the_bitmap_is_a_ve()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            a.mov(ecx, 0x4b56_4d01); // MSR_KVM_SYSTEM_TIME_NEW: beyond the MSR bitmap ranges
            a.rdmsr();
        });
        // tdx_has_emulated_msr does not list it: TDVMCALL_STATUS_INVALID_OPERAND.
        AssertMsrVe(td, 31, TdxGhci.TDVMCALL_STATUS_INVALID_OPERAND);
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Module_virtualized_msrs_need_no_ve_lstar_and_kernel_gs_base_round_trip_efer_reads_and_efer_sce_writes()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            foreach (var (msr, value) in new[] { (0xc000_0082u, 0x1234_5678u), (0xc000_0102u, 7u) })
            {
                a.mov(ecx, msr);
                a.mov(eax, value);
                a.mov(edx, 0xffff_8000u);
                if (msr == 0xc000_0102u) a.xor(edx, edx);
                a.wrmsr();
                a.xor(eax, eax);
                a.xor(edx, edx);
                a.rdmsr();
                a.shl(rdx, 32);
                a.or(rax, rdx);
                TdGuest.Report(a, rax);
            }
            a.mov(ecx, 0xc000_0080);
            a.rdmsr();
            a.mov(r8, rax);
            TdGuest.Report(a, r8);
            a.mov(rax, r8);
            a.xor(eax, 1);      // toggle SCE: the module allows it
            a.xor(edx, edx);
            a.mov(ecx, 0xc000_0080);
            a.wrmsr();
            a.rdmsr();
            TdGuest.Report(a, rax);
        });
        Assert.Equal(0xffff_8000_1234_5678UL, td.RunToReport());
        Assert.Equal(7UL, td.RunToReport());
        ulong efer = td.RunToReport();
        Assert.Equal(0x500UL, efer & 0x500);               // LME | LMA
        Assert.Equal(efer ^ 1, td.RunToReport());
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void Wrmsr_efer_changing_nxe_is_a_ve_32_and_rdmsr_of_an_sgx_msr_is_a_gp()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            Label ve = a.CreateLabel(), gp = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            TdGuest.InstallHandler(a, 13, gp);
            a.mov(ecx, 0xc000_0080);
            a.rdmsr();
            a.xor(eax, 1 << 11); // NXE
            a.wrmsr();
            a.mov(ecx, 0x8c);    // IA32_SGXLEPUBKEYHASH0: action GP
            a.rdmsr();
            a.mov(r15, Marker);
            TdGuest.Report(a, r15);
            TdTestCode.SpinForever(a);
            a.Label(ref ve);
            TdTestCode.ReportVeInfo(a, rcx);
            a.add(__qword_ptr[rsp], 2);
            a.iretq();
            a.Label(ref gp);
            a.mov(r15, 0xd);
            TdGuest.Report(a, r15);
            a.pop(r14);          // error code
            TdGuest.Report(a, r14);
            a.add(__qword_ptr[rsp], 2);
            a.iretq();
        });
        Assert.Equal([32UL, 0xdUL, 0UL, Marker], Reports(td, 4));
    }

    [Fact]
    public void Cpuid_of_the_kvm_features_leaf_is_a_ve_too()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a => Cpuid(a, 0x4000_0001));
        AssertVe(td, 10);
        Assert.Equal(Supported(kvm, 0x4000_0001).Eax, Reports(td, 4)[0]);
        Assert.Equal(Marker, td.RunToReport());
    }
}
