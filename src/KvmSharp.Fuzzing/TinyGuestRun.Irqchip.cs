// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="IrqchipOps.GuestProgrammed"/>: a 64-bit guest that programs the full in-kernel irqchip and the PIT itself
/// (arch/x86/kvm/i8259.c picdev_write/read and elcr_ioport_*, ioapic.c ioapic_mmio_read/write, i8254.c
/// pit_ioport_write/read and speaker_ioport_*). A fresh VM with KVM_CREATE_IRQCHIP, a PIT most of the time
/// (KVM_CREATE_PIT or KVM_CREATE_PIT2, with or without the dummy speaker, now and then a KVM_SET_PIT2 state first), and a
/// program drawn from the seed: PIC initialisation words (ICW1–4), masks (OCW1), EOIs and priority commands (OCW2),
/// OCW3 (read IRR/ISR, poll, special mask), ELCR at 0x4d0/0x4d1, IOAPIC registers through IOREGSEL/IOWIN at 0xFEC00000
/// (ID, version, arbitration, redirection entries, out of range), PIT control words, counts, latches, read-back and
/// port 0x61, xAPIC EOIs. Every IN and IOWIN read is stored; at the program's phase ports the host raises, lowers or
/// pulses lines with KVM_IRQ_LINE_STATUS. At the end the stored values, KVM_GET_IRQCHIP of both PICs and the IOAPIC,
/// the LAPIC's IRR/ISR/TMR and KVM_GET_PIT2 are compared.
/// <para>
/// Half the programs take interrupts: short windows (<c>sti</c>, a bounded spin, <c>cli</c>) in which one vector the
/// PIC (ExtINT through LINT0) or the IOAPIC delivers reaches a handler that writes the xAPIC EOI, OUTs the vector and
/// IRETs with IF still clear (see <see cref="WriteReturningIdt"/>); most start from the PC's usual set-up. Those programs
/// write only edge-triggered, fixed or lowest-priority IOAPIC entries and the host only pulses lines (never leaves one
/// high): this host acks a level-triggered IOAPIC vector at delivery (HostDeviations.KvmPvmLevelEoiAtDelivery), and a
/// level-triggered PIC pin in auto-EOI mode would be delivered again and again for as long as the window lasts — a
/// count that depends on time. The other programs keep RFLAGS.IF clear: their level entries reach the LAPIC's IRR and
/// TMR and stay there. No entry is ever NMI, SMI, INIT, SIPI or ExtINT (an INIT would leave the only vCPU waiting for a
/// SIPI in KVM_RUN). Channel 0 of the PIT never gets a timer (it is loaded only in mode 5 or with HPET legacy on: see
/// <see cref="PitOps"/>), so its counts and status read the same on any clock; channels 1 and 2 count with the host's
/// clock, so what a guest reads from them is stored but not compared (the state machine it moves — latches, read and
/// write states — is, through KVM_GET_PIT2).
/// </para>
/// </summary>
internal static partial class TinyGuestRun
{
    private const byte PortPhase = 0x9B, PortDone = 0x9C;
    private const ulong IoapicMmio = 0xFEC0_0000;
    private const int MaxIrqchipExits = 200;
    private const ulong ReturningStubGpa = 0x7800;

    /// <summary>A stored guest read: its offset in the data page, width and the bits compared.</summary>
    private readonly record struct StoredRead(int Offset, int Size, uint Mask);

    /// <summary>A host line change at a phase port: KVM_IRQ_LINE_STATUS of <c>Gsi</c> to 1, 0, or 1 then 0.</summary>
    private readonly record struct LineChange(int Gsi, int Kind);

    public static string RunIrqchipGuest(IKernel kernel, KernelFd system, ulong seed)
    {
        var rng = new Random(unchecked((int)seed * 23 + 0x8259));
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        long chipRc = kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL);
        if (chipRc < 0) return "create irqchip " + Errno(chipRc);
        var text = new StringBuilder();

