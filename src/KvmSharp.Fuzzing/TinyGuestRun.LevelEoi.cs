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
/// <see cref="OpKind.LevelEoiGuestRun"/>: a guest that takes an IOAPIC interrupt and writes the LAPIC's EOI register
/// (ioapic.c ioapic_service / kvm_ioapic_update_eoi_one, lapic.c apic_set_eoi). A fresh VM with the in-kernel irqchip,
/// a 64-bit guest whose IDT sends every vector to a handler that OUTs it (the drawn vector's handler first writes
/// 0xFEE000B0), SPIV enabled through KVM_SET_LAPIC. After the guest's first OUT the host programs one IOAPIC pin
/// through KVM_SET_IRQCHIP (a vector, level or edge, masked now and then, physical APIC 0 or 1, broadcast, or logical)
/// and pulses its line with KVM_IRQ_LINE_STATUS; the guest then enables interrupts and spins a bounded loop. Compared:
/// every status, every exit (the vector delivered or the loop's end) and the IOAPIC's state (KVM_GET_IRQCHIP) after the
/// pulse, after the guest's EOI, and after a second pulse.
/// <para>
/// The line is always low again before the guest runs: this host (kvm_pvm) tells the IOAPIC of a level-triggered EOI
/// when it delivers the vector, not at the guest's EOI (HostDeviations.KvmPvmLevelEoiAtDelivery), so remote IRR is
/// clear after the EOI on both kernels only when no line is still high to re-deliver; and the IOAPIC is never read
/// between the delivery and the EOI. The vCPU never halts in the kernel (no HLT: it would wait for an interrupt).
/// </para>
/// </summary>
internal static partial class TinyGuestRun
{
    private const byte PortStarted = 0x97, PortNoInterrupt = 0x98, PortEoi = 0x99, PortVector = 0x9A;
    private const ulong ApicPd = 0x8000, EoiHandlerGpa = 0x7800;

    public static string RunLevelEoi(IKernel kernel, KernelFd system, ulong seed)
    {
        var rng = new Random(unchecked((int)seed * 19 + 0xE01));
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        long chipRc = kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL);
        if (chipRc < 0) return "create irqchip " + Errno(chipRc);
        int vector = rng.Next(0x20, 0x100);
        byte[] code = EoiProgram();
        if (StartLongModeGuest(kernel, system, vm, code, m => WriteEoiIdt(m, vector), out var started) is string startError) return startError;
        using var guest = started!;
        var (memory, vcpu, run) = guest;
        string? setup = EnterLongMode(kernel, vcpu, seed, IdtGpa, 256 * 16 - 1);
        if (setup is not null) return setup;

