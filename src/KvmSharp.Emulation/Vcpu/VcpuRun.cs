// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Emulation.X86;

namespace KvmSharp.Emulation.Vcpu;

/// <summary>arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_run → vcpu_run, with the emulator in the role of VM entry.</summary>
internal static class VcpuRun
{

    public static long Run(KvmVcpu vcpu)
    {
        var kernel = vcpu.Kvm.Kernel;
        kernel.EnterRun(vcpu);
        vcpu.EnterRun();
        try
        {
            return RunLocked(vcpu);
        }
        finally
        {
            // The exit that ends KVM_RUN: kvm_lapic_sync_from_vapic's PV EOI half (X86/PvEoi.cs).
            PvEoi.SyncFromGuest(vcpu);
            vcpu.LeaveRun();
            kernel.LeaveRun(vcpu);
            // post_kvm_run_save.
            // With an in-kernel APIC, kvm_get_cr8 is kvm_lapic_get_cr8 (TPR bits 7:4); "ready_for_interrupt_injection =
            // pic_in_kernel(vcpu->kvm) || kvm_vcpu_ready_for_interrupt_injection(vcpu)".
            ulong cr8 = vcpu.Lapic is { } apic ? apic.Cr8 : vcpu.Cpu.Sregs.cr8;
            vcpu.Run.SaveState((vcpu.Cpu.Rflags & X86Consts.RFLAGS_IF) != 0, cr8, vcpu.Cpu.Sregs.apic_base,
                vcpu.Kvm.Irqchip.Full || InterruptIoctls.ReadyForInterruptInjection(vcpu));
        }
    }

    /// <summary>
    /// kvm_dirty_ring_check_request: sets KVM_EXIT_DIRTY_RING_FULL while the ring stays soft full (x86 vcpu_enter_guest,
    /// arm64 check_vcpu_requests: Arm64Run).
    /// </summary>
    internal static bool DirtyRingFull(KvmVcpu vcpu)
    {
        // The request is only ever made by this vCPU's own pushes: no lock to look at it.
        if (vcpu.DirtyRing is not { SoftFullRequested: true } ring) return false;
        bool full;
        lock (vcpu.Kvm.Kernel.SyncRoot) full = ring.CheckRequest();
        if (full) vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_DIRTY_RING_FULL;
        return full;
    }

