// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.X86.Irqchip;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The PIT's irq mask notifier (i8254.c pit_mask_notifer, fired by kvm_fire_mask_notifiers from i8259.c
/// pic_ioport_write OCW1 and ioapic.c ioapic_write_indirect; X86/Irqchip/MaskNotifiers.cs) on a fake clock, where
/// pending and irq_ack can be asserted exactly; the conformance cases PitMaskNotifier compare what a guest sees with
/// the real kernel.
/// </summary>
public sealed class PitMaskNotifierTests
{
    private sealed class FakeClock
    {
        public long Ns = 1_000_000_000;
        public long Now() => Ns;
    }

    private sealed class Vm : IDisposable
    {
        private readonly EmulatedKernel _k = new(EmulatorConfig.LikeThisHost());
        private readonly KernelFd _sys, _vm;
        public readonly FakeClock Clock = new();
        public readonly KvmMain.Kvm Kvm;
        public readonly I8254 Pit;

        public Vm()
        {
            var sys = Raw.OpenKvm(_k);
            var vm = Raw.CreateVm(_k, sys);
            (_sys, _vm) = (sys, vm);
            Assert.Equal(0, _k.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL));
            Kvm = GuestMemoryPath.VmOf(_k, vm)!;
            Pit = new I8254(0, Clock.Now);
            Kvm.Pit = Pit;
        }

        public long SetIrqchip(ref kvm_irqchip chip) => _k.Ioctl(_vm, KvmIoctls.KVM_SET_IRQCHIP, Raw.Bytes(ref chip));

        /// <summary>Channel 0 in mode 2 at 10 ms, one tick raised (irq_ack 0), then <paramref name="held"/> more held.</summary>
        public void TicksPileUp(int held)
        {
            Pit.PortWrite(3, 0x34);
            Pit.PortWrite(0, 11932 & 0xff);
            Pit.PortWrite(0, 11932 >> 8);
            Clock.Ns += Pit.PeriodNs;
            Assert.True(Pit.Poll(Kvm));
            Clock.Ns += held * Pit.PeriodNs;
            Assert.False(Pit.Poll(Kvm));
            Assert.Equal((1 + held, false), (Pit.Pending, Pit.IrqAck));
        }

        public void Dispose()
        {
            _vm.Dispose();
            _sys.Dispose();
            _k.Dispose();
        }
    }

    [Fact]
    public void Pic_ocw1_unmask_of_irq0_resets_reinject_and_a_mask_or_another_pin_does_not()
    {
        using var vm = new Vm();
        var pic = vm.Kvm.Irqchip.Pic!;
        vm.TicksPileUp(5);
        pic.IoportWrite(0, 1, 0x01); // IRQ0 masked: pit_mask_notifer(mask = 1) does nothing
        Assert.Equal((6, false), (vm.Pit.Pending, vm.Pit.IrqAck));
        pic.IoportWrite(0, 1, 0x03); // IRQ1 masked too: IRQ0's bit did not change
        pic.IoportWrite(1, 1, 0x00); // the slave's pins are GSI 8–15
        pic.IoportWrite(1, 1, 0xff);
        Assert.Equal((6, false), (vm.Pit.Pending, vm.Pit.IrqAck));
        pic.IoportWrite(0, 1, 0x02); // IRQ0 unmasked: kvm_pit_reset_reinject
        Assert.Equal((0, true), (vm.Pit.Pending, vm.Pit.IrqAck));
    }

    [Fact]
    public void Pic_icw1_and_kvm_set_irqchip_fire_no_mask_notifier()
    {
        using var vm = new Vm();
        var pic = vm.Kvm.Irqchip.Pic!;
        pic.IoportWrite(0, 1, 0xff);
        vm.TicksPileUp(3);
        pic.IoportWrite(0, 0, 0x11); // ICW1: "s->imr = 0" without kvm_fire_mask_notifiers
        Assert.Equal(0, pic.Pics[0][I8259.Imr]);
        Assert.Equal(4, vm.Pit.Pending);
        pic.IoportWrite(0, 1, 0x20); // ICW2..4 finish the init sequence
        pic.IoportWrite(0, 1, 0x04);
        pic.IoportWrite(0, 1, 0x01);
        var chip = new kvm_irqchip { chip_id = KvmConstants.KVM_IRQCHIP_PIC_MASTER };
        pic.Pics[0].CopyTo(chip.chip);
        chip.chip[I8259.Imr] = 0xff;
        Assert.Equal(0, vm.SetIrqchip(ref chip));
        chip.chip[I8259.Imr] = 0x00;
        Assert.Equal(0, vm.SetIrqchip(ref chip));
        Assert.Equal((4, false), (vm.Pit.Pending, vm.Pit.IrqAck));
    }

    [Fact]
    public void Ioapic_entry_unmask_on_the_pin_gsi0_is_routed_to_resets_reinject()
    {
        using var vm = new Vm();
        var ioapic = vm.Kvm.Irqchip.Ioapic!;
        vm.TicksPileUp(4);
        ioapic.IoRegSel = 0x10 + 2 * 2; // pin 2 is GSI 2 in the default routing
        ioapic.WriteIndirect(0x20);
        Assert.Equal(5, vm.Pit.Pending);
        ioapic.IoRegSel = 0x10; // pin 0 is GSI 0
        ioapic.WriteIndirect(0x10020); // still masked: no change, no notifier
        ioapic.IoRegSel = 0x11;
        ioapic.WriteIndirect(0); // the high half leaves the mask bit alone
        Assert.Equal(5, vm.Pit.Pending);
        ioapic.IoRegSel = 0x10;
        ioapic.WriteIndirect(0x20);
        Assert.Equal((0, true), (vm.Pit.Pending, vm.Pit.IrqAck));
    }

    [Fact]
    public void Without_reinject_the_notifier_is_not_registered()
    {
        using var vm = new Vm();
        var pic = vm.Kvm.Irqchip.Pic!;
        vm.TicksPileUp(2);
        vm.Pit.SetReinject(false);
        pic.IoportWrite(0, 1, 0x01);
        pic.IoportWrite(0, 1, 0x00);
        Assert.Equal((3, false), (vm.Pit.Pending, vm.Pit.IrqAck)); // as kvm_pit_set_reinject(false) left them
    }

    [Fact]
    public void Stopping_channel0_keeps_the_ticks_pending_and_runs_the_flushed_work()
    {
        using var vm = new Vm();
        vm.Pit.PortWrite(3, 0x34);
        vm.Pit.PortWrite(0, 11932 & 0xff);
        vm.Pit.PortWrite(0, 11932 >> 8);
        vm.Clock.Ns += 5 * vm.Pit.PeriodNs;
        // Mode 5 then a count: destroy_pit_timer — hrtimer_cancel (pit_timer_fn ran for each expiry: pending 5) and
        // kthread_flush_work (pit_do_work: irq_ack 1 → 0, IRQ0 raised; sent at the next poll).
        vm.Pit.PortWrite(3, 0x3a);
        vm.Pit.PortWrite(0, 0);
        vm.Pit.PortWrite(0, 0);
        Assert.Equal((5, false), (vm.Pit.Pending, vm.Pit.IrqAck));
        Assert.True(vm.Pit.Poll(vm.Kvm));
        Assert.Equal(1, vm.Kvm.Irqchip.Pic!.Pics[0][I8259.Irr] & 1); // IRQ0 latched
        vm.Clock.Ns += 5 * vm.Pit.PeriodNs;
        Assert.False(vm.Pit.Poll(vm.Kvm));
        Assert.Equal(5, vm.Pit.Pending);
    }
}
