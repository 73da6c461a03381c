// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Abi.Arm64.KvmArm64PtrAuth;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Pointer authentication (Emulation/Arm64/Arm64PtrAuth.cs, Arm64CpuModel.cs) against arch/arm64/kvm/arm.c
/// kvm_has_full_ptr_auth / system_supported_vcpu_features / kvm_vcpu_init_check_features, sys_regs.c PTRAUTH_KEY
/// (ptrauth_visibility) and __kvm_read_sanitised_id_reg, and the get-reg-list selftest's "pauth" sublist (6.18).
/// </summary>
public class Arm64PtrAuthTests
{
    private const uint Address = 1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_ADDRESS;
    private const uint Generic = 1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_GENERIC;
    private const ulong Isar1PauthMask = (0xfUL << 28) | (0xfUL << 24) | (0xfUL << 8) | (0xfUL << 4);

    /// <summary>tools/testing/selftests/kvm/arm64/get-reg-list.c pauth_regs[], in order.</summary>
    private static readonly ulong[] PauthRegs =
    [
        APIAKEYLO_EL1, APIAKEYHI_EL1, APIBKEYLO_EL1, APIBKEYHI_EL1, APDAKEYLO_EL1, APDAKEYHI_EL1,
        APDBKEYLO_EL1, APDBKEYHI_EL1, APGAKEYLO_EL1, APGAKEYHI_EL1,
    ];

