// SPDX-License-Identifier: MIT
using System.Diagnostics;
using Iced.Intel;
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The SEV-ES AP reset hold (emulator only: this host has no SEV): GHCB_MSR_AP_RESET_HOLD_REQ and the
/// SVM_VMGEXIT_AP_HLT_LOOP event put the vCPU in KVM_MP_STATE_AP_RESET_HOLD (KVM_EXIT_AP_RESET_HOLD without an in-kernel
/// APIC); INIT then SIPI wakes it, and every SIPI but the vCPU's first answers the hold with 1 (arch/x86/kvm/svm/sev.c
/// sev_handle_vmgexit, sev_handle_vmgexit_msr_protocol, sev_vcpu_deliver_sipi_vector; x86.c kvm_emulate_ap_reset_hold;
/// src/KvmSharp.Emulation/X86/Emulate/X86Emulator.GhcbApResetHold.cs).
/// </summary>
public sealed class GhcbApResetHoldTests
{
    private const ulong GhcbLinear = SevEsGuest.SharedAlias + SevEsGuest.Ghcb;
    private const ulong ReportLinear = SevEsGuest.SharedAlias + SevEsGuest.Report;
    private const int Info1 = 0x398, Info2 = 0x3a0;

    /// <summary>SVM_VMGEXIT_AP_HLT_LOOP through the GHCB (sw_exit_code, sw_exit_info_1/2 valid); sw_exit_info_2 → RAX.</summary>
    private static void HltLoopRequest(Assembler a)
    {
        SevEsGuest.GhcbRequest(a, 0x8000_0004, 0, 0);
        a.mov(rbx, (long)GhcbLinear);
        a.mov(rax, __qword_ptr[rbx + Info2]);
    }

    /// <summary>GHCB_MSR_AP_RESET_HOLD_REQ, VMGEXIT; the GHCB MSR → RAX.</summary>
    private static void MsrHoldRequest(Assembler a)
    {
        SevEsGuest.WriteGhcbMsr(a, 0x006);
        SevEsGuest.Vmgexit(a);
        SevEsGuest.ReadGhcbMsr(a);
    }

    /// <summary>
    /// An AP that holds until the answer says a SIPI woke it: report[n] = each answer (R15 counts), then terminates
    /// with <paramref name="code"/>. <paramref name="result"/> takes the answer in RAX to the "SIPI" value (0 or not).
    /// </summary>
    private static Action<Assembler> HoldingAp(Action<Assembler> request, Action<Assembler> result, byte code) => a =>
    {
        var again = a.CreateLabel();
        a.xor(r15d, r15d);
        a.Label(ref again);
        request(a);
        a.mov(rbx, (long)ReportLinear);
        a.mov(__qword_ptr[rbx + r15 * 8], rax);
        a.inc(r15);
        result(a);
        a.test(rax, rax);
        a.jz(again);
        SevEsGuest.Terminate(a, code);
    };

