// SPDX-License-Identifier: MIT
using System.Diagnostics;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.Cases.GuestProgrammedIrqchip;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The PIT's irq mask notifier (arch/x86/kvm/i8254.c pit_mask_notifer, registered on GSI 0 by kvm_pit_set_reinject):
/// in reinject mode every tick while IRQ0 is masked stays pending (pit_timer_fn: pending++; pit_do_work holds them
/// until an ack), and an unmask by the guest — i8259.c pic_ioport_write OCW1, ioapic.c ioapic_write_indirect —
/// fires kvm_fire_mask_notifiers, whose "if (!mask) kvm_pit_reset_reinject(pit)" drops them (pending 0, irq_ack 1).
/// KVM_SET_IRQCHIP fires no notifier. Probed in C on Linux 6.18 kvm_pvm first (/tmp/mask/probe.c: 200 ticks pending, a
/// guest OCW1 unmask takes 1 interrupt, a KVM_SET_IRQCHIP unmask 200): no deviation from upstream. Channel 0 runs at
/// about 1 ms; the guests count IRQ0 in a handler of their own (no delivery records: a burst would overrun them).
/// </summary>
public static class PitMaskNotifier
{
    private const string I8254 = "arch/x86/kvm/i8254.c";

    /// <summary>The guest's counters and the host's stop flag, at the end of the IdtGuest's report page.</summary>
    private const ulong Counter = IdtGuest.ReportGpa + 0xF00, Stop = IdtGuest.ReportGpa + 0xF08;

    /// <summary>Ports: W while waiting for the first ticks, A masked (the host sleeps), B unmasked, C the counting window, D done.</summary>
    private const byte PortW = 0x18, PortA = 0x19, PortB = 0x1a, PortC = 0x1b, PortD = 0x1c;

    /// <summary>About 1 ms at KVM_PIT_FREQ 1193182 Hz (above min_timer_period_us's 200 µs).</summary>
    private const ushort Count = 1193;

    /// <summary>How long IRQ0 stays masked while channel 0 runs: at least ~200 ticks pile up, however loaded the host.</summary>
    private const int MaskedMs = 200;

    /// <summary>IRQ0's vector: the PIC's base (0x20) and the IOAPIC entry's.</summary>
    private const int Vector = 0x20;

