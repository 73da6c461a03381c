// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86;

/// <summary>
/// The per-vCPU state behind KVM's paravirtual MSRs other than kvmclock's (struct kvm_vcpu_arch: apf, st, pv_eoi,
/// msr_kvm_poll_control), zero at vCPU creation (kzalloc) but for poll control. Rules: X86/KvmPvMsrs.cs.
/// </summary>
internal sealed class KvmPvState
{
    /// <summary>vcpu->arch.apf.msr_en_val (MSR_KVM_ASYNC_PF_EN).</summary>
    public ulong AsyncPfEn;

    /// <summary>vcpu->arch.apf.msr_int_val (MSR_KVM_ASYNC_PF_INT); its low byte is apf.vec.</summary>
    public ulong AsyncPfInt;

    /// <summary>vcpu->async_pf.done holds the "wakeup all" item kvm_async_pf_wakeup_all queued (X86/KvmAsyncPf.cs).</summary>
    public bool WakeupAllQueued;

    /// <summary>KVM_REQ_APF_READY: kvm_check_async_pf_completion at the next entry.</summary>
    public bool ApfReadyRequested;

    /// <summary>vcpu->arch.apf.pageready_pending: a page-ready interrupt went out and the guest has not ACKed it.</summary>
    public bool PagereadyPending;

    /// <summary>vcpu->arch.st.msr_val (MSR_KVM_STEAL_TIME).</summary>
    public ulong StealTime;

    /// <summary>vcpu->arch.st.last_steal: the thread's run_delay at the last record_steal_time (0 at creation).</summary>
    public ulong LastSteal;

    /// <summary>vcpu->arch.pv_eoi.msr_val (MSR_KVM_PV_EOI_EN).</summary>
    public ulong PvEoi;

    /// <summary>KVM_APIC_PV_EOI_PENDING in vcpu->arch.apic_attention: KVM set the guest's PV EOI bit at the last entry.</summary>
    public bool PvEoiPending;

    /// <summary>vcpu->arch.msr_kvm_poll_control: "poll control enabled by default" (kvm_arch_vcpu_postcreate).</summary>
    public ulong PollControl = 1;
}
