// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64VcpuAttrs;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Stolen time (Emulation/Arm64/Arm64PvTime.cs) against arch/arm64/kvm/pvtime.c kvm_arm_pvtime_set_attr / get_attr /
/// has_attr, arm.c KVM_CAP_STEAL_TIME and hypercalls.c's ARM_SMCCC_HV_PV_TIME_FEATURES / _ST (6.18).
/// </summary>
public class Arm64PvTimeTests
{
    private const ulong RoGpa = 0x10_0000;

    private sealed class Setup : Arm64TestVm
    {
        public Setup(Action<A64Assembler>? program = null)
            : base(program ?? Arm64Guest.SystemOff)
        {
            RoHost = Vm.AllocateMemory(0x1_0000);
            RoSlot = Vm.AddMemorySlot(1, RoGpa, RoHost, MemorySlotFlags.ReadOnly);
            for (int i = 0; i < 2; i++) AddVcpu();
        }

        public AnonymousMemory RoHost { get; }

        public MemorySlot RoSlot { get; }

        public long Attr(uint request, ulong attribute, ulong addr)
        {
            var attr = new kvm_device_attr { group = KVM_ARM_VCPU_PVTIME_CTRL, attr = attribute, addr = addr };
            return Kernel.Ioctl(Vcpus[0].Handle, request, Raw.Bytes(ref attr));
        }

        protected override void DisposeExtras()
        {
            RoSlot.Dispose();
            RoHost.Dispose();
        }
    }

    private static Errno Fails(Action action) => Assert.Throws<KvmException>(action).Errno;

    [Fact]
    public void Steal_time_is_supported_on_the_emulated_arm64_host()
    {
        Assert.Equal(187, KvmArm64PvTime.KVM_CAP_STEAL_TIME);
        using var s = new Setup();
        // arm.c: "case KVM_CAP_STEAL_TIME: r = kvm_arm_pvtime_supported();" — sched_info_on() [D].
        Assert.Equal(1, s.Kvm.CheckExtension(KvmArm64PvTime.KVM_CAP_STEAL_TIME));
        Assert.Equal(1, s.Vm.CheckExtension(KvmArm64PvTime.KVM_CAP_STEAL_TIME));
        Assert.True(s.Vcpus[0].HasStealTime());
        // kvm_arm_pvtime_has_attr / set / get: only KVM_ARM_VCPU_PVTIME_IPA.
        Assert.Equal(-(long)Errno.ENXIO, s.Attr(KvmIoctls.KVM_HAS_DEVICE_ATTR, 1, 0));
        Assert.Equal(-(long)Errno.ENXIO, s.Attr(KvmIoctls.KVM_SET_DEVICE_ATTR, 1, 0));
        Assert.Equal(-(long)Errno.ENXIO, s.Attr(KvmIoctls.KVM_GET_DEVICE_ATTR, 1, 0));
        // An unknown vCPU attribute group is ENXIO (guest.c "default: ret = -ENXIO").
        var attr = new kvm_device_attr { group = 3, attr = 0 };
        Assert.Equal(-(long)Errno.ENXIO, s.Kernel.Ioctl(s.Vcpus[0].Handle, KvmIoctls.KVM_HAS_DEVICE_ATTR, Raw.Bytes(ref attr)));
    }

    [Fact]
    public void The_ipa_is_per_vcpu_aligned_in_a_writable_memslot_and_set_once()
    {
        using var s = new Setup();
        var v = s.Vcpus[0];
        // Before a set: vcpu->arch.steal.base = INVALID_GPA.
        Assert.Null(v.GetStealTimeIpa());
        Assert.Equal(Errno.EINVAL, Fails(() => v.SetStealTimeIpa(0x8020)));
        // kvm_is_error_hva(gfn_to_hva(...)): no memslot, or a read-only one.
        Assert.Equal(Errno.EINVAL, Fails(() => v.SetStealTimeIpa(0x20_0000)));
        Assert.Equal(Errno.EINVAL, Fails(() => v.SetStealTimeIpa(RoGpa)));
        Assert.Null(v.GetStealTimeIpa());
        // get_user / put_user of a u64.
        Assert.Equal(Raw.EFAULT, s.Attr(KvmIoctls.KVM_SET_DEVICE_ATTR, KVM_ARM_VCPU_PVTIME_IPA, 8));
        Assert.Equal(Raw.EFAULT, s.Attr(KvmIoctls.KVM_GET_DEVICE_ATTR, KVM_ARM_VCPU_PVTIME_IPA, 8));
        v.SetStealTimeIpa(0x8040);
        Assert.Equal(0x8040UL, v.GetStealTimeIpa());
        // Alignment is checked before "already set".
        Assert.Equal(Errno.EINVAL, Fails(() => v.SetStealTimeIpa(0x8041)));
        Assert.Equal(Errno.EEXIST, Fails(() => v.SetStealTimeIpa(0x8040)));
        Assert.Equal(Errno.EEXIST, Fails(() => v.SetStealTimeIpa(0x20_0000)));
        // Per vCPU: the other one still has none and may take another address.
        Assert.Null(s.Vcpus[1].GetStealTimeIpa());
        s.Vcpus[1].SetStealTimeIpa(0x8080);
        // KVM_ARM_VCPU_INIT again does not reset it (only kvm_arch_vcpu_create sets INVALID_GPA).
        var init = s.Vm.PreferredTarget();
        init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2;
        v.Init(init);
        Assert.Equal(0x8040UL, v.GetStealTimeIpa());
    }

