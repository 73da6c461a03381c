// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Abi.Arm64.KvmArm64VcpuAttrs;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The KVM_ARM_VCPU_TIMER_CTRL vCPU attributes (Emulation/Arm64/Arm64TimerAttrs.cs) against arch/arm64/kvm/arch_timer.c
/// kvm_arm_timer_set_attr / get_attr / has_attr and kvm_timer_enable (6.18): VM-wide PPIs, the errno order of a set,
/// the verdict on the PPIs at the first KVM_RUN, and KVM_ARCH_FLAG_TIMER_PPIS_IMMUTABLE.
/// </summary>
public class Arm64TimerAttrTests
{
    private const ulong Dist = 0x0800_0000, Redist = 0x080A_0000;

    private sealed class Setup : Arm64TestVm
    {
        // A ucall (an MMIO exit) rather than SYSTEM_OFF, which would stop every vCPU of the VM.
        public Setup(int vcpus = 1, bool pmu = false)
            : base(a => Arm64Guest.Ucall(a, Arm64Guest.UcallDone))
        {
            for (int i = 0; i < vcpus; i++) AddVcpu(pmu ? 1u << KvmArm64Constants.KVM_ARM_VCPU_PMU_V3 : 0);
        }

        public KvmDevice? Gic { get; private set; }

        public void CreateGic(bool initialize = true)
        {
            Gic = Vm.CreateVgicV3(Dist, Redist, (uint)Vcpus.Count);
            if (initialize) Gic.InitializeVgic();
        }

        public long Attr(int vcpu, uint request, ulong attribute, ulong addr)
        {
            var attr = new kvm_device_attr { group = KVM_ARM_VCPU_TIMER_CTRL, attr = attribute, addr = addr };
            return Kernel.Ioctl(Vcpus[vcpu].Handle, request, Raw.Bytes(ref attr));
        }

        public long Run(int vcpu) => Kernel.Ioctl(Vcpus[vcpu].Handle, KvmIoctls.KVM_RUN, 0UL);

        protected override void DisposeExtras() => Gic?.Dispose();
    }

    private static Errno Fails(Action action) => Assert.Throws<KvmException>(action).Errno;

    [Fact]
    public void All_four_timer_attributes_exist_without_nested_virt_and_report_the_default_ppis()
    {
        using var s = new Setup();
        var v = s.Vcpus[0];
        foreach (var t in Enum.GetValues<Arm64TimerIrq>()) Assert.True(v.HasTimerAttribute(t));
        // kvm_arm_timer_has_attr: anything past HPTIMER is ENXIO.
        Assert.False(v.HasDeviceAttribute(KVM_ARM_VCPU_TIMER_CTRL, 4));
        Assert.Equal(-(long)Errno.ENXIO, s.Attr(0, KvmIoctls.KVM_HAS_DEVICE_ATTR, 4, 0));
        // default_ppi[]: vtimer 27, ptimer 30, hvtimer 28, hptimer 26 — readable without a vGIC.
        Assert.Equal(27, v.GetTimerInterrupt(Arm64TimerIrq.Virtual));
        Assert.Equal(30, v.GetTimerInterrupt(Arm64TimerIrq.Physical));
        Assert.Equal(28, v.GetTimerInterrupt(Arm64TimerIrq.HypVirtual));
        Assert.Equal(26, v.GetTimerInterrupt(Arm64TimerIrq.HypPhysical));
        Assert.Equal(-(long)Errno.ENXIO, s.Attr(0, KvmIoctls.KVM_GET_DEVICE_ATTR, 4, 0));
        // put_user to an unmapped address.
        Assert.Equal(Raw.EFAULT, s.Attr(0, KvmIoctls.KVM_GET_DEVICE_ATTR, KVM_ARM_VCPU_TIMER_IRQ_VTIMER, 8));
    }

    [Fact]
    public void Set_needs_an_in_kernel_vgic_and_a_ppi_and_checks_the_attribute_last()
    {
        using var s = new Setup();
        var v = s.Vcpus[0];
        // "if (!irqchip_in_kernel(vcpu->kvm)) return -EINVAL;" before get_user.
        Assert.Equal(Errno.EINVAL, Fails(() => v.SetTimerInterrupt(Arm64TimerIrq.Virtual, 20)));
        Assert.Equal(Raw.EINVAL, s.Attr(0, KvmIoctls.KVM_SET_DEVICE_ATTR, KVM_ARM_VCPU_TIMER_IRQ_VTIMER, 8));
        s.CreateGic(initialize: false);
        Assert.Equal(Raw.EFAULT, s.Attr(0, KvmIoctls.KVM_SET_DEVICE_ATTR, KVM_ARM_VCPU_TIMER_IRQ_VTIMER, 8));
        // irq_is_ppi: 16 <= irq < 32.
        foreach (int bad in new[] { -1, 0, 15, 32, 1019 })
            Assert.Equal(Errno.EINVAL, Fails(() => v.SetTimerInterrupt(Arm64TimerIrq.Physical, bad)));
        // The attribute switch comes after the PPI check: an unknown attribute with a bad value is EINVAL, with a PPI ENXIO.
        Assert.Equal(Errno.EINVAL, Fails(() => v.SetTimerInterrupt((Arm64TimerIrq)4, 40)));
        Assert.Equal(Errno.ENXIO, Fails(() => v.SetTimerInterrupt((Arm64TimerIrq)4, 20)));
        Assert.Equal(30, v.GetTimerInterrupt(Arm64TimerIrq.Physical));
        v.SetTimerInterrupt(Arm64TimerIrq.HypPhysical, 16);
        Assert.Equal(16, v.GetTimerInterrupt(Arm64TimerIrq.HypPhysical));
    }

