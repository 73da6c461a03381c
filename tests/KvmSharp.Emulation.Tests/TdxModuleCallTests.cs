// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The emulated TDX module's own TDCALL leaves (X86/Emulate/X86Emulator.TdxModule.cs): TDG.VP.VEINFO.GET after the #VE
/// the module injects for IN/OUT/HLT and PENDING pages, the #VE-while-VALID #DF, TDG.VP.INFO, and TDG.MEM.PAGE.ACCEPT
/// with the S-EPT's PENDING state (Arch/X86/TdxSept.cs), including kvm_vm_dead with SEPT_VE_DISABLE.
/// </summary>
public sealed class TdxModuleCallTests
{
    private const ulong TdxNoValidVeInfo = 0xC000_0704_0000_0000, TdxOperandInvalidRcx = 0xC000_0100_0000_0001;
    private const ulong TdxPageAlreadyAccepted = 0x0000_0B0A_0000_0000, TdxPageSizeMismatch2M = 0xC000_0B0B_0000_0001;

    private static EmulatedKernel NewKernel() => new(EmulatorConfig.X86_64());

    /// <summary>A #VE handler: TDG.VP.VEINFO.GET, reports RAX, RCX, RDX, R8, R9 and R10, skips R10[31:0] bytes, IRETQ.</summary>
    private static void VeHandlerReportingAndSkipping(Assembler a, Label handler)
    {
        a.Label(ref handler);
        TdTestCode.ReportVeInfo(a, rax, rcx, rdx, r8, r9, r10);
        a.mov(r11d, r10d);
        a.add(__qword_ptr[rsp], r11);
        a.iretq();
    }

    private static ulong[] Reports(TdGuest td, int n) => [.. Enumerable.Range(0, n).Select(_ => td.RunToReport())];

