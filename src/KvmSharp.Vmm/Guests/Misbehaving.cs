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

    /// <summary>
    /// One image, several calls, for the tests that a micro-VM outlives a timeout: <c>spin()</c> loops forever (no
    /// exits), <c>count(n)</c> loops n times in registers and returns n, <c>add(a, b)</c> returns a + b.
    /// </summary>
    public static GuestImage LoopsImage()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), spin = p.Export("spin"), count = p.Export("count"), add = p.Export("add");
        p.Place(ref start);
        p.ExitWith(0);

        p.Place(ref spin);
        a.inc(rcx);
        a.jmp(spin);

        p.Place(ref count);
        Label loop = a.CreateLabel(), done = a.CreateLabel();
        a.mov(rcx, rdi);
        a.test(rcx, rcx);
        a.jz(done);
        a.Label(ref loop);
        a.dec(rcx);
        a.jnz(loop);
        a.Label(ref done);
        a.mov(rax, rdi);
        a.ret();

        p.Place(ref add);
        a.lea(rax, __[rdi + rsi]);
        a.ret();
        return p.Build(start);
    }

    /// <summary>The guest-physical address <see cref="MmioWriteImage"/> and <see cref="MmioReadImage"/> touch: 1 GiB,
    /// past any guest memory a micro-VM can have.</summary>
    public const ulong UnbackedAddress = Layout.MaxMemorySize;

    /// <summary>
    /// Maps guest-virtual 2 MiB onto <see cref="UnbackedAddress"/> (no memory slot there) and writes 0x11223344 to it:
    /// a data access to no memory is MMIO → <see cref="GuestOutcome.UnhandledMmio"/> (a write).
    /// </summary>
    public static GuestImage MmioWriteImage() => MapUnbacked(a =>
    {
        a.mov(ecx, 0x11223344);
        a.mov(__dword_ptr[rax + 0x10], ecx);
        a.hlt();
    });

    /// <summary>As <see cref="MmioWriteImage"/>, but a 4-byte read.</summary>
    public static GuestImage MmioReadImage() => MapUnbacked(a =>
    {
        a.mov(ecx, __dword_ptr[rax + 0x10]);
        a.hlt();
    });

    private static GuestImage MapUnbacked(Action<Assembler> access) => Single(a =>
    {
        a.mov(rax, UnbackedAddress | PageTables.Present | PageTables.Writable | PageTables.LargePage);
        a.mov(rdi, Layout.Pd + sizeof(ulong));
        a.mov(__qword_ptr[rdi], rax);
        a.mov(rax, Layout.LargePageSize);
        a.invlpg(__[rax]);
        access(a);
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
