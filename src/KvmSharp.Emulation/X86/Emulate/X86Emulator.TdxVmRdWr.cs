// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Arch;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// TDG.VM.RD (leaf 7) and TDG.VM.WR (leaf 8), as intel/tdx-module implements them
/// (src/td_dispatcher/tdx_td_dispatcher.c td_call, src/td_dispatcher/vm_exits/tdg_vm_rd_wr.c, the metadata handlers
/// src/common/metadata_handlers/metadata_generic.c and metadata_td.c) over the TD-scope fields of
/// <see cref="TdxMetadata"/>, and Linux's guest calls them (arch/x86/coco/tdx/tdx.c tdg_vm_rd: RDX = field ID, the
/// value in R8; tdg_vm_wr: RDX = field ID, R8 = value, R9 = write mask).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>TDX_OPERAND_INVALID for operand RAX (0): an unsupported leaf version or reserved RAX bits.</summary>
    private const ulong TdxOperandInvalidRax = 0xC000_0100_0000_0000;

    /// <summary>
    /// TDG.VM.RD / TDG.VM.WR when RAX[15:0] is 7 or 8 (false for any other leaf). td_call: RAX[63:24] reserved and a
    /// version (RAX[23:16]) other than 0 for TDG.VM.WR → TDX_OPERAND_INVALID (RAX). tdg_vm_rd_wr, in its order: a
    /// version-1 read sets RDX = -1 and every call R8 = 0; a read version &gt; 1 → OPERAND_INVALID (RAX); RCX (VM ID)
    /// ≠ 0 → OPERAND_INVALID (RCX); the context code is ignored; a version-1 read of the null ID (-1) →
    /// TDX_METADATA_FIRST_FIELD_ID_IN_CONTEXT with RDX = the first readable ID; md_check_as_single_element_id →
    /// FIELD_ID_INCORRECT; then md_read_element / md_write_element (an unknown ID → FIELD_ID_INCORRECT). A read with a
    /// guest read mask of 0 → FIELD_NOT_READABLE, else R8 = value &amp; mask (and RDX = the next element's ID at
    /// version 1). A write (md_td_write_element, WRITE_MASK_VALID): R9 &amp; the guest write mask = 0 →
    /// FIELD_NOT_WRITABLE; a bit R9 selects that the guest may not write must equal its readable value
    /// (md_check_forbidden_bits_unchanged) → else FIELD_VALUE_NOT_VALID; TD_CTLS' own rules
    /// (<see cref="TdxMetadata.TryWriteTdCtls"/>) and FEATURE_PARAVIRT_CTLS' (<see cref="TdxMetadata.TryWriteFeatureParavirtCtls"/>); success: R8 = the old value &amp; the read mask.
    /// </summary>
    private bool TdxVmRdWr(ulong rax)
    {
        ulong leaf = rax & 0xFFFF;
        if (leaf is not (7 or 8)) return false;
        bool write = leaf == 8;
        ulong version = (rax >> 16) & 0xFF;
        if ((rax >> 24) != 0 || (write && version != 0))
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxOperandInvalidRax;
            return true;
        }
        _cpu.Gpr[X86Cpu.RAX] = VmRdWr(write, version);
        return true;
    }

    private ulong VmRdWr(bool write, ulong version)
    {
        ulong id = _cpu.Gpr[X86Cpu.RDX];
        ulong value = _cpu.Gpr[8], mask = _cpu.Gpr[9];
        bool readV1 = !write && version > 0;
        if (readV1) _cpu.Gpr[X86Cpu.RDX] = TdxMetadata.FieldIdNa;
        _cpu.Gpr[8] = 0;
        if (!write && version > 1) return TdxOperandInvalidRax;
        if (_cpu.Gpr[X86Cpu.RCX] != 0) return TdxOperandInvalidRcx;
        id = TdxMetadata.WithTdContext(id);
        if (readV1 && TdxMetadata.IsNull(id))
        {
            _cpu.Gpr[X86Cpu.RDX] = TdxMetadata.NextReadable(id);
            return TdxMetadata.FirstFieldIdInContext;
        }
        int row = TdxMetadata.IsSingleElementId(id) ? TdxMetadata.Find(id) : -1;
        if (row < 0) return TdxMetadata.FieldIdIncorrect;
        var field = TdxMetadata.Fields[row];
        var td = CocoState.Tdx(_kvm);
        int element = (int)(TdxMetadata.FieldCode(id) - TdxMetadata.FieldCode(field.Id));
        ulong current = TdxMetadata.Value(_kvm, td, row, element);
        if (!write)
        {
            if (field.GuestRead == 0) return TdxMetadata.FieldNotReadable;
            if (readV1) _cpu.Gpr[X86Cpu.RDX] = TdxMetadata.NextReadable(id);
            _cpu.Gpr[8] = current & field.GuestRead;
            return TdxSuccess;
        }
        ulong combined = field.GuestWrite & mask;
        if (combined == 0) return TdxMetadata.FieldNotWritable;
        ulong forbidden = mask & ~field.GuestWrite;
        if ((current & field.GuestRead & forbidden) != (value & forbidden)) return TdxMetadata.FieldValueNotValid;
        ulong next = (current & ~combined) | (value & combined);
        var controls = TdxMetadata.Controls(td);
        switch (field.Name)
        {
            case "TD_CTLS":
                if (!TdxMetadata.TryWriteTdCtls(td, next)) return TdxMetadata.FieldValueNotValid;
                break;
            case "FEATURE_PARAVIRT_CTLS":
                if (!TdxMetadata.TryWriteFeatureParavirtCtls(td, next)) return TdxMetadata.FieldValueNotValid;
                break;
            case "NOTIFY_ENABLES":
                lock (controls) controls.NotifyEnables = next;
                break;
        }
        _cpu.Gpr[8] = current & field.GuestRead;
        return TdxSuccess;
    }
}
