// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Abi.Arm64.KvmArm64VcpuAttrs;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The arm64 guest PMUv3 set-up through the vCPU device attributes of KVM_ARM_VCPU_PMU_V3_CTRL (arch/arm64/kvm/pmu-emul.c
/// kvm_arm_pmu_v3_set_attr / get_attr / has_attr and kvm_arm_pmu_v3_enable, Linux 6.18; guest.c
/// kvm_arm_vcpu_arch_set_attr; Documentation/virt/kvm/devices/vcpu.rst), with the attribute parts of
/// tools/testing/selftests/kvm/arm64/vpmu_counter_access.c (create_vpmu_vm: PPI 23 then INIT;
/// test_create_vpmu_vm_with_nr_counters). The assertions hold for any host PMU (counter counts are read from the
/// kernel). This host is x86_64: every case is skipped on the real kernel.
/// </summary>
public static class Arm64PmuAttributes
{
    private const string PmuEmulC = "arch/arm64/kvm/pmu-emul.c";
    private const ulong Dist = 0x0800_0000, Redist = 0x080A_0000;

    /// <summary>vpmu_counter_access.c: "PMU IRQ number" 23, the PPI the Arm BSA recommends.</summary>
    private const int PmuPpi = 23;

    /// <summary>A VM of PMU vCPUs (PSCI 0.2) whose code powers the VM off.</summary>
    private sealed class PmuVm : IDisposable
    {
        private readonly AnonymousMemory _host;
        private readonly MemorySlot _slot;

        public PmuVm(Kvm kvm, int count, bool pmu = true)
        {
            Vm = kvm.CreateVm();
            _host = Vm.AllocateMemory(Arm64Guest.Size);
            _host.Write(Arm64Guest.CodeGpa, Arm64Guest.Assemble(Arm64Guest.SystemOff));
            _slot = Vm.AddMemorySlot(0, 0, _host);
            Vcpus = new Vcpu[count];
            for (int i = 0; i < count; i++)
            {
                Vcpus[i] = Vm.CreateVcpu(i);
                var init = Vm.PreferredTarget();
                init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2;
                if (pmu) init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PMU_V3;
                Vcpus[i].Init(init);
                Vcpus[i].SetPc(Arm64Guest.CodeGpa);
            }
        }

        public Vm Vm { get; }

        public Vcpu[] Vcpus { get; }

        public Vcpu Vcpu => Vcpus[0];

        public KvmDevice Gic(uint interrupts = 64) => Vm.CreateVgicV3(Dist, Redist, (uint)Vcpus.Length, interrupts);

        public void Dispose()
        {
            foreach (var v in Vcpus) v?.Dispose();
            _slot.Dispose();
            _host.Dispose();
            Vm.Dispose();
        }
    }

    private static void RequirePmu(CaseContext ctx, Kvm kvm)
    {
        Arm64Guests.RequireArm64(ctx);
        if (kvm.CheckExtension(KvmArm64PmuRegs.KVM_CAP_ARM_PMU_V3) <= 0) Skip("KVM_CAP_ARM_PMU_V3 is 0: no guest PMUv3 on this host");
    }

    private static readonly ulong[] PmuAttributes =
    [
        KVM_ARM_VCPU_PMU_V3_IRQ, KVM_ARM_VCPU_PMU_V3_INIT, KVM_ARM_VCPU_PMU_V3_FILTER, KVM_ARM_VCPU_PMU_V3_SET_PMU,
        KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS,
    ];

