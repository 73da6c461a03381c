// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.Arm64VgicGuestVm;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Group 0 on the emulated GICv3 (Emulation/Arm64/Vgic/VgicDelivery.cs, VgicCpuInterface.cs): GICD_IGROUPR decides the
/// group (vgic-mmio.c vgic_mmio_write_group), the virtual CPU interface signals a Group 0 interrupt as an FIQ
/// (vgic-v3.c vgic_v3_populate_lr: ICH_LR_GROUP from irq->group; SRE = 1), the guest acknowledges it through
/// ICC_IAR0_EL1 and ends it through ICC_EOIR0_EL1, ICC_IGRPEN0_EL1 gates it, and ICH_AP0R0 records its active priority.
/// </summary>
public class VgicGroup0Tests
{
    /// <summary>The guest makes SPI 33 a Group 0 interrupt of priority 0x80, enabled, with the distributor on.</summary>
    private static void Spi33Group0(A64Assembler a)
    {
        EnableDistributor(a);
        a.MovImm(X(3), 2);
        a.Str(W(3), X(2), 0x104);                       // GICD_ISENABLER1: SPI 33
        a.MovImm(X(3), 0xFFFF_FFFD);
        a.Str(W(3), X(2), 0x84);                        // GICD_IGROUPR1: SPI 33 in Group 0
        a.MovImm(X(3), 0x80);
        a.Strb(W(3), X(2), 0x400 + 33);                 // priority 0x80
    }

    /// <summary>FIQ handler: x21 = ICC_IAR1_EL1 (1023: not Group 1), x19 = ICC_IAR0_EL1, x20 = RPR, x22 = AP0R0, EOIR0.</summary>
    private static void FiqHandler(A64Assembler a)
    {
        a.Mrs(X(21), IccIar1);
        a.Mrs(X(19), IccIar0);
        a.Mrs(X(20), IccRpr);
        a.Mrs(X(22), IccAp0r0);
        a.Msr(IccEoir0, X(19));
        Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
    }

    private static void Fail(A64Assembler a) => Arm64Guest.Ucall(a, Arm64Guest.UcallFail);

    [Fact]
    public void A_group0_spi_is_taken_as_an_fiq_and_acknowledged_through_iar0()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            Spi33Group0(a);
            EnableCpuInterface(a, group0: true, group1: true);
            a.MsrDaif(set: false, 3);                   // clear I and F
            a.Wfi();
            Fail(a);
        }, irq: Fail, fiq: FiqHandler);
        s.Vm.SetSpiLevel(33, true);
        s.RunToDone(0);
        var v = s.Vcpus[0];
        Assert.Equal(1023UL, v.GetX(21));
        Assert.Equal(33UL, v.GetX(19));
        Assert.Equal(0x80UL, v.GetX(20));
        Assert.Equal(1UL << (0x80 >> 3), v.GetX(22));   // ICH_AP0R0: the active priority's bit (5 priority bits)
        // Taken from EL1h through VBAR_EL1 + 0x300: ELR is the WFI (not executed), SPSR has I and F clear.
        Assert.Equal(0x3C5UL & ~0xC0UL, v.GetOneReg(KvmArm64Regs.SpsrEl1) & 0x3CF);
        // EOImode 0: the priority drop deactivated it and cleared its AP0R bit.
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0x204));
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0x304));
        Assert.Equal(0UL, s.Gic.GetCpuInterfaceRegister(0, IccAp0r0));
    }

    [Fact]
    public void A_masked_fiq_still_wakes_wfi_and_never_arrives_as_an_irq()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            Spi33Group0(a);
            EnableCpuInterface(a, group0: true, group1: true);
            a.MsrDaif(set: false, 2);                   // clear I only: F stays masked
            a.Wfi();                                    // kvm_arch_vcpu_runnable ignores PSTATE
            a.Mrs(X(19), IccHppir0);
            a.Mrs(X(20), IccHppir1);
            a.Mrs(X(21), IccIar1);
            a.Mrs(X(22), IccIar0);
            a.Msr(IccEoir0, X(22));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, irq: Fail, fiq: Fail);
        s.Vm.SetSpiLevel(33, true);
        s.RunToDone(0);
        var v = s.Vcpus[0];
        Assert.Equal(33UL, v.GetX(19));
        Assert.Equal(1023UL, v.GetX(20));
        Assert.Equal(1023UL, v.GetX(21));
        Assert.Equal(33UL, v.GetX(22));
    }

    [Fact]
    public void Icc_igrpen0_gates_group0_and_group1_is_unaffected()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            Spi33Group0(a);
            a.MovImm(X(3), 4);
            a.Str(W(3), X(2), 0x104);                   // GICD_ISENABLER1: SPI 34 (Group 1)
            a.MovImm(X(3), 0xA0);
            a.Strb(W(3), X(2), 0x400 + 34);
            EnableCpuInterface(a, group0: false, group1: true);
            a.Mrs(X(19), IccHppir0);                    // Group 0 disabled: SPI 33 is not a candidate
            a.Mrs(X(20), IccHppir1);                    // SPI 34, though its priority is lower
            a.MovImm(X(1), 1);
            a.Msr(IccIgrpen0, X(1));
            a.Mrs(X(21), IccHppir0);                    // now SPI 33 is the highest
            a.Mrs(X(22), IccHppir1);                    // and Group 1's register shows nothing
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        s.Vm.SetSpiLevel(33, true);
        s.Vm.SetSpiLevel(34, true);
        s.RunToDone(0);
        var v = s.Vcpus[0];
        Assert.Equal(1023UL, v.GetX(19));
        Assert.Equal(34UL, v.GetX(20));
        Assert.Equal(33UL, v.GetX(21));
        Assert.Equal(1023UL, v.GetX(22));
        Assert.Equal(1UL, s.Gic.GetCpuInterfaceRegister(0, IccIgrpen0));
    }

    [Fact]
    public void Reading_eoir0_is_undefined()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            a.Mrs(X(19), IccEoir0);
            Fail(a);
        }, sync: a =>
        {
            a.Mrs(X(20), EsrEl1);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        s.RunToDone(0);
        Assert.Equal(0UL, s.Vcpus[0].GetX(20) >> 26);    // EC 0: unknown reason (UNDEFINED)
        Assert.Equal(Arm64Guest.CodeGpa, s.Vcpus[0].GetOneReg(KvmArm64Regs.ElrEl1));
    }
}
