// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using Xunit;
using static KvmSharp.Abi.Arm64.KvmArm64TimerRegs;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The arm64 generic timer through KVM_GET/SET_ONE_REG (arch/arm64/kvm/guest.c is_timer_reg → arch_timer.c
/// kvm_arm_timer_get_reg / kvm_arm_timer_set_reg, with the swapped uapi encodings of TIMER_CNT and TIMER_CVAL) and
/// through the guest's MRS/MSR (kvm_arm_timer_read / kvm_arm_timer_write: ISTATUS computed from the counter, TVAL
/// relative to it). This host is x86_64: every case is skipped on the real kernel.
/// </summary>
public static class Arm64Timer
{
    private const string ArchTimerC = "arch/arm64/kvm/arch_timer.c";

    [ConformanceCase(ArchTimerC + " kvm_arm_timer_get_reg / kvm_arm_timer_set_reg: CTL reset 0 and stored without ISTATUS, ISTATUS " +
                     "computed from CVAL and the counter, TIMER_CNT / PTIMER_CNT setting the VM-wide offsets (timer_set_offset)",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_timer_one_reg(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu0 = vm.CreateVcpu(0);
        using var vcpu1 = vm.CreateVcpu(1);
        vcpu0.InitPreferred();
        vcpu1.InitPreferred();
        foreach (var (ctl, cnt, cval) in new[]
                 {
                     (KVM_REG_ARM_TIMER_CTL, KVM_REG_ARM_TIMER_CNT, KVM_REG_ARM_TIMER_CVAL),
                     (KVM_REG_ARM_PTIMER_CTL, KVM_REG_ARM_PTIMER_CNT, KVM_REG_ARM_PTIMER_CVAL),
                 })
        {
            // kvm_timer_vcpu_reset: CTL 0.
            Assert.Equal(0UL, vcpu0.GetOneReg(ctl));
            // The counter runs: two reads never go backwards.
            ulong c1 = vcpu0.GetOneReg(cnt), c2 = vcpu0.GetOneReg(cnt);
            Assert.True(c2 >= c1, $"counter went back: {c1} then {c2}");
            // Setting the counter moves the VM-wide offset: both vCPUs read (at least) the new value, not far beyond.
            const ulong Base = 0x1000_0000_0000;
            vcpu0.SetOneReg(cnt, Base);
            foreach (var v in new[] { vcpu0, vcpu1 })
            {
                ulong now = v.GetOneReg(cnt);
                Assert.True(now >= Base && now - Base < (1UL << 40), $"counter after setting 0x{Base:X}: 0x{now:X}");
            }
            // ENABLE with CVAL in the past: ISTATUS (bit 2) reads set; a written ISTATUS is not kept.
            vcpu0.SetOneReg(cval, 0);
            vcpu0.SetOneReg(ctl, ARCH_TIMER_CTRL_ENABLE | ARCH_TIMER_CTRL_IT_STAT);
            Assert.Equal(ARCH_TIMER_CTRL_ENABLE | ARCH_TIMER_CTRL_IT_STAT, vcpu0.GetOneReg(ctl));
            // CVAL far in the future: ISTATUS clear; disabled: ISTATUS is not computed.
            vcpu0.SetOneReg(cval, ulong.MaxValue);
            Assert.Equal(ulong.MaxValue, vcpu0.GetOneReg(cval));
            Assert.Equal(ARCH_TIMER_CTRL_ENABLE, vcpu0.GetOneReg(ctl));
            vcpu0.SetOneReg(ctl, ARCH_TIMER_CTRL_IT_STAT | ARCH_TIMER_CTRL_IT_MASK);
            Assert.Equal(ARCH_TIMER_CTRL_IT_MASK, vcpu0.GetOneReg(ctl));
            // The other vCPU's timer is its own.
            Assert.Equal(0UL, vcpu1.GetOneReg(ctl));
            // KVM_ARM_VCPU_INIT resets CTL.
            vcpu0.InitPreferred();
            Assert.Equal(0UL, vcpu0.GetOneReg(ctl));
        }
    }

    /// <summary>
    /// A guest reads CNTFRQ_EL0 and CNTVCT_EL0 twice, programs CNTV_CVAL_EL0 = 0 and CNTV_CTL_EL0 = ENABLE (so ISTATUS
    /// reads set), then CNTV_TVAL_EL0 = 0x10000 (CVAL = counter + 0x10000), and reads CNTV_CVAL_EL0 back; userspace
    /// sees the same CVAL through KVM_REG_ARM_TIMER_CVAL.
    /// </summary>
    [ConformanceCase(ArchTimerC + " kvm_arm_timer_read / kvm_arm_timer_write for the guest (CNTFRQ, CNTVCT, CNTV_CTL ISTATUS, CNTV_TVAL)",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_guest_virtual_timer(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            a.Mrs(X(1), KvmArm64SysRegs.Encoding(3, 3, 14, 0, 0));  // CNTFRQ_EL0
            a.Mrs(X(2), KvmArm64SysRegs.Encoding(3, 3, 14, 0, 2));  // CNTVCT_EL0
            a.Mrs(X(3), KvmArm64SysRegs.Encoding(3, 3, 14, 0, 2));
            a.Msr(KvmArm64SysRegs.Encoding(3, 3, 14, 3, 2), A64Register.Xzr); // CNTV_CVAL_EL0 = 0
            a.Movz(X(4), 1);
            a.Msr(KvmArm64SysRegs.Encoding(3, 3, 14, 3, 1), X(4));  // CNTV_CTL_EL0 = ENABLE
            a.Mrs(X(5), KvmArm64SysRegs.Encoding(3, 3, 14, 3, 1));
            a.Mrs(X(6), KvmArm64SysRegs.Encoding(3, 3, 14, 0, 2));  // counter before TVAL
            a.MovImm(X(7), 0x10000);
            a.Msr(KvmArm64SysRegs.Encoding(3, 3, 14, 3, 0), X(7));  // CNTV_TVAL_EL0
            a.Mrs(X(8), KvmArm64SysRegs.Encoding(3, 3, 14, 3, 2));  // CNTV_CVAL_EL0
            a.Mrs(X(11), KvmArm64SysRegs.Encoding(3, 3, 14, 0, 2)); // counter after
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            Arm64Guest.SystemOff(a);
        });
        var vcpu = guest.Vcpu;
        Arm64Guests.AssertUcall(vcpu, Arm64Guest.UcallDone, () => "the timer guest did not finish");
        Assert.NotEqual(0UL, vcpu.GetX(1));
        Assert.True(vcpu.GetX(3) >= vcpu.GetX(2), $"CNTVCT_EL0 went back: {vcpu.GetX(2)} then {vcpu.GetX(3)}");
        Assert.Equal(ARCH_TIMER_CTRL_ENABLE | ARCH_TIMER_CTRL_IT_STAT, vcpu.GetX(5));
        ulong cval = vcpu.GetX(8);
        Assert.True(cval >= vcpu.GetX(6) + 0x10000 && cval <= vcpu.GetX(11) + 0x10000,
            $"CVAL 0x{cval:X} not within counter 0x{vcpu.GetX(6):X}..0x{vcpu.GetX(11):X} + 0x10000");
        Assert.Equal(cval, vcpu.GetOneReg(KVM_REG_ARM_TIMER_CVAL));
        Assert.Equal(ARCH_TIMER_CTRL_ENABLE, vcpu.GetOneReg(KVM_REG_ARM_TIMER_CTL) & ~ARCH_TIMER_CTRL_IT_STAT);
    }

    /// <summary>CNTVCT_EL0 is read-only: an MSR to it is UNDEFINED (EC 0 to the current-EL vector).</summary>
    [ConformanceCase("Arm ARM D23.8: CNTVCT_EL0 and CNTFRQ_EL0 (below the highest EL) are read-only; MSR is UNDEFINED",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_counter_msr_is_undefined(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        foreach (ulong encoding in new[] { KvmArm64SysRegs.Encoding(3, 3, 14, 0, 2), KvmArm64SysRegs.Encoding(3, 3, 14, 0, 0) })
        {
            using var guest = Arm64Guest.Create(kvm,
                a =>
                {
                    a.Movz(X(1), 0x42);
                    a.Msr(encoding, X(1));
                    Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
                },
                syncVector: a =>
                {
                    Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
                    Arm64Guest.SystemOff(a);
                });
            Arm64Guests.AssertUcall(guest.Vcpu, Arm64Guest.UcallDone, () => $"MSR 0x{encoding:X4} did not trap as UNDEFINED");
            Assert.Equal(0UL, guest.Vcpu.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
        }
    }
}
