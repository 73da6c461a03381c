// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Preload.Tests;

/// <summary>
/// A flat 64 KiB <c>-bios</c> image for QEMU's x86 machines, assembled with Iced: QEMU maps it at the top of 4 GiB
/// (and its last 64 KiB at 0xF0000), the CPU starts in real mode at 0xFFFF0 — CS 0xF000 with base 0xFFFF0000, IP
/// 0xFFF0 — where a far jump to F000:0000 enters the code at the image's start. The code prints <see cref="Line"/> on
/// the 16550 at 0x3F8 the way a driver does (each byte after LSR says "THR empty") and ends the VM through QEMU's
/// <c>isa-debug-exit</c> device at port 0xF4: QEMU exits with (<see cref="ExitValue"/> &lt;&lt; 1) | 1.
/// </summary>
internal static class QemuBiosGuest
{
    public const string Line = "Hello from QEMU on KvmSharp\n";

    /// <summary>The byte written to isa-debug-exit; QEMU's exit status is then <see cref="ExitStatus"/>.</summary>
    public const byte ExitValue = 0x21;

    public const int ExitStatus = (ExitValue << 1) | 1;

    /// <summary>isa-debug-exit's port (the QEMU option <c>-device isa-debug-exit,iobase=0xf4,iosize=0x04</c>).</summary>
    public const ushort DebugExitPort = 0xf4;

    private const int ImageSize = 0x10000;
    private const ushort Com1 = 0x3f8, Com1Lsr = Com1 + 5;
    private const int ResetVectorOffset = 0xfff0;

    public static byte[] Image()
    {
        var image = new byte[ImageSize];
        Assemble(Body, 0).CopyTo(image, 0);
        // At the reset vector: JMP FAR F000:0000 — real-mode CS base 0xF0000, where the image's last 64 KiB (all of it)
        // is mapped below 1 MiB.
        Assemble(a => a.AddInstruction(Instruction.CreateBranch(Code.Jmp_ptr1616, 0xf000, 0)), ResetVectorOffset)
            .CopyTo(image, ResetVectorOffset);
        return image;
    }

    private static void Body(Assembler a)
    {
        foreach (char c in Line)
        {
            var wait = a.CreateLabel();
            a.mov(dx, Com1Lsr);
            a.Label(ref wait);
            a.@in(al, dx);
            a.test(al, 0x20);
            a.jz(wait);
            a.mov(dx, Com1);
            a.mov(al, (byte)c);
            a.@out(dx, al);
        }
        a.mov(dx, DebugExitPort);
        a.mov(al, ExitValue);
        a.@out(dx, al);
        // Not reached under QEMU; without the device the CPU stays halted.
        var halt = a.CreateLabel();
        a.Label(ref halt);
        a.cli();
        a.hlt();
        a.jmp(halt);
    }

    private static byte[] Assemble(Action<Assembler> program, ulong at)
    {
        var a = new Assembler(16);
        program(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), at);
        return stream.ToArray();
    }
}
