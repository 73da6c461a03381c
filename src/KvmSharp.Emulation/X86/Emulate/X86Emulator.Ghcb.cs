// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The GHCB page protocol of a VMGEXIT (arch/x86/kvm/svm/sev.c sev_handle_vmgexit). KVM maps the page the GHCB MSR
/// names (kvm_vcpu_map: the memslot's userspace memory, the shared view), copies the guest-supplied registers
/// (sev_es_sync_from_ghcb: RAX, RBX, RCX, RDX, RSI, CPL, XCR0 when their valid bit is set, else 0; sw_exit_code,
/// sw_exit_info_1/2 always; sw_scratch when valid) and clears the valid bitmap, checks them (sev_es_validate_vmgexit:
/// a malformed request gets sw_exit_info_1 = 2 and a reason in sw_exit_info_2, and the guest resumes), runs the
/// event, and when the vCPU enters again writes RAX, RBX, RCX and RDX back (sev_es_unmap_ghcb → sev_es_sync_to_ghcb).
/// Layout: struct ghcb / struct ghcb_save_area (arch/x86/include/asm/svm.h); a field's valid bit is its offset / 8
/// (GHCB_BITMAP_IDX). Modelled events: IOIO (the string form through the scratch area: X86Emulator.GhcbStringIo.cs),
/// CPUID, MSR, VMMCALL, NMI_COMPLETE, HV_FEATURES, TERM_REQUEST, UNSUPPORTED_EVENT, MMIO read/write
/// (X86Emulator.GhcbMmio.cs), SNP page-state change (SVM_VMGEXIT_PSC), SNP AP creation (X86Emulator.GhcbApCreation.cs),
/// the AP HLT loop (X86Emulator.GhcbApResetHold.cs), the AP jump table, and DR7, RDTSC(P), RDPMC, INVD, WBINVD,
/// MONITOR, MWAIT (X86Emulator.GhcbEvents.cs), SNP guest requests and extended guest requests
/// (X86Emulator.GhcbGuestRequest.cs).
/// </summary>
internal sealed partial class X86Emulator
{
    // struct ghcb_save_area offsets (arch/x86/include/asm/svm.h; the selftests' GHCB_SAVE_*_OFFSET agree).
    private const int GhcbCpl = 0xcb, GhcbRax = 0x1f8, GhcbRcx = 0x308, GhcbRdx = 0x310, GhcbRbx = 0x318, GhcbRsi = 0x330;
    private const int GhcbSwExitCode = 0x390, GhcbSwExitInfo1 = 0x398, GhcbSwExitInfo2 = 0x3a0, GhcbSwScratch = 0x3a8;
    private const int GhcbXcr0 = 0x3e8, GhcbValidBitmap = 0x3f0, GhcbSharedBuffer = 0x800, GhcbReserved0xff0 = 0xff0;
    private const int GhcbUsage = 0xffc;

    /// <summary>GHCB_HV_RESP_NO_ACTION / _ISSUE_EXCEPTION / _MALFORMED_INPUT (sev-common.h): sw_exit_info_1 responses.</summary>
    private const ulong GhcbHvRespNoAction = 0, GhcbHvRespIssueException = 1, GhcbHvRespMalformedInput = 2;

    /// <summary>GHCB_ERR_* (sev-common.h): sw_exit_info_2 with GHCB_HV_RESP_MALFORMED_INPUT.</summary>
    private const ulong GhcbErrInvalidUsage = 2, GhcbErrInvalidScratchArea = 3, GhcbErrMissingInput = 4, GhcbErrInvalidEvent = 6;

