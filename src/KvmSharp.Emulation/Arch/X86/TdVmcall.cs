// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.X86;
using static KvmSharp.Abi.TdxGhci;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// vcpu_tdx.vp_enter_args after a TDG.VP.VMCALL: the guest registers the TDX module passed to KVM (those the guest did
/// not expose in RCX read 0) and, on the way back, what KVM leaves in them for the guest.
/// </summary>
internal sealed class TdVmcallArgs
{
    /// <summary>The 16 GPRs in X86Cpu's (ModRM) order; RAX, RSP and RBP are never passed.</summary>
    public readonly ulong[] Gpr = new ulong[16];

    public ref ulong Rcx => ref Gpr[X86Cpu.RCX];
    public ref ulong Rdx => ref Gpr[X86Cpu.RDX];
    public ref ulong Rbx => ref Gpr[X86Cpu.RBX];
    public ref ulong Rsi => ref Gpr[X86Cpu.RSI];
    public ref ulong Rdi => ref Gpr[X86Cpu.RDI];
    public ref ulong R8 => ref Gpr[8];
    public ref ulong R9 => ref Gpr[9];
    public ref ulong R10 => ref Gpr[10];
    public ref ulong R11 => ref Gpr[11];
    public ref ulong R12 => ref Gpr[12];
    public ref ulong R13 => ref Gpr[13];
    public ref ulong R14 => ref Gpr[14];
    public ref ulong R15 => ref Gpr[15];
}

/// <summary>What <see cref="TdVmcall"/> decided: the guest goes on, KVM_RUN returns to userspace, or the vCPU halts.</summary>
internal enum TdVmcallOutcome
{
    Resume,
    ExitToUser,
    Halt,
}

/// <summary>
/// arch/x86/kvm/vmx/tdx.c (6.18): what KVM does with a TD's TDG.VP.VMCALL — tdx_to_vmx_exit_reason sends R10 != 0 to
/// tdx_emulate_vmcall (a KVM hypercall), the instruction sub-functions (CPUID, HLT, IO, RDMSR, WRMSR, EPT violation =
/// MMIO) to the exit handlers of tdx_handle_exit, and the rest to handle_tdvmcall (MapGPA, ReportFatalError,
/// GetTdVmCallInfo, GetQuote, SetupEventNotifyInterrupt; anything else TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED). A
/// sub-function that succeeds leaves R10 as the guest passed it (0: a standard TDVMCALL). One per TD vCPU; an exit to
/// userspace leaves its completion (vcpu-&gt;arch.complete_userspace_io) for the next KVM_RUN.
/// </summary>
internal sealed class TdVmcall(KvmVcpu vcpu)
{
    /// <summary>TDX_MAP_GPA_MAX_LEN: MapGPA goes to userspace 2 MiB at a time, checking for pending events between chunks.</summary>
    private const ulong MapGpaMaxLen = 2UL << 20;

    /// <summary>FEAT_CTL_LOCKED and FEAT_CTL_LMCE_ENABLED (asm/msr-index.h), MCG_LMCE_P (asm/mce.h).</summary>
    private const ulong FeatCtlLocked = 1UL << 0, FeatCtlLmceEnabled = 1UL << 20, McgLmceP = 1UL << 27;

    private const uint MsrEfer = 0xc000_0080, MsrApicBase = 0x1b, MsrFeatCtl = 0x3a, MsrMcgCap = 0x179, MsrMcgExtCtl = 0x4d0;

    private Func<KvmRunPage, TdVmcallOutcome>? _complete;
    private ulong _mapGpaNext, _mapGpaEnd;

    /// <summary>The registers of the call being handled.</summary>
    public TdVmcallArgs Args { get; } = new();

    /// <summary>tdx_interrupt_allowed / tdx_protected_apic_has_interrupt: the last call was HLT with R12 ("interrupts blocked") set.</summary>
    public bool HaltedWithInterruptsBlocked { get; private set; }

    /// <summary>An exit to userspace waits for its completion on the next KVM_RUN.</summary>
    public bool HasPendingCompletion => _complete is not null;

