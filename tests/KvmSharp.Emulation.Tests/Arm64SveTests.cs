// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SVE vCPUs (Emulation/Arm64/Arm64Sve.cs) against Linux 6.18: arm.c (KVM_CAP_ARM_SVE, system_supported_vcpu_features,
/// KVM_ARM_VCPU_FINALIZE, kvm_arm_vcpu_is_finalized in KVM_RUN / KVM_GET_REG_LIST), reset.c (kvm_vcpu_enable_sve,
/// kvm_arm_vcpu_finalize), guest.c (get/set_sve_vls, sve_reg_to_region, get/set_sve_reg, copy_sve_reg_indices,
/// core_reg_size_from_offset) and sys_regs.c (ZCR_EL1 sve_visibility, ID_AA64ZFR0_EL1 id_visibility,
/// sanitise_id_aa64pfr0_el1), on the Neoverse-V1-like model (256-bit vectors: VQ 1 and 2).
/// </summary>
public class Arm64SveTests
{
    private const uint Sve = 1u << KvmArm64Constants.KVM_ARM_VCPU_SVE;

    private static readonly ulong Pfr0 = KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 4, 0);

    private static EmulatorConfig V1 => EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV1 };

    private static Errno Fails(Action action) => Assert.Throws<KvmException>(action).Errno;

    private static long Finalize(Arm64TestVm s, KvmSharp.Vcpu vcpu, int what) =>
        s.Kernel.Ioctl(vcpu.Handle, KVM_ARM_VCPU_FINALIZE, Raw.Bytes(ref what));

    private static ulong[] Vls(params int[] vqs)
    {
        var words = new ulong[KVM_ARM64_SVE_VLS_WORDS];
        foreach (int vq in vqs) words[(vq - 1) / 64] |= 1UL << ((vq - 1) % 64);
        return words;
    }

    [Fact]
    public void Abi_values_are_the_uapi_ones()
    {
        Assert.Equal(170, KVM_CAP_ARM_SVE);
        // _IOW(KVMIO, 0xc2, int).
        Assert.Equal(0x4004_AEC2u, KVM_ARM_VCPU_FINALIZE);
        Assert.Equal(8, KVM_ARM64_SVE_VLS_WORDS);
        Assert.Equal(0x6060_0000_0015_FFFFUL, KVM_REG_ARM64_SVE_VLS);
        Assert.Equal(0x6080_0000_0015_0000UL, KVM_REG_ARM64_SVE_ZREG(0, 0));
        Assert.Equal(0x6080_0000_0015_03E0UL, KVM_REG_ARM64_SVE_ZREG(31, 0));
        Assert.Equal(0x6050_0000_0015_0400UL, KVM_REG_ARM64_SVE_PREG(0, 0));
        Assert.Equal(0x6050_0000_0015_05FFUL, KVM_REG_ARM64_SVE_PREG(15, 31));
        Assert.Equal(0x6050_0000_0015_0600UL, KVM_REG_ARM64_SVE_FFR(0));
        Assert.Equal(0x6030_0000_0013_C090UL, ZCR_EL1);
    }

    [Fact]
    public void The_default_n1_host_has_no_sve()
    {
        using var s = new Arm64TestVm(_ => { });
        Assert.Equal(0, s.Kvm.CheckExtension(KVM_CAP_ARM_SVE));
        using var vcpu = s.Vm.CreateVcpu(0);
        // system_supported_vcpu_features clears KVM_ARM_VCPU_SVE: -EINVAL.
        Assert.Equal(Errno.EINVAL, Fails(() => vcpu.InitPreferredWith(Sve)));
        vcpu.InitPreferred();
        // kvm_arm_vcpu_finalize: "if (!vcpu_has_sve(vcpu)) return -EINVAL".
        Assert.Equal(-(long)Errno.EINVAL, Finalize(s, vcpu, KvmArm64Constants.KVM_ARM_VCPU_SVE));
        // get_sve_vls / sve_reg_to_region: -ENOENT without SVE; an id outside the Z/P/FFR ranges: -EINVAL.
        Assert.Equal(Errno.ENOENT, Fails(() => vcpu.GetSveVectorLengths()));
        Assert.Equal(Errno.ENOENT, Fails(() => vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0))));
        Assert.Equal(Errno.EINVAL, Fails(() => vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0) & ~KvmArm64Regs.KVM_REG_SIZE_MASK | KVM_REG_SIZE_U256)));
        // ZCR_EL1 is hidden (sve_visibility), ID_AA64ZFR0_EL1 RAZ, ID_AA64PFR0_EL1.SVE 0; the V registers stay core registers.
        Assert.Equal(Errno.ENOENT, Fails(() => vcpu.GetOneReg(ZCR_EL1)));
        Assert.Equal(0UL, vcpu.GetOneReg(ID_AA64ZFR0_EL1));
        var list = vcpu.GetRegisterList();
        Assert.DoesNotContain(ZCR_EL1, list);
        Assert.DoesNotContain(KVM_REG_ARM64_SVE_VLS, list);
        Assert.Contains(KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U128 | KvmArm64Regs.KVM_REG_ARM_CORE | (KvmArm64Regs.OffsetVregs / 4), list);
    }

    [Fact]
    public void The_v1_host_offers_sve_and_the_vls_bitmap_starts_at_the_host_maximum()
    {
        using var s = new Arm64TestVm(_ => { }, V1);
        Assert.Equal(1, s.Kvm.CheckExtension(KVM_CAP_ARM_SVE));
        var vcpu = s.AddVcpu(Sve);
        // get_sve_vls: every available vq up to sve_max_vl (256 bits: vq 1 and 2).
        Assert.Equal(Vls(1, 2), vcpu.GetSveVectorLengths());
        // Narrowing to 128 bits is allowed; the value reads back.
        vcpu.SetSveVectorLengths(Vls(1));
        Assert.Equal(Vls(1), vcpu.GetSveVectorLengths());
        // A re-init before finalization runs kvm_vcpu_enable_sve again: back to the maximum.
        vcpu.InitPreferredWith(Sve);
        Assert.Equal(Vls(1, 2), vcpu.GetSveVectorLengths());
    }

    [Fact]
    public void Set_sve_vls_rejects_what_the_host_cannot_give()
    {
        using var s = new Arm64TestVm(_ => { }, V1);
        var vcpu = s.AddVcpu(Sve);
        // max_vq > sve_vq_from_vl(kvm_sve_max_vl): -EINVAL.
        Assert.Equal(Errno.EINVAL, Fails(() => vcpu.SetSveVectorLengths(Vls(1, 2, 4))));
        Assert.Equal(Errno.EINVAL, Fails(() => vcpu.SetSveVectorLengths(Vls(1, 2, 512))));
        // A host length below the maximum cannot be left out: -EINVAL.
        Assert.Equal(Errno.EINVAL, Fails(() => vcpu.SetSveVectorLengths(Vls(2))));
        // "Can't run with no vector lengths at all": -EINVAL.
        Assert.Equal(Errno.EINVAL, Fails(() => vcpu.SetSveVectorLengths(Vls())));
        // A failed write changes nothing.
        Assert.Equal(Vls(1, 2), vcpu.GetSveVectorLengths());
    }

    [Fact]
    public void Before_finalize_run_and_reg_list_are_eperm_and_the_sve_registers_too()
    {
        using var s = new Arm64TestVm(a => Arm64Guest.Ucall(a, Arm64Guest.UcallDone), V1);
        var vcpu = s.AddVcpu(Sve);
        // kvm_arch_vcpu_run_pid_change / KVM_GET_REG_LIST: "if (!kvm_arm_vcpu_is_finalized(vcpu))" -EPERM.
        Assert.Equal(Errno.EPERM, Fails(() => vcpu.RunBounded()));
        Assert.Equal(Errno.EPERM, Fails(() => vcpu.GetRegisterList()));
        // get/set_sve_reg: sve_reg_to_region passes, then -EPERM before finalization.
        Assert.Equal(Errno.EPERM, Fails(() => vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0))));
        Assert.Equal(Errno.EPERM, Fails(() => vcpu.SetOneRegBytes(KVM_REG_ARM64_SVE_PREG(0, 0), new byte[32])));
        // The other registers are accessible (only KVM_RUN and KVM_GET_REG_LIST wait for finalization).
        vcpu.SetX(0, 5);
        Assert.Equal(5UL, vcpu.GetX(0));
        Assert.Equal(0UL, vcpu.GetOneReg(ZCR_EL1));
        vcpu.FinalizeSve();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, vcpu.RunBounded().Reason);
    }

    [Fact]
    public void Finalize_errors_follow_kvm_arm_vcpu_finalize()
    {
        using var s = new Arm64TestVm(_ => { }, V1);
        using var uninit = s.Vm.CreateVcpu(7);
        // arm.c: "if (!kvm_vcpu_initialized(vcpu)) return -ENOEXEC".
        Assert.Equal(-(long)Errno.ENOEXEC, Finalize(s, uninit, KvmArm64Constants.KVM_ARM_VCPU_SVE));
        var vcpu = s.AddVcpu(Sve);
        // Any feature other than KVM_ARM_VCPU_SVE: -EINVAL.
        Assert.Equal(-(long)Errno.EINVAL, Finalize(s, vcpu, KvmArm64Constants.KVM_ARM_VCPU_PMU_V3));
        Assert.Equal(-(long)Errno.EINVAL, Finalize(s, vcpu, -1));
        Assert.Equal(0, Finalize(s, vcpu, KvmArm64Constants.KVM_ARM_VCPU_SVE));
        // Finalized already: -EPERM; the VLS register is now immutable (-EPERM) but readable.
        Assert.Equal(Errno.EPERM, Fails(() => vcpu.FinalizeSve()));
        Assert.Equal(Errno.EPERM, Fails(() => vcpu.SetSveVectorLengths(Vls(1, 2))));
        Assert.Equal(Vls(1, 2), vcpu.GetSveVectorLengths());
        // A re-init keeps the vCPU finalized.
        vcpu.InitPreferredWith(Sve);
        Assert.Equal(Errno.EPERM, Fails(() => vcpu.FinalizeSve()));
    }

    [Fact]
    public void Reg_list_has_the_sve_ids_after_the_core_registers_and_no_v_registers()
    {
        using var s = new Arm64TestVm(_ => { }, V1);
        var vcpu = s.AddVcpu(Sve);
        vcpu.FinalizeSve();
        var list = vcpu.GetRegisterList();
        // copy_core_reg_indices without the 32 V registers: 31 + SP, PC, PSTATE, SP_EL1, ELR_EL1, 5 SPSRs, FPSR, FPCR.
        int core = 31 + 5 + 5 + 2;
        Assert.All(list.Take(core), id => Assert.Equal(KvmArm64Regs.KVM_REG_ARM_CORE, id & KvmArm64Regs.KVM_REG_ARM_COPROC_MASK));
        Assert.DoesNotContain(list, id => (id & KvmArm64Regs.KVM_REG_SIZE_MASK) == KvmArm64Regs.KVM_REG_SIZE_U128);
        // copy_sve_reg_indices: VLS, Z0..Z31, P0..P15, FFR (slice 0).
        ulong[] expected =
        [
            KVM_REG_ARM64_SVE_VLS, .. Enumerable.Range(0, 32).Select(n => KVM_REG_ARM64_SVE_ZREG(n, 0)),
            .. Enumerable.Range(0, 16).Select(n => KVM_REG_ARM64_SVE_PREG(n, 0)), KVM_REG_ARM64_SVE_FFR(0),
        ];
        Assert.Equal(expected, list.Skip(core).Take(expected.Length));
        Assert.Contains(ZCR_EL1, list);
        Assert.Contains(ID_AA64ZFR0_EL1, list);
    }

    [Fact]
    public void Z_registers_alias_the_v_registers_and_only_slice_0_exists()
    {
        using var s = new Arm64TestVm(_ => { }, V1);
        var vcpu = s.AddVcpu(Sve);
        ulong v0 = KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U128 | KvmArm64Regs.KVM_REG_ARM_CORE | (KvmArm64Regs.OffsetVregs / 4);
        // core_reg_size_from_offset: the V registers are -EINVAL on an SVE vCPU (use the Z registers).
        Assert.Equal(Errno.EINVAL, Fails(() => vcpu.GetOneRegBytes(v0)));
        vcpu.FinalizeSve();
        byte[] z = new byte[256];
        for (int i = 0; i < z.Length; i++) z[i] = (byte)(i + 1);
        vcpu.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(3, 0), z);
        byte[] back = vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(3, 0));
        // klen = the 32-byte vector length; the rest of the 256-byte slice reads as zero (clear_user of upad).
        Assert.Equal(z.AsSpan(0, 32).ToArray(), back.AsSpan(0, 32).ToArray());
        Assert.All(back.AsSpan(32).ToArray(), b => Assert.Equal(0, b));
        // P and FFR: 4 bytes at 256 bits.
        byte[] p = new byte[32];
        p[0] = 0xA5; p[3] = 0x5A; p[4] = 0xFF;
        vcpu.SetOneRegBytes(KVM_REG_ARM64_SVE_FFR(0), p);
        byte[] ffr = vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_FFR(0));
        Assert.Equal(new byte[] { 0xA5, 0, 0, 0x5A, 0 }, ffr.AsSpan(0, 5).ToArray());
        Assert.All(vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_PREG(15, 0)), b => Assert.Equal(0, b));
        // sve_reg_to_region: a slice other than 0 is -ENOENT.
        Assert.Equal(Errno.ENOENT, Fails(() => vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(3, 1))));
        Assert.Equal(Errno.ENOENT, Fails(() => vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_FFR(31))));
        // A reset (re-init) zeroes the SVE state (kvm_vcpu_reset_sve).
        vcpu.InitPreferredWith(Sve);
        Assert.All(vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(3, 0)), b => Assert.Equal(0, b));
        Assert.All(vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_FFR(0)), b => Assert.Equal(0, b));
    }

    [Fact]
    public void Z_storage_is_the_v_register_plus_the_upper_bytes()
    {
        // One storage: Zn's low 128 bits are the guest's Vn (what the FP/SIMD state and the core V ids hold).
        var cpu = new Arm64Cpu { Sve = new Arm64SveState(2) };
        cpu.Sve.FinalizeState();
        byte[] z = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];
        cpu.Sve.WriteZ(cpu, 3, z);
        Assert.Equal(BitConverter.ToUInt64(z, 0) | ((UInt128)BitConverter.ToUInt64(z, 8) << 64), cpu.Vregs[3]);
        cpu.Vregs[3] = 0x1234;
        byte[] back = new byte[32];
        cpu.Sve.ReadZ(cpu, 3, back);
        Assert.Equal(0x34, back[0]);
        Assert.Equal(0x12, back[1]);
        Assert.Equal(0, back[2]);
        Assert.Equal(17, back[16]);
        // kvm_reset_vcpu: the V registers and the SVE state are zeroed together.
        cpu.Reset();
        cpu.Sve.ReadZ(cpu, 3, back);
        Assert.All(back, b => Assert.Equal(0, b));
    }

    [Fact]
    public void A_narrowed_vector_length_sizes_the_registers()
    {
        using var s = new Arm64TestVm(_ => { }, V1);
        var vcpu = s.AddVcpu(Sve);
        vcpu.SetSveVectorLengths(Vls(1));
        vcpu.FinalizeSve();
        byte[] z = Enumerable.Repeat((byte)0xEE, 256).ToArray();
        vcpu.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0), z);
        byte[] back = vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0));
        Assert.All(back.AsSpan(0, 16).ToArray(), b => Assert.Equal(0xEE, b));
        Assert.All(back.AsSpan(16).ToArray(), b => Assert.Equal(0, b));
        byte[] p = Enumerable.Repeat((byte)0xFF, 32).ToArray();
        vcpu.SetOneRegBytes(KVM_REG_ARM64_SVE_PREG(1, 0), p);
        byte[] pBack = vcpu.GetOneRegBytes(KVM_REG_ARM64_SVE_PREG(1, 0));
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0 }, pBack.AsSpan(0, 3).ToArray());
    }

    [Fact]
    public void The_guest_sees_sve_in_its_id_registers_and_owns_zcr_el1()
    {
        ulong zcr = KvmArm64SysRegs.Encoding(3, 0, 1, 2, 0), pfr0 = KvmArm64SysRegs.Encoding(3, 0, 0, 4, 0),
            zfr0 = KvmArm64SysRegs.Encoding(3, 0, 0, 4, 4);
        using var s = new Arm64TestVm(a =>
        {
            a.Mrs(X(1), pfr0);
            a.Mrs(X(2), zfr0);
            a.Mrs(X(3), zcr);
            a.MovImm(X(4), 1);
            a.Msr(zcr, X(4));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, V1);
        var vcpu = s.AddVcpu(Sve);
        vcpu.FinalizeSve();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, vcpu.RunBounded().Reason);
        Assert.Equal(1UL, (vcpu.GetX(1) >> 32) & 0xf);
        Assert.Equal((1UL << 44) | (1UL << 20), vcpu.GetX(2));
        Assert.Equal(0UL, vcpu.GetX(3));
        Assert.Equal(1UL, vcpu.GetOneReg(ZCR_EL1));
        Assert.Equal(1UL, (vcpu.GetOneReg(Pfr0) >> 32) & 0xf);
    }

    [Fact]
    public void Sve_id_fields_follow_the_vm_features()
    {
        // A VM without KVM_ARM_VCPU_SVE on an SVE host: PFR0.SVE sanitised away, ZFR0 RAZ (only 0 may be written).
        using (var s = new Arm64TestVm(_ => { }, V1))
        {
            var vcpu = s.AddVcpu();
            Assert.Equal(0UL, (vcpu.GetOneReg(Pfr0) >> 32) & 0xf);
            Assert.Equal(0UL, vcpu.GetOneReg(ID_AA64ZFR0_EL1));
            Assert.Equal(Errno.EINVAL, Fails(() => vcpu.SetOneReg(ID_AA64ZFR0_EL1, 1UL << 20)));
            Assert.Equal(Errno.EINVAL, Fails(() => vcpu.SetOneReg(Pfr0, vcpu.GetOneReg(Pfr0) | (1UL << 32))));
        }
        // An SVE VM: the host's ZFR0 fields may be lowered (FTR_LOWER_SAFE), not raised; PFR0.SVE is not writable.
        using (var s = new Arm64TestVm(_ => { }, V1))
        {
            var vcpu = s.AddVcpu(Sve);
            vcpu.SetOneReg(ID_AA64ZFR0_EL1, 1UL << 44);
            Assert.Equal(1UL << 44, vcpu.GetOneReg(ID_AA64ZFR0_EL1));
            Assert.Equal(Errno.EINVAL, Fails(() => vcpu.SetOneReg(ID_AA64ZFR0_EL1, 2UL << 44)));
            Assert.Equal(Errno.EINVAL, Fails(() => vcpu.SetOneReg(Pfr0, vcpu.GetOneReg(Pfr0) & ~(0xfUL << 32))));
        }
    }
}

/// <summary>KVM_ARM_VCPU_INIT again with the preferred target, PSCI 0.2 and extra features (a vCPU reset).</summary>
internal static class Arm64SveTestExtensions
{
    public static void InitPreferredWith(this KvmSharp.Vcpu vcpu, uint features)
    {
        var init = vcpu.Vm.PreferredTarget();
        init.features[0] |= (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) | features;
        vcpu.Init(init);
    }
}
