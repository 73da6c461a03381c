// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// A guest programs the full in-kernel irqchip itself (KVM_CREATE_IRQCHIP): the 8259 PICs through their ports
/// (arch/x86/kvm/i8259.c picdev_write/picdev_read: ICW1–4, OCW1–3, poll mode, ELCR at 0x4d0/0x4d1) and the IOAPIC
/// through its MMIO window (ioapic.c ioapic_mmio_read/write: IOREGSEL at 0xFEC00000, IOWIN at +0x10). Every access is
/// the kernel's — no KVM_EXIT_IO or KVM_EXIT_MMIO — and KVM_GET_IRQCHIP shows what the guest wrote. Interrupts raised
/// with KVM_IRQ_LINE or an irqfd reach the guest's IDT through the PIC it initialised (ExtINT through the BSP's LINT0,
/// kvm_pic_read_irq) and through the IOAPIC entry it wrote; the EOIs (OCW2, the xAPIC EOI register) run the ack
/// notifiers and the remote-IRR rules, directed EOI included. Run on both kernels.
/// </summary>
public static class GuestProgrammedIrqchip
{
    private const string I8259C = "arch/x86/kvm/i8259.c";
    private const string IoapicC = "arch/x86/kvm/ioapic.c";
    internal const ulong IoapicBase = 0xFEC00000, ApicEoi = 0xFEE000B0;
    /// <summary>Guest results: bytes and dwords the guest stores, after the IdtGuest's delivery records.</summary>
    private const ulong Results = IdtGuest.ReportGpa + 0x800;
    private const byte PortA = 0x10, PortB = 0x11, PortC = 0x12, PortD = 0x13, PortE = 0x14;
    private const ulong Level = 1UL << 15, Masked = 1UL << 16;

    /// <summary>
    /// Maps the IOAPIC window and the xAPIC page (and the 2 MiB below them) with uncached 2 MiB pages: PDPT[3] → a
    /// page directory at SpareGpa.
    /// </summary>
    private static void MapHighPages(IdtGuest g)
    {
        var mem = g.Guest.Memory;
        mem.Fill(IdtGuest.SpareGpa, Layout.PageSize, 0);
        mem.Write(Layout.Pdpt + 3 * 8, IdtGuest.SpareGpa | 0x3UL);
        foreach (ulong page in new ulong[] { 0xFEA00000, 0xFEC00000, 0xFEE00000 })
            mem.Write(IdtGuest.SpareGpa + ((page - 0xC0000000UL) >> 21) * 8, page | 0x80 | 0x10 | 0x3);
    }

    internal static IdtGuest Guest(Kvm kvm, Action<Assembler> program, params int[] vectors)
    {
        var g = IdtGuest.Create(kvm, program, vectors.Select(v => new IdtVector(v, ResumeSkip: 0)), idtLimit: 256 * 16 - 1,
            prepareVm: vm => vm.CreateIrqchip());
        MapHighPages(g);
        g.Guest.Memory.Fill(Results, 0x100, 0);
        return g;
    }

    internal static void Out(Assembler a, ushort port, byte value)
    {
        a.mov(al, value);
        if (port < 0x100)
        {
            a.@out((byte)port, al);
        }
        else
        {
            a.mov(dx, port);
            a.@out(dx, al);
        }
    }

    /// <summary>IN AL from <paramref name="port"/> stored at Results + <paramref name="slot"/>.</summary>
    private static void InTo(Assembler a, ushort port, int slot)
    {
        if (port < 0x100)
        {
            a.@in(al, (byte)port);
        }
        else
        {
            a.mov(dx, port);
            a.@in(al, dx);
        }
        a.mov(__byte_ptr[Results + (ulong)slot], al);
    }

