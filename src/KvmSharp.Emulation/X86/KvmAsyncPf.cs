// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// Async page faults (arch/x86/kvm/x86.c kvm_pv_enable_async_pf, kvm_pv_enable_async_pf_int, MSR_KVM_ASYNC_PF_ACK;
/// virt/kvm/async_pf.c). The emulator never meets a host page that is not present, so no "page not present" event is
/// ever sent; what remains is the MSRs' validation and the one event every enable sends: kvm_async_pf_wakeup_all queues
/// a "wakeup all" item, and kvm_check_async_pf_completion delivers it as token ~0 in struct kvm_vcpu_pv_apf_data
/// {u32 flags; u32 token; …} plus the MSR_KVM_ASYNC_PF_INT vector as a fixed interrupt to the vCPU's own APIC.
/// </summary>
internal static class KvmAsyncPf
{
    /// <summary>KVM_ASYNC_PF_ENABLED, KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT, KVM_ASYNC_PF_DELIVERY_AS_INT.</summary>
    private const ulong PfEnabled = 1 << 0, DeliveryAsPfVmexit = 1 << 2, DeliveryAsInt = 1 << 3;

    /// <summary>offsetof(struct kvm_vcpu_pv_apf_data, token).</summary>
    private const ulong TokenOffset = 4;

    /// <summary>x86.h kvm_pv_async_pf_enabled: both KVM_ASYNC_PF_ENABLED and KVM_ASYNC_PF_DELIVERY_AS_INT.</summary>
    private static bool PvAsyncPfEnabled(KvmPvState pv) => (pv.AsyncPfEn & (PfEnabled | DeliveryAsInt)) == (PfEnabled | DeliveryAsInt);

    /// <summary>
    /// kvm_pv_enable_async_pf: "if (data &amp; 0x30) return 1" (bits 5:4 reserved); DELIVERY_AS_PF_VMEXIT needs
    /// KVM_FEATURE_ASYNC_PF_VMEXIT and DELIVERY_AS_INT KVM_FEATURE_ASYNC_PF_INT (guest_pv_has: only under enforcement);
    /// "if (!lapic_in_kernel(vcpu)) return data ? 1 : 0;" (nothing kept); then the value is stored — before the GPA is
    /// checked, so a refused GPA still reads back. Unless kvm_pv_async_pf_enabled (ENABLED and DELIVERY_AS_INT: the
    /// "#PF" delivery is gone) the completion queue is dropped and that is all; else the 8 bytes at data &amp; ~0x3f must
    /// map writable (kvm_gfn_to_hva_cache_init, else 1) and kvm_async_pf_wakeup_all runs.
    /// </summary>
    public static int Enable(X86Cpu cpu, ulong data)
    {
        var pv = cpu.Msrs.Pv;
        if ((data & 0x30) != 0) return 1;
        if (!cpu.Cpuid.PvHas(KvmPvMsrs.FeatureAsyncPfVmexit) && (data & DeliveryAsPfVmexit) != 0) return 1;
        if (!cpu.Cpuid.PvHas(KvmPvMsrs.FeatureAsyncPfInt) && (data & DeliveryAsInt) != 0) return 1;
        if (cpu.Msrs.Lapic is null) return data != 0 ? 1 : 0;
        pv.AsyncPfEn = data;
        if (!PvAsyncPfEnabled(pv))
        {
            // kvm_clear_async_pf_completion_queue: the queued "wakeup all" goes with the rest.
            pv.WakeupAllQueued = false;
            return 0;
        }
        if (!KvmGuestMemory.HvaCacheInit(cpu.Msrs.Vm, data & ~0x3fUL, 8)) return 1;
        // kvm_async_pf_wakeup_all: "if (!list_empty_careful(&vcpu->async_pf.done)) return 0;", else the item is
        // queued and, being first, kvm_arch_async_page_present_queued makes KVM_REQ_APF_READY.
        if (!pv.WakeupAllQueued)
        {
            pv.WakeupAllQueued = true;
            pv.ApfReadyRequested = true;
        }
        return 0;
    }

