// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using static KvmSharp.Emulation.Tests.Arm64VgicGuestVm;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// arm64's WFI (arm.c kvm_vcpu_wfi → kvm_vcpu_halt → kvm_vcpu_block) sleeps until its timer fires: the blocked vCPU's
/// background timer is armed at the earliest of the virtual and physical timers (arch_timer.c kvm_timer_blocking,
/// kvm_bg_timer_expire → kvm_vcpu_wake_up), so a 100 µs timer ends the sleep after about 100 µs, not at the next
/// millisecond (Arm64/Arm64Timer.cs DueTimestamp, Arm64/Arm64Run.cs WaitForInterrupt). With KVM_CAP_HALT_POLL 0 every
/// WFI that is not woken at once sleeps, and most sleep toward the timer's due time (KvmVcpu.TimedWaits; the old
/// 1 ms sleep had none; the latency itself is measured, not asserted).
/// </summary>
public sealed class HaltWakeArm64Tests
{
    private const int Wfis = 60;

    [Theory]
    // CNTV_TVAL_EL0 / CNTV_CTL_EL0 and the virtual timer's PPI 27; CNTP_TVAL_EL0 / CNTP_CTL_EL0 and the physical timer's PPI 30.
    [InlineData(false, 27)]
    [InlineData(true, 30)]
    public void Wfi_on_a_100_us_timer_sleeps_until_the_timer(bool physical, int ppi)
    {
        ulong tval = KvmArm64SysRegs.Encoding(3, 3, 14, physical ? 2 : 3, 0), ctl = KvmArm64SysRegs.Encoding(3, 3, 14, physical ? 2 : 3, 1);
        {
            using var s = new Arm64VgicGuestVm(a =>
            {
                EnableDistributor(a);
                EnableCpuInterface(a, group0: false, group1: true);
                a.MovImm(X(2), Redist + 0x1_0000);
                a.MovImm(X(3), 1UL << ppi);
                a.Str(W(3), X(2), 0x100);                       // GICR_ISENABLER0: the timer's PPI
                // Wfis times: TVAL = 2500 ticks (100 µs at 25 MHz), CTL = ENABLE, WFI, CTL = 0 (PSTATE.I set: the pending
                // PPI only ends the WFI).
                a.MovImm(X(7), Wfis);
                var loop = a.CreateLabel();
                a.Bind(loop);
                a.MovImm(X(6), 2500);
                a.Msr(tval, X(6));
                a.MovImm(X(6), 1);
                a.Msr(ctl, X(6));
                a.Wfi();
                a.MovImm(X(6), 0);
                a.Msr(ctl, X(6));
                a.SubImm(X(7), X(7), 1);
                a.Cbnz(X(7), loop);
                Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            });
            var v = s.Vcpus[0];
            using var stats = v.OpenStatistics();
            s.Vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, 0);
            s.RunToDone(0);
            var st = stats.Read();
            Assert.Equal((ulong)Wfis, st["wfi_exit_stat"]);
            Assert.Equal(0UL, st["blocking"]);
            ulong waits = 0;
            foreach (ulong n in st.GetValues("halt_wait_hist")) waits += n;
            ulong timedWaits = s.Kernel.InvariantView.Vms.Single().Vcpus[0].TimedWaits;
            Assert.True(waits >= 1 && timedWaits * 2 >= waits, $"{timedWaits} sleeps toward a due time for {waits} WFIs that waited: not most");
        }
    }
}
