// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// LLDT, SLDT and selectors with TI = 1 (arch/x86/kvm/emulate.c em_lldt → load_segment_descriptor(VCPU_SREG_LDTR),
/// em_sldt, get_descriptor_table_ptr; group 6 "Prot | Priv" for LLDT, "Prot" for SLDT; Intel SDM Vol. 2A LLDT/SLDT,
/// Vol. 3A 3.5.1). LTR shares the system-descriptor load (<see cref="LoadSystemDescriptor"/>).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The LDT descriptor's system type (SDM Vol. 3A Table 3-2).</summary>
    private const byte LdtType = 2;

    /// <summary>LLDT, SLDT; false for anything else.</summary>
    private bool TryLdt(in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Lldt:
                LoadLdtRegister(i);
                return true;
            case Mnemonic.Sldt:
                // em_sldt: "Prot" (#UD in real mode); with CR4.UMIP, #GP(0) at CPL > 0 (emulate.c em_sldt → emulate_gp).
                if (!_cpu.ProtectedMode) throw new GuestFault(UD_VECTOR);
                if ((_cpu.Sregs.cr4 & (1UL << 11)) != 0) RequireCpl0();
                WriteOp(i, 0, i.GetOpKind(0) == OpKind.Register ? OpSize(i, 0) : 2, _cpu.Sregs.ldt.selector);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// LLDT r/m16 (__load_segment_descriptor for VCPU_SREG_LDTR): #UD outside protected mode, #GP(0) at CPL &gt; 0;
    /// a null selector leaves LDTR unusable ("if (null_selector) … goto load" with a zeroed descriptor); else the
    /// GDT's LDT descriptor (<see cref="LoadSystemDescriptor"/>). No accessed bit is written for a system descriptor.
    /// </summary>
    private void LoadLdtRegister(in Instruction i)
    {
        if (!_cpu.ProtectedMode) throw new GuestFault(UD_VECTOR);
        RequireCpl0();
        ushort selector = (ushort)ReadOp(i, 0, 2);
        if ((selector & 0xfffc) == 0)
        {
            _cpu.Sregs.ldt = new Abi.kvm_segment { selector = selector, unusable = 1 };
            return;
        }
        _cpu.Sregs.ldt = LoadSystemDescriptor(selector, ldt: true, out _);
    }

    /// <summary>
    /// The GDT system descriptor of LTR or LLDT (emulate.c __load_segment_descriptor): TI = 1 → #GP(selector) as the
    /// CPU does (SDM Vol. 2A LTR/LLDT; KVM's emulator differs there, HostDeviations.KvmPvmLdtSelectorInLtrOrLldt); beyond the GDT limit, S = 1, or the wrong type (LDTR: 2; TR: available 1 or 9) →
    /// #GP(selector); not present → #NP(selector); in 64-bit mode the 16-byte descriptor's base bits 63:32 come from
    /// its second half, and a non-canonical base is #GP(selector) (the upper half's type field is not checked, as in
    /// KVM).
    /// </summary>
    private Abi.kvm_segment LoadSystemDescriptor(ushort selector, bool ldt, out ulong raw)
    {
        int error = selector & 0xfffc;
        if ((selector & 4) != 0) throw new GuestFault(GP_VECTOR, error);
        raw = ReadDescriptor(selector, error);
        var seg = SegmentDescriptor.Decode(raw, selector);
        bool typeOk = ldt ? seg.type == LdtType : seg.type is TssAvailable16 or TssAvailable;
        if (seg.s != 0 || !typeOk) throw new GuestFault(GP_VECTOR, error);
        if (seg.present == 0) throw new GuestFault(NP_VECTOR, error);
        if (_cpu.LongModeActive)
        {
            ulong high = ReadMemoryLinear(_cpu.Sregs.gdt.@base + (selector & ~7UL) + 8, 8);
            seg.@base |= (high & 0xffff_ffff) << 32;
            if (!IsCanonical(seg.@base)) throw new GuestFault(GP_VECTOR, error);
        }
        return seg;
    }

    /// <summary>
    /// The descriptor table a selector indexes and its limit (emulate.c get_descriptor_table_ptr): TI = 1 → the LDT at
    /// LDTR's base and limit (an unusable LDTR: base 0, size 0, so every index is beyond it → #GP(selector)); else the
    /// GDT.
    /// </summary>
    private (ulong Base, ulong Limit, bool Usable) DescriptorTable(ushort selector)
    {
        if ((selector & 4) == 0) return (_cpu.Sregs.gdt.@base, _cpu.Sregs.gdt.limit, true);
        var ldt = _cpu.Sregs.ldt;
        return ldt.unusable != 0 || ldt.present == 0 ? (0, 0, false) : (ldt.@base, ldt.limit, true);
    }
}