    private static long RunLocked(KvmVcpu vcpu)
    {
        var emulator = vcpu.Emulator;
        // "if (unlikely(vcpu->arch.mp_state == KVM_MP_STATE_UNINITIALIZED)) { if (!vcpu->wants_to_run) { r = -EINTR;
        // goto out; } kvm_vcpu_block(vcpu); if (kvm_apic_accept_events(vcpu) < 0) …; r = -EAGAIN; if
        // (signal_pending(current)) { r = -EINTR; kvm_run->exit_reason = KVM_EXIT_INTR; ++vcpu->stat.signal_exits; }
        // goto out; }" — before anything else (probed: immediate_exit leaves exit_reason as it was; a signal ends the
        // wait with KVM_EXIT_INTR).
        if (vcpu.Lapic is not null && vcpu.Cpu.State.MpState == Abi.KvmMpState.KVM_MP_STATE_UNINITIALIZED)
        {
            if (vcpu.Run.ImmediateExit) return Err.EINTR;
            WaitUntilRunnable(vcpu);
            X86.Irqchip.ApicEvents.Accept(vcpu);
            if (!vcpu.SignalPending) return Err.EAGAIN;
            vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_INTR;
            VcpuStatCounting.SignalExit(vcpu);
            return Err.EINTR;
        }
        // "sync_valid_fields = kvm_sync_valid_fields(vcpu->kvm); if ((kvm_run->kvm_valid_regs & ~sync_valid_fields) ||
        // (kvm_run->kvm_dirty_regs & ~sync_valid_fields)) { r = -EINVAL; goto out; }" — kvm_sync_valid_fields is 0 on
        // a VM with protected state ("KVM: x86: Don't allow KVM_RUN with sync regs for protected guests"), else
        // KVM_SYNC_X86_VALID_FIELDS (REGS | SREGS | EVENTS). The sync itself (sync_regs / store_regs) is not modelled.
        ulong syncValid = vcpu.Kvm.ArchState.HasProtectedState ? 0 : 0x7UL;
        if (((vcpu.Run.KvmValidRegs | vcpu.Run.KvmDirtyRegs) & ~syncValid) != 0) return Err.EINVAL;
        // "re-sync apic's tpr: if (!lapic_in_kernel(vcpu)) { if (kvm_set_cr8(vcpu, kvm_run->cr8) != 0) r = -EINVAL; }"
        // before anything else, even with immediate_exit set (the emulator has no in-kernel APIC); CR8_RESERVED_BITS
        // is ~0xf. Found by the differential fuzzer: a CR8 set with KVM_SET_SREGS survived KVM_RUN, while the kernel
        // replaces it with kvm_run->cr8 (tests/KvmSharp.Fuzzing.Tests/FoundDivergenceTests.cs).
        // With an in-kernel local APIC the TPR is the kernel's and kvm_run->cr8 is not read.
        if (vcpu.Lapic is null)
        {
            ulong cr8 = vcpu.Run.Cr8;
            if ((cr8 & ~0xfUL) != 0) return Err.EINVAL;
            vcpu.Cpu.Sregs.cr8 = cr8;
        }
        // complete_hypercall_exit is a complete_userspace_io callback too: RAX = run->hypercall.ret, skip the VMCALL.
        if (emulator.HasPendingHypercall) emulator.CompleteHypercall();
        // complete_fast_rdmsr / complete_fast_msr_access: a KVM_EXIT_X86_RDMSR/WRMSR's answer (X86Emulator.UserSpaceMsr.cs).
        if (emulator.HasPendingMsrExit) emulator.CompleteMsrExit();
        // A TD's TDG.VP.VMCALL that went to userspace (vmx/tdx.c's complete_userspace_io callbacks, X86Emulator.Tdcall.cs):
        // MapGPA's next chunk exits again before the guest runs ("if (r <= 0) goto out").
        if (emulator.HasPendingTdVmcall && emulator.CompleteTdVmcall()) return 0;
        // An SEV-ES/SNP VMGEXIT that went to userspace (svm/sev.c's complete_userspace_io callbacks, X86Emulator.SevEs.cs).
        if (emulator.HasPendingVmgexit && emulator.CompleteVmgexit()) return emulator.TakeVmgexitCompletionRc();
        // "if (vcpu->arch.complete_userspace_io) { r = cui(vcpu); if (r <= 0) goto out; }": the IN or MMIO read
        // that exited is finished with userspace's data before anything else, even with immediate_exit set.
        // complete_emulated_mmio for a write wider than 8 bytes (an INS batch): the next piece exits (X86Emulator.StringIo.cs).
        if (emulator.NextMmioWritePiece()) return 0;
        if (emulator.HasPendingCompletion)
        {
            emulator.CaptureCompletion();
            var done = emulator.Step();
            if (done.Exit) return done.Rc;
        }
        // "if (!vcpu->wants_to_run) { r = -EINTR; goto out; }" — exit_reason is left as it was.
        if (vcpu.Run.ImmediateExit) return Err.EINTR;
        // "r = kvm_x86_call(vcpu_pre_run)(vcpu); if (r <= 0) goto out;" — tdx_vcpu_pre_run: -EINVAL before
        // KVM_TDX_FINALIZE_VM or KVM_TDX_INIT_VCPU (Arch/X86/TdxLaunch.cs).
        long preRun = Arch.TdxLaunch.PreRun(vcpu);
        if (preRun != 0) return preRun;
        // svm_vcpu_pre_run: -EINVAL for an SEV VM before KVM_SEV_INIT2 (Arch/X86/SevLaunch.cs).
        preRun = Arch.SevLaunch.PreRun(vcpu);
        if (preRun != 0) return preRun;
        // vcpu_run: "if (kvm_vcpu_running(vcpu)) r = vcpu_enter_guest(vcpu); else r = vcpu_block(vcpu);".
        if (Block(vcpu) is long blocked) return blocked;
        if (EnterProtectedGuest(vcpu) is long refused) return refused;
        // vcpu_enter_guest's requests: kvm_dirty_ring_check_request right after KVM_REQ_VM_DEAD, before the others.
        if (DirtyRingFull(vcpu)) return 0;
        // vcpu_enter_guest: KVM_REQ_MASTERCLOCK_UPDATE, then KVM_REQ_CLOCK_UPDATE, before kvm_mmu_reload (X86/KvmClockMsrs.cs).
        KvmClockMsrs.OnEnterGuest(vcpu);
        // "if (kvm_check_request(KVM_REQ_TRIPLE_FAULT, vcpu)) { vcpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
        // vcpu->mmio_needed = 0; r = 0; goto out; }" — the state stays as it was, so a later KVM_RUN goes on.
        if (vcpu.Cpu.State.TripleFaultRequested)
        {
            vcpu.Cpu.State.TripleFaultRequested = false;
            vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_SHUTDOWN;
            return 0;
        }
        // vcpu_enter_guest: KVM_REQ_STEAL_UPDATE, which kvm_arch_vcpu_load makes for every KVM_RUN (X86/KvmStealTime.cs).
        KvmStealTime.OnEnterGuest(vcpu);
        // vcpu_enter_guest: KVM_REQ_IOAPIC_EOI_EXIT (a split irqchip's EOI, X86Emulator.Apic.cs), before the events.
        if (emulator.TakeIoapicEoiExit()) return 0;
        emulator.ScanIoapicIfRequested();
        // vcpu_enter_guest: KVM_REQ_APF_READY → kvm_check_async_pf_completion (X86/KvmAsyncPf.cs).
        KvmAsyncPf.ServeRequest(vcpu);
        // Shadow paging (no TDP, like this host): kvm_mmu_load → make_mmu_pages_available fails while
        // n_max_mmu_pages is still 0, i.e. before the VM's first memslot was created (observed: ENOSPC).
        // The events are injected before (kvm_check_and_inject_events) and the injection cancelled after
        // (cancel_injection): X86Emulator.InjectThenCancel.
        if (!vcpu.Kvm.Kernel.Config.TdpEnabled && !vcpu.Kvm.MmuPagesAvailable)
        {
            emulator.InjectThenCancel();
            return Err.ENOSPC;
        }
        // vcpu_enter_guest → kvm_check_and_inject_events: the queued events, once per KVM_RUN (X86Emulator.Events.cs).
        if (emulator.DeliverQueuedEvents() is { Exit: true } injected)
        {
            VcpuStatCounting.GuestStopped(vcpu, injected.Rc);
            return injected.Rc;
        }
        // dm_request_for_irq_injection: kvm_run->request_interrupt_window, no in-kernel PIC. vcpu_enter_guest then
        // opens the interrupt window (enable_irq_window: VINTR / interrupt-window exiting), so the guest exits at the
        // first instruction boundary where it can take an interrupt, and vcpu_run ends the run there:
        // "if (dm_request_for_irq_injection(vcpu) && kvm_vcpu_ready_for_interrupt_injection(vcpu)) { r = 0;
        // vcpu->run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN; }" — before the first instruction when it already can.
        bool interruptWindow = vcpu.Run.RequestInterruptWindow;
        while (true)
        {
            // xfer_to_guest_mode_handle_work → kvm_handle_signal_exit: KVM_EXIT_INTR, -EINTR.
            if (vcpu.SignalPending)
            {
                vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_INTR;
                VcpuStatCounting.SignalExit(vcpu);
                return Err.EINTR;
            }
            // The next vcpu_enter_guest after the write fault that filled the dirty ring to its soft limit exits with
            // KVM_EXIT_DIRTY_RING_FULL (arch/x86/kvm/x86.c). The emulator completes the writing instruction first: RIP
            // is after it, where hardware would still be on it (the fault exits before the write is retried).
            if (DirtyRingFull(vcpu)) return 0;
            // The next vcpu_enter_guest after a split irqchip's EOI: KVM_EXIT_IOAPIC_EOI, RIP after the EOI's instruction.
            if (emulator.TakeIoapicEoiExit()) return 0;
            emulator.ScanIoapicIfRequested();
            // The first VM entry makes kvm_vcpu_has_run() true (last_vmentry_cpu), which freezes the CPUID table.
            vcpu.Cpu.Cpuid.HasRun = true;
            if (interruptWindow && InterruptIoctls.ReadyForInterruptInjection(vcpu))
            {
                vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_IRQ_WINDOW_OPEN;
                VcpuStatCounting.InterruptWindowOpen(vcpu);
                return 0;
            }
            // vcpu_run: "if (kvm_cpu_has_pending_timer(vcpu)) kvm_inject_pending_timer_irqs(vcpu)" — an expired APIC
            // timer puts LVTT's vector in IRR (X86/Irqchip/Lapic.cs FireTimerIfDue).
            if (vcpu.Lapic is { TimerDue: true } timerApic) timerApic.FireTimerIfDue((vcpu.Cpu.Sregs.apic_base & (1UL << 11)) != 0);
            // i8254.c pit_timer_fn → pit_do_work on the kvm-pit kthread: channel 0's expiries raise IRQ0 (PIC and IOAPIC
            // pin 0). The emulator has no such thread: the PIT is polled at each instruction boundary (X86/Irqchip/I8254.Irq.cs).
            vcpu.Kvm.Pit?.Poll(vcpu.Kvm);
            // kvm_check_and_inject_events with an in-kernel local APIC: an accepted interrupt the guest can take now is
            // delivered at this instruction boundary (X86/Irqchip/ApicInjection.cs).
            if (X86.Irqchip.ApicInjection.TryQueue(vcpu) && emulator.DeliverQueuedEvents() is { Exit: true } apicEvent)
            {
                VcpuStatCounting.GuestStopped(vcpu, apicEvent.Rc);
                return apicEvent.Rc;
            }
            vcpu.PollQuiesce();
            // vcpu_enter_guest: KVM_REQ_VM_DEAD (another vCPU's kvm_vm_dead, KvmMain/Kvm.cs MarkDead) → -EIO.
            if (vcpu.Kvm.VmDead) return Err.EIO;
            var outcome = emulator.Step();
            if (outcome.Exit)
            {
                VcpuStatCounting.GuestStopped(vcpu, outcome.Rc);
                return outcome.Rc;
            }
            // A HLT with an in-kernel APIC (__kvm_emulate_halt: mp_state = HALTED, no exit), or an INIT taken while
            // running (KVM_REQ_EVENT → kvm_apic_accept_events at the next vcpu_enter_guest): the vCPU blocks, then
            // vcpu_enter_guest injects what woke it (kvm_check_and_inject_events).
            if (vcpu.Lapic is not null
                && (vcpu.Cpu.State.MpState != Abi.KvmMpState.KVM_MP_STATE_RUNNABLE || X86.Irqchip.ApicEvents.HasPendingInitOrSipi(vcpu)))
            {
                if (Block(vcpu) is long halted) return halted;
                if (EnterProtectedGuest(vcpu) is long noEntry) return noEntry;
                if (emulator.DeliverQueuedEvents() is { Exit: true } woke)
                {
                    VcpuStatCounting.GuestStopped(vcpu, woke.Rc);
                    return woke.Rc;
                }
            }
        }
    }