    [Fact]
    public void The_ppis_are_per_vm_though_set_through_a_vcpu()
    {
        using var s = new Setup(vcpus: 2);
        s.CreateGic(initialize: false);
        s.Vcpus[0].SetTimerInterrupt(Arm64TimerIrq.Virtual, 20);
        s.Vcpus[1].SetTimerInterrupt(Arm64TimerIrq.Physical, 21);
        // kvm->arch.timer_data.ppi[]: both vCPUs see both values (no uniqueness check at set time either).
        foreach (var v in s.Vcpus)
        {
            Assert.Equal(20, v.GetTimerInterrupt(Arm64TimerIrq.Virtual));
            Assert.Equal(21, v.GetTimerInterrupt(Arm64TimerIrq.Physical));
        }
        s.Vcpus[1].SetTimerInterrupt(Arm64TimerIrq.Physical, 20);
        Assert.Equal(20, s.Vcpus[0].GetTimerInterrupt(Arm64TimerIrq.Physical));
    }

    [Fact]
    public void Two_timers_on_one_ppi_fail_the_first_run_and_a_valid_run_freezes_the_ppis()
    {
        using var s = new Setup(vcpus: 2);
        s.CreateGic();
        s.Vcpus[0].SetTimerInterrupt(Arm64TimerIrq.Physical, 27);
        // timer_irqs_are_valid: the ptimer claims 27, the vtimer's kvm_vgic_set_owner(27) is EEXIST → EINVAL.
        Assert.Equal(Raw.EINVAL, s.Run(0));
        Assert.Equal(Raw.EINVAL, s.Run(0));
        // Not frozen by a failed verdict; the ptimer keeps owning 27, so moving the vtimer away fixes the VM.
        s.Vcpus[1].SetTimerInterrupt(Arm64TimerIrq.Virtual, 29);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, s.Vcpus[0].RunBounded().Reason);
        // KVM_ARCH_FLAG_TIMER_PPIS_IMMUTABLE: EBUSY through any vCPU, after the PPI check; the values stay readable.
        Assert.Equal(Errno.EBUSY, Fails(() => s.Vcpus[1].SetTimerInterrupt(Arm64TimerIrq.Virtual, 22)));
        Assert.Equal(Errno.EBUSY, Fails(() => s.Vcpus[1].SetTimerInterrupt((Arm64TimerIrq)4, 22)));
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vcpus[1].SetTimerInterrupt(Arm64TimerIrq.Virtual, 40)));
        Assert.Equal(29, s.Vcpus[1].GetTimerInterrupt(Arm64TimerIrq.Virtual));
        Assert.Equal(27, s.Vcpus[1].GetTimerInterrupt(Arm64TimerIrq.Physical));
        // The second vCPU's first run claims the same PPIs on its own redistributor.
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, s.Vcpus[1].RunBounded().Reason);
    }

    [Fact]
    public void The_hyp_timers_are_not_claimed_without_nested_virt()
    {
        using var s = new Setup();
        s.CreateGic();
        // nr_timers() = NR_KVM_EL0_TIMERS: HVTIMER/HPTIMER may share the EL1 timers' PPIs.
        s.Vcpus[0].SetTimerInterrupt(Arm64TimerIrq.HypVirtual, 27);
        s.Vcpus[0].SetTimerInterrupt(Arm64TimerIrq.HypPhysical, 30);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, s.Vcpus[0].RunBounded().Reason);
    }

    [Fact]
    public void Without_a_vgic_the_first_run_claims_nothing_and_freezes_nothing()
    {
        using var s = new Setup();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, s.Vcpus[0].RunBounded().Reason);
        Assert.False(Arm64VmState.Of(GuestKvm(s)).TimerPpisImmutable);
    }

    [Fact]
    public void A_timer_on_the_pmus_ppi_fails_the_run_and_a_pmu_on_a_claimed_timer_ppi_is_eexist()
    {
        using (var s = new Setup(pmu: true))
        {
            s.CreateGic();
            var v = s.Vcpus[0];
            v.SetPmuInterrupt(23);
            v.SetTimerInterrupt(Arm64TimerIrq.Virtual, 23);
            v.InitPmu();
            // kvm_timer_enable runs before kvm_arm_pmu_v3_enable: the PMU owns 23, so the vtimer cannot have it.
            Assert.Equal(Raw.EINVAL, s.Run(0));
            v.SetTimerInterrupt(Arm64TimerIrq.Virtual, 27);
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        }
        using (var s = new Setup(pmu: true))
        {
            s.CreateGic();
            var v = s.Vcpus[0];
            // A PMU vCPU's first run claims the timer PPIs, then fails in kvm_arm_pmu_v3_enable (PMU not created).
            Assert.Equal(Raw.EINVAL, s.Run(0));
            v.SetPmuInterrupt(27);
            // kvm_arm_pmu_v3_init → kvm_vgic_set_owner(27): the vtimer owns it.
            Assert.Equal(Errno.EEXIST, Fails(v.InitPmu));
        }
    }

    private static KvmMain.Kvm GuestKvm(Setup s)
    {
        var kvm = Mmu.GuestMemoryPath.VmOf(s.Kernel, s.Vm.Handle);
        Assert.NotNull(kvm);
        return kvm;
    }
}
