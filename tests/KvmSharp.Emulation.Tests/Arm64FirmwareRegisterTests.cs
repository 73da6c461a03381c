// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64FwRegs;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The firmware pseudo-register ids (asm/kvm.h KVM_REG_ARM_FW_REG / KVM_REG_ARM_FW_FEAT_BMAP_REG) and PSCI's dispatch on
/// the chosen version (arch/arm64/kvm/psci.c kvm_psci_call).
/// </summary>
public class Arm64FirmwareRegisterTests
{
    [Fact]
    public void Ids_match_the_uapi_macros()
    {
        Assert.Equal(0x6030_0000_0014_0000UL, KVM_REG_ARM_PSCI_VERSION);
        Assert.Equal(0x6030_0000_0014_0003UL, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3);
        Assert.Equal(0x6030_0000_0016_0000UL, KVM_REG_ARM_STD_BMAP);
        Assert.Equal(0x6030_0000_0016_0003UL, KVM_REG_ARM_VENDOR_HYP_BMAP_2);
        Assert.Equal(8, Arm64FwRegs.Indices.Length);
    }

    [Theory]
    [InlineData(0x2UL, false)]
    [InlineData(0x1_0000UL, true)]
    [InlineData(0x1_0001UL, true)]
    public void Psci_answers_with_the_chosen_version(ulong version, bool hasFeatures)
    {
        var cpu = new Arm64Cpu();
        cpu.X[0] = 0x8400_0000;
        Assert.Equal(HvcResult.Continue, Psci.Call(cpu, version, out _));
        Assert.Equal(version, cpu.X[0]);
        cpu.X[0] = 0x8400_000A;
        cpu.X[1] = 0x8400_0000;
        Psci.Call(cpu, version, out _);
        Assert.Equal(hasFeatures ? 0UL : Psci.NotSupported, cpu.X[0]);
    }

    [Fact]
    public void Psci_0_1_has_no_standard_functions()
    {
        var cpu = new Arm64Cpu();
        cpu.X[0] = 0x8400_0008; // SYSTEM_OFF
        Assert.Equal(HvcResult.Continue, Psci.Call(cpu, KVM_ARM_PSCI_0_1, out _));
        Assert.Equal(Psci.NotSupported, cpu.X[0]);
    }

    [Fact]
    public void Default_version_depends_on_the_psci_0_2_feature()
    {
        var fw = new Arm64FwState();
        Assert.Equal(KVM_ARM_PSCI_1_1, Arm64FwRegs.PsciVersion(fw, psci02: true));
        Assert.Equal(KVM_ARM_PSCI_0_1, Arm64FwRegs.PsciVersion(fw, psci02: false));
        fw.PsciVersion = KVM_ARM_PSCI_1_0;
        Assert.Equal(KVM_ARM_PSCI_1_0, Arm64FwRegs.PsciVersion(fw, psci02: true));
    }
}
