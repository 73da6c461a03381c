// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The SEV-ES AP reset hold (arch/x86/kvm/svm/sev.c: SVM_VMGEXIT_AP_HLT_LOOP in sev_handle_vmgexit, GHCB_MSR_AP_RESET_HOLD_REQ
/// in sev_handle_vmgexit_msr_protocol, sev_vcpu_deliver_sipi_vector, sev_es_unmap_ghcb; x86.c kvm_emulate_ap_reset_hold
/// → __kvm_emulate_halt). The vCPU halts in KVM_MP_STATE_AP_RESET_HOLD (with an in-kernel local APIC; without one
/// KVM_RUN returns KVM_EXIT_AP_RESET_HOLD) until an INIT and a SIPI: KVM cannot set CS:RIP of protected state, so the
/// SIPI (svm_vcpu_deliver_sipi_vector for any sev_es_guest VM) only makes the vCPU runnable and answers the hold —
/// sw_exit_info_2 = 1 in the still-mapped GHCB, or GHCB_MSR_AP_RESET_HOLD_RESP with result 1 in GHCBData[63:12]. The
/// vCPU's first SIPI ever answers nothing ("Use the values as initially set by the VMM"); an entry into the guest
/// (sev_es_unmap_ghcb) forgets the hold, so a later SIPI answers nothing either.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>sev-common.h GHCB_MSR_AP_RESET_HOLD_REQ / _RESP; the result at GHCB_MSR_AP_RESET_HOLD_RESULT_POS 12, GENMASK_ULL(51, 0).</summary>
    private const ulong GhcbMsrApResetHoldReq = 0x006, GhcbMsrApResetHoldResp = 0x007;

    /// <summary>KVM_EXIT_AP_RESET_HOLD (include/uapi/linux/kvm.h).</summary>
    private const uint KvmExitApResetHold = (uint)KvmExitReason.KVM_EXIT_AP_RESET_HOLD;

    /// <summary>sev.c AP_RESET_HOLD_NONE / _NAE_EVENT / _MSR_PROTO: svm-&gt;sev_es.ap_reset_hold_type.</summary>
    private enum ApResetHoldType { None, NaeEvent, MsrProto }

    private ApResetHoldType _apResetHoldType;

    /// <summary>svm-&gt;sev_es.received_first_sipi.</summary>
    private bool _receivedFirstSipi;

    /// <summary>
    /// GHCB_MSR_AP_RESET_HOLD_REQ: "ap_reset_hold_type = AP_RESET_HOLD_MSR_PROTO; ret = kvm_emulate_ap_reset_hold(vcpu);"
    /// then the response with result 0 ("Preset the result to a non-SIPI return"): GHCBData[63:12] = 0, [11:0] = 0x007.
    /// </summary>
    private void MsrApResetHold()
    {
        _apResetHoldType = ApResetHoldType.MsrProto;
        EmulateApResetHold();
        GhcbMsr = GhcbMsrApResetHoldResp;
    }

    /// <summary>
    /// SVM_VMGEXIT_AP_HLT_LOOP: "ap_reset_hold_type = AP_RESET_HOLD_NAE_EVENT; ret = kvm_emulate_ap_reset_hold(vcpu);".
    /// The GHCB stays mapped (the SIPI answers in it); it is written back when the vCPU next enters the guest
    /// (<see cref="SevEsPreRun"/>) or, after KVM_EXIT_AP_RESET_HOLD, on the next KVM_RUN. Always true.
    /// </summary>
    private bool GhcbApHltLoop()
    {
        _apResetHoldType = ApResetHoldType.NaeEvent;
        if (EmulateApResetHold()) _vmgexitCompletion = VmgexitCompletion.GhcbUnmap;
        return true;
    }

    /// <summary>
    /// kvm_emulate_ap_reset_hold → __kvm_emulate_halt(vcpu, KVM_MP_STATE_AP_RESET_HOLD, KVM_EXIT_AP_RESET_HOLD), which
    /// counts halt_exits either way (HaltExitsApResetHoldTests): with an in-kernel local APIC the vCPU waits in KVM_RUN
    /// (Vcpu/VcpuRun.cs Block; "if (kvm_vcpu_has_events(vcpu) || vcpu-&gt;arch.pv.pv_unhalted) state =
    /// KVM_MP_STATE_RUNNABLE" is the same wake there); else KVM_RUN returns with KVM_EXIT_AP_RESET_HOLD (true). RIP is already past the VMGEXIT (kvm_skip_emulated_instruction).
    /// </summary>
    private bool EmulateApResetHold()
    {
        // __kvm_emulate_halt: "++vcpu->stat.halt_exits" first, for both answers (as for a HLT).
        if (Stats is { } haltStats) haltStats.Increment(haltStats.Table.Slots.HaltExits);
        if (InKernelApic is not null)
        {
            _cpu.State.MpState = KvmMpState.KVM_MP_STATE_AP_RESET_HOLD;
            return false;
        }
        _run.ExitReason = KvmExitApResetHold;
        _exit = StepOutcome.ExitToUser;
        return true;
    }

    /// <summary>
    /// svm_vcpu_deliver_sipi_vector: for an sev_es_guest VM sev_vcpu_deliver_sipi_vector instead of
    /// kvm_vcpu_deliver_sipi_vector (no CS:RIP change). True when it handled the SIPI.
    /// </summary>
    public bool SevDeliverSipiVector()
    {
        if (!CocoState.IsSevType(_kvm) || !CocoState.Sev(_kvm).IsEsGuest) return false;
        // "First SIPI: Use the values as initially set by the VMM".
        if (!_receivedFirstSipi)
        {
            _receivedFirstSipi = true;
            return true;
        }
        switch (_apResetHoldType)
        {
            case ApResetHoldType.NaeEvent:
                // "Return from an AP Reset Hold VMGEXIT … Set SW_EXIT_INFO_2 to a non-zero value": svm_vmgexit_success(svm, 1).
                if (_ghcbGpa is not null) SetReturnCode(GhcbHvRespNoAction, 1);
                break;
            case ApResetHoldType.MsrProto:
                // set_ghcb_msr_bits(svm, 1, GHCB_MSR_AP_RESET_HOLD_RESULT_MASK, _POS), then GHCB_MSR_AP_RESET_HOLD_RESP.
                GhcbMsr = (1UL << 12) | GhcbMsrApResetHoldResp;
                break;
        }
        return true;
    }

    /// <summary>
    /// The SEV-ES work of a VM entry (svm_prepare_switch_to_guest → sev_es_unmap_ghcb; pre_svm_run → pre_sev_run):
    /// the hold is forgotten ("Clear any indication that the vCPU is in a type of AP Reset Hold"), a GHCB still mapped
    /// with no completion pending is written back, and a vCPU whose VMSA was taken away (an SNP AP_DESTROY, then
    /// userspace forced it RUNNABLE) is refused: "Reject KVM_RUN if userspace attempts to run the vCPU with an invalid
    /// VMSA" (-EINVAL; how svm_vcpu_run reports pre_svm_run's error is not verified here — KVM_RUN's errno).
    /// </summary>
    public long? SevEsPreRun()
    {
        if (!CocoState.IsSevType(_kvm) || !CocoState.Sev(_kvm).IsEsGuest) return null;
        _apResetHoldType = ApResetHoldType.None;
        if (_ghcbGpa is not null && _vmgexitCompletion == VmgexitCompletion.None) UnmapGhcb();
        return _vmsaInvalid ? Err.EINVAL : null;
    }
}