    /// <summary>
    /// x86.c vcpu_block: "if (!kvm_arch_vcpu_runnable(vcpu)) { … if (vcpu->arch.mp_state == KVM_MP_STATE_HALTED)
    /// kvm_vcpu_halt(vcpu); else kvm_vcpu_block(vcpu); … }" — a HALTED vCPU polls before it sleeps
    /// (KvmMain/HaltPolling.cs), one waiting for INIT/SIPI just sleeps. Both end at kvm_vcpu_check_block: the vCPU is
    /// runnable (ApicEvents.Runnable; an INIT_RECEIVED vCPU only by INIT or SIPI) or a signal is pending.
    /// </summary>
    private static void WaitUntilRunnable(KvmVcpu vcpu)
    {
        // "if (!kvm_arch_vcpu_runnable(vcpu))" (a pending signal is no reason not to halt: kvm_vcpu_check_block ends it).
        FireDueTimers(vcpu);
        if (vcpu.Kvm.VmDead || Wakes(vcpu)) return;
        Func<bool> check = () => CheckBlock(vcpu), signalled = () => vcpu.SignalPending;
        Func<long> due = () => NextTimerDue(vcpu);
        if (vcpu.Cpu.State.MpState == Abi.KvmMpState.KVM_MP_STATE_HALTED) HaltPolling.Halt(vcpu, check, signalled, nextDue: due);
        else HaltPolling.Block(vcpu, check, signalled, due);
    }