    [Fact]
    public void Msr_protocol_hold_without_an_in_kernel_apic_exits_with_ap_reset_hold_and_answers_no_sipi()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            MsrHoldRequest(a);
            a.mov(rbx, (long)ReportLinear);
            a.mov(__qword_ptr[rbx], rax);
            SevEsGuest.Terminate(a, 0x50);
        });
        Assert.Equal(KvmExitReason.KVM_EXIT_AP_RESET_HOLD, g.Vcpu.RunBounded().Reason);
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        // "Preset the result to a non-SIPI return": GHCB_MSR_AP_RESET_HOLD_RESP with GHCBData[63:12] = 0.
        Assert.Equal(0x007UL, g.ReportQword(0));
    }

    [Fact]
    public void Ghcb_hlt_loop_without_an_in_kernel_apic_exits_with_ap_reset_hold_and_reports_success_0()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            HltLoopRequest(a);
            a.mov(rbx, (long)ReportLinear);
            a.mov(__qword_ptr[rbx], rax);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(rax, __qword_ptr[rbx + Info1]);
            a.mov(rbx, (long)ReportLinear);
            a.mov(__qword_ptr[rbx + 8], rax);
            SevEsGuest.Terminate(a, 0x51);
        });
        Assert.Equal(KvmExitReason.KVM_EXIT_AP_RESET_HOLD, g.Vcpu.RunBounded().Reason);
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        Assert.Equal((0UL, 0UL), (g.ReportQword(0), g.ReportQword(1)));
    }

    /// <summary>
    /// Runs the AP (vCPU 1, made RUNNABLE) on a thread while INIT + SIPI pairs go to APIC ID 1 through KVM_SIGNAL_MSI
    /// until it terminates; returns the termination's GHCB MSR value. Robust to where each pair lands: a pair that
    /// comes while the AP runs only stops and restarts it (the hold is forgotten at each entry), so the AP keeps
    /// holding until a SIPI that is not its first finds it held.
    /// </summary>
    private static ulong RunApWithSipis(SevEsGuest g)
    {
        var ap = g.Vcpus[1];
        ap.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        ulong termination = 0;
        KvmExitReason reason = KvmExitReason.KVM_EXIT_UNKNOWN;
        Exception? failure = null;
        var runner = new Thread(() =>
        {
            try
            {
                var exit = ap.RunBounded();
                reason = exit.Reason;
                if (reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT) termination = exit.SystemEventData[0];
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        runner.Start();
        var clock = Stopwatch.StartNew();
        while (!runner.Join(20))
        {
            if (clock.Elapsed > TimeSpan.FromMinutes(2))
            {
                ap.Kick();
                runner.Join();
                Assert.Fail("the AP did not finish its reset hold");
            }
            // MSI data: delivery mode INIT (5), then STARTUP (6) with vector 0x10; destination APIC ID 1.
            g.Vm.SignalMsi(0xFEE0_1000, 5 << 8);
            g.Vm.SignalMsi(0xFEE0_1000, (6 << 8) | 0x10);
        }
        Assert.Null(failure);
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, reason);
        return termination;
    }

    /// <summary>The answers the AP recorded: report[0 .. first non-zero or 64].</summary>
    private static List<ulong> Answers(SevEsGuest g, Func<ulong, bool> woke)
    {
        var answers = new List<ulong>();
        for (int i = 0; i < 64; i++)
        {
            answers.Add(g.ReportQword(i));
            if (woke(answers[^1])) break;
        }
        return answers;
    }

    [Theory]
    [InlineData(VmType.SevEs)]
    [InlineData(VmType.Snp)]
    public void Msr_protocol_hold_is_answered_with_result_1_by_a_sipi_that_is_not_the_first(VmType type)
    {
        using var g = SevEsGuest.Create(type, a => a.hlt(), vcpus: 2, irqchip: true,
            apProgram: HoldingAp(MsrHoldRequest, a => a.shr(rax, 12), 0x52));
        Assert.Equal(0x100 | (1UL << 12) | (0x52UL << 16), RunApWithSipis(g));
        var answers = Answers(g, v => (v >> 12) != 0);
        // The first SIPI only makes the AP runnable ("First SIPI: Use the values as initially set by the VMM"), so the
        // AP held at least twice: GHCB_MSR_AP_RESET_HOLD_RESP with result 0, …, then result 1.
        Assert.True(answers.Count >= 2, $"answers {string.Join(", ", answers)}");
        Assert.All(answers[..^1], v => Assert.Equal(0x007UL, v));
        Assert.Equal(0x1007UL, answers[^1]);
    }

    [Fact]
    public void Ghcb_hlt_loop_is_answered_with_sw_exit_info_2_1_by_a_sipi_that_is_not_the_first()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a => a.hlt(), vcpus: 2, irqchip: true,
            apProgram: HoldingAp(HltLoopRequest, _ => { }, 0x53));
        Assert.Equal(0x100 | (1UL << 12) | (0x53UL << 16), RunApWithSipis(g));
        var answers = Answers(g, v => v != 0);
        Assert.True(answers.Count >= 2, $"answers {string.Join(", ", answers)}");
        Assert.All(answers[..^1], v => Assert.Equal(0UL, v));
        Assert.Equal(1UL, answers[^1]);
        // svm_vmgexit_success(svm, 1): sw_exit_info_1 = 0 with its valid bit, and sev_es_sync_to_ghcb at the entry.
        Assert.Equal(0UL, g.GhcbQword(Info1));
        Assert.True(g.GhcbValid(Info2));
    }

    [Fact]
    public void A_held_vcpu_reports_ap_reset_hold_in_kvm_get_mp_state()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a => a.hlt(), vcpus: 2, irqchip: true,
            apProgram: a =>
            {
                MsrHoldRequest(a);
                SevEsGuest.Terminate(a, 0x54);
            });
        var ap = g.Vcpus[1];
        ap.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        // Stop the vCPU with kicks (KVM_RUN returns EINTR now or at its next call) until it stopped in the hold: a kick
        // that came before the hold leaves it RUNNABLE, and it runs on.
        uint state = SevEsGuest.RunKickedWhileRunnable(ap, "the AP never reached its hold");
        Assert.Equal(KvmMpState.KVM_MP_STATE_AP_RESET_HOLD, state);
    }
}
