// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// <c>hello</c>: prints a greeting on COM1 the way a 16550 driver does (wait for LSR "THR empty", write THR) — the
/// whole greeting with one REP OUTSB after one wait, so two exits for it — and exits with status 0. Exports <c>_start</c> and <c>greet</c> (prints the greeting, returns its length).
/// </summary>
public static class Hello
{
    /// <summary>The text the guest prints on COM1 (ASCII, ending in a newline).</summary>
    public const string Greeting = "Hello from a KvmSharp micro-VM!\n";

    /// <summary>Assembles the <c>hello</c> guest into an ELF image.</summary>
    public static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start");
        Label greet = p.Export("greet");
        Label puts = a.CreateLabel("puts");
        Label message = a.CreateLabel("message");

        p.Place(ref start);
        a.call(greet);
        p.ExitWith(0);

        // greet(): RAX = number of bytes printed.
        p.Place(ref greet);
        a.lea(rsi, __[message]);
        a.call(puts);
        a.ret();

        // puts(RSI = NUL-terminated string) → RAX = length. Clobbers RCX, RDX, RSI. One wait for "THR empty", then the
        // whole string with one REP OUTSB: one VM exit for the bytes (the VMM's UART takes any number of them).
        a.Label(ref puts);
        Label count = a.CreateLabel(), counted = a.CreateLabel(), wait = a.CreateLabel();
        a.xor(ecx, ecx);
        a.Label(ref count);
        a.cmp(__byte_ptr[rsi + rcx], 0);
        a.je(counted);
        a.inc(rcx);
        a.jmp(count);
        a.Label(ref counted);
        a.push(rcx);
        a.mov(dx, (ushort)(Ports.Com1 + 5));
        a.Label(ref wait);
        a.@in(al, dx);
        a.test(al, 0x20);
        a.jz(wait);
        a.mov(dx, Ports.Com1);
        a.rep.outsb();
        a.pop(rax);
        a.ret();

        a.Label(ref message);
        a.db([.. System.Text.Encoding.ASCII.GetBytes(Greeting), 0]);
        return p.Build(start);
    }
}
