// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.Arm64VgicGuestVm;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SGIs on the emulated GICv3 (Emulation/Arm64/Vgic/VgicSgi.cs): sys_regs.c access_gic_sgi for ICC_SGI1R_EL1,
/// ICC_ASGI1R_EL1 and ICC_SGI0R_EL1 (a read is UNDEFINED), vgic-mmio-v3.c vgic_v3_dispatch_sgi (target list with
/// Aff3.Aff2.Aff1, IRM broadcast to every other vCPU) and vgic_v3_queue_sgi (SGI0R/ASGI1R raise Group 0 SGIs only).
/// </summary>
public class VgicSgiTests
{
    /// <summary>ICC_SGI1R_EL1's layout: TargetList [15:0], Aff1 [23:16], INTID [27:24], Aff2 [39:32], IRM [40].</summary>
    private static ulong Sgi(int intid, uint targets, uint aff1 = 0, bool broadcast = false) =>
        targets | ((ulong)aff1 << 16) | ((ulong)intid << 24) | (broadcast ? 1UL << 40 : 0);

    private static void Send(A64Assembler a, ulong register, ulong value)
    {
        a.MovImm(X(1), value);
        a.Msr(register, X(1));
    }

    /// <summary>GICR_ISPENDR0 of vCPU <paramref name="index"/>: its pending SGIs and PPIs.</summary>
    private static uint PendingPrivate(Arm64VgicGuestVm s, int index) =>
        s.Gic.GetRedistributorRegister(Arm64Vgic.VcpuAffinity(index), 0x10200);

    [Fact]
    public void An_sgi_from_vcpu0_wakes_vcpu1_from_wfi_and_iar1_returns_its_intid()
    {
        int secondary = 0;
        using var s = new Arm64VgicGuestVm(a =>
        {
            // vCPU 0: SGI 3 to the vCPU with Aff0 = 1.
            EnableDistributor(a);
            Send(a, IccSgi1r, Sgi(3, targets: 1u << 1));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            // vCPU 1: Group 1 on, IRQs unmasked, WFI until the SGI arrives.
            secondary = a.Position;
            EnableDistributor(a);
            EnableCpuInterface(a, group0: false, group1: true);
            a.MsrDaif(set: false, 2);
            a.Wfi();
            Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
        }, vcpus: 2, irq: a =>
        {
            a.Mrs(X(19), IccIar1);
            a.Msr(IccEoir1, X(19));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        var v1 = s.Vcpus[1];
        v1.SetPc(Arm64Guest.CodeGpa + (ulong)secondary);
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try { s.RunToDone(1); }
            catch (Exception e) { failure = e; }
        }) { IsBackground = true };
        thread.Start();
        s.RunToDone(0);
        // The wait is bounded only to keep a broken build from hanging CI; a loaded machine needs far less.
        Assert.True(thread.Join(TimeSpan.FromMinutes(2)), "vCPU 1 did not leave WFI");
        Assert.Null(failure);
        Assert.Equal(3UL, v1.GetX(19));
        Assert.Equal(0u, PendingPrivate(s, 1) & 0xffff);
        Assert.Equal(0u, s.Gic.GetRedistributorRegister(Arm64Vgic.VcpuAffinity(1), 0x10300)); // EOIed: inactive
    }

    [Fact]
    public void Irm_broadcasts_to_every_vcpu_but_the_sender()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            Send(a, IccSgi1r, Sgi(5, targets: 0, broadcast: true));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, vcpus: 3);
        s.RunToDone(0);
        Assert.Equal(0u, PendingPrivate(s, 0) & 0xffff);
        Assert.Equal(1u << 5, PendingPrivate(s, 1) & 0xffff);
        Assert.Equal(1u << 5, PendingPrivate(s, 2) & 0xffff);
    }

    [Fact]
    public void Target_list_affinity_and_group_decide_which_sgis_become_pending()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            Send(a, IccSgi0r, Sgi(2, targets: 1u << 1));               // Group 0 SGI via SGI0R: pending
            Send(a, IccSgi0r, Sgi(4, targets: 1u << 1));               // Group 1 SGI via SGI0R: dropped
            Send(a, IccAsgi1r, Sgi(6, targets: 1u << 1));              // ASGI1R behaves as SGI0R: dropped
            Send(a, IccSgi1r, Sgi(7, targets: (1u << 0) | (1u << 1))); // SGI1R, two targets, the sender included
            Send(a, IccSgi1r, Sgi(8, targets: 1u << 9));               // no vCPU with Aff0 = 9
            Send(a, IccSgi1r, Sgi(9, targets: 1u << 1, aff1: 1));      // no vCPU with Aff1 = 1
            Send(a, IccSgi1r, Sgi(10, targets: 1u << 2));              // Group 0 SGI via SGI1R: pending
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, vcpus: 3);
        // vCPU 1's SGI 2 and vCPU 2's SGI 10 are Group 0 (GICR_IGROUPR0 through REDIST_REGS).
        s.Gic.SetRedistributorRegister(Arm64Vgic.VcpuAffinity(1), 0x10080, ~(1u << 2));
        s.Gic.SetRedistributorRegister(Arm64Vgic.VcpuAffinity(2), 0x10080, ~(1u << 10));
        s.RunToDone(0);
        Assert.Equal(1u << 7, PendingPrivate(s, 0) & 0xffff);
        Assert.Equal((1u << 2) | (1u << 7), PendingPrivate(s, 1) & 0xffff);
        Assert.Equal(1u << 10, PendingPrivate(s, 2) & 0xffff);
    }

    [Fact]
    public void A_group0_sgi_arrives_as_an_fiq_on_the_sender_itself()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            EnableDistributor(a);
            EnableCpuInterface(a, group0: true, group1: true);
            a.MsrDaif(set: false, 3);
            Send(a, IccSgi0r, Sgi(1, targets: 1u << 0));
            a.Wfi();
            Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
        }, irq: a => Arm64Guest.Ucall(a, Arm64Guest.UcallFail), fiq: a =>
        {
            a.Mrs(X(19), IccIar0);
            a.Msr(IccEoir0, X(19));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        s.Gic.SetRedistributorRegister(Arm64Vgic.VcpuAffinity(0), 0x10080, ~(1u << 1));
        s.RunToDone(0);
        Assert.Equal(1UL, s.Vcpus[0].GetX(19));
    }

    [Fact]
    public void Reading_icc_sgi1r_el1_is_undefined()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            a.Mrs(X(19), IccSgi1r);
            Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
        }, sync: a =>
        {
            a.Mrs(X(20), EsrEl1);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        s.RunToDone(0);
        // sys_regs.c read_from_write_only → kvm_inject_undefined: EC 0 at the MRS.
        Assert.Equal(0UL, s.Vcpus[0].GetX(20) >> 26);
        Assert.Equal(Arm64Guest.CodeGpa, s.Vcpus[0].GetOneReg(KvmArm64Regs.ElrEl1));
    }
}
