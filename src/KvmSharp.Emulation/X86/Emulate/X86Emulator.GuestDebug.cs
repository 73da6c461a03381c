// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// KVM_SET_GUEST_DEBUG and the KVM_EXIT_DEBUG exits it arms: the host debugging the vCPU, as a gdb stub does.
/// The ioctl follows arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_set_guest_debug; the run-time rules follow the paths this
/// host (Linux 6.18 kvm_pvm, AMD) takes, which run every guest instruction through KVM's emulator — x86.c
/// x86_emulate_instruction with kvm_vcpu_check_code_breakpoint before the instruction and kvm_vcpu_do_singlestep
/// after it — and, for INT3 under KVM_GUESTDBG_USE_SW_BP, svm.c bp_interception (upstream; this host delivers the
/// INT3 to the guest instead: HostDeviations.KvmPvmSoftwareBreakpointNotIntercepted). Observed here and modelled:
/// <list type="bullet">
/// <item>Every control bit is accepted (x86 has no KVM_GUESTDBG_VALID_MASK check: 0x80000000 → 0); without ENABLE
/// guest_debug is 0, but INJECT_DB/INJECT_BP still queue their exception: EBUSY while one is pending, an injected one
/// (KVM_SET_VCPU_EVENTS) is replaced; the queued #DB/#BP is delivered on the next KVM_RUN (X86Emulator.Events.cs).</item>
/// <item>Single-step: each completed instruction ends KVM_RUN with KVM_EXIT_DEBUG, exception 1, pc = the next
/// linear RIP, dr6 = DR6_BS | DR6_ACTIVE_LOW (0xffff4ff0); kvm_run's dr7 is not written (kvm_vcpu_do_singlestep and
/// kvm_vcpu_check_code_breakpoint never write it: it keeps what the page held, 0 on a new vCPU, whatever DR7 the guest
/// or the host breakpoints hold — observed on this host, GuestDebug.debug_exits_leave_dr7_alone); neither KVM_GET_REGS nor the guest's
/// PUSHF shows a TF (the interpreter keeps single-stepping outside RFLAGS). A HLT's step
/// exit replaces its KVM_EXIT_HLT (the vCPU does not halt). An OUT's or MMIO write's step is lost (the exit to
/// userspace wins; "FIXME: return into emulator if single-stepping"); an IN's or MMIO read's step exit comes on
/// the KVM_RUN that completes it, before any further instruction. A faulting instruction has no step exit; the
/// handler's first instruction has one.</item>
/// <item>USE_HW_BP: debugreg[0..3]/[7] are checked before each instruction (kvm_vcpu_check_hw_bp with type 0,
/// i.e. execute breakpoints, DR7 bits 31:0), before the guest's own DR0–DR7; a hit ends KVM_RUN with exception 1,
/// pc = the instruction, dr6 = B-bits | 0xffff0ff0, and hits again on every KVM_RUN (RF is not consulted). The guest
/// keeps its own DR0–DR7 (KVM_GET_DEBUGREGS, MOV from DR7).</item>
/// <item>Data breakpoints (EmulatorConfig.X86DataBreakpoints, off for this host — its emulator checks none — and on
/// in the upstream presets, where VMX/SVM hardware holds the breakpoints): see <see cref="NoteDataAccess"/> and
/// <see cref="DataBreakpointTrap"/>.</item>
/// <item>I/O breakpoints (DR7 RW = 10 with CR4.DE = 1, Intel SDM Vol. 3A 18.2.4), the guest's or the host's, are not
/// raised in any preset: KVM intercepts IN/OUT/INS/OUTS (vmx.c handle_io, svm.c io_interception) and completes them in
/// x86.c kvm_fast_pio or its emulator, neither of which checks DR7 for them (kvm_vcpu_check_hw_bp is called with type 0,
/// execute, only) — observed on this host too (conformance GuestDebug.io_breakpoints_are_not_raised).</item>
/// </list>
/// Not modelled: REP strings split every 1024 iterations by KVM (the interpreter splits every 4096), single-stepping INT n in real mode (KVM reports the handler's address),
/// the step after a KVM_EXIT_HYPERCALL completes, an injected #DF that
/// INJECT_DB/BP would turn into a triple-fault request. BLOCKIRQ is kept but has nothing to act on: it stops KVM from
/// injecting interrupts that an interrupt controller raised, and the emulator has none (re-injecting an interrupt
/// KVM_SET_VCPU_EVENTS queued is not affected upstream either).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>kvm_host.h DR6_BS (single-step) and DR6_ACTIVE_LOW.</summary>
    private const ulong Dr6Bs = 1UL << 14;

    /// <summary>vcpu->guest_debug (0 unless KVM_GUESTDBG_ENABLE was given).</summary>
    private uint _guestDebug;

    /// <summary>vcpu-&gt;guest_debug (the KVM_SET_GUEST_DEBUG control flags in force; 0 when not debugging).</summary>
    public uint GuestDebugFlags => _guestDebug;

    /// <summary>vcpu->arch.eff_db[0..3] under KVM_GUESTDBG_USE_HW_BP, and vcpu->arch.guest_debug_dr7.</summary>
    private readonly ulong[] _hostDb = new ulong[4];
    private ulong _hostDr7;

    /// <summary>This instruction ended the run with KVM_EXIT_DEBUG itself (a breakpoint): no single-step exit after it.</summary>
    private bool _debugExitTaken;

    /// <summary>
    /// x86.c kvm_arch_vcpu_ioctl_set_guest_debug (kvm_main.c kvm_vcpu_ioctl copies the whole struct first: EFAULT).
    /// INJECT_DB/INJECT_BP: EBUSY when kvm_is_exception_pending (exception.pending — an exception KVM_SET_VCPU_EVENTS
    /// marked injected does not count, observed here), else kvm_queue_exception (#DB wins when both are given). Then
    /// guest_debug = control (0 without ENABLE), the host breakpoints when USE_HW_BP. Nothing changes on failure.
    /// </summary>
    public long SetGuestDebug(IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_guest_debug dbg)) return Err.EFAULT;
        var s = Vec;
        if ((dbg.control & (KvmConstants.KVM_GUESTDBG_INJECT_DB | KvmConstants.KVM_GUESTDBG_INJECT_BP)) != 0)
        {
            // "if (kvm_is_exception_pending(vcpu) || ...) goto out" (x86.c kvm_arch_vcpu_ioctl_set_guest_debug);
            // kvm_is_exception_pending (x86.h) counts a KVM_REQ_TRIPLE_FAULT too — e.g. from KVM_X86_SET_MCE with
            // CR4.MCE clear. Found by the differential fuzzer's interrupt ops: the host answered EBUSY, the emulator
            // queued the #BP.
            if (s.ExceptionPending || s.TripleFaultRequested) return Err.EBUSY;
            // kvm_queue_exception → kvm_multiple_exception: onto an injected #DF nothing is queued — "if (prev_nr ==
            // DF_VECTOR) { kvm_make_request(KVM_REQ_TRIPLE_FAULT, vcpu); return; }" — and the #DF stays (found by the
            // differential fuzzer, seed 12: the emulator had replaced it). With nothing queued, or another injected
            // exception that a benign #DB/#BP replaces ("goto queue"), the new one is pending without error code or
            // payload.
            if (s.ExceptionInjected && s.ExceptionVector == DF_VECTOR)
            {
                s.TripleFaultRequested = true;
                return SetGuestDebugFlags(dbg);
            }
            s.ExceptionPending = true;
            s.ExceptionInjected = false;
            s.ExceptionVector = (byte)((dbg.control & KvmConstants.KVM_GUESTDBG_INJECT_DB) != 0 ? DB_VECTOR : BP_VECTOR);
            s.ExceptionHasErrorCode = false;
            s.ExceptionErrorCode = 0;
            s.ExceptionHasPayload = false;
            s.ExceptionPayload = 0;
        }
        return SetGuestDebugFlags(dbg);
    }

    /// <summary>The rest of kvm_arch_vcpu_ioctl_set_guest_debug once the exception to inject (if any) is queued.</summary>
    private long SetGuestDebugFlags(kvm_guest_debug dbg)
    {
        // "rflags = kvm_get_rflags(vcpu)" before guest_debug changes, then "kvm_set_rflags(vcpu, rflags)": while
        // single-stepping kvm_get_rflags filters TF out, so the guest's own TF is lost whenever KVM_SET_GUEST_DEBUG is
        // called with SINGLESTEP on (turning it off included). Found by the differential fuzzer's interrupt ops
        // (KVM_GET_REGS after a KVM_SET_GUEST_DEBUG pair: TF clear on the host, kept by the emulator).
        if ((_guestDebug & KvmConstants.KVM_GUESTDBG_SINGLESTEP) != 0) _cpu.Rflags &= ~RFLAGS_TF;
        _guestDebug = (dbg.control & KvmConstants.KVM_GUESTDBG_ENABLE) != 0 ? dbg.control : 0;
        if ((_guestDebug & KvmConstants.KVM_GUESTDBG_SINGLESTEP) != 0) _singleStepRip = LinearRip();
        if ((_guestDebug & KvmConstants.KVM_GUESTDBG_USE_HW_BP) != 0)
        {
            for (int i = 0; i < 4; i++) _hostDb[i] = dbg.arch.debugreg[i];
            _hostDr7 = dbg.arch.debugreg[7];
        }
        return 0;
    }

    /// <summary>vcpu->arch.singlestep_rip: the linear RIP when KVM_SET_GUEST_DEBUG last turned single-stepping on.</summary>
    private ulong _singleStepRip;

    /// <summary>
    /// The TF that host single-stepping puts in the guest's real RFLAGS: x86.c __kvm_set_rflags — "if
    /// (vcpu->guest_debug &amp; KVM_GUESTDBG_SINGLESTEP &amp;&amp; kvm_is_linear_rip(vcpu, vcpu->arch.singlestep_rip)) rflags
    /// |= X86_EFLAGS_TF" — called by KVM_SET_GUEST_DEBUG and after each instruction KVM emulates (which is every
    /// instruction on this host); kvm_get_rflags hides it, so KVM_GET_REGS and PUSHF do not show it. The RFLAGS image an
    /// exception pushes through a 64-bit IDT gate has it when the vCPU is still at singlestep_rip — observed on this
    /// host by the differential fuzzer: an INJECT_DB/BP given with SINGLESTEP, or a UD2 at the RIP single-stepping
    /// started on, pushes 0x102 where the guest's RFLAGS is 0x2; a UD2 reached by stepping pushes 0x2.
    /// </summary>
    private ulong HostSingleStepTf =>
        (_guestDebug & KvmConstants.KVM_GUESTDBG_SINGLESTEP) != 0 && LinearRip() == _singleStepRip ? RFLAGS_TF : 0;

    /// <summary>kvm_get_linear_rip: RIP in 64-bit mode, else (u32)(CS.base + RIP).</summary>
    private ulong LinearRip() => _cpu.Bitness == 64 ? _cpu.Rip : (uint)(_cpu.Sregs.cs.@base + _cpu.Rip);

    /// <summary>
    /// The first half of x86.c kvm_vcpu_check_code_breakpoint, before each decoded instruction (not when KVM_RUN
    /// completes an IN or MMIO read: EMULTYPE_NO_DECODE skips the check): with USE_HW_BP and an enabled host
    /// breakpoint, kvm_vcpu_check_hw_bp(linear RIP, type 0, guest_debug_dr7, eff_db) — an L or G bit and RW = LEN = 0.
    /// A hit: KVM_EXIT_DEBUG, exception 1, pc, dr6 = hits | DR6_ACTIVE_LOW; the instruction does not run.
    /// </summary>
    private bool HostCodeBreakpoint()
    {
        _debugExitTaken = false;
        _dataHits = 0;
        if ((_guestDebug & KvmConstants.KVM_GUESTDBG_USE_HW_BP) == 0 || (_hostDr7 & Dr7BpEnable) == 0) return false;
        return HostCodeBreakpointHit();
    }

    /// <summary><see cref="HostCodeBreakpoint"/> with USE_HW_BP and an enabled host breakpoint.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool HostCodeBreakpointHit()
    {
        if (_pending is not null && _completionData is not null) return false;
        ulong eip = LinearRip();
        uint enable = (uint)_hostDr7, rwlen = (uint)_hostDr7 >> 16;
        ulong hit = 0;
        for (int n = 0; n < 4; n++, enable >>= 2, rwlen >>= 4)
            if ((enable & 3) != 0 && (rwlen & 15) == 0 && _hostDb[n] == eip) hit |= 1UL << n;
        if (hit == 0) return false;
        _run.SetDebugExit(DB_VECTOR, eip, hit | Dr6ActiveLow);
        _debugExitTaken = true;
        _exit = StepOutcome.ExitToUser;
        return true;
    }

    /// <summary>
    /// INT3 with ENABLE | USE_SW_BP: svm.c svm_update_exception_bitmap intercepts #BP and bp_interception exits with
    /// KVM_EXIT_DEBUG, exception 3, pc = CS.base + RIP of the INT3; RIP stays there and dr6/dr7 are not written
    /// (vmx.c handle_exception_nmi does the same). True when the caller must leave the instruction unexecuted.
    /// </summary>
    private bool SoftwareBreakpointExit()
    {
        const uint Want = KvmConstants.KVM_GUESTDBG_ENABLE | KvmConstants.KVM_GUESTDBG_USE_SW_BP;
        if ((_guestDebug & Want) != Want) return false;
        _run.SetDebugExit(BP_VECTOR, LinearRip(), dr6: null);
        _debugExitTaken = true;
        _exit = StepOutcome.ExitToUser;
        return true;
    }

    /// <summary>
    /// x86_emulate_instruction's writeback: "if (r &amp;&amp; (ctxt->tf || (vcpu->guest_debug &amp; SINGLESTEP)))
    /// r = kvm_vcpu_do_singlestep(vcpu)" once the instruction committed — r is 0 for an OUT (the PIO exit) and the
    /// step is lost; a HLT's exit reason is overwritten. kvm_vcpu_do_singlestep: KVM_EXIT_DEBUG, exception 1, pc =
    /// the new linear RIP, dr6 = DR6_BS | DR6_ACTIVE_LOW.
    /// </summary>
    private StepOutcome AfterInstruction(StepOutcome outcome)
    {
        if (_dataHits != 0 && DataBreakpointTrap(outcome) is StepOutcome trap) return trap;
        if ((_guestDebug & KvmConstants.KVM_GUESTDBG_SINGLESTEP) == 0 || _debugExitTaken) return outcome;
        if (outcome.Exit && _run.ExitReason != (uint)KvmExitReason.KVM_EXIT_HLT) return outcome;
        _run.SetDebugExit(DB_VECTOR, LinearRip(), Dr6Bs | Dr6ActiveLow);
        return StepOutcome.ExitToUser;
    }

    // ------------------------------------------------------------ data breakpoints (upstream presets)

    /// <summary>The B0–B3 bits of the data breakpoints the current instruction (or REP iteration) hit so far.</summary>
    private ulong _dataHits;

    /// <summary>EmulatorConfig.X86DataBreakpoints: the kernel's CPU raises data breakpoints (VMX/SVM; not kvm_pvm).</summary>
    private bool DataBreakpointsModelled => _kvm.Kernel.Config.X86DataBreakpoints;

    /// <summary>
    /// The DR7 the hardware holds: x86.c kvm_update_dr7 — guest_debug_dr7 under KVM_GUESTDBG_USE_HW_BP, else the
    /// guest's DR7 — with kvm_update_dr0123's eff_db (the host's debugreg[0..3] under USE_HW_BP, else the guest's).
    /// </summary>
    private (ulong Dr7, ulong[] Db) HardwareBreakpoints() =>
        (_guestDebug & KvmConstants.KVM_GUESTDBG_USE_HW_BP) != 0 ? (_hostDr7, _hostDb) : (Vec.Dr7, Vec.Db);

    /// <summary>
    /// A data breakpoint is armed: the REP fast paths (X86Emulator.StringFast.cs), which bypass <see cref="AccessMemory"/>,
    /// step aside and REP strings stop after each iteration that hit.
    /// </summary>
    private bool DataBreakpointsArmed => DataBreakpointsModelled && (HardwareBreakpoints().Dr7 & Dr7BpEnable) != 0;

    /// <summary>
    /// Called for each data access of an instruction (<see cref="AccessMemory"/>): Intel SDM Vol. 3A 18.2.4/18.2.5 — an
    /// enabled breakpoint (L or G) with RW = 01 matches a write, RW = 11 a read or a write (RW = 00 is an execute
    /// breakpoint, RW = 10 an I/O one: neither is a data access); LEN 00/01/11/10 is 1/2/4/8 bytes and the low
    /// address bits below LEN are ignored ("the processor uses the address as if aligned"); any byte of the access
    /// inside that range hits. Several breakpoints may hit one instruction: each sets its B bit.
    /// </summary>
    private void NoteDataAccess(ulong linear, int length, bool write)
    {
        var (dr7, db) = HardwareBreakpoints();
        if ((dr7 & Dr7BpEnable) == 0) return;
        for (int n = 0; n < 4; n++)
        {
            if (((dr7 >> (2 * n)) & 3) == 0) continue;
            ulong rw = (dr7 >> (16 + 4 * n)) & 3, len = (dr7 >> (18 + 4 * n)) & 3;
            if (rw is 0 or 2 || (rw == 1 && !write)) continue;
            ulong size = len switch { 0 => 1, 1 => 2, 2 => 8, _ => 4 };
            ulong start = db[n] & ~(size - 1);
            if (linear < start + size && start < linear + (ulong)length) _dataHits |= 1UL << n;
        }
    }

    /// <summary>
    /// After an instruction (or the REP iteration) that hit a data breakpoint: a trap, RIP already past it (Intel SDM
    /// Vol. 3A 18.3.1.2; on a REP string still on it while rCX lasts). #DB is intercepted: while the host single-steps or
    /// uses hardware breakpoints, svm.c db_interception / vmx.c handle_exception_nmi end KVM_RUN with KVM_EXIT_DEBUG,
    /// exception 1, pc = CS.base + RIP, dr6 = the hardware's (B bits, BS when also single-stepping, DR6_ACTIVE_LOW),
    /// dr7 = the hardware's DR7; the guest's DR6 is untouched. Otherwise kvm_queue_exception_p(DB_VECTOR, payload) delivers a #DB trap to the
    /// guest: kvm_deliver_exception_payload puts the B bits in DR6 (trap bits replaced, bit 12 clear) and
    /// kvm_check_and_inject_events clears DR7.GD. An instruction that exits to userspace (an MMIO write: KVM emulates
    /// it, and its emulator checks no data breakpoint) drops the hits; INS/OUTS, intercepted and emulated by KVM
    /// whether or not they exit, note none (X86Emulator.StringIo.cs StringPortIo). Not modelled, as neither the Intel
    /// SDM (Vol. 3A 18.2.4, 18.3.1.2) nor the AMD APM (Vol. 2 13.1) says whether implicit accesses — exception and
    /// interrupt frame pushes, IDT/GDT/LDT/TSS reads — match a data breakpoint (Linux arch/x86/kernel/hw_breakpoint.c
    /// forbids breakpoints on them to avoid finding out): none of theirs is raised — a delivery ends the step without
    /// <see cref="AfterInstruction"/> (X86Emulator.cs Stopped, or event injection between instructions) and the next
    /// instruction starts with no hits (<see cref="HostCodeBreakpoint"/>); pinned by
    /// X86DebugExitTests.Exception_frame_push_notes_no_data_breakpoint. Null: no trap.
    /// </summary>
    private StepOutcome? DataBreakpointTrap(StepOutcome outcome)
    {
        ulong hits = _dataHits;
        _dataHits = 0;
        if (outcome.Exit) return null;
        const uint HostDb = KvmConstants.KVM_GUESTDBG_SINGLESTEP | KvmConstants.KVM_GUESTDBG_USE_HW_BP;
        if ((_guestDebug & HostDb) != 0)
        {
            ulong step = (_guestDebug & KvmConstants.KVM_GUESTDBG_SINGLESTEP) != 0 ? Dr6Bs : 0;
            // svm.c db_interception "kvm_run->debug.arch.dr7 = svm->vmcb->save.dr7" / vmx.c handle_exception_nmi
            // "kvm_run->debug.arch.dr7 = vmcs_readl(GUEST_DR7)": the DR7 the hardware held, which x86.c
            // kvm_update_dr7 loaded (guest_debug_dr7 under USE_HW_BP, else the guest's DR7).
            _run.SetDebugExit(DB_VECTOR, LinearRip(), hits | step | Dr6ActiveLow, dr7: HardwareBreakpoints().Dr7);
            return StepOutcome.ExitToUser;
        }
        var s = Vec;
        s.Dr6 = ((s.Dr6 & ~DrTrapBits) | Dr6ActiveLow | hits) & ~(1UL << 12);
        s.Dr7 &= ~Dr7Gd;
        return DeliverException(QueueGuestFault(new GuestFault(DB_VECTOR)));
    }
}