    // SVM_VMGEXIT_* (arch/x86/include/uapi/asm/svm.h) and the SVM exits sev_es_validate_vmgexit accepts.
    private const ulong SvmVmgexitMmioRead = 0x8000_0001, SvmVmgexitMmioWrite = 0x8000_0002, SvmVmgexitNmiComplete = 0x8000_0003;
    private const ulong SvmVmgexitApHltLoop = 0x8000_0004, SvmVmgexitApJumpTable = 0x8000_0005, SvmVmgexitPsc = 0x8000_0010;
    private const ulong SvmVmgexitGuestRequest = 0x8000_0011, SvmVmgexitExtGuestRequest = 0x8000_0012, SvmVmgexitApCreation = 0x8000_0013;
    private const ulong SvmVmgexitHvFeatures = 0x8000_fffd, SvmVmgexitTermRequest = 0x8000_fffe, SvmVmgexitUnsupportedEvent = 0x8000_ffff;
    private const ulong SvmExitReadDr7 = 0x27, SvmExitWriteDr7 = 0x37, SvmExitRdtsc = 0x6e, SvmExitRdpmc = 0x6f, SvmExitInvd = 0x76;
    private const ulong SvmExitRdtscp = 0x87, SvmExitWbinvd = 0x89, SvmExitMonitor = 0x8a, SvmExitMwait = 0x8b;

    /// <summary>SVM_IOIO_TYPE_MASK (IN), SVM_IOIO_STR_MASK; SVM_IOIO_SIZE_MASK at SVM_IOIO_SIZE_SHIFT 4.</summary>
    private const ulong SvmIoioTypeMask = 1, SvmIoioStrMask = 1 << 2;

    /// <summary>SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_EXEPT | GP_VECTOR: svm_vmgexit_inject_exception(svm, X86_TRAP_GP).</summary>
    private const ulong GhcbInjectGp = (1UL << 31) | (3UL << 8) | 13;

    /// <summary>The mapped GHCB's GPA (svm->sev_es.ghcb != NULL), or null.</summary>
    private ulong? _ghcbGpa;

    /// <summary>KVM's vcpu->arch.regs while the GHCB is mapped (X86Cpu register indices).</summary>
    private readonly ulong[] _ghcbRegs = new ulong[16];

    private ulong _ghcbValid0, _ghcbValid1, _ghcbScratch;
    private int _ghcbPioSize;

    private bool GhcbValid(int offset)
    {
        int bit = offset / 8;
        return ((bit < 64 ? _ghcbValid0 >> bit : _ghcbValid1 >> (bit - 64)) & 1) != 0;
    }

    /// <summary>sev_handle_vmgexit from kvm_vcpu_map on, for the GHCB at <paramref name="gpa"/>.</summary>
    private void GhcbProtocol(ulong gpa)
    {
        // kvm_vcpu_map failed: "Without a GHCB, just return right back to the guest".
        if (!GhcbRead(gpa, 0, 8, out _)) return;
        _ghcbGpa = gpa;
        SyncFromGhcb(gpa, out ulong exitCode, out ulong info1, out ulong info2);
        // "SEV-SNP guest requires that the GHCB GPA must be registered": vcpu_unimpl, return -EINVAL (KVM_RUN fails).
        if (CocoState.Sev(_kvm).IsSnpGuest && gpa != _ghcbRegisteredGpa)
        {
            _vmgexitCompletion = VmgexitCompletion.GhcbUnmap;
            _exit = new StepOutcome(true, Vfs.Err.EINVAL);
            return;
        }
        if (!ValidateVmgexit(exitCode, info1, info2))
        {
            UnmapGhcb(); // "Resume the guest to "return" the error code."
            return;
        }
        SetReturnCode(GhcbHvRespNoAction, 0); // svm_vmgexit_success(svm, 0)
        if (!RunGhcbEvent(exitCode, info1, info2)) UnmapGhcb();
    }