    /// <summary>
    /// When a timer next wakes the blocked vCPU (a Stopwatch timestamp, long.MaxValue for none): the LAPIC timer's or
    /// TSC deadline's hrtimer (lapic.c apic_timer_fn → apic_timer_expired → kvm_vcpu_kick) and the PIT's next tick
    /// (i8254.c pit_timer_fn → pit_do_work → kvm_set_irq, which kicks the vCPU IRQ0 reaches; the emulator's PIT is
    /// polled by the vCPUs, FireDueTimers, so a tick wakes every blocked one to look).
    /// </summary>
    private static long NextTimerDue(KvmVcpu vcpu)
    {
        long due = long.MaxValue;
        if (vcpu.Lapic?.TimerExpiryNs is >= 0 and var apicNs) due = HaltPolling.KtimeToTimestamp(apicNs);
        if (vcpu.Kvm.Pit?.NextExpiryNs is long pitNs) due = Math.Min(due, HaltPolling.KtimeToTimestamp(pitNs));
        return due;
    }

    /// <summary>kvm_vcpu_check_block for an x86 vCPU with an in-kernel APIC: true when the wait ends.</summary>
    private static bool CheckBlock(KvmVcpu vcpu)
    {
        FireDueTimers(vcpu);
        return vcpu.SignalPending || vcpu.Kvm.VmDead || Wakes(vcpu);
    }

