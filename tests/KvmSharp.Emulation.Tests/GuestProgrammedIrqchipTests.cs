// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.X86.Irqchip;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The guest's side of the emulator's full irqchip (X86/Irqchip/I8259.cs, I8259Ports.cs, Ioapic.cs, IoapicMmio.cs),
/// driven through the VM's I/O bus as a vCPU's IN/OUT and MMIO reach it, where the conformance case
/// GuestProgrammedIrqchip does not look: the 8259's rarer commands (auto-EOI, rotation, specific EOI, set priority,
/// poll of the slave), the bus ranges and access widths, the IOAPIC's write-protected bits and write-time servicing,
/// and the EOI filter (ioapic_handled_vectors) and directed-EOI rule of kvm_ioapic_send_eoi.
/// </summary>
public sealed class GuestProgrammedIrqchipTests
{
    private const ulong IoapicBase = 0xFEC00000;

    private sealed class Setup : IrqchipVm
    {
        public Vcpu.KvmVcpu V => Internal.Vcpus[0];

        public I8259 Pic => Internal.Irqchip.Pic!;

        public bool Out(ulong port, byte value) => Internal.IoBus.Write(KvmBus.Pio, V, port, 1, value);

        public byte In(ulong port)
        {
            Span<byte> b = stackalloc byte[1];
            Assert.True(Internal.IoBus.Read(KvmBus.Pio, V, port, b), $"IN 0x{port:X} went to userspace");
            return b[0];
        }

        public void Mmio(ulong offset, uint value, int len = 4) =>
            Assert.True(Internal.IoBus.Write(KvmBus.Mmio, V, IoapicBase + offset, len, value), $"MMIO write at +0x{offset:X} went to userspace");

        public ulong MmioRead(ulong offset, int len = 4)
        {
            Span<byte> b = stackalloc byte[len];
            b.Fill(0xcc);
            Assert.True(Internal.IoBus.Read(KvmBus.Mmio, V, IoapicBase + offset, b), $"MMIO read at +0x{offset:X} went to userspace");
            ulong v = 0;
            for (int i = 0; i < len; i++) v |= (ulong)b[i] << (8 * i);
            return v;
        }

        public void InitMaster(byte icw4, byte imr)
        {
            Out(0x20, 0x11);
            Out(0x21, 0x20);
            Out(0x21, 0x04);
            Out(0x21, icw4);
            Out(0x21, imr);
        }

        public kvm_pic_state Master => Vm.GetPicState(IrqchipId.PicMaster).State;

        public kvm_pic_state Slave => Vm.GetPicState(IrqchipId.PicSlave).State;

        public int ReadIrq()
        {
            lock (Kernel.SyncRoot) return Pic.ReadIrq();
        }
    }

    private static ulong ReadOr0(EventFd e) => e.TryRead(out ulong n) ? n : 0;

