// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Tests.Abi;

/// <summary>The arm64 uAPI mirror against the literal values of include/uapi/linux/kvm.h and asm/kvm.h.</summary>
public class Arm64AbiTests
{
    [Fact]
    public void Ioctl_numbers_match_the_header()
    {
        // _IOW(KVMIO, 0xae, struct kvm_vcpu_init) etc.; kvm_vcpu_init is 32 bytes, kvm_one_reg 16.
        Assert.Equal(0x4020AEAEu, KvmArm64Ioctls.KVM_ARM_VCPU_INIT);
        Assert.Equal(0x8020AEAFu, KvmArm64Ioctls.KVM_ARM_PREFERRED_TARGET);
        Assert.Equal(0x4010AEABu, KvmArm64Ioctls.KVM_GET_ONE_REG);
        Assert.Equal(0x4010AEACu, KvmArm64Ioctls.KVM_SET_ONE_REG);
        Assert.Equal(0xC008AEB0u, KvmArm64Ioctls.KVM_GET_REG_LIST);
    }

    [Fact]
    public void Struct_layouts_match_the_header()
    {
        Assert.Equal(32, Unsafe.SizeOf<kvm_vcpu_init>());
        Assert.Equal(16, Unsafe.SizeOf<kvm_one_reg>());
        var init = default(kvm_vcpu_init);
        init.features[6] = 0xdead_beef;
        Span<byte> bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<kvm_vcpu_init>(ref init));
        Assert.Equal(0xdead_beefu, BitConverter.ToUInt32(bytes[28..]));
    }

    [Fact]
    public void System_register_ids_are_computed_as_upstream()
    {
        // ARM64_SYS_REG(op0, op1, crn, crm, op2) as tools/testing/selftests/kvm/arm64/get-reg-list.c lists them.
        Assert.Equal(0x6030_0000_0013_C005UL, KvmArm64SysRegs.MPIDR_EL1);
        Assert.Equal(0x6030_0000_0013_C080UL, KvmArm64SysRegs.SCTLR_EL1);
        Assert.Equal(0x6030_0000_0013_C100UL, KvmArm64SysRegs.TTBR0_EL1);
        Assert.Equal(0x6030_0000_0013_C600UL, KvmArm64SysRegs.VBAR_EL1);
        Assert.Equal(0x6030_0000_0013_DE82UL, KvmArm64SysRegs.TPIDR_EL0);
        Assert.Equal(0x6030_0000_0013_C290UL, KvmArm64SysRegs.ESR_EL1);
    }

    [Fact]
    public void Core_register_ids_are_computed_as_upstream()
    {
        // ARM64_CORE_REG(regs.regs[0]) = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | 0.
        Assert.Equal(0x6030_0000_0010_0000UL, KvmArm64Regs.X(0));
        Assert.Equal(0x6030_0000_0010_003CUL, KvmArm64Regs.X(30));
        Assert.Equal(0x6030_0000_0010_003EUL, KvmArm64Regs.Sp);
        Assert.Equal(0x6030_0000_0010_0040UL, KvmArm64Regs.Pc);
        Assert.Equal(0x6030_0000_0010_0042UL, KvmArm64Regs.Pstate);
        Assert.Equal(0x6030_0000_0010_0044UL, KvmArm64Regs.SpEl1);
        Assert.Equal(0x6030_0000_0010_0046UL, KvmArm64Regs.ElrEl1);
        Assert.Equal(0x6030_0000_0010_0048UL, KvmArm64Regs.SpsrEl1);
        Assert.Equal(8, KvmArm64Regs.KVM_REG_SIZE(KvmArm64Regs.Pc));
        // struct kvm_regs: fp_regs (16-byte aligned) at 336, fpsr at 848, fpcr at 852, 864 bytes in all.
        Assert.Equal(336, KvmArm64Regs.OffsetVregs);
        Assert.Equal(848, KvmArm64Regs.OffsetFpsr);
        Assert.Equal(852, KvmArm64Regs.OffsetFpcr);
        Assert.Throws<ArgumentOutOfRangeException>(() => KvmArm64Regs.X(31));
    }
}
