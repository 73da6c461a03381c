// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SEV-ES and SNP guests talking to the host as on AMD hardware (emulator only: this host has no SEV). Intercepted
/// instructions of a protected vCPU raise #VC (vector 29, error code = SVM exit code); VMGEXIT answers the GHCB MSR
/// protocol and the GHCB page protocol as arch/x86/kvm/svm/sev.c sev_handle_vmgexit does
/// (src/KvmSharp.Emulation/X86/Emulate/X86Emulator.SevEs.cs, X86Emulator.Ghcb.cs, X86Emulator.GhcbPsc.cs).
/// </summary>
public sealed class SevEsGhcbTests
{
    private const ulong GhcbLinear = SevEsGuest.SharedAlias + SevEsGuest.Ghcb;
    private const ulong ReportLinear = SevEsGuest.SharedAlias + SevEsGuest.Report;

    // struct ghcb offsets (arch/x86/include/asm/svm.h) and their valid-bitmap bits (offset / 8).
    private const int Rax = 0x1f8, Rbx = 0x318, Rcx = 0x308, SwExitCode = 0x390, Info1 = 0x398, Info2 = 0x3a0, Scratch = 0x3a8;
    private const int Usage = 0xffc;

    private static ulong TermValue(byte code) => 0x100 | (1 << 12) | ((ulong)code << 16);

    private static void AssertTerminated(SevEsGuest g, byte code)
    {
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        Assert.Equal(KvmConstants.KVM_SYSTEM_EVENT_SEV_TERM, exit.SystemEventType);
        Assert.Equal([TermValue(code)], exit.SystemEventData.ToArray());
    }

    /// <summary>mov [ReportLinear + 8 * index], rax (RBX clobbered).</summary>
    private static void StoreRax(Assembler a, int index)
    {
        a.mov(rbx, (long)ReportLinear);
        a.mov(__qword_ptr[rbx + 8 * index], rax);
    }

    /// <summary>MSR protocol request <paramref name="request"/>, VMGEXIT, the GHCB MSR to report[index].</summary>
    private static void MsrRequest(Assembler a, ulong request, int index)
    {
        SevEsGuest.WriteGhcbMsr(a, request);
        SevEsGuest.Vmgexit(a);
        SevEsGuest.ReadGhcbMsr(a);
        StoreRax(a, index);
    }

    private static void SetGhcb(Assembler a, int offset, ulong value) => SevEsGuest.SetGhcb(a, offset, value);

    private static void SetValid(Assembler a, params int[] offsets) => SevEsGuest.SetGhcbValid(a, offsets);

    /// <summary>GHCB_MSR_REG_GPA_REQ for the GHCB (an SNP guest must register it before using it).</summary>
    private static void RegisterGhcb(Assembler a) => MsrRequest(a, ((SevEsGuest.Ghcb >> 12) << 12) | 0x012, 7);

