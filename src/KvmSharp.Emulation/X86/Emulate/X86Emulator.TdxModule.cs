// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The TDX module's own TDCALL leaves, beside TDG.VP.VMCALL (X86Emulator.Tdcall.cs), as the Intel TDX module source
/// implements them (intel/tdx-module src/td_dispatcher/vm_exits/tdg_vp_info.c, tdg_vp_veinfo_get.c,
/// tdg_mem_page_accept.c) and Linux's guest reads them (arch/x86/coco/tdx/tdx.c tdx_parse_tdinfo, tdx_get_ve_info,
/// try_accept_one; leaf numbers from arch/x86/include/asm/shared/tdx.h):
/// TDG.VP.INFO (1), TDG.VP.VEINFO.GET (3) and TDG.MEM.PAGE.ACCEPT (6); TDG.MR.RTMR.EXTEND (2) and TDG.MR.REPORT (4) are
/// X86Emulator.TdxReport.cs; TDG.VM.RD (7) and TDG.VM.WR (8) X86Emulator.TdxVmRdWr.cs. Every other leaf (TDG.SYS.RD,
/// TDG.VP.CPUIDVE.SET …) is not modelled: an emulation failure. Also the #VE the module injects for HLT, IN and
/// OUT and for an access to a PENDING private page, with the VE info VEINFO.GET hands out (CPUID, RDMSR and WRMSR:
/// X86Emulator.TdxCpuidMsr.cs).
/// </summary>
internal sealed partial class X86Emulator
{
    private const ulong TdxSuccess = 0;

    /// <summary>TDX_NO_VALID_VE_INFO (tdx-module tdx_error_codes_defs.h; KVM's old tdx_errno.h the same).</summary>
    private const ulong TdxNoValidVeInfo = 0xC000_0704_0000_0000;

    /// <summary>TDX_PAGE_ALREADY_ACCEPTED (a warning: bit 63 clear), with the S-EPT level in 31:0.</summary>
    private const ulong TdxPageAlreadyAccepted = 0x0000_0B0A_0000_0000;

    /// <summary>TDX_PAGE_SIZE_MISMATCH, with the S-EPT level in 31:0.</summary>
    private const ulong TdxPageSizeMismatch = 0xC000_0B0B_0000_0000;

    private readonly TdVeInfo _veInfo = new();

    // The last linear address the interpreter translated and how (the GLA and access type of a PENDING page's #VE).
    private ulong _lastLinear;
    private PageAccess _lastAccess;

    /// <summary>A TDCALL leaf other than TDG.VP.VMCALL; returns the RIP to continue at.</summary>
    private ulong TdxModuleCall(in Instruction i, ulong leaf)
    {
        switch (leaf)
        {
            case 1:
                VpInfo();
                return i.NextIP;
            case 2:
                MrRtmrExtend(); // X86Emulator.TdxReport.cs
                return i.NextIP;
            case 3:
                VpVeinfoGet();
                return i.NextIP;
            case 4:
                MrReport(); // X86Emulator.TdxReport.cs
                return i.NextIP;
            case 6:
                MemPageAccept();
                return i.NextIP;
            default:
                if (TdxVmRdWr(leaf)) return i.NextIP; // TDG.VM.RD / TDG.VM.WR (any version): X86Emulator.TdxVmRdWr.cs
                throw new EmulationFailure($"TDCALL leaf {leaf} is outside the modelled TDX module (TDG.VP.VMCALL, TDG.VP.INFO, TDG.MR.RTMR.EXTEND, TDG.VP.VEINFO.GET, TDG.MR.REPORT, TDG.MEM.PAGE.ACCEPT, TDG.VM.RD, TDG.VM.WR)", haveInstructionBytes: true);
        }
    }

