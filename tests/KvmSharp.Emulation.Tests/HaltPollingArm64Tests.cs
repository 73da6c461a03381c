// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using static KvmSharp.Emulation.Tests.Arm64VgicGuestVm;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Halt polling for arm64's WFI (arch/arm64/kvm/arm.c kvm_vcpu_wfi → virt/kvm/kvm_main.c kvm_vcpu_halt; arm64 has no
/// kvm_arch_no_poll): a vCPU waiting on its virtual timer (PPI 27, GICR_ISENABLER0) with KVM_CAP_HALT_POLL's maximum
/// set polls once its halt_poll_ns has grown, and with a maximum of 0 never does.
/// </summary>
public sealed class HaltPollingArm64Tests
{
    private static readonly ulong CntvTval = KvmArm64SysRegs.Encoding(3, 3, 14, 3, 0), CntvCtl = KvmArm64SysRegs.Encoding(3, 3, 14, 3, 1);

    private const int Wfis = 20;

    private sealed record Counts(ulong Attempted, ulong Successful, ulong SuccessHist, ulong FailHist, ulong WaitHist, ulong Wfi);

    /// <summary>
    /// Two rounds of <see cref="Wfis"/> times: CNTV_TVAL = 2500 ticks (100 µs at 25 MHz), CNTV_CTL = ENABLE, WFI,
    /// CNTV_CTL = 0 — with PSTATE.I set, so the pending PPI only ends the WFI; a ucall (code 7) between the rounds, where
    /// KVM_CAP_HALT_POLL's maximum goes from <paramref name="first"/> to <paramref name="second"/>. The vCPU's halt
    /// statistics after each round.
    /// </summary>
    private static (Counts First, Counts Second) Run(uint first, uint second)
    {
        const ulong Between = 7;
        void Round(KvmSharp.Vmm.Arch.Arm64.A64Assembler a)
        {
            a.MovImm(X(7), Wfis);
            var loop = a.CreateLabel();
            a.Bind(loop);
            a.MovImm(X(6), 2500);
            a.Msr(CntvTval, X(6));
            a.MovImm(X(6), 1);
            a.Msr(CntvCtl, X(6));
            a.Wfi();
            a.MovImm(X(6), 0);
            a.Msr(CntvCtl, X(6));
            a.SubImm(X(7), X(7), 1);
            a.Cbnz(X(7), loop);
        }
        using var s = new Arm64VgicGuestVm(a =>
        {
            EnableDistributor(a);
            EnableCpuInterface(a, group0: false, group1: true);
            a.MovImm(X(2), Redist + 0x1_0000);
            a.MovImm(X(3), 1UL << 27);
            a.Str(W(3), X(2), 0x100);                       // GICR_ISENABLER0: PPI 27, the virtual timer
            Round(a);
            Arm64Guest.Ucall(a, Between);
            Round(a);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        var v = s.Vcpus[0];
        using var stats = v.OpenStatistics();
        s.Vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, first);
        var exit = v.RunBounded();
        Assert.Equal((Abi.KvmExitReason.KVM_EXIT_MMIO, Arm64Guest.UcallMmioGpa, Between),
            (exit.Reason, exit.MmioAddress, BitConverter.ToUInt64(exit.MmioData)));
        var a = Read(stats);
        s.Vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, second);
        s.RunToDone(0);
        return (a, Read(stats));
    }

    private static Counts Read(KvmStatistics stats)
    {
        var st = stats.Read();
        Assert.Equal(0UL, st["blocking"]);
        Assert.Equal(0UL, st["halt_poll_invalid"]);
        return new Counts(st["halt_attempted_poll"], st["halt_successful_poll"], Sum(st.GetValues("halt_poll_success_hist")),
            Sum(st.GetValues("halt_poll_fail_hist")), Sum(st.GetValues("halt_wait_hist")), st["wfi_exit_stat"]);
    }

    private static ulong Sum(ReadOnlySpan<ulong> values)
    {
        ulong sum = 0;
        foreach (ulong x in values) sum += x;
        return sum;
    }

    [Fact]
    public void Wfi_polls_once_halt_poll_ns_has_grown_and_a_maximum_of_0_stops_it()
    {
        var (c, after) = Run(1_000_000_000, 0);
        Assert.Equal((ulong)Wfis, c.Wfi);
        Assert.InRange(c.Attempted, 1UL, Wfis - 1UL);       // never the first WFI: a new vCPU's halt_poll_ns is 0
        Assert.True(c.Successful >= 1, c.ToString());       // the window doubles past the 100 µs timer
        Assert.Equal((c.Successful, c.Attempted - c.Successful), (c.SuccessHist, c.FailHist));
        Assert.InRange(c.WaitHist, c.Attempted - c.Successful, Wfis - c.Successful);
        // kvm_vcpu_halt: "if (vcpu->halt_poll_ns > max_halt_poll_ns) vcpu->halt_poll_ns = max_halt_poll_ns;" — with the
        // maximum 0 the grown poll time is cut to 0 at the next WFI: the second round polls no more.
        Assert.Equal(2UL * Wfis, after.Wfi);
        Assert.Equal((c.Attempted, c.Successful, c.SuccessHist, c.FailHist), (after.Attempted, after.Successful, after.SuccessHist, after.FailHist));
        Assert.True(after.WaitHist > c.WaitHist, after.ToString());
    }

    [Fact]
    public void A_maximum_raised_from_0_starts_polling()
    {
        var (c, after) = Run(0, 1_000_000_000);
        Assert.Equal((0UL, 0UL, 0UL, 0UL), (c.Attempted, c.Successful, c.SuccessHist, c.FailHist));
        Assert.InRange(c.WaitHist, 1UL, (ulong)Wfis);
        // kvm_vcpu_max_halt_poll_ns is read at every halt: the second round grows halt_poll_ns and polls.
        Assert.InRange(after.Attempted, 1UL, Wfis - 1UL);
        Assert.True(after.Successful >= 1, after.ToString());
    }
}
