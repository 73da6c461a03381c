// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Fuzzing;

internal static partial class TinyGuestProgram
{
    /// <summary>
    /// INSB/INSW/INSD into the data page (r15), with or without REP, DF 0 or 1 (STD before, CLD after), from one of the
    /// program's ports. Every element stays inside the data page whichever way rDI walks. A REP INS is one
    /// KVM_EXIT_IO per batch: io.count = min3(in_page, 1024 / size, RCX), in_page being the bytes left in rDI's page
    /// (DF = 0) or rDI's offset in it (DF = 1; at least 1) (emulate.c pio_in_emulated); the REP restarts for the next
    /// batch, and the run loop writes io.count elements at data_offset (<see cref="TinyGuestRun"/>), which
    /// complete_emulator_pio_in stores at ES:rDI. Counts up to a whole page make several batches; RCX = 0 makes none
    /// (Conformance/Cases/StringPortIo.cs). Drawn from a stream of their own, so the other instructions are the seed's.
    /// </summary>
    private static void StringIn(Assembler a, Random x)
    {
        int size = 1 << x.Next(3);
        bool rep = x.Next(3) != 0;
        bool down = x.Next(3) == 0;
        int count = !rep ? 1 : x.Next(6) switch
        {
            0 => 0,
            1 => x.Next(1, 0x1000 / size + 1), // up to the whole page: batches of 1024 bytes, cut at the page's edge
            _ => x.Next(1, 17),
        };
        int span = Math.Max(count, 1) * size;
        // DF = 0: rDI is the lowest element; DF = 1: the highest, the lowest being rDI - (count - 1) * size.
        int off = down ? x.Next(span - size, 0x1000 - size + 1) : x.Next(0, 0x1000 - span + 1);
        if (x.Next(4) == 0) off &= ~(size - 1) & 0xFF8; // often aligned, sometimes at the page's first byte
        if (down && off < span - size) off = span - size;
        if (!down && off > 0x1000 - span) off = 0x1000 - span;
        a.mov(edx, PortBase + x.Next(16));
        a.lea(rdi, __[r15 + off]);
        if (rep) a.mov(ecx, count);
        if (down) a.std();
        switch (size)
        {
            case 1: if (rep) a.rep.insb(); else a.insb(); break;
            case 2: if (rep) a.rep.insw(); else a.insw(); break;
            default: if (rep) a.rep.insd(); else a.insd(); break;
        }
        if (down) a.cld();
    }
}
