// SPDX-License-Identifier: MIT
// Host deviations in exception and event delivery: IDT gates, the event queue, real-mode interrupts.
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
    /// <summary>
    /// kvm_pvm (software nested KVM): a not-present IDT gate for a benign exception gives #DF with error code 0, not
    /// the #NP the CPU raises (Intel SDM Vol. 3A 6.12.1, 6.13: #NP, error code vector*8 + IDT(2) + EXT(1), delivered
    /// serially after a benign exception — Table 6-5). Observed on Linux 6.18 kvm_pvm (IdtGuest, all 32 gates present
    /// except #UD): UD2 → #DF, error 0, saved RIP at the UD2, RFLAGS image 0x10002. Where the SDM itself asks for #DF
    /// the host agrees: #UD and #NP not present → #DF(0); #PF with the IDT limit below vector 14 → #DF(0), CR2 kept;
    /// #UD, #NP and #DF not present → KVM_EXIT_SHUTDOWN.
    /// </summary>
    public static bool KvmPvmNotPresentGateIsDoubleFault(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): every exception a guest instruction raises passes through KVM's exception queue
    /// (kvm_queue_exception_e / kvm_inject_page_fault → kvm_multiple_exception), so KVM_GET_VCPU_EVENTS after the run
    /// reads its vector, has_error_code and error_code, with has_payload and payload 0 (consumed at delivery).
    /// Upstream SVM/VMX only do that for intercepted vectors (e.g. #UD, #PF under shadow paging); a #GP or #DE is
    /// delivered by the CPU and leaves the queue's fields alone. Observed on Linux 6.18 kvm_pvm (IdtGuest, events set
    /// beforehand to nr 5, error_code 0x99, payload 0xdead000): UD2 → nr 6 / 0 / 0; a non-canonical read → nr 13 / 1 /
    /// 0; a write to a not-present page → nr 14 / 1 / 2; #DF raised while delivering an injected event leaves the
    /// injected vector. The emulator, having no intercept set of its own, does as this host
    /// (Emulate/X86Emulator.Events.cs QueueGuestFault).
    /// </summary>
    public static bool KvmPvmGuestExceptionsPassThroughQueue(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a soft interrupt (interrupt.soft) or soft exception (#BP, #OF) queued with
    /// KVM_SET_VCPU_EVENTS is delivered with the RIP it was queued at pushed — nothing is decoded or skipped, and the
    /// instruction there need not be an INT n. Upstream SVM (svm_update_soft_interrupt_rip) decodes the instruction
    /// at RIP with EMULTYPE_SKIP_SOFT_INT and pushes the RIP after it (dropping the event when that fails); upstream
    /// VMX pushes RIP + event_exit_inst_len, 0 for an event userspace queued — what this host does. Observed on Linux
    /// 6.18 kvm_pvm: soft interrupt 0x20 at a NOP and at <c>int 0x21</c>, and an injected #BP at a NOP and at an
    /// INT3: the handler of the queued vector sees RIP 0x100000. The emulator does the same.
    /// </summary>
    public static bool KvmPvmQueuedSoftEventsKeepRip(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): the event queue is looked at when KVM_RUN enters the guest, and no event window
    /// is opened inside the run: a pending NMI blocked at entry (NMIs masked, an interrupt shadow, or an injected
    /// exception delivered first) stays pending until the next KVM_RUN, even after an IRET unmasked NMIs or the
    /// shadow ended. Upstream enable_nmi_window (IRET interception / single-step over the shadow) and the
    /// req_immediate_exit of kvm_check_and_inject_events deliver it as soon as the block ends. Observed on Linux 6.18
    /// kvm_pvm: nmi_pending 2 with an IRETQ-ing handler → one NMI, then HLT with nmi_pending 1, nmi_masked 0; the next
    /// KVM_RUN delivers it at the RIP after the HLT; a pending NMI with shadow STI or MOV_SS, or behind an injected #GP,
    /// the same. Two events queued as injected at once (an NMI or exception and an interrupt; no KVM exit produces
    /// that) differ again: the host delivers the second one at the guest's next HLT without exiting — not modelled.
    /// The emulator evaluates the queue once per KVM_RUN, as this host does. Seen again by the differential fuzzer's
    /// interrupt guests (src/KvmSharp.Fuzzing/TinyGuestRun.Interrupts.cs, which therefore makes no KVM_INTERRUPT while an
    /// exception is queued and no KVM_X86_SET_MCE while an interrupt is): a #MC pending from KVM_X86_SET_MCE plus
    /// KVM_INTERRUPT 5, one KVM_RUN → the host halts in vector 5's handler (both delivered, the second at the #MC
    /// handler's HLT), the emulator in vector 18's with vector 5 still injected. Why: kvm_pvm's pvm.c delivers an event
    /// at injection time (pvm_inject_exception / pvm_inject_irq / pvm_inject_nmi → do_pvm_event, "Always inject ...
    /// directly and consume the event"; pvm_cancel_injection does nothing) and opens no event windows.
    /// </summary>
    public static bool KvmPvmPendingEventsWaitForNextRun(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): exception delivery does not check that the IDT gate's code segment is present. A
    /// #UD at CPL 0 through a gate whose selector names a not-present ring-0 code segment (GDT entry 0x48) reaches the
    /// gate's handler — vector 6, frame RIP on the UD2, CS 0x08 — where the CPU raises #NP(0x48 | EXT) (Intel SDM Vol.
    /// 3A 6.12.1.1, 6.13). Observed on Linux 6.18 kvm_pvm
    /// (RingTransitionFaults.ring_fault_delivery_on_a_bad_rsp0_or_an_absent_handler_segment). The rest of the gate's
    /// code segment is used as upstream: a gate to the DPL-3 segment 0x33 runs the handler at CPL 3 on the user stack
    /// (ring_fault_exception_to_a_ring_3_handler_stays_on_the_user_stack), and a non-canonical TSS.RSP0 is #SS, then
    /// #DF through IST1.
    /// </summary>
    public static bool KvmPvmGateSelectorNotChecked(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) runs real mode through KVM's instruction emulator, whose __emulate_int_real has
    /// no IVT limit check ("TODO: Add limit checks"): INT n and real-mode exceptions read the 4-byte entry at
    /// IDTR.base + 4n whatever IDTR.limit says (upstream on AMD/Intel hardware: SDM Vol. 2A INT n REAL-ADDRESS-MODE —
    /// an entry beyond the limit is #GP, escalating to #DF and a shutdown). Observed on Linux 6.18 kvm_pvm (C probe):
    /// <c>int 0x21</c> with IDTR.limit 0, 0x20, 0x37 or 0x86 goes to IVT[0x21]; a #GP (word at DS:0xFFFF) with limit 0
    /// to IVT[13].
    /// </summary>
    public static bool KvmPvmRealModeIgnoresIvtLimit(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a real-mode <c>int n</c> with n ≥ 0x80 never completes — KVM_RUN runs until a
    /// signal (-EINTR, KVM_EXIT_INTR) with IP still on the INT and nothing pushed; 0x00–0x7F are delivered (upstream:
    /// every vector goes through the IVT). Observed on Linux 6.18 kvm_pvm (C probe): <c>int 0x80</c>, <c>int 0x81</c>,
    /// <c>int 0xff</c> spin, <c>int 0x7f</c> reaches IVT[0x7f]; an entry also written at linear 0xFFFFFE00 (a slot at
    /// 4 GiB − 4 KiB, where a sign-extended vector would point) did not help.
    /// </summary>
    public static bool KvmPvmRealModeHighSoftwareInterruptsSpin(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a page fault raised while an event's frame is pushed (RSP on an unmapped page)
    /// loads no CR2, and pushing an exception's frame it is #DF(0) at once. The CPU loads CR2 for each page fault it
    /// detects (Intel SDM Vol. 3A 4.7, 6.15 Interrupt 14) and delivers a #PF raised while delivering a benign or
    /// contributory event serially (Table 6-5); upstream KVM delivers the first event with its payload
    /// (svm_inject_exception → kvm_deliver_exception_payload) and merges a second #PF into #DF
    /// (kvm_multiple_exception), so CR2 is on the unmapped stack page. Observed on Linux 6.18 kvm_pvm
    /// (PageWalkAndFrameCases, IdtGuest with 48 halting gates, TSS.IST1 on a mapped stack, CR2 0x12345000 from
    /// KVM_SET_SREGS; 2026-12-07):
    /// <list type="bullet">
    /// <item>MOV RSP, 0x40001000; UD2 (or a #GP store to a non-canonical address): #DF gate on IST1 → one delivery, #DF
    /// error 0, RIP on the faulting instruction, RSP 0x40001000, CR2 0x12345000; #PF gate on IST1 (none for #DF) →
    /// KVM_EXIT_SHUTDOWN, nothing delivered, CR2 0x12345000 (the SDM: #PF error 2 delivered on IST1); no IST →
    /// KVM_EXIT_SHUTDOWN, CR2 0x12345000.</item>
    /// <item>KVM_INTERRUPT 0x21 with RSP 0x40001000: #PF gate on IST1 → #PF error 2, RIP on the interrupted HLT, CR2
    /// 0x12345000; #DF gate on IST1 → #DF(0), CR2 0x12345000; no IST → KVM_EXIT_SHUTDOWN, CR2 0x12345000 — the SDM's
    /// vectors, without CR2.</item>
    /// <item>A store to the unmapped 0x50000000 (CR2 loaded with it) on that stack: #DF on IST1 / KVM_EXIT_SHUTDOWN /
    /// #PF on IST1, CR2 0x50000000 each time, as upstream.</item>
    /// </list>
    /// INT n cannot be tried: it fails on its own (KvmPvmSoftwareInterruptsFail). The emulator models all of this with
    /// EmulatorConfig.X86FramePushFaultLeavesCr2, on in its LikeThisHost preset only (X86/Emulate/X86Emulator.Exceptions.cs).
    /// </summary>
    public static bool KvmPvmDoubleFaultFromAFramePushLeavesCr2(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
