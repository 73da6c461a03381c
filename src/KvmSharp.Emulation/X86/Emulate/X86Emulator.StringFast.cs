// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using Iced.Intel;
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// REP STOS, REP MOVS and REPE/REPNE SCAS a page at a time: the state they leave (rCX, rSI, rDI, flags, the bytes) is
/// the one the element-by-element loop leaves, only reached in one guest-physical access per page instead of one per
/// element (a guest's memset, memcpy or memchr of megabytes). Taken only where that is plainly the same: 64-bit mode (no segment
/// limits, ES base 0), DF clear, elements that do not straddle a page, and ordinary memory (an MMIO or faulting page
/// goes back to the element loop, which exits or faults exactly there).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>Pages one step may cover before the instruction restarts (so a kick is noticed, as with RepChunk).</summary>
    private const int FastPagesPerStep = 64;

    private bool CanGoFast(ulong flags) => _cpu.Bitness == 64 && (flags & RFLAGS_DF) == 0;

    /// <summary>
    /// Stores the accumulator over whole pages while rCX lasts. Returns the elements stored (0: take the element
    /// path for the next one).
    /// </summary>
    private ulong FastStos(int size)
    {
        Span<byte> pattern = stackalloc byte[EmulatorConfig.PageSize];
        ulong value = ReadReg(Accumulator(size));
        ulong stored = 0;
        for (int pages = 0; pages < FastPagesPerStep; pages++)
        {
            ulong count = ReadReg(Register.RCX);
            if (count == 0) break;
            if (!NextPageRun(size, count, PageAccess.Write, out ulong rdi, out ulong elements, out ulong gpa)) break;
            int bytes = (int)(elements * (ulong)size);
            var span = pattern[..bytes];
            FillPattern(span, value, size);
            if (_mem.Write(gpa, span).Status != GpaStatus.Done) break;
            WriteReg(Register.RDI, rdi + (ulong)bytes);
            WriteReg(Register.RCX, count - elements);
            stored += elements;
        }
        return stored;
    }

    /// <summary>
    /// Copies runs of whole elements from <paramref name="sourceSegment"/>:rSI to ES:rDI while rCX lasts, each run within
    /// one source and one destination page: read first, then written, as each element is. Returns the elements moved
    /// (0: take the element path for the next one). A run whose destination starts inside its source above it goes to
    /// the element path, whose forward copy repeats bytes it has just written there (the only overlap where a copy of
    /// the whole run differs from the loop: a destination below the source is never written before it is read).
    /// </summary>
    private ulong FastMovs(int size, Register sourceSegment)
    {
        Span<byte> buffer = stackalloc byte[EmulatorConfig.PageSize];
        ulong pageSize = (ulong)EmulatorConfig.PageSize;
        ulong moved = 0;
        // Two pages' worth of runs per page of the budget: source and destination pages rarely share an offset.
        for (int runs = 0; runs < 2 * FastPagesPerStep; runs++)
        {
            ulong count = ReadReg(Register.RCX);
            if (count == 0) break;
            ulong rsi = ReadReg(Register.RSI), rdi = ReadReg(Register.RDI);
            ulong source = Linear(sourceSegment, rsi), destination = Linear(Register.ES, rdi);
            ulong elements = Math.Min(count, Math.Min(pageSize - (source & (pageSize - 1)), pageSize - (destination & (pageSize - 1))) / (ulong)size);
            if (elements == 0) break; // an element straddles a page
            // The element loop's order: the source is translated (and may fault) before the destination.
            ulong sourceGpa = Translate(source, PageAccess.Read);
            ulong destinationGpa = Translate(destination, PageAccess.Write);
            int bytes = (int)(elements * (ulong)size);
            if (destinationGpa > sourceGpa && destinationGpa < sourceGpa + (ulong)bytes) break;
            var span = buffer[..bytes];
            if (_mem.Read(sourceGpa, span).Status != GpaStatus.Done) break;
            if (_mem.Write(destinationGpa, span).Status != GpaStatus.Done) break;
            WriteReg(Register.RSI, rsi + (ulong)bytes);
            WriteReg(Register.RDI, rdi + (ulong)bytes);
            WriteReg(Register.RCX, count - elements);
            moved += elements;
        }
        return moved;
    }

    /// <summary>
    /// REPE/REPNE SCAS over whole pages. Returns true when the instruction is complete (the ZF condition ended it, or
    /// rCX ran out), false when it should continue (element path or a restart); <paramref name="progressed"/> says
    /// whether anything was compared.
    /// </summary>
    private bool FastScas(int size, bool repe, ref ulong f, out bool progressed)
    {
        progressed = false;
        Span<byte> buffer = stackalloc byte[EmulatorConfig.PageSize];
        ulong acc = ReadReg(Accumulator(size)) & Alu.Mask(size);
        for (int pages = 0; pages < FastPagesPerStep; pages++)
        {
            ulong count = ReadReg(Register.RCX);
            if (count == 0) return true;
            if (!NextPageRun(size, count, PageAccess.Read, out ulong rdi, out ulong elements, out ulong gpa)) return false;
            int bytes = (int)(elements * (ulong)size);
            var span = buffer[..bytes];
            if (_mem.Read(gpa, span).Status != GpaStatus.Done) return false;
            // The first element that ends the REP: unequal for REPE, equal for REPNE.
            long stop = -1;
            for (int k = 0; k < (int)elements; k++)
            {
                bool equal = Element(span, k, size) == acc;
                if (equal != repe) { stop = k; break; }
            }
            ulong done = stop >= 0 ? (ulong)stop + 1 : elements;
            Alu.Sub(acc, Element(span, (int)done - 1, size), 0, size, ref f);
            WriteReg(Register.RDI, rdi + done * (ulong)size);
            WriteReg(Register.RCX, count - done);
            progressed = true;
            if (stop >= 0) return true;
        }
        return ReadReg(Register.RCX) == 0;
    }

    /// <summary>
    /// The elements at ES:rDI that lie in one page (at most <paramref name="count"/>) and that page's GPA; false when
    /// the next element straddles a page boundary (the element path takes it).
    /// </summary>
    private bool NextPageRun(int size, ulong count, PageAccess access, out ulong rdi, out ulong elements, out ulong gpa)
    {
        ulong pageSize = (ulong)EmulatorConfig.PageSize;
        rdi = ReadReg(Register.RDI);
        ulong linear = Linear(Register.ES, rdi);
        elements = Math.Min(count, (pageSize - (linear & (pageSize - 1))) / (ulong)size);
        gpa = elements == 0 ? 0 : Translate(linear, access);
        return elements != 0;
    }

    private static ulong Element(ReadOnlySpan<byte> span, int index, int size) => size switch
    {
        1 => span[index],
        2 => MemoryMarshal.Read<ushort>(span[(index * 2)..]),
        4 => MemoryMarshal.Read<uint>(span[(index * 4)..]),
        _ => MemoryMarshal.Read<ulong>(span[(index * 8)..]),
    };

    private static void FillPattern(Span<byte> span, ulong value, int size)
    {
        switch (size)
        {
            case 1: span.Fill((byte)value); break;
            case 2: MemoryMarshal.Cast<byte, ushort>(span).Fill((ushort)value); break;
            case 4: MemoryMarshal.Cast<byte, uint>(span).Fill((uint)value); break;
            default: MemoryMarshal.Cast<byte, ulong>(span).Fill(value); break;
        }
    }
}