    /// <summary>
    /// complete_userspace_io on the next KVM_RUN (before immediate_exit is looked at): the result userspace left in
    /// kvm_run goes to the guest's registers, or (MapGPA) the next chunk exits again.
    /// </summary>
    public TdVmcallOutcome Complete(KvmRunPage run)
    {
        var complete = _complete!;
        _complete = null;
        return complete(run);
    }

    /// <summary>tdx_handle_exit for EXIT_REASON_TDCALL and the exit reasons a TDVMCALL stands for.</summary>
    public TdVmcallOutcome Handle(KvmRunPage run)
    {
        var a = Args;
        HaltedWithInterruptsBlocked = false;
        // tdx_to_vmx_exit_reason: "if (tdvmcall_exit_type(vcpu)) return EXIT_REASON_VMCALL;".
        if (a.R10 != 0) return KvmHypercall(run);
        switch (a.R11)
        {
            case EXIT_REASON_CPUID:
                Cpuid();
                return TdVmcallOutcome.Resume;
            case EXIT_REASON_HLT:
                // kvm_emulate_halt_noskip; R12 is what tdx_interrupt_allowed reads.
                HaltedWithInterruptsBlocked = a.R12 != 0;
                return TdVmcallOutcome.Halt;
            case EXIT_REASON_IO_INSTRUCTION:
                return Io(run);
            case EXIT_REASON_MSR_READ:
                return ReadMsr();
            case EXIT_REASON_MSR_WRITE:
                return WriteMsr();
            case EXIT_REASON_EPT_VIOLATION:
                // tdcall_to_vmx_exit_reason: "case EXIT_REASON_EPT_VIOLATION: return EXIT_REASON_EPT_MISCONFIG;".
                return Mmio(run);
            case TDVMCALL_MAP_GPA:
                return MapGpa(run);
            case TDVMCALL_REPORT_FATAL_ERROR:
                return ReportFatalError(run);
            case TDVMCALL_GET_TD_VM_CALL_INFO:
                return GetTdVmCallInfo(run);
            case TDVMCALL_GET_QUOTE:
                return GetQuote(run);
            case TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT:
                return SetupEventNotifyInterrupt(run);
            default:
                a.R10 = TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED;
                return TdVmcallOutcome.Resume;
        }
    }

    /// <summary>
    /// tdx_emulate_vmcall: RAX..RSI from R10..R14, then __kvm_emulate_hypercall(vcpu, cpl 0, complete_hypercall_exit) —
    /// 64-bit (is_64_bit_hypercall: guest_state_protected); the result, now or from userspace, goes to R10.
    /// </summary>
    private TdVmcallOutcome KvmHypercall(KvmRunPage run)
    {
        var a = Args;
        if (Emulation.X86.KvmHypercall.Dispatch(vcpu.Cpu, vcpu.Kvm.HypercallExitEnabled, run, a.R10, a.R11, a.R12, a.R13, a.R14, cpl: 0, op64: true, out ulong ret))
        {
            _complete = r =>
            {
                Args.R10 = r.HypercallRet;
                return TdVmcallOutcome.Resume;
            };
            return TdVmcallOutcome.ExitToUser;
        }
        a.R10 = ret;
        return TdVmcallOutcome.Resume;
    }

    /// <summary>tdx_emulate_cpuid: kvm_cpuid(R12, R13) into R12..R15.</summary>
    private void Cpuid()
    {
        var a = Args;
        var (eax, ebx, ecx, edx) = vcpu.Cpu.Cpuid.Emulate((uint)a.R12, (uint)a.R13, vcpu.Cpu);
        a.R12 = eax;
        a.R13 = ebx;
        a.R14 = ecx;
        a.R15 = edx;
    }

    /// <summary>
    /// tdx_emulate_io: size R12 (1, 2, 4) and direction R13 (0, 1) checked (TDVMCALL_STATUS_INVALID_OPERAND), port R14,
    /// data R15; an in-kernel device (kernel_pio) answers at once, else KVM_EXIT_IO and tdx_complete_pio_in/out.
    /// </summary>
    private TdVmcallOutcome Io(KvmRunPage run)
    {
        var a = Args;
        ulong size = a.R12, write = a.R13;
        if ((write != 0 && write != 1) || (size != 1 && size != 2 && size != 4))
        {
            a.R10 = TDVMCALL_STATUS_INVALID_OPERAND;
            return TdVmcallOutcome.Resume;
        }
        return DeviceAccess(run, KvmMain.KvmBus.Pio, (ushort)a.R14, (int)size, write == 1);
    }