    private static EmulatorConfig PauthHost => EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.WithPointerAuth };

    private static void Init(KvmSharp.Vcpu vcpu, Vm vm, uint features)
    {
        var init = vm.PreferredTarget();
        init.features[0] |= (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) | features;
        vcpu.Init(init);
    }

    private static Errno InitFails(KvmSharp.Vcpu vcpu, Vm vm, uint features) =>
        Assert.Throws<KvmException>(() => Init(vcpu, vm, features)).Errno;

    [Fact]
    public void Abi_values_are_the_uapi_ones()
    {
        Assert.Equal(171, KVM_CAP_ARM_PTRAUTH_ADDRESS);
        Assert.Equal(172, KVM_CAP_ARM_PTRAUTH_GENERIC);
        Assert.Equal(0x6030_0000_0013_C108UL, APIAKEYLO_EL1);
        Assert.Equal(0x6030_0000_0013_C119UL, APGAKEYHI_EL1);
    }

    [Fact]
    public void The_default_n1_host_has_no_pointer_authentication()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        Assert.Equal(0, kvm.CheckExtension(KVM_CAP_ARM_PTRAUTH_ADDRESS));
        Assert.Equal(0, kvm.CheckExtension(KVM_CAP_ARM_PTRAUTH_GENERIC));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        // system_supported_vcpu_features clears both bits: -EINVAL for either or both.
        Assert.Equal(Errno.EINVAL, InitFails(vcpu, vm, Address | Generic));
        Assert.Equal(Errno.EINVAL, InitFails(vcpu, vm, Address));
        Init(vcpu, vm, 0);
        var list = vcpu.GetRegisterList();
        Assert.DoesNotContain(list, PauthRegs.Contains);
        Assert.Equal(Errno.ENOENT, Assert.Throws<KvmException>(() => vcpu.GetOneReg(APIAKEYLO_EL1)).Errno);
        Assert.Equal(0UL, vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1) & Isar1PauthMask);
    }

    [Fact]
    public void Address_and_generic_must_be_requested_together()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(PauthHost));
        Assert.Equal(1, kvm.CheckExtension(KVM_CAP_ARM_PTRAUTH_ADDRESS));
        Assert.Equal(1, kvm.CheckExtension(KVM_CAP_ARM_PTRAUTH_GENERIC));
        using var vm = kvm.CreateVm();
        using var v0 = vm.CreateVcpu(0);
        using var v1 = vm.CreateVcpu(1);
        Assert.Equal(Errno.EINVAL, InitFails(v0, vm, Address));
        Assert.Equal(Errno.EINVAL, InitFails(v0, vm, Generic));
        Init(v0, vm, Address | Generic);
        // kvm_vcpu_init_changed: the VM's other vCPUs need the same features.
        Assert.Equal(Errno.EINVAL, InitFails(v1, vm, 0));
        Init(v1, vm, Address | Generic);
    }

    [Fact]
    public void The_keys_are_listed_in_the_pauth_order_only_with_the_features_and_reset_unknown()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(PauthHost));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        Init(vcpu, vm, Address | Generic);
        var list = vcpu.GetRegisterList().ToList();
        int first = list.IndexOf(APIAKEYLO_EL1);
        Assert.True(first > 0);
        Assert.Equal(PauthRegs, list.Skip(first).Take(PauthRegs.Length));
        // walk_sys_regs: encoding order puts the keys right after TCR_EL1 (3,0,2,0,2).
        Assert.Equal(KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 2, 0, 2), list[first - 1]);
        foreach (ulong id in PauthRegs)
        {
            Assert.Equal(Arm64Cpu.ResetUnknown, vcpu.GetOneReg(id));
            vcpu.SetOneReg(id, id ^ 0x5a5a);
            Assert.Equal(id ^ 0x5a5a, vcpu.GetOneReg(id));
        }

        // The same host, a VM without the features: hidden (not listed, ENOENT).
        using var vm2 = kvm.CreateVm();
        using var other = vm2.CreateVcpu(0);
        Init(other, vm2, 0);
        Assert.DoesNotContain(other.GetRegisterList(), PauthRegs.Contains);
        Assert.Equal(Errno.ENOENT, Assert.Throws<KvmException>(() => other.SetOneReg(APGAKEYHI_EL1, 1)).Errno);
    }

    [Fact]
    public void Id_aa64isar1_shows_the_pauth_fields_only_to_a_pauth_vm_and_they_are_not_writable()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(PauthHost));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        Init(vcpu, vm, Address | Generic);
        ulong isar1 = vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1);
        // APA = 1 (QARMA5), GPA = 1, API = GPI = 0.
        Assert.Equal((1UL << 4) | (1UL << 24), isar1 & Isar1PauthMask);
        // ID_WRITABLE(ID_AA64ISAR1_EL1, ~(GPI | GPA | API | APA)): the fields are fixed.
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => vcpu.SetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1, isar1 & ~Isar1PauthMask)).Errno);
        vcpu.SetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1, isar1);

        using var vm2 = kvm.CreateVm();
        using var plain = vm2.CreateVcpu(0);
        Init(plain, vm2, 0);
        ulong plainIsar1 = plain.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1);
        // __kvm_read_sanitised_id_reg: "if (!vcpu_has_ptrauth(vcpu))" the four fields are cleared (and ISAR2's APA3/GPA3).
        Assert.Equal(0UL, plainIsar1 & Isar1PauthMask);
        Assert.Equal(isar1 & ~Isar1PauthMask, plainIsar1);
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => plain.SetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1, isar1)).Errno);
    }

    [Fact]
    public void The_guest_reaches_the_keys_only_with_pointer_authentication()
    {
        var pauthVm = new Arm64VmState(Arm64CpuModel.WithPointerAuth);
        var cpu = new Arm64Cpu { IdRegs = pauthVm.IdRegs, PmuVm = pauthVm.Pmu, HasPtrAuth = true };
        cpu.Reset();
        int lo = Arm64SysRegs.Index("APIAKEYLO_EL1");
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestWrite(cpu, lo, 0x1234));
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestRead(cpu, lo, out ulong value));
        Assert.Equal(0x1234UL, value);
        var plain = new Arm64Cpu { HasPtrAuth = false };
        plain.Reset();
        Assert.Equal(SysRegAccess.Undefined, Arm64SysRegs.GuestRead(plain, lo, out _));
        Assert.Equal(SysRegAccess.Undefined, Arm64SysRegs.GuestWrite(plain, lo, 1));
    }

    [Fact]
    public void Full_pointer_authentication_needs_one_algorithm_for_both_address_and_generic()
    {
        Assert.False(Arm64CpuModel.NeoverseN1.HasFullPtrAuth);
        Assert.True(Arm64CpuModel.WithPointerAuth.HasFullPtrAuth);
        // QARMA3 (ID_AA64ISAR2_EL1) or IMPDEF alone are fine.
        Assert.True(new Arm64CpuModel { Apa3 = 1, Gpa3 = 1 }.HasFullPtrAuth);
        Assert.True(new Arm64CpuModel { Api = 1, Gpi = 1 }.HasFullPtrAuth);
        // Address without generic, two algorithms, or an algorithm split between address and generic are not.
        Assert.False(new Arm64CpuModel { Apa = 1 }.HasFullPtrAuth);
        Assert.False(new Arm64CpuModel { Apa = 1, Gpa = 1, Api = 1, Gpi = 1 }.HasFullPtrAuth);
        Assert.False(new Arm64CpuModel { Apa = 1, Gpi = 1 }.HasFullPtrAuth);
        // FEAT_PAuth2/FPAC raise APA, but GPA must be exactly IMP (1).
        Assert.True(new Arm64CpuModel { Apa = 5, Gpa = 1 }.HasFullPtrAuth);
        Assert.False(new Arm64CpuModel { Apa = 1, Gpa = 2 }.HasFullPtrAuth);
        var config = EmulatorConfig.Arm64() with { Arm64Cpu = new Arm64CpuModel { Apa = 1 } };
        using var kvm = Kvm.Open(new EmulatedKernel(config));
        Assert.Equal(0, kvm.CheckExtension(KVM_CAP_ARM_PTRAUTH_ADDRESS));
    }
}
