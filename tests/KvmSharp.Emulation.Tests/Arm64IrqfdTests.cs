// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.Arm64VgicGuestVm;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// irqfd and GSI routing on arm64 (Emulation/Arm64/Vgic/VgicIrqfd.cs) against Linux 6.18: kvm_irqfd's
/// kvm_arch_intc_initialized (EAGAIN before vgic_init), vgic_init's default routing (GSI n → SPI n + 32),
/// kvm_set_irq_routing with vgic-irqfd.c kvm_set_routing_entry (pin &lt; KVM_IRQCHIP_NUM_PINS = 988, irqchip 0),
/// irqfd_wakeup's atomic SPI injection, kvm_set_msi without an ITS (ENODEV), and the resampler a level SPI's
/// deactivation notifies (vgic_v3_fold_lr_state → kvm_notify_acked_irq).
/// </summary>
public class Arm64IrqfdTests
{
    private static Errno Fails(Action action) => Assert.Throws<KvmException>(action).Errno;

    private static GsiRoute Spi(uint gsi, uint pin, uint irqchip = 0) => GsiRoute.ToIrqchip(gsi, (IrqchipId)irqchip, pin);

    /// <summary>GICD_ISPENDR1: SPIs 32–63 pending.</summary>
    private static uint PendingSpis(Arm64VgicGuestVm s) => s.Gic.GetDistributorRegister(0x204);

    private static void Done(A64Assembler a) => Arm64Guest.Ucall(a, Arm64Guest.UcallDone);