    /// <summary>
    /// tdx_emulate_mmio: size R12 (1, 2, 4, 8), direction R13, GPA R14 — shared only (a private GPA at either end is
    /// TDVMCALL_STATUS_INVALID_OPERAND), the shared bit cleared; the in-kernel MMIO bus (tdx_mmio_write/read) or
    /// KVM_EXIT_MMIO, a read completed into R11 by tdx_complete_mmio_read.
    /// </summary>
    private TdVmcallOutcome Mmio(KvmRunPage run)
    {
        var a = Args;
        ulong size = a.R12, write = a.R13, gpa = a.R14;
        ulong shared = CocoState.Tdx(vcpu.Kvm).SharedGpaBit;
        if ((size != 1 && size != 2 && size != 4 && size != 8) || (write != 0 && write != 1)
            || (gpa & shared) == 0 || ((gpa + size - 1) & shared) == 0)
        {
            a.R10 = TDVMCALL_STATUS_INVALID_OPERAND;
            return TdVmcallOutcome.Resume;
        }
        return DeviceAccess(run, KvmMain.KvmBus.Mmio, gpa & ~shared, (int)size, write == 1);
    }

    /// <summary>
    /// The access itself, port I/O (kernel_pio) or MMIO (tdx_mmio_write / tdx_mmio_read): an in-kernel device on the bus
    /// takes it at once (a read's value in R11); else KVM_EXIT_IO / KVM_EXIT_MMIO, with R15's bytes for a write and a
    /// completion that reads the value userspace left into R11 for a read (tdx_complete_pio_in, tdx_complete_mmio_read).
    /// </summary>
    private TdVmcallOutcome DeviceAccess(KvmRunPage run, KvmMain.KvmBus bus, ulong addr, int length, bool write)
    {
        var a = Args;
        bool pio = bus == KvmMain.KvmBus.Pio;
        if (write)
        {
            if (vcpu.Kvm.IoBus.Write(bus, vcpu, addr, length, a.R15)) return TdVmcallOutcome.Resume;
            Span<byte> data = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(data, a.R15);
            if (pio) data[..length].CopyTo(run.SetIoExit(output: true, length, (ushort)addr));
            else run.SetMmioExit(addr, data[..length], length, write: true);
            _complete = _ => TdVmcallOutcome.Resume;
            return TdVmcallOutcome.ExitToUser;
        }
        Span<byte> fromDevice = stackalloc byte[length];
        if (vcpu.Kvm.IoBus.Read(bus, vcpu, addr, fromDevice))
        {
            a.R11 = Little(fromDevice);
            return TdVmcallOutcome.Resume;
        }
        if (pio) run.SetIoExit(output: false, length, (ushort)addr);
        else run.SetMmioExit(addr, default, length, write: false);
        _complete = r =>
        {
            Args.R11 = Little(pio ? r.IoData(length) : r.MmioData(length));
            return TdVmcallOutcome.Resume;
        };
        return TdVmcallOutcome.ExitToUser;
    }

    /// <summary>
    /// tdx_handle_exit EXIT_REASON_MSR_READ: RCX = R12, kvm_emulate_rdmsr through tdx_get_msr (FEAT_CTL reads LOCKED
    /// plus LMCE_ENABLED when MCG_CAP has LMCE_P; MCG_EXT_CTL needs LMCE_P; anything outside tdx_has_emulated_msr
    /// fails), then tdx_complete_emulated_msr: a failure is TDVMCALL_STATUS_INVALID_OPERAND, a value goes to R11.
    /// Userspace MSR exits (KVM_CAP_X86_USER_SPACE_MSR) are not modelled.
    /// </summary>
    private TdVmcallOutcome ReadMsr()
    {
        var a = Args;
        uint index = (uint)a.R12;
        ulong value = 0;
        bool ok;
        switch (index)
        {
            case MsrFeatCtl:
                value = FeatCtlLocked | ((McgCap() & McgLmceP) != 0 ? FeatCtlLmceEnabled : 0);
                ok = true;
                break;
            case MsrMcgExtCtl:
                ok = (McgCap() & McgLmceP) != 0 && MsrRules.Get(vcpu.Cpu, index, hostInitiated: false, out value) == 0;
                break;
            default:
                ok = HasEmulatedMsr(index) && MsrRules.Get(vcpu.Cpu, index, hostInitiated: false, out value) == 0;
                break;
        }
        if (ok) a.R11 = value;
        else a.R10 = TDVMCALL_STATUS_INVALID_OPERAND;
        return TdVmcallOutcome.Resume;
    }

