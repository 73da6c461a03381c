// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Abi.Arm64.KvmArm64VcpuAttrs;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Emulator-only parts of the KVM_ARM_VCPU_PMU_V3_CTRL model (Emulation/Arm64/Arm64PmuAttrs.cs, pmu-emul.c 6.18): the
/// emulated host's one PMU for KVM_ARM_VCPU_PMU_V3_SET_PMU, the event-filter bitmap, what survives a re-init, the
/// VM-wide PMU feature of a vCPU not yet initialised; and DISR_EL1 / DACR32_EL2 / IFSR32_EL2 / FPEXC32_EL2
/// (sys_regs.c sys_reg_descs[]).
/// </summary>
public class Arm64PmuAttributeTests
{
    private const ulong Dist = 0x0800_0000, Redist = 0x080A_0000;

    private static KvmSharp.Vcpu InitPmuVcpu(Vm vm, int id)
    {
        var vcpu = vm.CreateVcpu(id);
        var init = vm.PreferredTarget();
        init.features[0] |= (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) | (1u << KvmArm64Constants.KVM_ARM_VCPU_PMU_V3);
        vcpu.Init(init);
        return vcpu;
    }

    private static uint PmcrN(KvmSharp.Vcpu vcpu) => (uint)((vcpu.GetOneReg(KvmArm64PmuRegs.PMCR_EL0) >> 11) & 0x1f);

    [Fact]
    public void Abi_values_are_the_uapi_ones()
    {
        Assert.Equal(0u, KVM_ARM_VCPU_PMU_V3_CTRL);
        Assert.Equal(4UL, KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS);
        Assert.Equal(1u, KVM_ARM_VCPU_TIMER_CTRL);
        Assert.Equal(2u, KVM_ARM_VCPU_PVTIME_CTRL);
        Assert.Equal(8, System.Runtime.CompilerServices.Unsafe.SizeOf<kvm_pmu_event_filter>());
        Assert.Equal(0x6030_0000_0013_C609UL, KvmArm64ShadowRegs.DISR_EL1);
        Assert.Equal(0x6030_0000_0013_E180UL, KvmArm64ShadowRegs.DACR32_EL2);
        Assert.Equal(0x6030_0000_0013_E281UL, KvmArm64ShadowRegs.IFSR32_EL2);
        Assert.Equal(0x6030_0000_0013_E298UL, KvmArm64ShadowRegs.FPEXC32_EL2);
    }