    /// <summary>
    /// The PC's usual initialisation: ICW1 (edge, cascade, ICW4), ICW2 base, ICW3 cascade on pin 2, ICW4 8086 mode (the
    /// master's <paramref name="masterIcw4"/>: 0x03 adds auto-EOI).
    /// </summary>
    internal static void InitPics(Assembler a, byte masterBase, byte slaveBase, byte masterImr, byte slaveImr, byte masterIcw4 = 0x01)
    {
        Out(a, 0x20, 0x11);
        Out(a, 0x21, masterBase);
        Out(a, 0x21, 0x04);
        Out(a, 0x21, masterIcw4);
        Out(a, 0xa0, 0x11);
        Out(a, 0xa1, slaveBase);
        Out(a, 0xa1, 0x02);
        Out(a, 0xa1, 0x01);
        Out(a, 0x21, masterImr);
        Out(a, 0xa1, slaveImr);
    }

    /// <summary>IOREGSEL = <paramref name="sel"/>, IOWIN = <paramref name="value"/> (RBX holds the IOAPIC base).</summary>
    internal static void IoapicWrite(Assembler a, uint sel, uint value)
    {
        a.mov(__dword_ptr[rbx], sel);
        a.mov(__dword_ptr[rbx + 0x10], value);
    }

    /// <summary>IOREGSEL = <paramref name="sel"/>; IOWIN read into Results + <paramref name="slot"/>.</summary>
    private static void IoapicReadTo(Assembler a, uint sel, int slot)
    {
        a.mov(__dword_ptr[rbx], sel);
        a.mov(eax, __dword_ptr[rbx + 0x10]);
        a.mov(__dword_ptr[Results + (ulong)slot], eax);
    }