    /// <summary>GHCB MSR = the GHCB's GPA; VMGEXIT; sw_exit_info_1/2 to report[0]/[1].</summary>
    private static void GhcbExit(Assembler a)
    {
        SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb);
        SevEsGuest.Vmgexit(a);
        a.mov(rbx, (long)GhcbLinear);
        a.mov(rax, __qword_ptr[rbx + Info1]);
        StoreRax(a, 0);
        a.mov(rbx, (long)GhcbLinear);
        a.mov(rax, __qword_ptr[rbx + Info2]);
        StoreRax(a, 1);
    }

    [Fact]
    public void Msr_protocol_sev_info_gives_the_ghcb_versions_and_the_cbit_position_and_is_the_reset_value()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            SevEsGuest.ReadGhcbMsr(a);
            StoreRax(a, 0);
            MsrRequest(a, 0x002, 1);
            SevEsGuest.Terminate(a, 1);
        });
        AssertTerminated(g, 1);
        // GHCB_MSR_SEV_INFO(max = ghcb_version (2, GHCB_VERSION_DEFAULT), min = GHCB_VERSION_MIN 1, cbit 51).
        ulong expected = (2UL << 48) | (1UL << 32) | (51UL << 24) | 0x001;
        Assert.Equal(expected, g.ReportQword(0));
        Assert.Equal(expected, g.ReportQword(1));
    }

    [Fact]
    public void Msr_protocol_cpuid_answers_from_the_vcpu_cpuid_table()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            MsrRequest(a, 0x004 | (1UL << 30), 0); // leaf 0, EBX
            MsrRequest(a, 0x004 | (0UL << 30) | (0x8000_001fUL << 32), 1); // leaf 0x8000001F, EAX
            SevEsGuest.Terminate(a, 2);
        });
        AssertTerminated(g, 2);
        Assert.Equal((0x6874_7541UL << 32) | (1UL << 30) | 0x005, g.ReportQword(0));
        Assert.Equal((0xaUL << 32) | 0x005, g.ReportQword(1));
    }

    [Fact]
    public void Msr_protocol_snp_registration_and_hv_features_answer_and_unknown_requests_keep_the_msr()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            MsrRequest(a, (0x9UL << 12) | 0x012, 0);
            MsrRequest(a, 0x080, 1);
            MsrRequest(a, 0x0ff, 2);
            SevEsGuest.Terminate(a, 3);
        });
        AssertTerminated(g, 3);
        Assert.Equal((0x9UL << 12) | 0x013, g.ReportQword(0));
        Assert.Equal((0x3UL << 12) | 0x081, g.ReportQword(1));
        Assert.Equal(0x0ffUL, g.ReportQword(2));
    }

    [Fact]
    public void Msr_protocol_snp_only_requests_terminate_an_sev_es_guest()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a => MsrRequest(a, (0x9UL << 12) | 0x012, 0));
        var exit = g.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, exit.Reason);
        Assert.Equal((KvmConstants.KVM_SYSTEM_EVENT_SEV_TERM, (0x9UL << 12) | 0x012), (exit.SystemEventType, exit.SystemEventData[0]));
    }

    [Fact]
    public void Msr_protocol_page_state_change_exits_with_map_gpa_range_and_completes_with_the_vmm_answer()
    {
        const ulong Page = 0xC000;
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            MsrRequest(a, (1UL << 52) | ((Page >> 12) << 12) | 0x014, 0); // to private
            MsrRequest(a, (2UL << 52) | ((Page >> 12) << 12) | 0x014, 1); // to shared: the VMM fails it
            MsrRequest(a, (3UL << 52) | ((Page >> 12) << 12) | 0x014, 2); // bad operation: no exit
            SevEsGuest.Terminate(a, 4);
        });
        g.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HYPERCALL, $"exit {exit.ToString()}");
        Assert.Equal((KvmPara.KVM_HC_MAP_GPA_RANGE, Page, 1UL, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED),
            (exit.HypercallNr, exit.HypercallArgs[0], exit.HypercallArgs[1], exit.HypercallArgs[2]));
        g.Vm.SetMemoryAttributes(Page, 0x1000, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HYPERCALL, $"exit {exit.ToString()}");
        Assert.Equal((Page, KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED), (exit.HypercallArgs[0], exit.HypercallArgs[2]));
        exit.HypercallReturn = 1;
        AssertTerminated(g, 4);
        Assert.Equal(0x015UL, g.ReportQword(0));
        Assert.Equal((1UL << 63) | 0x015, g.ReportQword(1));
        Assert.Equal((1UL << 63) | 0x015, g.ReportQword(2));
    }

    [Fact]
    public void Msr_protocol_page_state_change_without_hypercall_exits_is_an_error_at_once()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            MsrRequest(a, (1UL << 52) | (0xCUL << 12) | 0x014, 0);
            SevEsGuest.Terminate(a, 5);
        });
        AssertTerminated(g, 5);
        Assert.Equal((1UL << 63) | 0x015, g.ReportQword(0));
    }

    public static TheoryData<string, uint> Intercepts => new()
    {
        { "in al, 0x10", 0x7b },
        { "out dx, al", 0x7b },
        { "cpuid", 0x72 },
        { "rdmsr", 0x7c },
        { "wrmsr", 0x7c },
        { "vmmcall", 0x81 },
        { "mmio read", 0x400 },
        { "mmio write", 0x400 },
    };

    [Theory]
    [MemberData(nameof(Intercepts))]
    public void An_intercepted_instruction_of_a_protected_guest_raises_vc_with_the_svm_exit_code(string instruction, uint errorCode)
    {
        foreach (var type in new[] { VmType.SevEs, VmType.Snp })
        {
            using var g = SevEsGuest.Create(type, a =>
            {
                // Three 5-byte moves, then the instruction at Code + 15.
                a.mov(ebx, (uint)SevEsGuest.MmioLinear);
                a.mov(ecx, 0x10);
                a.mov(edx, 0x10);
                switch (instruction)
                {
                    case "in al, 0x10": a.@in(al, 0x10); break;
                    case "out dx, al": a.@out(dx, al); break;
                    case "cpuid": a.cpuid(); break;
                    case "rdmsr": a.rdmsr(); break;
                    case "wrmsr": a.wrmsr(); break;
                    case "vmmcall": a.vmmcall(); break;
                    case "mmio read": a.mov(al, __byte_ptr[rbx]); break;
                    default: a.mov(__byte_ptr[rbx], al); break;
                }
                a.hlt();
            });
            AssertTerminated(g, 0x29);
            Assert.Equal(((ulong)errorCode, SevEsGuest.Code + 15), (g.ReportQword(0), g.ReportQword(1)));
        }
    }

    [Fact]
    public void A_plain_sev_guest_still_exits_directly_and_its_vmgexit_is_vmmcall()
    {
        using var g = SevEsGuest.Create(VmType.Sev, a =>
        {
            a.mov(eax, 0xffff); // no such hypercall: -KVM_ENOSYS (-1000) in RAX
            SevEsGuest.Vmgexit(a);
            a.@out(0x10, al);
            a.hlt();
        });
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
        Assert.Equal((0x10, (byte)0x18), (exit.IoPort, exit.IoData[0])); // -1000 = 0x…FC18
    }

    [Fact]
    public void Ghcb_ioio_out_exits_with_the_ghcb_rax_and_reports_success()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            SetGhcb(a, Rax, 0x1234_5642);
            SetGhcb(a, SwExitCode, 0x7b);
            SetGhcb(a, Info1, (0x10UL << 16) | (1 << 4)); // OUT, 8-bit, port 0x10
            SetGhcb(a, Info2, 0);
            SetValid(a, Rax, SwExitCode, Info1, Info2);
            GhcbExit(a);
            SevEsGuest.Terminate(a, 6);
        });
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
        Assert.Equal((true, (ushort)0x10, 1, (byte)0x42), (exit.IoIsOut, exit.IoPort, exit.IoSize, exit.IoData[0]));
        AssertTerminated(g, 6);
        Assert.Equal((0UL, 0UL), (g.ReportQword(0), g.ReportQword(1)));
        // sev_es_sync_to_ghcb: RAX..RDX and the exit information are valid again, nothing else.
        Assert.True(g.GhcbValid(Rax) && g.GhcbValid(Rbx) && g.GhcbValid(Info1) && g.GhcbValid(Info2));
        Assert.False(g.GhcbValid(SwExitCode));
    }

    [Theory]
    [InlineData(1, 0x1122_3344_5566_77ABUL)]
    [InlineData(2, 0x1122_3344_5566_CDABUL)]
    [InlineData(4, 0x0000_0000_00EF_CDABUL)]
    public void Ghcb_ioio_in_exits_and_the_data_lands_in_the_ghcb_rax(int size, ulong expected)
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            SetGhcb(a, Rax, 0x1122_3344_5566_7788);
            SetGhcb(a, SwExitCode, 0x7b);
            SetGhcb(a, Info1, (0x20UL << 16) | ((ulong)size << 4) | 1); // IN
            SetGhcb(a, Info2, 0);
            SetValid(a, Rax, SwExitCode, Info1, Info2);
            GhcbExit(a);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(rax, __qword_ptr[rbx + Rax]);
            StoreRax(a, 2);
            SevEsGuest.Terminate(a, 7);
        });
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
        Assert.Equal((false, (ushort)0x20, size), (exit.IoIsOut, exit.IoPort, exit.IoSize));
        byte[] data = [0xAB, 0xCD, 0xEF, 0x00];
        data.AsSpan(0, size).CopyTo(exit.IoData);
        AssertTerminated(g, 7);
        Assert.Equal(expected, g.ReportQword(2));
    }

    public static TheoryData<string, ulong> BadGhcbs => new()
    {
        { "missing sw_exit_info_2", 4 },
        { "out without rax", 4 },
        { "unknown exit code", 6 },
        { "usage 1", 2 },
    };

    [Theory]
    [MemberData(nameof(BadGhcbs))]
    public void A_malformed_ghcb_gets_the_error_in_sw_exit_info_and_no_exit(string what, ulong reason)
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            SetGhcb(a, SwExitCode, what == "unknown exit code" ? 0x1234UL : 0x7b);
            SetGhcb(a, Info1, (0x10UL << 16) | (1 << 4));
            SetGhcb(a, Info2, 0);
            SetGhcb(a, Usage - 4, what == "usage 1" ? 1UL << 32 : 0);
            if (what == "missing sw_exit_info_2") SetValid(a, Rax, SwExitCode, Info1);
            else if (what == "out without rax") SetValid(a, SwExitCode, Info1, Info2);
            else SetValid(a, Rax, SwExitCode, Info1, Info2);
            GhcbExit(a);
            SevEsGuest.Terminate(a, 8);
        });
        AssertTerminated(g, 8);
        Assert.Equal((2UL, reason), (g.ReportQword(0), g.ReportQword(1)));
    }

    [Fact]
    public void Ghcb_cpuid_and_a_failing_msr_read_are_answered_in_the_ghcb()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            SetGhcb(a, Rax, 0);
            SetGhcb(a, Rcx, 0);
            SetGhcb(a, SwExitCode, 0x72);
            SetGhcb(a, Info1, 0);
            SetGhcb(a, Info2, 0);
            SetValid(a, Rax, Rcx, SwExitCode, Info1, Info2);
            GhcbExit(a);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(rax, __qword_ptr[rbx + Rbx]);
            StoreRax(a, 2);
            SetGhcb(a, Rcx, 0xdead_0000);
            SetGhcb(a, SwExitCode, 0x7c);
            SetGhcb(a, Info1, 0); // read
            SetValid(a, Rcx, SwExitCode, Info1, Info2);
            SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb);
            SevEsGuest.Vmgexit(a);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(rax, __qword_ptr[rbx + Info1]);
            StoreRax(a, 3);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(rax, __qword_ptr[rbx + Info2]);
            StoreRax(a, 4);
            SevEsGuest.Terminate(a, 9);
        });
        AssertTerminated(g, 9);
        Assert.Equal((0UL, 0UL), (g.ReportQword(0), g.ReportQword(1)));
        Assert.Equal(0x6874_7541UL, g.ReportQword(2));
        // svm_vmgexit_inject_exception(svm, X86_TRAP_GP): SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_EXEPT | 13.
        Assert.Equal((1UL, 0x8000_030DUL), (g.ReportQword(3), g.ReportQword(4)));
    }

    /// <summary>
    /// A #VC handler for "out 0x10, al" (2 bytes): the GHCB IOIO request with AL, VMGEXIT, RIP past the OUT, IRETQ.
    /// </summary>
    private static void OutHandler(Assembler a)
    {
        a.push(rax);
        a.push(rbx);
        a.push(rcx);
        a.push(rdx);
        a.movzx(eax, al);
        a.mov(rbx, (long)GhcbLinear);
        a.mov(__qword_ptr[rbx + Rax], rax);
        SetGhcb(a, SwExitCode, 0x7b);
        SetGhcb(a, Info1, (0x10UL << 16) | (1 << 4));
        SetGhcb(a, Info2, 0);
        SetValid(a, Rax, SwExitCode, Info1, Info2);
        SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb);
        SevEsGuest.Vmgexit(a);
        a.pop(rdx);
        a.pop(rcx);
        a.pop(rbx);
        a.pop(rax);
        a.add(rsp, 8);
        a.add(__qword_ptr[rsp], 2);
        a.iretq();
    }

    [Theory]
    [InlineData(VmType.SevEs)]
    [InlineData(VmType.Snp)]
    public void An_out_goes_through_the_guest_vc_handler_and_the_ghcb_to_kvm_exit_io(VmType type)
    {
        using var g = SevEsGuest.Create(type, a =>
        {
            if (type == VmType.Snp) RegisterGhcb(a);
            a.mov(al, 0x5a);
            a.@out(0x10, al);
            a.mov(al, 0x5b);
            a.@out(0x10, al);
            SevEsGuest.Terminate(a, 10);
        }, OutHandler);
        foreach (byte expected in new byte[] { 0x5a, 0x5b })
        {
            var exit = g.Vcpu.RunBounded();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
            Assert.Equal((true, (ushort)0x10, expected), (exit.IoIsOut, exit.IoPort, exit.IoData[0]));
        }
        AssertTerminated(g, 10);
    }

    [Fact]
    public void An_snp_guest_must_register_its_ghcb_before_using_it()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a => a.@out(0x10, al), OutHandler);
        var ex = Assert.Throws<KvmException>(() => g.Vcpu.RunBounded());
        Assert.Equal(Errno.EINVAL, ex.Errno);
    }

    [Fact]
    public void Ghcb_page_state_change_merges_adjacent_entries_into_one_map_gpa_range_exit_and_marks_them_done()
    {
        const ulong Buffer = SevEsGuest.Ghcb + 0x800;
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            RegisterGhcb(a);
            SetGhcb(a, 0x800, 1UL << 16); // cur_entry 0, end_entry 1
            SetGhcb(a, 0x808, (1UL << 52) | (0xBUL << 12)); // GFN 0xB to private
            SetGhcb(a, 0x810, (1UL << 52) | (0xCUL << 12)); // GFN 0xC to private
            SetGhcb(a, Scratch, Buffer);
            SetGhcb(a, SwExitCode, 0x8000_0010);
            SetGhcb(a, Info1, 0);
            SetGhcb(a, Info2, 24);
            SetValid(a, Scratch, SwExitCode, Info1, Info2);
            GhcbExit(a);
            SevEsGuest.Terminate(a, 11);
        });
        g.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HYPERCALL, $"exit {exit.ToString()}");
        Assert.Equal((KvmPara.KVM_HC_MAP_GPA_RANGE, 0xB000UL, 2UL, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED),
            (exit.HypercallNr, exit.HypercallArgs[0], exit.HypercallArgs[1], exit.HypercallArgs[2]));
        g.Vm.SetMemoryAttributes(0xB000, 0x2000, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        AssertTerminated(g, 11);
        Assert.Equal((0UL, 0UL), (g.ReportQword(0), g.ReportQword(1)));
        Assert.Equal(2, g.Memory.Read<ushort>(Buffer));
        Assert.Equal(1UL, g.Memory.Read<ulong>(Buffer + 8) & 0xfff);
        Assert.Equal(1UL, g.Memory.Read<ulong>(Buffer + 16) & 0xfff);
    }
    [Fact]
    public void Ghcb_vmmcall_is_a_64_bit_hypercall_whose_exit_answer_lands_in_the_ghcb_rax()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            SetGhcb(a, Rax, KvmPara.KVM_HC_MAP_GPA_RANGE);
            SetGhcb(a, Rbx, 0xC000);
            SetGhcb(a, Rcx, 1);
            SetGhcb(a, 0x310, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED); // RDX
            SetGhcb(a, 0xc8, 0); // CPL (byte 0xcb) = 0
            SetGhcb(a, SwExitCode, 0x81);
            SetGhcb(a, Info1, 0);
            SetGhcb(a, Info2, 0);
            SetValid(a, Rax, Rbx, Rcx, 0x310, 0xcb, SwExitCode, Info1, Info2);
            GhcbExit(a);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(rax, __qword_ptr[rbx + Rax]);
            StoreRax(a, 2);
            SevEsGuest.Terminate(a, 12);
        });
        g.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HYPERCALL, $"exit {exit.ToString()}");
        // is_64_bit_hypercall: guest_state_protected → 64-bit, whatever the mode.
        Assert.Equal((KvmPara.KVM_HC_MAP_GPA_RANGE, 0xC000UL, 1UL, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED, KvmPara.KVM_EXIT_HYPERCALL_LONG_MODE),
            (exit.HypercallNr, exit.HypercallArgs[0], exit.HypercallArgs[1], exit.HypercallArgs[2], exit.HypercallFlags));
        exit.HypercallReturn = 0x55;
        AssertTerminated(g, 12);
        Assert.Equal((0UL, 0UL, 0x55UL), (g.ReportQword(0), g.ReportQword(1), g.ReportQword(2)));
    }

    [Fact]
    public void A_vc_beyond_the_idt_limit_ends_in_a_triple_fault()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            // LIDT of limit 0, base 0 from the (private) stack.
            a.sub(rsp, 16);
            a.mov(__qword_ptr[rsp], 0);
            a.mov(__qword_ptr[rsp + 8], 0);
            a.lidt(__[rsp]);
            a.@out(0x10, al);
            a.hlt();
        });
        // #VC (benign) → #GP on the IDT limit → #GP again → #DF → its delivery fails too: KVM_EXIT_SHUTDOWN.
        Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, g.Vcpu.RunBounded().Reason);
    }
    /// <summary>An SVM_VMGEXIT_MMIO_READ (0x8000_0001) or _WRITE (0x8000_0002) of <paramref name="length"/> bytes at <paramref name="gpa"/> through the scratch buffer.</summary>
    private static void GhcbMmioExit(Assembler a, bool write, ulong gpa, ulong length, ulong buffer)
    {
        SetGhcb(a, Scratch, buffer);
        SetGhcb(a, SwExitCode, write ? 0x8000_0002UL : 0x8000_0001UL);
        SetGhcb(a, Info1, gpa);
        SetGhcb(a, Info2, length);
        SetValid(a, Scratch, SwExitCode, Info1, Info2);
        GhcbExit(a);
    }

    [Fact]
    public void Ghcb_mmio_read_and_a_12_byte_write_exit_in_pieces_of_at_most_8_bytes_through_the_scratch_buffer()
    {
        const ulong Buffer = SevEsGuest.Ghcb + 0x800;
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            RegisterGhcb(a);
            GhcbMmioExit(a, write: false, SevEsGuest.MmioGpa, 4, Buffer);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(rax, __qword_ptr[rbx + 0x800]);
            StoreRax(a, 2);
            SetGhcb(a, 0x800, 0x0807_0605_0403_0201);
            SetGhcb(a, 0x808, 0x0c0b_0a09);
            GhcbMmioExit(a, write: true, SevEsGuest.MmioGpa + 0x10, 12, Buffer);
            SevEsGuest.Terminate(a, 13);
        });
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"exit {exit.ToString()}");
        Assert.Equal((SevEsGuest.MmioGpa, 4u, false), (exit.MmioAddress, (uint)exit.MmioData.Length, exit.MmioIsWrite));
        byte[] value = [0xEF, 0xBE, 0xAD, 0xDE];
        value.CopyTo(exit.MmioData);
        exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"exit {exit.ToString()}");
        Assert.Equal((SevEsGuest.MmioGpa + 0x10, true), (exit.MmioAddress, exit.MmioIsWrite));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, exit.MmioData.ToArray());
        exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"exit {exit.ToString()}");
        Assert.Equal((SevEsGuest.MmioGpa + 0x18, true), (exit.MmioAddress, exit.MmioIsWrite));
        Assert.Equal(new byte[] { 9, 10, 11, 12 }, exit.MmioData.ToArray());
        AssertTerminated(g, 13);
        Assert.Equal((0UL, 0UL), (g.ReportQword(0), g.ReportQword(1)));
        Assert.Equal(0xDEAD_BEEFUL, g.ReportQword(2) & 0xffff_ffff);
    }

    /// <summary>
    /// GHCB MMIO to the xAPIC page with an in-kernel irqchip: the local APIC takes it before the MMIO bus and userspace
    /// (x86.c vcpu_mmio_read/vcpu_mmio_write, reached from kvm_sev_es_mmio_read/write) — a read of the version register
    /// and a write of TPR complete without a KVM_EXIT_MMIO, as OVMF's xAPIC timer set-up under SEV-SNP needs.
    /// </summary>
    [Fact]
    public void Ghcb_mmio_to_the_xapic_page_is_the_in_kernel_apics()
    {
        const ulong Buffer = SevEsGuest.Ghcb + 0x800, Apic = 0xfee0_0000;
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            RegisterGhcb(a);
            GhcbMmioExit(a, write: false, Apic + LapicState.VersionOffset, 4, Buffer);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(eax, __dword_ptr[rbx + 0x800]);
            StoreRax(a, 2);
            SetGhcb(a, 0x800, 0x20);
            GhcbMmioExit(a, write: true, Apic + LapicState.TprOffset, 4, Buffer);
            SevEsGuest.Terminate(a, 13);
        }, irqchip: true);
        AssertTerminated(g, 13);
        var lapic = g.Vcpu.GetLapic();
        Assert.Equal((ulong)lapic.Version, g.ReportQword(2));
        Assert.Equal(0x20u, lapic.Tpr);
    }
}