    private static void FireDueTimers(KvmVcpu vcpu)
    {
        // kvm_vcpu_check_block: "if (kvm_cpu_has_pending_timer(vcpu)) goto out" — the expired timer's interrupt is
        // injected (vcpu_run) and wakes the vCPU when the guest can take it.
        if (vcpu.Lapic is { TimerDue: true } apic) apic.FireTimerIfDue((vcpu.Cpu.Sregs.apic_base & (1UL << 11)) != 0);
        // A PIT tick (pit_do_work → kvm_set_irq) kicks the vCPU its IRQ0 reaches; polled while asleep as above.
        vcpu.Kvm.Pit?.Poll(vcpu.Kvm);
    }

    /// <summary>
    /// vcpu_enter_guest for an SEV-ES/SNP vCPU: KVM_REQ_UPDATE_PROTECTED_GUEST_STATE (an SNP AP creation: kvm_vcpu_reset(vcpu,
    /// true), then "if (vcpu->arch.mp_state != KVM_MP_STATE_RUNNABLE) { r = 1; goto out; }" — vcpu_run blocks it), then
    /// the entry's sev_es_unmap_ghcb and pre_sev_run (X86/Emulate/X86Emulator.GhcbApCreation.cs, GhcbApResetHold.cs).
    /// </summary>
    private static long? EnterProtectedGuest(KvmVcpu vcpu)
    {
        var emulator = vcpu.Emulator;
        while (emulator.TakeProtectedGuestStateUpdate())
        {
            X86.Irqchip.ApicEvents.InitReset(vcpu);
            if (Block(vcpu) is long blocked) return blocked;
        }
        return emulator.SevEsPreRun();
    }

    private static bool Wakes(KvmVcpu vcpu) =>
        vcpu.Cpu.State.MpState == Abi.KvmMpState.KVM_MP_STATE_INIT_RECEIVED
            ? X86.Irqchip.ApicEvents.HasPendingInitOrSipi(vcpu)
            : X86.Irqchip.ApicEvents.Runnable(vcpu);

    /// <summary>
    /// x86.c vcpu_block for a vCPU with an in-kernel APIC that is not running, looped as vcpu_run does: wait, then
    /// kvm_apic_accept_events; HALTED and AP_RESET_HOLD become RUNNABLE (pv_unhalted cleared), INIT_RECEIVED waits
    /// for its SIPI. A signal that ends the wait is xfer_to_guest_mode_handle_work's -EINTR with KVM_EXIT_INTR (probed:
    /// mp_state stays HALTED). Null when the vCPU is running.
    /// </summary>
    private static long? Block(KvmVcpu vcpu)
    {
        if (vcpu.Lapic is null) return null;
        // The HLT (or INIT) that stopped the vCPU was a VM exit: kvm_lapic_sync_from_vapic first (X86/PvEoi.cs).
        PvEoi.SyncFromGuest(vcpu);
        var s = vcpu.Cpu.State;
        if (X86.Irqchip.ApicEvents.HasPendingInitOrSipi(vcpu)) X86.Irqchip.ApicEvents.Accept(vcpu);
        while (s.MpState != Abi.KvmMpState.KVM_MP_STATE_RUNNABLE)
        {
            WaitUntilRunnable(vcpu);
            // kvm_vcpu_check_block: a pending request (KVM_REQ_VM_DEAD) ends the wait; vcpu_run then answers -EIO.
            if (vcpu.Kvm.VmDead) return Err.EIO;
            if (Wakes(vcpu))
            {
                X86.Irqchip.ApicEvents.Accept(vcpu);
                if (s.MpState is Abi.KvmMpState.KVM_MP_STATE_HALTED or Abi.KvmMpState.KVM_MP_STATE_AP_RESET_HOLD)
                {
                    s.PvUnhalted = false;
                    s.MpState = Abi.KvmMpState.KVM_MP_STATE_RUNNABLE;
                }
            }
            if (vcpu.SignalPending)
            {
                vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_INTR;
                VcpuStatCounting.SignalExit(vcpu);
                return Err.EINTR;
            }
        }
        return null;
    }
}
