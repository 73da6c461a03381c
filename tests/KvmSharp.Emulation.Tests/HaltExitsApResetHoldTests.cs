// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The SEV-ES AP reset hold counts halt_exits (emulator only: this host has no SEV): sev.c sev_handle_vmgexit
/// SVM_VMGEXIT_AP_HLT_LOOP and sev_handle_vmgexit_msr_protocol GHCB_MSR_AP_RESET_HOLD_REQ call x86.c
/// kvm_emulate_ap_reset_hold → __kvm_emulate_halt, whose first statement is "++vcpu->stat.halt_exits" — with an
/// in-kernel local APIC (the vCPU waits in KVM_MP_STATE_AP_RESET_HOLD) and without one (KVM_EXIT_AP_RESET_HOLD).
/// The hold itself: GhcbApResetHoldTests.cs.
/// </summary>
public sealed class HaltExitsApResetHoldTests
{
    private static void MsrHoldRequest(Assembler a)
    {
        SevEsGuest.WriteGhcbMsr(a, 0x006); // GHCB_MSR_AP_RESET_HOLD_REQ
        SevEsGuest.Vmgexit(a);
    }

    private static void HltLoopRequest(Assembler a) => SevEsGuest.GhcbRequest(a, 0x8000_0004, 0, 0); // SVM_VMGEXIT_AP_HLT_LOOP

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_hold_without_an_in_kernel_apic_counts_one_halt_exit_with_its_exit(bool msrProtocol)
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            if (msrProtocol) MsrHoldRequest(a);
            else HltLoopRequest(a);
            SevEsGuest.Terminate(a, 0x50);
        });
        using var stats = g.Vcpu.OpenStatistics();
        Assert.Equal(KvmExitReason.KVM_EXIT_AP_RESET_HOLD, g.Vcpu.RunBounded().Reason);
        var st = stats.Read();
        Assert.Equal((1UL, 0UL), (st["halt_exits"], st["io_exits"]));
    }

    [Fact]
    public void A_hold_with_an_in_kernel_apic_counts_a_halt_exit()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a => a.hlt(), vcpus: 2, irqchip: true,
            apProgram: a =>
            {
                MsrHoldRequest(a);
                SevEsGuest.Terminate(a, 0x54);
            });
        var ap = g.Vcpus[1];
        using var stats = ap.OpenStatistics();
        ap.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        Assert.Equal(KvmMpState.KVM_MP_STATE_AP_RESET_HOLD, SevEsGuest.RunKickedWhileRunnable(ap, "the AP never reached its hold"));
        // One hold, no HLT instruction on the AP.
        Assert.Equal(1UL, stats.Read()["halt_exits"]);
    }
}