    /// <summary>
    /// tdg_vp_info.c: RCX = GPAW (52 with TDX_CONFIG_FLAGS_MAX_GPAW, which KVM sets for CPUID 0x80000008 GPAW 52 —
    /// vmx/tdx.c setup_tdparams_eptp_controls —, else 48); RDX = TD ATTRIBUTES (KVM_TDX_INIT_VM's, fixed1 none here);
    /// R8 = NUM_VCPUS (31:0) | MAX_VCPUS (63:32) (setup_tdparams: max_vcpus = kvm->max_vcpus, which tdx_vm_init
    /// limits to the present CPUs); R9 = VCPU_INDEX; R10 = TDG_COMMANDS_AVAILABLE with TDG.SYS.RD (bit 0); R11 = 0.
    /// Linux tdx_parse_tdinfo: "gpa_width = args.rcx &amp; GENMASK(5, 0)", "td_attr = args.rdx".
    /// </summary>
    private void VpInfo()
    {
        var td = CocoState.Tdx(_kvm);
        var config = _kvm.Kernel.Config;
        ulong maxVcpus = (ulong)Math.Min(config.MaxVcpus, config.OnlineCpus);
        _cpu.Gpr[X86Cpu.RCX] = td.SharedGpaBit == 1UL << 51 ? 52UL : 48UL;
        _cpu.Gpr[X86Cpu.RDX] = td.Attributes;
        _cpu.Gpr[8] = (uint)TdxVcpuIndex.NumVcpus(_kvm) | (maxVcpus << 32);
        _cpu.Gpr[9] = (uint)TdxVcpuIndex.Index(_vcpu);
        _cpu.Gpr[10] = 1;
        _cpu.Gpr[11] = 0;
        _cpu.Gpr[X86Cpu.RAX] = TdxSuccess;
    }

