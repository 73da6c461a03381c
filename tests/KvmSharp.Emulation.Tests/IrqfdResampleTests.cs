// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The emulator's irqfd resamplers (X86/Irqchip/IrqFds.cs, Ioapic.cs, IrqRouting.cs) where the conformance case
/// IrqfdResample cannot look: one resampler per GSI and its lifetime, the IOAPIC's EOI path driven directly (as the
/// local APIC's EOI of a level-triggered vector calls it), the routing's chip-pin → GSI map the ack goes through, the
/// per-source line levels, and the eventfd references a resampling irqfd holds.
/// </summary>
public sealed class IrqfdResampleTests
{
    private const byte Vector = 0x40;
    private const uint Gsi = 20;

    private sealed class Setup : IrqchipVm
    {
        public Setup()
        {
            // IOAPIC pins 20 and 21: vector 0x40, fixed, level-triggered, physical destination APIC 0, unmasked.
            var io = Vm.GetIoapicState().State;
            io.redirtbl[20] = Vector | (1UL << 15);
            io.redirtbl[21] = Vector | (1UL << 15);
            Vm.SetIoapicState(new IoapicState(io));
        }

        public bool LineHigh(uint pin) => (Vm.GetIoapicState().Irr & (1u << (int)pin)) != 0;

        public bool RemoteIrr(uint pin) => Vm.GetIoapicState().Redirection((int)pin).RemoteIrr;

        public EventFd EventFd() => Sdk.CreateEventFd(options: EventFdOptions.NonBlocking);
    }

    private static ulong ReadOr0(EventFd e) => e.TryRead(out ulong n) ? n : 0;

