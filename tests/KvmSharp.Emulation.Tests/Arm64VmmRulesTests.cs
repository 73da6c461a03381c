// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64FwRegs;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The arm64 VMM-facing rules of psci.c (SYSTEM_OFF/RESET/RESET2/SUSPEND, 6.18), arm.c (KVM_CAP_ARM_SYSTEM_SUSPEND,
/// KVM_CAP_ARM_WRITABLE_IMP_ID_REGS, KVM_SET_MP_STATE SUSPENDED / kvm_vcpu_suspend), arch_timer.c
/// kvm_vm_ioctl_set_counter_offset and sys_regs.c set_imp_id_reg on the emulator (Emulation/Arm64/Psci.cs,
/// Arm64CounterOffset.cs, Arm64IdRegs.cs, Arch/Arm64Kvm.cs). Emulator-only: this host is x86.
/// </summary>
public class Arm64VmmRulesTests
{
    private const ulong NotSupported = ulong.MaxValue;
    private const ulong InvalidParams = unchecked((ulong)-2L);
    private const ulong InternalFailure = unchecked((ulong)-6L);

    private sealed class Setup : Arm64TestVm
    {
        public Setup(Action<A64Assembler> program, int vcpus = 1, Action<Vm>? beforeVcpus = null)
            : base(program)
        {
            beforeVcpus?.Invoke(Vm);
            for (int i = 0; i < vcpus; i++) AddVcpu();
        }

        public long SetCounterOffsetRaw(ulong offset, ulong reserved)
        {
            var arg = new kvm_arm_counter_offset { counter_offset = offset, reserved = reserved };
            return Kernel.Ioctl(Vm.Handle, KvmArm64Ioctls.KVM_ARM_SET_COUNTER_OFFSET, Raw.Bytes(ref arg));
        }
    }

    /// <summary>x0 = fn, x1 = arg1, HVC #0, then x<paramref name="save"/> = x0.</summary>
    private static void Call(A64Assembler a, ulong fn, ulong arg1, int save)
    {
        a.MovImm(X(0), fn);
        a.MovImm(X(1), arg1);
        a.Hvc();
        a.Mov(X(save), X(0));
    }

