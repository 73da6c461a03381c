// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl_run with <see cref="A64Interpreter"/> in the role of guest entry, and
/// handle_exit for the exits it produces. Signals (IKernel.KickThread) and immediate_exit behave as on x86. With
/// KVM_GUESTDBG_SINGLESTEP each instruction ends the run with a software step exit (<see cref="Arm64SingleStep"/>);
/// the host's breakpoints, watchpoints and BRK routing are <see cref="Arm64HostDebug"/>.
/// </summary>
internal static class Arm64Run
{
    public static long Run(KvmVcpu vcpu, Arm64VcpuState state)
    {
        var kernel = vcpu.Kvm.Kernel;
        kernel.EnterRun(vcpu);
        vcpu.EnterRun();
        try
        {
            return RunLocked(vcpu, state);
        }
        finally
        {
            Arm64SingleStep.LeavingRun(state);
            vcpu.LeaveRun();
            kernel.LeaveRun(vcpu);
        }
    }

    private static long RunLocked(KvmVcpu vcpu, Arm64VcpuState state)
    {
        var run = vcpu.Run;
        // kvm_main.c kvm_vcpu_ioctl KVM_RUN: "vcpu->run->flags = 0" (Arm64SingleStep.ClearRunFlags).
        Arm64SingleStep.ClearRunFlags(vcpu, state);
        // "if (run->exit_reason == KVM_EXIT_MMIO) { ret = kvm_handle_mmio_return(vcpu); … }": before immediate_exit.
        if (run.ExitReason == (uint)KvmExitReason.KVM_EXIT_MMIO) CompleteMmio(vcpu, state);
        // "if (!vcpu->wants_to_run) { ret = -EINTR; goto out; }" — exit_reason is left as it was.
        if (run.ImmediateExit) return Err.EINTR;
        run.ExitReason = (uint)KvmExitReason.KVM_EXIT_UNKNOWN;
        while (true)
        {
            // xfer_to_guest_mode_handle_work → kvm_handle_signal_exit: KVM_EXIT_INTR, -EINTR.
            if (vcpu.SignalPending)
            {
                run.ExitReason = (uint)KvmExitReason.KVM_EXIT_INTR;
                Arm64VcpuStats.SignalExit(vcpu);
                return Err.EINTR;
            }
            // check_vcpu_requests → KVM_REQ_SLEEP: a stopped vCPU sleeps until it is made runnable (PSCI CPU_ON from
            // another vCPU: kvm_vcpu_wake_up) or signalled.
            if (state.Stopped)
            {
                WaitForSignal(vcpu, state);
                continue;
            }
            // check_vcpu_requests → KVM_REQ_VCPU_RESET (a CPU_ON): kvm_reset_vcpu, then reset_state's PC and x0.
            ApplyPendingReset(vcpu, state);
            // check_vcpu_requests → KVM_REQ_SUSPEND → arm.c kvm_vcpu_suspend (KVM_SET_MP_STATE SUSPENDED): kvm_vcpu_wfi;
            // "The suspend state is sticky" (mp_state stays SUSPENDED until userspace makes the vCPU RUNNABLE); "if
            // (kvm_arch_vcpu_runnable(vcpu)) { memset(&vcpu->run->system_event, 0, …); type = KVM_SYSTEM_EVENT_WAKEUP;
            // exit_reason = KVM_EXIT_SYSTEM_EVENT; return 0; }" — a vGIC interrupt (the timers' included) ends the
            // wait with that exit; a signal ends it with KVM_EXIT_INTR (above).
            if (state.MpState == KvmMpState.KVM_MP_STATE_SUSPENDED)
            {
                if (WaitForInterrupt(vcpu, state))
                {
                    WriteSystemEvent(vcpu, KvmArm64Constants.KVM_SYSTEM_EVENT_WAKEUP, ndata: 0, flags: 0);
                    return 0;
                }
                continue;
            }
            // check_vcpu_requests (arm.c): "if (kvm_dirty_ring_check_request(vcpu)) return 0;" — the push that reached
            // the soft limit (a write fault, or a read fault without the bitmap: Stage2Access) ends the run before the
            // next entry, and every KVM_RUN does so again until a reset brings the ring below it.
            if (Vcpu.VcpuRun.DirtyRingFull(vcpu)) return 0;
            vcpu.PollQuiesce();
            long? rc = Enter(vcpu, state);
            if (rc is long r) return r;
        }
    }