    [Fact]
    public void Out_is_a_ve_whose_veinfo_get_returns_exit_reason_30_the_io_qualification_and_the_length()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            var ve = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            a.mov(al, 0x5a);
            a.@out(0x80, al);          // E6 80: immediate port, 1 byte
            a.mov(dx, 0x3f8);
            a.@in(eax, dx);            // ED: DX port, 4 bytes
            a.mov(r15, 0x600d);
            TdGuest.Report(a, r15);
            TdTestCode.SpinForever(a);
            VeHandlerReportingAndSkipping(a, ve);
        });
        // OUT: success, EXIT_REASON_IO_INSTRUCTION, size 1 (0), OUT, immediate (bit 6), port 0x80; GLA, GPA 0; length 2.
        Assert.Equal([0UL, 30UL, 0x0080_0040UL, 0UL, 0UL, 2UL], Reports(td, 6));
        // IN EAX, DX: size 4 (3), IN (bit 3), port 0x3F8; length 1.
        Assert.Equal([0UL, 30UL, 0x03f8_000bUL, 0UL, 0UL, 1UL], Reports(td, 6));
        Assert.Equal(0x600dUL, td.RunToReport());
    }

    [Fact]
    public void Hlt_is_a_ve_with_exit_reason_12_and_veinfo_get_without_valid_info_is_no_valid_ve_info_with_zeroed_outputs()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            var ve = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            a.hlt();
            // The handler cleared VALID: a second VEINFO.GET has nothing (RCX, RDX, R8, R9, R10 zeroed first).
            foreach (var r in new[] { rcx, rdx, r8, r9, r10 }) a.mov(r, -1);
            TdTestCode.ReportVeInfo(a, rax, rcx, rdx, r8, r9, r10);
            TdTestCode.SpinForever(a);
            VeHandlerReportingAndSkipping(a, ve);
        });
        Assert.Equal([0UL, 12UL, 0UL, 0UL, 0UL, 1UL], Reports(td, 6));
        Assert.Equal([TdxNoValidVeInfo, 0UL, 0UL, 0UL, 0UL, 0UL], Reports(td, 6));
    }

    [Fact]
    public void A_ve_while_the_previous_ve_info_is_still_valid_is_a_double_fault()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            var ve = a.CreateLabel();
            var df = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            TdGuest.InstallHandler(a, 8, df);
            a.@out(0x80, al);
            a.mov(r15, 0x1111);
            TdGuest.Report(a, r15);
            a.@out(0x80, al); // VE_INFO still VALID: #DF
            TdTestCode.SpinForever(a);
            // #VE handler that does not read the info: skip the 2-byte OUT.
            a.Label(ref ve);
            a.add(__qword_ptr[rsp], 2);
            a.iretq();
            a.Label(ref df);
            a.mov(r15, 0xdf);
            TdGuest.Report(a, r15);
            a.pop(r14); // #DF's error code (0)
            TdGuest.Report(a, r14);
            var stop = a.CreateLabel();
            a.Label(ref stop);
            a.jmp(stop);
        });
        Assert.Equal(0x1111UL, td.RunToReport());
        Assert.Equal(0xdfUL, td.RunToReport());
        Assert.Equal(0UL, td.RunToReport());
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(TdGuest.AttrSeptVeDisable)]
    public void Vp_info_returns_gpaw_attributes_vcpu_counts_and_index(ulong attributes)
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            foreach (var r in new[] { rcx, rdx, r8, r9, r10, r11 }) a.mov(r, -1);
            a.mov(eax, TdGuest.TdgVpInfo);
            a.tdcall();
            foreach (var r in new[] { rax, rcx, rdx, r8, r9, r10, r11 }) TdGuest.Report(a, r);
        }, attributes);
        ulong maxVcpus = (ulong)Math.Min(k.Config.MaxVcpus, k.Config.OnlineCpus);
        Assert.Equal([0UL, 48UL, attributes, 1UL | (maxVcpus << 32), 0UL, 1UL, 0UL], Reports(td, 7));
    }

    [Fact]
    public void Accept_makes_a_pending_page_usable_and_zeroed_a_second_accept_is_already_accepted()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            a.mov(rcx, TdGuest.UnacceptedPage);
            a.mov(eax, TdGuest.TdgMemPageAccept);
            a.tdcall();
            TdGuest.Report(a, rax);
            a.mov(rbx, TdGuest.UnacceptedPage);
            a.mov(rax, __qword_ptr[rbx + 8]);
            TdGuest.Report(a, rax);
            a.mov(__qword_ptr[rbx + 8], 0x77);
            a.mov(rax, __qword_ptr[rbx + 8]);
            TdGuest.Report(a, rax);
            a.mov(rcx, TdGuest.UnacceptedPage);
            a.mov(eax, TdGuest.TdgMemPageAccept);
            a.tdcall();
            TdGuest.Report(a, rax);
        });
        Assert.Equal([0UL, 0UL, 0x77UL, TdxPageAlreadyAccepted], Reports(td, 4));
    }

    [Fact]
    public void Accept_operand_checks_and_a_2m_accept_over_4k_mappings_is_page_size_mismatch()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        ulong[] rcxValues =
        [
            TdGuest.UnacceptedPage | 2,                 // level 2 (1 GiB) is not accepted
            TdGuest.UnacceptedPage | 0x8,               // reserved bit 3
            TdGuest.UnacceptedPage | TdGuest.SharedBit, // a shared GPA
            TdGuest.UnacceptedPage | 1,                 // 2 MiB level, GPA not 2 MiB aligned
            0xffe0_0000UL | 1,                          // 2 MiB with 4 KiB leaves inside (the boot page)
            1UL << 48,                                  // beyond GPAW 48
        ];
        using var td = TdGuest.Create(kvm, a =>
        {
            foreach (ulong v in rcxValues)
            {
                a.mov(rcx, v);
                a.mov(eax, TdGuest.TdgMemPageAccept);
                a.tdcall();
                TdGuest.Report(a, rax);
            }
        });
        Assert.Equal([TdxOperandInvalidRcx, TdxOperandInvalidRcx, TdxOperandInvalidRcx, TdxOperandInvalidRcx, TdxPageSizeMismatch2M, TdxOperandInvalidRcx],
            Reports(td, rcxValues.Length));
    }

    [Fact]
    public void Pending_access_without_sept_ve_disable_is_an_ept_violation_ve_the_handler_accepts_and_the_access_is_retried()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            var ve = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            a.mov(rbx, TdGuest.UnacceptedPage);
            a.mov(rax, -1);
            a.mov(rax, __qword_ptr[rbx + 0x18]);
            TdGuest.Report(a, rax);
            TdTestCode.SpinForever(a);
            a.Label(ref ve);
            a.push(rax);
            a.push(rbx);
            TdTestCode.ReportVeInfo(a, rcx, rdx, r8, r9);
            a.mov(rcx, r9);
            a.and(rcx, -4096);
            a.mov(eax, TdGuest.TdgMemPageAccept);
            a.tdcall();
            TdGuest.Report(a, rax);
            a.pop(rbx);
            a.pop(rax);
            a.iretq(); // the faulting MOV again
        });
        // EXIT_REASON_EPT_VIOLATION; qualification read | GLA valid | final translation; GLA and GPA of the access.
        ulong at = TdGuest.UnacceptedPage + 0x18;
        Assert.Equal([48UL, 0x181UL, at, at, 0UL], Reports(td, 5));
        Assert.Equal(0UL, td.RunToReport());
    }

    [Fact]
    public void Pending_access_with_sept_ve_disable_kills_the_vm_kvm_run_and_vm_ioctls_answer_eio()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        // Disposing a dead VM's guest deletes nothing (EIO) and does not throw (MemorySlot.Dispose).
        using var td = TdGuest.Create(kvm, a =>
        {
            a.mov(rbx, TdGuest.UnacceptedPage);
            a.mov(rax, __qword_ptr[rbx]);
            TdGuest.Report(a, rax);
        }, TdGuest.AttrSeptVeDisable);
        var e = Assert.Throws<KvmException>(() => { td.Vcpu.RunBounded(); });
        Assert.Equal(Errno.EIO, e.Errno);
        e = Assert.Throws<KvmException>(() => { td.Vcpu.RunBounded(); });
        Assert.Equal(Errno.EIO, e.Errno);
        e = Assert.Throws<KvmException>(() => td.Vm.CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY));
        Assert.Equal(Errno.EIO, e.Errno);
    }

    [Fact]
    public void Delivering_a_ve_through_an_idt_in_a_pending_page_ends_in_a_triple_fault()
    {
        // The #VE for OUT reads its gate from the PENDING page: a second #VE while VALID → #DF, whose delivery meets
        // the page again → shutdown (tdx_handle_exit EXIT_REASON_TRIPLE_FAULT: KVM_EXIT_SHUTDOWN).
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            a.mov(rbx, TdGuest.IdtrImage);
            a.mov(__word_ptr[rbx], 0xfff);
            a.mov(rax, TdGuest.UnacceptedPage);
            a.mov(__qword_ptr[rbx + 2], rax);
            a.lidt(__[rbx]);
            a.@out(0x80, al);
        });
        Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, td.Vcpu.RunBounded().Reason);
    }

    [Fact]
    public void A_page_converted_to_shared_and_back_is_pending_again()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            var ve = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            a.mov(rcx, TdGuest.UnacceptedPage);
            a.mov(eax, TdGuest.TdgMemPageAccept);
            a.tdcall();
            TdGuest.Report(a, rax);
            a.mov(rbx, TdGuest.UnacceptedPage);
            a.mov(rax, __qword_ptr[rbx]);
            TdGuest.Report(a, rax); // accepted: readable
            a.mov(rax, __qword_ptr[rbx]); // after the round trip: PENDING again
            a.mov(r15, 0xbad);
            TdGuest.Report(a, r15);
            TdTestCode.SpinForever(a);
            a.Label(ref ve);
            TdTestCode.ReportVeInfo(a, rcx);
            TdGuest.Report(a, r9);
            var stop = a.CreateLabel();
            a.Label(ref stop);
            a.jmp(stop);
        });
        Assert.Equal([0UL, 0UL], Reports(td, 2));
        td.Vm.SetMemoryAttributes(TdGuest.UnacceptedPage, 0x1000, 0);
        td.Vm.SetMemoryAttributes(TdGuest.UnacceptedPage, 0x1000, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        Assert.Equal([48UL, TdGuest.UnacceptedPage], Reports(td, 2));
    }

    [Fact]
    public void Accept_of_a_gpa_kvm_cannot_map_ends_kvm_run_with_a_private_memory_fault()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            a.mov(rcx, 0x10_0000UL); // private, no memslot
            a.mov(eax, TdGuest.TdgMemPageAccept);
            a.tdcall();
            TdGuest.Report(a, rax);
        });
        // KVM_RUN's -EFAULT with KVM_EXIT_MEMORY_FAULT (the typed API returns it as the exit).
        var exit = td.Vcpu.RunBounded();
        Assert.Equal((KvmExitReason.KVM_EXIT_MEMORY_FAULT, 0x10_0000UL, true), (exit.Reason, exit.MemoryFaultGpa, exit.MemoryFaultIsPrivate));
    }

    [Fact]
    public void Ins_and_outs_are_a_ve_whose_io_qualification_has_the_string_and_rep_bits()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            var ve = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            a.mov(dx, 0x510);
            a.mov(ecx, 3);
            a.mov(esi, 0x1234);
            a.mov(edi, 0x5678);
            a.rep.outsb();             // F3 6E: REP OUTSB
            a.mov(dx, 0x510);          // the handler's VEINFO.GET wrote RDX
            a.insw();                  // 66 6D: INSW
            TdGuest.Report(a, rsi);    // neither moved RSI nor RDI
            TdGuest.Report(a, rdi);
            TdTestCode.SpinForever(a);
            VeHandlerReportingAndSkipping(a, ve);
        });
        // REP OUTSB: size 1 (0), OUT, string (bit 4), REP (bit 5), DX port 0x510; length 2.
        Assert.Equal([0UL, 30UL, 0x0510_0030UL, 0UL, 0UL, 2UL], Reports(td, 6));
        // INSW: size 2 (1), IN (bit 3), string (bit 4), no REP; length 2.
        Assert.Equal([0UL, 30UL, 0x0510_0019UL, 0UL, 0UL, 2UL], Reports(td, 6));
        Assert.Equal([0x1234UL, 0x5678UL], Reports(td, 2));
    }
}
