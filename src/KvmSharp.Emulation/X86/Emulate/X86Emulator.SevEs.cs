// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.Mmu;
using KvmSharp.X86;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// SEV-ES and SNP guests talking to the host (AMD APM Vol. 2, 15.35 "Encrypted State (SEV-ES)"; GHCB specification,
/// AMD pub. 56421, as Linux cites it). Once a vCPU's state is protected (SEV-ES after KVM_SEV_LAUNCH_UPDATE_VMSA, SNP
/// after KVM_SEV_SNP_LAUNCH_FINISH: <see cref="ProtectedState.GuestStateProtected"/>), an intercepted instruction is a
/// "non-automatic exit": the CPU raises #VC (vector 29, error code = the SVM exit code) in the guest instead of
/// exiting, and the guest's #VC handler asks the hypervisor with VMGEXIT (F3 0F 01 D9) — through the GHCB MSR
/// protocol (here) or the GHCB page (X86Emulator.Ghcb.cs) — as arch/x86/kvm/svm/sev.c sev_handle_vmgexit answers.
/// Automatic exits (HLT, interrupts, #NPF on memory) are unchanged; RDTSC is not intercepted by KVM (no #VC).
/// The GHCB MSR (MSR_AMD64_SEV_ES_GHCB, 0xC001_0130) is not intercepted for an SEV-ES guest
/// (sev_es_recalc_msr_intercepts: "Clear intercepts on MSRs that are context switched by hardware"): the guest's
/// RDMSR/WRMSR reach it directly. Its value at vCPU reset is the SEV_INFO response (sev_es_vcpu_reset).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>X86_TRAP_VC (arch/x86/include/asm/trapnr.h).</summary>
    private const int VcVector = 29;

    /// <summary>SVM exit codes (arch/x86/include/uapi/asm/svm.h): SVM_EXIT_CPUID, _IOIO, _MSR, _VMMCALL, _NPF.</summary>
    private const uint SvmExitCpuid = 0x72, SvmExitIoio = 0x7b, SvmExitMsr = 0x7c, SvmExitVmmcall = 0x81, SvmExitNpf = 0x400;

    /// <summary>MSR_AMD64_SEV_ES_GHCB (arch/x86/include/asm/msr-index.h).</summary>
    private const uint MsrAmd64SevEsGhcb = 0xC001_0130;

    // arch/x86/include/asm/sev-common.h: GHCB_MSR_INFO_MASK and the request/response codes.
    private const ulong GhcbMsrInfoMask = 0xfff;
    private const ulong GhcbMsrSevInfoResp = 0x001, GhcbMsrSevInfoReq = 0x002;
    private const ulong GhcbMsrCpuidReq = 0x004, GhcbMsrCpuidResp = 0x005;
    private const ulong GhcbMsrPrefGpaReq = 0x010, GhcbMsrPrefGpaResp = 0x011;
    private const ulong GhcbMsrRegGpaReq = 0x012, GhcbMsrRegGpaResp = 0x013;
    private const ulong GhcbMsrPscReq = 0x014, GhcbMsrPscResp = 0x015;
    private const ulong GhcbMsrHvFtReq = 0x080, GhcbMsrHvFtResp = 0x081;
    private const ulong GhcbMsrTermReq = 0x100;

    /// <summary>GHCB_MSR_PSC_RESP_ERROR: "Set highest bit as a generic error response" (BIT_ULL(63) | GHCB_MSR_PSC_RESP).</summary>
    private const ulong GhcbMsrPscRespError = (1UL << 63) | GhcbMsrPscResp;

    /// <summary>GENMASK_ULL(51, 0): GHCB_MSR_GPA_VALUE_MASK, GHCB_MSR_HV_FT_MASK (both at bit 12).</summary>
    private const ulong GhcbMsr52BitMask = (1UL << 52) - 1;

    /// <summary>GHCB_MSR_PREF_GPA_NONE: no preferred GHCB GPA.</summary>
    private const ulong GhcbMsrPrefGpaNone = 0xf_ffff_ffff_ffff;

    /// <summary>arch/x86/kvm/svm/svm.h GHCB_HV_FT_SUPPORTED = GHCB_HV_FT_SNP | GHCB_HV_FT_SNP_AP_CREATION.</summary>
    private const ulong GhcbHvFtSupported = 0x3;

    /// <summary>arch/x86/kvm/svm/sev.c GHCB_VERSION_MIN.</summary>
    private const ulong GhcbVersionMin = 1;

    /// <summary>sev-common.h enum psc_op: SNP_PAGE_STATE_PRIVATE = 1, SNP_PAGE_STATE_SHARED = 2.</summary>
    private const int SnpPageStatePrivate = 1, SnpPageStateShared = 2;

    /// <summary>What the next KVM_RUN completes before the guest runs (vcpu->arch.complete_userspace_io).</summary>
    private enum VmgexitCompletion { None, PscMsr, GhcbUnmap, GhcbPioIn, GhcbHypercall, GhcbPsc, GhcbMmio, GhcbStringIo, GhcbSnpReqCerts }

    private VmgexitCompletion _vmgexitCompletion;

    /// <summary>svm->vmcb->control.ghcb_gpa, null until first used (then the reset value, see <see cref="GhcbMsr"/>).</summary>
    private ulong? _ghcbMsr;

    /// <summary>svm->sev_es.ghcb_registered_gpa: INVALID_PAGE until GHCB_MSR_REG_GPA_REQ.</summary>
    private ulong _ghcbRegisteredGpa = ulong.MaxValue;

    /// <summary>A VMGEXIT exited to userspace: the next KVM_RUN first completes it.</summary>
    public bool HasPendingVmgexit => _vmgexitCompletion != VmgexitCompletion.None;

    /// <summary>sev_es_guest(kvm) with vcpu->arch.guest_state_protected: intercepts become #VC.</summary>
    private bool SevEsStateProtected =>
        CocoState.IsSevType(_kvm) && CocoState.Sev(_kvm).IsEsGuest && ProtectedState.GuestStateProtected(_vcpu);

    /// <summary>
    /// The GHCB MSR. sev_es_vcpu_reset: "set_ghcb_msr(svm, GHCB_MSR_SEV_INFO((__u64)sev-&gt;ghcb_version,
    /// GHCB_VERSION_MIN, sev_enc_bit))" — taken when first read (ghcb_version is fixed by KVM_SEV_INIT2, before any vCPU).
    /// </summary>
    private ulong GhcbMsr
    {
        get => _ghcbMsr ??= SevInfoResponse();
        set => _ghcbMsr = value;
    }

    /// <summary>GHCB_MSR_SEV_INFO(max = sev-&gt;ghcb_version, min = GHCB_VERSION_MIN, cbit = sev_enc_bit).</summary>
    private ulong SevInfoResponse() =>
        ((ulong)CocoState.Sev(_kvm).GhcbVersion << 48) | (GhcbVersionMin << 32) |
        ((ulong)GuestPhysicalMemory.CbitPosition << 24) | GhcbMsrSevInfoResp;

    /// <summary>
    /// #VC for an intercepted instruction of a protected SEV-ES/SNP vCPU (fault-like: RIP stays on it), after the
    /// CPU's own checks (IOPL/TSS bitmap, CPL) the caller made. IN/OUT/INS/OUTS → SVM_EXIT_IOIO, CPUID →
    /// SVM_EXIT_CPUID, VMMCALL → SVM_EXIT_VMMCALL (svm.c init_vmcb intercepts them). VMCALL is #UD on AMD and
    /// sev_init_vmcb stops intercepting #UD ("clr_exception_intercept(svm, UD_VECTOR)"), so the guest gets the #UD.
    /// </summary>
    private void SevEsCommunicationException(in Instruction i)
    {
        if (!SevEsStateProtected) return;
        if (i.Mnemonic == Mnemonic.Vmcall) throw new GuestFault(UD_VECTOR);
        uint code = i.Mnemonic switch
        {
            Mnemonic.Cpuid => SvmExitCpuid,
            Mnemonic.Vmmcall => SvmExitVmmcall,
            _ => SvmExitIoio,
        };
        throw new GuestFault(VcVector, (int)code);
    }

    /// <summary>
    /// RDMSR/WRMSR in a protected SEV-ES/SNP vCPU: #GP(0) at CPL &gt; 0 first (the CPU's check); the GHCB MSR is read or
    /// written directly (not intercepted); any other MSR is SVM_EXIT_MSR → #VC. False when the vCPU is not one.
    /// </summary>
    private bool SevEsModelSpecificRegister(in Instruction i)
    {
        if (SevStatusRead(i)) return true;
        if (!SevEsStateProtected) return false;
        RequireCpl0();
        if (SecureTscFreqRead(i)) return true;
        uint msr = (uint)_cpu.Gpr[X86Cpu.RCX];
        if (IsSevEsPassthroughMsr(msr))
        {
            ModelSpecificRegister(i);
            return true;
        }
        if (msr != MsrAmd64SevEsGhcb) throw new GuestFault(VcVector, (int)SvmExitMsr);
        if (i.Mnemonic == Mnemonic.Rdmsr)
        {
            ulong v = GhcbMsr;
            WriteReg(Register.EAX, v & 0xffff_ffff);
            WriteReg(Register.EDX, v >> 32);
        }
        else
        {
            GhcbMsr = (_cpu.Gpr[X86Cpu.RDX] << 32) | (uint)_cpu.Gpr[X86Cpu.RAX];
        }
        return true;
    }

    /// <summary>
    /// The MSRs KVM does not intercept for an SEV-ES vCPU besides the GHCB MSR, so the CPU reads and writes them in the
    /// encrypted VMSA without a #VC: svm.c svm_recalc_msr_intercepts (6.18) for every vCPU — STAR, SYSENTER_CS, FS/GS
    /// base, KERNEL_GS_BASE, LSTAR, CSTAR, SYSCALL_MASK, and SYSENTER_EIP/ESP unless the guest's CPUID is
    /// Intel-compatible (SEV guests are AMD) — and sev.c sev_es_recalc_msr_intercepts, "Clear intercepts on MSRs that
    /// are context switched by hardware": EFER and CR_PAT (an EFER write reaches KVM afterwards as the EFER_WRITE trap,
    /// which the emulator's single state already has). Not modelled: the dynamic ones (TSC_AUX with V_TSC_AUX, XSS with
    /// XSAVES, SPEC_CTRL after a first write, LBR and CET MSRs) stay intercepted, and an MSR filter does not re-enable
    /// these intercepts.
    /// </summary>
    private static bool IsSevEsPassthroughMsr(uint msr) => msr is MsrIndex.STAR or MsrIndex.IA32_SYSENTER_CS
        or MsrIndex.IA32_SYSENTER_ESP or MsrIndex.IA32_SYSENTER_EIP or MsrIndex.FS_BASE or MsrIndex.GS_BASE
        or MsrIndex.KERNEL_GS_BASE or MsrIndex.LSTAR or MsrIndex.CSTAR or MsrIndex.SYSCALL_MASK or MsrIndex.EFER
        or MsrIndex.IA32_CR_PAT;

    /// <summary>MSR_AMD64_SEV (arch/x86/include/asm/msr-index.h), the guest's SEV_STATUS.</summary>
    private const uint MsrAmd64Sev = 0xC001_0131;

    /// <summary>
    /// RDMSR of SEV_STATUS in an SEV, SEV-ES or SNP guest: the CPU answers it, no intercept and no #VC (AMD APM Vol. 2,
    /// 15.34.10 "SEV_STATUS MSR": read-only guest state; OVMF's ResetVector AmdSev.asm CheckSevFeatures and Linux's
    /// sev_enable read it with a bare RDMSR before any #VC handler could answer). Bit 0 SEV, bit 1 SEV-ES, and bits 2
    /// and up mirror the VMSA's SEV_FEATURES (msr-index.h MSR_AMD64_SEV_SNP_BIT 2 = SVM_SEV_FEAT_SNP_ACTIVE bit 0,
    /// MSR_AMD64_SNP_SECURE_TSC_BIT 11 = SVM_SEV_FEAT_SECURE_TSC bit 9). Outside an SEV guest KVM intercepts it like
    /// any MSR it does not know (kvm_get_msr_common: #GP), which the ordinary path keeps. False when not taken.
    /// </summary>
    private bool SevStatusRead(in Instruction i)
    {
        if (i.Mnemonic != Mnemonic.Rdmsr || (uint)_cpu.Gpr[X86Cpu.RCX] != MsrAmd64Sev) return false;
        if (!CocoState.IsSevType(_kvm) || CocoState.Sev(_kvm) is not { Active: true } sev) return false;
        RequireCpl0();
        ulong v = 1;
        if (sev.EsActive) v |= 2 | (sev.VmsaFeatures << 2);
        WriteReg(Register.EAX, v & 0xffff_ffff);
        WriteReg(Register.EDX, v >> 32);
        return true;
    }

    /// <summary>
    /// RDMSR of MSR_AMD64_GUEST_TSC_FREQ by an SNP Secure TSC vCPU: sev.c sev_es_recalc_msr_intercepts (6.18)
    /// "svm_set_intercept_for_msr(vcpu, MSR_AMD64_GUEST_TSC_FREQ, MSR_TYPE_R, !snp_is_secure_tsc_enabled(vcpu-&gt;kvm))"
    /// — the read reaches the CPU's value (Arch/X86/SnpTscInfo.cs); writes, and reads without Secure TSC, stay
    /// intercepted (#VC, and through the GHCB KVM has no such MSR: #GP).
    /// </summary>
    private bool SecureTscFreqRead(in Instruction i)
    {
        if (i.Mnemonic != Mnemonic.Rdmsr || (uint)_cpu.Gpr[X86Cpu.RCX] != SnpTscInfo.MsrGuestTscFreq) return false;
        if (SnpTscInfo.Of(CocoState.Sev(_kvm)) is not { } tsc) return false;
        ulong v = SnpTscInfo.GuestTscFreqMsr(tsc);
        WriteReg(Register.EAX, v & 0xffff_ffff);
        WriteReg(Register.EDX, v >> 32);
        return true;
    }

    /// <summary>
    /// A data access of a protected SEV-ES/SNP vCPU that reached a GPA without a memslot: KVM's MMIO SPTEs carry reserved
    /// bits, and the #NPF they raise is a non-automatic exit for SEV-ES (sev_es_enabled needs enable_mmio_caching):
    /// #VC with SVM_EXIT_NPF. (A C-bit access to such a GPA is already a memory fault for SNP.)
    /// </summary>
    private void SevEsMmioException()
    {
        if (SevEsStateProtected) throw new GuestFault(VcVector, (int)SvmExitNpf);
    }

    /// <summary>
    /// VMGEXIT ("rep vmmcall"). Outside a protected SEV-ES/SNP vCPU the REP prefix is ignored and it is VMMCALL
    /// (AMD APM Vol. 3 VMGEXIT: "executes as VMMCALL" when SEV-ES is not enabled). Inside, it exits to KVM with the
    /// guest's RIP already past it (the response is there when the guest resumes): sev_handle_vmgexit — GHCB MSR
    /// protocol when the MSR's low 12 bits are set, the GHCB page otherwise, nothing for a GHCB GPA of 0 ("Without a
    /// GHCB, just return right back to the guest").
    /// </summary>
    private ulong Vmgexit(in Instruction i, ref ulong f)
    {
        if (!SevEsStateProtected) return Hypercall(i);
        ulong msr = GhcbMsr;
        if ((msr & GhcbMsrInfoMask) != 0) MsrProtocol(msr);
        else if (msr != 0) GhcbProtocol(msr); // X86Emulator.Ghcb.cs
        return InjectGhcbException(i.NextIP, ref f); // an exception the event queued (X86Emulator.GhcbEvents.cs)
    }

    /// <summary>sev.c sev_handle_vmgexit_msr_protocol.</summary>
    private void MsrProtocol(ulong msr)
    {
        bool snp = CocoState.Sev(_kvm).IsSnpGuest;
        switch (msr & GhcbMsrInfoMask)
        {
            case GhcbMsrSevInfoReq:
                GhcbMsr = SevInfoResponse();
                break;
            case GhcbMsrCpuidReq:
            {
                // "vcpu->arch.regs[VCPU_REGS_RAX] = cpuid_fn; vcpu->arch.regs[VCPU_REGS_RCX] = 0;
                // svm_invoke_exit_handler(vcpu, SVM_EXIT_CPUID)", then the register GHCBData[31:30] names goes to
                // GHCBData[63:32] and GHCB_MSR_CPUID_RESP to [11:0]; bits 31:12 stay as the guest wrote them.
                var (eax, ebx, ecx, edx) = _cpu.Cpuid.Emulate((uint)(msr >> 32), 0, _cpu);
                uint value = ((msr >> 30) & 3) switch { 0 => eax, 1 => ebx, 2 => ecx, _ => edx };
                GhcbMsr = ((ulong)value << 32) | (msr & 0xffff_f000) | GhcbMsrCpuidResp;
                break;
            }
            case GhcbMsrHvFtReq:
                GhcbMsr = (msr & ~(GhcbMsr52BitMask << 12) & ~GhcbMsrInfoMask) | (GhcbHvFtSupported << 12) | GhcbMsrHvFtResp;
                break;
            case GhcbMsrPrefGpaReq:
                if (!snp) { Terminate(msr); break; }
                GhcbMsr = (GhcbMsrPrefGpaNone << 12) | GhcbMsrPrefGpaResp;
                break;
            case GhcbMsrRegGpaReq:
            {
                // "gfn = get_ghcb_msr_bits(svm, GHCB_MSR_GPA_VALUE_MASK, GHCB_MSR_GPA_VALUE_POS);
                // svm->sev_es.ghcb_registered_gpa = gfn_to_gpa(gfn);" and the same GFN in the response.
                if (!snp) { Terminate(msr); break; }
                ulong gfn = (msr >> 12) & GhcbMsr52BitMask;
                _ghcbRegisteredGpa = gfn << 12;
                GhcbMsr = (gfn << 12) | GhcbMsrRegGpaResp;
                break;
            }
            case GhcbMsrPscReq:
                if (!snp) { Terminate(msr); break; }
                BeginPscMsr(msr);
                break;
            case GhcbMsrTermReq:
                // "pr_info("SEV-ES guest requested termination: %#llx:%#llx\n", reason_set, reason_code); goto out_terminate;"
                Terminate(msr);
                break;
            case GhcbMsrApResetHoldReq:
                MsrApResetHold(); // X86Emulator.GhcbApResetHold.cs
                break;
            default:
                // "Error, keep GHCB MSR value as-is".
                break;
        }
    }

    /// <summary>
    /// out_terminate: KVM_EXIT_SYSTEM_EVENT, type KVM_SYSTEM_EVENT_SEV_TERM, ndata 1, data[0] = control-&gt;ghcb_gpa
    /// (the GHCB MSR as the guest left it).
    /// </summary>
    private void Terminate(ulong ghcbMsr)
    {
        _run.SetSystemEvent(KvmConstants.KVM_SYSTEM_EVENT_SEV_TERM, [ghcbMsr]);
        _exit = StepOutcome.ExitToUser;
    }

    /// <summary>
    /// snp_begin_psc_msr: GHCBData[51:12] the GFN, [55:52] the operation. Another operation than private/shared, or
    /// userspace did not ask for KVM_HC_MAP_GPA_RANGE exits (user_exit_on_hypercall), → GHCB_MSR_PSC_RESP_ERROR at
    /// once; else KVM_EXIT_HYPERCALL(KVM_HC_MAP_GPA_RANGE, gpa, 1, ENCRYPTED or DECRYPTED | PAGE_SZ_4K), ret = 0 (the
    /// flags and args[3..5] are left as they were), completed by snp_complete_psc_msr.
    /// </summary>
    private void BeginPscMsr(ulong msr)
    {
        ulong gpa = ((msr >> 12) & ((1UL << 40) - 1)) << 12;
        int op = (int)(msr >> 52) & 0xf;
        if ((op != SnpPageStatePrivate && op != SnpPageStateShared) ||
            (_kvm.HypercallExitEnabled & (1UL << (int)KvmPara.KVM_HC_MAP_GPA_RANGE)) == 0)
        {
            GhcbMsr = GhcbMsrPscRespError;
            return;
        }
        ulong attrs = (op == SnpPageStatePrivate ? KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED : KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED)
            | KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_4K;
        _run.SetHypercallExit(KvmPara.KVM_HC_MAP_GPA_RANGE, gpa, 1, attrs, _run.HypercallFlags);
        _vmgexitCompletion = VmgexitCompletion.PscMsr;
        _exit = StepOutcome.ExitToUser;
    }

    /// <summary>
    /// The complete_userspace_io callback of a VMGEXIT that exited, on the next KVM_RUN before anything else. Returns
    /// true when KVM_RUN returns again at once (the next range of a GHCB page-state change).
    /// </summary>
    public bool CompleteVmgexit()
    {
        var completion = _vmgexitCompletion;
        _vmgexitCompletion = VmgexitCompletion.None;
        switch (completion)
        {
            case VmgexitCompletion.PscMsr:
                // snp_complete_psc_msr: "if (vcpu->run->hypercall.ret) set_ghcb_msr(svm, GHCB_MSR_PSC_RESP_ERROR);
                // else set_ghcb_msr(svm, GHCB_MSR_PSC_RESP);"
                GhcbMsr = _run.HypercallRet != 0 ? GhcbMsrPscRespError : GhcbMsrPscResp;
                return false;
            case VmgexitCompletion.GhcbSnpReqCerts:
                return CompleteSnpReqCerts(); // X86Emulator.GhcbGuestRequest.cs
            default:
                return CompleteGhcbExit(completion); // X86Emulator.Ghcb.cs
        }
    }
}