    [Fact]
    public void The_pic_registers_three_pio_ranges_and_the_ioapic_one_mmio_window_at_creation()
    {
        using var s = new Setup();
        var ranges = s.Internal.IoBus.Ranges.Select(r => (r.Bus, r.Addr, r.Length)).ToList();
        Assert.Contains((KvmBus.Pio, 0x20UL, 2), ranges);
        Assert.Contains((KvmBus.Pio, 0xa0UL, 2), ranges);
        Assert.Contains((KvmBus.Pio, 0x4d0UL, 2), ranges);
        Assert.Contains((KvmBus.Mmio, IoapicBase, 0x100), ranges);
        // kvm_io_bus_cmp: a word at 0x21 crosses the master's range, no device takes it.
        Assert.False(s.Internal.IoBus.Write(KvmBus.Pio, s.V, 0x21, 2, 0xffff));
        Assert.False(s.Internal.IoBus.Write(KvmBus.Pio, s.V, 0x22, 1, 0));
        // A word inside the range: taken and ignored.
        Assert.True(s.Internal.IoBus.Write(KvmBus.Pio, s.V, 0x20, 2, 0x11));
        Assert.Equal(0, s.Master.init_state);
        Span<byte> w = [0xcc, 0xcc];
        Assert.True(s.Internal.IoBus.Read(KvmBus.Pio, s.V, 0x20, w));
        Assert.Equal([0, 0], w.ToArray());
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void Auto_eoi_acknowledges_without_isr_and_rotates_when_asked()
    {
        using var s = new Setup();
        s.InitMaster(icw4: 0x03, imr: 0x00); // 8086 mode, auto-EOI
        Assert.Equal((1, 0x20), (s.Master.auto_eoi, s.Master.irq_base));
        s.Vm.SetIrqLine(5, true);
        s.Vm.SetIrqLine(5, false);
        Assert.True(s.Pic.Output);
        Assert.Equal(0x25, s.ReadIrq());
        Assert.Equal((0, 0), (s.Master.isr, s.Master.irr));
        Assert.False(s.Pic.Output);
        s.Out(0x20, 0x80); // OCW2 cmd 4: rotate on auto-EOI
        Assert.Equal(1, s.Master.rotate_on_auto_eoi);
        s.Vm.SetIrqLine(6, true);
        Assert.Equal(0x26, s.ReadIrq());
        Assert.Equal(7, s.Master.priority_add);
        // Nothing requested: a spurious IRQ 7.
        Assert.Equal(0x27, s.ReadIrq());
    }

    [Fact]
    public void Specific_eoi_set_priority_and_rotating_eoi()
    {
        using var s = new Setup();
        s.InitMaster(icw4: 0x01, imr: 0x00);
        s.Vm.SetIrqLine(3, true);
        s.Vm.SetIrqLine(3, false);
        Assert.Equal(0x23, s.ReadIrq());
        s.Vm.SetIrqLine(1, true);
        s.Vm.SetIrqLine(1, false);
        Assert.Equal(0x21, s.ReadIrq()); // higher priority than the one in service
        Assert.Equal(0x0a, s.Master.isr);
        s.Out(0x20, 0x63); // specific EOI of IRQ 3
        Assert.Equal(0x02, s.Master.isr);
        s.Out(0x20, 0xa0); // rotating non-specific EOI: IRQ 1 leaves, priority_add = 2
        Assert.Equal((0, 2), (s.Master.isr, s.Master.priority_add));
        s.Out(0x20, 0xc4); // set priority: IRQ 5 lowest
        Assert.Equal(5, s.Master.priority_add);
        s.Vm.SetIrqLine(4, true);
        s.Vm.SetIrqLine(6, true);
        Assert.Equal(0x26, s.ReadIrq()); // 6 ranks above 4 now
        s.Out(0x20, 0xe6); // specific rotate: IRQ 6 leaves ISR, priority_add = 7
        Assert.Equal((0, 7), (s.Master.isr, s.Master.priority_add));
    }

    [Fact]
    public void Icw1_drops_edge_requests_and_keeps_level_ones()
    {
        using var s = new Setup();
        s.Out(0x4d0, 0x08); // IRQ 3 level
        s.Vm.SetIrqLine(3, true);
        s.Vm.SetIrqLine(4, true);
        Assert.Equal(0x18, s.Master.irr);
        s.InitMaster(icw4: 0x01, imr: 0xff);
        Assert.Equal((0x08, 0xff, 0, 0), (s.Master.irr, s.Master.imr, s.Master.last_irr, s.Master.read_reg_select));
        // Without ICW4 (ICW1 bit 0 clear) ICW3 ends the sequence and auto-EOI goes.
        s.Out(0x20, 0x10);
        s.Out(0x21, 0x40);
        s.Out(0x21, 0x04);
        Assert.Equal((0, 0, 0x40), (s.Master.init_state, s.Master.auto_eoi, s.Master.irq_base));
        s.Out(0x21, 0x5a);
        Assert.Equal(0x5a, s.In(0x21));
    }

    [Fact]
    public void Polling_the_slave_clears_the_masters_cascade_and_special_mask_is_kept()
    {
        using var s = new Setup();
        s.InitMaster(icw4: 0x01, imr: 0xfb);
        s.Out(0xa0, 0x11);
        s.Out(0xa1, 0x28);
        s.Out(0xa1, 0x02);
        s.Out(0xa1, 0x01);
        s.Out(0xa1, 0x00);
        s.Vm.SetIrqLine(13, true);
        Assert.Equal((0x04, 0x20), (s.Master.irr, s.Slave.irr));
        s.Out(0xa0, 0x0c);
        Assert.Equal(1, s.Slave.poll);
        Assert.Equal(0x85, s.In(0xa0));
        Assert.Equal((0, 0, 0, 0), (s.Master.irr, s.Slave.irr, s.Slave.isr, s.Slave.poll));
        Assert.Equal(0x07, PollOnce(s, 0x20)); // nothing left
        s.Out(0x20, 0x68); // OCW3 special mask mode on
        Assert.Equal(1, s.Master.special_mask);
        s.Out(0x20, 0x48); // off
        Assert.Equal(0, s.Master.special_mask);
    }

    private static byte PollOnce(Setup s, ulong port)
    {
        s.Out(port, 0x0c);
        return s.In(port);
    }

    [Fact]
    public void Elcr_writes_keep_the_mask_and_the_pic_eoi_runs_the_ack_notifiers()
    {
        using var s = new Setup();
        s.Out(0x4d0, 0xff);
        s.Out(0x4d1, 0xff);
        Assert.Equal((0xf8, 0xde), (s.In(0x4d0), s.In(0x4d1)));
        s.Out(0x4d0, 0x00);
        s.InitMaster(icw4: 0x01, imr: 0xef);
        using var e = s.Sdk.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var r = s.Sdk.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var reg = s.Vm.AssignIrqFd(e, 4, resample: r);
        e.Signal();
        Assert.Equal(0x24, s.ReadIrq());
        Assert.Equal(0UL, ReadOr0(r));
        s.Out(0x20, 0x20);
        Assert.Equal(1UL, ReadOr0(r));
        Assert.Equal(0, s.Master.isr);
        Assert.Equal(0, s.Master.last_irr & 0x10); // the resampler's line went low
    }

    [Fact]
    public void Pic_output_is_an_extint_for_the_bsp_only_while_lint0_takes_it()
    {
        using var s = new Setup();
        s.InitMaster(icw4: 0x01, imr: 0xfd);
        s.Vm.SetIrqLine(1, true);
        Assert.True(s.Pic.Output);
        Assert.True(ApicInjection.HasExtint(s.V, s.V.Lapic!));
        var l = s.Vcpu.GetLapic();
        l[0x350] = 0x10700; // LINT0 masked
        s.Vcpu.SetLapic(l);
        Assert.False(ApicInjection.HasExtint(s.V, s.V.Lapic!));
        s.Out(0x21, 0xff);
        Assert.False(s.Pic.Output);
    }

    [Fact]
    public void Ioapic_window_widths_offsets_and_read_only_bits()
    {
        using var s = new Setup();
        s.Mmio(0x00, 0x1ff12, len: 8); // the low 32 bits, IOREGSEL 8 bits
        Assert.Equal(0x12UL, s.MmioRead(0x00, 8));
        s.Mmio(0x10, 0x0000_5035);  // vector 0x35, remote IRR and delivery status bits written
        Assert.Equal(0x35UL, s.MmioRead(0x10) & 0xffff);
        Assert.Equal(0x35UL, s.MmioRead(0x10, 1));
        s.Mmio(0x13, 0xff, len: 1); // not a register: ignored
        Assert.Equal(0UL, s.MmioRead(0x13, 1));
        Assert.Equal(0UL, s.MmioRead(0x40));
        s.Mmio(0x00, 0x01);
        Assert.Equal(0x170011UL, s.MmioRead(0x10));
        s.Mmio(0x10, 0); // VERSION ignores writes
        Assert.Equal(0x170011UL, s.MmioRead(0x10));
        s.Mmio(0x00, 0x00);
        s.Mmio(0x10, 0xff000000);
        Assert.Equal((0xf000000UL, 0xfu), (s.MmioRead(0x10), s.Vm.GetIoapicState().Id));
        s.Mmio(0x00, 0x10 + 2 * 30); // beyond pin 23: writes ignored, reads all ones
        s.Mmio(0x10, 0);
        Assert.Equal(0xffffffffUL, s.MmioRead(0x10));
        // A 3-byte access is taken and does nothing.
        Assert.True(s.Internal.IoBus.Write(KvmBus.Mmio, s.V, IoapicBase, 3, 0x20));
        Assert.Equal(0x10UL + 2 * 30, s.MmioRead(0x00));
        Assert.False(s.Internal.IoBus.Write(KvmBus.Mmio, s.V, IoapicBase + 0x100, 4, 0));
    }

    [Fact]
    public void A_level_entry_written_while_its_line_is_high_is_delivered_and_edge_clears_remote_irr()
    {
        using var s = new Setup();
        s.Vm.SetIrqLine(20, true); // masked: irr only
        Assert.False(s.Vcpu.GetLapic().IsRequested(0x40));
        s.Mmio(0x00, 0x10 + 2 * 20);
        s.Mmio(0x10, 0x8040);
        Assert.True(s.Vcpu.GetLapic().IsRequested(0x40), "ioapic_write_indirect did not service the high level line");
        Assert.True(s.Vm.GetIoapicState().Redirection(20).RemoteIrr);
        s.Mmio(0x10, 0x0040);
        Assert.False(s.Vm.GetIoapicState().Redirection(20).RemoteIrr);
        s.Vm.SetIrqLine(20, false);
    }

    /// <summary>A level EOI of 0x40 from vCPU 0 as apic_set_eoi sends it (vector in TMR).</summary>
    private static void LevelEoi(Setup s)
    {
        Assert.True(s.V.Lapic!.TestVector(Lapic.Tmr, 0x40), "the vector is level-triggered in TMR");
        s.Ioapic.SendEoi(s.V, 0x40);
    }

    [Fact]
    public void Directed_eoi_keeps_remote_irr_unless_suppression_is_disabled()
    {
        foreach (bool disable in new[] { false, true })
        {
            using var s = new Setup();
            if (disable)
            {
                var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X2APIC_API };
                cap.args[0] = 8; // KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST
                Assert.Equal(0L, X2apicApi.Enable(s.Internal, cap));
            }
            var l = s.Vcpu.GetLapic();
            l[0xf0] = 0x11ff;
            s.Vcpu.SetLapic(l);
            var io = s.Vm.GetIoapicState().State;
            io.redirtbl[20] = 0x8040;
            s.Vm.SetIoapicState(new IoapicState(io));
            using var e = s.Sdk.CreateEventFd(options: EventFdOptions.NonBlocking);
            using var r = s.Sdk.CreateEventFd(options: EventFdOptions.NonBlocking);
            using var reg = s.Vm.AssignIrqFd(e, 20, resample: r);
            s.Vm.SetIrqLine(20, true);
            s.Vm.SetIrqLine(20, false);
            LevelEoi(s);
            Assert.Equal(1UL, ReadOr0(r)); // the ack notifiers run either way
            Assert.True(s.Vm.GetIoapicState().Redirection(20).RemoteIrr == !disable, $"disable {disable}");
        }
    }

