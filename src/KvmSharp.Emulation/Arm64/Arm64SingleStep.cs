// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Host single-step of an arm64 vCPU (KVM_SET_GUEST_DEBUG with KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP), as
/// arch/arm64/kvm/debug.c drives the Arm software-step state machine (Arm ARM D2.12, "Software Step exceptions") and
/// handle_exit.c kvm_handle_guest_debug reports it:
/// <list type="bullet">
/// <item>kvm_arm_setup_debug, before each guest entry: MDSCR_EL1.SS set, and PSTATE.SS set ("active-not-pending": the
/// next instruction runs, then the step exception is taken) unless the vCPU is marked DBG_SS_ACTIVE_PENDING, when
/// PSTATE.SS is cleared and the step exception is taken before any instruction runs.</item>
/// <item>The step exception (EC 0x32, ESR_ELx_EC_SOFTSTP_LOW, routed to EL2 by MDCR_EL2.TDE) ends KVM_RUN with
/// KVM_EXIT_DEBUG: debug.arch.hsr/hsr_high = the ESR's low/high halves, run->flags |= KVM_DEBUG_ARCH_HSR_HIGH_VALID,
/// far untouched (written for watchpoints only), and DBG_SS_ACTIVE_PENDING cleared. The PC is not in the exit:
/// userspace reads it with KVM_GET_ONE_REG.</item>
/// <item>An instruction KVM completes for the guest — kvm_incr_pc sets INCREMENT_PC, and __kvm_adjust_pc →
/// kvm_skip_instr ("advance the singlestep state machine": PSTATE.SS cleared) runs in the world switch, after
/// kvm_arm_setup_debug set PSTATE.SS: an MMIO access, WFI, SMC — enters active-pending: the step exception comes at once,
/// at the instruction after it. When KVM_RUN returns before entering the guest (immediate_exit, a signal), arm.c commits
/// the adjustment on the way out ("commit these adjustments … to give userspace a consistent view"), outside the
/// stepping window: the next entry is active-not-pending and runs one instruction first. An exception-generating
/// instruction trapped to EL2 (HVC: SPSR_EL2.SS = 0) makes kvm_arm_clear_debug mark DBG_SS_ACTIVE_PENDING, which
/// lasts until the step exception is taken. An exception the
/// guest takes to EL1 (an abort, UNDEFINED, an interrupt) clears PSTATE.SS on entry too: the step exception comes before
/// the handler's first instruction, with PC = the vector.</item>
/// <item>An exit that does not complete the instruction (a data abort to userspace MMIO, a memory fault) leaves
/// PSTATE.SS set: the instruction runs again and steps when it completes.</item>
/// </list>
/// kvm_arm_clear_debug restores the PSTATE.SS the guest had (restore_guest_debug_regs), so KVM_GET_ONE_REG of PSTATE
/// never shows the host's stepping; the state is kept here, beside the vCPU, not in PSTATE.
/// Hardware breakpoints and watchpoints (KVM_GUESTDBG_USE_HW) and BRK routed to userspace are
/// <see cref="Arm64HostDebug"/>; they exit through <see cref="DebugExit"/>. A step and a breakpoint on the same
/// instruction: the breakpoint exception comes first and leaves PSTATE.SS set (the instruction did not run), so every
/// KVM_RUN stops at it again — arm64 has no "ignore the breakpoint once" flag (x86's RFLAGS.RF); a debugger removes the
/// breakpoint, steps, and puts it back. A step that is already pending (active-pending) is taken before the breakpoint
/// (Arm ARM D1.3.5: a Software Step exception has the highest priority).
/// </summary>
internal static class Arm64SingleStep
{
    /// <summary>asm/esr.h ESR_ELx_EC_SOFTSTP_LOW: a software step exception from a lower Exception level.</summary>
    public const uint EcSoftStepLow = 0x32;

    /// <summary>ESR_ELx.IL: a 32-bit instruction (set for every exception class without an instruction length).</summary>
    private const uint EsrIl = 1u << 25;

    /// <summary>Software step ISS (Arm ARM, ESR_EL2 "ISS encoding for an exception from a Software Step exception"): ISV, bit 24 — EX is valid.</summary>
    public const uint IssIsv = 1u << 24;

    /// <summary>Software step ISS: EX, bit 6 — the stepped instruction was a Load-Exclusive.</summary>
    public const uint IssEx = 1u << 6;

