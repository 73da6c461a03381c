// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The other instruction intercepts of a protected SEV-ES/SNP vCPU and their GHCB events (Linux 6.18).
/// <para>
/// Which instructions raise #VC follows the intercepts KVM sets: svm.c init_vmcb sets INTERCEPT_RDPMC, _INVD, _WBINVD
/// and, unless KVM_X86_DISABLE_EXITS_MWAIT (not modelled), _MONITOR/_MWAIT; svm_recalc_instruction_intercepts sets
/// INTERCEPT_RDTSCP only when the guest CPUID lacks RDTSCP; sev_es_init_vmcb clears every DR intercept
/// ("vmcb-&gt;control.intercepts[INTERCEPT_DR] = 0") and sets DR7_READ/DR7_WRITE again unless the VM has DebugSwap
/// (never here: KVM_X86_SEV_VMSA_FEATURES is 0). KVM never intercepts RDTSC (no INTERCEPT_RDTSC outside nested), so
/// RDTSC, RDTSCP with the CPUID bit, and MOV to/from DR0–DR6 run as they do without SEV-ES (no #VC). The CPU's own
/// checks (CPL, CR4.PCE, CR4.TSD) come first (AMD APM Vol. 2 15.9 "instruction intercepts are checked after simple
/// exceptions"); the #VC error code is the SVM exit code, as arch/x86/coco/sev/vc-handle.c vc_handle_exitcode expects.
/// </para>
/// <para>
/// The VMGEXIT events (sev_es_validate_vmgexit checked their valid bits, X86Emulator.Ghcb.cs) go to
/// svm_invoke_exit_handler: SVM_EXIT_READ_DR7/WRITE_DR7 → dr_interception, which for SEV-ES does nothing ("KVM cannot
/// change DR7 (always swapped as type 'A') so return early"); INVD → kvm_emulate_invd and WBINVD →
/// kvm_emulate_wbinvd: a NOP for the guest; RDPMC → kvm_emulate_rdpmc, #GP(0) without a vPMU; RDTSCP →
/// kvm_handle_invalid_op, #UD; MONITOR/MWAIT → kvm_emulate_monitor_mwait, a NOP or #UD; RDTSC has no
/// svm_exit_handlers entry: KVM_EXIT_INTERNAL_ERROR (KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON). The registers go back
/// through the GHCB as synced (sev_es_sync_to_ghcb): none of these handlers writes one on the way KVM answers here.
/// An exception KVM queues is injected at the next entry, i.e. delivered with RIP after the VMGEXIT.
/// </para>
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>SVM_EXIT_* of the intercepts above (arch/x86/include/uapi/asm/svm.h), as the #VC error code.</summary>
    private const int VcReadDr7 = 0x27, VcWriteDr7 = 0x37, VcRdpmc = 0x6f, VcInvd = 0x76, VcRdtscp = 0x87, VcWbinvd = 0x89,
        VcMonitor = 0x8a, VcMwait = 0x8b;

    /// <summary>CR4.PCE (RDPMC at CPL &gt; 0).</summary>
    private const ulong Cr4PceBit = 1UL << 8;

    /// <summary>MSR_IA32_MISC_ENABLE_MWAIT (bit 18, MSR_IA32_MISC_ENABLE_MWAIT_BIT).</summary>
    private const ulong MiscEnableMwait = 1UL << 18;

    /// <summary>An exception a GHCB event's handler queued (kvm_queue_exception), injected as the guest resumes.</summary>
    private (int Vector, int? ErrorCode)? _ghcbQueuedException;

    /// <summary>
    /// #VC for RDPMC, INVD, WBINVD/WBNOINVD, MONITOR(X), MWAIT(X), RDTSCP without the CPUID bit and MOV to/from DR7 in a
    /// protected SEV-ES/SNP vCPU, after the CPU's own checks; nothing for any other instruction or vCPU.
    /// </summary>
    private void SevEsInterceptedInstruction(in Instruction i)
    {
        int code;
        switch (i.Mnemonic)
        {
            case Mnemonic.Invd:
            case Mnemonic.Wbinvd:
            case Mnemonic.Wbnoinvd: // AMD APM Vol. 3 WBNOINVD: checked against the WBINVD intercept
                if (!SevEsStateProtected) return;
                RequireCpl0(); // SDM/APM INVD, WBINVD: #GP(0) at CPL > 0
                code = i.Mnemonic == Mnemonic.Invd ? VcInvd : VcWbinvd;
                break;
            case Mnemonic.Rdpmc:
                if (!SevEsStateProtected) return;
                // APM Vol. 3 RDPMC: "#GP: CPL was not 0 and CR4.PCE = 0".
                if (_cpu.Cpl != 0 && (_cpu.Sregs.cr4 & Cr4PceBit) == 0) throw new GuestFault(GP_VECTOR, 0);
                code = VcRdpmc;
                break;
            case Mnemonic.Monitor:
            case Mnemonic.Mwait:
                if (!SevEsStateProtected) return;
                // APM Vol. 3 MONITOR/MWAIT: #UD at CPL > 0 (HWCR.MonMwaitUserEn is 0 for a KVM guest).
                if (_cpu.Cpl != 0) throw new GuestFault(UD_VECTOR);
                code = i.Mnemonic == Mnemonic.Monitor ? VcMonitor : VcMwait;
                break;
            case Mnemonic.Monitorx:
            case Mnemonic.Mwaitx:
                // APM Vol. 3 MONITORX/MWAITX: any CPL; the MONITOR/MWAIT intercepts cover them.
                if (!SevEsStateProtected) return;
                code = i.Mnemonic == Mnemonic.Monitorx ? VcMonitor : VcMwait;
                break;
            case Mnemonic.Rdtscp:
                // svm_recalc_instruction_intercepts: INTERCEPT_RDTSCP iff !guest_cpu_cap_has(vcpu, X86_FEATURE_RDTSCP).
                if (_cpu.Cpuid.HasRdtscp || !SevEsStateProtected) return;
                RequireTscReadable(); // CR4.TSD at CPL > 0: #GP(0) (X86Emulator.Privilege.cs)
                code = VcRdtscp;
                break;
            case Mnemonic.Mov when IsDebugRegisterMove(i):
            {
                bool write = i.Code is Code.Mov_dr_r64 or Code.Mov_dr_r32;
                if ((write ? i.Op0Register : i.GetOpRegister(1)) != Register.DR7 || !SevEsStateProtected) return;
                RequireCpl0(); // MOV DRn at CPL > 0: #GP(0)
                // The intercept comes before the bits-63:32 #GP: vc_handle_dr7_write checks them itself.
                code = write ? VcWriteDr7 : VcReadDr7;
                break;
            }
            default:
                return;
        }
        throw new GuestFault(VcVector, code);
    }

    /// <summary>
    /// svm_invoke_exit_handler for the instruction events of the GHCB page protocol. Returns true when KVM_RUN returns
    /// with the GHCB still mapped (RDTSC's unexpected exit reason).
    /// </summary>
    private bool GhcbInstructionEvent(ulong exitCode)
    {
        switch (exitCode)
        {
            case SvmExitReadDr7:
            case SvmExitWriteDr7:
                // svm.c dr_interception: "if (sev_es_guest(vcpu->kvm)) return 1;" — DR7 stays as it is.
                return false;
            case SvmExitInvd:
            case SvmExitWbinvd:
                // x86.c kvm_emulate_invd: "Treat an INVD instruction as a NOP"; kvm_emulate_wbinvd flushes host caches
                // (kvm_emulate_wbinvd_noskip, nothing the guest sees) and skips.
                return false;
            case SvmExitRdpmc:
                // x86.c kvm_emulate_rdpmc: "if (kvm_pmu_rdpmc(vcpu, ecx, &data)) { kvm_inject_gp(vcpu, 0); return 1; }";
                // pmu.c kvm_pmu_rdpmc: "if (!pmu->version) return 1;" — no vPMU here (enable_pmu is N on this host,
                // and the emulator models none).
                _ghcbQueuedException = (GP_VECTOR, 0);
                return false;
            case SvmExitRdtscp:
                // svm_exit_handlers[SVM_EXIT_RDTSCP] = kvm_handle_invalid_op: kvm_queue_exception(vcpu, UD_VECTOR).
                _ghcbQueuedException = (UD_VECTOR, null);
                return false;
            case SvmExitMonitor:
            case SvmExitMwait:
                // x86.c kvm_emulate_monitor_mwait: a NOP (kvm_emulate_as_nop) or kvm_handle_invalid_op.
                if (!MonitorMwaitEnabled()) _ghcbQueuedException = (UD_VECTOR, null);
                return false;
            case SvmExitRdtsc:
                // svm_invoke_exit_handler: no svm_exit_handlers[SVM_EXIT_RDTSC] → kvm_prepare_unexpected_reason_exit;
                // return 0 (the GHCB stays mapped until the next entry).
                _run.SetUnexpectedExitReason(exitCode, (ulong)Thread.GetCurrentProcessorId());
                return ExitWithGhcbMapped(VmgexitCompletion.GhcbUnmap);
            default:
                throw new EmulationFailure($"GHCB event 0x{exitCode:X} is not modelled", haveInstructionBytes: true);
        }
    }

    /// <summary>
    /// kvm_emulate_monitor_mwait (x86.c, since 6.14): "if (kvm_check_has_quirk(…, KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS))
    /// goto emulate_as_nop; if (kvm_check_has_quirk(…, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT)) enabled =
    /// guest_cpu_cap_has(vcpu, X86_FEATURE_MWAIT); else enabled = vcpu-&gt;arch.ia32_misc_enable_msr &amp;
    /// MSR_IA32_MISC_ENABLE_MWAIT;".
    /// </summary>
    private bool MonitorMwaitEnabled()
    {
        if (Quirks.Has(_kvm, KvmX86Quirks.KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS)) return true;
        if (!Quirks.Has(_kvm, KvmX86Quirks.KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT)) return (_cpu.Msrs.MiscEnable & MiscEnableMwait) != 0;
        foreach (ref readonly var e in _cpu.Cpuid.Entries)
            if (e.function == 1) return (e.ecx & (1u << 3)) != 0; // CPUID.1:ECX.MONITOR[3]
        return false;
    }

    /// <summary>
    /// After a VMGEXIT (RIP = <paramref name="next"/>, RFLAGS = <paramref name="f"/>): an exception a GHCB handler queued
    /// is injected at the next entry (kvm_check_and_inject_events → svm_inject_exception's EVENTINJ), so the guest takes
    /// it with RIP after the VMGEXIT. KVM cannot set RF in an SEV-ES guest's RFLAGS (svm_set_rflags writes the VMCB,
    /// not the VMSA): delivered as a queued event, without RF. Afterwards the queue reads as neither pending nor
    /// injected, vector and error code kept (as <see cref="DeliverQueuedEvents"/> leaves it). Returns the next RIP.
    /// </summary>
    private ulong InjectGhcbException(ulong next, ref ulong f)
    {
        if (_ghcbQueuedException is not var (vector, errorCode)) return next;
        _ghcbQueuedException = null;
        _cpu.Rip = next;
        _cpu.Rflags = f;
        var s = _cpu.State;
        (s.ExceptionPending, s.ExceptionInjected, s.ExceptionVector) = (false, false, (byte)vector);
        (s.ExceptionHasErrorCode, s.ExceptionErrorCode) = (errorCode is not null, (uint)(errorCode ?? 0));
        (s.ExceptionHasPayload, s.ExceptionPayload) = (false, 0);
        var outcome = DeliverException(new GuestFault(vector, errorCode ?? 0) { Queued = true, ErrorCodeValid = errorCode is not null });
        if (outcome.Exit) _exit = outcome;
        f = _cpu.Rflags;
        return _cpu.Rip;
    }
}