    /// <summary>
    /// sev_es_sync_from_ghcb: "memset(vcpu-&gt;arch.regs, 0, …)", the valid registers, the exit information, and
    /// "memset(ghcb-&gt;save.valid_bitmap, 0, …)". XCR0 (vcpu-&gt;arch.xcr0) is not taken: the interpreter keeps the
    /// guest's own.
    /// </summary>
    private void SyncFromGhcb(ulong gpa, out ulong exitCode, out ulong info1, out ulong info2)
    {
        Array.Clear(_ghcbRegs);
        GhcbRead(gpa, GhcbValidBitmap, 8, out _ghcbValid0);
        GhcbRead(gpa, GhcbValidBitmap + 8, 8, out _ghcbValid1);
        if (GhcbValid(GhcbRax)) GhcbRead(gpa, GhcbRax, 8, out _ghcbRegs[X86Cpu.RAX]);
        if (GhcbValid(GhcbRbx)) GhcbRead(gpa, GhcbRbx, 8, out _ghcbRegs[X86Cpu.RBX]);
        if (GhcbValid(GhcbRcx)) GhcbRead(gpa, GhcbRcx, 8, out _ghcbRegs[X86Cpu.RCX]);
        if (GhcbValid(GhcbRdx)) GhcbRead(gpa, GhcbRdx, 8, out _ghcbRegs[X86Cpu.RDX]);
        if (GhcbValid(GhcbRsi)) GhcbRead(gpa, GhcbRsi, 8, out _ghcbRegs[X86Cpu.RSI]);
        GhcbRead(gpa, GhcbSwExitCode, 8, out exitCode);
        GhcbRead(gpa, GhcbSwExitInfo1, 8, out info1);
        GhcbRead(gpa, GhcbSwExitInfo2, 8, out info2);
        _ghcbScratch = 0;
        if (GhcbValid(GhcbSwScratch)) GhcbRead(gpa, GhcbSwScratch, 8, out _ghcbScratch);
        GhcbWrite(gpa, GhcbValidBitmap, 8, 0);
        GhcbWrite(gpa, GhcbValidBitmap + 8, 8, 0);
    }

    /// <summary>The CPL the GHCB supplied (svm-&gt;vmcb-&gt;save.cpl = kvm_ghcb_get_cpl_if_valid), 0 when not valid.</summary>
    private int GhcbCplValue()
    {
        if (!GhcbValid(GhcbCpl) || _ghcbGpa is not ulong gpa) return 0;
        GhcbRead(gpa, GhcbCpl, 1, out ulong cpl);
        return (int)cpl;
    }

