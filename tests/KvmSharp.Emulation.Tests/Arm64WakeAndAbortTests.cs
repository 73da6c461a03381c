// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.Arm64VgicGuestVm;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Four arm64 rules of Linux 6.18: an instruction fetch outside every memslot is reflected as a synchronous external
/// abort (mmu.c kvm_handle_guest_abort → inject_fault.c kvm_inject_sea_iabt / inject_abt64); a suspended vCPU wakes
/// on a pending interrupt (arm.c kvm_vcpu_suspend: KVM_SYSTEM_EVENT_WAKEUP; psci.c kvm_psci_vcpu_suspend →
/// kvm_vcpu_wfi); every vCPU creation resets the VM's counter offsets unless KVM_ARM_SET_COUNTER_OFFSET was used
/// (arch_timer.c kvm_timer_vcpu_init); the binary point decides preemption (hyp/vgic-v3-sr.c __vgic_v3_pri_to_pre).
/// </summary>
public class Arm64WakeAndAbortTests
{
    private const ulong Unmapped = 0x0300_0000;           // outside the test VM's only slot (64 KiB at 0)
    private const ulong EsrIl = 1UL << 25, FscExtAbt = 0x10;
    private const uint Spi = 33;

    private static readonly ulong CntvCtl = KvmArm64SysRegs.Encoding(3, 3, 14, 3, 1),
        CntvCval = KvmArm64SysRegs.Encoding(3, 3, 14, 3, 2), IccBpr1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 3),
        IccAp1r0 = KvmArm64SysRegs.Encoding(3, 0, 12, 9, 0);

    private static void Done(A64Assembler a) => Arm64Guest.Ucall(a, Arm64Guest.UcallDone);

    [Fact]
    public void An_instruction_fetch_outside_every_memslot_takes_an_external_abort_from_el1()
    {
        using var s = new Arm64TestVm(a =>
        {
            a.MovImm(X(0), Unmapped);
            a.Br(X(0));
        });
        s.Host.Write(Arm64Guest.SyncVectorGpa, Arm64Guest.Assemble(Done));   // VBAR_EL1 0, EL1h: + 0x200
        var v = s.AddVcpu();
        AssertDone(v.RunBounded());
        // inject_abt64: EC IABT_CUR (0x21) from EL1, IL, FSC ESR_ELx_FSC_EXTABT; FAR_EL1 = the VA; ELR = the fetch.
        Assert.Equal((0x21UL << 26) | EsrIl | FscExtAbt, v.GetOneReg(KvmArm64SysRegs.ESR_EL1));
        Assert.Equal(Unmapped, v.GetOneReg(KvmArm64SysRegs.FAR_EL1));
        Assert.Equal(Unmapped, v.GetOneReg(KvmArm64Regs.ElrEl1));
    }

    [Fact]
    public void An_instruction_fetch_outside_every_memslot_from_el0_reports_a_lower_el_abort()
    {
        using var s = new Arm64TestVm(a =>
        {
            a.MovImm(X(0), Unmapped);
            a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1), X(0));          // ELR_EL1
            a.MovImm(X(0), 0);
            a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 0), X(0));          // SPSR_EL1: EL0t
            a.Eret();
        });
        s.Host.Write(0x400, Arm64Guest.Assemble(Done));                     // from EL0 (AArch64): + 0x400
        var v = s.AddVcpu();
        AssertDone(v.RunBounded());
        Assert.Equal((0x20UL << 26) | EsrIl | FscExtAbt, v.GetOneReg(KvmArm64SysRegs.ESR_EL1));
        Assert.Equal(Unmapped, v.GetOneReg(KvmArm64SysRegs.FAR_EL1));
    }

    /// <summary>
    /// The default VM (type 0) has a 40-bit IPA space; 1 &lt;&lt; 44 lies between it and the host's IPA limit (48): 6.18
    /// kvm_handle_guest_abort "Falls between the IPA range and the PARange?" → kvm_inject_sea(vcpu, is_iabt, fault_ipa |
    /// hfar[11:0]) — an external abort, not the size fault (FSC 0) of an IPA beyond the limit.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_ipa_between_the_vm_ipa_size_and_the_limit_takes_an_external_abort(bool fetch)
    {
        const ulong beyond = (1UL << 44) + 0x123 * 8; // 8-aligned: an unaligned LDR X with the MMU off is an alignment fault first
        using var s = new Arm64TestVm(a =>
        {
            a.MovImm(X(0), beyond);
            if (fetch) a.Br(X(0));
            else a.Ldr(X(1), X(0));
        });
        s.Host.Write(Arm64Guest.SyncVectorGpa, Arm64Guest.Assemble(Done));
        var v = s.AddVcpu();
        AssertDone(v.RunBounded());
        ulong ec = fetch ? 0x21UL : 0x25UL;
        Assert.Equal((ec << 26) | EsrIl | FscExtAbt, v.GetOneReg(KvmArm64SysRegs.ESR_EL1));
        Assert.Equal(beyond, v.GetOneReg(KvmArm64SysRegs.FAR_EL1));
    }

    /// <summary>Distributor on, SPI 33 enabled (Group 1, KVM's GICv3 default), CPU interface Group 1 on; I stays masked.</summary>
    private static void SpiSetup(A64Assembler a)
    {
        EnableDistributor(a);
        a.MovImm(X(3), 2);
        a.Str(W(3), X(2), 0x104);                                           // GICD_ISENABLER1: SPI 33
        EnableCpuInterface(a, group0: false, group1: true);
    }

    [Fact]
    public void A_suspended_vcpu_exits_with_a_wakeup_event_while_an_interrupt_is_pending_until_made_runnable()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            SpiSetup(a);
            Done(a);
            a.MovImm(X(19), 0x77);
            Done(a);
        });
        var v = s.Vcpus[0];
        s.RunToDone(0);
        v.SetMpState(KvmMpState.KVM_MP_STATE_SUSPENDED);
        s.Vm.SetSpiLevel(Spi, true);
        // kvm_vcpu_suspend: kvm_arch_vcpu_runnable → KVM_SYSTEM_EVENT_WAKEUP, system_event zeroed (ndata 0).
        AssertWakeup(v.RunBounded());
        // "The suspend state is sticky": the next KVM_RUN exits again; the guest has not moved.
        Assert.Equal(KvmMpState.KVM_MP_STATE_SUSPENDED, v.GetMpState());
        AssertWakeup(v.RunBounded());
        Assert.Equal(0UL, v.GetX(19));
        v.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        s.RunToDone(0);
        Assert.Equal(0x77UL, v.GetX(19));
    }

    [Fact]
    public void A_suspended_vcpu_is_woken_by_its_expired_virtual_timer()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            EnableDistributor(a);
            a.MovImm(X(2), Redist + 0x1_0000);
            a.MovImm(X(3), 1UL << 27);
            a.Str(W(3), X(2), 0x100);                                       // GICR_ISENABLER0: PPI 27 (vtimer)
            EnableCpuInterface(a, group0: false, group1: true);
            a.MovImm(X(1), 0);
            a.Msr(CntvCval, X(1));
            a.MovImm(X(1), 1);
            a.Msr(CntvCtl, X(1));                                           // ENABLE, CVAL 0: fires at once
            Done(a);
        });
        var v = s.Vcpus[0];
        s.RunToDone(0);
        v.SetMpState(KvmMpState.KVM_MP_STATE_SUSPENDED);
        AssertWakeup(v.RunBounded());
    }

    [Fact]
    public void A_suspended_vcpu_without_a_pending_interrupt_keeps_waiting_until_a_signal()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            SpiSetup(a);
            Done(a);
        });
        var v = s.Vcpus[0];
        s.RunToDone(0);
        v.SetMpState(KvmMpState.KVM_MP_STATE_SUSPENDED);
        bool interrupted = false;
        var runner = new Thread(() => interrupted = v.RunBounded().Interrupted) { IsBackground = true };
        runner.Start();
        Assert.False(runner.Join(TimeSpan.FromMilliseconds(200)), "nothing pending: the suspended vCPU should block");
        v.Kick();
        Assert.True(runner.Join(TimeSpan.FromMinutes(2)));
        v.ImmediateExit = false;
        Assert.True(interrupted);
    }

    [Fact]
    public void Psci_cpu_suspend_returns_to_the_guest_when_an_interrupt_becomes_pending()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            SpiSetup(a);
            a.MovImm(X(0), Psci.PSCI_0_2_FN64_CPU_SUSPEND);
            a.MovImm(X(1), 0);
            a.MovImm(X(2), 0);
            a.MovImm(X(3), 0);
            a.Hvc();
            a.Mov(X(19), X(0));
            Done(a);
        });
        var v = s.Vcpus[0];
        v.SetX(19, 0x55);
        ulong done = 0;
        var runner = new Thread(() =>
        {
            var exit = v.RunBounded();
            if (exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioAddress == Arm64Guest.UcallMmioGpa)
                done = BitConverter.ToUInt64(exit.MmioData);
        }) { IsBackground = true };
        runner.Start();
        // Whether the interrupt arrives before or during the suspend, kvm_vcpu_wfi returns; no exit to userspace.
        Thread.Sleep(100);
        s.Vm.SetSpiLevel(Spi, true);
        if (!runner.Join(TimeSpan.FromMinutes(2)))
        {
            v.Kick();
            runner.Join();
            Assert.Fail("CPU_SUSPEND was not woken by the pending SPI");
        }
        Assert.Equal(Arm64Guest.UcallDone, done);
        Assert.Equal(0UL, v.GetX(19));                                      // PSCI_RET_SUCCESS
    }

    [Fact]
    public void Creating_a_vcpu_resets_the_vm_counter_offsets_written_through_one_reg()
    {
        using var s = new Arm64TestVm(Done);
        var v0 = s.AddVcpu();
        ulong far = 1UL << 56;
        v0.SetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT, far);
        v0.SetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT, far);
        Assert.True(v0.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT) >= far);
        ulong before = Arm64Timer.PhysicalCounter();
        var v1 = s.AddVcpu();                                               // KVM_CREATE_VCPU, then KVM_ARM_VCPU_INIT
        ulong after = Arm64Timer.PhysicalCounter();
        // kvm_timer_vcpu_init: voffset = kvm_phys_timer_read(), poffset = 0, for the whole VM (vCPU 0 included).
        ulong minute = Arm64HostCpu.CounterFrequency * 60;
        Assert.True(v0.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT) < minute);
        Assert.True(v1.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT) < minute);
        ulong pcnt = v0.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT);
        Assert.InRange(pcnt, before, Arm64Timer.PhysicalCounter());
        Assert.True(after >= before);
    }

    [Fact]
    public void Creating_a_vcpu_keeps_the_offset_set_by_kvm_arm_set_counter_offset()
    {
        using var s = new Arm64TestVm(Done);
        var v0 = s.AddVcpu();
        ulong offset = Arm64Timer.PhysicalCounter() / 2;
        var arg = new kvm_arm_counter_offset { counter_offset = offset };
        Assert.Equal(0, s.Kernel.Ioctl(s.Vm.Handle, KvmArm64Ioctls.KVM_ARM_SET_COUNTER_OFFSET, Raw.Bytes(ref arg)));
        ulong before = Arm64Timer.PhysicalCounter();
        var v1 = s.AddVcpu();                                               // KVM_CREATE_VCPU, then KVM_ARM_VCPU_INIT
        // KVM_ARCH_FLAG_VM_COUNTER_OFFSET: kvm_timer_vcpu_init leaves the offsets alone.
        ulong cnt = v1.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT);
        Assert.InRange(cnt, before - offset, Arm64Timer.PhysicalCounter() - offset);
        Assert.InRange(v0.GetOneReg(KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT), before - offset, Arm64Timer.PhysicalCounter() - offset);
    }

    /// <summary>
    /// SPI 33 (priority 0x48) is acknowledged, then SPI 34 (priority 0x40) becomes pending: with ICC_BPR1_EL1 = 3 the
    /// group priorities are 0x48 and 0x40 (34 preempts: IAR1 returns it), with BPR1 = 4 both are 0x40 (no preemption:
    /// 1023).
    /// </summary>
    [Theory]
    [InlineData(3UL, 34UL, 0x40UL)]
    [InlineData(4UL, 1023UL, 0x40UL)]
    public void The_binary_point_decides_whether_a_pending_interrupt_preempts_the_active_one(ulong bpr1, ulong second, ulong rpr)
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            EnableDistributor(a);
            a.MovImm(X(3), 6);
            a.Str(W(3), X(2), 0x104);                                       // GICD_ISENABLER1: SPIs 33, 34
            a.MovImm(X(3), 0x48);
            a.Strb(W(3), X(2), 0x400 + 33);
            a.MovImm(X(3), 0x40);
            a.Strb(W(3), X(2), 0x400 + 34);
            EnableCpuInterface(a, group0: false, group1: true);
            a.MovImm(X(1), bpr1);
            a.Msr(IccBpr1, X(1));
            a.Mrs(X(19), IccIar1);                                          // SPI 33: active, running priority
            Arm64Guest.Ucall(a, 7);                                         // the VMM raises SPI 34
            a.Mrs(X(20), IccIar1);
            a.Mrs(X(21), IccRpr);
            a.Mrs(X(22), IccAp1r0);
            Done(a);
        });
        var v = s.Vcpus[0];
        s.Vm.SetSpiLevel(Spi, true);
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(7UL, BitConverter.ToUInt64(exit.MmioData));
        Assert.Equal(33UL, v.GetX(19));
        s.Vm.SetSpiLevel(Spi + 1, true);
        s.RunToDone(0);
        Assert.Equal(second, v.GetX(20));
        Assert.Equal(rpr, v.GetX(21));
        // __vgic_v3_set_active_priority: bit (group priority >> 3) of ICH_AP1R0 (5 priority bits).
        ulong ap = bpr1 == 3 ? (1UL << (0x48 >> 3)) | (1UL << (0x40 >> 3)) : 1UL << (0x40 >> 3);
        Assert.Equal(ap, v.GetX(22));
    }

    private static void AssertDone(VcpuExit exit)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(Arm64Guest.UcallDone, BitConverter.ToUInt64(exit.MmioData));
    }

    private static void AssertWakeup(VcpuExit exit)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, exit.Reason);
        Assert.Equal(KvmArm64Constants.KVM_SYSTEM_EVENT_WAKEUP, exit.SystemEventType);
        Assert.Empty(exit.SystemEventData.ToArray());
    }
}