    /// <summary>Software step ISS: IFSC, bits [5:0] = 0b100010 (debug exception).</summary>
    public const uint IssIfscDebug = 0x22;

    /// <summary>arch/arm64/include/uapi/asm/kvm.h KVM_DEBUG_ARCH_HSR_HIGH_VALID: kvm_run.flags bit 0 of a debug exit.</summary>
    public const ushort KvmDebugArchHsrHighValid = 1;

    private const uint Stepping = KvmConstants.KVM_GUESTDBG_ENABLE | KvmConstants.KVM_GUESTDBG_SINGLESTEP;

    /// <summary>vcpu_get_flag(vcpu, DBG_SS_ACTIVE_PENDING), per vCPU (Arm64VcpuState holds no field for it).</summary>
    private sealed class StepState
    {
        public bool ActivePending;

        /// <summary>A kvm_incr_pc whose skip is still to be committed at the next guest entry (INCREMENT_PC).</summary>
        public bool SkipPending;

        /// <summary>kvm_run.flags holds KVM_DEBUG_ARCH_HSR_HIGH_VALID from a debug exit of this vCPU.</summary>
        public bool FlagsWritten;
    }

    private static readonly ConditionalWeakTable<Arm64VcpuState, StepState> States = [];

    /// <summary>True when KVM_SET_GUEST_DEBUG left ENABLE | SINGLESTEP in vcpu->guest_debug.</summary>
    public static bool IsStepping(Arm64VcpuState state) => (state.GuestDebug & Stepping) == Stepping;

    /// <summary>
    /// guest.c kvm_arch_vcpu_ioctl_set_guest_debug without KVM_GUESTDBG_ENABLE: "vcpu->guest_debug = 0;
    /// vcpu_clear_flag(vcpu, DBG_SS_ACTIVE_PENDING)".
    /// </summary>
    public static void Disabled(Arm64VcpuState state)
    {
        if (States.TryGetValue(state, out StepState? s))
        {
            s.ActivePending = false;
            s.SkipPending = false;
        }
    }

    /// <summary>
    /// kvm_incr_pc while stepping (an MMIO access completed, WFI, SMC): the skip, committed at the next guest entry
    /// after kvm_arm_setup_debug, clears PSTATE.SS — that entry takes the step exception before anything runs.
    /// </summary>
    public static void SkippedByKvm(Arm64VcpuState state)
    {
        if (IsStepping(state)) States.GetOrCreateValue(state).SkipPending = true;
    }

    /// <summary>
    /// An HVC trapped while stepping: SPSR_EL2.SS = 0 for an exception-generating instruction, so kvm_arm_clear_debug
    /// marks DBG_SS_ACTIVE_PENDING (until kvm_handle_guest_debug clears it).
    /// </summary>
    public static void ExceptionGenerating(Arm64VcpuState state)
    {
        if (IsStepping(state)) States.GetOrCreateValue(state).ActivePending = true;
    }

    /// <summary>
    /// KVM_RUN returns: a PC adjustment still pending is committed outside the stepping window (arm.c
    /// kvm_arch_vcpu_ioctl_run: "if (unlikely(… INCREMENT_PC)) kvm_call_hyp(__kvm_adjust_pc, vcpu)"), so it no longer
    /// makes the next entry active-pending.
    /// </summary>
    public static void LeavingRun(Arm64VcpuState state)
    {
        if (States.TryGetValue(state, out StepState? s)) s.SkipPending = false;
    }

    /// <summary>
    /// kvm_arm_setup_debug at guest entry with DBG_SS_ACTIVE_PENDING: PSTATE.SS = 0, the step exception is taken at
    /// once (no instruction stepped: ISV = 0). True when it ended the run (the exit is written).
    /// </summary>
    public static bool ExitIfActivePending(KvmVcpu vcpu, Arm64VcpuState state)
    {
        if (!States.TryGetValue(state, out StepState? s) || !(s.ActivePending || s.SkipPending)) return false;
        Exit(vcpu, state, stepped: false, exclusive: false);
        return true;
    }

