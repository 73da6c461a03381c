// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The MSRs an SEV guest reaches without KVM (emulator only: this host has no SEV): SEV_STATUS, which the CPU answers
/// in every SEV guest (OVMF reads it with a bare RDMSR in its reset vector), and the MSRs KVM leaves unintercepted for
/// an SEV-ES vCPU (svm_recalc_msr_intercepts, sev_es_recalc_msr_intercepts), which no #VC interrupts
/// (src/KvmSharp.Emulation/X86/Emulate/X86Emulator.SevEs.cs).
/// </summary>
public sealed class SevStatusMsrTests
{
    private const ulong ReportLinear = SevEsGuest.SharedAlias + SevEsGuest.Report;

    /// <summary>Reason code of the guest's clean end (not the #VC handler's 0x29).</summary>
    private const byte Done = 0x30;

    private static void ReadMsrToReport(Assembler a, uint msr, int index)
    {
        a.mov(ecx, msr);
        a.rdmsr();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.mov(rbx, (long)ReportLinear);
        a.mov(__qword_ptr[rbx + 8 * index], rax);
    }

    private static void AssertEndedWith(SevEsGuest g, byte code)
    {
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        Assert.Equal(KvmConstants.KVM_SYSTEM_EVENT_SEV_TERM, exit.SystemEventType);
        Assert.Equal([0x100UL | (1 << 12) | ((ulong)code << 16)], exit.SystemEventData.ToArray());
    }

    [Theory]
    [InlineData(VmType.SevEs, 0x3UL)] // SEV | SEV-ES
    [InlineData(VmType.Snp, 0x7UL)] // SEV | SEV-ES | SNP (SVM_SEV_FEAT_SNP_ACTIVE, bit 0, at bit 2)
    public void Sev_status_is_read_without_a_vc_in_a_protected_guest(VmType type, ulong expected)
    {
        using var g = SevEsGuest.Create(type, a =>
        {
            ReadMsrToReport(a, 0xC001_0131, 0);
            SevEsGuest.Terminate(a, Done);
        });
        AssertEndedWith(g, Done);
        Assert.Equal(expected, g.ReportQword(0));
    }

    [Fact]
    public void A_plain_sev_guest_reads_sev_status_1()
    {
        using var g = SevEsGuest.Create(VmType.Sev, a =>
        {
            a.mov(ecx, 0xC001_0131);
            a.rdmsr();
            a.@out(0x10, al);
            a.hlt();
        });
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
        Assert.Equal((0x10, (byte)1), (exit.IoPort, exit.IoData[0]));
    }

    [Fact]
    public void Efer_pat_and_the_syscall_msrs_pass_through_while_other_msrs_still_raise_vc()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            ReadMsrToReport(a, 0xC000_0080, 2); // EFER (slots 0 and 1 are the #VC handler's)
            ReadMsrToReport(a, 0x277, 3); // PAT
            // WRMSR LSTAR, then read it back.
            a.mov(ecx, 0xC000_0082);
            a.mov(eax, 0x1234_5678);
            a.mov(edx, 0xffff_ffff);
            a.wrmsr();
            ReadMsrToReport(a, 0xC000_0082, 4);
            // MSR_IA32_TSC is intercepted: #VC with SVM_EXIT_MSR, reported by the default handler.
            a.mov(ecx, 0x10);
            a.rdmsr();
            SevEsGuest.Terminate(a, Done);
        });
        AssertEndedWith(g, 0x29);
        Assert.Equal(0x500UL, g.ReportQword(2) & 0x500); // LME | LMA: the guest runs in long mode
        Assert.Equal(0x0007_0406_0007_0406UL, g.ReportQword(3)); // the reset PAT
        Assert.Equal(0xffff_ffff_1234_5678UL, g.ReportQword(4));
        Assert.Equal(0x7cUL, g.ReportQword(0)); // the TSC read: SVM_EXIT_MSR
    }
}