    internal static void RunTo(IdtGuest g, byte port)
    {
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == port, $"expected OUT to 0x{port:X}, got {exit.ToString()}");
    }

    /// <summary>
    /// Runs <paramref name="g"/>'s vCPU on a thread of its own (it may wait in KVM_RUN, halted); <paramref name="whileRunning"/>
    /// runs meanwhile. The exit's reason and port (0 unless KVM_EXIT_IO); a vCPU still in KVM_RUN after 30 s is kicked
    /// out and the case fails with <paramref name="stuck"/>.
    /// </summary>
    private static (KvmExitReason Reason, ushort Port) RunOnThread(CaseContext ctx, IdtGuest g, Action whileRunning, Func<string> stuck)
    {
        int tid = 0;
        KvmExitReason reason = default;
        ushort port = 0;
        Exception? error = null;
        using var started = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            tid = ctx.Kernel.GetTid();
            started.Set();
            try
            {
                var exit = g.Vcpu.Run();
                (reason, port) = (exit.Reason, exit.Reason == KvmExitReason.KVM_EXIT_IO ? exit.IoPort : (ushort)0);
            }
            catch (Exception e)
            {
                error = e;
            }
        }) { IsBackground = true };
        thread.Start();
        started.Wait();
        whileRunning();
        if (!thread.Join(TimeSpan.FromSeconds(30)))
        {
            while (!thread.Join(10)) ctx.Kernel.KickThread(tid);
            Assert.Fail(stuck());
        }
        Assert.Null(error);
        return (reason, port);
    }

    private static byte B(IdtGuest g, int slot) => g.Guest.Memory.Read<byte>(Results + (ulong)slot);

    private static uint D(IdtGuest g, int slot) => g.Guest.Memory.Read<uint>(Results + (ulong)slot);

    private static ulong ReadOr0(EventFd e) => e.TryRead(out ulong n) ? n : 0;

    internal static void EnableInterrupts(IdtGuest g, uint spiv = 0x1ff)
    {
        var l = g.Vcpu.GetLapic();
        l[0xf0] = spiv;
        g.Vcpu.SetLapic(l);
        var regs = g.Vcpu.GetRegs();
        regs.rflags |= 0x200;
        g.Vcpu.SetRegs(regs);
    }

    [ConformanceCase(I8259C + " picdev_write/picdev_read (pic_ioport_write ICW1–4 and OCW1: irq_base, init4, imr; OCW3 read IRR/ISR and poll — " +
                     "pic_poll_read acknowledges the highest request and reads it with bit 7; a 2-byte access inside a device is taken and reads 0; " +
                     "elcr_ioport_write keeps val & elcr_mask: 0xf8 and 0xde) + " + IoapicC + " ioapic_mmio_read/write (IOREGSEL 8 bits; " +
                     "ioapic_write_indirect keeps remote IRR and delivery status; ioapic_read_indirect: VERSION 0x170011, APIC_ID and ARB_ID id << 24, " +
                     "an entry beyond pin 23 all ones; no EOI register at 0x40): the guest's accesses never exit and KVM_GET_IRQCHIP agrees")]
    public static void guest_programs_the_pic_and_ioapic_registers(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a =>
        {
            InitPics(a, 0x20, 0x28, 0xf3, 0xff);
            InTo(a, 0x21, 0);
            InTo(a, 0xa1, 1);
            Out(a, 0x4d0, 0xff);
            InTo(a, 0x4d0, 2);
            Out(a, 0x4d1, 0xff);
            InTo(a, 0x4d1, 3);
            Out(a, 0x4d0, 0x00);
            Out(a, PortA, 0); // the host raises IRQ 3 (edge) and IRQ 4 (masked)
            Out(a, 0x20, 0x0a); // OCW3: read IRR
            InTo(a, 0x20, 4);
            Out(a, 0x20, 0x0b); // OCW3: read ISR
            InTo(a, 0x20, 5);
            Out(a, 0x20, 0x0c); // OCW3: poll
            InTo(a, 0x20, 6);
            InTo(a, 0x20, 7); // poll is one read only: ISR again
            Out(a, 0x20, 0x0a);
            InTo(a, 0x20, 8);
            a.xor(eax, eax);
            a.dec(eax);
            a.@in(ax, 0x20); // a word inside the master's range: taken, reads 0
            a.mov(__word_ptr[Results + 10], ax);
            a.mov(rbx, IoapicBase);
            IoapicWrite(a, 0x10 + 2 * 5, 0x1d035); // vector 0x35, level, masked; remote IRR and delivery status are read-only
            IoapicWrite(a, 0x11 + 2 * 5, 0x0f000000);
            IoapicReadTo(a, 0x10 + 2 * 5, 0x10);
            IoapicReadTo(a, 0x11 + 2 * 5, 0x14);
            IoapicReadTo(a, 1, 0x18);
            IoapicWrite(a, 0, 0xfa000000);
            IoapicReadTo(a, 0, 0x1c);
            IoapicReadTo(a, 2, 0x20);
            IoapicReadTo(a, 0x10 + 2 * 24, 0x24);
            a.mov(__dword_ptr[rbx + 0x40], 0x35); // the EOI register of later IOAPICs: nothing here
            a.mov(eax, __dword_ptr[rbx + 0x40]);
            a.mov(__dword_ptr[Results + 0x28], eax);
            a.mov(__dword_ptr[rbx], 0x1234);
            a.mov(eax, __dword_ptr[rbx]);
            a.mov(__dword_ptr[Results + 0x2c], eax);
            a.mov(__dword_ptr[rbx], 0x10 + 2 * 5);
            Out(a, PortB, 0);
            var halt = a.CreateLabel();
            a.Label(ref halt);
            a.jmp(halt);
        });
        var vm = g.Guest.Vm;
        RunTo(g, PortA);
        Assert.Equal((0xf3, 0xff, 0xf8, 0xde), (B(g, 0), B(g, 1), B(g, 2), B(g, 3)));
        vm.SetIrqLine(3, true);
        vm.SetIrqLine(3, false);
        vm.SetIrqLine(4, true);
        RunTo(g, PortB);
        // IRR: pin 3's latched edge and pin 4's (masked) request; ISR empty; poll answers 0x83 and clears pin 3.
        Assert.Equal((0x18, 0x00, 0x83, 0x00, 0x10), (B(g, 4), B(g, 5), B(g, 6), B(g, 7), B(g, 8)));
        Assert.Equal(0, g.Guest.Memory.Read<ushort>(Results + 10));
        Assert.Empty(g.Deliveries);
        var m = vm.GetPicState(IrqchipId.PicMaster).State;
        var s = vm.GetPicState(IrqchipId.PicSlave).State;
        Assert.Equal((0x20, 0xf3, 0x10, 0, 1, 0, 0, 0xf8), (m.irq_base, m.imr, m.irr, m.isr, m.init4, m.init_state, m.elcr, m.elcr_mask));
        Assert.Equal((0x28, 0xff, 1, 0, 0xde, 0), (s.irq_base, s.imr, s.init4, s.init_state, s.elcr, s.poll));
        Assert.Equal(0, m.read_reg_select);
        Assert.Equal(0x0f000000_00018035UL, D(g, 0x10) | (ulong)D(g, 0x14) << 32);
        Assert.Equal((0x170011u, 0x0a000000u, 0x0a000000u, 0xffffffffu, 0u, 0x34u), (D(g, 0x18), D(g, 0x1c), D(g, 0x20), D(g, 0x24), D(g, 0x28), D(g, 0x2c)));
        var io = vm.GetIoapicState();
        Assert.Equal((0x0f000000_00018035UL, 0xau, 0x1au), (io.Redirection(5).Bits, io.Id, io.State.ioregsel));
        vm.SetIrqLine(4, false);
    }

    [ConformanceCase(I8259C + " kvm_pic_read_irq (irq.c kvm_cpu_get_extint through the BSP's LINT0, ExtINT by KVM_X86_QUIRK_LINT0_REENABLED): " +
                     "KVM_IRQ_LINE on a pin the guest unmasked is delivered as irq_base + pin through the guest's IDT, the cascade's slave pin as the " +
                     "slave's irq_base + pin; the request moves from IRR to ISR until the guest's OCW2 non-specific EOI (pic_clear_isr), which also " +
                     "runs the pin's ack notifiers: a resampling irqfd on the PIC's GSI is de-asserted and its resamplefd signalled at the EOI")]
    public static void guest_programmed_pic_delivers_an_irq_line(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a =>
        {
            InitPics(a, 0x20, 0x28, 0xe9, 0xfb); // master pins 1, 2 (cascade) and 4; slave pin 2 (IRQ 10)
            a.sti();
            var loop = a.CreateLabel();
            a.Label(ref loop);
            Out(a, PortA, 0);
            a.nop();
            Out(a, PortB, 0);
            Out(a, 0xa0, 0x20);
            Out(a, 0x20, 0x20);
            a.jmp(loop);
        }, 0x21, 0x24, 0x2a, 0x27, 0x2f);
        var vm = g.Guest.Vm;
        EnableInterrupts(g);
        RunTo(g, PortA);
        Assert.Empty(g.Deliveries);

        vm.SetIrqLine(1, true);
        vm.SetIrqLine(1, false);
        RunTo(g, PortB);
        Assert.Equal([0x21UL], g.Deliveries.Select(d => d.Vector));
        var m = vm.GetPicState(IrqchipId.PicMaster);
        Assert.Equal((0x00, 0x02), (m.Irr, m.Isr));
        RunTo(g, PortA);
        Assert.Equal(0, vm.GetPicState(IrqchipId.PicMaster).Isr);

        vm.SetIrqLine(10, true);
        vm.SetIrqLine(10, false);
        RunTo(g, PortB);
        Assert.Equal([0x21UL, 0x2aUL], g.Deliveries.Select(d => d.Vector));
        Assert.Equal((0x04, 0x04), (vm.GetPicState(IrqchipId.PicMaster).Isr, vm.GetPicState(IrqchipId.PicSlave).Isr));
        RunTo(g, PortA);
        Assert.Equal((0, 0), (vm.GetPicState(IrqchipId.PicMaster).Isr, vm.GetPicState(IrqchipId.PicSlave).Isr));

        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var r = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var reg = vm.AssignIrqFd(e, 4, resample: r);
        e.Signal();
        IrqfdResampleWait(() => (vm.GetPicState(IrqchipId.PicMaster).Irr & 0x10) != 0, "the resampling irqfd raised PIC pin 4");
        RunTo(g, PortB);
        Assert.Equal(0x24UL, g.Deliveries[^1].Vector);
        Assert.Equal(0UL, ReadOr0(r));
        RunTo(g, PortA);
        Assert.Equal(1UL, ReadOr0(r));
        Assert.Equal(3, g.Deliveries.Count);
        Assert.Equal(0, vm.GetPicState(IrqchipId.PicMaster).Isr);
    }

    [ConformanceCase(I8259C + " pic_unlock (wakeup_needed: the first vCPU that kvm_apic_accept_pic_intr, KVM_REQ_EVENT and kvm_vcpu_kick) + x86.c " +
                     "kvm_arch_vcpu_runnable (kvm_cpu_has_interrupt: kvm_cpu_has_extint is the PIC's output): a guest halted with an in-kernel APIC " +
                     "waits in KVM_RUN until a KVM_IRQ_LINE from another thread raises a pin it unmasked, then takes irq_base + pin and goes on")]
    public static void guest_programmed_pic_wakes_a_halted_vcpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a =>
        {
            InitPics(a, 0x30, 0x38, 0xfd, 0xff);
            Out(a, PortA, 0);
            a.sti();
            a.hlt();
            Out(a, PortB, 0);
        }, 0x31, 0x37);
        var vm = g.Guest.Vm;
        EnableInterrupts(g);
        RunTo(g, PortA);
        var (reason, port) = RunOnThread(ctx, g, () =>
        {
            Thread.Sleep(50); // most likely halted by now; a raise before the HLT ends the same way
            vm.SetIrqLine(1, true);
            vm.SetIrqLine(1, false);
        }, () => "the halted vCPU did not wake for the PIC's interrupt");
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, PortB), (reason, port));
        Assert.Equal([0x31UL], g.Deliveries.Select(d => d.Vector));
    }

    [ConformanceCase("arch/x86/kvm/i8254.c pit_timer_fn → pit_do_work → kvm_set_irq(KVM_PIT_IRQ_SOURCE_ID, 0): a guest that programs the " +
                     "PICs (IRQ0 unmasked, base 0x20) and PIT channel 0 (mode 2, 2 ms) takes IRQ0 as vector 0x20 while it halts, " +
                     "each tick after the PIC acked the last (reinject: kvm_pit_ack_irq through the auto-EOI ack)")]
    public static void pit_channel0_ticks_reach_a_guest_programmed_pic(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ushort Count = 2386; // 1193182 Hz / 2386 ≈ 2 ms
        using var g = Guest(kvm, a =>
        {
            // Base 0x20: IdtGuest's handlers for vectors 0x30 and up would share the page of its delivery records. The
            // master in auto-EOI mode (ICW4 0x03): no ISR bit, so a tick that lands between two HLTs cannot block the
            // next; its ack still reaches the PIT (pic_intack → pic_clear_isr → kvm_notify_acked_irq).
            InitPics(a, 0x20, 0x28, 0xfe, 0xff, masterIcw4: 0x03);
            Out(a, 0x43, 0x34); // channel 0, lobyte/hibyte, mode 2
            Out(a, 0x40, Count & 0xff);
            Out(a, 0x40, Count >> 8);
            a.sti();
            for (int i = 0; i < 3; i++) a.hlt();
            a.cli();
            Out(a, PortA, 0);
        }, 0x20, 0x27);
        g.Guest.Vm.CreatePit();
        EnableInterrupts(g);
        var (reason, port) = RunOnThread(ctx, g, () => { },
            () => $"the guest did not take three PIT ticks in 30 s: deliveries {string.Join("; ", g.Deliveries)}");
        Assert.True((reason, port) == (KvmExitReason.KVM_EXIT_IO, PortA),
            $"{reason} port 0x{port:X}, RIP 0x{g.Vcpu.GetRegs().rip:X}; deliveries {string.Join("; ", g.Deliveries)}");
        // Each HLT ends at a tick; one that lands before a HLT is taken there too: at least three, all IRQ0.
        Assert.True(g.Deliveries.Count >= 3 && g.Deliveries.All(d => d.Vector == 0x20), string.Join("; ", g.Deliveries.Select(d => d.Vector)));
    }

    /// <summary>irqfd_inject runs from a work item on Linux: waits (up to 5 s) until <paramref name="done"/> holds.</summary>
    private static void IrqfdResampleWait(Func<bool> done, string what)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!done())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(5)) throw new Xunit.Sdk.XunitException($"timed out waiting until {what}");
            Thread.Sleep(1);
        }
    }

    /// <summary>Programs IOAPIC pin 20 through the window (vector 0x40, fixed, physical APIC 0, <paramref name="low"/>'s trigger), then loops A, B, EOI.</summary>
    /// <summary>
    /// A guest that programs IOAPIC <paramref name="pin"/> with <paramref name="low"/> (destination APIC 0) and loops:
    /// OUT A, an interrupt window, OUT B, EOI. <paramref name="maskPics"/>: OCW1 masks every input of the
    /// never-initialised PICs first (a GSI below 16 drives them too).
    /// </summary>
    private static IdtGuest IoapicGuest(Kvm kvm, uint low, int pin = 20, bool maskPics = false) => Guest(kvm, a =>
    {
        if (maskPics)
        {
            Out(a, 0xa1, 0xff);
            Out(a, 0x21, 0xff);
        }
        a.mov(rbx, IoapicBase);
        IoapicWrite(a, (uint)(0x11 + 2 * pin), 0);
        IoapicWrite(a, (uint)(0x10 + 2 * pin), low);
        a.sti();
        var loop = a.CreateLabel();
        a.Label(ref loop);
        Out(a, PortA, 0);
        a.nop();
        Out(a, PortB, 0);
        a.mov(rax, ApicEoi);
        a.mov(__dword_ptr[rax], 0);
        a.jmp(loop);
    }, 0x40);

    [ConformanceCase(IoapicC + " ioapic_set_irq / rtc_irq_check_coalesced / rtc_irq_eoi: KVM_IRQ_LINE_STATUS on RTC_GSI (8) answers the " +
                     "IOAPIC's part as coalesced (0) while its last delivery waits for the guest's EOI — even after the line went low — " +
                     "and delivers again once the guest EOIed it (the PIC, masked by the guest, answers 0 throughout)")]
    public static void rtc_gsi_deliveries_wait_for_their_eoi(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IoapicGuest(kvm, 0x40, pin: 8, maskPics: true); // edge, fixed, physical APIC 0, vector 0x40
        var vm = g.Guest.Vm;
        EnableInterrupts(g);
        RunTo(g, PortA);

        // The masked PIC answers 0 each time; the IOAPIC delivers, then coalesces until the EOI.
        Assert.Equal(1, vm.SetIrqLine(8, true));
        vm.SetIrqLine(8, false);
        Assert.Equal(0, vm.SetIrqLine(8, true));
        vm.SetIrqLine(8, false);
        RunTo(g, PortB);
        Assert.Equal([0x40UL], g.Deliveries.Select(d => d.Vector));
        RunTo(g, PortA); // the guest's EOI
        Assert.Equal(1, vm.SetIrqLine(8, true));
        vm.SetIrqLine(8, false);
        RunTo(g, PortB);
        Assert.Equal([0x40UL, 0x40UL], g.Deliveries.Select(d => d.Vector));
    }

    [ConformanceCase(IoapicC + " ioapic_write_indirect + ioapic_service, lapic.c kvm_ioapic_send_eoi (ioapic_handled_vectors from " +
                     "kvm_ioapic_scan_entry: an edge entry with an ack notifier counts) + kvm_ioapic_update_eoi_one (kvm_notify_acked_irq for an edge EOI too): " +
                     "an edge entry the guest wrote through IOREGSEL/IOWIN delivers KVM_IRQ_LINE's edge through the guest's IDT; a resampling irqfd on " +
                     "that edge pin is de-asserted and its resamplefd signalled at the guest's xAPIC EOI, not at delivery (kvm_pvm: at delivery, " +
                     "HostDeviations.KvmPvmHandledEdgeEoiAtDelivery)")]
    public static void guest_programmed_ioapic_delivers_an_irq_line(CaseContext ctx)
    {
        bool pvm = HostDeviations.KvmPvmHandledEdgeEoiAtDelivery(ctx.Target.IsReal);
        using var kvm = ctx.OpenKvm();
        using var g = IoapicGuest(kvm, 0x40);
        var vm = g.Guest.Vm;
        EnableInterrupts(g);
        RunTo(g, PortA);
        Assert.Equal(0x40UL, vm.GetIoapicState().Redirection(20).Bits);

        vm.SetIrqLine(20, true);
        vm.SetIrqLine(20, false);
        RunTo(g, PortB);
        Assert.Equal([0x40UL], g.Deliveries.Select(d => d.Vector));
        RunTo(g, PortA);

        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var r = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var reg = vm.AssignIrqFd(e, 20, resample: r);
        e.Signal();
        IrqfdResampleWait(() => g.Vcpu.GetLapic().IsRequested(0x40), "the resampling irqfd's edge reached IRR");
        RunTo(g, PortB);
        Assert.Equal(2, g.Deliveries.Count);
        // Upstream: the line is high but hidden (irr_delivered), the resamplefd quiet until the EOI; kvm_pvm acks the
        // vector at delivery: the line is low and the resamplefd signalled already.
        Assert.Equal(pvm ? 1UL : 0UL, ReadOr0(r));
        Assert.True((vm.GetIoapicState().State.irr & (1u << 20)) == 0, "an edge pin already delivered hides its irr");
        RunTo(g, PortA);
        Assert.Equal(pvm ? 0UL : 1UL, ReadOr0(r));
        // The ack lowered the resampler's line: the next signal is a new edge.
        e.Signal();
        IrqfdResampleWait(() => g.Vcpu.GetLapic().IsRequested(0x40), "a second signal reached IRR");
        RunTo(g, PortB);
        Assert.Equal(3, g.Deliveries.Count);
    }

    [ConformanceCase(IoapicC + " kvm_ioapic_update_eoi_one + lapic.c kvm_lapic_suppress_eoi_broadcast: with SPIV's directed-EOI bit (set by " +
                     "KVM_SET_LAPIC: LVR does not offer it with the in-kernel IOAPIC) a level-triggered EOI leaves remote IRR set — the ack notifiers " +
                     "still run — unless KVM_CAP_X2APIC_API's KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST; the 82093AA has no EOI register, so the guest " +
                     "clears remote IRR by rewriting the entry edge-triggered (ioapic_write_indirect), as Linux does (kvm_pvm acks at delivery, " +
                     "HostDeviations.KvmPvmLevelEoiAtDelivery, under the same directed-EOI rule)")]
    public static void directed_eoi_leaves_remote_irr_for_the_guest(CaseContext ctx)
    {
        bool pvm = HostDeviations.KvmPvmLevelEoiAtDelivery(ctx.Target.IsReal);
        foreach (bool disable in new[] { false, true })
        {
            using var kvm = ctx.OpenKvm();
            using var g = Guest(kvm, a =>
            {
                a.mov(rbx, IoapicBase);
                IoapicWrite(a, 0x11 + 2 * 20, 0);
                IoapicWrite(a, 0x10 + 2 * 20, 0x8040);
                a.sti();
                Out(a, PortA, 0);
                a.nop();
                Out(a, PortB, 0);
                a.mov(rax, ApicEoi);
                a.mov(__dword_ptr[rax], 0);
                Out(a, PortC, 0);
                a.mov(__dword_ptr[rbx + 0x40], 0x40);
                Out(a, PortD, 0);
                IoapicWrite(a, 0x10 + 2 * 20, 0x40);
                IoapicWrite(a, 0x10 + 2 * 20, 0x8040);
                var end = a.CreateLabel();
                a.Label(ref end);
                Out(a, PortE, 0);
                a.jmp(end);
            }, 0x40);
            var vm = g.Guest.Vm;
            if (disable)
            {
                var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X2APIC_API };
                cap.args[0] = 8; // KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST
                Assert.Equal(0, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_ENABLE_CAP, Raw(ref cap)));
            }
            EnableInterrupts(g, spiv: 0x11ff);
            Assert.Equal(0x11ffu, g.Vcpu.GetLapic()[0xf0]);
            string what = disable ? "suppression disabled" : "directed EOI";
            RunTo(g, PortA);
            bool RemoteIrr() => vm.GetIoapicState().Redirection(20).RemoteIrr;
            vm.SetIrqLine(20, true);
            Assert.True(RemoteIrr(), $"{what}: remote IRR after the assertion");
            // Lowered before the delivery: a line still high at the EOI would be delivered again (kvm_pvm acks at
            // delivery, HostDeviations.KvmPvmLevelEoiAtDelivery, and would re-deliver it at the next run).
            vm.SetIrqLine(20, false);
            Assert.True(RemoteIrr(), $"{what}: remote IRR after the line went low");
            RunTo(g, PortB);
            Assert.Equal([0x40UL], g.Deliveries.Select(d => d.Vector));
            // kvm_pvm's ack at delivery obeys directed EOI too: remote IRR stays with it, goes without it.
            Assert.True(RemoteIrr() == (!pvm || !disable), $"{what}: remote IRR after the delivery: {RemoteIrr()}");
            int atB = g.Deliveries.Count;
            RunTo(g, PortC);
            int atC = g.Deliveries.Count;
            Assert.True(RemoteIrr() == !disable, $"{what}: remote IRR after the xAPIC EOI: {RemoteIrr()}");
            RunTo(g, PortD);
            int atD = g.Deliveries.Count;
            Assert.True(RemoteIrr() == !disable, $"{what}: remote IRR after a write to base + 0x40: {RemoteIrr()}");
            RunTo(g, PortE);
            Assert.False(RemoteIrr(), $"{what}: remote IRR after the entry went edge-triggered and back");
            Assert.Equal(0x8040UL, vm.GetIoapicState().Redirection(20).Bits);
            Assert.True(g.Deliveries.Count == 1, $"{what}: deliveries at B {atB}, C {atC}, D {atD}, E {g.Deliveries.Count}: {string.Join("; ", g.Deliveries)}");
        }
    }

    [ConformanceCase(IoapicC + " kvm_ioapic_init registers the window once at 0xFEC00000 (kvm_io_bus_register_dev, IOAPIC_MEM_LENGTH 0x100) and " +
                     "ioapic_in_range checks ioapic->base_address: after KVM_SET_IRQCHIP moves base_address, a read at the old window and one at the " +
                     "new base both exit to userspace (KVM_EXIT_MMIO); an access of a PIC port that crosses its device's end is userspace's too")]
    public static void the_ioapic_window_does_not_follow_base_address(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a =>
        {
            a.@in(ax, 0x21); // 0x21..0x22 is not inside the master's 0x20 len 2
            a.mov(rbx, IoapicBase);
            a.mov(eax, __dword_ptr[rbx]);
            a.mov(rbx, 0xFEB00000UL);
            a.mov(eax, __dword_ptr[rbx]);
            Out(a, PortA, 0);
        });
        var vm = g.Guest.Vm;
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == 0x21 && exit.IoSize == 2, $"word IN at 0x21: {exit.ToString()}");
        var io = vm.GetIoapicState().State;
        io.base_address = 0xFEB00000;
        vm.SetIoapicState(new IoapicState(io));
        Assert.Equal(0xFEB00000UL, vm.GetIoapicState().BaseAddress);
        exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioAddress == IoapicBase && !exit.MmioIsWrite, $"read at the old window: {exit.ToString()}");
        exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioAddress == 0xFEB00000 && !exit.MmioIsWrite, $"read at the new base: {exit.ToString()}");
        RunTo(g, PortA);
    }
}
