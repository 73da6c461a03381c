// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Devices;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// A guest of string port I/O and the instructions the confidential runtimes serve, for StringConsoleTests and
/// ConfidentialVcVeTests. <see cref="Text"/> ( <see cref="TextLength"/> printable bytes) lies in the image. Every
/// string function returns (RSI or RDI moved by, as a signed count of bytes, in the low 32 bits) | (RCX after &lt;&lt; 32):
/// <list type="bullet">
/// <item><c>write(n)</c>: REP OUTSB of the first n bytes to COM1. <c>write_back(n)</c>: the same with DF set, from the
/// n-th byte down (prints them reversed; RSI moves by -n). <c>putc_loop(n)</c>: one OUT per byte (returns 0).</item>
/// <item><c>console_write(n)</c>: the first n bytes through the console-write port (GUEST-ABI v5);
/// <c>console_write_at(ptr, len)</c>: any range. Both return what the host wrote back in console_len.</item>
/// <item><c>outs_once()</c>: OUTSB without REP, RCX = 77. <c>write_none()</c>: REP OUTSB with RCX = 0.</item>
/// <item><c>outsw(n)</c> / <c>outsd(n)</c>: REP OUTSW/OUTSD of n elements of <see cref="Wide"/> (each character widened
/// to 4 bytes), to COM1's THR, which prints each element's low byte.</item>
/// <item><c>insb(n)</c> / <c>insw(n)</c> / <c>insb_back(n)</c>: REP INSB/INSW (DF set for _back) from COM1's LSR
/// (0x60, 0 in the upper byte) into the call data area; returns like the others, with the sum of the n * size bytes
/// read back in bits 47:32 instead of RCX (which must be 0: checked, else 0xFFFF there).</item>
/// <item><c>a32_outsb()</c>: REP OUTSB with a 0x67 prefix (ESI/ECX); <c>fs_outsb()</c>: with an FS override.</item>
/// <item><c>vmmcall(nr, a0)</c>: RAX = nr, RBX = a0, VMMCALL, returns RAX. <c>cpuid(leaf, reg)</c>: CPUID(leaf, 0),
/// returns EAX/EBX/ECX/EDX for reg 0..3. <c>rdmsr(index)</c>, <c>wrmsr(index, value)</c>.</item>
/// </list>
/// </summary>
public static class StringIoGuest
{
    /// <summary>The printable bytes at the text label.</summary>
    public const int TextLength = 5000;

