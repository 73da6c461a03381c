// SPDX-License-Identifier: MIT
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The events KVM_SET_VCPU_EVENTS queued (struct kvm_vcpu_arch exception / interrupt / NMI state), delivered when a
/// KVM_RUN enters the guest: arch/x86/kvm/x86.c kvm_check_and_inject_events, with the vendor's inject_exception /
/// inject_nmi / inject_irq replaced by the interpreter's one IDT delivery path (X86Emulator.Exceptions). Probed on
/// this host (Linux 6.18 kvm_pvm, AMD) with the same guests on both kernels (Conformance/Cases/EventInjection.cs):
/// <list type="bullet">
/// <item>The queue is looked at once, when KVM_RUN enters the guest (after immediate_exit and the completion of an
/// exit's I/O). An NMI that stays blocked (NMIs masked, an interrupt shadow, another event delivered first) stays
/// pending until the next KVM_RUN: this host opens no NMI window inside one run (upstream enable_nmi_window /
/// IRET interception would deliver it as soon as the block ends).</item>
/// <item>An injected event ignores RFLAGS.IF, the shadow and the NMI mask (re-injection is unconditional); a
/// pending NMI needs NMIs unmasked and no shadow (svm_nmi_blocked).</item>
/// <item>A soft exception (#BP, #OF) or soft interrupt pushes the RIP it was queued at: no instruction is decoded
/// or skipped (vmx.c vmx_inject_exception / vmx_inject_irq with event_exit_inst_len 0; this host does the same,
/// see HostDeviations.KvmPvmQueuedSoftEventsKeepRip).</item>
/// </list>
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>arch/x86/include/asm/trapnr.h X86_TRAP_NMI.</summary>
    private const int NMI_VECTOR = 2;

    /// <summary>arch/x86/kvm/x86.h exception_type(): EXCPT_FAULT unless #DB/#BP/#OF (trap) or #DF/#MC (abort).</summary>
    private static bool IsFaultType(int vector) => vector is not (DB_VECTOR or BP_VECTOR or OF_VECTOR or DF_VECTOR or 18);

    /// <summary>kvm_exception_is_soft: #BP and #OF.</summary>
    private static bool IsSoftException(int vector) => vector is BP_VECTOR or OF_VECTOR;

    /// <summary>
    /// A KVM_RUN that fails after the events were injected: x86.c vcpu_enter_guest calls kvm_check_and_inject_events
    /// before kvm_mmu_reload, and when that fails (ENOSPC: the shadow MMU of a VM that never had a memslot) "goto
    /// cancel_injection" — kvm_x86_ops.cancel_injection (svm.c svm_cancel_injection → svm_complete_interrupts) puts
    /// the one event that was in event_inj back as injected. What stays of the injection: svm_inject_nmi's nmi_masked,
    /// a pending NMI taken (nmi_pending - 1, nmi_injected), a pending exception now injected with RF (faults), DR7.GD
    /// (#DB) and its payload delivered; a soft exception (#BP, #OF) or soft interrupt is dropped (svm_inject_exception
    /// / svm_inject_irq return early when svm_update_soft_interrupt_rip cannot decode the instruction at RIP — there
    /// is no memory — so event_inj stays empty and nothing is requeued; interrupt.soft reads 0, the vector is kept).
    /// An event behind the injected one is left as it was, as this host does (upstream svm_complete_interrupts clears
    /// nmi_injected and the interrupt queue first; not modelled — the emulator kept them before this was modelled, and
    /// this host gets to its results another way: pvm.c's pvm_inject_* deliver at injection, pvm_cancel_injection does
    /// nothing). Probed on Linux 6.18 kvm_pvm (C, a VM without
    /// memslots, KVM_RUN → ENOSPC, then KVM_GET_VCPU_EVENTS): nmi_injected → masked 1; KVM_NMI ×1/×2 → injected 1,
    /// pending 0/1, masked 1; #MC pending → injected; #MC pending + nmi_injected, or + an injected interrupt → #MC
    /// injected, the other kept; interrupt injected + KVM_NMI, #GP injected + KVM_NMI, KVM_NMI with shadow or masked →
    /// unchanged; #BP/#OF injected or INJECT_BP pending, soft interrupt 0x40 → gone (+ KVM_NMI: still pending). Found by
    /// the differential fuzzer's interrupt ops (an injected NMI read masked after KVM_RUN on the host only).
    /// </summary>
    public void InjectThenCancel()
    {
        var s = _cpu.State;
        s.ProcessNmi();
        // "if (kvm_check_request(KVM_REQ_EVENT, vcpu) || req_int_win ...)": without it nothing is injected. The
        // request is consumed; svm_complete_interrupts makes it again only when it requeues an event (exit_int_info
        // valid) — not after a dropped soft event or when nothing was injected (probed: INJECT_BP + KVM_NMI, two failing
        // KVM_RUNs: the NMI stays pending through both).
        if (!s.EventRequested) return;
        s.EventRequested = Requeue(s);
    }

    /// <summary>
    /// x86.c kvm_inject_exception: "vcpu->arch.exception.has_error_code &amp;= is_protmode(vcpu)" — real-mode exceptions
    /// push no error code, so the queued exception loses it (the error code itself stays) whenever it is injected,
    /// also by a KVM_RUN that fails after injecting. Found by the differential fuzzer (seed 5 at 50 000 ops: a #OF with
    /// an error code from KVM_SET_VCPU_EVENTS, a failed KVM_RUN, then has_error_code 0 on the host).
    /// </summary>
    private void SuppressRealModeErrorCode(VcpuState s)
    {
        if ((_cpu.Sregs.cr0 & CR0_PE) == 0) s.ExceptionHasErrorCode = false;
    }

    /// <summary>The injection <see cref="InjectThenCancel"/> undoes; true when an event was requeued.</summary>
    private bool Requeue(VcpuState s)
    {
        if (s.ExceptionInjected)
        {
            SuppressRealModeErrorCode(s);
            if (!IsSoftException(s.ExceptionVector)) return true;
            s.ExceptionInjected = false;
            return false;
        }
        if (s.ExceptionPending)
        {
            if (IsFaultType(s.ExceptionVector)) _cpu.Rflags |= RFLAGS_RF;
            if (s.ExceptionVector == DB_VECTOR && (s.Dr7 & (1UL << 13)) != 0) s.Dr7 &= ~(1UL << 13);
            DeliverExceptionPayload(_cpu);
            SuppressRealModeErrorCode(s);
            s.ExceptionPending = false;
            s.ExceptionInjected = !IsSoftException(s.ExceptionVector);
            return s.ExceptionInjected;
        }
        if (s.NmiInjected)
        {
            s.NmiMasked = true;
            return true;
        }
        if (s.InterruptInjected)
        {
            if (!s.InterruptSoft) return true;
            s.InterruptInjected = s.InterruptSoft = false;
            return false;
        }
        if (s.NmiPending > 0 && !s.NmiMasked && s.InterruptShadow == 0)
        {
            s.NmiPending--;
            s.NmiInjected = true;
            s.NmiMasked = true;
            return true;
        }
        return false;
    }

    /// <summary>
    /// x86.c kvm_check_and_inject_events for a vCPU without nested state, SMM or an interrupt controller: re-inject an
    /// injected exception, else (nothing if an exception is pending but none injected) an injected NMI, else an
    /// injected interrupt; then a pending exception; then, if nothing was delivered, a pending NMI when
    /// nmi_allowed. Returns the outcome of the delivery (a triple fault or a failed access ends the run).
    /// </summary>
    public StepOutcome DeliverQueuedEvents()
    {
        var s = _cpu.State;
        // vcpu_enter_guest → kvm_check_and_inject_events is preceded by process_nmi (KVM_REQ_NMI).
        s.ProcessNmi();
        _fetchedLength = 0; // event_exit_inst_len: no instruction length is known for a queued event
        GuestFault? ev = null;
        bool nmi = false, exception = false;
        if (s.ExceptionInjected)
        {
            // "if (vcpu->arch.exception.injected) kvm_inject_exception(vcpu);" — as queued: no RF, no payload.
            SuppressRealModeErrorCode(s);
            ev = QueuedException(s);
            exception = true;
        }
        else if (s.ExceptionPending)
        {
            // "see above": a pending exception wins over a re-injected NMI or interrupt.
            // "if (exception_type(vector) == EXCPT_FAULT) __kvm_set_rflags(vcpu, rflags | X86_EFLAGS_RF);"
            if (IsFaultType(s.ExceptionVector)) _cpu.Rflags |= RFLAGS_RF;
            if (s.ExceptionVector == DB_VECTOR && (s.Dr7 & (1UL << 13)) != 0) s.Dr7 &= ~(1UL << 13); // DR7_GD
            // svm_inject_exception → kvm_deliver_exception_payload: CR2 (#PF) or DR6 (#DB) before delivery.
            DeliverExceptionPayload(_cpu);
            SuppressRealModeErrorCode(s);
            ev = QueuedException(s);
            exception = true;
        }
        else if (s.NmiInjected)
        {
            // "else if (vcpu->arch.nmi_injected) inject_nmi(vcpu)"; svm_inject_nmi: svm->nmi_masked = true.
            ev = new GuestFault(NMI_VECTOR) { Queued = true, External = true };
            nmi = true;
        }
        else if (s.InterruptInjected)
        {
            // "else if (vcpu->arch.interrupt.injected) inject_irq(vcpu, true)": whatever IF and the shadow say.
            ev = new GuestFault(s.InterruptNr, software: s.InterruptSoft) { Queued = true, External = !s.InterruptSoft };
        }
        else if (s.NmiPending > 0 && !s.NmiMasked && s.InterruptShadow == 0)
        {
            // "if (vcpu->arch.nmi_pending) { r = can_inject ? nmi_allowed(vcpu, true) … --nmi_pending;
            // nmi_injected = true; inject_nmi(vcpu); }" — svm_nmi_blocked: the shadow or nmi_masked blocks.
            s.NmiPending--;
            ev = new GuestFault(NMI_VECTOR) { Queued = true, External = true };
            nmi = true;
        }
        if (ev is null) return StepOutcome.Continue;
        // inject_nmi / inject_irq count the event as they hand it to the CPU (exceptions are not counted).
        if (!exception) CountInjection(nmi);

        // The event leaves the queue as the CPU takes it (svm_complete_interrupts finds no vectoring event): after
        // the run it reads as neither injected nor pending, vector and error code kept (kvm_clear_exception_queue).
        if (exception) s.ExceptionInjected = s.ExceptionPending = false;
        else if (!nmi) s.InterruptInjected = false;
        if (nmi)
        {
            s.NmiInjected = false;
            s.NmiMasked = true;
        }
        // Delivering an event ends the interrupt shadow.
        s.InterruptShadow = 0;
        // The first VM entry (kvm_vcpu_has_run) freezes the CPUID table.
        _cpu.Cpuid.HasRun = true;
        return DeliverException(ev);
    }

    /// <summary>
    /// A fault raised by a guest instruction passes through vcpu->arch.exception on this host (kvm_pvm intercepts
    /// every exception and re-injects it: kvm_queue_exception_e / kvm_inject_page_fault → kvm_multiple_exception sets
    /// vector, has_error_code, error_code and the payload, and delivery consumes the payload), so KVM_GET_VCPU_EVENTS
    /// afterwards reads its vector and error code with has_payload and payload 0. See
    /// HostDeviations.KvmPvmGuestExceptionsPassThroughQueue. INT n / INT3 do not (not intercepted).
    /// </summary>
    private GuestFault QueueGuestFault(GuestFault f)
    {
        if (f.Software || f.Queued) return f;
        var s = _cpu.State;
        s.ExceptionVector = (byte)f.Vector;
        s.ExceptionHasErrorCode = PushesErrorCode(f);
        s.ExceptionErrorCode = s.ExceptionHasErrorCode ? (uint)f.ErrorCode : 0;
        s.ExceptionHasPayload = false;
        s.ExceptionPayload = 0;
        return f;
    }

    private static GuestFault QueuedException(VcpuState s) =>
        new(s.ExceptionVector, (int)s.ExceptionErrorCode, software: IsSoftException(s.ExceptionVector))
        {
            Queued = true,
            ErrorCodeValid = s.ExceptionHasErrorCode,
        };

    /// <summary>
    /// x86.c kvm_deliver_exception_payload: #DB → DR6 (trap bits replaced; active-low bits flipped; bit 12 clear),
    /// #PF → CR2; then has_payload = false, payload = 0. Other vectors only drop the payload.
    /// </summary>
    internal static void DeliverExceptionPayload(X86Cpu cpu)
    {
        const ulong DrTrapBits = 0xf;
        var s = cpu.State;
        if (!s.ExceptionHasPayload) return;
        switch (s.ExceptionVector)
        {
            case DB_VECTOR:
                s.Dr6 &= ~DrTrapBits;
                s.Dr6 |= VcpuState.Dr6ActiveLow;
                s.Dr6 |= s.ExceptionPayload;
                s.Dr6 ^= s.ExceptionPayload & VcpuState.Dr6ActiveLow;
                s.Dr6 &= ~(1UL << 12);
                break;
            case PF_VECTOR:
                cpu.Sregs.cr2 = s.ExceptionPayload;
                break;
        }
        s.ExceptionHasPayload = false;
        s.ExceptionPayload = 0;
    }
}
