// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// LTR and STR (arch/x86/kvm/emulate.c em_ltr → __load_segment_descriptor(VCPU_SREG_TR), em_str; group 6 "Prot | Priv"
/// for LTR, "Prot" for STR). LLDT/SLDT: X86Emulator.Ldt.cs.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>TSS descriptor types: 16-bit available (1), 32/64-bit available (9); the busy bit is 2.</summary>
    private const byte TssAvailable16 = 1, TssAvailable = 9, TssBusyBit = 2;

    /// <summary>LTR, STR; false for anything else.</summary>
    private bool TryTaskRegister(in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Ltr:
                LoadTaskRegister(i);
                return true;
            case Mnemonic.Str:
                StoreTaskRegister(i);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// LTR r/m16 (emulate.c __load_segment_descriptor for VCPU_SREG_TR): #UD outside protected mode ("Prot"), #GP(0)
    /// at CPL &gt; 0 ("Priv"), a null selector #GP(0); beyond the GDT limit, a code/data descriptor or a TSS that is
    /// not available (type 1 or 9) #GP(selector); not present #NP(selector); in 64-bit mode the 16-byte descriptor's
    /// base must be canonical (#GP(selector)). Then the busy bit is set in the descriptor in memory (the cmpxchg) and TR
    /// is loaded with it — busy, as the CPU's TR holds it.
    /// </summary>
    private void LoadTaskRegister(in Instruction i)
    {
        if (!_cpu.ProtectedMode) throw new GuestFault(UD_VECTOR);
        RequireCpl0();
        ushort selector = (ushort)ReadOp(i, 0, 2);
        if ((selector & 0xfffc) == 0) throw new GuestFault(GP_VECTOR);
        var seg = LoadSystemDescriptor(selector, ldt: false, out ulong raw); // X86Emulator.Ldt.cs, shared with LLDT
        Span<byte> b = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, raw | ((ulong)TssBusyBit << 40));
        SystemWrite(_cpu.Sregs.gdt.@base + (selector & ~7UL), b);
        seg.type |= TssBusyBit;
        _cpu.Sregs.tr = seg;
    }

    /// <summary>
    /// STR r/m16 (em_str): #UD outside protected mode; with CR4.UMIP, #GP(0) at CPL &gt; 0. A register destination
    /// takes the selector zero-extended to its size, memory 16 bits.
    /// </summary>
    private void StoreTaskRegister(in Instruction i)
    {
        if (!_cpu.ProtectedMode) throw new GuestFault(UD_VECTOR);
        if ((_cpu.Sregs.cr4 & (1UL << 11)) != 0) RequireCpl0();
        int size = i.GetOpKind(0) == OpKind.Register ? OpSize(i, 0) : 2;
        WriteOp(i, 0, size, _cpu.Sregs.tr.selector);
    }
}
