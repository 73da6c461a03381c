// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.Arm64;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The ID register model (Emulation/Arm64/Arm64IdRegs.cs) against arch/arm64/kvm/sys_regs.c arm64_check_features and
/// the set_id_regs.c selftest's field rules: signed fields, FTR_EXACT and FTR_HIGHER_SAFE fields, fixed bits, RAZ and
/// RAZ/USER_WI registers, the run-once freeze; and the uapi ids of the ID registers.
/// </summary>
public class Arm64IdRegisterTests
{
    private static int Index(string name) => Arm64IdRegs.IndexOf(name);

    private static long Write(Arm64IdRegState vm, string name, ulong value) => Arm64IdRegs.Write(vm, Index(name), value);

    private static ulong Read(Arm64IdRegState vm, string name) => Arm64IdRegs.Read(vm, Index(name));

    private static ulong WithField(ulong reg, int shift, ulong value) => (reg & ~(0xfUL << shift)) | ((value & 0xf) << shift);

    [Fact]
    public void Ids_are_the_arm64_sys_reg_encodings()
    {
        Assert.Equal(0x6030_0000_0013_C000UL, KvmArm64IdRegs.MIDR_EL1);
        Assert.Equal(0x6030_0000_0013_C020UL, KvmArm64IdRegs.ID_AA64PFR0_EL1);
        Assert.Equal(0x6030_0000_0013_C030UL, KvmArm64IdRegs.ID_AA64ISAR0_EL1);
        Assert.Equal(0x6030_0000_0013_C038UL, KvmArm64IdRegs.ID_AA64MMFR0_EL1);
        Assert.Equal(0x6030_0000_0013_D801UL, KvmArm64IdRegs.CTR_EL0);
        Assert.Equal(0x6030_0000_0013_C807UL, KvmArm64IdRegs.AIDR_EL1);
    }

    [Fact]
    public void Writable_masks_ioctl_number_and_index()
    {
        // _IOR(KVMIO, 0xb6, struct reg_mask_range): read direction, 64 bytes.
        Assert.Equal(0x8040_AEB6u, KvmArm64Ioctls.KVM_ARM_GET_REG_WRITABLE_MASKS);
        Assert.Equal(0, KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE_IDX(3, 0, 0, 0, 0));
        Assert.Equal((1 << 6) | 7, KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE_IDX(3, 1, 0, 0, 7)); // AIDR_EL1
        Assert.Equal((2 << 6) | 1, KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE_IDX(3, 3, 0, 0, 1)); // CTR_EL0
        Assert.Equal(192, KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE_SIZE);
    }

    [Fact]
    public void The_table_covers_the_whole_id_block_in_encoding_order()
    {
        var table = Arm64SysRegs.Table;
        Assert.Equal(table.OrderBy(d => d.Encoding).Select(d => d.Name), table.Select(d => d.Name));
        for (int crm = 1; crm <= 7; crm++)
        {
            for (int op2 = 0; op2 < 8; op2++)
                Assert.True(Arm64SysRegs.Find((ushort)KvmArm64SysRegs.Encoding(3, 0, 0, crm, op2)) >= 0, $"CRm {crm} op2 {op2}");
        }
    }

    [Fact]
    public void A_lower_safe_field_goes_down_but_not_up()
    {
        var vm = new Arm64IdRegState();
        ulong isar0 = Read(vm, "ID_AA64ISAR0_EL1");
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64ISAR0_EL1", WithField(isar0, 4, 3)));
        Assert.Equal(isar0, Read(vm, "ID_AA64ISAR0_EL1"));
        Assert.Equal(0, Write(vm, "ID_AA64ISAR0_EL1", WithField(isar0, 4, 1)));
        Assert.Equal(WithField(isar0, 4, 1), Read(vm, "ID_AA64ISAR0_EL1"));
        // Bit 0..3 is RES0 (outside the writable mask): must stay as the host has it.
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64ISAR0_EL1", isar0 | 1));
    }

