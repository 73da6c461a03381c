// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_SET_GUEST_DEBUG and KVM_EXIT_DEBUG, what a VMM's gdb stub uses (arch/x86/kvm/x86.c
/// kvm_arch_vcpu_ioctl_set_guest_debug, kvm_vcpu_check_code_breakpoint, kvm_vcpu_do_singlestep; svm.c
/// bp_interception; Documentation/virt/kvm/api.rst KVM_SET_GUEST_DEBUG). 64-bit guests; every expectation was
/// observed on this host first.
/// </summary>
public static class GuestDebug
{
    private const ulong Code = LongModeGuest.CodeGpa;

    /// <summary>DR6 of a single-step exit (DR6_BS | DR6_ACTIVE_LOW) and of a DR0 breakpoint (B0 | DR6_ACTIVE_LOW).</summary>
    private const ulong StepDr6 = 0xffff4ff0, Bp0Dr6 = 0xffff0ff1;

    private const ulong Tf = 1UL << 8;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    private static void AssertDebugExit(VcpuExit exit, uint exception, ulong pc, ulong? dr6)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, exit.Reason);
        Assert.Equal(exception, exit.DebugException);
        Assert.Equal(pc, exit.DebugPc);
        if (dr6 is ulong d) Assert.Equal(d, exit.DebugDr6);
    }

    [ConformanceCase("x86.c kvm_vm_ioctl_check_extension: KVM_CAP_SET_GUEST_DEBUG = 1, KVM_CAP_SET_GUEST_DEBUG2 = KVM_GUESTDBG_VALID_MASK (0x1f0003)")]
    public static void guest_debug_capabilities(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.True(kvm.SupportsGuestDebug);
        Assert.Equal((GuestDebugFlags)0x1f0003, kvm.SupportedGuestDebugFlags);
        using var vm = kvm.CreateVm();
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_SET_GUEST_DEBUG));
        Assert.Equal(0x1f0003, vm.CheckExtension(KvmCaps.KVM_CAP_SET_GUEST_DEBUG2));
    }

    [ConformanceCase("x86.c kvm_arch_vcpu_ioctl_set_guest_debug: no check of the control bits; INJECT_DB/BP queue an exception, EBUSY while one is queued")]
    public static void control_bits_are_not_checked_and_injection_is_busy_while_queued(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        // x86 has no KVM_GUESTDBG_VALID_MASK check (arm64 does): unknown bits, with or without ENABLE, are accepted.
        foreach (uint control in new uint[] { 0x80000000, 0x0000fffc, 0xfff0ffff, 0x1 | 0x2 | 0x10000 | 0x20000 | 0x100000, 0 })
            vcpu.SetGuestDebug((GuestDebugFlags)control);
        // INJECT_BP without ENABLE still queues #BP (the injection comes before the ENABLE test); a soft exception is
        // not reported by KVM_GET_VCPU_EVENTS (kvm_exception_is_soft), but it makes the next injection EBUSY.
        vcpu.SetGuestDebug(GuestDebugFlags.InjectBreakpointException);
        var ev = vcpu.GetEvents();
        Assert.Equal(0, ev.exception_injected);
        Assert.Equal(0, ev.exception_pending);
        var busy = Assert.Throws<KvmException>(() => vcpu.SetGuestDebug(GuestDebugFlags.InjectDebugException | GuestDebugFlags.Enable));
        Assert.Equal(Errno.EBUSY, busy.Errno);

        using var vcpu1 = vm.CreateVcpu(1);
        vcpu1.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.InjectDebugException | GuestDebugFlags.InjectBreakpointException);
        ev = vcpu1.GetEvents();
        Assert.Equal(1, ev.exception_injected); // pending and injected are conflated without KVM_CAP_EXCEPTION_PAYLOAD
        Assert.Equal(1, ev.exception_pending);
        Assert.Equal(1, ev.exception_nr); // #DB wins when both are asked for
        Assert.Equal(0, ev.exception_has_error_code);
        busy = Assert.Throws<KvmException>(() => vcpu1.SetGuestDebug(GuestDebugFlags.InjectBreakpointException));
        Assert.Equal(Errno.EBUSY, busy.Errno);
        Assert.Equal(1, vcpu1.GetEvents().exception_nr); // the failed call changed nothing
        // Without an injection bit nothing is queued and nothing is busy.
        vcpu1.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep);
        vcpu1.DisableGuestDebug();
    }

    [ConformanceCase("x86.c __set_regs: KVM_SET_REGS drops a queued (pending) exception, so an INJECT_DB/BP queued before it is gone and the next injection is not EBUSY")]
    public static void set_regs_drops_a_queued_injection(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        vcpu.SetGuestDebug(GuestDebugFlags.InjectDebugException);
        Assert.Equal((1, 1, 1), (vcpu.GetEvents().exception_injected, vcpu.GetEvents().exception_pending, vcpu.GetEvents().exception_nr));
        vcpu.SetRegs(vcpu.GetRegs());
        var ev = vcpu.GetEvents();
        Assert.Equal((0, 0, 1), (ev.exception_injected, ev.exception_pending, ev.exception_nr)); // the vector stays, nothing is queued
        vcpu.SetGuestDebug(GuestDebugFlags.InjectBreakpointException); // not EBUSY
        vcpu.SetRegs(vcpu.GetRegs());
        vcpu.SetGuestDebug(GuestDebugFlags.InjectDebugException);
        Assert.Equal(1, vcpu.GetEvents().exception_nr);
    }

    [ConformanceCase("x86.c x86_emulate_instruction → kvm_vcpu_do_singlestep: each instruction exits with #DB, pc = next RIP, DR6.BS; an OUT's step is lost, a HLT's step replaces the halt, an IN's step comes on completion")]
    public static void single_step_reports_each_instruction(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a =>
        {
            a.nop();                 // +0, 1 byte
            a.mov(eax, 1);           // +1, 5 bytes
            a.@out(0x10, al);        // +6, 2 bytes
            a.@in(al, 0x20);         // +8, 2 bytes
            a.hlt();                 // +10
            a.nop();                 // +11
            a.hlt();                 // +12
        });
        var v = g.Vcpu;
        v.EnableSingleStep();
        AssertDebugExit(v.Run(), 1, Code + 1, StepDr6);
        Assert.Equal(0UL, v.GetRegs().rflags & Tf); // KVM hides the TF it sets (kvm_get_rflags)
        AssertDebugExit(v.Run(), 1, Code + 6, StepDr6);
        Assert.Equal(1UL, v.GetRegs().rax);
        var exit = v.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, exit.Reason);
        Assert.True(exit.IoIsOut);
        Assert.Equal(Code + 8, v.GetRegs().rip);
        // The OUT's own step was lost: the next run executes the IN and exits for its data.
        exit = v.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, exit.Reason);
        Assert.False(exit.IoIsOut);
        exit.IoData[0] = 0x42;
        // Completing the IN is the step: no further instruction runs.
        AssertDebugExit(v.Run(), 1, Code + 10, StepDr6);
        Assert.Equal(0x42UL, v.GetRegs().rax & 0xff);
        // HLT: the step exit replaces KVM_EXIT_HLT and the vCPU goes on.
        AssertDebugExit(v.Run(), 1, Code + 11, StepDr6);
        AssertDebugExit(v.Run(), 1, Code + 12, StepDr6);
        v.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
        Assert.Equal(Code + 13, v.GetRegs().rip);
    }

    [ConformanceCase("x86.c kvm_vcpu_do_singlestep: a faulting instruction has no step exit; the handler's first instruction has one")]
    public static void single_step_into_an_exception_handler(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.ud2(); a.hlt(); }, Halting);
        g.Vcpu.EnableSingleStep();
        var exit = g.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, exit.Reason);
        Assert.Equal(1u, exit.DebugException);
        Assert.Equal(StepDr6, exit.DebugDr6);
        ulong handler = IdtGuest.HandlersGpa + 6 * 0x100;
        Assert.Equal(handler + 1, exit.DebugPc); // the handler's PUSH RAX ran
        Assert.Equal(handler + 1, g.Vcpu.GetRegs().rip);
        g.Vcpu.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Equal(6UL, g.Single().Vector);
    }

    [ConformanceCase("x86.c kvm_vcpu_check_code_breakpoint: a USE_HW_BP execute breakpoint exits before the instruction on every run (RF not consulted); the guest keeps its own DR0-DR7")]
    public static void hardware_breakpoint_stops_before_the_instruction(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a =>
        {
            a.nop();
            a.nop();
            a.mov(eax, 7);  // +2
            a.mov(rbx, dr7); // +7: what the guest sees of DR7
            a.hlt();
        });
        var v = g.Vcpu;
        v.SetHardwareBreakpoint(Code + 2);
        for (int i = 0; i < 2; i++)
        {
            AssertDebugExit(v.Run(), 1, Code + 2, Bp0Dr6);
            var r = v.GetRegs();
            Assert.Equal(Code + 2, r.rip);
            Assert.Equal(0UL, r.rax);
        }
        var d = v.GetDebugRegs();
        Assert.Equal(0UL, d.db[0]);
        Assert.Equal(0x400UL, d.dr7);
        Assert.Equal(0xffff0ff0UL, d.dr6);
        // Step over the breakpoint (what a gdb stub does), then let the guest run out.
        v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep);
        AssertDebugExit(v.Run(), 1, Code + 7, StepDr6);
        v.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
        Assert.Equal(7UL, v.GetRegs().rax);
        Assert.Equal(0x400UL, v.GetRegs().rbx);
    }

    [ConformanceCase("x86.c kvm_vcpu_check_code_breakpoint: the host's breakpoints are checked before the guest's; without them the guest's #DB is delivered")]
    public static void host_breakpoint_has_priority_over_the_guests(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.nop(); a.mov(eax, 9); a.hlt(); }, Halting);
        var v = g.Vcpu;
        var d = v.GetDebugRegs();
        d.db[0] = Code + 1;
        d.dr7 = 0x401;
        v.SetDebugRegs(d);
        // Host breakpoint on the same instruction, in DR1 (its own registers): B1 reported.
        Span<ulong> regs = stackalloc ulong[8];
        regs[1] = Code + 1;
        regs[7] = 0x404;
        v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
        AssertDebugExit(v.Run(), 1, Code + 1, 0xffff0ff2);
        Assert.Empty(g.Deliveries);
        v.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
        var delivery = g.Single();
        Assert.Equal(1UL, delivery.Vector);
        Assert.Equal(Code + 1, delivery.Rip);
        Assert.Equal(0xffff0ff1UL, v.GetDebugRegs().dr6);
    }

    [ConformanceCase("svm.c bp_interception: with USE_SW_BP an INT3 exits with #BP, pc = the INT3, RIP left on it and nothing delivered")]
    public static void int3_exits_with_software_breakpoints(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.nop(); a.int3(); a.mov(eax, 5); a.hlt(); }, Halting);
        var v = g.Vcpu;
        v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseSoftwareBreakpoints);
        var exit = v.Run();
        if (HostDeviations.KvmPvmSoftwareBreakpointNotIntercepted(ctx.Target.IsReal))
        {
            // This host runs the INT3 through KVM's emulator, which fails on INT n outside real mode.
            Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
            Assert.Equal(Code + 1, v.GetRegs().rip);
            Assert.Empty(g.Deliveries);
            return;
        }
        AssertDebugExit(exit, 3, Code + 1, dr6: null);
        Assert.Equal(Code + 1, v.GetRegs().rip);
        Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, v.Run().Reason); // it stays there
        Assert.Empty(g.Deliveries);
        // A debugger skips the INT3 (or puts the original byte back) and resumes.
        var r = v.GetRegs();
        r.rip = Code + 2;
        v.SetRegs(r);
        v.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
        Assert.Equal(5UL, v.GetRegs().rax);
        Assert.Empty(g.Deliveries);
    }

    [ConformanceCase("x86.c kvm_is_exception_pending / kvm_multiple_exception: an injected exception is replaced by INJECT_DB; a pending one makes it EBUSY, which changes nothing (single-step stays on)")]
    public static void injection_replaces_an_injected_exception_and_is_busy_on_a_pending_one(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a => { a.nop(); a.nop(); a.hlt(); });
        var v = g.Vcpu;
        var ev = v.GetEvents();
        ev.exception_injected = 1;
        ev.exception_nr = 13;
        ev.exception_has_error_code = 1;
        ev.exception_error_code = 8;
        v.SetEvents(ev);
        v.EnableSingleStep();
        // An injected #GP is not "pending": the benign #DB replaces it.
        v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep | GuestDebugFlags.InjectDebugException);
        var back = v.GetEvents();
        Assert.Equal((1, 1, 1, 0, 0u), (back.exception_injected, back.exception_pending, back.exception_nr, back.exception_has_error_code, back.exception_error_code));
        // Now one is pending: EBUSY, and neither the queue nor single-stepping changed.
        var busy = Assert.Throws<KvmException>(() => v.SetGuestDebug(GuestDebugFlags.InjectBreakpointException));
        Assert.Equal(Errno.EBUSY, busy.Errno);
        Assert.Equal(1, v.GetEvents().exception_nr);
        ev.exception_injected = 0;
        ev.exception_nr = 0;
        ev.exception_has_error_code = 0;
        ev.exception_error_code = 0;
        v.SetEvents(ev); // drop the queued #DB again
        var exit = v.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, exit.Reason);
        Assert.Equal(Code + 1, exit.DebugPc);
    }

    [ConformanceCase("x86.c kvm_arch_vcpu_ioctl_set_guest_debug INJECT_DB/INJECT_BP → kvm_queue_exception: delivered through the IDT on the next KVM_RUN, frame RIP = the current RIP")]
    public static void injected_debug_and_breakpoint_exceptions_reach_the_guest(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (flag, vector) in new[] { (GuestDebugFlags.InjectDebugException, 1UL), (GuestDebugFlags.InjectBreakpointException, 3UL) })
        {
            using var g = IdtGuest.Create(kvm, a => { a.nop(); a.hlt(); }, Halting);
            g.Vcpu.SetGuestDebug(flag); // without ENABLE: only the injection happens
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            var d = g.Single();
            Assert.Equal(vector, d.Vector);
            Assert.Equal(Code, d.Rip);
            Assert.Equal(0xffff0ff0UL, g.Vcpu.GetDebugRegs().dr6);
        }
    }

    [ConformanceCase("x86.c kvm_get_linear_rip: in real mode the step's and the breakpoint's pc are CS.base + IP")]
    public static void real_mode_pc_is_linear(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, a => { a.nop(); a.nop(); a.nop(); a.hlt(); });
        var v = g.Vcpu;
        v.EnableSingleStep();
        AssertDebugExit(v.Run(), 1, RealModeGuest.Gpa + 1, StepDr6);
        Assert.Equal(1UL, v.GetRegs().rip);
        v.SetHardwareBreakpoint(RealModeGuest.Gpa + 2);
        AssertDebugExit(v.Run(), 1, RealModeGuest.Gpa + 2, Bp0Dr6);
        v.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
    }

    [ConformanceCase("x86.c complete_emulated_mmio: an MMIO write's step is lost (\"FIXME: return into emulator if single-stepping\"); an MMIO read's step exit comes on the KVM_RUN that completes it")]
    public static void single_step_over_mmio(CaseContext ctx)
    {
        const ulong Mmio = 0x4000_0000;
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a =>
        {
            a.mov(__dword_ptr[Mmio], eax);  // +0, 8 bytes as Iced encodes it
            a.mov(ebx, __dword_ptr[Mmio]);  // +8, 8 bytes
            a.nop();                        // +16
            a.hlt();                        // +17
        });
        g.IdentityMap(Mmio);
        var v = g.Vcpu;
        v.EnableSingleStep();
        var exit = v.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.True(exit.MmioIsWrite);
        exit = v.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.False(exit.MmioIsWrite);
        exit.MmioData.Fill(0x5a);
        AssertDebugExit(v.Run(), 1, Code + 16, StepDr6);
        Assert.Equal(0x5a5a5a5aUL, v.GetRegs().rbx);
        AssertDebugExit(v.Run(), 1, Code + 17, StepDr6);
    }

    [ConformanceCase("x86.c kvm_set_rflags/kvm_get_rflags: the TF single-stepping sets is hidden from KVM_GET_REGS, and this host's guest PUSHF does not see it either")]
    public static void what_pushf_sees_while_single_stepping(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a => { a.pushfq(); a.pop(rax); a.hlt(); });
        var v = g.Vcpu;
        v.EnableSingleStep();
        AssertDebugExit(v.Run(), 1, Code + 1, StepDr6);
        AssertDebugExit(v.Run(), 1, Code + 2, StepDr6);
        var r = v.GetRegs();
        Assert.Equal(0UL, r.rflags & Tf);
        Assert.Equal(0x2UL, r.rax & ~0x10000UL); // observed on this host: no TF in the pushed image
    }

    [ConformanceCase("x86.c kvm_vcpu_check_hw_bp(eip, 0, ...): only execute breakpoints (RW = LEN = 0) of the host are checked, L or G enables them; a data breakpoint never exits here")]
    public static void host_breakpoint_kinds(CaseContext ctx)
    {
        const ulong Data = 0x8_9000;
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a => { a.mov(__dword_ptr[Data], eax); a.nop(); a.nop(); a.hlt(); });
        var v = g.Vcpu;
        Span<ulong> regs = stackalloc ulong[8];
        regs[0] = Data;             // DR0: write breakpoint (RW0 = 01, LEN0 = 11) on the data
        regs[3] = Code + 9;         // DR3: execute breakpoint enabled by G3 only, on the second NOP
        regs[7] = 0x400 | 0x1 | (0xdUL << 16) | 0x80;
        v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
        AssertDebugExit(v.Run(), 1, Code + 9, 0xffff0ff8);
        // Bits 63:32 of debugreg[7] are not looked at (kvm_vcpu_check_hw_bp takes a u32).
        regs[7] |= 0xffff_ffffUL << 32;
        v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
        AssertDebugExit(v.Run(), 1, Code + 9, 0xffff0ff8);
        v.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
    }

    [ConformanceCase("svm.c db_interception / vmx.c handle_exception_nmi under KVM_GUESTDBG_USE_HW_BP: a data breakpoint (RW = 01 write, RW = 11 read or write, LEN masking the low address bits; Intel SDM Vol. 3A 18.2.4-18.2.5) is a trap after the access: KVM_EXIT_DEBUG, exception 1, pc past the instruction, dr6 with every B bit hit; on the emulator in the upstream x86 preset (EmulatorConfig.X86DataBreakpoints). This host (kvm_pvm, every instruction through KVM's emulator) raises none: observed here", Profile = EmulatedProfile.X86)]
    public static void host_data_breakpoints_upstream_preset(CaseContext ctx)
    {
        const ulong Data = 0x8_9000;
        bool raises = ctx.Kernel is Emulation.EmulatedKernel { Config.X86DataBreakpoints: true };
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a => { a.mov(__qword_ptr[Data], rax); a.nop(); a.hlt(); });
        var v = g.Vcpu;
        Span<ulong> regs = stackalloc ulong[8];
        regs[0] = Data + 5; // L0, RW0 = 01, LEN0 = 01: the word at Data + 4 — hit
        regs[1] = Data + 8; // G1, RW1 = 11, LEN1 = 00: past the qword — no hit
        regs[2] = Data + 3; // L2, RW2 = 11, LEN2 = 00 — hit
        regs[3] = Data;     // L3, RW3 = LEN3 = 00: an execute breakpoint on data — no hit
        regs[7] = 0x400 | 0x1 | (0x5UL << 16) | 0x8 | (0x3UL << 20) | 0x10 | (0x3UL << 24) | 0x40;
        v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
        if (raises)
        {
            ulong after = Code + (ulong)LongModeGuest.Assemble(a => a.mov(__qword_ptr[Data], rax)).Length;
            var hit = v.Run();
            AssertDebugExit(hit, 1, after, 0xffff0ff5); // after the 8-byte MOV; B0 and B2
            // svm.c db_interception "kvm_run->debug.arch.dr7 = svm->vmcb->save.dr7" (vmx.c: GUEST_DR7): the DR7
            // kvm_update_dr7 loaded, guest_debug_dr7 under USE_HW_BP.
            Assert.Equal(regs[7], hit.DebugDr7);
            Assert.Equal(after, v.GetRegs().rip);
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
    }

    [ConformanceCase("x86.c kvm_vcpu_do_singlestep and kvm_vcpu_check_code_breakpoint write kvm_run debug.arch.dr6, not dr7: on a new vCPU it stays 0 whatever the guest's DR7 and the host's debugreg[7] (only svm.c db_interception / vmx.c handle_exception_nmi, for a #DB the hardware raised, write it)")]
    public static void debug_exits_leave_dr7_alone(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a => { a.nop(); a.nop(); a.nop(); a.hlt(); });
        var v = g.Vcpu;
        // The guest's own DR7: G0, an execute breakpoint on an address never reached.
        var d = v.GetDebugRegs();
        d.db[0] = 0x1234;
        d.dr7 = 0x402;
        v.SetDebugRegs(d);
        v.EnableSingleStep();
        var exit = v.Run();
        AssertDebugExit(exit, 1, Code + 1, StepDr6);
        Assert.Equal(0UL, exit.DebugDr7);
        // A host execute breakpoint (L1 | G1, guest_debug_dr7 = 0x40c) with single-stepping: the breakpoint exit and
        // the step after it leave dr7 alone too.
        Span<ulong> regs = stackalloc ulong[8];
        regs[1] = Code + 2;
        regs[7] = 0x40c;
        v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
        exit = v.Run();
        AssertDebugExit(exit, 1, Code + 2, 0xffff0ff2);
        Assert.Equal(0UL, exit.DebugDr7);
        v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep);
        exit = v.Run();
        AssertDebugExit(exit, 1, Code + 3, StepDr6);
        Assert.Equal(0UL, exit.DebugDr7);
        v.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
    }

    [ConformanceCase("vmx.c handle_io / svm.c io_interception → x86.c kvm_fast_pio: an I/O breakpoint (DR7 RW = 10 with CR4.DE = 1, Intel SDM Vol. 3A 18.2.4) on the port of an OUT and an IN, the guest's own or the host's under USE_HW_BP, raises nothing: KVM completes the intercepted instruction and checks no I/O breakpoint")]
    public static void io_breakpoints_are_not_raised(CaseContext ctx)
    {
        const ushort Port = 0x10;
        const ulong IoDr7 = 0x400 | 0x2 | (0x2UL << 16); // G0, RW0 = 10, LEN0 = 00
        using var kvm = ctx.OpenKvm();
        foreach (bool host in new[] { false, true })
        {
            using var g = IdtGuest.Create(kvm, a =>
            {
                if (!host)
                {
                    a.mov(rax, (long)Port);
                    a.mov(dr0, rax);
                    a.mov(rax, (long)IoDr7);
                    a.mov(dr7, rax);
                }
                a.@out((byte)Port, al);
                a.@in(al, (byte)Port);
                a.mov(ebx, 0x55);
                a.hlt();
            }, Halting);
            var v = g.Vcpu;
            var s = v.GetSregs();
            s.cr4 |= 1UL << 3; // CR4.DE
            v.SetSregs(s);
            if (host)
            {
                var regs = new ulong[8];
                regs[0] = Port;
                regs[7] = IoDr7;
                v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
            }
            var exit = v.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut, $"host {host}: {exit.ToString()}");
            exit = v.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && !exit.IoIsOut, $"host {host}: {exit.ToString()}");
            exit = v.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"host {host}: {exit.ToString()}");
            Assert.Empty(g.Deliveries);
            Assert.Equal(0x55UL, v.GetRegs().rbx);
            Assert.Equal(0xffff0ff0UL, v.GetDebugRegs().dr6);
        }
    }

    [ConformanceCase("x86.c x86_emulate_instruction: single-stepping follows guest_debug, not the RIP KVM_SET_GUEST_DEBUG saw (singlestep_rip): a KVM_SET_REGS elsewhere keeps stepping")]
    public static void single_step_survives_a_new_rip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a => { a.nop(); a.nop(); a.nop(); a.nop(); a.hlt(); });
        var v = g.Vcpu;
        v.EnableSingleStep();
        var r = v.GetRegs();
        r.rip = Code + 2;
        v.SetRegs(r);
        AssertDebugExit(v.Run(), 1, Code + 3, StepDr6);
        AssertDebugExit(v.Run(), 1, Code + 4, StepDr6);
    }

    [ConformanceCase("x86.c kvm_check_and_inject_events then x86_emulate_instruction: a #DB queued by INJECT_DB while single-stepping is delivered, and the step exit follows the handler's first instruction")]
    public static void single_step_into_an_injected_exception(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.nop(); a.hlt(); }, Halting);
        g.Vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep | GuestDebugFlags.InjectDebugException);
        ulong handler = IdtGuest.HandlersGpa + 1 * 0x100;
        AssertDebugExit(g.Vcpu.Run(), 1, handler + 1, StepDr6);
        g.Vcpu.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.Equal(1UL, d.Vector);
        Assert.Equal(Code, d.Rip);
    }
}
