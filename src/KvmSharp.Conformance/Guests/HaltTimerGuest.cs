// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// The real-mode guest the halt cases share (Cases/HaltPollingRules.cs, the emulator's HaltPollingTests and
/// HaltWakeTests): one slot at GPA 0 with the code at <see cref="Code"/>, a timer handler at <see cref="Handler"/>
/// ("inc dword ES:[Count]; EOI; iret", IVT[<see cref="TimerVector"/>]) and a vCPU with CS = ES = 0 and DS based at the
/// xAPIC page (0xFEE00000), so "mov [0x380], n" writes TMICT. The VM needs an in-kernel irqchip. Code is assembled with
/// Iced, never hand-typed.
/// </summary>
public static class HaltTimerGuest
{
    /// <summary>The slot size the guest needs from GPA 0.</summary>
    public const ulong MemSize = 0x10000;

    /// <summary>Where the main program starts (the vCPU's RIP).</summary>
    public const ulong Code = 0x1000;

    /// <summary>The timer handler.</summary>
    public const ulong Handler = 0x1200;

    /// <summary>The dword (at ES:Count, GPA Count) the handler counts timer interrupts in.</summary>
    public const int Count = 0x3100;

    /// <summary>The APIC timer's vector (LVTT).</summary>
    public const byte TimerVector = 0x40;

    /// <summary>The port <see cref="HaltLoop"/> writes when it is done.</summary>
    public const byte DonePort = 0x10;

    /// <summary>Assembles 16-bit <paramref name="program"/> at <paramref name="ip"/>.</summary>
    public static byte[] Assemble16(ulong ip, Action<Assembler> program)
    {
        ArgumentNullException.ThrowIfNull(program);
        var a = new Assembler(16);
        program(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), ip);
        return stream.ToArray();
    }

    /// <summary>Arms a one-shot APIC timer (divide by 1) of <paramref name="cycles"/> bus cycles (ns on KVM): TMICT.</summary>
    public static Action<Assembler> OneShot(int cycles) => a => a.mov(__dword_ptr[0x380], cycles);

    /// <summary>
    /// "SVR on, divide by 1, LVTT = <paramref name="lvtt"/>", then "cli; <paramref name="arm"/>; sti; hlt" until the
    /// handler counted <paramref name="halts"/> interrupts (the cli keeps a timer that fires while it is armed from
    /// being lost), then OUT <see cref="DonePort"/> — and "cli; hlt" with <paramref name="parkAfterDone"/>.
    /// </summary>
    public static Action<Assembler> HaltLoop(int halts, uint lvtt, Action<Assembler> arm, bool parkAfterDone = false) => a =>
    {
        ArgumentNullException.ThrowIfNull(arm);
        var loop = a.CreateLabel();
        a.mov(__dword_ptr[0xF0], 0x1ff);
        a.mov(__dword_ptr[0x3E0], 0xb);
        a.mov(__dword_ptr[0x320], lvtt);
        a.Label(ref loop);
        a.cli();
        arm(a);
        a.sti();
        a.hlt();
        a.cmp(__dword_ptr.es[Count], halts);
        a.jb(loop);
        a.@out(DonePort, al);
        if (parkAfterDone)
        {
            a.cli();
            a.hlt();
        }
    };

    /// <summary>Writes <paramref name="main"/> at <see cref="Code"/>, the timer handler and its IVT entry into <paramref name="mem"/> (GPA 0).</summary>
    public static void Load(AnonymousMemory mem, Action<Assembler> main)
    {
        ArgumentNullException.ThrowIfNull(mem);
        mem.Write(Code, Assemble16(Code, main));
        mem.Write(Handler, Assemble16(Handler, a =>
        {
            a.inc(__dword_ptr.es[Count]);
            a.mov(__dword_ptr[0xB0], 0);
            a.iret();
        }));
        mem.Write<uint>(TimerVector * 4, (uint)Handler); // IVT[0x40] = 0000:1200
    }

    /// <summary>CS = ES = 0, DS based at the xAPIC page, RIP = <see cref="Code"/>, RSP 0x7000, RFLAGS 2.</summary>
    public static void SetUp(Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        var s = vcpu.GetSregs();
        s.cs.@base = 0;
        s.cs.selector = 0;
        s.ds.@base = 0xFEE00000;
        s.es.@base = 0;
        vcpu.SetSregs(s);
        vcpu.SetRegs(new kvm_regs { rip = Code, rflags = 2, rsp = 0x7000 });
    }
}