    /// <summary>sev_es_validate_vmgexit; false when it answered the guest with malformed input.</summary>
    private bool ValidateVmgexit(ulong exitCode, ulong info1, ulong info2)
    {
        GhcbRead(_ghcbGpa!.Value, GhcbUsage, 4, out ulong usage);
        // "Only GHCB Usage code 0 is supported".
        if (usage != 0) return BadInput(GhcbErrInvalidUsage);
        if (!GhcbValid(GhcbSwExitCode) || !GhcbValid(GhcbSwExitInfo1) || !GhcbValid(GhcbSwExitInfo2))
            return BadInput(GhcbErrMissingInput);
        bool snp = CocoState.Sev(_kvm).IsSnpGuest;
        bool ok = exitCode switch
        {
            SvmExitReadDr7 or SvmExitRdtsc or SvmExitInvd or SvmExitRdtscp or SvmExitWbinvd => true,
            SvmExitWriteDr7 => GhcbValid(GhcbRax),
            SvmExitRdpmc => GhcbValid(GhcbRcx),
            SvmExitCpuid => GhcbValid(GhcbRax) && GhcbValid(GhcbRcx) && (_ghcbRegs[X86Cpu.RAX] != 0xd || GhcbValid(GhcbXcr0)),
            SvmExitIoio => (info1 & SvmIoioStrMask) != 0 ? GhcbValid(GhcbSwScratch)
                : (info1 & SvmIoioTypeMask) != 0 || GhcbValid(GhcbRax),
            SvmExitMsr => GhcbValid(GhcbRcx) && (info1 == 0 || (GhcbValid(GhcbRax) && GhcbValid(GhcbRdx))),
            SvmExitVmmcall => GhcbValid(GhcbRax) && GhcbValid(GhcbCpl),
            SvmExitMonitor => GhcbValid(GhcbRax) && GhcbValid(GhcbRcx) && GhcbValid(GhcbRdx),
            SvmExitMwait => GhcbValid(GhcbRax) && GhcbValid(GhcbRcx),
            SvmVmgexitMmioRead or SvmVmgexitMmioWrite => GhcbValid(GhcbSwScratch),
            // "if (lower_32_bits(control->exit_info_1) != SVM_VMGEXIT_AP_DESTROY) if (!kvm_ghcb_rax_is_valid(svm))".
            SvmVmgexitApCreation => snp && ((uint)info1 == SvmVmgexitApDestroy || GhcbValid(GhcbRax)),
            SvmVmgexitNmiComplete or SvmVmgexitApHltLoop or SvmVmgexitApJumpTable or SvmVmgexitUnsupportedEvent
                or SvmVmgexitHvFeatures or SvmVmgexitTermRequest => true,
            SvmVmgexitPsc => snp && GhcbValid(GhcbSwScratch),
            // "!sev_snp_guest(vcpu->kvm) || !PAGE_ALIGNED(control->exit_info_1) || !PAGE_ALIGNED(control->exit_info_2) ||
            // control->exit_info_1 == control->exit_info_2" → GHCB_ERR_MISSING_INPUT.
            SvmVmgexitGuestRequest or SvmVmgexitExtGuestRequest => snp && (info1 & 0xfff) == 0 && (info2 & 0xfff) == 0 && info1 != info2,
            _ => false,
        };
        if (ok) return true;
        bool known = exitCode is SvmExitReadDr7 or SvmExitWriteDr7 or SvmExitRdtsc or SvmExitRdpmc or SvmExitCpuid or SvmExitInvd
            or SvmExitIoio or SvmExitMsr or SvmExitVmmcall or SvmExitRdtscp or SvmExitWbinvd or SvmExitMonitor or SvmExitMwait
            or SvmVmgexitMmioRead or SvmVmgexitMmioWrite or SvmVmgexitApCreation or SvmVmgexitPsc or SvmVmgexitGuestRequest
            or SvmVmgexitExtGuestRequest;
        // "default: reason = GHCB_ERR_INVALID_EVENT"; a known event with missing input keeps GHCB_ERR_MISSING_INPUT.
        return BadInput(known ? GhcbErrMissingInput : GhcbErrInvalidEvent);
    }

    /// <summary>svm_vmgexit_bad_input(svm, reason); false.</summary>
    private bool BadInput(ulong reason)
    {
        SetReturnCode(GhcbHvRespMalformedInput, reason);
        return false;
    }

    /// <summary>svm_vmgexit_set_return_code: ghcb_set_sw_exit_info_1/2 (each also sets its valid bit).</summary>
    private void SetReturnCode(ulong response, ulong data)
    {
        ulong gpa = _ghcbGpa!.Value;
        GhcbWrite(gpa, GhcbSwExitInfo1, 8, response);
        GhcbWrite(gpa, GhcbSwExitInfo2, 8, data);
        SetGhcbValid(gpa, GhcbSwExitInfo1);
        SetGhcbValid(gpa, GhcbSwExitInfo2);
    }

