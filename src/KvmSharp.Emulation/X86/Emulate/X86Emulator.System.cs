// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// System instructions: MOV to/from CRn, LGDT/LIDT/SGDT/SIDT, RDMSR/WRMSR (X86Emulator.UserSpaceMsr.cs), IRET. Checks follow KVM's
/// emulator and setters (arch/x86/kvm/emulate.c em_cr_write, em_lgdt_lidt, emulate_store_desc_ptr, em_iret;
/// arch/x86/kvm/x86.c kvm_set_cr0/cr3/cr4/cr8, set_efer) for a vCPU without KVM_SET_CPUID2. The emulator keeps no
/// translation cache (every access walks the tables), so a CR3 write or a paging-mode change has nothing to flush.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>CR0 bits KVM keeps; writes to the others are dropped (x86.c kvm_set_cr0: CR0_RESERVED_BITS).</summary>
    private const ulong Cr0Defined = 0xE005_003F;

    /// <summary>RFLAGS bits IRET restores at CPL 0 (SDM Vol. 2A IRET: CF PF AF ZF SF TF IF DF OF IOPL NT RF AC VIF VIP ID).</summary>
    private const ulong IretWritable = 0x3D_7FD5;

    private static bool IsControlRegisterMove(in Instruction i) =>
        i.Code is Code.Mov_r64_cr or Code.Mov_cr_r64 or Code.Mov_r32_cr or Code.Mov_cr_r32;

    private void RequireCpl0()
    {
        if (_cpu.Cpl != 0) throw new GuestFault(GP_VECTOR);
    }

    /// <summary>MOV to/from CR0, CR2, CR3, CR4, CR8 (emulate.c em_cr_write / check_cr_access; other CRs are #UD).</summary>
    private void MoveControlRegister(in Instruction i)
    {
        RequireCpl0();
        bool toCr = i.Code is Code.Mov_cr_r64 or Code.Mov_cr_r32;
        Register cr = toCr ? i.Op0Register : i.GetOpRegister(1);
        if (!toCr)
        {
            ulong value = cr switch
            {
                Register.CR0 => _cpu.Sregs.cr0,
                Register.CR2 => _cpu.Sregs.cr2,
                Register.CR3 => _cpu.Sregs.cr3,
                Register.CR4 => _cpu.Sregs.cr4,
                Register.CR8 => _cpu.Sregs.cr8,
                _ => throw new GuestFault(UD_VECTOR),
            };
            WriteReg(i.Op0Register, value);
            return;
        }
        ulong v = ReadReg(i.GetOpRegister(1));
        switch (cr)
        {
            case Register.CR0: SetCr0(v); break;
            case Register.CR2: _cpu.Sregs.cr2 = v; break;
            case Register.CR3: SetCr3(v); break;
            case Register.CR4: SetCr4(v); break;
            // kvm_set_cr8: bits above the 4-bit TPR are reserved.
            case Register.CR8:
                if ((v & ~0xfUL) != 0) throw new GuestFault(GP_VECTOR);
                _cpu.Sregs.cr8 = v;
                break;
            default: throw new GuestFault(UD_VECTOR);
        }
    }

    /// <summary>x86.c kvm_set_cr0 + vmx_set_cr0 (enter_lmode / exit_lmode flip EFER.LMA with CR0.PG under EFER.LME).</summary>
    private void SetCr0(ulong cr0)
    {
        ulong old = _cpu.Sregs.cr0;
        // kvm_is_valid_cr0: no bits above 31, NW needs CD, PG needs PE.
        if ((cr0 >> 32) != 0) throw new GuestFault(GP_VECTOR);
        if ((cr0 & CR0_NW) != 0 && (cr0 & CR0_CD) == 0) throw new GuestFault(GP_VECTOR);
        if ((cr0 & CR0_PG) != 0 && (cr0 & CR0_PE) == 0) throw new GuestFault(GP_VECTOR);
        cr0 = (cr0 | CR0_ET) & Cr0Defined;
        bool lme = (_cpu.Sregs.efer & EFER_LME) != 0;
        bool pagingOn = (old & CR0_PG) == 0 && (cr0 & CR0_PG) != 0;
        bool pagingOff = (old & CR0_PG) != 0 && (cr0 & CR0_PG) == 0;
        // Enabling paging with LME needs CR4.PAE and a CS without L.
        if (lme && pagingOn && ((_cpu.Sregs.cr4 & CR4_PAE) == 0 || _cpu.Sregs.cs.l != 0)) throw new GuestFault(GP_VECTOR);
        // PAE paging outside long mode: a change of CD, NW or PG reloads the PDPTEs (X86Emulator.LegacyPaging.cs).
        if (!lme && (cr0 & CR0_PG) != 0) ReloadPdptrsForCr0(old, cr0);
        // Paging cannot be turned off in 64-bit mode, nor with CR4.PCIDE ("!(cr0 & X86_CR0_PG) && (is_64_bit_mode(vcpu) ||
        // kvm_is_cr4_bit_set(vcpu, X86_CR4_PCIDE))").
        if ((cr0 & CR0_PG) == 0 && (_cpu.Bitness == 64 || (_cpu.Sregs.cr4 & CR4_PCIDE) != 0)) throw new GuestFault(GP_VECTOR);
        // "if (!(cr0 & X86_CR0_WP) && kvm_is_cr4_bit_set(vcpu, X86_CR4_CET)) return 1" (6.18 CET virtualization).
        if ((cr0 & CR0_WP) == 0 && (_cpu.Sregs.cr4 & CR4_CET) != 0) throw new GuestFault(GP_VECTOR);
        _cpu.Sregs.cr0 = cr0;
        if (lme && pagingOn) _cpu.Sregs.efer |= EFER_LMA;
        if (lme && pagingOff) _cpu.Sregs.efer &= ~EFER_LMA;
    }

    /// <summary>
    /// x86.c kvm_set_cr3: "if (is_long_mode(vcpu) &amp;&amp; !kvm_vcpu_is_legal_cr3(vcpu, cr3)) return 1" → #GP — a bit of
    /// vcpu->arch.reserved_gpa_bits (SregsRules.ReservedGpaBits: above the CPUID's MAXPHYADDR, 36 without CPUID; in an
    /// SEV guest whose CPUID has leaf 0x8000001F, its C-bit is not one). Nothing cached to flush; the walk reads the
    /// tables with the C-bit stripped from CR3 (PageWalk64.Walk).
    /// </summary>
    private void SetCr3(ulong cr3)
    {
        if (_cpu.Bitness != 64) cr3 &= 0xffff_ffff;
        if ((cr3 & SregsRules.ReservedGpaBits(_cpu, _kvm)) != 0) throw new GuestFault(GP_VECTOR);
        ReloadPdptrsForCr3(cr3); // PAE paging: x86.c kvm_set_cr3 load_pdptrs (X86Emulator.LegacyPaging.cs)
        _cpu.Sregs.cr3 = cr3;
    }

    /// <summary>
    /// x86.c kvm_set_cr4, each failure #GP: kvm_is_valid_cr4 (SregsRules.Cr4ReservedBits: from the guest CPUID with
    /// EmulatorConfig.X86Cr4ReservedFromGuestCpuid, else this host's fixed mask); in long mode PAE cannot be cleared and
    /// LA57 cannot change; outside it a PAE-paging change of a PDPTR bit reloads the PDPTEs; PCIDE cannot be turned on
    /// outside long mode or while CR3[11:0] is non-zero; CET needs CR0.WP. A VM with protected state (SEV-ES, SNP, TD)
    /// keeps the fixed mask: there the write is checked by the hardware or the TDX module, not kvm_set_cr4 (svm.c
    /// cr_trap only calls kvm_post_set_cr4), which the emulator does not model.
    /// </summary>
    private void SetCr4(ulong cr4)
    {
        ulong old = _cpu.Sregs.cr4;
        bool valid = _kvm.ArchState.HasProtectedState ? (cr4 & ~Cr4ValidWithoutCpuid) == 0 : SregsRules.IsValidCr4(_cpu, _kvm, cr4);
        if (!valid) throw new GuestFault(GP_VECTOR);
        if (_cpu.LongModeActive && (cr4 & CR4_PAE) == 0) throw new GuestFault(GP_VECTOR);
        if (_cpu.LongModeActive && ((cr4 ^ old) & CR4_LA57) != 0) throw new GuestFault(GP_VECTOR);
        if (TdRefusesCr4Mce(cr4)) throw new GuestFault(GP_VECTOR, 0); // a TD's REDUCE_VE rule (X86Emulator.TdxCpuidMsr.cs)
        if (!_cpu.LongModeActive) ReloadPdptrsForCr4(cr4); // x86.c kvm_set_cr4 load_pdptrs (X86Emulator.LegacyPaging.cs)
        // "PCID can not be enabled when cr3[11:0]!=000H or EFER.LMA=0".
        if ((cr4 & CR4_PCIDE) != 0 && (old & CR4_PCIDE) == 0 && ((_cpu.Sregs.cr3 & CR3_PCID_MASK) != 0 || !_cpu.LongModeActive))
            throw new GuestFault(GP_VECTOR);
        if ((cr4 & CR4_CET) != 0 && (_cpu.Sregs.cr0 & CR0_WP) == 0) throw new GuestFault(GP_VECTOR);
        _cpu.Sregs.cr4 = cr4;
    }

    /// <summary>
    /// LGDT/LIDT (em_lgdt_lidt): CPL 0; a 16-bit operand loads a 24-bit base; in 64-bit mode a non-canonical base is
    /// #GP(0). SGDT/SIDT (emulate_store_desc_ptr): a 16-bit operand stores the base with its top byte clear.
    /// </summary>
    private void DescriptorTableRegister(in Instruction i)
    {
        bool load = i.Mnemonic is Mnemonic.Lgdt or Mnemonic.Lidt;
        bool gdt = i.Mnemonic is Mnemonic.Lgdt or Mnemonic.Sgdt;
        int baseBytes = _cpu.Bitness == 64 ? 8 : i.Code is Code.Lgdt_m1632_16 or Code.Lidt_m1632_16 or Code.Sgdt_m1632_16 or Code.Sidt_m1632_16 ? 3 : 4;
        ulong ea = EffectiveAddress(i);
        var seg = i.MemorySegment;
        ref var table = ref gdt ? ref _cpu.Sregs.gdt : ref _cpu.Sregs.idt;
        if (load)
        {
            RequireCpl0();
            ushort limit = (ushort)ReadMemory(seg, ea, 2);
            ulong @base = ReadMemory(seg, ea + 2, baseBytes == 3 ? 4 : baseBytes);
            if (baseBytes == 3) @base &= 0xff_ffff;
            if (baseBytes == 8 && !IsCanonical(@base)) throw new GuestFault(GP_VECTOR);
            table.limit = limit;
            table.@base = @base;
            return;
        }
        // CR4.UMIP (bit 11) makes SGDT/SIDT privileged.
        if ((_cpu.Sregs.cr4 & (1UL << 11)) != 0) RequireCpl0();
        WriteMemory(seg, ea, 2, table.limit);
        ulong stored = baseBytes == 3 ? table.@base & 0xff_ffff : table.@base;
        WriteMemory(seg, ea + 2, baseBytes == 8 ? 8 : 4, stored);
    }

    /// <summary>
    /// IRET. Real mode: pop IP, CS, FLAGS. IA-32e mode (SDM Vol. 2A IRET, "IA-32e-MODE" path): NT set → #GP(0); pop
    /// RIP, CS, RFLAGS, RSP, SS; the CS and SS descriptors are checked like a far return's, for the same or an outer
    /// privilege level (RETURN-TO-OUTER-PRIVILEGE-LEVEL nulls the data segments the new CPL may not use). In 32-bit
    /// protected mode only a return to the same privilege level is emulated.
    /// </summary>
    private ulong InterruptReturn(in Instruction i, ref ulong f)
    {
        ulong rip = InterruptReturnFrame(i, ref f);
        // IRET unblocks NMIs (SDM Vol. 3A 6.7.1; svm.c iret_interception clears nmi_masked). Observed here: any IRET,
        // also one not ending an NMI handler; a pending NMI then waits for the next KVM_RUN (X86Emulator.Events.cs).
        _cpu.State.NmiMasked = false;
        return rip;
    }

    private ulong InterruptReturnFrame(in Instruction i, ref ulong f)
    {
        int size = i.Mnemonic switch { Mnemonic.Iretq => 8, Mnemonic.Iretd => 4, _ => 2 };
        if (!_cpu.ProtectedMode)
        {
            if (size == 8) throw new EmulationFailure("64-bit IRET in real mode", haveInstructionBytes: true);
            if (ReadMemory(Register.SS, ReadStackPointer(), size) > 0xffff) throw new GuestFault(GP_VECTOR, 0); // before any pop
            ulong ip = Pop(size), segment = Pop(size), flags = Pop(size);
            // emulate.c emulate_iret_real: "if (temp_eip & ~0xffff) return emulate_gp(ctxt, 0)"; IRETD loads CF…OF,
            // IOPL, NT, AC, ID and keeps VM, VIF, VIP (RF is cleared when the instruction completes); then "ctxt->eflags
            // &= ~EFLG_RESERVED_ZEROS_MASK" (0xffc0802a). Observed here: IRETD of 0x3F0ED7 → 0x240ED7, IRET of 0xFEFF → 0x7ED7.
            _cpu.Sregs.cs.selector = (ushort)segment;
            _cpu.Sregs.cs.@base = (segment & 0xffff) << 4;
            f = size == 4 ? (flags & 0x24_7FD5UL) | (f & 0x1A_0000UL) : (f & ~0xffffUL) | flags;
            f = f & ~0xFFC0_802AUL | RFLAGS_FIXED;
            return ip;
        }
        if (!_cpu.LongModeActive) return LegacyInterruptReturn(size, ref f);
        if (size != 8) throw new EmulationFailure("16/32-bit IRET in long mode", haveInstructionBytes: true);
        if ((f & RFLAGS_NT) != 0) throw new GuestFault(GP_VECTOR);
        ulong rip = Pop(8);
        ushort csSel = (ushort)Pop(8);
        ulong rflags = Pop(8);
        ulong rsp = Pop(8);
        ushort ssSel = (ushort)Pop(8);
        int cpl = _cpu.Cpl;
        int rpl = csSel & 3;
        if ((csSel & 0xfffc) == 0) throw new GuestFault(GP_VECTOR);
        if (rpl < cpl) throw new GuestFault(GP_VECTOR, csSel & 0xfffc);
        // CS and SS are checked against the new CPL, RPL(CS): the same as CPL, or an outer one (X86Emulator.RingReturn.cs).
        var cs = LoadCodeSegment(csSel, rpl);
        if (cs.l != 0 && !IsCanonical(rip)) throw new GuestFault(GP_VECTOR);
        if (cs.l == 0) rip &= 0xffff_ffff;
        var ss = LoadStackSegmentFor64(ssSel, rpl);
        f = IretFlags(f, rflags, cpl, size);
        _cpu.Sregs.cs = cs;
        _cpu.Sregs.ss = ss;
        _cpu.Gpr[X86Cpu.RSP] = rsp;
        if (rpl > cpl) NullInaccessibleDataSegments(rpl);
        return rip;
    }

    /// <summary>
    /// IRET/IRETD in 32-bit protected mode to the same privilege level (SDM Vol. 2A IRET "PROTECTED-MODE-RETURN"):
    /// pop EIP, CS, EFLAGS. A task return (NT), a return to virtual-8086 mode or to an outer ring is not emulated.
    /// </summary>
    private ulong LegacyInterruptReturn(int size, ref ulong f)
    {
        if ((f & RFLAGS_NT) != 0) throw new EmulationFailure("IRET task return", haveInstructionBytes: true);
        ulong ip = Pop(size);
        ushort csSel = (ushort)Pop(size);
        ulong flags = Pop(size);
        int cpl = _cpu.Cpl;
        if (size == 4 && (flags & RFLAGS_VM) != 0 && cpl == 0) throw new EmulationFailure("IRET to virtual-8086 mode", haveInstructionBytes: true);
        int rpl = csSel & 3;
        if ((csSel & 0xfffc) == 0) throw new GuestFault(GP_VECTOR);
        if (rpl < cpl) throw new GuestFault(GP_VECTOR, csSel & 0xfffc);
        if (rpl > cpl) throw new EmulationFailure("IRET to an outer privilege level", haveInstructionBytes: true);
        var cs = LoadCodeSegment(csSel, cpl);
        if (ip > cs.limit) throw new GuestFault(GP_VECTOR);
        f = IretFlags(f, flags & ~RFLAGS_VM, cpl, size);
        _cpu.Sregs.cs = cs;
        return ip;
    }
}