    [Fact]
    public void Irqfds_on_one_gsi_share_one_resampler_which_goes_with_the_last()
    {
        using var s = new Setup();
        using var e1 = s.EventFd();
        using var e2 = s.EventFd();
        using var e3 = s.EventFd();
        using var r = s.EventFd();
        var chip = s.Internal.Irqchip;
        var reg1 = s.Vm.AssignIrqFd(e1, Gsi, resample: r);
        var reg2 = s.Vm.AssignIrqFd(e2, Gsi, resample: r);
        var reg3 = s.Vm.AssignIrqFd(e3, 21, resample: r);
        Assert.Equal([Gsi, 21u], chip.Resamplers.Select(x => x.Gsi));
        Assert.Equal(2, chip.Resamplers[0].IrqFds.Count);
        Assert.All(chip.IrqFds, f => Assert.Same(chip.Resamplers.Single(x => x.Gsi == f.Gsi), f.Resampler));
        // An EBUSY assignment on a new GSI made a resampler for itself and took it away again.
        var busy = new kvm_irqfd { fd = (uint)e1.Handle.Number, gsi = 22, flags = KvmConstants.KVM_IRQFD_FLAG_RESAMPLE, resamplefd = (uint)r.Handle.Number };
        Assert.Equal(-(long)Errno.EBUSY, s.Kernel.Ioctl(s.Vm.Handle, KvmIoctls.KVM_IRQFD, Raw.Bytes(ref busy)));
        Assert.Equal(2, chip.Resamplers.Count);
        reg1.Dispose();
        Assert.Single(chip.Resamplers[0].IrqFds);
        reg2.Dispose();
        Assert.Equal([21u], chip.Resamplers.Select(x => x.Gsi));
        reg3.Dispose();
        Assert.Empty(chip.Resamplers);
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void Eoi_lowers_the_resampler_line_signals_and_clears_remote_irr()
    {
        using var s = new Setup();
        using var e = s.EventFd();
        using var r = s.EventFd();
        using var reg = s.Vm.AssignIrqFd(e, Gsi, resample: r);
        e.Signal();
        Assert.True(s.LineHigh(Gsi) && s.RemoteIrr(Gsi), "asserted and delivered");
        Assert.True(s.Vcpu.GetLapic().IsRequested(Vector));
        s.Ioapic.Eoi(0x41); // another vector: nothing
        Assert.True(s.LineHigh(Gsi) && s.RemoteIrr(Gsi), "an EOI of another vector changed pin 20");
        Assert.Equal(0UL, ReadOr0(r));
        s.Ioapic.Eoi(Vector);
        Assert.False(s.LineHigh(Gsi) || s.RemoteIrr(Gsi), "the EOI left the line high or remote IRR set");
        Assert.Equal(1UL, ReadOr0(r));
        // A second EOI still runs the ack notifier (the GSI's resampler), which signals again.
        s.Ioapic.Eoi(Vector);
        Assert.Equal(1UL, ReadOr0(r));
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void A_line_another_source_holds_high_is_delivered_again_at_the_eoi()
    {
        using var s = new Setup();
        using var e = s.EventFd();
        using var r = s.EventFd();
        using var reg = s.Vm.AssignIrqFd(e, Gsi, resample: r);
        e.Signal();
        // KVM_USERSPACE_IRQ_SOURCE_ID raises it too: irr already set, remote IRR blocks ioapic_service (-1).
        Assert.Equal(-1, s.Vm.SetIrqLine(Gsi, true));
        ClearApicIrr(s);
        s.Ioapic.Eoi(Vector);
        Assert.Equal(1UL, ReadOr0(r));
        // kvm_ioapic_update_eoi_one: the line is still high (userspace's source), so ioapic_service delivers it again.
        Assert.True(s.LineHigh(Gsi) && s.RemoteIrr(Gsi), "the userspace source's level was lost");
        Assert.True(s.Vcpu.GetLapic().IsRequested(Vector), "not delivered again");
        // Userspace lowers its level: the next EOI leaves the line low.
        s.Vm.SetIrqLine(Gsi, false);
        ClearApicIrr(s);
        s.Ioapic.Eoi(Vector);
        Assert.False(s.LineHigh(Gsi) || s.RemoteIrr(Gsi), "line or remote IRR after the last EOI");
        Assert.False(s.Vcpu.GetLapic().IsRequested(Vector), "delivered again with the line low");
        Assert.Equal(1UL, ReadOr0(r));
    }

    [Fact]
    public void The_ack_reaches_the_gsi_last_routed_to_the_pin()
    {
        using var s = new Setup();
        using var e30 = s.EventFd();
        using var r30 = s.EventFd();
        using var e31 = s.EventFd();
        using var r31 = s.EventFd();
        // GSI 30 and then 31 on IOAPIC pin 20: rt->chip[IOAPIC][20] is 31 (setup_routing_entry, last wins).
        s.Vm.SetGsiRouting([GsiRoute.ToIrqchip(30, IrqchipId.Ioapic, 20), GsiRoute.ToIrqchip(31, IrqchipId.Ioapic, 20)]);
        using var reg30 = s.Vm.AssignIrqFd(e30, 30, resample: r30);
        var reg31 = s.Vm.AssignIrqFd(e31, 31, resample: r31);
        e30.Signal();
        Assert.True(s.LineHigh(20));
        s.Ioapic.Eoi(Vector);
        Assert.Equal((0UL, 1UL), (ReadOr0(r30), ReadOr0(r31)));
        // Every resampler asserts for KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, and the chips keep one level per source and
        // pin: GSI 31's de-assert also lowers what GSI 30 raised on the shared pin.
        Assert.False(s.LineHigh(20) || s.RemoteIrr(20), "GSI 31's ack left pin 20 high");
        // Likewise irqfd_resampler_shutdown of GSI 31's resampler lowers GSI 30's assertion.
        e30.Signal();
        Assert.True(s.LineHigh(20));
        reg31.Dispose();
        Assert.False(s.LineHigh(20), "the shutdown of GSI 31's resampler left pin 20 high");
        Assert.Equal([30u], s.Internal.Irqchip.Resamplers.Select(x => x.Gsi));
    }

    [Fact]
    public void Resampling_irqfds_hold_both_eventfds_until_deassigned_or_the_vm_is_gone()
    {
        var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sdk = Kvm.Open(k);
        var vm = sdk.CreateVm();
        vm.CreateIrqchip();
        var e = sdk.CreateEventFd();
        var r = sdk.CreateEventFd();
        var e2 = sdk.CreateEventFd();
        using (vm.AssignIrqFd(e, Gsi, resample: r))
        {
            Assert.Equal(3, k.LiveEventFdContexts);
        }
        _ = vm.AssignIrqFd(e2, Gsi, resample: r);
        e.Dispose();
        Assert.Equal(2, k.LiveEventFdContexts);
        r.Dispose();
        e2.Dispose();
        Assert.Equal(2, k.LiveEventFdContexts); // the irqfd keeps both contexts after the files closed
        Assert.Empty(EmulatorInvariants.Check(k));
        vm.Dispose();
        Assert.Equal(0, k.LiveEventFdContexts);
        k.Dispose();
    }

    /// <summary>Takes the vector out of APIC 0's IRR again (KVM_SET_LAPIC), so a new delivery shows.</summary>
    private static void ClearApicIrr(Setup s)
    {
        var l = s.Vcpu.GetLapic();
        l[0x200 + (Vector / 32) * 0x10] &= ~(1u << (Vector % 32));
        s.Vcpu.SetLapic(l);
        Assert.False(s.Vcpu.GetLapic().IsRequested(Vector));
    }
}
