// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64TimerRegs;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The generic-timer model (Emulation/Arm64/Arm64Timer.cs) against arch/arm64/kvm/arch_timer.c: the swapped uapi
/// encodings, offsets shared by the VM, TVAL as a signed 32-bit delta, ISTATUS, and CNTKCTL_EL1's EL0 gates.
/// </summary>
public class Arm64TimerTests
{
    [Fact]
    public void Uapi_ids_keep_the_swapped_cnt_and_cval_encodings()
    {
        Assert.Equal(KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 3, 1), KVM_REG_ARM_TIMER_CTL);   // CNTV_CTL_EL0
        Assert.Equal(KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 0, 2), KVM_REG_ARM_TIMER_CVAL);  // CNTVCT_EL0's encoding
        Assert.Equal(KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 3, 2), KVM_REG_ARM_TIMER_CNT);   // CNTV_CVAL_EL0's encoding
        Assert.Equal(KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 14, 0, 1), KVM_REG_ARM_PTIMER_CNT);
        Assert.Equal(0x6030_0000_0013_DF19UL, KVM_REG_ARM_TIMER_CTL);
    }

    [Fact]
    public void Counter_offsets_are_shared_by_the_vm()
    {
        var offsets = new Arm64TimerOffsets();
        var t0 = new Arm64Timer(offsets);
        var t1 = new Arm64Timer(offsets);
        t0.Set(KVM_REG_ARM_TIMER_CNT, 1000);
        ulong v = t1.Get(KVM_REG_ARM_TIMER_CNT);
        Assert.InRange(v, 1000UL, 1000UL + Arm64HostCpu.CounterFrequency * 60);
        // The physical counter has its own offset.
        Assert.True(t1.Get(KVM_REG_ARM_PTIMER_CNT) > v);
    }

    [Fact]
    public void Tval_is_a_signed_32_bit_delta_and_istatus_follows_cval()
    {
        var t = new Arm64Timer(new Arm64TimerOffsets());
        Assert.Equal(TimerWrite.Done, t.GuestWrite(Arm64Timer.CntvTvalEl0, 0xFFFF_FF00)); // -256: already expired
        ulong now = t.Counter(t.Virtual);
        Assert.True(t.Virtual.Cval < now && now - t.Virtual.Cval < Arm64HostCpu.CounterFrequency * 60);
        Assert.Equal(TimerWrite.Done, t.GuestWrite(Arm64Timer.CntvCtlEl0, ARCH_TIMER_CTRL_ENABLE | ARCH_TIMER_CTRL_IT_STAT));
        Assert.Equal((uint)ARCH_TIMER_CTRL_ENABLE, t.Virtual.Ctl);
        Assert.Equal(ARCH_TIMER_CTRL_ENABLE | ARCH_TIMER_CTRL_IT_STAT, t.GuestRead(Arm64Timer.CntvCtlEl0));
        // TVAL reads (CVAL - counter)[31:0]: negative after expiry, so the high half of the 32 bits is set.
        Assert.True(t.GuestRead(Arm64Timer.CntvTvalEl0) >= 0x8000_0000);
        t.GuestWrite(Arm64Timer.CntvCvalEl0, ulong.MaxValue);
        Assert.Equal(ARCH_TIMER_CTRL_ENABLE, t.GuestRead(Arm64Timer.CntvCtlEl0));
        Assert.Equal(TimerWrite.Undefined, t.GuestWrite(Arm64Timer.CntvctEl0, 0));
        Assert.Equal(TimerWrite.NotATimerRegister, t.GuestWrite(0xC000, 0));
        Assert.Equal(Arm64HostCpu.CounterFrequency, t.GuestRead(Arm64Timer.CntfrqEl0));
    }

    [Fact]
    public void Cntkctl_gates_el0_access()
    {
        Assert.False(Arm64Timer.El0Allowed(Arm64Timer.CntvctEl0, 0));
        Assert.True(Arm64Timer.El0Allowed(Arm64Timer.CntvctEl0, 2));
        Assert.True(Arm64Timer.El0Allowed(Arm64Timer.CntfrqEl0, 1));
        Assert.False(Arm64Timer.El0Allowed(Arm64Timer.CntpctEl0, 2));
        Assert.True(Arm64Timer.El0Allowed(Arm64Timer.CntvCtlEl0, 1 << 8));
        Assert.False(Arm64Timer.El0Allowed(Arm64Timer.CntpCtlEl0, 1 << 8));
        Assert.True(Arm64Timer.El0Allowed(Arm64Timer.CntpCvalEl0, 1 << 9));
    }
}