    /// <summary>One guest instruction and its exit handling; a value ends KVM_RUN with it.</summary>
    private static long? Enter(KvmVcpu vcpu, Arm64VcpuState state)
    {
        var run = vcpu.Run;
        // debug.c kvm_arm_setup_debug: single-stepping with DBG_SS_ACTIVE_PENDING (or a PC KVM advanced since the last
        // step) enters with PSTATE.SS = 0 — the step exception comes before any instruction runs.
        bool stepping = Arm64SingleStep.IsStepping(state);
        if (stepping && Arm64SingleStep.ExitIfActivePending(vcpu, state))
        {
            Arm64VcpuStats.Exit(vcpu); // the step exception, before any instruction: an exit (kvm_handle_guest_debug)
            return 0;
        }
        // Guest entry with an interrupt the vGIC signals: the vCPU takes the IRQ (Group 1, PSTATE.I clear) or FIQ
        // (Group 0, PSTATE.F clear) exception first (the list registers KVM fills in vgic_flush_lr_state, as the
        // hardware presents them).
        var interp = state.Interpreter;
        // kvm_pmu_flush_hwstate → kvm_pmu_update_state: the PMU overflow line follows the counters.
        if (state.Cpu.HasPmu) Arm64PmuCounters.UpdateIrq(vcpu, state);
        if (!interp.IrqMasked || !interp.FiqMasked)
        {
            switch (Vgic.VgicDelivery.Line(vcpu, state.Cpu))
            {
                case Vgic.VgicLine.Irq when !interp.IrqMasked:
                    interp.TakeIrq();
                    // Taking the IRQ clears PSTATE.SS (Arm ARM D2.12): stepping, the step exception comes at the vector.
                    if (stepping)
                    {
                        Arm64SingleStep.Exit(vcpu, state, stepped: false, exclusive: false);
                        Arm64VcpuStats.Exit(vcpu);
                        return 0;
                    }
                    break;
                case Vgic.VgicLine.Fiq when !interp.FiqMasked:
                    interp.TakeFiq();
                    if (stepping)
                    {
                        Arm64SingleStep.Exit(vcpu, state, stepped: false, exclusive: false);
                        Arm64VcpuStats.Exit(vcpu);
                        return 0;
                    }
                    break;
            }
        }
        // The host's hardware breakpoints (KVM_GUESTDBG_USE_HW, Arm64HostDebug): a match on the instruction about to
        // run is a Breakpoint exception to EL2 (MDCR_EL2.TDE) before it executes — handle_exit.c kvm_handle_guest_debug,
        // EC 0x30, PC unchanged. It comes after an active-pending step (above) and applies to the IRQ vector's first
        // instruction when an interrupt was just taken; a misaligned PC takes its PC alignment fault first.
        if (interp.HostDebug is { } hostDebug)
        {
            ulong pc = state.Cpu.Pc;
            if ((pc & 3) == 0 && hostDebug.BreakpointAt(pc, state.Cpu.AtEl0))
            {
                Arm64SingleStep.DebugExit(vcpu, state, Arm64HostDebug.BreakpointEsr, far: null);
                Arm64VcpuStats.Exit(vcpu);
                return 0;
            }
        }
        try
        {
            A64Outcome outcome;
            if (stepping)
            {
                outcome = interp.StepTracked(out bool tookException);
                if (outcome == A64Outcome.Continue)
                {
                    // The instruction completed (ISV = 1, EX for a Load-Exclusive) or took an exception to EL1 (the
                    // step exception at the vector, ISV = 0): handle_exit.c kvm_handle_guest_debug.
                    Arm64SingleStep.Exit(vcpu, state, stepped: !tookException,
                        exclusive: !tookException && Arm64SingleStep.IsLoadExclusive(interp.LastInstruction));
                    Arm64VcpuStats.Exit(vcpu);
                    return 0;
                }
                // HVC (SPSR_EL2.SS = 0 for an exception-generating instruction: kvm_arm_clear_debug marks
                // DBG_SS_ACTIVE_PENDING), SMC and WFI (kvm_incr_pc → __kvm_skip_instr clears PSTATE.SS): the step
                // exception comes at the next entry, after KVM (or userspace) has handled the instruction.
                if (outcome == A64Outcome.Hvc) Arm64SingleStep.ExceptionGenerating(state);
                else Arm64SingleStep.SkippedByKvm(state);
            }
            else
            {
                outcome = interp.Step();
                // The next instructions run from here, not through RunLocked and a new Enter, while those would go
                // straight through to Step (NextEntryIsPlain: every check they make before it, none of them taken).
                Arm64VmState? vm = null;
                while (outcome == A64Outcome.Continue && NextEntryIsPlain(vcpu, state, interp, ref vm))
                {
                    vcpu.PollQuiesce();
                    outcome = interp.Step();
                }
            }
            switch (outcome)
            {
                case A64Outcome.Hvc:
                    Arm64VcpuStats.HvcExit(vcpu);
                    return HandleHvc(vcpu, state, smc: false);
                case A64Outcome.Smc:
                    // handle_smc: "kvm_incr_pc(vcpu)" first ("pre-incrementing the PC before potentially exiting to
                    // userspace maintains the same abstraction for both SMCs and HVCs"); "SMCs with a nonzero
                    // immediate are reserved according to DEN0028E 2.9": x0 = ~0, nothing else. No statistic but exits.
                    Arm64VcpuStats.Exit(vcpu);
                    state.Cpu.SkipInstruction();
                    if (state.Interpreter.ExceptionImm16 != 0)
                    {
                        state.Cpu.X[0] = ulong.MaxValue;
                        return null;
                    }
                    return HandleHvc(vcpu, state, smc: true);
                case A64Outcome.Wfi:
                    Arm64VcpuStats.WfiExit(vcpu);
                    _ = WaitForInterrupt(vcpu, state);
                    return null;
                default:
                    return null;
            }
        }
        catch (MmioStop m)
        {
            // io_mem_abort: a write kvm_io_bus_write(KVM_MMIO_BUS) takes (an ioeventfd) is handled in the kernel:
            // kvm_handle_mmio_return steps over the store, no exit.
            if (m.Syndrome.IsWrite && vcpu.Kvm.IoBus.Write(KvmMain.KvmBus.Mmio, vcpu, m.Syndrome.Ipa, m.Syndrome.Length, m.Syndrome.WriteData))
            {
                HandledInKernel(run, m.Syndrome, readData: default);
                Arm64VcpuStats.MmioExit(vcpu, inKernel: true);
                state.Cpu.SkipInstruction();
                Arm64SingleStep.SkippedByKvm(state);
                return null;
            }
            // io_mem_abort: a read kvm_io_bus_read takes (the vGIC's frames) completes in the kernel too:
            // kvm_handle_mmio_return loads Rt (sign-extended / truncated as for userspace data) and steps over it.
            if (!m.Syndrome.IsWrite)
            {
                byte[] rd = new byte[m.Syndrome.Length];
                if (vcpu.Kvm.IoBus.Read(KvmMain.KvmBus.Mmio, vcpu, m.Syndrome.Ipa, rd))
                {
                    HandledInKernel(run, m.Syndrome, rd);
                    Arm64VcpuStats.MmioExit(vcpu, inKernel: true);
                    ulong v = A64Interpreter.ReadLittleEndian(rd);
                    state.Cpu.SetReg(m.Syndrome.Rt, A64Interpreter.Extend(v, m.Syndrome.Length, m.Syndrome.SignExtend, m.Syndrome.Sf));
                    state.Cpu.SkipInstruction();
                    Arm64SingleStep.SkippedByKvm(state);
                    return null;
                }
            }
            // io_mem_abort: run->mmio.{is_write, phys_addr, len}, "if (is_write) memcpy(run->mmio.data, data_buf, len)";
            // vcpu->mmio_needed = 1. A read leaves run->mmio.data as it was (the last in-kernel read's bytes, or
            // userspace's last answer) for userspace to overwrite.
            Arm64VcpuStats.MmioExit(vcpu, inKernel: false);
            byte[] data = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(data, m.Syndrome.WriteData);
            run.SetMmioExit(m.Syndrome.Ipa, data.AsSpan(0, m.Syndrome.Length), m.Syndrome.Length, m.Syndrome.IsWrite);
            state.PendingMmio = m.Syndrome;
            return 0;
        }
        catch (HostDebugStop d)
        {
            // A watchpoint (EC 0x34, far = the watched address) or a BRK (EC 0x3C, ISS = imm16) routed to EL2 by
            // MDCR_EL2.TDE: handle_exit.c kvm_handle_guest_debug; the instruction has not executed, PC unchanged.
            Arm64SingleStep.DebugExit(vcpu, state, d.Esr, d.Far);
            Arm64VcpuStats.Exit(vcpu);
            return 0;
        }
        catch (NisvStop n)
        {
            // mmio.c io_mem_abort without ISV: "if (test_bit(KVM_ARCH_FLAG_RETURN_NISV_IO_ABORT_TO_USER, …)) {
            // run->exit_reason = KVM_EXIT_ARM_NISV; run->arm_nisv.esr_iss = kvm_vcpu_dabt_iss_nisv_sanitized(vcpu);
            // run->arm_nisv.fault_ipa = fault_ipa; return 0; } return -ENOSYS;". fault_ipa carries the page offset
            // (mmu.c kvm_handle_guest_abort: "ipa |= FAR_TO_FIPA_OFFSET(kvm_vcpu_get_hfar(vcpu))"). The PC stays at
            // the instruction: userspace emulates it or injects an abort.
            Arm64VcpuStats.Exit(vcpu);
            if (!Arm64VmState.Of(vcpu.Kvm).ReturnNisvIoAbortToUser) return -(long)Kernel.Errno.ENOSYS;
            run.SetArmNisvExit(n.EsrIss, n.Ipa);
            return 0;
        }
        catch (RunErrorStop e)
        {
            Arm64VcpuStats.Exit(vcpu); // the stage-2 abort exited the guest; kvm_handle_guest_abort fails the run
            if (e.MemoryFaultExit)
                run.SetMemoryFault(e.Ipa & ~((ulong)EmulatorConfig.PageSize - 1), (ulong)EmulatorConfig.PageSize, false, e.Userfault);
            return e.Errno;
        }
        catch (UnsupportedInstructionStop u)
        {
            // Emulator-only exit (real hardware would execute the instruction): KVM_EXIT_INTERNAL_ERROR with
            // suberror KVM_INTERNAL_ERROR_EMULATION and the four instruction bytes; PC stays at the instruction.
            byte[] bytes = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, u.Instruction);
            run.SetEmulationFailure(bytes);
            return 0;
        }
    }

    /// <summary>
    /// True when the next pass of RunLocked and Enter would do nothing but PollQuiesce and Step: no signal, the vCPU
    /// RUNNABLE (not stopped, not suspended), no CPU_ON reset pending, no dirty-ring request, not single-stepping, no
    /// PMU to update, no interrupt line to look at (IRQ and FIQ masked, or no vGIC initialised, where
    /// VgicDelivery.Line answers None without looking at anything else) and no host breakpoints. Each is read as
    /// RunLocked and Enter read it, before every instruction; anything else takes their full path.
    /// </summary>
    private static bool NextEntryIsPlain(KvmVcpu vcpu, Arm64VcpuState state, A64Interpreter interp, ref Arm64VmState? vm) =>
        !vcpu.SignalPending && state.MpState == KvmMpState.KVM_MP_STATE_RUNNABLE && state.PendingReset is null
        && vcpu.DirtyRing is not { SoftFullRequested: true } && !Arm64SingleStep.IsStepping(state) && !state.Cpu.HasPmu
        && ((interp.IrqMasked && interp.FiqMasked) || !(vm ??= Arm64VmState.Of(vcpu.Kvm)).Vgic.Ready)
        && interp.HostDebug is null;

    /// <summary>
    /// mmio.c io_mem_abort after kvm_io_bus_write/kvm_io_bus_read took the access (an ioeventfd, the vGIC's frames):
    /// "/* Now prepare kvm_run for the potential return to userland. */ run->mmio.is_write = is_write;
    /// run->mmio.phys_addr = fault_ipa; run->mmio.len = len; … if (!ret) { if (!is_write) memcpy(run->mmio.data,
    /// data_buf, len); … kvm_handle_mmio_return(vcpu); return 1; }" — the fields hold the access although KVM_RUN does
    /// not exit for it; a write's data is copied only for a userspace exit, so run->mmio.data keeps its old bytes.
    /// exit_reason is not written.
    /// </summary>
    private static void HandledInKernel(KvmRunPage run, MmioSyndrome access, ReadOnlySpan<byte> readData)
    {
        uint exitReason = run.ExitReason;
        run.SetMmioExit(access.Ipa, ReadOnlySpan<byte>.Empty, access.Length, access.IsWrite);
        run.ExitReason = exitReason;
        if (!access.IsWrite) readData.CopyTo(run.MmioData(access.Length));
    }

    /// <summary>
    /// handle_hvc / handle_smc → kvm_smccc_call_handler (Smccc.cs): handled calls re-enter the guest, a forwarded one
    /// exits with KVM_EXIT_HYPERCALL, CPU_SUSPEND blocks like WFI, and a system event stops every vCPU of the VM
    /// (kvm_prepare_system_event).
    /// </summary>
    private static long? HandleHvc(KvmVcpu vcpu, Arm64VcpuState state, bool smc)
    {
        switch (Smccc.Call(vcpu, state, smc, out var systemEvent))
        {
            case HvcResult.Continue:
                return null;
            case HvcResult.UserExit:
                return 0;
            case HvcResult.Wfi:
                // psci.c kvm_psci_vcpu_suspend → kvm_vcpu_wfi: a pending interrupt (or a signal) resumes the guest
                // after the call (x0 = PSCI_RET_SUCCESS already set), no exit to userspace.
                _ = WaitForInterrupt(vcpu, state);
                return null;
            case HvcResult.SystemSuspend:
                // kvm_psci_system_suspend: "memset(&run->system_event, 0, …); type = KVM_SYSTEM_EVENT_SUSPEND" — ndata 0.
                WriteSystemEvent(vcpu, KvmArm64Constants.KVM_SYSTEM_EVENT_SUSPEND, ndata: 0, flags: 0);
                return 0;
        }
        lock (vcpu.Kvm.Kernel.SyncRoot)
        {
            foreach (var other in vcpu.Kvm.Vcpus) Arm64VcpuState.Of(other).Stopped = true;
        }
        WriteSystemEvent(vcpu, systemEvent.Type, ndata: 1, systemEvent.Flags);
        return 0;
    }

    /// <summary>
    /// kvm_reset_vcpu with vcpu->arch.reset_state.reset (KVM_REQ_VCPU_RESET of a PSCI CPU_ON): the vCPU is reset as
    /// by KVM_ARM_VCPU_INIT, then "*vcpu_pc(vcpu) = target_pc; vcpu_set_reg(vcpu, 0, reset_state.r0)".
    /// </summary>
    private static void ApplyPendingReset(KvmVcpu vcpu, Arm64VcpuState state)
    {
        // kvm_request_pending: a plain read first; the lock only when a request is there to take.
        if (state.PendingReset is null) return;
        Arm64ResetState? reset;
        lock (vcpu.Kvm.Kernel.SyncRoot)
        {
            reset = state.PendingReset;
            state.PendingReset = null;
        }
        if (reset is null) return;
        state.Cpu.Reset();
        state.PendingMmio = null;
        state.Cpu.Pc = reset.Pc;
        state.Cpu.X[0] = reset.R0;
    }

    /// <summary>
    /// kvm_prepare_system_event: memset(&amp;run->system_event, 0), type, ndata = 1, data[0] = flags (0, or
    /// KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2); SYSTEM_SUSPEND sets only the type (ndata 0). Written through the
    /// kvm_run memfd, the same page userspace has mapped.
    /// </summary>
    private static void WriteSystemEvent(KvmVcpu vcpu, uint type, uint ndata, ulong flags)
    {
        Span<byte> ev = stackalloc byte[8 + 16 * 8];
        ev.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(ev, type);
        BinaryPrimitives.WriteUInt32LittleEndian(ev[4..], ndata);
        BinaryPrimitives.WriteUInt64LittleEndian(ev[8..], flags);
        _ = HostMemory.Pwrite(vcpu.Run.MemfdFd, ev, KvmRunLayout.system_event_type);
        vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_SYSTEM_EVENT;
    }

    /// <summary>
    /// mmio.c kvm_handle_mmio_return: nothing pending → nothing to do; a read takes run->mmio.data (sign-extended if
    /// SSE, truncated to 32 bits without SF) into Rt; both advance PC past the instruction (kvm_incr_pc).
    /// </summary>
    private static void CompleteMmio(KvmVcpu vcpu, Arm64VcpuState state)
    {
        if (state.PendingMmio is not MmioSyndrome m) return;
        state.PendingMmio = null;
        if (!m.IsWrite)
        {
            ulong data = A64Interpreter.ReadLittleEndian(vcpu.Run.MmioData(m.Length));
            state.Cpu.SetReg(m.Rt, A64Interpreter.Extend(data, m.Length, m.SignExtend, m.Sf));
        }
        state.Cpu.SkipInstruction();
        // kvm_incr_pc: the skip "advances the singlestep state machine" (PSTATE.SS = 0): while stepping, the step
        // exception comes at the next entry, after the access.
        Arm64SingleStep.SkippedByKvm(state);
    }

    /// <summary>
    /// arm.c kvm_vcpu_wfi → kvm_vcpu_halt (WFI, PSCI CPU_SUSPEND, KVM_MP_STATE_SUSPENDED): polls, then sleeps, until a
    /// signal or kvm_arch_vcpu_runnable — a vGIC interrupt signalled to the vCPU (kvm_vgic_vcpu_pending_irq; the timers'
    /// PPIs included, whether or not PSTATE.I masks it). Halt polling and the statistics: KvmMain/HaltPolling.cs (arm64
    /// has no kvm_arch_no_poll: polling is always allowed). True when an interrupt ended the wait. The sleep ends when
    /// the virtual or physical timer starts to fire (arch_timer.c kvm_timer_blocking arms the background timer at the
    /// earliest of them, kvm_bg_timer_expire wakes the vCPU): Arm64Timer.DueTimestamp.
    /// </summary>
    private static bool WaitForInterrupt(KvmVcpu vcpu, Arm64VcpuState state)
    {
        // kvm_vcpu_wfi: "if (kvm_arch_vcpu_runnable(vcpu)) return;" — no halt, nothing counted.
        if (Vgic.VgicDelivery.Pending(vcpu, state.Cpu)) return true;
        var timer = state.Cpu.Timer;
        KvmMain.HaltPolling.Halt(vcpu, () => vcpu.SignalPending || Vgic.VgicDelivery.Pending(vcpu, state.Cpu), () => vcpu.SignalPending,
            nextDue: () => Math.Min(timer.DueTimestamp(timer.Virtual), timer.DueTimestamp(timer.Physical)));
        return Vgic.VgicDelivery.Pending(vcpu, state.Cpu);
    }

    /// <summary>
    /// A blocked vCPU (WFI, stopped): a signal ends the wait, like a task sleeping interruptibly; a stopped vCPU
    /// (<paramref name="stopped"/> given) also wakes when another vCPU's CPU_ON makes it runnable.
    /// </summary>
    private static void WaitForSignal(KvmVcpu vcpu, Arm64VcpuState? stopped = null)
    {
        while (!vcpu.SignalPending && (stopped is null || stopped.Stopped))
        {
            // Asleep, the vCPU touches no memory: answer invalidations so a munmap does not wait for a signal.
            vcpu.PollQuiesce();
            Thread.Sleep(1);
        }
    }
}
