// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Arch;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// SNP guest requests through the GHCB (arch/x86/kvm/svm/sev.c, 6.18: snp_handle_guest_req,
/// snp_handle_ext_guest_req). sw_exit_info_1 is the request page's GPA, sw_exit_info_2 the response page's
/// (sev_es_validate_vmgexit checked both page aligned and different). KVM copies the request page to its own buffer
/// (kvm_read_guest: the shared view), issues SEV_CMD_SNP_GUEST_REQUEST to the PSP (<see cref="SnpPsp"/>), copies its
/// response buffer to the response page and answers sw_exit_info_1 = 0, sw_exit_info_2 = SNP_GUEST_ERR(0, fw_err): the
/// firmware's status in the low 32 bits, a VMM error in the high 32 bits (none here: 6.18 has no request throttling
/// and no KVM_EXIT_SNP_REQ_CERTS, which came later — "KVM: Introduce KVM_EXIT_SNP_REQ_CERTS", Michael Roth, 2026-01).
/// The extended request of 6.18 is a stub: an empty certificate table. With <see cref="EmulatorConfig.SnpReqCertsExit"/>
/// set and KVM_SEV_SNP_ENABLE_REQ_CERTS done (<see cref="SnpReqCerts"/>), an MSG_REPORT_REQ exits to userspace first
/// ("[PATCH v7 1/2] KVM: Introduce KVM_EXIT_SNP_REQ_CERTS for SNP certificate-fetching", Michael Roth, 2026-01-09).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>offsetof(struct snp_guest_msg_hdr, msg_type).</summary>
    private const int SnpMsgTypeOffset = 0x34;

    /// <summary>snp_handle_guest_req. Returns true when KVM_RUN ends (with an errno).</summary>
    private bool GhcbGuestRequest(ulong reqGpa, ulong respGpa)
    {
        var sev = CocoState.Sev(_kvm);
        var g = SnpPsp.Guest(sev);
        // mutex_lock(&sev->guest_req_mutex): one request at a time per VM.
        lock (g)
        {
            // "if (kvm_read_guest(kvm, req_gpa, sev->guest_req_buf, PAGE_SIZE)) { ret = -EIO; goto out_unlock; }"
            var req = new byte[EmulatorConfig.PageSize];
            if (!HostGuestAccess(reqGpa, req, write: false)) return GuestRequestFails(Vfs.Err.EIO);
            // ret = sev_issue_cmd(kvm, SEV_CMD_SNP_GUEST_REQUEST, &data, &fw_err) through sev->fd: "Firmware failures
            // are propagated on to guest, but any other failure condition along the way should be reported to
            // userspace": "if (ret && !fw_err) goto out_unlock;" (e.g. -EBADF, sev->fd no longer /dev/sev).
            uint fwErr = 0;
            long r = SevFirmware.Issue(_kvm.Kernel, sev.Fd, ref fwErr, () => SnpPsp.GuestRequest(_kvm.Kernel, sev, req));
            if (r != 0 && fwErr == 0) return GuestRequestFails(r);
            // "if (kvm_write_guest(kvm, resp_gpa, sev->guest_resp_buf, PAGE_SIZE)) { ret = -EIO; ... }": the buffer
            // is written even when the firmware failed (then it holds the previous response, or zeros).
            if (!HostGuestAccess(respGpa, g.RespBuf, write: true)) return GuestRequestFails(Vfs.Err.EIO);
            // "No action is requested *from KVM* if there was a firmware error.": svm_vmgexit_no_action(svm,
            // SNP_GUEST_ERR(0, fw_err)).
            SetReturnCode(GhcbHvRespNoAction, fwErr);
            return false;
        }
    }

    /// <summary>
    /// snp_handle_ext_guest_req (6.18): reads the request's msg_type (kvm_read_guest failure: -EIO); for
    /// SNP_MSG_REPORT_REQ, RAX (the certificate buffer's GPA) and RBX (its pages) must be valid in the GHCB and RAX page
    /// aligned, else GHCB_ERR_INVALID_INPUT; with pages, the first 24 bytes (the table's terminator) are cleared
    /// (kvm_clear_guest failure: -EIO); then the plain guest request. RBX is not changed.
    /// </summary>
    private bool GhcbExtGuestRequest(ulong reqGpa, ulong respGpa)
    {
        Span<byte> msgType = stackalloc byte[1];
        if (!HostGuestAccess(reqGpa + SnpMsgTypeOffset, msgType, write: false)) return GuestRequestFails(Vfs.Err.EIO);
        if (msgType[0] == SnpGuestMessage.MsgReportReq)
        {
            if (!GhcbValid(GhcbRax) || !GhcbValid(GhcbRbx))
            {
                SetReturnCode(GhcbHvRespMalformedInput, GhcbErrInvalidInput); // request_invalid
                return false;
            }
            ulong dataGpa = _ghcbRegs[X86Cpu.RAX];
            ulong dataNpages = _ghcbRegs[X86Cpu.RBX];
            if ((dataGpa & (ulong)(EmulatorConfig.PageSize - 1)) != 0)
            {
                SetReturnCode(GhcbHvRespMalformedInput, GhcbErrInvalidInput);
                return false;
            }
            // [PATCH v7 1/2]: "if (sev->snp_certs_enabled) { vcpu->run->exit_reason = KVM_EXIT_SNP_REQ_CERTS;
            // …snp_req_certs.gpa = data_gpa; .npages = data_npages; .ret = 0; vcpu->arch.complete_userspace_io =
            // snp_complete_req_certs; return 0; }" — the request is issued on the next KVM_RUN, from exit_info_1/2.
            if (_kvm.Kernel.Config.SnpReqCertsExit is uint exitReason && SnpReqCerts.Enabled(CocoState.Sev(_kvm)))
            {
                _snpReqCertsGpas = (reqGpa, respGpa);
                _run.SetSnpReqCerts(exitReason, dataGpa, dataNpages);
                return ExitWithGhcbMapped(VmgexitCompletion.GhcbSnpReqCerts);
            }
            // "As per GHCB spec (see "SNP Extended Guest Request"), the certificate table is terminated by 24-bytes
            // of zeroes." — "if (data_npages && kvm_clear_guest(kvm, data_gpa, 24)) return -EIO;"
            if (dataNpages != 0 && !HostGuestAccess(dataGpa, new byte[24], write: true)) return GuestRequestFails(Vfs.Err.EIO);
        }
        return GhcbGuestRequest(reqGpa, respGpa);
    }

    /// <summary>control->exit_info_1 and exit_info_2 (request and response page) of the VMGEXIT that exited.</summary>
    private (ulong Req, ulong Resp) _snpReqCertsGpas;

    /// <summary>The errno of a completion that failed KVM_RUN (0: it returned with an exit, or resumed the guest).</summary>
    private long _vmgexitCompletionRc;

    /// <summary>What KVM_RUN returns when <see cref="CompleteVmgexit"/> ended it (0, or a completion's errno); then 0 again.</summary>
    public long TakeVmgexitCompletionRc()
    {
        long rc = _vmgexitCompletionRc;
        _vmgexitCompletionRc = 0;
        return rc;
    }

    /// <summary>
    /// snp_complete_req_certs ([PATCH v7 1/2]): "switch (READ_ONCE(vcpu-&gt;run-&gt;snp_req_certs.ret))": 0 issues the
    /// guest request (snp_handle_guest_req with exit_info_1/2); ENOSPC sets RBX to npages and SW_EXITINFO2 to
    /// SNP_GUEST_ERR(SNP_GUEST_VMM_ERR_INVALID_LEN, 0); EAGAIN to (SNP_GUEST_VMM_ERR_BUSY, 0); EIO to
    /// (SNP_GUEST_VMM_ERR_GENERIC, 0); anything else: "return -EINVAL" (KVM_RUN fails; the callback is gone, so the
    /// next KVM_RUN resumes the guest with the GHCB as svm_vmgexit_success left it). Returns true when KVM_RUN ends.
    /// </summary>
    private bool CompleteSnpReqCerts()
    {
        var (ret, npages) = _run.SnpReqCertsAnswer;
        uint vmmError;
        switch (ret)
        {
            case 0:
                if (GhcbGuestRequest(_snpReqCertsGpas.Req, _snpReqCertsGpas.Resp))
                {
                    // snp_handle_guest_req failed (-EIO etc.): KVM_RUN returns it (GuestRequestFails set the unmap).
                    _vmgexitCompletionRc = _exit.Rc;
                    _exit = StepOutcome.Continue;
                    return true;
                }
                UnmapGhcb();
                return false;
            case SnpReqCerts.RetEnospc:
                _ghcbRegs[X86Cpu.RBX] = npages;
                vmmError = SnpReqCerts.VmmErrInvalidLen;
                break;
            case SnpReqCerts.RetEagain:
                vmmError = SnpReqCerts.VmmErrBusy;
                break;
            case SnpReqCerts.RetEio:
                vmmError = SnpReqCerts.VmmErrGeneric;
                break;
            default:
                _vmgexitCompletion = VmgexitCompletion.GhcbUnmap;
                _vmgexitCompletionRc = Vfs.Err.EINVAL;
                return true;
        }
        // snp_req_certs_err: "ghcb_set_sw_exit_info_2(svm->sev_es.ghcb, SNP_GUEST_ERR(vmm_error, 0)); return 1;" —
        // sw_exit_info_1 stays svm_vmgexit_success's 0.
        SetReturnCode(GhcbHvRespNoAction, (ulong)vmmError << 32);
        UnmapGhcb();
        return false;
    }

    /// <summary>A negative return from sev_handle_vmgexit: KVM_RUN fails with it; the GHCB is unmapped at the next entry.</summary>
    private bool GuestRequestFails(long errno)
    {
        _vmgexitCompletion = VmgexitCompletion.GhcbUnmap;
        _exit = new StepOutcome(true, errno);
        return true;
    }
}