    [Fact]
    public void Only_vectors_the_ioapic_handles_for_this_vcpu_reach_it()
    {
        using var s = new Setup();
        using var e = s.Sdk.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var r = s.Sdk.CreateEventFd(options: EventFdOptions.NonBlocking);
        var io = s.Vm.GetIoapicState().State;
        io.redirtbl[20] = 0x40; // edge, no ack notifier yet
        io.redirtbl[21] = 0x41 | (5UL << 56) | (1UL << 15); // level, to APIC 5
        s.Vm.SetIoapicState(new IoapicState(io));
        // An edge vector without an ack notifier is not in ioapic_handled_vectors: SendEoi does nothing; with one it
        // runs kvm_notify_acked_irq for the edge EOI.
        s.Ioapic.SendEoi(s.V, 0x40);
        using var reg = s.Vm.AssignIrqFd(e, 20, resample: r);
        Assert.Equal(0UL, ReadOr0(r));
        s.Ioapic.SendEoi(s.V, 0x40);
        Assert.Equal(1UL, ReadOr0(r));
        // A level entry to another APIC: not this vCPU's; remote IRR set by KVM_SET_IRQCHIP stays.
        io = s.Vm.GetIoapicState().State;
        io.redirtbl[21] |= 1UL << 14;
        s.Vm.SetIoapicState(new IoapicState(io));
        s.Ioapic.SendEoi(s.V, 0x41);
        Assert.True(s.Vm.GetIoapicState().Redirection(21).RemoteIrr);
        io.redirtbl[21] &= ~(0xffUL << 56);
        s.Vm.SetIoapicState(new IoapicState(io));
        // This vCPU's now, but TMR says edge (never delivered level-triggered): kvm_ioapic_update_eoi with
        // IOAPIC_EDGE_TRIG leaves remote IRR.
        s.Ioapic.SendEoi(s.V, 0x41);
        Assert.True(s.Vm.GetIoapicState().Redirection(21).RemoteIrr);
        var l = s.Vcpu.GetLapic();
        l[0x180 + 0x10 * (0x41 >> 5)] |= 1u << (0x41 & 31);
        s.Vcpu.SetLapic(l);
        s.Ioapic.SendEoi(s.V, 0x41);
        Assert.False(s.Vm.GetIoapicState().Redirection(21).RemoteIrr);
    }
}