    /// <summary>
    /// The event's handler (sev_handle_vmgexit's switch and svm_invoke_exit_handler). Returns true when the GHCB stays
    /// mapped for a completion on the next KVM_RUN (the exit to userspace is set up).
    /// </summary>
    private bool RunGhcbEvent(ulong exitCode, ulong info1, ulong info2)
    {
        switch (exitCode)
        {
            case SvmExitIoio:
                // io_interception: "if (string) { if (sev_es_guest(vcpu->kvm)) return sev_es_string_io(svm, size, port, in); … }"
                return (info1 & SvmIoioStrMask) != 0 ? GhcbStringIo(info1, info2) : GhcbIoio(info1); // X86Emulator.GhcbStringIo.cs
            case SvmExitCpuid:
            {
                // cpuid_interception → kvm_emulate_cpuid over KVM's copy of RAX/RCX; results to RAX..RDX.
                var (eax, ebx, ecx, edx) = _cpu.Cpuid.Emulate((uint)_ghcbRegs[X86Cpu.RAX], (uint)_ghcbRegs[X86Cpu.RCX], _cpu);
                _ghcbRegs[X86Cpu.RAX] = eax;
                _ghcbRegs[X86Cpu.RBX] = ebx;
                _ghcbRegs[X86Cpu.RCX] = ecx;
                _ghcbRegs[X86Cpu.RDX] = edx;
                return false;
            }
            case SvmExitMsr:
                GhcbMsrAccess(write: info1 != 0);
                return false;
            case SvmExitVmmcall:
                return GhcbHypercall();
            case SvmVmgexitNmiComplete:
                // "svm->nmi_masked = false; kvm_make_request(KVM_REQ_EVENT, vcpu)".
                _cpu.State.NmiMasked = false;
                return false;
            case SvmVmgexitHvFeatures:
                SetReturnCode(GhcbHvRespNoAction, GhcbHvFtSupported);
                return false;
            case SvmVmgexitTermRequest:
                // KVM_EXIT_SYSTEM_EVENT(KVM_SYSTEM_EVENT_SEV_TERM), data[0] = control->ghcb_gpa.
                _run.SetSystemEvent(KvmConstants.KVM_SYSTEM_EVENT_SEV_TERM, [_ghcbGpa!.Value]);
                return ExitWithGhcbMapped(VmgexitCompletion.GhcbUnmap);
            case SvmVmgexitUnsupportedEvent:
                // vcpu_unimpl(…); ret = -EINVAL: KVM_RUN fails.
                _vmgexitCompletion = VmgexitCompletion.GhcbUnmap;
                _exit = new StepOutcome(true, Vfs.Err.EINVAL);
                return true;
            case SvmVmgexitPsc:
                return BeginGhcbPsc(info2); // X86Emulator.GhcbPsc.cs
            case SvmVmgexitMmioRead:
            case SvmVmgexitMmioWrite:
                return BeginGhcbMmio(exitCode == SvmVmgexitMmioWrite, info1, info2); // X86Emulator.GhcbMmio.cs
            case SvmVmgexitApCreation:
                return GhcbApCreation(info1, info2); // X86Emulator.GhcbApCreation.cs
            case SvmVmgexitApHltLoop:
                return GhcbApHltLoop(); // X86Emulator.GhcbApResetHold.cs
            case SvmVmgexitGuestRequest:
                return GhcbGuestRequest(info1, info2); // X86Emulator.GhcbGuestRequest.cs
            case SvmVmgexitExtGuestRequest:
                return GhcbExtGuestRequest(info1, info2);
            case SvmVmgexitApJumpTable:
                GhcbApJumpTable(info1, info2);
                return false;
            default:
                return GhcbInstructionEvent(exitCode); // DR7, RDTSC(P), RDPMC, INVD, WBINVD, MONITOR, MWAIT (X86Emulator.GhcbEvents.cs)
        }
    }

    /// <summary>KVM_RUN returns 0 with the exit set; the completion runs on the next KVM_RUN.</summary>
    private bool ExitWithGhcbMapped(VmgexitCompletion completion)
    {
        _vmgexitCompletion = completion;
        _exit = StepOutcome.ExitToUser;
        return true;
    }

    /// <summary>
    /// io_interception → kvm_fast_pio (x86.c) for a non-string IOIO: sw_exit_info_1 as SVM encodes it (bit 0 IN,
    /// bits 6:4 the size, 31:16 the port). OUT: RAX's low bytes to an in-kernel device or KVM_EXIT_IO. IN: from a
    /// device, or KVM_EXIT_IO and complete_fast_pio_in on the next KVM_RUN.
    /// </summary>
    private bool GhcbIoio(ulong info1)
    {
        bool input = (info1 & SvmIoioTypeMask) != 0;
        int size = (int)((info1 >> 4) & 7);
        ushort port = (ushort)(info1 >> 16);
        // The size bits are the guest's: only the sizes an IN/OUT has (1, 2, 4) are offered to in-kernel devices; any
        // other value (0, 3, 5-7; KVM does not check) goes to userspace as it is.
        bool deviceSize = size is 1 or 2 or 4;
        if (!input)
        {
            ulong v = _ghcbRegs[X86Cpu.RAX];
            if (deviceSize && _kvm.IoBus.Write(KvmMain.KvmBus.Pio, _vcpu, port, size, v)) return false;
            var data = _run.SetIoExit(output: true, size, port);
            for (int b = 0; b < size; b++) data[b] = (byte)(v >> (8 * b));
            return ExitWithGhcbMapped(VmgexitCompletion.GhcbUnmap);
        }
        Span<byte> fromDevice = stackalloc byte[size];
        if (deviceSize && _kvm.IoBus.Read(KvmMain.KvmBus.Pio, _vcpu, port, fromDevice))
        {
            CompletePioIn(fromDevice);
            return false;
        }
        _ghcbPioSize = size;
        _run.SetIoExit(output: false, size, port).Clear();
        return ExitWithGhcbMapped(VmgexitCompletion.GhcbPioIn);
    }

