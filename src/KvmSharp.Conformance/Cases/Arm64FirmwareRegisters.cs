// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using Xunit;
using static KvmSharp.Abi.Arm64.KvmArm64FwRegs;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// arm64 firmware pseudo-registers (arch/arm64/kvm/hypercalls.c kvm_arm_get_fw_reg / kvm_arm_set_fw_reg /
/// kvm_arm_set_fw_reg_bmap), ported from tools/testing/selftests/kvm/arm64/hypercalls.c (test_fw_regs_before_vm_start,
/// test_fw_regs_after_vm_start) and psci_test.c; plus KVM_GET_REG_LIST (guest.c kvm_arm_copy_reg_indices: core,
/// firmware, timer, system registers) with every listed register readable and writable with its own value
/// (get-reg-list.c). This host is x86_64: every case is skipped on the real kernel.
/// </summary>
public static class Arm64FirmwareRegisters
{
    private const string HypercallsC = "arch/arm64/kvm/hypercalls.c";
    private const string HypercallsTest = "tools/testing/selftests/kvm/arm64/hypercalls.c";

    /// <summary>A guest that asks PSCI_VERSION (kept in x19) and PSCI_FEATURES(PSCI_FEATURES) (kept in x20), then powers off.</summary>
    private static void PsciProbe(A64Assembler a)
    {
        a.MovImm(X(0), 0x8400_0000);
        a.Hvc();
        a.Mov(X(19), X(0));
        a.MovImm(X(0), 0x8400_000A);
        a.MovImm(X(1), 0x8400_000A);
        a.Hvc();
        a.Mov(X(20), X(0));
        Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        Arm64Guest.SystemOff(a);
    }

