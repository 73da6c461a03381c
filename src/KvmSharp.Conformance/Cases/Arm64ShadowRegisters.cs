// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// DISR_EL1 and the AArch32 EL2 shadow registers DACR32_EL2, IFSR32_EL2 and FPEXC32_EL2 (arch/arm64/kvm/sys_regs.c
/// sys_reg_descs[]: no visibility callback, so every vCPU lists them — tools/testing/selftests/kvm/arm64/get-reg-list.c
/// base_regs). This host is x86_64: the case is skipped on the real kernel.
/// </summary>
public static class Arm64ShadowRegisters
{
    [ConformanceCase("arch/arm64/kvm/sys_regs.c { SYS_DISR_EL1, reset_val 0 }, { DACR32_EL2 / IFSR32_EL2, reset_unknown }, " +
                     "{ FPEXC32_EL2, reset_val 0x700 }: listed by KVM_GET_REG_LIST in encoding order (walk_sys_regs, " +
                     "tools/testing/selftests/kvm/arm64/get-reg-list.c base_regs), any value read back, reset by KVM_ARM_VCPU_INIT",
                     Profile = EmulatedProfile.Arm64)]
    public static void arm64_disr_and_aarch32_shadow_registers(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        vcpu.InitPreferred();
        ulong[] regs = [KvmArm64ShadowRegs.DISR_EL1, KvmArm64ShadowRegs.DACR32_EL2, KvmArm64ShadowRegs.IFSR32_EL2, KvmArm64ShadowRegs.FPEXC32_EL2];
        var ids = vcpu.GetRegisterList().ToList();
        int[] at = regs.Select(id => ids.IndexOf(id)).ToArray();
        Assert.All(at, i => Assert.True(i >= 0));
        Assert.Equal(at.Order(), at);
        // DISR_EL1 (3, 0, 12, 1, 1) follows VBAR_EL1 (3, 0, 12, 0, 0); the op1 = 4 shadows follow each other.
        Assert.Equal(ids.IndexOf(KvmArm64SysRegs.VBAR_EL1) + 1, at[0]);
        Assert.Equal([at[1], at[1] + 1, at[1] + 2], at[1..]);
        Assert.Equal(0UL, vcpu.GetOneReg(KvmArm64ShadowRegs.DISR_EL1));
        Assert.Equal(0x700UL, vcpu.GetOneReg(KvmArm64ShadowRegs.FPEXC32_EL2));
        foreach (ulong id in regs)
        {
            vcpu.SetOneReg(id, 0x8000_0000_dead_beef);
            Assert.Equal(0x8000_0000_dead_beefUL, vcpu.GetOneReg(id));
        }
        vcpu.InitPreferred();
        Assert.Equal(0UL, vcpu.GetOneReg(KvmArm64ShadowRegs.DISR_EL1));
        Assert.Equal(0x700UL, vcpu.GetOneReg(KvmArm64ShadowRegs.FPEXC32_EL2));
    }
}