    /// <summary>
    /// The step exception after one guest instruction: <paramref name="stepped"/> when it completed (ISV = 1, EX for a
    /// Load-Exclusive), false when it took an exception to EL1 instead (the handler's entry is active-pending: ISV = 0).
    /// </summary>
    public static void Exit(KvmVcpu vcpu, Arm64VcpuState state, bool stepped, bool exclusive)
    {
        uint esr = (EcSoftStepLow << 26) | EsrIl | IssIfscDebug | (stepped ? IssIsv | (exclusive ? IssEx : 0) : 0);
        // handle_exit.c kvm_handle_guest_debug: "… case ESR_ELx_EC_SOFTSTP_LOW: vcpu_clear_flag(vcpu,
        // DBG_SS_ACTIVE_PENDING)" (6.14+: "*vcpu_cpsr(vcpu) |= DBG_SPSR_SS", the same next entry).
        DebugExit(vcpu, state, esr, far: null);
        StepState s = States.GetOrCreateValue(state);
        s.ActivePending = false;
        s.SkipPending = false;
    }

    /// <summary>
    /// handle_exit.c kvm_handle_guest_debug for any debug exception class (a step, a hardware breakpoint, a watchpoint,
    /// a BRK: Arm64HostDebug): "run->exit_reason = KVM_EXIT_DEBUG; run->debug.arch.hsr = lower_32_bits(esr);
    /// run->debug.arch.hsr_high = upper_32_bits(esr); run->flags |= KVM_DEBUG_ARCH_HSR_HIGH_VALID; switch (ESR_ELx_EC(esr))
    /// { case ESR_ELx_EC_WATCHPT_LOW: run->debug.arch.far = vcpu->arch.fault.far_el2; … }" — far only for a
    /// watchpoint (<paramref name="far"/>), else left as it was. The step state machine is not touched: a breakpoint,
    /// watchpoint or BRK leaves the instruction unexecuted (SPSR_EL2.SS = 1), and it runs — and steps — on re-entry.
    /// </summary>
    public static void DebugExit(KvmVcpu vcpu, Arm64VcpuState state, uint esr, ulong? far)
    {
        Span<byte> hsr = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(hsr, esr);
        BinaryPrimitives.WriteUInt32LittleEndian(hsr[4..], 0);
        _ = HostMemory.Pwrite(vcpu.Run.MemfdFd, hsr, KvmRunLayout.debug_arch_exception);
        if (far is ulong f)
        {
            Span<byte> farBytes = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(farBytes, f);
            _ = HostMemory.Pwrite(vcpu.Run.MemfdFd, farBytes, Abi.Arm64.KvmArm64GuestDebug.kvm_run_debug_arch_far);
        }
        Span<byte> flags = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(flags, KvmDebugArchHsrHighValid);
        _ = HostMemory.Pwrite(vcpu.Run.MemfdFd, flags, KvmRunLayout.flags);
        vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_DEBUG;
        States.GetOrCreateValue(state).FlagsWritten = true;
    }

    /// <summary>
    /// kvm_main.c kvm_vcpu_ioctl KVM_RUN: "vcpu->run->flags = 0" before kvm_arch_vcpu_ioctl_run (6.14+: flags are
    /// cleared on every architecture; a debug exit's KVM_DEBUG_ARCH_HSR_HIGH_VALID does not outlive its exit). No other
    /// arm64 exit writes them, so they are cleared only after a debug exit wrote them.
    /// </summary>
    public static void ClearRunFlags(KvmVcpu vcpu, Arm64VcpuState state)
    {
        if (!States.TryGetValue(state, out StepState? s) || !s.FlagsWritten) return;
        s.FlagsWritten = false;
        Span<byte> zero = stackalloc byte[2];
        zero.Clear();
        _ = HostMemory.Pwrite(vcpu.Run.MemfdFd, zero, KvmRunLayout.flags);
    }

    /// <summary>
    /// A Load-Exclusive (Arm ARM C4.1.94 "Load/store exclusive and ordered": bits [29:23] = 0b0010000 — o2 = 0 — with
    /// L = 1: LDXR/LDAXR/LDXRB/LDXRH/LDAXRB/LDAXRH (o1 = 0) and LDXP/LDAXP (o1 = 1, size 1x); CASP/CASPA (o1 = 1, bit 31 = 0)
    /// are not exclusives).
    /// </summary>
    public static bool IsLoadExclusive(uint insn) =>
        (insn & 0x3FC0_0000u) == 0x0840_0000u && ((insn & (1u << 21)) == 0 || (insn & (1u << 31)) != 0);
}