    [ConformanceCase(HypercallsC + " kvm_arm_set_fw_reg KVM_REG_ARM_PSCI_VERSION (0.2/1.0/1.1 with KVM_ARM_VCPU_PSCI_0_2, else EINVAL); " +
                     "arch/arm64/kvm/psci.c kvm_psci_call dispatching on the chosen version", Profile = EmulatedProfile.Arm64)]
    public static void arm64_psci_version_register(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        foreach (var (version, featuresAnswer) in new[] { (KVM_ARM_PSCI_1_1, 0UL), (KVM_ARM_PSCI_1_0, 0UL), (KVM_ARM_PSCI_0_2, ulong.MaxValue) })
        {
            using var guest = Arm64Guest.Create(kvm, PsciProbe);
            var vcpu = guest.Vcpu;
            // KVM_ARM_PSCI_LATEST by default.
            Assert.Equal(KVM_ARM_PSCI_1_1, vcpu.GetOneReg(KVM_REG_ARM_PSCI_VERSION));
            AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KVM_REG_ARM_PSCI_VERSION, KVM_ARM_PSCI_0_1));
            AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KVM_REG_ARM_PSCI_VERSION, 0x1_0002));
            vcpu.SetOneReg(KVM_REG_ARM_PSCI_VERSION, version);
            Assert.Equal(version, vcpu.GetOneReg(KVM_REG_ARM_PSCI_VERSION));
            Arm64Guests.AssertUcall(vcpu, Arm64Guest.UcallDone, () => "the PSCI probe did not finish");
            Assert.Equal(version, vcpu.GetX(19));
            Assert.Equal(featuresAnswer, vcpu.GetX(20));
        }
    }

    [ConformanceCase(HypercallsC + " kvm_psci_version without KVM_ARM_VCPU_PSCI_0_2: PSCI 0.1, and only 0.1 may be written",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_psci_0_1_without_the_feature(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        vcpu.Init(vm.PreferredTarget());
        Assert.Equal(KVM_ARM_PSCI_0_1, vcpu.GetOneReg(KVM_REG_ARM_PSCI_VERSION));
        vcpu.SetOneReg(KVM_REG_ARM_PSCI_VERSION, KVM_ARM_PSCI_0_1);
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KVM_REG_ARM_PSCI_VERSION, KVM_ARM_PSCI_1_1));
    }

    /// <summary>
    /// The workaround registers: each reads a level in range; writing the level read back is accepted, anything beyond
    /// the level mask or above what the host offers is EINVAL; WORKAROUND_2's ENABLED bit needs level AVAIL.
    /// </summary>
    [ConformanceCase(HypercallsC + " get_kernel_wa_level, kvm_arm_set_fw_reg SMCCC_ARCH_WORKAROUND_1/2/3", Profile = EmulatedProfile.Arm64)]
    public static void arm64_smccc_workaround_levels(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        vcpu.InitPreferred();
        foreach (ulong id in new[] { KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3 })
        {
            ulong level = vcpu.GetOneReg(id);
            Assert.True(level <= 2, $"level {level}");
            vcpu.SetOneReg(id, level);
            if (level > 0) vcpu.SetOneReg(id, 0);
            AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(id, level + 1));
            AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(id, 1UL << 4));
        }
        ulong wa2 = vcpu.GetOneReg(KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2);
        Assert.True(wa2 <= KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_REQUIRED, $"level {wa2}");
        vcpu.SetOneReg(KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2, wa2);
        vcpu.SetOneReg(KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_UNKNOWN);
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2,
            KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_AVAIL | KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_ENABLED));
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2, 4));
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2, 1UL << 5));
        // An id in the firmware space no register has: ENOENT.
        AssertErrno(Errno.ENOENT, () => vcpu.GetOneReg(KVM_REG_ARM_FW_REG(0x77)));
        AssertErrno(Errno.ENOENT, () => vcpu.SetOneReg(KVM_REG_ARM_FW_FEAT_BMAP_REG(0x77), 0));
    }

    /// <summary>
    /// test_fw_regs_before_vm_start / test_fw_regs_after_vm_start: each bitmap reads its defaults, refuses an unknown
    /// bit (EINVAL), takes any subset before the first run; after it, a different value is EBUSY and the same is fine.
    /// </summary>
    [ConformanceCase(HypercallsTest + " test_fw_regs_before_vm_start / test_fw_regs_after_vm_start (" + HypercallsC +
                     " kvm_arm_set_fw_reg_bmap)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_hypercall_bitmaps(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            Arm64Guest.SystemOff(a);
        });
        var vcpu = guest.Vcpu;
        var bitmaps = new[] { KVM_REG_ARM_STD_BMAP, KVM_REG_ARM_STD_HYP_BMAP, KVM_REG_ARM_VENDOR_HYP_BMAP };
        foreach (ulong id in bitmaps)
        {
            ulong features = vcpu.GetOneReg(id);
            Assert.NotEqual(0UL, features);
            // The highest bit above every known feature is refused.
            AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(id, features | (1UL << 63)));
            vcpu.SetOneReg(id, 0);
            Assert.Equal(0UL, vcpu.GetOneReg(id));
            vcpu.SetOneReg(id, features);
        }
        Arm64Guests.AssertUcall(vcpu, Arm64Guest.UcallDone, () => "the guest did not run");
        foreach (ulong id in bitmaps)
        {
            ulong features = vcpu.GetOneReg(id);
            AssertErrno(Errno.EBUSY, () => vcpu.SetOneReg(id, 0));
            vcpu.SetOneReg(id, features);
        }
    }

    /// <summary>
    /// get-reg-list.c: KVM_GET_REG_LIST starts with the core registers, then the firmware registers in
    /// kvm_arm_fw_reg_ids[] order, then the timer registers of timer_reg_list[], then system registers in ascending
    /// encoding (walk_sys_regs), then the 14 demux CCSIDR ids (write_demux_regids); each listed 64-bit register reads, and writing back the value it read is accepted
    /// (before the VM runs). A system-register id not in the list is ENOENT.
    /// </summary>
    [ConformanceCase("arch/arm64/kvm/guest.c kvm_arm_copy_reg_indices (copy_core_reg_indices, kvm_arm_copy_fw_reg_indices, " +
                     "copy_timer_indices, kvm_arm_copy_sys_reg_indices); tools/testing/selftests/kvm/arm64/get-reg-list.c",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_reg_list_order_and_round_trip(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        vcpu.InitPreferred();
        var ids = vcpu.GetRegisterList();
        int fw = Array.IndexOf(ids, KVM_REG_ARM_PSCI_VERSION);
        Assert.True(fw > 0, "KVM_REG_ARM_PSCI_VERSION is not listed");
        Assert.All(ids.Take(fw), id => Assert.Equal(KvmArm64Regs.KVM_REG_ARM_CORE, id & KvmArm64Regs.KVM_REG_ARM_COPROC_MASK));
        ulong[] expectedFw =
        [
            KVM_REG_ARM_PSCI_VERSION, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2,
            KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3, KVM_REG_ARM_STD_BMAP, KVM_REG_ARM_STD_HYP_BMAP, KVM_REG_ARM_VENDOR_HYP_BMAP,
            KVM_REG_ARM_VENDOR_HYP_BMAP_2,
        ];
        Assert.Equal(expectedFw, ids.Skip(fw).Take(expectedFw.Length));
        ulong[] expectedTimer =
        [
            KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CTL, KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT, KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CVAL,
            KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CTL, KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT, KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CVAL,
        ];
        Assert.Equal(expectedTimer, ids.Skip(fw + expectedFw.Length).Take(expectedTimer.Length));
        var rest = ids.Skip(fw + expectedFw.Length + expectedTimer.Length).ToArray();
        // kvm_arm_copy_sys_reg_indices: walk_sys_regs, then write_demux_regids (CSSELR_MAX = 14 CCSIDR ids, 32-bit).
        var sys = rest.SkipLast(14).ToArray();
        Assert.Equal(Enumerable.Range(0, 14).Select(KvmArm64CacheRegs.Ccsidr), rest.TakeLast(14));
        Assert.All(sys, id => Assert.Equal(KvmArm64SysRegs.KVM_REG_ARM64_SYSREG, id & KvmArm64Regs.KVM_REG_ARM_COPROC_MASK));
        Assert.Equal(sys.OrderBy(id => id), sys);
        foreach (ulong id in new[] { KvmArm64IdRegs.MIDR_EL1, KvmArm64SysRegs.MPIDR_EL1, KvmArm64IdRegs.ID_AA64PFR0_EL1, KvmArm64IdRegs.CTR_EL0 })
            Assert.Contains(id, sys);
        foreach (ulong id in ids.Where(id => (id & KvmArm64Regs.KVM_REG_SIZE_MASK) == KvmArm64Regs.KVM_REG_SIZE_U64))
        {
            ulong value = vcpu.GetOneReg(id);
            // The counters move between the read and the write; rewriting them only shifts the offset.
            vcpu.SetOneReg(id, value);
        }
        ulong unlisted = KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 15, 0, 0);
        Assert.DoesNotContain(unlisted, ids);
        AssertErrno(Errno.ENOENT, () => vcpu.GetOneReg(unlisted));
    }
}