    /// <summary>The text the guest prints from: "0123456789abcdefghijklmnopqrstuvwxyz" repeated.</summary>
    public static string Text { get; } = string.Concat(Enumerable.Range(0, TextLength).Select(i => "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36]));

    /// <summary>The characters of the wide forms: "WIDE".</summary>
    public const string Wide = "WIDE";

    /// <summary>Where INS writes: the call data area (shared in a confidential micro-VM: the host may read it back).</summary>
    public const ulong Buffer = Layout.CallData + 0x1000;

    /// <summary>The value packed as the string functions return it.</summary>
    public static ulong Packed(long moved, ulong high) => (uint)(int)moved | high << 32;

    /// <summary>
    /// What OUTS does on every kernel and confidential runtime apart from a plain forward REP: <c>write_back(10)</c>
    /// prints the first 10 bytes reversed with RSI moving down by 10; <c>outs_once()</c> prints one byte and leaves RCX
    /// (77) alone; <c>write_none()</c> (REP with RCX = 0) prints nothing, moves nothing and takes no exit but the return.
    /// </summary>
    public static void AssertBackwardSingleAndEmptyOuts(MicroVm vm)
    {
        var back = vm.Call("write_back", 10);
        Assert.Equal(new string([.. Text[..10].Reverse()]), back.Console);
        Assert.Equal(Packed(-10, 0), back.Value);
        var once = vm.Call("outs_once");
        Assert.Equal(Text[..1], once.Console);
        Assert.Equal(Packed(1, 77), once.Value);
        var none = vm.Call("write_none");
        Assert.Equal("", none.Console);
        Assert.Equal(Packed(0, 0), none.Value);
        Assert.Equal(1, none.Exits);
    }

    /// <summary>The guest (see the class summary for its functions).</summary>
    public static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), text = a.CreateLabel("text"), wideD = a.CreateLabel("wide_d"), wideW = a.CreateLabel("wide_w");
        p.Place(ref start);
        p.ExitWith(0);

        // RAX = (RSI - R8) | RCX << 32, R8 = where RSI started.
        void ReturnMoved(AssemblerRegister64 pointer)
        {
            a.mov(rax, pointer);
            a.sub(rax, r8);
            a.mov(eax, eax);
            a.shl(rcx, 32);
            a.or(rax, rcx);
            a.ret();
        }

        Label write = p.Export("write");
        p.Place(ref write);
        a.lea(rsi, __[text]);
        a.mov(r8, rsi);
        a.mov(rcx, rdi);
        a.mov(dx, Ports.Com1);
        a.rep.outsb();
        ReturnMoved(rsi);

        Label back = p.Export("write_back");
        p.Place(ref back);
        a.lea(rsi, __[text]);
        a.lea(rsi, __[rsi + rdi - 1]);
        a.mov(r8, rsi);
        a.mov(rcx, rdi);
        a.mov(dx, Ports.Com1);
        a.std();
        a.rep.outsb();
        a.cld();
        ReturnMoved(rsi);

        Label putc = p.Export("putc_loop");
        p.Place(ref putc);
        a.lea(rsi, __[text]);
        p.PrintOneOutPerByte();
        a.xor(eax, eax);
        a.ret();

        Label once = p.Export("outs_once");
        p.Place(ref once);
        a.lea(rsi, __[text]);
        a.mov(r8, rsi);
        a.mov(ecx, 77);
        a.mov(dx, Ports.Com1);
        a.outsb();
        ReturnMoved(rsi);

        Label none = p.Export("write_none");
        p.Place(ref none);
        a.lea(rsi, __[text]);
        a.mov(r8, rsi);
        a.xor(ecx, ecx);
        a.mov(dx, Ports.Com1);
        a.rep.outsb();
        ReturnMoved(rsi);

        foreach ((string name, bool dword) in new[] { ("outsw", false), ("outsd", true) })
        {
            Label f = p.Export(name);
            p.Place(ref f);
            a.lea(rsi, __[dword ? wideD : wideW]);
            a.mov(r8, rsi);
            a.mov(rcx, rdi);
            a.mov(dx, Ports.Com1);
            if (dword) a.rep.outsd();
            else a.rep.outsw();
            ReturnMoved(rsi);
        }

        foreach ((string name, bool word, bool down) in new[] { ("insb", false, false), ("insw", true, false), ("insb_back", false, true) })
        {
            Label f = p.Export(name);
            p.Place(ref f);
            Label sum = a.CreateLabel(), summed = a.CreateLabel(), clean = a.CreateLabel();
            a.mov(r9, rdi);                               // n
            a.mov(r10, rdi);
            if (word) a.shl(r10, 1);                      // bytes
            // Zero the buffer (and one byte either side) first.
            a.mov(r11, Buffer - 1);
            a.xor(eax, eax);
            a.lea(rcx, __[r10 + 2]);
            a.push(rdi);
            a.mov(rdi, r11);
            a.rep.stosb();
            a.pop(rdi);
            a.mov(rdi, down ? (long)Buffer - 1 : (long)Buffer);
            if (down) a.add(rdi, r10);
            a.mov(r8, rdi);
            a.mov(rcx, r9);
            a.mov(dx, (ushort)(Ports.Com1 + Serial16550.Lsr));
            if (down) a.std();
            if (word) a.rep.insw();
            else a.rep.insb();
            a.cld();
            // RDX = the sum of the bytes in [Buffer - 1, Buffer + bytes + 1); 0xFFFF when RCX is not 0.
            a.mov(r11, rcx);
            a.mov(rsi, Buffer - 1);
            a.lea(rcx, __[r10 + 2]);
            a.xor(edx, edx);
            a.Label(ref sum);
            a.test(rcx, rcx);
            a.jz(summed);
            a.movzx(eax, __byte_ptr[rsi]);
            a.add(rdx, rax);
            a.inc(rsi);
            a.dec(rcx);
            a.jmp(sum);
            a.Label(ref summed);
            a.test(r11, r11);
            a.jz(clean);
            a.mov(edx, 0xFFFF);
            a.Label(ref clean);
            a.mov(rcx, rdx);
            ReturnMoved(rdi);
        }

        Label a32 = p.Export("a32_outsb");
        p.Place(ref a32);
        a.lea(rsi, __[text]);
        a.mov(ecx, 3);
        a.mov(dx, Ports.Com1);
        a.db(0x67, 0xF3, 0x6E);                           // addr32 rep outsb
        a.ret();

        Label fs = p.Export("fs_outsb");
        p.Place(ref fs);
        a.lea(rsi, __[text]);
        a.mov(ecx, 3);
        a.mov(dx, Ports.Com1);
        a.db(0x64, 0xF3, 0x6E);                           // rep outsb fs:[rsi]
        a.ret();

        Label vmmcall = p.Export("vmmcall");
        p.Place(ref vmmcall);
        a.push(rbx);
        a.mov(rax, rdi);
        a.mov(rbx, rsi);
        a.vmmcall();
        a.pop(rbx);
        a.ret();

        Label cpuid = p.Export("cpuid");
        p.Place(ref cpuid);
        a.push(rbx);
        a.mov(r8, rsi);
        a.mov(eax, edi);
        a.xor(ecx, ecx);
        a.cpuid();
        Label notB = a.CreateLabel(), notC = a.CreateLabel(), notD = a.CreateLabel(), picked = a.CreateLabel();
        a.cmp(r8, 1);
        a.jne(notB);
        a.mov(eax, ebx);
        a.jmp(picked);
        a.Label(ref notB);
        a.cmp(r8, 2);
        a.jne(notC);
        a.mov(eax, ecx);
        a.jmp(picked);
        a.Label(ref notC);
        a.cmp(r8, 3);
        a.jne(notD);
        a.mov(eax, edx);
        a.jmp(picked);
        a.Label(ref notD);
        a.mov(eax, eax);
        a.Label(ref picked);
        a.pop(rbx);
        a.ret();

        Label consoleWrite = p.Export("console_write");
        p.Place(ref consoleWrite);
        a.lea(rsi, __[text]);
        a.mov(rcx, rdi);
        p.ConsoleWrite();
        a.ret();

        Label consoleWriteAt = p.Export("console_write_at");
        p.Place(ref consoleWriteAt);
        a.mov(rcx, rsi);
        a.mov(rsi, rdi);
        p.ConsoleWrite();
        a.ret();

        p.AddMsrFunctions();

        a.Label(ref text);
        a.db(System.Text.Encoding.ASCII.GetBytes(Text));
        // The wide elements: the character in the low byte, more bits above it (which the console ignores).
        a.Label(ref wideD);
        foreach (char c in Wide) a.db(BitConverter.GetBytes(0x4B56_0000u | c));
        a.Label(ref wideW);
        foreach (char c in Wide) a.db(BitConverter.GetBytes((ushort)(0x5600 | c)));
        return p.Build(start);
    }
}