    private static void AssertRuns(Vcpu vcpu)
    {
        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"expected KVM_EXIT_SYSTEM_EVENT, got {exit.ToString()}");
    }

    [ConformanceCase(PmuEmulC + " kvm_arm_pmu_v3_has_attr (the five attributes with KVM_ARM_VCPU_PMU_V3, ENXIO without it or " +
                     "for another), set_attr (ENODEV without the PMU), get_attr of the IRQ (EINVAL without an in-kernel irqchip, " +
                     "then ENODEV); guest.c kvm_arm_vcpu_arch_has_attr (unknown group: ENXIO)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_pmu_attributes_need_the_pmu_feature(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequirePmu(ctx, kvm);
        using (var plain = new PmuVm(kvm, 1, pmu: false))
        {
            foreach (ulong a in PmuAttributes) Assert.False(plain.Vcpu.HasPmuAttribute(a));
            AssertErrno(Errno.ENODEV, () => plain.Vcpu.SetPmuInterrupt(PmuPpi));
            AssertErrno(Errno.ENODEV, () => plain.Vcpu.InitPmu());
            AssertErrno(Errno.EINVAL, () => plain.Vcpu.GetPmuInterrupt());
            using var gic = plain.Gic();
            AssertErrno(Errno.ENODEV, () => plain.Vcpu.GetPmuInterrupt());
            // Without the PMU the vCPU runs without any attribute.
            gic.InitializeVgic();
            AssertRuns(plain.Vcpu);
        }
        using var vm = new PmuVm(kvm, 1);
        foreach (ulong a in PmuAttributes) Assert.True(vm.Vcpu.HasPmuAttribute(a));
        Assert.False(vm.Vcpu.HasPmuAttribute(KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS + 100));
        Assert.False(vm.Vcpu.HasDeviceAttribute(0x7777, 0));
        var attr = new kvm_device_attr { group = KVM_ARM_VCPU_PMU_V3_CTRL, attr = 0x7777 };
        AssertErrno(Errno.ENXIO, ctx.Kernel.Ioctl(vm.Vcpu.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "SET of an unknown PMU attribute");
        AssertErrno(Errno.ENXIO, ctx.Kernel.Ioctl(vm.Vcpu.Handle, KvmIoctls.KVM_GET_DEVICE_ATTR, Raw(ref attr)), "GET of an unknown PMU attribute");
        // "if (!irqchip_in_kernel(kvm)) return -EINVAL" comes before get_user.
        AssertErrno(Errno.EINVAL, () => vm.Vcpu.SetPmuInterrupt(PmuPpi));
    }

    [ConformanceCase(PmuEmulC + " KVM_ARM_VCPU_PMU_V3_IRQ: a PPI or an SPI up to 1019 (EINVAL), pmu_irq_is_valid (a PPI is the same " +
                     "on every vCPU, an SPI differs per vCPU, this one included: EINVAL), set once (EBUSY), get_user/put_user " +
                     "(EFAULT), read back; ENXIO before it is set", Profile = EmulatedProfile.Arm64)]
    public static void arm64_pmu_interrupt_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequirePmu(ctx, kvm);
        using (var vm = new PmuVm(kvm, 2))
        using (vm.Gic())
        {
            var (v0, v1) = (vm.Vcpus[0], vm.Vcpus[1]);
            AssertErrno(Errno.ENXIO, () => v0.GetPmuInterrupt());
            foreach (int bad in new[] { -1, 0, 15, 1020, 1023, 4096 })
                AssertErrno(Errno.EINVAL, () => v0.SetPmuInterrupt(bad));
            var attr = new kvm_device_attr { group = KVM_ARM_VCPU_PMU_V3_CTRL, attr = KVM_ARM_VCPU_PMU_V3_IRQ, addr = 0 };
            AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(v0.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "IRQ from addr 0");
            AssertErrno(Errno.ENXIO, () => v0.GetPmuInterrupt());
            v0.SetPmuInterrupt(PmuPpi);
            Assert.Equal(PmuPpi, v0.GetPmuInterrupt());
            AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(v0.Handle, KvmIoctls.KVM_GET_DEVICE_ATTR, Raw(ref attr)), "IRQ to addr 0");
            // The same PPI again passes pmu_irq_is_valid, then kvm_arm_pmu_irq_initialized: EBUSY; another PPI fails
            // pmu_irq_is_valid first (this vCPU has 23): EINVAL.
            AssertErrno(Errno.EBUSY, () => v0.SetPmuInterrupt(PmuPpi));
            AssertErrno(Errno.EINVAL, () => v0.SetPmuInterrupt(PmuPpi + 1));
            AssertErrno(Errno.EINVAL, () => v1.SetPmuInterrupt(PmuPpi + 1));
            v1.SetPmuInterrupt(PmuPpi);
            Assert.Equal(PmuPpi, v1.GetPmuInterrupt());
            Assert.Equal(PmuPpi, v0.GetPmuInterrupt());
        }
        using (var vm = new PmuVm(kvm, 2))
        using (vm.Gic())
        {
            var (v0, v1) = (vm.Vcpus[0], vm.Vcpus[1]);
            v0.SetPmuInterrupt(40);
            AssertErrno(Errno.EINVAL, () => v1.SetPmuInterrupt(40));
            // An SPI beyond the vGIC's interrupts is still an SPI here (vgic_valid_spi is INIT's and the run's check).
            v1.SetPmuInterrupt(1019);
            // The same SPI again: this vCPU already has it, EINVAL before EBUSY; a fresh SPI reaches EBUSY.
            AssertErrno(Errno.EINVAL, () => v0.SetPmuInterrupt(40));
            AssertErrno(Errno.EINVAL, () => v0.SetPmuInterrupt(1019));
            AssertErrno(Errno.EBUSY, () => v0.SetPmuInterrupt(41));
            Assert.Equal(40, v0.GetPmuInterrupt());
            Assert.Equal(1019, v1.GetPmuInterrupt());
        }
    }

    [ConformanceCase(PmuEmulC + " kvm_arm_pmu_v3_init (in-kernel vGIC: initialised, ENODEV; IRQ set, ENXIO; kvm_vgic_set_owner: an " +
                     "SPI beyond nr_spis is EINVAL), pmu.created (every later set EBUSY); kvm_arm_pmu_v3_enable: KVM_RUN is EINVAL " +
                     "before INIT and runs after it (vpmu_counter_access.c create_vpmu_vm)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_pmu_init_with_a_vgic(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequirePmu(ctx, kvm);
        using (var vm = new PmuVm(kvm, 1))
        using (var gic = vm.Gic())
        {
            var vcpu = vm.Vcpu;
            // vpmu_counter_access.c: PMUVer is neither IMP_DEF (0xf) nor NI (0).
            ulong pmuver = (vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64DFR0_EL1) >> 8) & 0xf;
            Assert.True(pmuver != 0 && pmuver != 0xf, $"PMUVer {pmuver}");
            vcpu.SetPmuInterrupt(PmuPpi);
            AssertErrno(Errno.ENODEV, () => vcpu.InitPmu());
            gic.InitializeVgic();
            AssertErrno(Errno.EINVAL, () => vcpu.Run());
            vcpu.InitPmu();
            AssertErrno(Errno.EBUSY, () => vcpu.InitPmu());
            AssertErrno(Errno.EBUSY, () => vcpu.SetPmuInterrupt(PmuPpi));
            AssertErrno(Errno.EBUSY, () => vcpu.SetPmuEventFilter(0, 1, allow: true));
            AssertErrno(Errno.EBUSY, () => vcpu.SetPmu(-1));
            AssertErrno(Errno.EBUSY, () => vcpu.SetPmuCounterCount(0));
            Assert.True(vcpu.HasPmuAttribute(KVM_ARM_VCPU_PMU_V3_INIT));
            Assert.Equal(PmuPpi, vcpu.GetPmuInterrupt());
            AssertRuns(vcpu);
        }
        using (var vm = new PmuVm(kvm, 1))
        using (var gic = vm.Gic(interrupts: 64))
        {
            gic.InitializeVgic();
            AssertErrno(Errno.ENXIO, () => vm.Vcpu.InitPmu());
            // 64 interrupts: SPIs 32..63; 100 is an SPI number but not one of this vGIC's.
            vm.Vcpu.SetPmuInterrupt(100);
            AssertErrno(Errno.EINVAL, () => vm.Vcpu.InitPmu());
            AssertErrno(Errno.EINVAL, () => vm.Vcpu.Run());
        }
        using (var vm = new PmuVm(kvm, 1))
        using (var gic = vm.Gic(interrupts: 64))
        {
            gic.InitializeVgic();
            vm.Vcpu.SetPmuInterrupt(63);
            vm.Vcpu.InitPmu();
            AssertRuns(vm.Vcpu);
        }
    }

    [ConformanceCase(PmuEmulC + " kvm_arm_pmu_v3_init / kvm_arm_pmu_v3_enable without an in-kernel irqchip: INIT needs no IRQ and " +
                     "the vCPU runs; a vGIC created after INIT leaves the PMU without a valid IRQ (KVM_RUN EINVAL)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_pmu_init_without_a_vgic(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequirePmu(ctx, kvm);
        using (var vm = new PmuVm(kvm, 1))
        {
            AssertErrno(Errno.EINVAL, () => vm.Vcpu.Run());
            vm.Vcpu.InitPmu();
            AssertErrno(Errno.EINVAL, () => vm.Vcpu.GetPmuInterrupt());
            AssertRuns(vm.Vcpu);
        }
        using (var vm = new PmuVm(kvm, 1))
        {
            vm.Vcpu.InitPmu();
            using var gic = vm.Gic();
            gic.InitializeVgic();
            AssertErrno(Errno.EINVAL, () => vm.Vcpu.Run());
        }
    }

    [ConformanceCase(PmuEmulC + " kvm_arm_pmu_v3_set_nr_counters (at most kvm_arm_pmu_get_max_counters: EINVAL; PMCR_EL0.N follows) " +
                     "as vpmu_counter_access.c test_create_vpmu_vm_with_nr_counters / run_error_test, kvm_arm_pmu_v3_set_pmu " +
                     "(no host PMU with that perf type: ENXIO)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_pmu_counter_count(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequirePmu(ctx, kvm);
        uint max;
        using (var vm = new PmuVm(kvm, 1))
            max = (uint)((vm.Vcpu.GetOneReg(KvmArm64PmuRegs.PMCR_EL0) >> 11) & 0x1f);
        // ARMV8_PMU_MAX_GENERAL_COUNTERS = 31.
        for (uint n = 0; n <= 31; n++)
        {
            using var vm = new PmuVm(kvm, 1);
            using var gic = vm.Gic();
            gic.InitializeVgic();
            vm.Vcpu.SetPmuInterrupt(PmuPpi);
            if (n > max)
            {
                AssertErrno(Errno.EINVAL, () => vm.Vcpu.SetPmuCounterCount(n));
                Assert.Equal(max, (uint)((vm.Vcpu.GetOneReg(KvmArm64PmuRegs.PMCR_EL0) >> 11) & 0x1f));
                continue;
            }
            vm.Vcpu.SetPmuCounterCount(n);
            vm.Vcpu.InitPmu();
            Assert.Equal(n, (uint)((vm.Vcpu.GetOneReg(KvmArm64PmuRegs.PMCR_EL0) >> 11) & 0x1f));
        }
        using (var vm = new PmuVm(kvm, 1))
        {
            // Perf types are small non-negative numbers: -1 names no PMU.
            AssertErrno(Errno.ENXIO, () => vm.Vcpu.SetPmu(-1));
            var attr = new kvm_device_attr { group = KVM_ARM_VCPU_PMU_V3_CTRL, attr = KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, addr = 0 };
            AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Vcpu.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "SET_NR_COUNTERS from addr 0");
        }
    }

    [ConformanceCase(PmuEmulC + " KVM_ARM_VCPU_PMU_V3_FILTER: copy_from_user (EFAULT), a range past the host PMU's event space or an " +
                     "action other than ALLOW/DENY (EINVAL), EBUSY once the VM ran (KVM_ARCH_FLAG_HAS_RAN_ONCE)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_pmu_event_filter(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequirePmu(ctx, kvm);
        using var vm = new PmuVm(kvm, 2);
        var (v0, v1) = (vm.Vcpus[0], vm.Vcpus[1]);
        var attr = new kvm_device_attr { group = KVM_ARM_VCPU_PMU_V3_CTRL, attr = KVM_ARM_VCPU_PMU_V3_FILTER, addr = 0 };
        AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(v0.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "FILTER from addr 0");
        // Every PMUv3 host has at least the 10-bit event space of PMUv3 (IMP); 0xffff + 2 passes any.
        AssertErrno(Errno.EINVAL, () => v0.SetPmuEventFilter(0xffff, 2, allow: true));
        v0.SetPmuEventFilter(0x11, 1, allow: true);
        v1.SetPmuEventFilter(0x08, 2, allow: false);
        v0.SetPmuEventFilter(0, 0, allow: false);
        // An action other than ALLOW (0) / DENY (1): struct kvm_pmu_event_filter { base_event 0, nevents 1, action 2 }.
        byte[] bad = GC.AllocateArray<byte>(8, pinned: true);
        bad[2] = 1;
        bad[4] = 2;
        attr.addr = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(bad, 0);
        AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(v0.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "FILTER action 2");
        GC.KeepAlive(bad);
        v0.InitPmu();
        AssertRuns(v0);
        // v1's PMU is not created yet, but the VM has run: kvm_vm_has_ran_once.
        AssertErrno(Errno.EBUSY, () => v1.SetPmuEventFilter(0x11, 1, allow: true));
        // (v1 does not run: PSCI SYSTEM_OFF stopped every vCPU of the VM, its KVM_RUN would sleep.)
        v1.InitPmu();
    }

    [ConformanceCase("arch/arm64/kvm/arch_timer.c kvm_timer_enable → timer_irqs_are_valid: at the first KVM_RUN the timers claim " +
                     "their PPIs (27, 30) with kvm_vgic_set_owner, which fails for a PPI the PMU owns since KVM_ARM_VCPU_PMU_V3_INIT " +
                     "(EINVAL)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_pmu_irq_must_not_be_a_timer_ppi(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequirePmu(ctx, kvm);
        using var vm = new PmuVm(kvm, 1);
        using var gic = vm.Gic();
        gic.InitializeVgic();
        vm.Vcpu.SetPmuInterrupt(27);
        vm.Vcpu.InitPmu();
        AssertErrno(Errno.EINVAL, () => vm.Vcpu.Run());
    }
}
