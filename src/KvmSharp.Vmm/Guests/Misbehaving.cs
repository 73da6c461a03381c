// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// Guests that end badly on purpose, one per outcome, so every way a guest can end is exercised. Each is entered at
/// <c>_start</c>.
/// </summary>
public static class Misbehaving
{
    public const ushort BadPort = 0x1234;

    /// <summary>OUT to a port nobody claims → <see cref="GuestOutcome.UnknownPort"/>.</summary>
    public static GuestImage BadPortImage() => Single(a =>
    {
        a.mov(al, 0x42);
        a.mov(dx, BadPort);
        a.@out(dx, al);
        a.hlt();
    });

    /// <summary>Counts forever in registers, no exits → <see cref="GuestOutcome.Timeout"/>.</summary>
    public static GuestImage EndlessLoopImage() => Single(a =>
    {
        Label self = a.CreateLabel();
        a.xor(ecx, ecx);
        a.Label(ref self);
        a.inc(rcx);
        a.jmp(self);
    });

    /// <summary>Interrupts off and an endless loop: no interrupt could ever stop it → still a timeout.</summary>
    public static GuestImage EndlessLoopNoInterruptsImage() => Single(a =>
    {
        Label self = a.CreateLabel();
        a.cli();
        a.Label(ref self);
        a.pause();
        a.jmp(self);
    });

    /// <summary>UD2 with no IDT: #UD → #DF → triple fault → <see cref="GuestOutcome.Shutdown"/>.</summary>
    public static GuestImage TripleFaultImage() => Single(a => a.ud2());

    /// <summary>Writes through a null pointer (page 0 is not mapped): #PF → triple fault.</summary>
    public static GuestImage NullWriteImage() => Single(a =>
    {
        a.xor(eax, eax);
        a.mov(__qword_ptr[rax], rax);
        a.hlt();
    });

    /// <summary>HLT with interrupts off → <see cref="GuestOutcome.Halt"/>.</summary>
    public static GuestImage HaltImage() => Single(a =>
    {
        a.cli();
        a.hlt();
    });

    /// <summary>exit(42).</summary>
    public static GuestImage Exit42Image() => Single(a =>
    {
        a.mov(eax, 42);
        a.mov(dx, Ports.Exit);
        a.@out(dx, eax);
        a.hlt();
    });

    /// <summary>Prints forever → <see cref="GuestOutcome.MaxExits"/> (or Timeout) — output is bounded by the limits.</summary>
    public static GuestImage ChattyImage() => Single(a =>
    {
        Label loop = a.CreateLabel();
        a.mov(dx, Ports.Com1);
        a.mov(al, (byte)'x');
        a.Label(ref loop);
        a.@out(dx, al);
        a.jmp(loop);
    });

    /// <summary>
    /// Edits its own page tables to map guest-virtual 2 MiB onto a guest-physical address with no memory behind it
    /// (1 GiB), then jumps there. KVM can neither run nor emulate an instruction fetch from there →
    /// <see cref="GuestOutcome.InternalError"/> (needs 2 MiB of memory, so that PD entry 1 is free).
    /// </summary>
    public static GuestImage WildJumpImage() => Single(a =>
    {
        a.mov(rax, Layout.MaxMemorySize | PageTables.Present | PageTables.Writable | PageTables.LargePage);
        a.mov(rdi, Layout.Pd + sizeof(ulong));
        a.mov(__qword_ptr[rdi], rax);
        a.mov(rax, Layout.LargePageSize);
        a.invlpg(__[rax]);
        a.jmp(rax);
    });

    private static GuestImage Single(Action<Assembler> body)
    {
        var p = new GuestProgram();
        Label start = p.Export("_start");
        p.Place(ref start);
        body(p.Asm);
        return p.Build(start);
    }
}
