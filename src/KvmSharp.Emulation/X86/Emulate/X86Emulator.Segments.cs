// SPDX-License-Identifier: MIT
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Protected-mode segment loads from the GDT (arch/x86/kvm/emulate.c __load_segment_descriptor; Intel SDM Vol. 3A
/// 5.5–5.8), or from the LDT for a selector with TI = 1 (X86Emulator.Ldt.cs).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>
    /// The raw descriptor of <paramref name="selector"/> from the GDT, or the LDT for TI = 1 (X86Emulator.Ldt.cs
    /// DescriptorTable); beyond the table's limit → #GP(<paramref name="error"/>) (emulate.c read_segment_descriptor).
    /// </summary>
    private ulong ReadDescriptor(ushort selector, int error)
    {
        var table = DescriptorTable(selector);
        ulong offset = selector & ~7UL;
        if (!table.Usable || offset + 7 > table.Limit) throw new GuestFault(GP_VECTOR, error);
        return ReadMemoryLinear(table.Base + offset, 8);
    }

    /// <summary>Sets the accessed bit in memory as a descriptor load does (__load_segment_descriptor writes it back).</summary>
    private void MarkAccessed(ushort selector, ulong raw)
    {
        if ((raw & SegmentDescriptor.AccessedBit) != 0) return;
        Span<byte> b = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, raw | SegmentDescriptor.AccessedBit);
        SystemWrite(DescriptorTable(selector).Base + (selector & ~7UL), b);
    }

    /// <summary>
    /// A code segment for a same-privilege far transfer (JMP/CALL/RET/IRET): null → #GP(0); not code, wrong DPL
    /// (non-conforming: DPL = CPL and RPL ≤ CPL; conforming: DPL ≤ CPL), or L and D both set in long mode →
    /// #GP(selector); not present → #NP(selector). The result has RPL = CPL.
    /// </summary>
    private Abi.kvm_segment LoadCodeSegment(ushort selector, int cpl)
    {
        int error = selector & 0xfffc;
        if (error == 0) throw new GuestFault(GP_VECTOR);
        ulong raw = ReadDescriptor(selector, error);
        var seg = SegmentDescriptor.Decode(raw, (ushort)((selector & ~3) | cpl));
        if (seg.s == 0 || (seg.type & 8) == 0) throw new GuestFault(GP_VECTOR, error);
        bool conforming = (seg.type & 4) != 0;
        if (conforming ? seg.dpl > cpl : seg.dpl != cpl || (selector & 3) > cpl) throw new GuestFault(GP_VECTOR, error);
        if (_cpu.LongModeActive && seg.l != 0 && seg.db != 0) throw new GuestFault(GP_VECTOR, error);
        if (seg.present == 0) throw new GuestFault(NP_VECTOR, error);
        MarkAccessed(selector, raw);
        seg.type |= 1;
        return seg;
    }

    /// <summary>
    /// SS for IRETQ in IA-32e mode: a null selector is allowed when returning to 64-bit code at CPL &lt; 3 (the cache
    /// becomes unusable); otherwise RPL = DPL = CPL and a writable data segment, else #GP(selector); absent → #SS.
    /// </summary>
    private Abi.kvm_segment LoadStackSegmentFor64(ushort selector, int cpl)
    {
        int error = selector & 0xfffc;
        if (error == 0)
        {
            if (cpl == 3) throw new GuestFault(GP_VECTOR);
            var unusable = _cpu.Sregs.ss;
            unusable.selector = selector;
            unusable.unusable = 1;
            return unusable;
        }
        return LoadDataSegment(selector, cpl, stack: true);
    }

    /// <summary>
    /// A data (or SS) segment load in protected mode (SDM Vol. 2A MOV "IF DS, ES, FS, or GS is loaded…"; emulate.c
    /// __load_segment_descriptor). Data: readable, and for a non-conforming segment DPL ≥ max(CPL, RPL). SS: writable
    /// data with RPL = DPL = CPL; absent → #SS.
    /// </summary>
    private Abi.kvm_segment LoadDataSegment(ushort selector, int cpl, bool stack)
    {
        int error = selector & 0xfffc;
        ulong raw = ReadDescriptor(selector, error);
        var seg = SegmentDescriptor.Decode(raw, selector);
        bool code = (seg.type & 8) != 0;
        if (seg.s == 0) throw new GuestFault(GP_VECTOR, error);
        if (stack)
        {
            if (code || (seg.type & 2) == 0 || (selector & 3) != cpl || seg.dpl != cpl) throw new GuestFault(GP_VECTOR, error);
            if (seg.present == 0) throw new GuestFault(SS_VECTOR, error);
        }
        else
        {
            if (code && (seg.type & 2) == 0) throw new GuestFault(GP_VECTOR, error);
            bool conformingCode = code && (seg.type & 4) != 0;
            if (!conformingCode && seg.dpl < Math.Max(cpl, selector & 3)) throw new GuestFault(GP_VECTOR, error);
            if (seg.present == 0) throw new GuestFault(NP_VECTOR, error);
        }
        MarkAccessed(selector, raw);
        seg.type |= 1;
        return seg;
    }

    /// <summary>
    /// MOV Sreg / POP Sreg in protected mode: a null selector makes DS/ES/FS/GS unusable (SS only in 64-bit mode at
    /// CPL &lt; 3), else the descriptor is loaded and checked.
    /// </summary>
    private void LoadSegmentProtected(Iced.Intel.Register reg, ushort selector)
    {
        int cpl = _cpu.Cpl;
        bool stack = reg == Iced.Intel.Register.SS;
        ref var target = ref Segment(reg);
        if ((selector & 0xfffc) == 0)
        {
            if (stack && (_cpu.Bitness != 64 || cpl == 3 || (selector & 3) != cpl)) throw new GuestFault(GP_VECTOR);
            var unusable = default(Abi.kvm_segment);
            unusable.selector = selector;
            unusable.unusable = 1;
            if (stack) unusable.dpl = (byte)cpl;
            target = unusable;
            return;
        }
        target = LoadDataSegment(selector, cpl, stack);
    }
}