        // The PIT: none, KVM_CREATE_PIT (with the dummy speaker), or KVM_CREATE_PIT2 with or without it.
        int pitKind = rng.Next(4);
        bool hasPit = pitKind != 0, speaker = pitKind == 1 || (pitKind > 1 && rng.Next(2) == 0);
        bool hpetLegacy = false;
        int channel0Mode = 0xff;
        if (pitKind == 1) text.Append("pit ").Append(Result(kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT, 0UL))).Append(", ");
        if (pitKind > 1)
        {
            var cfg = new kvm_pit_config { flags = (speaker ? KvmConstants.KVM_PIT_SPEAKER_DUMMY : 0) | (rng.Next(4) == 0 ? 0x100u : 0) };
            text.Append(CultureInfo.InvariantCulture, $"pit2 0x{cfg.flags:X} ").Append(Result(kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT2, Bytes(ref cfg)))).Append(", ");
        }
        if (hasPit && rng.Next(3) == 0)
        {
            // A state to start from: with HPET legacy on no count starts a timer (create_pit_timer), without it channel
            // 0 gets mode 5 or above (pit_load_count: no timer) whatever PitOps drew.
            var set = new kvm_pit_state2 { flags = PitOps.Flags(rng) };
            hpetLegacy = (set.flags & KvmConstants.KVM_PIT_FLAGS_HPET_LEGACY) != 0;
            for (int i = 0; i < 3; i++) set.channels[i] = PitOps.Channel(rng, i, timerOff: hpetLegacy);
            if (!hpetLegacy && set.channels[0].mode <= 4) set.channels[0].mode = 5;
            channel0Mode = set.channels[0].mode;
            text.Append(CultureInfo.InvariantCulture, $"set pit2 0x{set.flags:X} ").Append(Result(kernel.Ioctl(vm, KvmIoctls.KVM_SET_PIT2, Bytes(ref set)))).Append(", ");
        }

        bool windows = rng.Next(2) == 0;
        var reads = new List<StoredRead>();
        var phases = new List<List<LineChange>>();
        byte[] code = IrqchipProgram(rng, windows, hasPit, speaker, hpetLegacy, channel0Mode, reads, phases);
        text.Append(windows ? "interrupt windows: " : "IF clear: ");

        if (StartLongModeGuest(kernel, system, vm, code, WriteReturningIdt, out var started) is string startError) return startError;
        using var guest = started!;
        var (memory, vcpu, run) = guest;
        string? setup = EnterLongMode(kernel, vcpu, seed, IdtGpa, 256 * 16 - 1);
        if (setup is not null) return setup;
        // SPIV's APIC-enable bit: a software-disabled APIC accepts no fixed interrupt from the IOAPIC.
        var lapic = new kvm_lapic_state();
        kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_LAPIC, Bytes(ref lapic));
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(ref lapic)[0xF0..], 0x1FF);
        text.Append("set lapic ").Append(Result(kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_LAPIC, Bytes(ref lapic)))).Append(", ");

        RunIrqchipExits(kernel, vm, vcpu, run, phases, text);

        text.Append(" | reads");
        foreach (var r in reads)
        {
            uint value = r.Size == 1 ? memory.GetSpan(DataGpa + (ulong)r.Offset, 1)[0] : BinaryPrimitives.ReadUInt32LittleEndian(memory.GetSpan(DataGpa + (ulong)r.Offset, 4));
            text.Append(r.Mask == 0 ? " -" : string.Create(CultureInfo.InvariantCulture, $" {value & r.Mask:X}"));
        }
        for (uint chip = 0; chip < 2; chip++)
        {
            var pic = new kvm_irqchip { chip_id = chip };
            long rc = kernel.Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, Bytes(ref pic));
            text.Append(CultureInfo.InvariantCulture, $" | pic{chip} ").Append(rc == 0 ? Convert.ToHexString(Bytes(ref pic)[8..(8 + 16)]) : Errno(rc));
        }
        text.Append(" | ioapic ").Append(Ioapic(kernel, vm));
        long lapicRc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_LAPIC, Bytes(ref lapic));
        text.Append(" | lapic ").Append(lapicRc == 0 ? LapicVectors(Bytes(ref lapic)) : Errno(lapicRc));
        if (hasPit)
        {
            var ps = default(kvm_pit_state2);
            long rc = kernel.Ioctl(vm, KvmIoctls.KVM_GET_PIT2, Bytes(ref ps));
            text.Append(" | pit ").Append(rc == 0 ? string.Create(CultureInfo.InvariantCulture, $"flags=0x{ps.flags:X}") + PitOps.Describe(ps.channels, guestLatched: true) : Errno(rc));
        }
        return text.ToString();
    }

    /// <summary>KVM_RUN to the guest's done port: phases answered with their line changes, vectors and other exits noted.</summary>
    private static void RunIrqchipExits(IKernel kernel, KernelFd vm, KernelFd vcpu, MappedRegion run, List<List<LineChange>> phases, StringBuilder text)
    {
        int phase = 0;
        for (int n = 0; n < MaxIrqchipExits; n++)
        {
            long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
            uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
            if (rc < 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"KVM_RUN {Errno(rc)} exit {reason}");
                return;
            }
            if (reason == (uint)KvmExitReason.KVM_EXIT_MMIO)
            {
                AppendMmioExit(run, text, n);
                text.Append("; ");
                continue;
            }
            if (reason != (uint)KvmExitReason.KVM_EXIT_IO)
            {
                text.Append(CultureInfo.InvariantCulture, $"exit {reason}");
                return;
            }
            ushort port = BinaryPrimitives.ReadUInt16LittleEndian(run.GetSpan(KvmRunLayout.io_port, 2));
            byte al = run.GetSpan(U64(run, KvmRunLayout.io_data_offset), 1)[0];
            bool isOut = run.GetSpan(KvmRunLayout.io_direction, 1)[0] == KvmConstants.KVM_EXIT_IO_OUT;
            if (isOut && port == PortDone)
            {
                text.Append("done");
                return;
            }
            if (isOut && port == PortVector)
            {
                text.Append(CultureInfo.InvariantCulture, $"vector 0x{al:X}; ");
                // An exception (or a vector the PIC was given below 0x20): its handler's IRET would not return.
                if (al < 0x20) return;
                continue;
            }
            if (isOut && port == PortPhase && phase < phases.Count)
            {
                text.Append(CultureInfo.InvariantCulture, $"phase {phase}:");
                foreach (var change in phases[phase]) text.Append(' ').Append(ChangeLine(kernel, vm, change));
                text.Append("; ");
                phase++;
                continue;
            }
            if (!AppendIoExit(run, text, n)) return;
            text.Append("; ");
        }
        text.Append("exit limit");
    }

    private static string ChangeLine(IKernel kernel, KernelFd vm, LineChange change)
    {
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"gsi {change.Gsi}"));
        int[] levels = change.Kind switch { 0 => [1], 1 => [0], _ => [1, 0] };
        foreach (int level in levels)
        {
            var line = new kvm_irq_level { irq = (uint)change.Gsi, level = (uint)level };
            long rc = kernel.Ioctl(vm, KvmIoctls.KVM_IRQ_LINE_STATUS, Bytes(ref line));
            text.Append(CultureInfo.InvariantCulture, $" {level}:").Append(rc == 0 ? ((int)line.irq).ToString(CultureInfo.InvariantCulture) : Errno(rc));
        }
        return text.ToString();
    }

    /// <summary>The LAPIC's IRR, ISR and TMR (kvm_lapic_state at 0x200, 0x100, 0x180) as the vectors set.</summary>
    private static string LapicVectors(Span<byte> regs)
    {
        var text = new StringBuilder();
        foreach (var (name, at) in new[] { ("irr", 0x200), ("isr", 0x100), ("tmr", 0x180) })
        {
            text.Append(' ').Append(name).Append('[');
            for (int v = 0; v < 256; v++)
            {
                if ((BinaryPrimitives.ReadUInt32LittleEndian(regs[(at + v / 32 * 16)..]) >> (v % 32) & 1) != 0) text.Append(CultureInfo.InvariantCulture, $" {v:X}");
            }
            text.Append(" ]");
        }
        return text.ToString();
    }

    /// <summary>
    /// 256 interrupt gates whose handlers write the xAPIC EOI, OUT their vector to <see cref="PortVector"/> and IRET with
    /// RFLAGS.IF clear in the frame; the IOAPIC window (PD entry 0x1F6) and the xAPIC page (0x1F7) mapped uncached
    /// through PDPT[3]. Both for this host (HostDeviations.KvmPvmDeliveredApicVectorNotInService: a vector it delivers
    /// never shows in ISR, and the next one waits for the next KVM_RUN instead of the EOI or the IRET): the EOI before
    /// the host sees the vector leaves ISR empty on every kernel, and one delivery per window (the IRET does not set IF
    /// again) leaves no second vector whose moment of delivery differs.
    /// </summary>
    private static void WriteReturningIdt(MappedRegion memory)
    {
        var idt = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(IdtGpa, 256 * 16));
        for (int v = 0; v < 256; v++)
        {
            ulong handler = HandlersGpa + (ulong)v * HandlerStride;
            idt[2 * v] = (handler & 0xffff) | ((ulong)TinyGuestProgram.CodeSelector << 16) | (0xEUL << 40) | (1UL << 47) | ((handler >> 16 & 0xffff) << 48);
            idt[2 * v + 1] = handler >> 32;
            var h = memory.GetSpan(handler, 7);
            h[0] = 0xB0; // mov al, v
            h[1] = (byte)v;
            h[2] = 0xE9; // jmp rel32 to the common part
            BinaryPrimitives.WriteInt32LittleEndian(h[3..], (int)(ReturningStubGpa - (handler + 7)));
        }
        var a = new Assembler(64);
        a.push(rdx);
        a.mov(edx, 0xFEE0_00B0u);
        a.mov(__dword_ptr[rdx], 0);
        a.pop(rdx);
        a.@out(PortVector, al);
        a.and(__qword_ptr[rsp + 16], ~0x200);
        a.iretq();
        TinyGuestProgram.Encode(a, ReturningStubGpa).CopyTo(memory.GetSpan(ReturningStubGpa, 32));
        MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(Pdpt + 3 * 8, 8))[0] = ApicPd | 3;
        MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(ApicPd + 0x1F6 * 8, 8))[0] = IoapicMmio | 0x93;
        MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(ApicPd + 0x1F7 * 8, 8))[0] = 0xFEE0_0000UL | 0x93;
    }

    /// <summary>
    /// The program (see the class comment): 4–28 actions with a phase port now and then, the done port and a spin. Every
    /// stored read is added to <paramref name="reads"/>, every phase's line changes to <paramref name="phases"/>.
    /// </summary>
    private static byte[] IrqchipProgram(Random rng, bool windows, bool hasPit, bool speaker, bool hpetLegacy, int channel0Mode,
        List<StoredRead> reads, List<List<LineChange>> phases)
    {
        var a = new Assembler(64);
        int offset = 0;
        void Store(int size, uint mask)
        {
            if (size == 1) a.mov(__byte_ptr[DataGpa + (ulong)offset], al);
            else a.mov(__dword_ptr[DataGpa + (ulong)offset], eax);
            reads.Add(new StoredRead(offset, size, mask));
            offset += 4;
        }
        void Out(ushort port, byte value)
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
        void In(ushort port, uint mask)
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
            Store(1, mask);
        }
        var opened = new List<int>();
        void Window()
        {
            var spin = a.CreateLabel();
            a.mov(ecx, 2000);
            a.sti();
            a.Label(ref spin);
            a.dec(ecx);
            a.jnz(spin);
            a.cli();
        }
        void Phase()
        {
            var changes = new List<LineChange>();
            for (int i = rng.Next(0, 3); i > 0; i--)
            {
                int gsi = opened.Count > 0 && rng.Next(2) == 0 ? opened[rng.Next(opened.Count)] : rng.Next(12) == 0 ? rng.Next(24, 32) : rng.Next(0, 24);
                changes.Add(new LineChange(gsi, windows ? 2 : rng.Next(3)));
            }
            phases.Add(changes);
            a.@out(PortPhase, al);
            // Pulses have a window to be delivered in, most of the time.
            if (windows && rng.Next(3) != 0) Window();
        }

        a.mov(rbx, IoapicMmio);
        if (windows && rng.Next(3) != 0)
        {
            // Most programs with windows start from the PC's usual set-up, so their pulses have somewhere to go: both
            // PICs initialised (bases 0x20 and up, cascade on pin 2, auto-EOI now and then) with some pins open, and an
            // IOAPIC pin or two edge-triggered to APIC 0.
            byte master = (byte)rng.Next(4, 16), slave = (byte)rng.Next(4, 16);
            foreach (var (cmd, bas, cascade, icw4, imr) in new[] { (0x20, master, 0x04, rng.Next(4) == 0 ? 0x03 : 0x01, rng.Next(0x100) & ~0x04), (0xA0, slave, 0x02, 0x01, rng.Next(0x100)) })
            {
                Out((ushort)cmd, 0x11);
                Out((ushort)(cmd + 1), (byte)(bas * 8));
                Out((ushort)(cmd + 1), (byte)cascade);
                Out((ushort)(cmd + 1), (byte)icw4);
                Out((ushort)(cmd + 1), (byte)imr);
                for (int pin = 0; pin < 8; pin++)
                {
                    if ((imr >> pin & 1) == 0 && !(cmd == 0x20 && pin == 2)) opened.Add(cmd == 0x20 ? pin : 8 + pin);
                }
            }
            for (int n = rng.Next(1, 3); n > 0; n--)
            {
                int pin = rng.Next(0, 24);
                opened.Add(pin);
                a.mov(__dword_ptr[rbx], (uint)(0x11 + 2 * pin));
                a.mov(__dword_ptr[rbx + 0x10], 0u);
                a.mov(__dword_ptr[rbx], (uint)(0x10 + 2 * pin));
                a.mov(__dword_ptr[rbx + 0x10], (uint)rng.Next(0x40, 0x100));
            }
        }
        int actions = rng.Next(4, 29);
        for (int i = 0; i < actions; i++)
        {
            switch (rng.Next(20))
            {
                case 0 or 1:
                {
                    // ICW1–4; a single PIC (SNGL) skips ICW3, no IC4 skips ICW4; LTIM and SNGL are rare (pr_pic_unimpl).
                    ushort cmd = (ushort)(rng.Next(2) == 0 ? 0x20 : 0xA0);
                    byte icw1 = (byte)(rng.Next(16) == 0 ? 0x10 | rng.Next(16) : 0x11);
                    Out(cmd, icw1);
                    Out((ushort)(cmd + 1), (byte)(rng.Next(12) == 0 ? rng.Next(0x100) : rng.Next(4, 32) * 8));
                    if ((icw1 & 2) == 0) Out((ushort)(cmd + 1), (byte)(cmd == 0x20 ? 0x04 : 0x02));
                    if ((icw1 & 1) != 0) Out((ushort)(cmd + 1), (byte)(rng.Next(4) switch { 0 => 0x03, 1 => rng.Next(0x100), _ => 0x01 }));
                    break;
                }
                case 2 or 3:
                    Out(rng.Next(2) == 0 ? (ushort)0x21 : (ushort)0xA1, (byte)(rng.Next(3) == 0 ? 0xFF : rng.Next(0x100)));
                    break;
                case 4:
                    // OCW2: non-specific / specific EOI, rotations, set priority, rotate in auto-EOI set / clear, no-op.
                    Out(rng.Next(2) == 0 ? (ushort)0x20 : (ushort)0xA0, (byte)(rng.Next(8) switch
                    {
                        0 or 1 => 0x20,
                        2 => 0x60 | rng.Next(8),
                        3 => 0xA0,
                        4 => 0xE0 | rng.Next(8),
                        5 => 0xC0 | rng.Next(8),
                        6 => rng.Next(2) == 0 ? 0x80 : 0x00,
                        _ => 0x40,
                    }));
                    break;
                case 5:
                    // OCW3: read IRR, read ISR, poll, special mask reset / set, or nothing.
                    Out(rng.Next(2) == 0 ? (ushort)0x20 : (ushort)0xA0, (byte)(rng.Next(6) switch { 0 => 0x0A, 1 => 0x0B, 2 => 0x0C, 3 => 0x48, 4 => 0x68, _ => 0x08 }));
                    break;
                case 6 or 7:
                    In((ushort)((rng.Next(2) == 0 ? 0x20 : 0xA0) + rng.Next(2)), 0xFF);
                    break;
                case 8:
                    if (rng.Next(2) == 0) Out((ushort)(0x4D0 + rng.Next(2)), (byte)rng.Next(0x100));
                    else In((ushort)(0x4D0 + rng.Next(2)), 0xFF);
                    break;
                case 9 or 10:
                {
                    uint sel = IoapicSelect(rng);
                    uint value = (sel & 1) == 0 && sel >= 0x10 ? IoapicEntryLow(rng, windows) : rng.Next(4) switch
                    {
                        0 => (uint)rng.Next() << 1,
                        1 => (uint)rng.Next(0, 16) << 24,
                        _ => rng.Next(3) == 0 ? 0xFFu << 24 : (uint)rng.Next(0, 2) << 24,
                    };
                    a.mov(__dword_ptr[rbx], sel);
                    a.mov(__dword_ptr[rbx + 0x10], value);
                    break;
                }
                case 11:
                {
                    uint sel = IoapicSelect(rng);
                    a.mov(__dword_ptr[rbx], sel);
                    // IOWIN, IOREGSEL itself, or the unused offsets 0x20 and 0x40 (no EOI register: reads 0).
                    int at = rng.Next(6) switch { 0 => 0, 1 => 0x20, 2 => 0x40, _ => 0x10 };
                    a.mov(eax, __dword_ptr[rbx + at]);
                    Store(4, 0xFFFF_FFFF);
                    break;
                }
                case 12 or 13:
                {
                    // A control word: channel 0–2 (latch, access 1–3, mode 0–7, BCD) or read-back; channel 0's mode followed.
                    byte word = (byte)rng.Next(0x100);
                    Out(0x43, word);
                    if (word >> 6 == 0 && (word >> 4 & 3) != 0)
                    {
                        int mode = word >> 1 & 7;
                        channel0Mode = mode > 5 ? mode - 4 : mode;
                    }
                    break;
                }
                case 14:
                {
                    // A count byte; channel 0 only while a load cannot start its timer.
                    int channel = rng.Next(3);
                    if (channel == 0 && !hpetLegacy && channel0Mode <= 4) channel = rng.Next(1, 3);
                    Out((ushort)(0x40 + channel), (byte)(rng.Next(4) == 0 ? 0 : rng.Next(0x100)));
                    break;
                }
                case 15:
                {
                    // Channel 0 reads the same on any clock; 1 and 2 count with it (without a PIT userspace answers).
                    int channel = rng.Next(3);
                    In((ushort)(0x40 + channel), channel == 0 || !hasPit ? 0xFFu : 0);
                    break;
                }
                case 16:
                    // Port 0x61: bit 4 is a refresh clock (ktime_get) and bit 5 channel 2's OUT: not compared.
                    if (rng.Next(2) == 0) Out(0x61, (byte)rng.Next(0x100));
                    else In(0x61, speaker && hasPit ? 0xCFu : 0xFF);
                    break;
                case 17:
                    a.mov(rax, 0xFEE0_00B0UL);
                    a.mov(__dword_ptr[rax], 0);
                    break;
                case 18 when windows:
                    Window();
                    break;
                default:
                    Phase();
                    break;
            }
            if (rng.Next(5) == 0) Phase();
        }
        Phase();
        var end = a.CreateLabel();
        a.@out(PortDone, al);
        a.Label(ref end);
        a.jmp(end);
        return TinyGuestProgram.Encode(a, CodeGpa);
    }

    /// <summary>IOREGSEL: ID, version, arbitration, a redirection entry's low or high half, or anything.</summary>
    private static uint IoapicSelect(Random rng) => rng.Next(8) switch
    {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => (uint)rng.Next(0x100),
        _ => (uint)(0x10 + rng.Next(0, 48)),
    };

    /// <summary>
    /// A redirection entry's low half: vector, fixed or lowest priority, physical or logical, active high or low, edge
    /// (always, with interrupt windows) or level, masked now and then; remote IRR and delivery status bits set at random
    /// (read-only: ioapic_write_indirect keeps them).
    /// </summary>
    private static uint IoapicEntryLow(Random rng, bool windows)
    {
        uint e = (uint)rng.Next(0x20, 0x100) | (uint)rng.Next(0, 2) << 8;
        if (rng.Next(4) == 0) e |= 1u << 11;
        if (rng.Next(6) == 0) e |= 1u << 13;
        if (!windows && rng.Next(2) == 0) e |= 1u << 15;
        if (rng.Next(3) == 0) e |= 1u << 16;
        if (rng.Next(6) == 0) e |= rng.Next(3) switch { 0 => 1u << 12, 1 => 1u << 14, _ => 0x5000u };
        return e;
    }
}
