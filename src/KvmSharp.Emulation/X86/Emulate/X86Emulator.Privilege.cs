// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Privilege rules outside ring 0 that are not one instruction's own: the I/O permission of IN/OUT/INS/OUTS (IOPL and
/// the TSS I/O-permission bitmap: Intel SDM Vol. 1 19.5, AMD APM Vol. 2 13.3 "I/O-Permission Bitmap"; arch/x86/kvm/
/// emulate.c emulator_io_permited), the IOPL-sensitive CLI/STI/POPF (emulate.c em_cli, em_sti, emulate_popf), and
/// #GP(0) at CPL &gt; 0 for privileged instructions outside the emulated subset (emulate.c "Priv" in x86_emulate_insn:
/// "if ((ctxt-&gt;d &amp; Priv) &amp;&amp; ops-&gt;cpl(ctxt)) … emulate_gp(ctxt, 0)"). Virtual-8086 mode and the CR4.VME/PVI
/// virtual interrupt flag are not modelled beyond emulator_bad_iopl's "VM86 → always bad" (KVM's emulator ignores
/// VME/PVI too).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>TR's limit below which the TSS cannot hold the I/O map base (emulate.c: "desc_limit_scaled(&amp;tr_seg) &lt; 103").</summary>
    private const uint TssIoMapBaseEnd = 103;

    /// <summary>The I/O map base field of a 32/64-bit TSS (SDM Vol. 3A Figure 8-11: offset 102).</summary>
    private const ulong TssIoMapBaseOffset = 102;

    /// <summary>
    /// emulate.c emulator_bad_iopl: real mode never; virtual-8086 mode always; otherwise CPL &gt; RFLAGS.IOPL.
    /// </summary>
    private bool BadIopl()
    {
        if (!_cpu.ProtectedMode) return false;
        if ((_cpu.Rflags & RFLAGS_VM) != 0) return true;
        return _cpu.Cpl > (int)((_cpu.Rflags & RflagsIopl) >> 12);
    }

    /// <summary>
    /// emulate.c emulator_io_permited (check_perm_in / check_perm_out, run by x86_emulate_insn before the instruction
    /// and, for a REP string, before its rCX = 0 test): with a bad IOPL, the TSS bitmap must allow every port of the
    /// access, else #GP(0). The CPU makes this check before any VM exit or intercept (SDM Vol. 3C 26.1.1; AMD APM
    /// Vol. 2 15.10.1 "IOIO intercept … after the I/O permission checks"), so before a TD's #VE too.
    /// </summary>
    private void RequireIoPermission(ushort port, int size)
    {
        if (BadIopl() && !IoPortAccessAllowed(port, size)) throw new GuestFault(GP_VECTOR, 0);
    }

    /// <summary>
    /// emulate.c emulator_io_port_access_allowed: TR present with a limit ≥ 103; the 16-bit map base at TSS offset
    /// 102; "io_bitmap_ptr + port/8 &gt; limit" → refused; two bytes read at base + map base + port/8 (read_std, a
    /// supervisor access: a fault there refuses too); every bit of port … port + size − 1 must be 0. Only the first
    /// byte is checked against the limit (the SDM's processor reads both bytes, hence its 0xFF padding byte); Linux 6.18
    /// kvm_pvm agrees with emulate.c: a byte OUT to a port whose bitmap byte is the last in the limit exits
    /// (Conformance PrivilegeChecks.port_io_at_cpl_3_follows_the_tss_io_bitmap, "P + 16").
    /// </summary>
    private bool IoPortAccessAllowed(ushort port, int size)
    {
        var tr = _cpu.Sregs.tr;
        if (tr.present == 0 || tr.limit < TssIoMapBaseEnd) return false;
        Span<byte> b = stackalloc byte[2];
        try
        {
            SystemRead(tr.@base + TssIoMapBaseOffset, b);
            uint mapBase = BinaryPrimitives.ReadUInt16LittleEndian(b);
            if (mapBase + (uint)(port / 8) > tr.limit) return false;
            SystemRead(tr.@base + mapBase + (ulong)(port / 8), b);
        }
        catch (GuestFault)
        {
            return false;
        }
        uint perm = BinaryPrimitives.ReadUInt16LittleEndian(b);
        uint mask = (1u << size) - 1;
        return ((perm >> (port & 7)) & mask) == 0;
    }

    /// <summary>The port and size of IN/OUT (imm8 or DX; the AL/AX/EAX operand's size).</summary>
    private void RequirePortIoPermission(in Instruction i)
    {
        bool output = i.Mnemonic == Mnemonic.Out;
        int portOp = output ? 0 : 1;
        Register value = output ? i.GetOpRegister(1) : i.Op0Register;
        ushort port = (ushort)(i.GetOpKind(portOp) == OpKind.Register ? ReadReg(Register.DX) : i.GetImmediate(portOp));
        RequireIoPermission(port, value.GetSize());
    }

    /// <summary>INS/OUTS: port DX, the element size.</summary>
    private void RequireStringIoPermission(in Instruction i) =>
        RequireIoPermission((ushort)ReadReg(Register.DX), i.MemorySize.GetSize());

    /// <summary>emulate.c em_cli / em_sti: "if (emulator_bad_iopl(ctxt)) return emulate_gp(ctxt, 0)" — before IF or the STI shadow change.</summary>
    private void RequireIoplForInterruptFlag()
    {
        if (BadIopl()) throw new GuestFault(GP_VECTOR, 0);
    }

    /// <summary>
    /// emulate.c emulate_popf (em_popf, the operand size's low bytes of RFLAGS written back): CF PF AF ZF SF TF DF OF
    /// NT AC ID always; in protected mode IOPL only at CPL 0 and IF only at CPL ≤ IOPL (no fault otherwise); in real
    /// mode IOPL and IF. RF is cleared (SDM Vol. 2B POPF), VM/VIF/VIP unchanged. (Virtual-8086 mode is not emulated:
    /// emulate_popf's "iopl &lt; 3 → #GP(0)" there is not reached.)
    /// </summary>
    private ulong PoppedFlags(ulong f, ulong popped, int size)
    {
        const ulong Always = 0x24_4DD5;
        ulong change = Always;
        if (_cpu.ProtectedMode)
        {
            int cpl = _cpu.Cpl;
            if (cpl == 0) change |= RflagsIopl;
            if (cpl <= (int)((f & RflagsIopl) >> 12)) change |= RFLAGS_IF;
        }
        else
        {
            change |= RflagsIopl | RFLAGS_IF;
        }
        change &= Alu.Mask(size);
        return (f & ~change) | (popped & change) | RFLAGS_FIXED;
    }

    /// <summary>
    /// Privileged instructions outside the emulated subset: at CPL &gt; 0 they are #GP(0) before anything else of
    /// theirs, as emulate.c's "Priv" check (CLTS "DI(ImplicitOps | Priv, clts)", INVD/WBINVD "DI(ImplicitOps | Priv, …)",
    /// LMSW "II(SrcMem16 | Mov | Priv, em_lmsw, lmsw)"; LLDT "II(Prot | Priv | SrcMem16, em_lldt, lldt)" is #UD outside
    /// protected mode first) and the SDM's #GP(0) "If the current privilege level is not 0" for each. SMSW and SLDT are
    /// privileged only with CR4.UMIP (SDM Vol. 2B SMSW/SLDT; emulate.c em_smsw "if (ctxt-&gt;ops-&gt;cpl(ctxt) &gt; 0 &amp;&amp;
    /// (ctxt-&gt;ops-&gt;get_cr(ctxt, 4) &amp; X86_CR4_UMIP)) return emulate_gp"); RDPMC at CPL &gt; 0 without CR4.PCE (emulate.c
    /// check_rdpmc). At CPL 0 they stay outside the subset (false: the caller reports the emulation failure), but SMSW,
    /// which runs at CPL 3 without UMIP, is emulated.
    /// </summary>
    private bool TryPrivilegedOutsideSubset(in Instruction i)
    {
        const ulong Cr4Pce = 1UL << 8, Cr4Umip = 1UL << 11;
        int cpl = _cpu.Cpl;
        if (i.Mnemonic == Mnemonic.Smsw)
        {
            // emulate.c em_smsw: "if (ctxt->dst.type == OP_MEM) ctxt->dst.bytes = 2; ctxt->dst.val = get_cr(ctxt, 0)"
            // — a register takes CR0 at its operand size.
            if (cpl > 0 && (_cpu.Sregs.cr4 & Cr4Umip) != 0) throw new GuestFault(GP_VECTOR, 0);
            int size = i.GetOpKind(0) == OpKind.Register ? OpSize(i, 0) : 2;
            WriteOp(i, 0, size, _cpu.Sregs.cr0 & Alu.Mask(size));
            return true;
        }
        if (cpl == 0) return false;
        bool fault = i.Mnemonic switch
        {
            Mnemonic.Clts or Mnemonic.Invd or Mnemonic.Wbinvd or Mnemonic.Wbnoinvd or Mnemonic.Lmsw => true,
            Mnemonic.Lldt => _cpu.ProtectedMode ? true : throw new GuestFault(UD_VECTOR),
            Mnemonic.Sldt => _cpu.ProtectedMode ? (_cpu.Sregs.cr4 & Cr4Umip) != 0 : throw new GuestFault(UD_VECTOR),
            Mnemonic.Rdpmc => (_cpu.Sregs.cr4 & Cr4Pce) == 0,
            _ => false,
        };
        if (fault) throw new GuestFault(GP_VECTOR, 0);
        return false;
    }

    /// <summary>emulate.c em_rdtsc: "if (cr4 &amp; X86_CR4_TSD &amp;&amp; ctxt->ops->cpl(ctxt)) return emulate_gp(ctxt, 0)" (SDM Vol. 2B RDTSC).</summary>
    private void RequireTscReadable()
    {
        if ((_cpu.Sregs.cr4 & CR4_TSD) != 0 && _cpu.Cpl != 0) throw new GuestFault(GP_VECTOR, 0);
    }
}