    /// <summary>
    /// complete_fast_pio_in: "unsigned long val = (vcpu-&gt;arch.pio.size &lt; 4) ? kvm_rax_read(vcpu) : 0;
    /// complete_emulator_pio_in(vcpu, &amp;val); kvm_rax_write(vcpu, val);" — the bytes land over RAX's low bytes.
    /// </summary>
    private void CompletePioIn(ReadOnlySpan<byte> data)
    {
        ulong v = data.Length < 4 ? _ghcbRegs[X86Cpu.RAX] : 0;
        for (int b = 0; b < data.Length && b < 8; b++) v = (v & ~(0xffUL << (8 * b))) | ((ulong)data[b] << (8 * b));
        _ghcbRegs[X86Cpu.RAX] = v;
    }

    /// <summary>
    /// msr_interception → kvm_emulate_rdmsr / kvm_emulate_wrmsr over KVM's copy of RCX (and EDX:EAX); a failing access
    /// is svm_complete_emulated_msr's "svm_vmgexit_inject_exception(svm, X86_TRAP_GP)" for an SEV-ES guest.
    /// Userspace MSR exits (KVM_CAP_X86_USER_SPACE_MSR) are not modelled here.
    /// </summary>
    private void GhcbMsrAccess(bool write)
    {
        uint msr = (uint)_ghcbRegs[X86Cpu.RCX];
        long r;
        if (write)
        {
            r = MsrRules.Set(_cpu, msr, (_ghcbRegs[X86Cpu.RDX] << 32) | (uint)_ghcbRegs[X86Cpu.RAX], hostInitiated: false);
        }
        else
        {
            r = MsrRules.Get(_cpu, msr, hostInitiated: false, out ulong data);
            if (r == 0)
            {
                _ghcbRegs[X86Cpu.RAX] = data & 0xffff_ffff;
                _ghcbRegs[X86Cpu.RDX] = data >> 32;
            }
        }
        if (r != 0) SetReturnCode(GhcbHvRespIssueException, GhcbInjectGp);
    }

    /// <summary>
    /// vmmcall_interception → kvm_emulate_hypercall with KVM's copies of RAX, RBX, RCX, RDX, RSI and the GHCB's CPL;
    /// is_64_bit_hypercall is true for protected state. An exit (KVM_HC_MAP_GPA_RANGE) completes with
    /// complete_hypercall_exit: RAX = run-&gt;hypercall.ret.
    /// </summary>
    private bool GhcbHypercall()
    {
        var r = _ghcbRegs;
        if (KvmHypercall.Dispatch(_cpu, _kvm.HypercallExitEnabled, _run, r[X86Cpu.RAX], r[X86Cpu.RBX], r[X86Cpu.RCX],
                r[X86Cpu.RDX], r[X86Cpu.RSI], GhcbCplValue(), op64: true, out ulong ret))
            return ExitWithGhcbMapped(VmgexitCompletion.GhcbHypercall);
        r[X86Cpu.RAX] = ret;
        return false;
    }