    /// <summary>
    /// tdx_handle_exit EXIT_REASON_MSR_WRITE: RCX = R12, EDX:EAX = R13, kvm_emulate_wrmsr through tdx_set_msr
    /// (tdx_is_read_only_msr: APIC base, EFER, FEAT_CTL refused; MCG_EXT_CTL needs LMCE_P and only LMCE_EN; outside
    /// tdx_has_emulated_msr refused); a failure is TDVMCALL_STATUS_INVALID_OPERAND.
    /// </summary>
    private TdVmcallOutcome WriteMsr()
    {
        var a = Args;
        uint index = (uint)a.R12;
        ulong value = a.R13;
        bool ok = index switch
        {
            MsrMcgExtCtl => (McgCap() & McgLmceP) != 0 && (value & ~1UL) == 0 && MsrRules.Set(vcpu.Cpu, index, value, hostInitiated: false) == 0,
            MsrApicBase or MsrEfer or MsrFeatCtl => false,
            _ => HasEmulatedMsr(index) && MsrRules.Set(vcpu.Cpu, index, value, hostInitiated: false) == 0,
        };
        if (!ok) a.R10 = TDVMCALL_STATUS_INVALID_OPERAND;
        return TdVmcallOutcome.Resume;
    }

    private ulong McgCap() => MsrRules.Get(vcpu.Cpu, MsrMcgCap, hostInitiated: true, out ulong cap) == 0 ? cap : 0;

    /// <summary>
    /// tdx_has_emulated_msr. The x2APIC exclusions are the source's ranges as written: "X2APIC_MSR(APIC_ISR) ...
    /// X2APIC_MSR(APIC_ISR + APIC_ISR_NR)" is 0x810 ... 0x810 (APIC_ISR_NR is 8, under a shift by 4), likewise TMR
    /// and IRR — so only their first MSR is excluded.
    /// </summary>
    private static bool HasEmulatedMsr(uint index) => index switch
    {
        0x8b or 0x10a or 0x1fc or 0x277 or 0xfe or 0x2ff or 0x6e0 or 0x1a0 or 0xce or 0x140 or MsrApicBase or MsrEfer
            or MsrFeatCtl or MsrMcgCap or 0x17a or 0x17b or MsrMcgExtCtl or 0x4b56_4d05 => true,
        >= 0x200 and <= 0x26f => true,     // MTRRphysBase_MSR(0) ... MSR_MTRRfix4K_F8000
        >= 0x400 and <= 0x47f => true,     // MSR_IA32_MC0_CTL ... MSR_IA32_MCx_CTL(KVM_MAX_MCE_BANKS) - 1
        >= 0x280 and <= 0x29f => true,     // MSR_IA32_MC0_CTL2 ... MSR_IA32_MCx_CTL2(KVM_MAX_MCE_BANKS) - 1
        0x808 or 0x80a or 0x80b or 0x810 or 0x818 or 0x820 => false, // TPR, PPR, EOI, ISR, TMR, IRR (see above)
        >= 0x800 and <= 0x8ff => true,
        _ => false,
    };