    /// <summary>
    /// kvm_pv_enable_async_pf_int: "/* Bits 8-63 are reserved */ if (data &gt;&gt; 8) return 1; if (!lapic_in_kernel(vcpu))
    /// return 1;" then msr_int_val = data and apf.vec = its low byte. No rule ties it to MSR_KVM_ASYNC_PF_EN's order:
    /// a guest that enables interrupt delivery first gets its wakeup on vector 0, which no APIC ever delivers.
    /// </summary>
    public static int EnableInt(X86Cpu cpu, ulong data)
    {
        if ((data >> 8) != 0 || cpu.Msrs.Lapic is null) return 1;
        cpu.Msrs.Pv.AsyncPfInt = data;
        return 0;
    }

    /// <summary>MSR_KVM_ASYNC_PF_ACK bit 0: "vcpu->arch.apf.pageready_pending = false; kvm_check_async_pf_completion(vcpu);".</summary>
    public static void Ack(X86Cpu cpu)
    {
        cpu.Msrs.Pv.PagereadyPending = false;
        if (KvmGuestMemory.Owner(cpu) is { } vcpu) CheckCompletion(vcpu);
    }

    /// <summary>
    /// vcpu_enter_guest: "if (kvm_check_request(KVM_REQ_APF_READY, vcpu)) kvm_check_async_pf_completion(vcpu);" — at
    /// KVM_RUN's entry, and at the next instruction boundary for a request the guest made (its WRMSR or SPIV write exits
    /// and the re-entry serves it: ApicInjection.TryQueue).
    /// </summary>
    public static void ServeRequest(KvmVcpu vcpu)
    {
        var pv = vcpu.Cpu.Msrs.Pv;
        if (!pv.ApfReadyRequested) return;
        pv.ApfReadyRequested = false;
        CheckCompletion(vcpu);
    }

    /// <summary>
    /// async_pf.c kvm_check_async_pf_completion for the "wakeup all" item: dequeued when
    /// kvm_arch_can_dequeue_async_page_present ("if (!kvm_pv_async_pf_enabled(vcpu)) return true; else return
    /// kvm_lapic_enabled(vcpu) &amp;&amp; apf_pageready_slot_free(vcpu)": the guest's token word reads 0), else it stays
    /// queued for the next ACK. kvm_arch_async_page_present: token ~0 (broadcast); with async PF enabled and the token
    /// written (apf_put_user_ready), pageready_pending and kvm_apic_set_irq(fixed, apf.vec, edge).
    /// </summary>
    private static void CheckCompletion(KvmVcpu vcpu)
    {
        var pv = vcpu.Cpu.Msrs.Pv;
        if (!pv.WakeupAllQueued) return;
        bool enabled = PvAsyncPfEnabled(pv);
        ulong tokenGpa = (pv.AsyncPfEn & ~0x3fUL) + TokenOffset;
        Span<byte> token = stackalloc byte[4];
        if (enabled)
        {
            bool apicEnabled = vcpu.Lapic is { SoftwareEnabled: true } && (vcpu.Cpu.Sregs.apic_base & Irqchip.Lapic.BaseEnable) != 0;
            if (!apicEnabled || !KvmGuestMemory.Access(vcpu, tokenGpa, token, write: false)
                || BinaryPrimitives.ReadUInt32LittleEndian(token) != 0)
                return;
        }
        pv.WakeupAllQueued = false;
        if (!enabled) return;
        BinaryPrimitives.WriteUInt32LittleEndian(token, uint.MaxValue);
        if (!KvmGuestMemory.Access(vcpu, tokenGpa, token, write: true)) return;
        pv.PagereadyPending = true;
        vcpu.Lapic!.AcceptFixed((byte)pv.AsyncPfInt, levelTriggered: false, level: false, hardwareEnabled: true);
    }
}