    /// <summary>The GHCB completions of <see cref="CompleteVmgexit"/>; then the GHCB is unmapped (written back).</summary>
    private bool CompleteGhcbExit(VmgexitCompletion completion)
    {
        switch (completion)
        {
            case VmgexitCompletion.GhcbPioIn:
                CompletePioIn(_run.IoData(_ghcbPioSize));
                break;
            case VmgexitCompletion.GhcbHypercall:
                _ghcbRegs[X86Cpu.RAX] = _run.HypercallRet;
                break;
            case VmgexitCompletion.GhcbPsc:
                if (CompleteGhcbPsc()) return true; // the next range exits again (X86Emulator.GhcbPsc.cs)
                break;
            case VmgexitCompletion.GhcbMmio:
                if (CompleteGhcbMmio()) return true; // the next piece exits again (X86Emulator.GhcbMmio.cs)
                break;
            case VmgexitCompletion.GhcbStringIo:
                if (CompleteGhcbStringIo()) return true; // the next batch exits again (X86Emulator.GhcbStringIo.cs)
                break;
        }
        UnmapGhcb();
        return false;
    }

    /// <summary>sev_es_unmap_ghcb → sev_es_sync_to_ghcb: ghcb_set_rax/rbx/rcx/rdx (values and valid bits).</summary>
    private void UnmapGhcb()
    {
        if (_ghcbGpa is not ulong gpa) return;
        _ghcbGpa = null;
        GhcbWrite(gpa, GhcbRax, 8, _ghcbRegs[X86Cpu.RAX]);
        GhcbWrite(gpa, GhcbRbx, 8, _ghcbRegs[X86Cpu.RBX]);
        GhcbWrite(gpa, GhcbRcx, 8, _ghcbRegs[X86Cpu.RCX]);
        GhcbWrite(gpa, GhcbRdx, 8, _ghcbRegs[X86Cpu.RDX]);
        SetGhcbValid(gpa, GhcbRax);
        SetGhcbValid(gpa, GhcbRbx);
        SetGhcbValid(gpa, GhcbRcx);
        SetGhcbValid(gpa, GhcbRdx);
    }

    private void SetGhcbValid(ulong gpa, int offset)
    {
        int bit = offset / 8;
        int at = GhcbValidBitmap + bit / 8;
        if (!GhcbRead(gpa, at, 1, out ulong b)) return;
        GhcbWrite(gpa, at, 1, b | (1UL << (bit % 8)));
    }

    private bool GhcbRead(ulong gpa, int offset, int size, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        bool ok = HostGuestAccess(gpa + (ulong)offset, b[..size], write: false);
        value = BinaryPrimitives.ReadUInt64LittleEndian(b);
        return ok;
    }

    private bool GhcbWrite(ulong gpa, int offset, int size, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        return HostGuestAccess(gpa + (ulong)offset, b[..size], write: true);
    }

    /// <summary>
    /// KVM's own access to guest memory (kvm_vcpu_map, kvm_read_guest / kvm_write_guest): through the memslot's
    /// userspace_addr — the shared view whatever the GFN's attributes — and marked dirty on a write
    /// (kvm_vcpu_unmap / mark_page_dirty). False when no memslot (or no host page) backs the GPA.
    /// </summary>
    private bool HostGuestAccess(ulong gpa, Span<byte> data, bool write)
    {
        int shift = EmulatorConfig.PageShift;
        ulong gfn = gpa >> shift;
        KvmMain.KvmMemorySlot? slot;
        lock (_kvm.Kernel.SyncRoot) slot = GuestMemoryPath.GfnToMemslot(_kvm, 0, gfn);
        if (slot is null || slot.UserspaceAddr == 0) return false;
        ulong hva = slot.UserspaceAddr + ((gfn - slot.BaseGfn) << shift) + (gpa & ((1UL << shift) - 1));
        if (_kvm.Kernel.GupRefuses(hva)) return false;
        long rc = write ? HostMemory.WriteProcessMemory(hva, data) : HostMemory.ReadProcessMemory(hva, data);
        if (rc < 0) return false;
        if (write) lock (_kvm.Kernel.SyncRoot) slot.MarkDirty(gfn, _mem.DirtyRing);
        return true;
    }
}