    /// <summary>
    /// tdx_map_gpa: without KVM_CAP_EXIT_HYPERCALL's KVM_HC_MAP_GPA_RANGE bit TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED; a
    /// wrapping range, an illegal GPA at either end or a range across the shared bit INVALID_OPERAND; unaligned
    /// ALIGN_ERROR (each with R11 = the GPA); else the first chunk goes to userspace.
    /// </summary>
    private TdVmcallOutcome MapGpa(KvmRunPage run)
    {
        var a = Args;
        ulong gpa = a.R12, size = a.R13;
        ulong status;
        ulong page = (ulong)EmulatorConfig.PageSize;
        if ((vcpu.Kvm.HypercallExitEnabled & (1UL << (int)KvmPara.KVM_HC_MAP_GPA_RANGE)) == 0)
            status = TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED;
        else if (unchecked(gpa + size) <= gpa || !LegalGpa(gpa) || !LegalGpa(gpa + size - 1) || IsPrivate(gpa) != IsPrivate(gpa + size - 1))
            status = TDVMCALL_STATUS_INVALID_OPERAND;
        else if ((gpa & (page - 1)) != 0 || (size & (page - 1)) != 0)
            status = TDVMCALL_STATUS_ALIGN_ERROR;
        else
        {
            _mapGpaEnd = gpa + size;
            _mapGpaNext = gpa;
            MapGpaChunk(run);
            return TdVmcallOutcome.ExitToUser;
        }
        a.R10 = status;
        a.R11 = gpa;
        return TdVmcallOutcome.Resume;
    }

    /// <summary>
    /// __tdx_map_gpa: KVM_EXIT_HYPERCALL(KVM_HC_MAP_GPA_RANGE) for at most 2 MiB from map_gpa_next — args[0] the GPA
    /// without the shared bit, args[1] pages, args[2] ENCRYPTED for a private GPA else DECRYPTED, ret 0, flags LONG_MODE.
    /// </summary>
    private void MapGpaChunk(KvmRunPage run)
    {
        ulong gpa = _mapGpaNext;
        ulong size = Math.Min(_mapGpaEnd - _mapGpaNext, MapGpaMaxLen);
        ulong shared = CocoState.Tdx(vcpu.Kvm).SharedGpaBit;
        run.SetHypercallExit(KvmPara.KVM_HC_MAP_GPA_RANGE, gpa & ~shared, size / (ulong)EmulatorConfig.PageSize,
            IsPrivate(gpa) ? KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED : KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED, KvmPara.KVM_EXIT_HYPERCALL_LONG_MODE);
        _complete = CompleteMapGpa;
    }

    /// <summary>
    /// tdx_complete_vmcall_map_gpa: a non-zero hypercall.ret is INVALID_OPERAND with R11 = the chunk's GPA; the last
    /// chunk done resumes the guest; with an event pending (kvm_vcpu_has_events) TDVMCALL_STATUS_RETRY with R11 = the
    /// next GPA; else the next chunk exits.
    /// </summary>
    private TdVmcallOutcome CompleteMapGpa(KvmRunPage run)
    {
        var a = Args;
        if (run.HypercallRet != 0)
        {
            a.R10 = TDVMCALL_STATUS_INVALID_OPERAND;
            a.R11 = _mapGpaNext;
            return TdVmcallOutcome.Resume;
        }
        _mapGpaNext += MapGpaMaxLen;
        if (_mapGpaNext >= _mapGpaEnd) return TdVmcallOutcome.Resume;
        if (Emulation.X86.Irqchip.ApicEvents.HasEvents(vcpu))
        {
            a.R10 = TDVMCALL_STATUS_RETRY;
            a.R11 = _mapGpaNext;
            return TdVmcallOutcome.Resume;
        }
        MapGpaChunk(run);
        return TdVmcallOutcome.ExitToUser;
    }

    /// <summary>
    /// tdx_report_fatal_error: KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_TDX_FATAL, 16 words in VCPU_REGS order — RAX is
    /// TDH.VP.ENTER's return (the TDCALL exit: EXIT_REASON_TDCALL, 77), RCX, RDX, RBX, then 0 for RSP and RBP, RSI, RDI,
    /// R8..R15. No completion: KVM_RUN again re-enters the guest after the call.
    /// </summary>
    private TdVmcallOutcome ReportFatalError(KvmRunPage run)
    {
        const ulong ExitReasonTdcall = 77;
        var a = Args;
        run.SetSystemEvent(KvmConstants.KVM_SYSTEM_EVENT_TDX_FATAL,
            [ExitReasonTdcall, a.Rcx, a.Rdx, a.Rbx, 0, 0, a.Rsi, a.Rdi, a.R8, a.R9, a.R10, a.R11, a.R12, a.R13, a.R14, a.R15]);
        return TdVmcallOutcome.ExitToUser;
    }