    [Fact]
    public void Set_pmu_takes_the_emulated_hosts_pmu_and_resets_the_counter_count()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        using var vm = kvm.CreateVm();
        using var vcpu = InitPmuVcpu(vm, 0);
        Assert.Equal((uint)Arm64PmuVm.MaxCounters, PmcrN(vcpu));
        vcpu.SetPmuCounterCount(2);
        Assert.Equal(2u, PmcrN(vcpu));
        Assert.Equal(Errno.ENXIO, Assert.Throws<KvmException>(() => vcpu.SetPmu(Arm64PmuAttrs.HostPmuType + 1)).Errno);
        Assert.Equal(2u, PmcrN(vcpu));
        // kvm_arm_set_pmu: nr_pmu_counters = kvm_arm_pmu_get_max_counters of the chosen PMU.
        vcpu.SetPmu(Arm64PmuAttrs.HostPmuType);
        Assert.Equal((uint)Arm64PmuVm.MaxCounters, PmcrN(vcpu));
        vcpu.InitPmu();
        Assert.Equal(Errno.EBUSY, Assert.Throws<KvmException>(() => vcpu.SetPmu(Arm64PmuAttrs.HostPmuType)).Errno);
    }

    [Fact]
    public void Set_pmu_is_ebusy_once_the_vm_ran()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        using var vm = kvm.CreateVm();
        using var host = vm.AllocateMemory(Arm64Guest.Size);
        host.Write(Arm64Guest.CodeGpa, Arm64Guest.Assemble(Arm64Guest.SystemOff));
        using var slot = vm.AddMemorySlot(0, 0, host);
        using var v0 = InitPmuVcpu(vm, 0);
        using var v1 = InitPmuVcpu(vm, 1);
        v0.SetPc(Arm64Guest.CodeGpa);
        v0.InitPmu();
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, v0.RunBounded().Reason);
        Assert.Equal(Errno.EBUSY, Assert.Throws<KvmException>(() => v1.SetPmu(Arm64PmuAttrs.HostPmuType)).Errno);
        // An unknown PMU is ENXIO before the has-ran-once check (kvm_arm_pmu_v3_set_pmu's loop finds nothing).
        Assert.Equal(Errno.ENXIO, Assert.Throws<KvmException>(() => v1.SetPmu(-5)).Errno);
    }

    [Fact]
    public void The_first_filter_sets_the_default_of_the_others()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using var kvm = Kvm.Open(kernel);
        using (var vm = kvm.CreateVm())
        using (var vcpu = InitPmuVcpu(vm, 0))
        {
            vcpu.SetPmuEventFilter(0x10, 4, allow: true);
            vcpu.SetPmuEventFilter(0x12, 1, allow: false);
            var filter = Filter(kernel);
            Assert.Equal(Arm64PmuAttrs.NrEvents / 64, filter.Length);
            Assert.Equal((1UL << 0x10) | (1UL << 0x11) | (1UL << 0x13), filter[0]);
            Assert.All(filter.Skip(1), w => Assert.Equal(0UL, w));
        }
        using (var vm = kvm.CreateVm())
        using (var vcpu = InitPmuVcpu(vm, 0))
        {
            vcpu.SetPmuEventFilter(0xffc0, 0x40, allow: false);
            var filter = Filter(kernel);
            Assert.Equal(0UL, filter[^1]);
            Assert.All(filter.SkipLast(1), w => Assert.Equal(ulong.MaxValue, w));
            // base_event + nevents == 1 << 16 is the largest range; one more is EINVAL and changes nothing.
            Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => vcpu.SetPmuEventFilter(0xffc1, 0x40, allow: true)).Errno);
            Assert.Equal(0UL, Filter(kernel)[^1]);
        }
    }

    /// <summary>The last VM's kvm->arch.pmu_filter.</summary>
    private static ulong[] Filter(EmulatedKernel kernel)
    {
        var kvm = kernel.InvariantView.Vms[^1];
        return Arm64VmState.Of(kvm).Pmu.Filter!;
    }

    [Fact]
    public void A_reinit_keeps_the_irq_and_the_created_pmu_and_an_uninitialised_vcpu_of_a_pmu_vm_has_the_attributes()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        using var vm = kvm.CreateVm();
        using var v0 = InitPmuVcpu(vm, 0);
        using var v1 = vm.CreateVcpu(1);
        // kvm_vcpu_has_pmu reads kvm->arch.vcpu_features: v1 has no KVM_ARM_VCPU_INIT yet.
        Assert.True(v1.HasPmuAttribute(KVM_ARM_VCPU_PMU_V3_FILTER));
        using var gic = vm.CreateVgicV3(Dist, Redist, 2);
        v1.SetPmuInterrupt(23);
        gic.InitializeVgic();
        v0.SetPmuInterrupt(23);
        v0.InitPmu();
        var init = vm.PreferredTarget();
        init.features[0] |= (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) | (1u << KvmArm64Constants.KVM_ARM_VCPU_PMU_V3);
        v0.Init(init);
        Assert.Equal(23, v0.GetPmuInterrupt());
        Assert.Equal(Errno.EBUSY, Assert.Throws<KvmException>(() => v0.InitPmu()).Errno);
        Assert.Equal(23, v1.GetPmuInterrupt());
    }

    [Fact]
    public void Shadow_registers_reset_list_and_undef_for_the_guest()
    {
        var vm = new Arm64VmState();
        var cpu = new Arm64Cpu { IdRegs = vm.IdRegs, PmuVm = vm.Pmu };
        cpu.Reset();
        Assert.Equal(0UL, Get(cpu, KvmArm64ShadowRegs.DISR_EL1));
        Assert.Equal(0x700UL, Get(cpu, KvmArm64ShadowRegs.FPEXC32_EL2));
        Assert.Equal(Arm64Cpu.ResetUnknown, Get(cpu, KvmArm64ShadowRegs.DACR32_EL2));
        Assert.Equal(Arm64Cpu.ResetUnknown, Get(cpu, KvmArm64ShadowRegs.IFSR32_EL2));
        foreach (ulong id in new[] { KvmArm64ShadowRegs.DISR_EL1, KvmArm64ShadowRegs.DACR32_EL2, KvmArm64ShadowRegs.IFSR32_EL2, KvmArm64ShadowRegs.FPEXC32_EL2 })
        {
            Assert.Equal(0, Set(cpu, id, 0xdead_beef_0000_0001));
            Assert.Equal(0xdead_beef_0000_0001UL, Get(cpu, id));
        }
        var ids = Arm64SysRegs.Indices(cpu).ToList();
        // walk_sys_regs: encoding order — DISR_EL1 right after VBAR_EL1, the op1 = 4 shadows after every op1 = 3 register.
        Assert.Equal(ids.IndexOf(KvmArm64SysRegs.VBAR_EL1) + 1, ids.IndexOf(KvmArm64ShadowRegs.DISR_EL1));
        int dacr = ids.IndexOf(KvmArm64ShadowRegs.DACR32_EL2);
        Assert.Equal([KvmArm64ShadowRegs.DACR32_EL2, KvmArm64ShadowRegs.IFSR32_EL2, KvmArm64ShadowRegs.FPEXC32_EL2], ids.Skip(dacr).Take(3));
        var sysregs = ids.Where(Arm64SysRegs.IsSysRegId).Select(id => id & 0xffff).ToArray();
        Assert.Equal(sysregs.Order(), sysregs);
        foreach (string name in new[] { "DACR32_EL2", "IFSR32_EL2", "FPEXC32_EL2" })
        {
            Assert.Equal(SysRegAccess.Undefined, Arm64SysRegs.GuestRead(cpu, Arm64SysRegs.Index(name), out _));
            Assert.Equal(SysRegAccess.Undefined, Arm64SysRegs.GuestWrite(cpu, Arm64SysRegs.Index(name), 0));
        }
    }

    [Fact]
    public void The_guest_reads_back_what_it_wrote_to_disr_el1()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        ulong disr = KvmArm64SysRegs.Encoding(3, 0, 12, 1, 1);
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            a.MovImm(X(1), 0x8000_0000_0000_1234);
            a.Msr(disr, X(1));
            // x19, not x0..x3: SYSTEM_OFF sets x0..x3 to INTERNAL_FAILURE, 0, 0, 0 (psci.c kvm_psci_0_2_call).
            a.Mrs(X(19), disr);
            Arm64Guest.SystemOff(a);
        });
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, guest.Vcpu.RunBounded().Reason);
        Assert.Equal(0x8000_0000_0000_1234UL, guest.Vcpu.GetX(19));
        Assert.Equal(0x8000_0000_0000_1234UL, guest.Vcpu.GetOneReg(KvmArm64ShadowRegs.DISR_EL1));
    }

    private static ulong Get(Arm64Cpu cpu, ulong id)
    {
        Span<byte> buffer = stackalloc byte[16];
        Assert.Equal(0, Arm64SysRegs.Get(cpu, id, buffer, out _));
        return BinaryPrimitives.ReadUInt64LittleEndian(buffer);
    }

    private static long Set(Arm64Cpu cpu, ulong id, ulong value) =>
        Arm64SysRegs.Set(cpu, id, size =>
        {
            byte[] bytes = new byte[size];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
            return bytes;
        });
}
