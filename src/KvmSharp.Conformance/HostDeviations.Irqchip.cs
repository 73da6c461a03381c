// SPDX-License-Identifier: MIT
// Host deviations in the in-kernel irqchip: local APIC, IOAPIC EOIs, APIC timer, interrupt windows.
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
    /// <summary>
    /// kvm_pvm (software nested KVM): an interrupt its in-kernel local APIC delivers to the guest never shows in ISR —
    /// IRR loses the vector, ISR and PPR stay 0 as if it had been EOI'd at once — and the next accepted vector waits
    /// for the next KVM_RUN (<see cref="KvmPvmPendingEventsWaitForNextRun"/>). Upstream kvm_get_apic_interrupt moves the
    /// vector from IRR to ISR (apic_set_isr, __apic_update_ppr), so a lower or equal priority class waits for the
    /// guest's EOI. Observed on Linux 6.18 kvm_pvm (Conformance/Cases/LapicDelivery.cs): APIC 0 software-enabled by
    /// KVM_SET_LAPIC, KVM_SIGNAL_MSI of vectors 0x21 then 0x2E (both answer 1), KVM_RUN with RFLAGS.IF set, the handler
    /// IRETQs without EOI, the guest OUTs: vector 0x2E delivered; KVM_GET_LAPIC then has IRR 0x21 only, ISR empty,
    /// PPR 0 (upstream, the emulator: ISR 0x2E, PPR 0x20); the second KVM_RUN delivers 0x21 at entry (upstream: never
    /// before an EOI); with the guest's EOI written to 0xFEE000B0 (handled in the kernel: no MMIO exit on either) 0x21
    /// still waits for the next KVM_RUN. The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmDeliveredApicVectorNotInService(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): kvm_run.request_interrupt_window opens no interrupt window at once. Upstream's
    /// enable_irq_window (svm_set_vintr / interrupt-window exiting) makes the guest exit at the first instruction
    /// boundary where it can take an interrupt, and vcpu_run then returns KVM_EXIT_IRQ_WINDOW_OPEN — before the first
    /// instruction when RFLAGS.IF is set and nothing blocks. This host exits only at a later exit it handles itself.
    /// Observed on Linux 6.18 kvm_pvm (C probes, real mode, IF = 1, nothing queued): nop; nop; nop; hlt ends in
    /// KVM_EXIT_HLT after the three NOPs (5 runs of 5); a loop "inc cx; jmp" ends in KVM_EXIT_IRQ_WINDOW_OPEN with RIP
    /// on the loop's head and CX = 512 in 15 runs of 20, 0 in 4, 8 in 1 (so sometimes as upstream); "jmp $" ends in it
    /// with RIP on the loop. IF = 0 then STI; NOP; NOP; NOP; HLT: KVM_EXIT_HLT, and the run after it went on past the
    /// HLT. Where the exit comes, ready_for_interrupt_injection and if_flag are 1, as upstream. The emulator exits at
    /// the first interruptible boundary, as upstream. The differential fuzzer asks for the window only in guests that
    /// run with RFLAGS.IF clear up to a final <c>sti; nop; spin: jmp spin</c>, where the late exit looks the same as
    /// upstream's (src/KvmSharp.Fuzzing/TinyGuestRun.Interrupts.cs).
    /// </summary>
    public static bool KvmPvmLateIrqWindowExit(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): the in-kernel IOAPIC sees the EOI of a level-triggered vector when the vector is
    /// delivered to the guest, not when the guest writes the APIC's EOI register — so a resampling irqfd's resampler
    /// (virt/kvm/eventfd.c irqfd_resampler_ack) de-asserts the line and signals its resamplefds at delivery, and the
    /// guest's EOI does nothing (the vector was never in ISR, <see cref="KvmPvmDeliveredApicVectorNotInService"/>).
    /// Upstream the IOAPIC learns of the EOI only from the guest's EOI write (lapic.c apic_set_eoi →
    /// kvm_ioapic_send_eoi → ioapic.c kvm_ioapic_update_eoi_one: kvm_notify_acked_irq, remote IRR cleared, re-delivery
    /// of a line still high). Observed on Linux 6.18 kvm_pvm (Conformance/Cases/IrqfdResample.cs and a probe case):
    /// IOAPIC pin 20 level-triggered to vector 0x40 on APIC 0, a resampling irqfd on GSI 20 signalled → irr 0x100000,
    /// entry 0xC040 (remote IRR), vector 0x40 in IRR and TMR; the KVM_RUN that delivers it (the guest then OUTs before
    /// its EOI) returns with the resamplefd at 1, irr 0, entry 0x8040, ISR empty; the next KVM_RUN, which writes
    /// 0xFEE000B0, leaves the resamplefd at 0 (upstream and the emulator: 0 after the first run with irr 0x100000 and
    /// remote IRR, 1 after the EOI). With KVM_IRQ_LINE holding GSI 20 high as well, each KVM_RUN delivers it once and
    /// signals the resamplefd once (the ack re-services the still-high line into IRR for the next run); upstream and
    /// the emulator deliver it again within the run right after the guest's EOI. The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmLevelEoiAtDelivery(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): an APIC timer that expired while LVTT was masked (or before it was unmasked)
    /// is injected only at the next KVM_RUN, not when the guest's unmasking write returns. Upstream every exit the
    /// kernel handles goes back through vcpu_run's loop, where "if (kvm_cpu_has_pending_timer(vcpu))
    /// kvm_inject_pending_timer_irqs(vcpu)" (x86.c) puts LVTT's vector in IRR and, in TSC-deadline mode, clears
    /// lapic_timer.tscdeadline (lapic.c kvm_apic_inject_pending_timer_irqs). Observed on Linux 6.18 kvm_pvm
    /// (Conformance/Cases/X2Apic.cs tsc_deadline_msr_reads_back_and_clears, a 64-bit guest in x2APIC mode, RFLAGS.IF
    /// clear): LVTT 0x50050 (TSC-deadline, masked), WRMSR IA32_TSC_DEADLINE = 1 (already passed), RDMSR → 1 (as
    /// upstream: masked, not injected); WRMSR LVTT 0x40050 (unmasked), RDMSR IA32_TSC_DEADLINE → 1 (upstream 0) and
    /// KVM_GET_LAPIC shows IRR without 0x50; after the guest's OUT exit and one more KVM_RUN, RDMSR → 0 and IRR has
    /// 0x50. Same family as <see cref="KvmPvmPendingEventsWaitForNextRun"/>. The emulator injects at the next
    /// instruction boundary, as upstream.
    /// </summary>
    public static bool KvmPvmExpiredTimerInjectedAtNextRun(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): like a level-triggered vector (<see cref="KvmPvmLevelEoiAtDelivery"/>), an
    /// edge-triggered IOAPIC vector the IOAPIC handles — its pin has an ack notifier, so kvm_ioapic_scan_entry puts the
    /// vector in ioapic_handled_vectors — is acknowledged when it is delivered to the guest, not at the guest's EOI.
    /// Upstream the EOI write runs lapic.c apic_set_eoi → kvm_ioapic_send_eoi → ioapic.c kvm_ioapic_update_eoi_one,
    /// whose kvm_notify_acked_irq reaches the GSI's irqfd resampler for an edge EOI too. Observed on Linux 6.18
    /// kvm_pvm (Conformance/Cases/GuestProgrammedIrqchip.cs guest_programmed_ioapic_delivers_an_irq_line): the guest
    /// writes IOAPIC pin 20 edge-triggered to vector 0x40 on APIC 0 through IOREGSEL/IOWIN, a resampling irqfd on GSI
    /// 20 is signalled; the KVM_RUN that delivers 0x40 (the guest OUTs before its xAPIC EOI) returns with the
    /// resamplefd at 1 and irr 0, and the next KVM_RUN, which writes 0xFEE000B0, leaves it at 0 (upstream and the
    /// emulator: 0 after the delivery, 1 after the EOI). The PIC's EOI (OCW2, i8259.c pic_clear_isr) is acknowledged
    /// at the guest's OCW2 on both kernels. The ack at delivery keeps upstream's directed-EOI rule for a level vector:
    /// with SPIV bit 12 (set by KVM_SET_LAPIC) remote IRR stays after the delivery and after the guest's EOI; with
    /// KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST it is already clear after the delivery (GuestProgrammedIrqchip
    /// directed_eoi_leaves_remote_irr_for_the_guest). The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmHandledEdgeEoiAtDelivery(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): with a split irqchip (KVM_CAP_SPLIT_IRQCHIP), the KVM_EXIT_IOAPIC_EOI of a vector
    /// the userspace IOAPIC handles comes from the vector's delivery, not from the guest's EOI — like the in-kernel
    /// IOAPIC's ack (<see cref="KvmPvmLevelEoiAtDelivery"/>): the request is made when the vector is delivered, so the
    /// exit ends the KVM_RUN after the one that delivered it, with RIP wherever the handler stopped before its EOI, and
    /// the guest's EOI write (the vector never in ISR, <see cref="KvmPvmDeliveredApicVectorNotInService"/>) makes none.
    /// Upstream lapic.c apic_set_eoi → kvm_ioapic_send_eoi sets pending_ioapic_eoi and KVM_REQ_IOAPIC_EOI_EXIT at the
    /// guest's EOI write, and the next vcpu_enter_guest exits with RIP after that write. Which vectors exit is
    /// upstream's (irq.c kvm_scan_ioapic_routes; lapic.c kvm_lapic_suppress_eoi_broadcast). Observed on Linux 6.18
    /// kvm_pvm (C probe /tmp/eoiexit/probe.c, real mode, x2APIC; and Conformance/Cases/SplitIrqchipEoi.cs): split
    /// irqchip with 24 reserved pins, MSI routes GSI 5 → vector 0x40 level, GSI 6 → 0x41 edge, GSI 30 → 0x42 level; the
    /// handler OUTs to 0x11, writes MSR 0x80B (EOI) at 0x200E, OUTs to 0x12. KVM_IRQ_LINE on GSI 5: OUT 0x11 (RIP
    /// 0x2002), then KVM_EXIT_IOAPIC_EOI eoi.vector 0x40 with RIP 0x2002 — before the WRMSR ran (upstream and the
    /// emulator: RIP 0x2010, after it) — then OUT 0x12; GSI 6 and GSI 30: no such exit; KVM_SIGNAL_MSI of vector 0x40
    /// edge: the exit too (ioapic_handled_vectors is by vector); after KVM_SET_GSI_ROUTING makes GSI 5 edge: none, and
    /// back to level: again; SPIV's directed-EOI bit: still the exit by default (quirked), none with
    /// KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST. A host EOI (KVM_SET_LAPIC with 0x40 in ISR, KVM_SET_MSRS of 0x80B) is
    /// upstream's: the next KVM_RUN exits with vector 0x40 before the guest runs, also after KVM_SET_GSI_ROUTING made
    /// the route edge without an entry in between (the last scan's bitmap). The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmSplitIrqchipEoiExitAtDelivery(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