    /// <summary>
    /// tdx_get_td_vm_call_info: leaf (R12) 0 — R11..R14 = 0, SUCCESS; leaf 1 — KVM_EXIT_TDX with ret SUCCESS and
    /// r11..r14 0 for userspace to fill, copied back with ret into R10 (tdx_complete_get_td_vm_call_info); any other
    /// leaf INVALID_OPERAND.
    /// </summary>
    private TdVmcallOutcome GetTdVmCallInfo(KvmRunPage run)
    {
        var a = Args;
        switch (a.R12)
        {
            case 0:
                a.R11 = a.R12 = a.R13 = a.R14 = 0;
                a.R10 = TDVMCALL_STATUS_SUCCESS;
                return TdVmcallOutcome.Resume;
            case 1:
                run.SetTdxExit(TDVMCALL_GET_TD_VM_CALL_INFO, TDVMCALL_STATUS_SUCCESS, [a.R12, 0, 0, 0, 0]);
                _complete = r =>
                {
                    Args.R10 = r.TdxRet;
                    Args.R11 = r.TdxData(1);
                    Args.R12 = r.TdxData(2);
                    Args.R13 = r.TdxData(3);
                    Args.R14 = r.TdxData(4);
                    return TdVmcallOutcome.Resume;
                };
                return TdVmcallOutcome.ExitToUser;
            default:
                a.R10 = TDVMCALL_STATUS_INVALID_OPERAND;
                return TdVmcallOutcome.Resume;
        }
    }

    /// <summary>
    /// tdx_get_quote: the buffer (R12) must be shared, else INVALID_OPERAND; KVM_EXIT_TDX with ret
    /// SUBFUNC_UNSUPPORTED, the GPA without the shared bit and the size (R13); tdx_complete_simple puts ret in R10.
    /// </summary>
    private TdVmcallOutcome GetQuote(KvmRunPage run)
    {
        var a = Args;
        if (IsPrivate(a.R12))
        {
            a.R10 = TDVMCALL_STATUS_INVALID_OPERAND;
            return TdVmcallOutcome.Resume;
        }
        run.SetTdxExit(TDVMCALL_GET_QUOTE, TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED, [a.R12 & ~CocoState.Tdx(vcpu.Kvm).SharedGpaBit, a.R13]);
        _complete = CompleteSimple;
        return TdVmcallOutcome.ExitToUser;
    }

    /// <summary>
    /// tdx_setup_event_notify_interrupt: a vector (R12) outside 32–255 is INVALID_OPERAND; else KVM_EXIT_TDX with ret
    /// SUBFUNC_UNSUPPORTED and the vector, completed by tdx_complete_simple.
    /// </summary>
    private TdVmcallOutcome SetupEventNotifyInterrupt(KvmRunPage run)
    {
        var a = Args;
        if (a.R12 < 32 || a.R12 > 255)
        {
            a.R10 = TDVMCALL_STATUS_INVALID_OPERAND;
            return TdVmcallOutcome.Resume;
        }
        run.SetTdxExit(TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT, TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED, [a.R12]);
        _complete = CompleteSimple;
        return TdVmcallOutcome.ExitToUser;
    }

    /// <summary>tdx_complete_simple: "tdvmcall_set_return_code(vcpu, vcpu-&gt;run-&gt;tdx.unknown.ret)".</summary>
    private TdVmcallOutcome CompleteSimple(KvmRunPage run)
    {
        Args.R10 = run.TdxRet;
        return TdVmcallOutcome.Resume;
    }

    /// <summary>vt_is_tdx_private_gpa: the shared bit (kvm_gfn_direct_bits) is clear.</summary>
    private bool IsPrivate(ulong gpa) => (gpa & CocoState.Tdx(vcpu.Kvm).SharedGpaBit) == 0;

    /// <summary>kvm_vcpu_is_legal_gpa: no bit in vcpu-&gt;arch.reserved_gpa_bits.</summary>
    private bool LegalGpa(ulong gpa) => (gpa & SregsRules.ReservedGpaBits(vcpu.Cpu, vcpu.Kvm)) == 0;

    private static ulong Little(ReadOnlySpan<byte> bytes)
    {
        ulong v = 0;
        for (int b = 0; b < bytes.Length; b++) v |= (ulong)bytes[b] << (8 * b);
        return v;
    }
}