    private static void PvTimeProgram(A64Assembler a)
    {
        // x19 = PV_TIME_FEATURES(PV_TIME_ST), x20 = PV_TIME_FEATURES(PV_TIME_FEATURES), x21 = PV_TIME_ST,
        // x22 = PV_TIME_FEATURES(an unknown id), x23 = x1 after the last call.
        a.MovImm(X(0), Arm64PvTime.PvTimeFeatures);
        a.MovImm(X(1), Arm64PvTime.PvTimeSt);
        a.Hvc();
        a.Mov(X(19), X(0));
        a.MovImm(X(0), Arm64PvTime.PvTimeFeatures);
        a.MovImm(X(1), Arm64PvTime.PvTimeFeatures);
        a.Hvc();
        a.Mov(X(20), X(0));
        a.MovImm(X(0), Arm64PvTime.PvTimeSt);
        a.MovImm(X(1), 0x1234);
        a.Hvc();
        a.Mov(X(21), X(0));
        a.Mov(X(23), X(1));
        a.MovImm(X(0), Arm64PvTime.PvTimeFeatures);
        a.MovImm(X(1), 0x8400_0000);
        a.Hvc();
        a.Mov(X(22), X(0));
        Arm64Guest.SystemOff(a);
    }

    [Fact]
    public void The_pv_time_hypercalls_answer_once_the_ipa_is_set_and_st_zeroes_the_structure()
    {
        using var s = new Setup(PvTimeProgram);
        var v = s.Vcpus[0];
        s.Host.Fill(0x9000, 64, 0xff);
        s.Host.Fill(0x9040, 8, 0xee);
        v.SetStealTimeIpa(0x9000);
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, v.RunBounded().Reason);
        Assert.Equal(0UL, v.GetX(19));
        Assert.Equal(0UL, v.GetX(20));
        Assert.Equal(0x9000UL, v.GetX(21));
        Assert.Equal(0UL, v.GetX(23));
        Assert.Equal(Psci.NotSupported, v.GetX(22));
        // kvm_init_stolen_time: the zeroed struct pvclock_vcpu_stolen_time (64 bytes), nothing past it.
        byte[] st = new byte[72];
        s.Host.Read(0x9000, st);
        Assert.All(st[..64], b => Assert.Equal(0, b));
        Assert.All(st[64..], b => Assert.Equal(0xee, b));
    }

    [Fact]
    public void Without_an_ipa_or_with_pv_time_off_in_the_bitmap_the_calls_are_not_supported()
    {
        using (var s = new Setup(PvTimeProgram))
        {
            var v = s.Vcpus[0];
            Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, v.RunBounded().Reason);
            foreach (int r in new[] { 19, 20, 21, 22 }) Assert.Equal(Psci.NotSupported, v.GetX(r));
        }
        using (var s = new Setup(PvTimeProgram))
        {
            var v = s.Vcpus[0];
            v.SetStealTimeIpa(0x9000);
            s.Host.Fill(0x9000, 64, 0xff);
            // kvm_smccc_test_fw_bmap: KVM_REG_ARM_STD_HYP_BIT_PV_TIME cleared → SMCCC_RET_NOT_SUPPORTED, nothing written.
            v.SetOneReg(KvmArm64FwRegs.KVM_REG_ARM_STD_HYP_BMAP, 0);
            Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, v.RunBounded().Reason);
            foreach (int r in new[] { 19, 20, 21, 22 }) Assert.Equal(Psci.NotSupported, v.GetX(r));
            Assert.Equal(0xffUL, s.Host.Read<byte>(0x9000));
        }
    }
}
