// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// arm64 ID registers (arch/arm64/kvm/sys_regs.c: get_id_reg, set_id_reg, arm64_check_features, set_imp_id_reg,
/// set_id_aa64pfr0_el1, set_id_aa64dfr0_el1), ported from tools/testing/selftests/kvm/arm64/set_id_regs.c: a field
/// may be lowered to a safe value but not raised above the host's (EINVAL, value unchanged), the values are VM-wide and
/// survive KVM_ARM_VCPU_INIT, the guest reads what userspace set, and after the first KVM_RUN only the current value
/// may be written (EBUSY). The assertions are relative to what the kernel reports, so they hold for any host CPU. This
/// host is x86_64: every case is skipped on the real kernel.
/// </summary>
public static class Arm64IdRegisters
{
    private const string SysRegsC = "arch/arm64/kvm/sys_regs.c";
    private const string SetIdRegs = "tools/testing/selftests/kvm/arm64/set_id_regs.c";

    private static ulong Field(ulong reg, int shift) => (reg >> shift) & 0xf;

    private static ulong WithField(ulong reg, int shift, ulong value) => (reg & ~(0xfUL << shift)) | ((value & 0xf) << shift);

    [ConformanceCase(SysRegsC + " get_id_reg / read_id_reg: AArch64 ID registers report a CPU with AArch64 at EL0/EL1, unallocated and " +
                     "hidden ones read as zero, every vCPU of a VM reads the same values", Profile = EmulatedProfile.Arm64)]
    public static void arm64_id_registers_read_consistently(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu0 = vm.CreateVcpu(0);
        using var vcpu1 = vm.CreateVcpu(1);
        vcpu0.InitPreferred();
        vcpu1.InitPreferred();
        ulong pfr0 = vcpu0.GetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1);
        Assert.NotEqual(0UL, Field(pfr0, 0)); // EL0
        Assert.NotEqual(0UL, Field(pfr0, 4)); // EL1
        Assert.NotEqual(0UL, vcpu0.GetOneReg(KvmArm64IdRegs.MIDR_EL1) >> 24); // implementer
        // ID_UNALLOCATED(3,3) and ID_HIDDEN(ID_AA64AFR0_EL1): RAZ.
        Assert.Equal(0UL, vcpu0.GetOneReg(KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 3, 3)));
        Assert.Equal(0UL, vcpu0.GetOneReg(KvmArm64IdRegs.ID_AA64AFR0_EL1));
        foreach (ulong id in new[]
                 {
                     KvmArm64IdRegs.MIDR_EL1, KvmArm64IdRegs.ID_AA64PFR0_EL1, KvmArm64IdRegs.ID_AA64ISAR0_EL1,
                     KvmArm64IdRegs.ID_AA64MMFR0_EL1, KvmArm64IdRegs.ID_AA64DFR0_EL1, KvmArm64IdRegs.CTR_EL0,
                 })
        {
            Assert.Equal(vcpu0.GetOneReg(id), vcpu1.GetOneReg(id));
        }
    }

    /// <summary>
    /// test_reg_set_fail / test_reg_set_success for FTR_LOWER_SAFE fields of ID_AA64ISAR0_EL1 and ID_AA64MMFR0_EL1:
    /// one above the current value is EINVAL and leaves the register alone; lowering succeeds and reads back, on every
    /// vCPU (kvm->arch.id_regs), and a second KVM_ARM_VCPU_INIT keeps it (test_reset_preserves_id_regs).
    /// </summary>
    [ConformanceCase(SetIdRegs + " test_reg_set_fail / test_reg_set_success / test_reset_preserves_id_regs (" + SysRegsC +
                     " arm64_check_features: EINVAL above the host's value)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_id_register_fields_only_go_down(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu0 = vm.CreateVcpu(0);
        using var vcpu1 = vm.CreateVcpu(1);
        vcpu0.InitPreferred();
        vcpu1.InitPreferred();
        // ID_AA64ISAR0_EL1 and ID_AA64MMFR0_EL1 unsigned FTR_LOWER_SAFE fields (AES 4, SHA2 12, CRC32 16, ATOMIC 20, BIGEND 8, PARANGE 0).
        foreach (var (id, shift) in new[]
                 {
                     (KvmArm64IdRegs.ID_AA64ISAR0_EL1, 4), (KvmArm64IdRegs.ID_AA64ISAR0_EL1, 12), (KvmArm64IdRegs.ID_AA64ISAR0_EL1, 16),
                     (KvmArm64IdRegs.ID_AA64ISAR0_EL1, 20), (KvmArm64IdRegs.ID_AA64MMFR0_EL1, 8), (KvmArm64IdRegs.ID_AA64MMFR0_EL1, 0),
                 })
        {
            ulong val = vcpu0.GetOneReg(id);
            ulong ftr = Field(val, shift);
            if (ftr < 0xf)
            {
                AssertErrno(Errno.EINVAL, () => vcpu0.SetOneReg(id, WithField(val, shift, ftr + 1)));
                Assert.Equal(val, vcpu0.GetOneReg(id));
            }
            ulong lowered = WithField(val, shift, ftr > 0 ? ftr - 1 : 0);
            vcpu0.SetOneReg(id, lowered);
            Assert.Equal(lowered, vcpu0.GetOneReg(id));
            Assert.Equal(lowered, vcpu1.GetOneReg(id));
        }
        ulong isar0 = vcpu0.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1);
        vcpu0.InitPreferred();
        Assert.Equal(isar0, vcpu0.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1));
    }

    [ConformanceCase(SysRegsC + " set_id_aa64pfr0_el1 (EL0/EL1 may not be removed), set_id_aa64dfr0_el1 (DebugVer below IMP), " +
                     "arm64_check_features on RAZ registers, set_imp_id_reg without KVM_CAP_ARM_WRITABLE_IMP_ID_REGS",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_id_register_special_write_rules(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        vcpu.InitPreferred();
        ulong pfr0 = vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1);
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1, WithField(pfr0, 0, 0)));
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1, WithField(pfr0, 4, 0)));
        ulong dfr0 = vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64DFR0_EL1);
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KvmArm64IdRegs.ID_AA64DFR0_EL1, WithField(dfr0, 0, 5)));
        // An unallocated ID register: only 0 is safe.
        ulong unallocated = KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 7, 7);
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(unallocated, 1));
        vcpu.SetOneReg(unallocated, 0);
        // MIDR_EL1: the current value is accepted, any other is EINVAL (the capability is not enabled).
        ulong midr = vcpu.GetOneReg(KvmArm64IdRegs.MIDR_EL1);
        vcpu.SetOneReg(KvmArm64IdRegs.MIDR_EL1, midr);
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KvmArm64IdRegs.MIDR_EL1, midr ^ 0xf));
        Assert.Equal(midr, vcpu.GetOneReg(KvmArm64IdRegs.MIDR_EL1));
        // AArch32 ID registers: RAZ/USER_WI where the host has no 32-bit EL0, else a sanitised register like the others.
        ulong idPfr0 = vcpu.GetOneReg(KvmArm64IdRegs.ID_PFR0_EL1);
        if (idPfr0 == 0)
        {
            vcpu.SetOneReg(KvmArm64IdRegs.ID_PFR0_EL1, 0x1234);
            Assert.Equal(0UL, vcpu.GetOneReg(KvmArm64IdRegs.ID_PFR0_EL1));
        }
    }

    /// <summary>
    /// test_guest_reg_read after test_vm_ftr_id_regs: the guest's MRS sees the lowered value; once it has run, writing a
    /// different value is EBUSY and the same value is accepted (set_id_reg: kvm_vm_has_ran_once).
    /// </summary>
    [ConformanceCase(SetIdRegs + " test_guest_reg_read; " + SysRegsC + " set_id_reg after kvm_vm_has_ran_once (EBUSY)",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_guest_reads_id_registers_and_they_freeze(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            a.Mrs(X(1), KvmArm64SysRegs.Encoding(3, 0, 0, 6, 0));   // ID_AA64ISAR0_EL1
            a.Mrs(X(2), KvmArm64SysRegs.Encoding(3, 0, 0, 0, 0));   // MIDR_EL1
            a.Mrs(X(3), KvmArm64SysRegs.Encoding(3, 0, 0, 4, 0));   // ID_AA64PFR0_EL1
            a.Mrs(X(4), KvmArm64SysRegs.Encoding(3, 0, 0, 7, 0));   // ID_AA64MMFR0_EL1
            a.Mrs(X(5), KvmArm64SysRegs.Encoding(3, 3, 0, 0, 1));   // CTR_EL0
            a.Mrs(X(6), KvmArm64SysRegs.Encoding(3, 0, 0, 3, 3));   // unallocated: RAZ
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            Arm64Guest.SystemOff(a);
        });
        var vcpu = guest.Vcpu;
        ulong isar0 = vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1);
        ulong lowered = WithField(isar0, 4, 0); // AES: none
        vcpu.SetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1, lowered);
        Arm64Guests.AssertUcall(vcpu, Arm64Guest.UcallDone, () => "the guest did not finish reading its ID registers");
        Assert.Equal(lowered, vcpu.GetX(1));
        Assert.Equal(vcpu.GetOneReg(KvmArm64IdRegs.MIDR_EL1), vcpu.GetX(2));
        Assert.Equal(vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1), vcpu.GetX(3));
        Assert.Equal(vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64MMFR0_EL1), vcpu.GetX(4));
        Assert.Equal(vcpu.GetOneReg(KvmArm64IdRegs.CTR_EL0), vcpu.GetX(5));
        Assert.Equal(0UL, vcpu.GetX(6));
        // After the first run: a change is EBUSY (even a further lowering), the current value is fine.
        AssertErrno(Errno.EBUSY, () => vcpu.SetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1, WithField(lowered, 12, 0)));
        vcpu.SetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1, lowered);
        Assert.Equal(lowered, vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1));
    }

    /// <summary>An MSR to an ID register is UNDEFINED (they are read-only): EC 0 to the current-EL vector, the value stays.</summary>
    [ConformanceCase("Arm ARM: ID registers are read-only, MSR ID_AA64PFR0_EL1 is UNDEFINED", Profile = EmulatedProfile.Arm64)]
    public static void arm64_id_register_msr_is_undefined(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm,
            a =>
            {
                a.Movz(X(1), 0);
                a.Msr(KvmArm64SysRegs.Encoding(3, 0, 0, 4, 0), X(1));
                Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
            },
            syncVector: a =>
            {
                a.Mrs(X(2), KvmArm64SysRegs.Encoding(3, 0, 0, 4, 0));
                Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
                Arm64Guest.SystemOff(a);
            });
        Arm64Guests.AssertUcall(guest.Vcpu, Arm64Guest.UcallDone, () => "MSR ID_AA64PFR0_EL1 did not trap as UNDEFINED");
        Assert.Equal(0UL, guest.Vcpu.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
        Assert.Equal(guest.Vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1), guest.Vcpu.GetX(2));
        Assert.NotEqual(0UL, guest.Vcpu.GetX(2));
    }

    /// <summary>
    /// test_vm_ftr_id_regs' first half: a non-zero reserved word is refused, then the masks of the fields the selftest
    /// changes are all set (ID_AA64ISAR0_EL1.AES, ID_AA64PFR0_EL1.EL0, ID_AA64MMFR0_EL1.PARANGE, ID_AA64DFR0_EL1.DebugVer),
    /// unallocated registers have none, and every field a mask allows can indeed be lowered to 0 where the host's is 0.
    /// </summary>
    [ConformanceCase(SetIdRegs + " test_vm_ftr_id_regs (KVM_ARM_GET_REG_WRITABLE_MASKS: " + SysRegsC + " kvm_vm_ioctl_get_reg_writable_masks)",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_writable_masks(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        vcpu.InitPreferred();
        ulong[] masks = GC.AllocateArray<ulong>(KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE_SIZE, pinned: true);
        byte[] range = new byte[KvmArm64Ioctls.RegMaskRangeSize];
        BitConverter.TryWriteBytes(range, (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(masks, 0));
        range[12] = 1; // reserved[0]
        AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmArm64Ioctls.KVM_ARM_GET_REG_WRITABLE_MASKS, range), "reserved[0] = 1");
        range[12] = 0;
        range[8] = 1; // range = 1
        AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmArm64Ioctls.KVM_ARM_GET_REG_WRITABLE_MASKS, range), "range = 1");
        range[8] = 0;
        long rc = ctx.Kernel.Ioctl(vm.Handle, KvmArm64Ioctls.KVM_ARM_GET_REG_WRITABLE_MASKS, range);
        GC.KeepAlive(masks);
        Assert.Equal(0, rc);
        static int Idx(int crm, int op2) => KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE_IDX(3, 0, 0, crm, op2);
        Assert.Equal(0xfUL << 4, masks[Idx(6, 0)] & (0xfUL << 4));
        Assert.Equal(0xfUL, masks[Idx(4, 0)] & 0xf);
        Assert.Equal(0xfUL, masks[Idx(7, 0)] & 0xf);
        Assert.Equal(0xfUL, masks[Idx(5, 0)] & 0xf);
        Assert.Equal(0UL, masks[Idx(7, 7)]);
        Assert.Equal(0UL, masks[Idx(3, 3)]);
    }
}