    [Fact]
    public void Signed_exact_and_higher_safe_fields_follow_their_type()
    {
        var vm = new Arm64IdRegState();
        ulong mmfr0 = Read(vm, "ID_AA64MMFR0_EL1");
        // TGRAN4 (signed, host 0): 0xf (-1, not supported) is lower, so safe; 1 is above.
        Assert.Equal(0, Write(vm, "ID_AA64MMFR0_EL1", WithField(mmfr0, 28, 0xf)));
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64MMFR0_EL1", WithField(mmfr0, 28, 1)));
        // TGRAN4_2 (FTR_EXACT, safe 1): 1 is accepted, 2 is not.
        Assert.Equal(0, Write(vm, "ID_AA64MMFR0_EL1", WithField(mmfr0, 40, 1)));
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64MMFR0_EL1", WithField(mmfr0, 40, 2)));
        // ASIDBITS is not writable: any change is EINVAL.
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64MMFR0_EL1", WithField(mmfr0, 4, 0)));
        // ID_AA64MMFR1_EL1.SpecSEI (FTR_HIGHER_SAFE, host 0): raising is the safe direction.
        ulong mmfr1 = Read(vm, "ID_AA64MMFR1_EL1");
        Assert.Equal(0, Write(vm, "ID_AA64MMFR1_EL1", WithField(mmfr1, 24, 1)));
        // ID_AA64PFR0_EL1.GIC (FTR_EXACT, safe 0): 0 accepted, 2 refused.
        ulong pfr0 = Read(vm, "ID_AA64PFR0_EL1");
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64PFR0_EL1", WithField(pfr0, 24, 2)));
        Assert.Equal(0, Write(vm, "ID_AA64PFR0_EL1", WithField(pfr0, 24, 0)));
        // CTR_EL0.L1Ip (2 bits, FTR_EXACT safe VIPT = 2) and IDC (1 bit, lower safe).
        ulong ctr = Read(vm, "CTR_EL0");
        Assert.Equal(0, Write(vm, "CTR_EL0", (ctr & ~(3UL << 14)) | (2UL << 14)));
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "CTR_EL0", (ctr & ~(3UL << 14)) | (1UL << 14)));
        Assert.Equal(0, Write(vm, "CTR_EL0", Read(vm, "CTR_EL0") & ~(1UL << 28)));
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "CTR_EL0", Read(vm, "CTR_EL0") | (1UL << 29)));
    }

    [Fact]
    public void Per_register_set_user_rules()
    {
        var vm = new Arm64IdRegState();
        ulong pfr0 = Read(vm, "ID_AA64PFR0_EL1");
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64PFR0_EL1", WithField(pfr0, 0, 0)));
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64PFR0_EL1", WithField(pfr0, 4, 0)));
        ulong dfr0 = Read(vm, "ID_AA64DFR0_EL1");
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64DFR0_EL1", WithField(dfr0, 0, 5)));
        // PMUVer IMP_DEF (0xf) is taken as NI (0).
        Assert.Equal(0, Write(vm, "ID_AA64DFR0_EL1", WithField(dfr0, 8, 0xf)));
        Assert.Equal(WithField(dfr0, 8, 0), Read(vm, "ID_AA64DFR0_EL1"));
        // MIDR_EL1 without KVM_CAP_ARM_WRITABLE_IMP_ID_REGS.
        Assert.Equal(0, Write(vm, "MIDR_EL1", Arm64HostCpu.Midr));
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "MIDR_EL1", 0));
    }

    [Fact]
    public void Raz_registers_take_only_zero_and_aarch32_ones_ignore_writes()
    {
        var vm = new Arm64IdRegState();
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64SMFR0_EL1", 1));
        Assert.Equal(0, Write(vm, "ID_AA64SMFR0_EL1", 0));
        Assert.Equal(0, Write(vm, "ID_PFR0_EL1", 0x1234));
        Assert.Equal(0UL, Read(vm, "ID_PFR0_EL1"));
        // ZFR0 without SVE: a sanitised register whose limit is 0.
        Assert.Equal(Vfs.Err.EINVAL, Write(vm, "ID_AA64ZFR0_EL1", 1));
    }

    [Fact]
    public void After_the_first_run_only_the_current_value_is_accepted()
    {
        var vm = new Arm64IdRegState();
        ulong isar0 = Read(vm, "ID_AA64ISAR0_EL1");
        vm.HasRanOnce = true;
        Assert.Equal(Vfs.Err.EBUSY, Write(vm, "ID_AA64ISAR0_EL1", WithField(isar0, 4, 0)));
        Assert.Equal(0, Write(vm, "ID_AA64ISAR0_EL1", isar0));
        Assert.Equal(Vfs.Err.EBUSY, Write(vm, "S3_0_C0_C7_7", 1));
        // A raise is still EINVAL only before the run; after it, EBUSY comes first.
        Assert.Equal(Vfs.Err.EBUSY, Write(vm, "ID_AA64ISAR0_EL1", WithField(isar0, 4, 3)));
    }
}
