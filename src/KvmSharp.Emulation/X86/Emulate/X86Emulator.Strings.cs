// SPDX-License-Identifier: MIT
// The string instructions MOVS/STOS/LODS and CMPS/SCAS, with or without REP.
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

internal sealed partial class X86Emulator
{
    /// <summary>REP string iterations per step, so a kick is noticed inside a long REP (KVM restarts them too).</summary>
    private const int RepChunk = 4096;

    /// <summary>
    /// MOVS/STOS/LODS with an optional REP. Returns false when a REP stopped early (RCX still non-zero): the caller
    /// leaves RIP on the instruction, as KVM's emulator restarts string instructions.
    /// </summary>
    private bool StringOp(in Instruction i)
    {
        int size = i.MemorySize.GetSize();
        if (size == 0) size = OpSize(i, 0);
        bool rep = i.HasRepPrefix || i.HasRepePrefix;
        OpKind destKind = i.GetOpKind(0);
        OpKind srcKind = i.OpCount > 1 ? i.GetOpKind(1) : OpKind.Register;
        int addressSize = AddressSizeOf(destKind == OpKind.Register ? srcKind : destKind);
        var (counter, si, di) = StringRegisters(addressSize);
        ulong step = (_cpu.Rflags & RFLAGS_DF) != 0 ? unchecked((ulong)-size) : (ulong)size;
        ulong mask = Alu.Mask(addressSize);
        int iterations = 0;
        bool stos = i.Mnemonic is Mnemonic.Stosb or Mnemonic.Stosw or Mnemonic.Stosd or Mnemonic.Stosq;
        bool movs = i.Mnemonic is Mnemonic.Movsb or Mnemonic.Movsw or Mnemonic.Movsd or Mnemonic.Movsq;
        bool fast = rep && addressSize == 8 && CanGoFast(_cpu.Rflags) && !DataBreakpointsArmed;
        if (fast && ((stos && FastStos(size) > 0) || (movs && FastMovs(size, i.MemorySegment) > 0)))
            return ReadReg(counter) == 0; // whole page runs done; the rest (if any) in the next step
        while (true)
        {
            if (rep && ReadReg(counter) == 0) return true;
            if (rep && iterations == RepChunk) return false;
            try
            {
                switch (i.Mnemonic)
                {
                    case Mnemonic.Stosb or Mnemonic.Stosw or Mnemonic.Stosd or Mnemonic.Stosq:
                        WriteMemory(Register.ES, ReadReg(di), size, ReadReg(Accumulator(size)));
                        WriteReg(di, (ReadReg(di) + step) & mask);
                        break;
                    case Mnemonic.Lodsb or Mnemonic.Lodsw or Mnemonic.Lodsd or Mnemonic.Lodsq:
                        WriteReg(Accumulator(size), ReadMemory(i.MemorySegment, ReadReg(si), size));
                        WriteReg(si, (ReadReg(si) + step) & mask);
                        break;
                    default:
                        ulong v = ReadMemory(i.MemorySegment, ReadReg(si), size);
                        WriteMemory(Register.ES, ReadReg(di), size, v);
                        WriteReg(si, (ReadReg(si) + step) & mask);
                        WriteReg(di, (ReadReg(di) + step) & mask);
                        break;
                }
            }
            catch (MmioReadStop) when (iterations > 0)
            {
                // Commit the iterations done; the next step starts with the MMIO access.
                return false;
            }
            iterations++;
            if (!rep) return true;
            WriteReg(counter, (ReadReg(counter) - 1) & Alu.Mask(counter.GetSize()));
            // One MMIO exit per step: stop after the iteration that wrote to MMIO.
            if (_mmioWriteLength > 0) return ReadReg(counter) == 0;
            // A data breakpoint traps after the iteration that hit (SDM Vol. 3A 18.3.1.2; X86Emulator.GuestDebug.cs).
            if (_dataHits != 0) return ReadReg(counter) == 0;
        }
    }

    /// <summary>
    /// CMPS (DS:rSI − ES:rDI) and SCAS (rAX − ES:rDI) with an optional REPE/REPNE (SDM Vol. 2A CMPS, SCAS, REP;
    /// arch/x86/kvm/emulate.c em_cmp under the string-instruction loop): flags as CMP; a REP stops when rCX reaches
    /// zero, or after the compare that clears ZF (REPE) or sets it (REPNE). Returns false when a REP stopped early
    /// (a chunk of iterations, or an MMIO read after the first): the caller leaves RIP on the instruction.
    /// </summary>
    private bool StringCompare(in Instruction i, ref ulong f)
    {
        int size = i.MemorySize.GetSize();
        bool scas = i.Mnemonic is Mnemonic.Scasb or Mnemonic.Scasw or Mnemonic.Scasd or Mnemonic.Scasq;
        bool repe = i.HasRepePrefix, repne = i.HasRepnePrefix, rep = repe || repne;
        // The ES:rDI operand (the second of both forms) carries the address size.
        int addressSize = AddressSizeOf(i.GetOpKind(1));
        var (counter, si, di) = StringRegisters(addressSize);
        ulong step = (f & RFLAGS_DF) != 0 ? unchecked((ulong)-size) : (ulong)size;
        ulong mask = Alu.Mask(addressSize);
        int iterations = 0;
        if (rep && scas && addressSize == 8 && CanGoFast(f) && !DataBreakpointsArmed)
        {
            bool complete = FastScas(size, repe, ref f, out bool progressed);
            if (complete) return true;
            if (progressed) return false; // restart: the element path takes a page the fast one could not
        }
        while (true)
        {
            if (rep && ReadReg(counter) == 0) return true;
            if (rep && iterations == RepChunk) return false;
            try
            {
                ulong a = scas ? ReadReg(Accumulator(size)) & Alu.Mask(size) : ReadMemory(i.MemorySegment, ReadReg(si), size);
                ulong b = ReadMemory(Register.ES, ReadReg(di), size);
                Alu.Sub(a, b, 0, size, ref f);
            }
            catch (MmioReadStop) when (iterations > 0)
            {
                return false;
            }
            if (!scas) WriteReg(si, (ReadReg(si) + step) & mask);
            WriteReg(di, (ReadReg(di) + step) & mask);
            iterations++;
            if (!rep) return true;
            WriteReg(counter, (ReadReg(counter) - 1) & Alu.Mask(counter.GetSize()));
            bool zf = (f & RFLAGS_ZF) != 0;
            if ((repe && !zf) || (repne && zf)) return true;
            if (_dataHits != 0) return false; // a data breakpoint traps after this iteration (X86Emulator.GuestDebug.cs)
        }
    }

    /// <summary>rCX, rSI and rDI at a string instruction's address size (SDM Vol. 2A: CX/SI/DI, ECX/…, RCX/…).</summary>
    private static (Register Counter, Register Si, Register Di) StringRegisters(int addressSize) => addressSize switch
    {
        2 => (Register.CX, Register.SI, Register.DI),
        4 => (Register.ECX, Register.ESI, Register.EDI),
        _ => (Register.RCX, Register.RSI, Register.RDI),
    };

    private static int AddressSizeOf(OpKind kind) => kind switch
    {
        OpKind.MemorySegSI or OpKind.MemoryESDI => 2,
        OpKind.MemorySegESI or OpKind.MemoryESEDI => 4,
        _ => 8,
    };
}