    private static void AssertEvent(VcpuExit exit, uint type, params ulong[] data)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, exit.Reason);
        Assert.Equal(type, exit.SystemEventType);
        Assert.Equal(data, exit.SystemEventData.ToArray());
    }

    [Fact]
    public void System_reset_and_off_preload_internal_failure_that_a_resumed_guest_sees()
    {
        using var s = new Setup(a =>
        {
            Call(a, Psci.PSCI_0_2_FN_SYSTEM_RESET, 0x77, 19);
            Arm64Guest.SystemOff(a);
        });
        var v = s.Vcpus[0];
        // kvm_psci_system_reset: KVM_SYSTEM_EVENT_RESET (ndata 1, data[0] 0), x0..x3 = INTERNAL_FAILURE, 0, 0, 0.
        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_RESET, 0UL);
        Assert.Equal(InternalFailure, v.GetX(0));
        Assert.Equal(0UL, v.GetX(1));
        Assert.Equal(KvmMpState.KVM_MP_STATE_STOPPED, v.GetMpState());
        // "If user space accidentally/deliberately resumes guest VCPU after SYSTEM_OFF request then guest VCPU should
        // see internal failure from PSCI return value."
        v.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, 0UL);
        Assert.Equal(InternalFailure, v.GetX(19));
        Assert.Equal(InternalFailure, v.GetX(0));
    }

    [Fact]
    public void System_reset2_checks_the_reset_type_and_flags_the_event()
    {
        using var s = new Setup(a =>
        {
            Call(a, Psci.PSCI_1_0_FN_PSCI_FEATURES, Psci.PSCI_1_1_FN64_SYSTEM_RESET2, 19);
            // An architectural reset type other than SYSTEM_WARM_RESET (0): INVALID_PARAMS.
            Call(a, Psci.PSCI_1_1_FN_SYSTEM_RESET2, 1, 20);
            // SMC64: the reset type is the u32 of x1 (0x80000000, vendor range); x1/x2 stay for userspace.
            a.MovImm(X(2), 0xC00C_1E00_0000_0001);
            Call(a, Psci.PSCI_1_1_FN64_SYSTEM_RESET2, 0x1_8000_0000, 21);
            Arm64Guest.SystemOff(a);
        });
        var v = s.Vcpus[0];
        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_RESET, KvmArm64Constants.KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2);
        Assert.Equal(0UL, v.GetX(19));
        Assert.Equal(InvalidParams, v.GetX(20));
        // vcpu_set_reg(vcpu, 0, PSCI_RET_INTERNAL_FAILURE) only: the type and the cookie are left in x1/x2.
        Assert.Equal(InternalFailure, v.GetX(0));
        Assert.Equal(0x1_8000_0000UL, v.GetX(1));
        Assert.Equal(0xC00C_1E00_0000_0001UL, v.GetX(2));
    }

    [Fact]
    public void System_reset2_is_psci_1_1_only()
    {
        using var s = new Setup(a =>
        {
            Call(a, Psci.PSCI_1_0_FN_PSCI_FEATURES, Psci.PSCI_1_1_FN_SYSTEM_RESET2, 19);
            Call(a, Psci.PSCI_1_1_FN_SYSTEM_RESET2, 0, 20);
            Arm64Guest.SystemOff(a);
        });
        var v = s.Vcpus[0];
        v.SetOneReg(KVM_REG_ARM_PSCI_VERSION, KVM_ARM_PSCI_1_0);
        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, 0UL);
        Assert.Equal(NotSupported, v.GetX(19));
        Assert.Equal(NotSupported, v.GetX(20));
    }

    private static void SuspendProgram(A64Assembler a)
    {
        Call(a, Psci.PSCI_1_0_FN_PSCI_FEATURES, Psci.PSCI_1_0_FN64_SYSTEM_SUSPEND, 19);
        a.MovImm(X(2), 0x5A5A);
        Call(a, Psci.PSCI_1_0_FN64_SYSTEM_SUSPEND, Arm64Guest.CodeGpa + 0x400, 20);
        Arm64Guest.SystemOff(a);
    }

    [Fact]
    public void System_suspend_without_the_cap_is_not_supported()
    {
        using var s = new Setup(SuspendProgram);
        var v = s.Vcpus[0];
        Assert.True(s.Vm.SupportsSystemSuspend());
        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, 0UL);
        Assert.Equal(NotSupported, v.GetX(19));
        Assert.Equal(NotSupported, v.GetX(20));
    }

    [Fact]
    public void System_suspend_with_the_cap_exits_with_registers_untouched_and_suspended_mp_state_blocks()
    {
        using var s = new Setup(SuspendProgram, vcpus: 2);
        var (v, other) = (s.Vcpus[0], s.Vcpus[1]);
        // kvm_vm_ioctl_enable_cap: flags → EINVAL (nothing enabled), then the cap itself.
        var bad = new kvm_enable_cap { cap = (uint)KvmArm64Constants.KVM_CAP_ARM_SYSTEM_SUSPEND, flags = 1 };
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => s.Vm.EnableCapability(bad)).Errno);
        s.Vm.EnableSystemSuspend();

        // kvm_psci_system_suspend: KVM_SYSTEM_EVENT_SUSPEND, ndata 0, x0..x2 as the guest left them, nothing stopped.
        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_SUSPEND);
        Assert.Equal(0UL, v.GetX(19));
        Assert.Equal((ulong)Psci.PSCI_1_0_FN64_SYSTEM_SUSPEND, v.GetX(0));
        Assert.Equal(Arm64Guest.CodeGpa + 0x400, v.GetX(1));
        Assert.Equal(0x5A5AUL, v.GetX(2));
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v.GetMpState());
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, other.GetMpState());
        ulong pc = v.GetPc();

        // The VMM suspends the vCPU: KVM_SET_MP_STATE SUSPENDED, reported back by KVM_GET_MP_STATE; KVM_RUN then
        // blocks as for WFI (no vGIC, so nothing can wake it: Arm64WakeAndAbortTests has the wake-ups) until a signal.
        v.SetMpState(KvmMpState.KVM_MP_STATE_SUSPENDED);
        Assert.Equal(KvmMpState.KVM_MP_STATE_SUSPENDED, v.GetMpState());
        bool interrupted = false;
        var runner = new Thread(() => interrupted = v.RunBounded().Interrupted) { IsBackground = true };
        runner.Start();
        Assert.False(runner.Join(TimeSpan.FromMilliseconds(200)), "a suspended vCPU should block in KVM_RUN");
        v.Kick();
        Assert.True(runner.Join(TimeSpan.FromMinutes(2)));
        v.ImmediateExit = false;
        Assert.True(interrupted);
        Assert.Equal(pc, v.GetPc());
        // "The suspend state is sticky": still SUSPENDED until userspace makes it RUNNABLE.
        Assert.Equal(KvmMpState.KVM_MP_STATE_SUSPENDED, v.GetMpState());
        v.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        v.SetX(0, 0); // the VMM's PSCI_RET_SUCCESS
        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, 0UL);
        Assert.Equal(0UL, v.GetX(20));
    }

    [Fact]
    public void Set_mp_state_rejects_unknown_states_without_changing_the_state()
    {
        using var s = new Setup(Arm64Guest.SystemOff);
        var v = s.Vcpus[0];
        v.SetMpState(KvmMpState.KVM_MP_STATE_SUSPENDED);
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => v.SetMpState(KvmMpState.KVM_MP_STATE_HALTED)).Errno);
        Assert.Equal(KvmMpState.KVM_MP_STATE_SUSPENDED, v.GetMpState());
        v.SetMpState(KvmMpState.KVM_MP_STATE_STOPPED);
        Assert.Equal(KvmMpState.KVM_MP_STATE_STOPPED, v.GetMpState());
    }

    private static ulong Freq => Arm64HostCpu.CounterFrequency;

    [Fact]
    public void Counter_offset_sets_both_counters_and_then_counter_writes_are_ignored()
    {
        ushort cntvct = Arm64Timer.CntvctEl0, cntpct = Arm64Timer.CntpctEl0;
        using var s = new Setup(a =>
        {
            a.Mrs(X(19), cntvct);
            a.Mrs(X(20), cntpct);
            Arm64Guest.SystemOff(a);
        });
        var v = s.Vcpus[0];
        Assert.True(s.Vm.SupportsCounterOffset());
        // reserved != 0: EINVAL, nothing set (a TIMER_CNT write still moves the offset afterwards).
        Assert.Equal(Raw.EINVAL, s.SetCounterOffsetRaw(0, 1));
        Assert.Equal(Raw.EFAULT, s.Kernel.Ioctl(s.Vm.Handle, KvmArm64Ioctls.KVM_ARM_SET_COUNTER_OFFSET, new byte[8]));
        v.SetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT, 1UL << 40);
        Assert.InRange(v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT), 1UL << 40, (1UL << 40) + 600 * Freq);

        // poffset is 0 so far: PTIMER_CNT is the host counter. Put both counters near 5000.
        ulong host = v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT);
        s.Vm.SetCounterOffset(host - 5000);
        Assert.InRange(v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT), 5000UL, 5000 + 600 * Freq);
        Assert.InRange(v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT), 5000UL, 5000 + 600 * Freq);
        // KVM_ARCH_FLAG_VM_COUNTER_OFFSET: counter writes are ignored (and succeed).
        v.SetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT, 1UL << 50);
        v.SetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT, 1UL << 50);
        Assert.InRange(v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT), 5000UL, 5000 + 600 * Freq);
        Assert.InRange(v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT), 5000UL, 5000 + 600 * Freq);
        // The guest's CNTVCT_EL0 / CNTPCT_EL0 subtract the same offset.
        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, 0UL);
        Assert.InRange(v.GetX(19), 5000UL, 5000 + 600 * Freq);
        Assert.InRange(v.GetX(20), 5000UL, 5000 + 600 * Freq);
        // Having run does not matter (no kvm_vm_has_ran_once check): a later call succeeds.
        s.Vm.SetCounterOffset(host - 7000);
        Assert.InRange(v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT), 7000UL, 7000 + 600 * Freq);
    }

    [Fact]
    public void Counter_offset_is_ebusy_while_a_vcpu_is_in_kvm_run_and_changes_nothing()
    {
        using var s = new Setup(a =>
        {
            var loop = a.CreateLabel();
            a.Bind(loop);
            a.Wfi();
            a.B(loop);
        });
        var v = s.Vcpus[0];
        ulong host = v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT);
        s.Vm.SetCounterOffset(host - 5000);
        var runner = new Thread(() => v.RunBounded()) { IsBackground = true };
        runner.Start();
        // kvm_trylock_all_vcpus fails while KVM_RUN holds the vCPU's mutex (the WFI loop never leaves it).
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        long rc;
        while ((rc = s.SetCounterOffsetRaw(host - 5000, 0)) == 0 && DateTime.UtcNow < deadline) Thread.Sleep(5);
        Assert.Equal(-(long)Errno.EBUSY, rc);
        // A failed call changes nothing: offset 0 would make the counters read the host counter.
        Assert.Equal(-(long)Errno.EBUSY, s.SetCounterOffsetRaw(0, 0));
        v.Kick();
        Assert.True(runner.Join(TimeSpan.FromMinutes(2)));
        v.ImmediateExit = false;
        Assert.InRange(v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT), 5000UL, 5000 + 600 * Freq);
        s.Vm.SetCounterOffset(host - 9000);
        Assert.InRange(v.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT), 9000UL, 9000 + 600 * Freq);
    }

    private const ulong NewMidr = 0x413f_d0c1;

    [Fact]
    public void Writable_imp_id_regs_must_be_enabled_before_any_vcpu()
    {
        using var s = new Setup(Arm64Guest.SystemOff);
        Assert.True(s.Vm.SupportsWritableImplementationIdRegisters());
        // kvm_vm_ioctl_enable_cap: "if (!kvm->created_vcpus)" else r stays -EINVAL.
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => s.Vm.EnableWritableImplementationIdRegisters()).Errno);
        var v = s.Vcpus[0];
        ulong midr = v.GetOneReg(KvmArm64IdRegs.MIDR_EL1);
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => v.SetOneReg(KvmArm64IdRegs.MIDR_EL1, midr ^ 1)).Errno);
        Assert.Equal(midr, v.GetOneReg(KvmArm64IdRegs.MIDR_EL1));
    }

    [Fact]
    public void Writable_imp_id_regs_accept_values_within_the_mask_until_the_vm_runs()
    {
        ulong midrEnc = KvmArm64SysRegs.Encoding(3, 0, 0, 0, 0), aidrEnc = KvmArm64SysRegs.Encoding(3, 1, 0, 0, 7);
        using var s = new Setup(a =>
        {
            a.Mrs(X(19), midrEnc);
            a.Mrs(X(20), aidrEnc);
            Arm64Guest.SystemOff(a);
        }, beforeVcpus: vm =>
        {
            var bad = new kvm_enable_cap { cap = (uint)KvmArm64IdRegs.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS, flags = 1 };
            Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => vm.EnableCapability(bad)).Errno);
            vm.EnableWritableImplementationIdRegisters();
        });
        var v = s.Vcpus[0];
        ulong midr = v.GetOneReg(KvmArm64IdRegs.MIDR_EL1);
        // MIDR_EL1's writable mask is GENMASK(31, 0): bit 32 → EINVAL, nothing written.
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => v.SetOneReg(KvmArm64IdRegs.MIDR_EL1, 1UL << 32)).Errno);
        Assert.Equal(midr, v.GetOneReg(KvmArm64IdRegs.MIDR_EL1));
        v.SetOneReg(KvmArm64IdRegs.MIDR_EL1, NewMidr);
        v.SetOneReg(KvmArm64IdRegs.REVIDR_EL1, 0xFFFF_0000_0000_0001);
        v.SetOneReg(KvmArm64IdRegs.AIDR_EL1, 0x1234_5678_9ABC_DEF0);
        Assert.Equal(NewMidr, v.GetOneReg(KvmArm64IdRegs.MIDR_EL1));
        Assert.Equal(0xFFFF_0000_0000_0001UL, v.GetOneReg(KvmArm64IdRegs.REVIDR_EL1));
        // kvm_set_vm_id_reg: VM-wide, a vCPU created afterwards reads the same values.
        var second = s.AddVcpu();
        Assert.Equal(NewMidr, second.GetOneReg(KvmArm64IdRegs.MIDR_EL1));
        Assert.Equal(0x1234_5678_9ABC_DEF0UL, second.GetOneReg(KvmArm64IdRegs.AIDR_EL1));

        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, 0UL);
        Assert.Equal(NewMidr, v.GetX(19));
        Assert.Equal(0x1234_5678_9ABC_DEF0UL, v.GetX(20));
        // After the first KVM_RUN: the current value is accepted, any other is EBUSY.
        v.SetOneReg(KvmArm64IdRegs.MIDR_EL1, NewMidr);
        Assert.Equal(Errno.EBUSY, Assert.Throws<KvmException>(() => v.SetOneReg(KvmArm64IdRegs.MIDR_EL1, NewMidr ^ 1)).Errno);
        Assert.Equal(Errno.EBUSY, Assert.Throws<KvmException>(() => second.SetOneReg(KvmArm64IdRegs.AIDR_EL1, 0)).Errno);
        Assert.Equal(NewMidr, v.GetOneReg(KvmArm64IdRegs.MIDR_EL1));
    }

    [Fact]
    public void New_caps_are_reported_and_a_flagged_enable_changes_nothing()
    {
        using var s = new Setup(SuspendProgram);
        Assert.Equal(1, s.Vm.CheckExtension(KvmArm64Constants.KVM_CAP_ARM_SYSTEM_SUSPEND));
        Assert.Equal(1, s.Vm.CheckExtension(KvmArm64CounterOffset.KVM_CAP_COUNTER_OFFSET));
        Assert.Equal(1, s.Vm.CheckExtension(KvmArm64IdRegs.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS));
        var bad = new kvm_enable_cap { cap = (uint)KvmArm64Constants.KVM_CAP_ARM_SYSTEM_SUSPEND, flags = 1 };
        Assert.Throws<KvmException>(() => s.Vm.EnableCapability(bad));
        // SYSTEM_SUSPEND is still NOT_SUPPORTED: the failed enable set nothing.
        var v = s.Vcpus[0];
        AssertEvent(v.RunBounded(), KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, 0UL);
        Assert.Equal(NotSupported, v.GetX(20));
    }

    [Fact]
    public void Abi_values_match_upstream_arm64_headers()
    {
        // asm/kvm.h struct kvm_arm_counter_offset (16 bytes) → _IOW(KVMIO, 0xb5, 16) = 0x4010aeb5.
        Assert.Equal(0x4010_AEB5u, KvmArm64Ioctls.KVM_ARM_SET_COUNTER_OFFSET);
        Assert.Equal(1UL, KvmArm64Constants.KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2);
    }
}