    /// <summary>
    /// IRQ0's handler at the IdtGuest's slot for <see cref="Vector"/>: count, an xAPIC EOI when <paramref name="apicEoi"/>
    /// (the PIC runs in auto-EOI mode: its ack is the INTA), IRETQ.
    /// </summary>
    private static void InstallHandler(IdtGuest g, bool apicEoi)
    {
        ulong at = IdtGuest.HandlersGpa + Vector * 0x100UL;
        var a = new Assembler(64);
        a.push(rax);
        a.inc(__qword_ptr[Counter]);
        if (apicEoi)
        {
            a.mov(rax, ApicEoi);
            a.mov(__dword_ptr[rax], 0);
        }
        a.pop(rax);
        a.iretq();
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), at);
        var mem = g.Guest.Memory;
        mem.Write(at, stream.ToArray());
        var (low, high) = IdtGuest.Gate(at, Gdt.CodeSelector, GateKind.Interrupt, present: true);
        mem.Write(IdtGuest.IdtGpa + Vector * 16UL, low);
        mem.Write(IdtGuest.IdtGpa + Vector * 16UL + 8, high);
        mem.Fill(Counter, 16, 0);
    }

    /// <summary>Channel 0, lobyte/hibyte, mode 2, <see cref="Count"/>: create_pit_timer, periodic.</summary>
    private static void StartPit(Assembler a)
    {
        Out(a, 0x43, 0x34);
        Out(a, 0x40, Count & 0xff);
        Out(a, 0x40, Count >> 8);
    }

    /// <summary>STI, then OUT W until three ticks were counted (the host gives up after 30 s).</summary>
    private static void TakeThreeTicks(Assembler a)
    {
        a.sti();
        var wait = a.CreateLabel();
        a.Label(ref wait);
        Out(a, PortW, 0);
        a.cmp(__qword_ptr[Counter], 3);
        a.jb(wait);
    }

    /// <summary>OUT C until the host sets the stop flag, then OUT D.</summary>
    private static void CountUntilStopped(Assembler a)
    {
        var loop = a.CreateLabel();
        a.Label(ref loop);
        Out(a, PortC, 0);
        a.cmp(__byte_ptr[Stop], 0);
        a.je(loop);
        Out(a, PortD, 0);
        var end = a.CreateLabel();
        a.Label(ref end);
        a.jmp(end);
    }

    private static ulong Ticks(IdtGuest g) => g.Guest.Memory.Read<ulong>(Counter);

    /// <summary>Runs to OUT W's end: the guest took three ticks (fails after 30 s).</summary>
    private static void RunUntilTicking(IdtGuest g, string what)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"{what}: {exit.ToString()}");
            if (exit.IoPort == PortA) return;
            Assert.True(exit.IoPort == PortW, $"{what}: OUT to 0x{exit.IoPort:X}");
            if (sw.Elapsed > TimeSpan.FromSeconds(30)) Assert.Fail($"{what}: {Ticks(g)} ticks in 30 s");
            Thread.Sleep(1);
        }
    }

    /// <summary>
    /// From OUT B (the host's <paramref name="atUnmask"/> runs there) through the counting window: the guest runs with
    /// interrupts enabled, exiting at OUT C, until it took <paramref name="enough"/> IRQ0s or <paramref name="window"/>
    /// passed. Returns the IRQ0s taken after OUT B.
    /// </summary>
    private static ulong CountAfterUnmask(IdtGuest g, Action atUnmask, ulong enough, TimeSpan window, string what)
    {
        RunTo(g, PortB);
        atUnmask();
        ulong before = Ticks(g);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"{what}: {exit.ToString()}");
            if (exit.IoPort == PortD) return Ticks(g) - before;
            Assert.True(exit.IoPort == PortC, $"{what}: OUT to 0x{exit.IoPort:X}");
            if (Ticks(g) - before >= enough || sw.Elapsed > window) g.Guest.Memory.Write<byte>(Stop, 1);
            else Thread.Sleep(1);
        }
    }

    [ConformanceCase(I8254 + " pit_mask_notifer (kvm_pit_reset_reinject on unmask) through i8259.c pic_ioport_write OCW1 " +
                     "(kvm_fire_mask_notifiers for each IMR bit that changed, GSI 0 = PIC IRQ0), reinject on: IRQ0 masked by the guest for " +
                     "~200 ticks of a 1 ms channel 0, then the timer stopped (mode 5: destroy_pit_timer keeps pending); the guest's OCW1 unmask " +
                     "takes exactly the one tick latched in IRR, no burst; the same unmask done by KVM_SET_IRQCHIP (no notifier) delivers " +
                     "the ticks that piled up, one per ack (kvm_pit_ack_irq: atomic_dec_if_positive(pending) > 0 queues the work)")]
    public static void pic_unmask_drops_the_ticks_that_piled_up(CaseContext ctx)
    {
        foreach (bool byHost in new[] { false, true })
        {
            string what = byHost ? "KVM_SET_IRQCHIP unmask" : "OCW1 unmask";
            using var kvm = ctx.OpenKvm();
            using var g = Guest(kvm, a =>
            {
                // Auto-EOI (ICW4 0x03): the ack notifiers run at the INTA (pic_intack → pic_clear_isr).
                InitPics(a, 0x20, 0x28, 0xfe, 0xff, masterIcw4: 0x03);
                StartPit(a);
                TakeThreeTicks(a);
                Out(a, 0x21, 0xff); // OCW1: IRQ0 masked (the notifier's mask = 1 does nothing)
                Out(a, PortA, 0);
                Out(a, 0x43, 0x3a); // channel 0 mode 5: pit_load_count → destroy_pit_timer, pending kept
                Out(a, 0x40, 0);
                Out(a, 0x40, 0);
                Out(a, PortB, 0);
                if (!byHost) Out(a, 0x21, 0xfe); // OCW1: IRQ0 unmasked
                CountUntilStopped(a);
            });
            var vm = g.Guest.Vm;
            vm.CreatePit();
            InstallHandler(g, apicEoi: false);
            EnableInterrupts(g);
            RunUntilTicking(g, what);
            Thread.Sleep(MaskedMs);
            ulong taken = CountAfterUnmask(g, () =>
            {
                if (!byHost) return;
                var m = vm.GetPicState(IrqchipId.PicMaster).State;
                Assert.True((m.irr & 1) != 0, $"{what}: a tick is latched in IRR while masked (irr 0x{m.irr:X2})");
                m.imr = 0xfe;
                vm.SetPicState(IrqchipId.PicMaster, new PicState(m));
            }, enough: 20, window: byHost ? TimeSpan.FromSeconds(30) : TimeSpan.FromMilliseconds(300), what);
            if (byHost) Assert.True(taken >= 20, $"{what}: the piled-up ticks come one per ack; {taken} in 30 s");
            else Assert.True(taken == 1, $"{what}: only the tick latched in IRR, got {taken}");
        }
    }

    [ConformanceCase(I8254 + " pit_mask_notifer through ioapic.c ioapic_write_indirect (mask bit changed: kvm_fire_mask_notifiers(" +
                     "KVM_IRQCHIP_IOAPIC, pin), kvm_irq_map_chip_pin finds GSI 0 on IOAPIC pin 2 under QEMU's routing GSI 0 → PIC 0 + IOAPIC 2), " +
                     "reinject on: an edge tick that meets a masked entry is dropped, never acked, so pit_do_work holds every later one " +
                     "(irq_ack 0); the guest's unmask resets reinject and channel 0's ticks come again (the emulator without the notifier " +
                     "takes none in 30 s)")]
    public static void ioapic_unmask_lets_the_held_ticks_go(CaseContext ctx)
    {
        // No control through KVM_SET_IRQCHIP here (unlike the PIC case): kvm_set_ioapic re-injects the IRR the masked
        // entry latched (kvm_ioapic_inject_all), and whether a tick was latched with irq_ack still 1 depends on when the
        // ticks fell — a CI run under load saw 4 IRQ0s where an idle one saw none.
        const string what = "IOWIN unmask";
        const uint Entry = Vector; // edge, fixed, physical APIC 0
        const uint Masked = 1u << 16;
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a =>
        {
            Out(a, 0xa1, 0xff); // the never-initialised PICs masked: GSI 0 reaches PIC IRQ0 too
            Out(a, 0x21, 0xff);
            a.mov(rbx, IoapicBase);
            IoapicWrite(a, 0x11 + 2 * 2, 0);
            IoapicWrite(a, 0x10 + 2 * 2, Entry);
            StartPit(a);
            TakeThreeTicks(a);
            IoapicWrite(a, 0x10 + 2 * 2, Entry | Masked);
            Out(a, PortA, 0);
            Out(a, PortB, 0);
            IoapicWrite(a, 0x10 + 2 * 2, Entry);
            CountUntilStopped(a);
        });
        var vm = g.Guest.Vm;
        // QEMU's PC routing of the PIT's GSI: PIC IRQ0 and IOAPIC pin 2 (the default routing has IOAPIC pin 0).
        vm.SetGsiRouting([GsiRoute.ToIrqchip(0, IrqchipId.PicMaster, 0), GsiRoute.ToIrqchip(0, IrqchipId.Ioapic, 2)]);
        vm.CreatePit();
        InstallHandler(g, apicEoi: true);
        EnableInterrupts(g);
        RunUntilTicking(g, what);
        Thread.Sleep(MaskedMs);
        ulong taken = CountAfterUnmask(g, () => { }, enough: 3, window: TimeSpan.FromSeconds(30), what);
        Assert.True(taken >= 3, $"{what}: the ticks come again; {taken} in 30 s");
    }
}