    /// <summary>
    /// tdg_vp_veinfo_get.c: RCX, RDX, R8, R9, R10 = 0 first; without valid info TDX_NO_VALID_VE_INFO; else RCX = exit
    /// reason, RDX = exit qualification, R8 = GLA, R9 = GPA, R10 = instruction length (31:0) | information (63:32), and
    /// VALID is cleared (Linux tdx_get_ve_info: "ve->instr_len = lower_32_bits(args.r10); ve->instr_info =
    /// upper_32_bits(args.r10)").
    /// </summary>
    private void VpVeinfoGet()
    {
        _cpu.Gpr[X86Cpu.RCX] = 0;
        _cpu.Gpr[X86Cpu.RDX] = 0;
        _cpu.Gpr[8] = 0;
        _cpu.Gpr[9] = 0;
        _cpu.Gpr[10] = 0;
        if (!_veInfo.Valid)
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxNoValidVeInfo;
            return;
        }
        _cpu.Gpr[X86Cpu.RCX] = _veInfo.ExitReason;
        _cpu.Gpr[X86Cpu.RDX] = _veInfo.ExitQualification;
        _cpu.Gpr[8] = _veInfo.Gla;
        _cpu.Gpr[9] = _veInfo.Gpa;
        _cpu.Gpr[10] = _veInfo.InstructionLength | ((ulong)_veInfo.InstructionInfo << 32);
        _veInfo.Valid = false;
        _cpu.Gpr[X86Cpu.RAX] = TdxSuccess;
    }

    /// <summary>
    /// tdg_mem_page_accept.c. RCX = GPA | level (2:0: 0 = 4 KiB, 1 = 2 MiB); reserved bits 11:3 and 63:52, another
    /// level, a GPA not aligned to the level, beyond the GPAW or with the shared bit (check_gpa_validity PRIVATE_ONLY)
    /// are TDX_OPERAND_INVALID for RCX. A 4 KiB leaf already MAPPED is TDX_PAGE_ALREADY_ACCEPTED (level 0); a PENDING one
    /// is zeroed (init_sept_4k_page) and MAPPED, TDX_SUCCESS. No leaf yet: the module exits with an EPT violation
    /// (async_tdexit_ept_violation, VMX_EEQ_ACCEPT), KVM maps the GPA (tdx_handle_ept_violation →
    /// tdx_sept_set_private_spte → TDH.MEM.PAGE.AUG: PENDING) and re-enters the TD at the TDCALL, which then accepts;
    /// when KVM cannot map it, KVM_RUN ends as a guest access there would (KVM_EXIT_MEMORY_FAULT, -EFAULT). KVM maps TD
    /// memory at 4 KiB here, so a 2 MiB ACCEPT meets a non-leaf entry: TDX_PAGE_SIZE_MISMATCH (level 1), after KVM
    /// mapped the GPA when nothing in the range was (Linux try_accept_one then falls back to 4 KiB).
    /// </summary>
    private void MemPageAccept()
    {
        ulong rcx = _cpu.Gpr[X86Cpu.RCX];
        var td = CocoState.Tdx(_kvm);
        int level = (int)(rcx & 7);
        ulong gpa = rcx & 0x000F_FFFF_FFFF_F000;
        ulong gpaw = td.SharedGpaBit == 1UL << 51 ? 52UL : 48UL;
        ulong pageMask = level == 1 ? 0x1F_FFFFUL : 0xFFFUL;
        if (level > 1 || (rcx & 0xFF8) != 0 || (rcx >> 52) != 0 || (gpa & pageMask) != 0 ||
            (gpa >> (int)gpaw) != 0 || (gpa & td.SharedGpaBit) != 0)
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxOperandInvalidRcx;
            return;
        }
        ulong gfn = gpa >> 12;
        if (level == 1)
        {
            bool anyMapped = false;
            lock (_kvm.Kernel.SyncRoot)
                for (ulong g = gfn; g < gfn + 512 && !anyMapped; g++) anyMapped = TdxSept.State(_kvm, g) != SeptPageState.Free;
            if (!anyMapped) MapForModule(gpa);
            _cpu.Gpr[X86Cpu.RAX] = TdxPageSizeMismatch | 1;
            return;
        }
        SeptPageState state;
        lock (_kvm.Kernel.SyncRoot) state = TdxSept.State(_kvm, gfn);
        if (state == SeptPageState.Mapped)
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxPageAlreadyAccepted;
            return;
        }
        if (state == SeptPageState.Free) MapForModule(gpa);
        lock (_kvm.Kernel.SyncRoot) TdxSept.Accept(_kvm, gfn);
        // init_sept_4k_page: the module zeroes the page with the TD's key before it becomes MAPPED.
        Span<byte> zero = stackalloc byte[EmulatorConfig.PageSize];
        zero.Clear();
        var w = _mem.Write(gpa, zero);
        if (w.Status == GpaStatus.MemoryFault) throw new MemoryFaultStop(w);
        _cpu.Gpr[X86Cpu.RAX] = TdxSuccess;
    }

    /// <summary>KVM's handling of the module's EPT-violation exit for <paramref name="gpa"/> (see <see cref="MemPageAccept"/>).</summary>
    private void MapForModule(ulong gpa)
    {
        var r = _mem.TdMapPrivate(gpa);
        if (r.Status == GpaStatus.MemoryFault) throw new MemoryFaultStop(r);
        // No memslot: kvm_handle_noslot_fault refuses a private access (GuestPhysicalMemory answers EFAULT first).
        if (r.Status == GpaStatus.Mmio) throw new MemoryFaultStop(GpaResult.Fault(Vfs.Err.EFAULT, gpa, true));
    }

    /// <summary>
    /// The TDX module injects a #VE with this information — or a #DF while the previous #VE's info is still VALID
    /// (TDX module spec, "#VE injection"; Linux tdx_get_ve_info's comment). The returned fault is thrown or delivered.
    /// </summary>
    private GuestFault InjectVe(uint exitReason, ulong qualification, ulong gla, ulong gpa, uint instructionLength)
    {
        if (_veInfo.Valid) return new GuestFault(DF_VECTOR);
        _veInfo.Record(exitReason, qualification, gla, gpa, instructionLength);
        return new GuestFault(VE_VECTOR);
    }

    /// <summary>
    /// HLT, IN and OUT (INS/OUTS too) in a TD: the TDX module turns them into a #VE for the guest's own handler (Linux
    /// virt_exception_kernel: EXIT_REASON_HLT, EXIT_REASON_IO_INSTRUCTION; ve_instr_len uses the recorded length for
    /// both), which then asks KVM with TDG.VP.VMCALL. The VE info: exit reason 12 (HLT, qualification 0) or 30 with
    /// the SDM's I/O exit qualification (<see cref="TdVeInfo.IoQualification"/>), GLA and GPA 0, the instruction
    /// length. Not in a TD: nothing.
    /// </summary>
    private void TdVirtualizationException(in Instruction i)
    {
        if (!CocoState.IsTd(_kvm)) return;
        if (i.Mnemonic == Mnemonic.Hlt) throw InjectVe(TdVeInfo.ExitReasonHlt, 0, 0, 0, (uint)i.Length);
        if (IsStringIo(i.Mnemonic)) throw InjectVe(TdVeInfo.ExitReasonIoInstruction, StringIoQualification(i), 0, 0, (uint)i.Length); // X86Emulator.StringIo.cs
        bool input = i.Mnemonic == Mnemonic.In;
        int portOp = input ? 1 : 0;
        var value = input ? i.Op0Register : i.GetOpRegister(1);
        bool immediate = i.GetOpKind(portOp) != OpKind.Register;
        ushort port = (ushort)(immediate ? i.GetImmediate(portOp) : _cpu.Gpr[X86Cpu.RDX]);
        throw InjectVe(TdVeInfo.ExitReasonIoInstruction, TdVeInfo.IoQualification(value.GetSize(), input, immediate, port), 0, 0, (uint)i.Length);
    }

    /// <summary>
    /// A TD's access to a PENDING private page (<see cref="GpaResult.TdPending"/>). The TDX module reports a pending
    /// S-EPT violation; with TD ATTRIBUTES.SEPT_VE_DISABLE clear it is a #VE: exit reason 48 (EPT violation), the
    /// SDM's EPT-violation qualification (bit 0 read, 1 write, 2 fetch; 5:3 = 0, no permission; 7 GLA valid; 8 the
    /// final translation — the emulator does not tell a paging-structure access apart), the GLA and GPA. With it set
    /// the module exits to KVM, and vmx/tdx.c tdx_handle_ept_violation (6.18) finds
    /// tdx_is_sept_violation_unexpected_pending: "Guest access before accepting", kvm_vm_dead, KVM_RUN → -EIO (and
    /// every later VM / vCPU ioctl -EIO). Later trees ([PATCH] "KVM: TDX: Exit with MEMORY_FAULT on unexpected pending
    /// S-EPT Violation") make it a size-0 memory fault exit with -EFAULT instead; not modelled.
    /// </summary>
    private StepOutcome TdPendingAccess(GpaResult r)
    {
        if (TdSeptVeDisabled)
        {
            _kvm.MarkDead();
            return new StepOutcome(true, Vfs.Err.EIO);
        }
        return DeliverException(QueueGuestFault(TdPendingFault(r)));
    }

    /// <summary>TD ATTRIBUTES.SEPT_VE_DISABLE: a pending S-EPT violation exits to KVM instead of being a #VE.</summary>
    private bool TdSeptVeDisabled => (CocoState.Tdx(_kvm).Attributes & TdxModule.TdAttrSeptVeDisable) != 0;

    /// <summary>
    /// The #VE (or, VE info still VALID, #DF) for a PENDING page without SEPT_VE_DISABLE; also when an event's own
    /// delivery (IDT, stack) meets one (X86Emulator.Exceptions.cs DeliverException applies the double-fault rules, so
    /// a #DF whose delivery meets it again shuts the TD down: KVM_EXIT_SHUTDOWN).
    /// </summary>
    private GuestFault TdPendingFault(GpaResult r)
    {
        ulong access = (_lastAccess & PageAccess.Fetch) != 0 ? 4UL : (_lastAccess & PageAccess.Write) != 0 ? 2UL : 1UL;
        ulong qualification = access | (1UL << 7) | (1UL << 8);
        return InjectVe(TdVeInfo.ExitReasonEptViolation, qualification, _lastLinear, r.Gpa, 0);
    }
}