        // SPIV's APIC-enable bit (a software-disabled APIC accepts no fixed interrupt), vector 0xFF.
        var lapic = new kvm_lapic_state();
        kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_LAPIC, Bytes(ref lapic));
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(ref lapic)[0xF0..], 0x1FF);
        var text = new StringBuilder();
        text.Append("set lapic ").Append(Result(kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_LAPIC, Bytes(ref lapic)))).Append(", ");
        RunToOut(kernel, vcpu, run, text);

        // Pins 1–23: GSIs below 16 also drive the 8259, which (never initialised: IMR 0, vector base 0) reaches vCPU 0
        // through LVT0's ExtINT (the emulator models the PIC's output since session 14); RTC_GSI 8 with its EOI tracking
        // (rtc_irq_check_coalesced: kvm_pvm answers a second pulse whose delivery was not EOIed as coalesced).
        int pin = rng.Next(1, 24);
        bool level = rng.Next(4) != 0;
        ulong entry = (uint)vector | (level ? 1UL << 15 : 0) | (rng.Next(8) == 0 ? 1UL << 16 : 0);
        switch (rng.Next(8))
        {
            case 0: entry |= 1UL << 56; break;                 // physical APIC 1: no such vCPU
            case 1: entry |= 0xFFUL << 56; break;              // physical broadcast
            case 2: entry |= 1UL << 11 | 1UL << 56; break;     // logical 1: LDR is 0 after reset, nobody
            default: break;                                    // physical APIC 0
        }
        if (rng.Next(6) == 0) entry |= 1UL << 13;              // active low: the line's level is inverted
        text.Append(CultureInfo.InvariantCulture, $"pin {pin} entry 0x{entry:X}: ");
        text.Append("set ").Append(Result(SetIoapicEntry(kernel, vm, pin, entry))).Append(", ");
        Pulse(kernel, vm, pin, rng, text);
        text.Append("ioapic ").Append(Ioapic(kernel, vm)).Append(" | ");
        RunToOut(kernel, vcpu, run, text);
        text.Append(" | ioapic ").Append(Ioapic(kernel, vm));
        // The line again after the EOI: delivered into IRR (the guest's IF is clear in its handler), remote IRR again.
        text.Append(" | ");
        Pulse(kernel, vm, pin, rng, text);
        text.Append("ioapic ").Append(Ioapic(kernel, vm));
        return text.ToString();
    }

    /// <summary>KVM_IRQ_LINE_STATUS high then low (for an active-low entry: the same calls, inverted meaning).</summary>
    private static void Pulse(IKernel kernel, KernelFd vm, int pin, Random rng, StringBuilder text)
    {
        int highs = rng.Next(5) == 0 ? 2 : 1;
        for (int i = 0; i <= highs; i++)
        {
            var line = new kvm_irq_level { irq = (uint)pin, level = i < highs ? 1u : 0u };
            long rc = kernel.Ioctl(vm, KvmIoctls.KVM_IRQ_LINE_STATUS, Bytes(ref line));
            text.Append(CultureInfo.InvariantCulture, $"line {(i < highs ? 1 : 0)} ").Append(rc == 0 ? ((int)line.irq).ToString(CultureInfo.InvariantCulture) : Errno(rc)).Append(", ");
        }
    }

    private static long SetIoapicEntry(IKernel kernel, KernelFd vm, int pin, ulong entry)
    {
        var chip = new kvm_irqchip { chip_id = 2 };
        long rc = kernel.Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, Bytes(ref chip));
        if (rc < 0) return rc;
        // kvm_irqchip: chip_id, pad, then kvm_ioapic_state: base_address, ioregsel, id, irr, pad, redirtbl[24].
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(ref chip)[(8 + 24 + 8 * pin)..], entry);
        return kernel.Ioctl(vm, KvmIoctls.KVM_SET_IRQCHIP, Bytes(ref chip));
    }

    /// <summary>KVM_GET_IRQCHIP of the IOAPIC: irr and the entries that are not the reset value (masked, all else 0).</summary>
    private static string Ioapic(IKernel kernel, KernelFd vm)
    {
        var chip = new kvm_irqchip { chip_id = 2 };
        long rc = kernel.Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, Bytes(ref chip));
        if (rc < 0) return Errno(rc);
        var bytes = Bytes(ref chip);
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture,
            $"base 0x{BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]):X} sel {BinaryPrimitives.ReadUInt32LittleEndian(bytes[16..])} id {BinaryPrimitives.ReadUInt32LittleEndian(bytes[20..])} irr 0x{BinaryPrimitives.ReadUInt32LittleEndian(bytes[24..]):X}"));
        for (int pin = 0; pin < 24; pin++)
        {
            ulong e = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(8 + 24 + 8 * pin)..]);
            if (e != 1UL << 16) text.Append(CultureInfo.InvariantCulture, $" [{pin}]=0x{e:X}");
        }
        return text.ToString();
    }

    /// <summary>KVM_RUN to the guest's next OUT (or any other exit, which ends the op's runs as well).</summary>
    private static void RunToOut(IKernel kernel, KernelFd vcpu, MappedRegion run, StringBuilder text)
    {
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
        uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
        if (rc < 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"KVM_RUN {Errno(rc)} exit {reason}");
            return;
        }
        if (reason == (uint)KvmExitReason.KVM_EXIT_IO) AppendIoExit(run, text, 0);
        else text.Append(CultureInfo.InvariantCulture, $"exit {reason}");
    }

    /// <summary>
    /// The main program: OUT (the host programs the IOAPIC), STI, a bounded spin, CLI, OUT; then a spin the host never
    /// runs into again.
    /// </summary>
    private static byte[] EoiProgram()
    {
        var a = new Assembler(64);
        var spin = a.CreateLabel();
        var end = a.CreateLabel();
        a.@out(PortStarted, al);
        a.mov(ecx, 2000);
        a.sti();
        a.Label(ref spin);
        a.dec(ecx);
        a.jnz(spin);
        a.cli();
        a.@out(PortNoInterrupt, al);
        a.Label(ref end);
        a.jmp(end);
        return TinyGuestProgram.Encode(a, CodeGpa);
    }

    /// <summary>
    /// 256 interrupt gates: vector v's handler is <c>mov al, v; out 0x9A, al; jmp $</c>; <paramref name="eoiVector"/>'s
    /// jumps to one that writes the xAPIC EOI register first (mapped by a 2 MiB page at 0xFEE00000) and OUTs to 0x99.
    /// </summary>
    private static void WriteEoiIdt(MappedRegion memory, int eoiVector)
    {
        var idt = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(IdtGpa, 256 * 16));
        for (int v = 0; v < 256; v++)
        {
            ulong handler = HandlersGpa + (ulong)v * HandlerStride;
            idt[2 * v] = (handler & 0xffff) | ((ulong)TinyGuestProgram.CodeSelector << 16) | (0xEUL << 40) | (1UL << 47) | ((handler >> 16 & 0xffff) << 48);
            idt[2 * v + 1] = handler >> 32;
            var h = memory.GetSpan(handler, 6);
            if (v == eoiVector)
            {
                h[0] = 0xE9; // jmp rel32 to the EOI handler
                BinaryPrimitives.WriteInt32LittleEndian(h[1..], (int)(EoiHandlerGpa - (handler + 5)));
                continue;
            }
            h[0] = 0xB0; // mov al, v
            h[1] = (byte)v;
            h[2] = 0xE6; // out 0x9A, al
            h[3] = PortVector;
            h[4] = 0xEB; // jmp $
            h[5] = 0xFE;
        }
        var a = new Assembler(64);
        var end = a.CreateLabel();
        a.mov(rax, 0xFEE0_00B0UL);
        a.mov(__dword_ptr[rax], 0);
        a.mov(al, (byte)eoiVector);
        a.@out(PortEoi, al);
        a.Label(ref end);
        a.jmp(end);
        TinyGuestProgram.Encode(a, EoiHandlerGpa).CopyTo(memory.GetSpan(EoiHandlerGpa, 32));
        // PDPT[3] → a page directory whose entry 0x1F7 maps [0xFEE00000, 0xFF000000) (the APIC page), uncached.
        MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(Pdpt + 3 * 8, 8))[0] = ApicPd | 3;
        MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(ApicPd + 0x1F7 * 8, 8))[0] = 0xFEE0_0000UL | 0x93;
    }
}