    [Fact]
    public void Irqfd_waits_for_vgic_init_then_an_edge_spi_reaches_the_guest()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            EnableDistributor(a);
            a.MovImm(X(3), 2);
            a.Str(W(3), X(2), 0x104);                   // GICD_ISENABLER1: SPI 33
            EnableCpuInterface(a, group0: false, group1: true);
            a.MsrDaif(set: false, 2);
            a.Wfi();
            Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
        }, initialize: false, irq: a =>
        {
            a.Mrs(X(19), IccIar1);
            a.Msr(IccEoir1, X(19));
            Done(a);
        });
        using var efd = s.Kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        // kvm_irqfd → kvm_arch_intc_initialized (vgic_initialized): EAGAIN until KVM_DEV_ARM_VGIC_CTRL_INIT.
        Assert.Equal(Errno.EAGAIN, Assert.Throws<IrqchipRequiredException>(() => s.Vm.AssignIrqFd(efd, 1)).Errno);
        s.Gic.InitializeVgic();
        using var reg = s.Vm.AssignIrqFd(efd, 1);
        efd.Signal();                                   // default routing: GSI 1 → SPI 33, latched pending
        Assert.Equal(1u << 1, PendingSpis(s));
        Assert.False(efd.TryRead(out _));               // irqfd_wakeup consumed the count
        s.RunToDone(0);
        Assert.Equal(33UL, s.Vcpus[0].GetX(19));
        Assert.Equal(0u, PendingSpis(s));
    }

    [Fact]
    public void Routing_entries_are_checked_as_kvm_set_routing_entry_does()
    {
        using var s = new Arm64VgicGuestVm(Done);
        var msi = GsiRoute.ToMsi(9, 0x0808_0040, 5);
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.SetGsiRouting([Spi(0, 988)])));          // pin ≥ KVM_IRQCHIP_NUM_PINS
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.SetGsiRouting([Spi(0, 3, irqchip: 1)]))); // irqchip ≥ KVM_NR_IRQCHIPS
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.SetGsiRouting([Spi(4096, 3)])));         // gsi ≥ KVM_MAX_IRQ_ROUTES
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.SetGsiRouting([Spi(2, 3), Spi(2, 4)]))); // one chip twice
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.SetGsiRouting([Spi(9, 3), msi])));       // MSI not one to one
        var flagged = Spi(3, 3);
        var e = flagged.Entry;
        e.flags = KvmConstants.KVM_MSI_VALID_DEVID;                                          // only MSIs take a flag
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.SetGsiRouting([new GsiRoute(3, e)])));
        var unknown = e;
        unknown.flags = 0;
        unknown.type = 99;
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.SetGsiRouting([new GsiRoute(3, unknown)])));
        // The largest pin and an MSI (with a device id) are accepted, whatever nr_spis is.
        s.Vm.SetGsiRouting([Spi(0, 987), GsiRoute.ToMsi(9, 0x0808_0040, 5, devid: 7)]);
        Assert.Equal(Errno.ENODEV, Fails(() => s.Vm.SignalMsi(0x0808_0040, 5)));             // kvm_set_msi: no ITS
        // kvm_send_userspace_msi: a flag other than KVM_MSI_VALID_DEVID → EINVAL (before kvm_set_msi).
        var bad = new kvm_msi { address_lo = 0x0808_0040, data = 5, flags = 2 };
        Assert.Equal(-(long)Errno.EINVAL, s.Kernel.Ioctl(s.Vm.Handle, KvmIoctls.KVM_SIGNAL_MSI, Raw.Bytes(ref bad)));
    }

    [Fact]
    public void Routing_works_without_a_vgic_and_vgic_init_installs_the_default_table()
    {
        using var s = new Arm64VgicGuestVm(Done, initialize: false);
        // kvm_arch_can_set_irq_routing is the generic "true" on arm64; KVM_SIGNAL_MSI needs an irqchip in kernel
        // (the vGIC device exists here, so ENODEV from kvm_set_msi).
        s.Vm.SetGsiRouting([Spi(5, 10)]);
        Assert.Equal(Errno.ENODEV, Fails(() => s.Vm.SignalMsi(0x0808_0040, 1)));
        s.Gic.InitializeVgic();                         // kvm_vgic_setup_default_irq_routing replaces the table
        using var efd = s.Kvm.CreateEventFd();
        using var reg = s.Vm.AssignIrqFd(efd, 5);
        efd.Signal();
        Assert.Equal(1u << 5, PendingSpis(s));          // SPI 37, not SPI 42
    }

    [Fact]
    public void Signal_msi_without_any_irqchip_is_einval()
    {
        using var vm = new Arm64TestVm(Done);
        Assert.Equal(Errno.EINVAL, Fails(() => vm.Vm.SignalMsi(0x0808_0040, 1)));
        // …but routes can be set: nothing arm64 checks needs the vGIC.
        vm.Vm.SetGsiRouting([Spi(1, 1)]);
    }

    [Fact]
    public void A_custom_route_moves_an_irqfd_and_a_route_beyond_nr_spis_or_to_an_msi_raises_nothing()
    {
        using var s = new Arm64VgicGuestVm(Done);
        s.Vm.SetGsiRouting([Spi(7, 3), Spi(8, 200), GsiRoute.ToMsi(9, 0x0808_0040, 5)]);
        using var e7 = s.Kvm.CreateEventFd();
        using var e8 = s.Kvm.CreateEventFd();
        using var e9 = s.Kvm.CreateEventFd();
        using var e10 = s.Kvm.CreateEventFd();
        using var r7 = s.Vm.AssignIrqFd(e7, 7);
        using var r8 = s.Vm.AssignIrqFd(e8, 8);
        using var r9 = s.Vm.AssignIrqFd(e9, 9);
        using var r10 = s.Vm.AssignIrqFd(e10, 10);     // no route at all
        foreach (var e in new[] { e7, e8, e9, e10 }) e.Signal();
        Assert.Equal(1u << 3, PendingSpis(s));          // GSI 7 → SPI 35 only
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0x208) | s.Gic.GetDistributorRegister(0x20C));
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void Caps_answer_as_the_generic_code_does()
    {
        using var s = new Arm64VgicGuestVm(Done);
        Assert.Equal(4096, s.Vm.CheckExtension(KvmCaps.KVM_CAP_IRQ_ROUTING));
        Assert.Equal(1, s.Vm.CheckExtension(KvmCaps.KVM_CAP_SIGNAL_MSI));
        Assert.Equal(1, s.Vm.CheckExtension(KvmCaps.KVM_CAP_IRQFD));
        Assert.Equal(1, s.Vm.CheckExtension(KvmCaps.KVM_CAP_IRQFD_RESAMPLE));
        Assert.Equal(0, s.Vm.CheckExtension(KvmCaps.KVM_CAP_MSI_DEVID)); // msis_require_devid needs an ITS
        Assert.Equal(4096, s.Kvm.CheckExtension(KvmCaps.KVM_CAP_IRQ_ROUTING));
    }

    [Fact]
    public void A_resampling_irqfd_holds_a_level_spi_until_the_guest_deactivates_it()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            EnableDistributor(a);
            a.MovImm(X(3), 4);
            a.Str(W(3), X(2), 0x104);                   // GICD_ISENABLER1: SPI 34
            EnableCpuInterface(a, group0: false, group1: true);
            a.MsrDaif(set: false, 2);
            a.Wfi();
            Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
        }, irq: a =>
        {
            a.Mrs(X(19), IccIar1);
            a.Mrs(X(20), IccHppir1);                    // the line is still high, but the SPI is active
            a.Msr(IccEoir1, X(19));                     // EOImode 0: deactivation → kvm_notify_acked_irq
            a.Mrs(X(21), IccHppir1);                    // the resampler lowered the line
            Done(a);
        });
        s.Gic.SetDistributorRegister(0xC08, 0);         // GICD_ICFGR2: SPI 34 level-sensitive
        using var efd = s.Kvm.CreateEventFd();
        using var resample = s.Kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var reg = s.Vm.AssignIrqFd(efd, 2, resample);
        efd.Signal();
        Assert.Equal(1u << 2, s.Gic.GetLineLevels(0, 32));
        Assert.False(resample.TryRead(out _));
        s.RunToDone(0);
        var v = s.Vcpus[0];
        Assert.Equal(34UL, v.GetX(19));
        Assert.Equal(1023UL, v.GetX(20));
        Assert.Equal(1023UL, v.GetX(21));
        Assert.True(resample.TryRead(out ulong count));
        Assert.Equal(1UL, count);
        Assert.Equal(0u, s.Gic.GetLineLevels(0, 32));
        Assert.Equal(0u, PendingSpis(s));
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void Deassigning_the_last_resampling_irqfd_lowers_its_level_spi()
    {
        using var s = new Arm64VgicGuestVm(Done);
        s.Gic.SetDistributorRegister(0xC08, 0);         // GICD_ICFGR2: SPIs 32–47 level-sensitive
        using var efd = s.Kvm.CreateEventFd();
        using var resample = s.Kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        var reg = s.Vm.AssignIrqFd(efd, 3, resample);
        efd.Signal();
        Assert.Equal(1u << 3, s.Gic.GetLineLevels(0, 32));
        // irqfd_resampler_shutdown: the GSI's last resampling irqfd lowers the line (kvm_set_irq(…, 0)).
        reg.Dispose();
        Assert.Equal(0u, s.Gic.GetLineLevels(0, 32));
        Assert.False(resample.TryRead(out _));
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }
}
