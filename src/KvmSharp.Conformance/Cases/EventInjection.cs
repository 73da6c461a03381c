// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Abi.KvmVcpuEvents;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// What KVM_RUN does with the events KVM_SET_VCPU_EVENTS queued (arch/x86/kvm/x86.c kvm_check_and_inject_events,
/// kvm_deliver_exception_payload; Documentation/virt/kvm/api.rst KVM_SET_VCPU_EVENTS, KVM_CAP_EXCEPTION_PAYLOAD):
/// exceptions, NMIs and interrupts go through the guest's IDT, and the handlers of <see cref="IdtGuest"/> record what
/// they saw. Every expectation was probed on this host (Linux 6.18 kvm_pvm).
/// </summary>
public static class EventInjection
{
    private const ulong StartRsp = 0x27ff8;
    private const ulong Rf = 1UL << 16, If = 1UL << 9;
    private const ulong Start = LongModeGuest.CodeGpa;

    /// <summary>nop; nop; mov eax, 0x77; hlt; hlt — the second HLT is where a second KVM_RUN resumes.</summary>
    private static void Program(Assembler a)
    {
        a.nop();
        a.nop();
        a.mov(eax, 0x77);
        a.hlt();
        a.hlt();
    }

    private const ulong AfterFirstHlt = Start + 8;

    private static IdtGuest Guest(Kvm kvm, Func<int, IdtVector?>? vectors = null, Action<Assembler>? program = null) =>
        IdtGuest.Create(kvm, program ?? Program,
            Enumerable.Range(0, 48).Select(vectors ?? (v => new IdtVector(v))).Where(v => v is not null).Select(v => v!.Value),
            48 * 16 - 1);

    private static void SetEvents(Vcpu vcpu, uint flags, Func<kvm_vcpu_events, kvm_vcpu_events> edit)
    {
        var e = edit(vcpu.GetEvents());
        e.flags = flags;
        vcpu.SetEvents(e);
    }

    private static void SetRflags(Vcpu vcpu, ulong rflags)
    {
        var r = vcpu.GetRegs();
        r.rflags = rflags;
        vcpu.SetRegs(r);
    }

    private static void AssertFrame(Delivery d, ulong vector, ulong? errorCode, ulong rip, ulong rflags)
    {
        Assert.Equal(vector, d.Vector);
        Assert.Equal(errorCode, d.ErrorCode);
        Assert.Equal(rip, d.Rip);
        Assert.Equal(rflags, d.Rflags);
        Assert.Equal(StartRsp, d.Rsp);
    }

    [ConformanceCase("x86.c kvm_check_and_inject_events: an injected exception is re-injected as given (error code iff has_error_code, no RF), then leaves the queue")]
    public static void injected_exception_is_delivered_as_given(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var g = Guest(kvm))
        {
            SetEvents(g.Vcpu, 0, e => { e.exception_injected = 1; e.exception_nr = 13; e.exception_has_error_code = 1; e.exception_error_code = 0x1234; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            AssertFrame(g.Single(), 13, 0x1234, Start, 0x2);
            var after = g.Vcpu.GetEvents();
            Assert.Equal((0, 0, 13, 1, 0x1234u), (after.exception_injected, after.exception_pending, after.exception_nr, after.exception_has_error_code, after.exception_error_code));
        }
        using (var g = Guest(kvm))
        {
            // has_error_code 0 for #GP: no error code pushed, so the handler (which expects one) reads RIP there.
            SetEvents(g.Vcpu, 0, e => { e.exception_injected = 1; e.exception_nr = 13; e.exception_error_code = 0x1234; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Equal(Start, g.Single().ErrorCode);
        }
        using (var g = Guest(kvm))
        {
            // #UD with IF set: delivered at RIP, the interrupt gate clears IF in the handler.
            SetRflags(g.Vcpu, 0x2 | If);
            SetEvents(g.Vcpu, 0, e => { e.exception_injected = 1; e.exception_nr = 6; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            var d = g.Single();
            AssertFrame(d, 6, null, Start, 0x2 | If);
            Assert.Equal(0x2UL, d.HandlerRflags);
        }
    }

    [ConformanceCase("x86.c kvm_vcpu_ioctl_x86_set/get_vcpu_events, kvm_deliver_exception_payload: #PF's payload is CR2 only for a pending exception under KVM_CAP_EXCEPTION_PAYLOAD")]
    public static void page_fault_payload_sets_cr2_only_when_pending(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_EXCEPTION_PAYLOAD));
        // (cap, flags, pending) → CR2 seen by the handler, RF in the pushed image.
        (bool Cap, bool Pending, ulong Cr2, ulong Rflags)[] cases =
        [
            (false, false, 0x5555, 0x2),           // without the cap: injected, payload ignored
            (true, false, 0x5555, 0x2),            // with the cap, injected: has_payload dropped
            (true, true, 0xdead000, 0x2 | Rf),     // with the cap, pending: CR2 = payload, a fault sets RF
        ];
        foreach (var (cap, pending, cr2, rflags) in cases)
        {
            using var g = Guest(kvm);
            if (cap) g.Guest.Vm.EnableCapability(KvmCaps.KVM_CAP_EXCEPTION_PAYLOAD, 1);
            var s = g.Vcpu.GetSregs();
            s.cr2 = 0x5555;
            g.Vcpu.SetSregs(s);
            SetEvents(g.Vcpu, cap ? KVM_VCPUEVENT_VALID_PAYLOAD : 0, e =>
            {
                e.exception_injected = (byte)(pending ? 0 : 1);
                e.exception_pending = (byte)(pending ? 1 : 0);
                e.exception_nr = 14;
                e.exception_has_error_code = 1;
                e.exception_error_code = 2;
                e.exception_has_payload = 1;
                e.exception_payload = 0xdead000;
                return e;
            });
            var before = g.Vcpu.GetEvents();
            Assert.Equal(cap, (before.flags & KVM_VCPUEVENT_VALID_PAYLOAD) != 0);
            Assert.Equal((byte)(pending ? 1 : 0), before.exception_pending);
            Assert.Equal((byte)(pending ? 0 : 1), before.exception_injected);
            Assert.Equal((byte)(pending ? 1 : 0), before.exception_has_payload);
            Assert.Equal(0x5555UL, g.Vcpu.GetSregs().cr2);

            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            var d = g.Single();
            AssertFrame(d, 14, 2, Start, rflags);
            Assert.Equal(cr2, d.Cr2);
            var after = g.Vcpu.GetEvents();
            Assert.Equal((0, 0, 0), (after.exception_injected, after.exception_pending, after.exception_has_payload));
            // A delivered payload is consumed; one never used stays as stored.
            Assert.Equal(pending ? 0UL : 0xdead000UL, after.exception_payload);
        }
    }

    [ConformanceCase("x86.c kvm_deliver_exception_payload: a pending #DB's payload replaces DR6's trap bits, active-low bits flipped")]
    public static void debug_payload_updates_dr6(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (ulong Payload, ulong Dr6)[] cases = [(0x4001, 0xffff4ff1), (0x10002, 0xfffe0ff2), (0x1000, 0xffff0ff0)];
        foreach (var (payload, dr6) in cases)
        {
            using var g = Guest(kvm);
            g.Guest.Vm.EnableCapability(KvmCaps.KVM_CAP_EXCEPTION_PAYLOAD, 1);
            SetEvents(g.Vcpu, KVM_VCPUEVENT_VALID_PAYLOAD, e => { e.exception_pending = 1; e.exception_nr = 1; e.exception_has_payload = 1; e.exception_payload = payload; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            AssertFrame(g.Single(), 1, null, Start, 0x2); // #DB is a trap: no RF
            Assert.Equal(dr6, g.Vcpu.GetDebugRegs().dr6);
        }
        using (var g = Guest(kvm))
        {
            SetEvents(g.Vcpu, 0, e => { e.exception_injected = 1; e.exception_nr = 1; e.exception_payload = 0x4001; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Equal(0xffff0ff0UL, g.Vcpu.GetDebugRegs().dr6);
        }
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.15 Table 6-5: an injected #GP whose gate is missing is #DF(0); #DF missing too is KVM_EXIT_SHUTDOWN")]
    public static void injected_exception_escalates_to_double_and_triple_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var g = Guest(kvm, v => v == 13 ? null : new IdtVector(v)))
        {
            SetEvents(g.Vcpu, 0, e => { e.exception_injected = 1; e.exception_nr = 13; e.exception_has_error_code = 1; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            AssertFrame(g.Single(), 8, 0, Start, 0x2);
            Assert.Equal(13, g.Vcpu.GetEvents().exception_nr);
        }
        using (var g = Guest(kvm, v => v is 13 or 8 ? null : new IdtVector(v)))
        {
            SetEvents(g.Vcpu, 0, e => { e.exception_injected = 1; e.exception_nr = 13; e.exception_has_error_code = 1; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, g.Vcpu.Run().Reason);
            Assert.Empty(g.Deliveries);
            var r = g.Vcpu.GetRegs();
            Assert.Equal((Start, 0x2UL), (r.rip, r.rflags));
            Assert.Equal(0, g.Vcpu.GetEvents().exception_injected);
        }
    }

    [ConformanceCase("x86.c kvm_check_and_inject_events: an injected interrupt is re-injected whatever RFLAGS.IF and the interrupt shadow say, without an error code")]
    public static void injected_interrupt_ignores_if_and_shadow(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (ulong Rflags, byte Shadow, byte Vector)[] cases = [(0x2, 0, 0x20), (0x2 | If, 0, 0x20), (0x2 | If, KVM_X86_SHADOW_INT_STI, 0x20), (0x2 | If, 0, 13)];
        foreach (var (rflags, shadow, vector) in cases)
        {
            using var g = Guest(kvm);
            SetRflags(g.Vcpu, rflags);
            SetEvents(g.Vcpu, KVM_VCPUEVENT_VALID_SHADOW, e => { e.interrupt_injected = 1; e.interrupt_nr = vector; e.interrupt_shadow = shadow; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            var d = g.Single();
            Assert.Equal((ulong)vector, d.Vector);
            if (vector == 13) Assert.Equal(Start, d.ErrorCode); // an interrupt pushes no error code, whatever the vector
            else AssertFrame(d, vector, null, Start, rflags);
            var after = g.Vcpu.GetEvents();
            Assert.Equal((0, vector, 0), (after.interrupt_injected, after.interrupt_nr, after.interrupt_shadow));
        }
    }

    [ConformanceCase("HostDeviations.KvmPvmQueuedSoftEventsKeepRip: a queued soft interrupt or #BP pushes the RIP it was queued at (vmx.c event_exit_inst_len 0)")]
    public static void queued_soft_events_push_the_current_rip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var g = Guest(kvm, program: a => { a.@int(0x21); a.hlt(); }))
        {
            SetRflags(g.Vcpu, 0x2 | If);
            SetEvents(g.Vcpu, 0, e => { e.interrupt_injected = 1; e.interrupt_soft = 1; e.interrupt_nr = 0x20; return e; });
            Assert.Equal(0, g.Vcpu.GetEvents().interrupt_injected); // a soft interrupt reads as not injected
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            AssertFrame(g.Single(), 0x20, null, Start, 0x2 | If);
        }
        using (var g = Guest(kvm))
        {
            SetEvents(g.Vcpu, 0, e => { e.exception_injected = 1; e.exception_nr = 3; return e; });
            Assert.Equal(0, g.Vcpu.GetEvents().exception_injected); // kvm_exception_is_soft: not reported
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            AssertFrame(g.Single(), 3, null, Start, 0x2);
        }
    }

    [ConformanceCase("x86.c kvm_check_and_inject_events, svm.c svm_nmi_blocked: an injected NMI ignores the mask; a pending one needs NMIs unmasked and no shadow; delivery masks NMIs")]
    public static void nmi_injected_and_pending(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // (injected, pending, masked, shadow) → delivered?
        (byte Injected, byte Pending, byte Masked, byte Shadow, bool Delivered)[] cases =
        [
            (1, 0, 0, 0, true), (1, 0, 1, 0, true), (1, 0, 0, KVM_X86_SHADOW_INT_STI, true),
            (0, 1, 0, 0, true), (0, 1, 1, 0, false),
            (0, 1, 0, KVM_X86_SHADOW_INT_STI, false), (0, 1, 0, KVM_X86_SHADOW_INT_MOV_SS, false),
        ];
        foreach (var (injected, pending, masked, shadow, delivered) in cases)
        {
            using var g = Guest(kvm);
            SetEvents(g.Vcpu, KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW,
                e => { e.nmi_injected = injected; e.nmi_pending = pending; e.nmi_masked = masked; e.interrupt_shadow = shadow; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            var what = $"injected {injected} pending {pending} masked {masked} shadow {shadow}";
            var after = g.Vcpu.GetEvents();
            if (delivered)
            {
                AssertFrame(g.Single(), 2, null, Start, 0x2);
                Assert.True(after is { nmi_injected: 0, nmi_pending: 0, nmi_masked: 1, interrupt_shadow: 0 }, what);
            }
            else
            {
                // Blocked at entry: still pending after the run (this host opens no NMI window), the shadow gone.
                Assert.Empty(g.Deliveries);
                Assert.Equal(AfterFirstHlt, g.Vcpu.GetRegs().rip);
                Assert.True(after is { nmi_injected: 0, nmi_pending: 1, interrupt_shadow: 0 } && after.nmi_masked == masked, what);
            }
        }
    }

    [ConformanceCase("SDM Vol. 3A 6.7.1: IRET unmasks NMIs; HostDeviations.KvmPvmPendingEventsWaitForNextRun: the next pending NMI comes with the next KVM_RUN")]
    public static void iret_unmasks_nmis_and_the_next_run_delivers_the_pending_one(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // kvm_pvm (nested, software) once delivered the second NMI inside the first KVM_RUN under load ≈18 (session 21;
        // 15 of 15 runs alone kept it for the next run): like pending_nmi_waits_behind_an_injected_exception, the real
        // kernel gets three fresh attempts at the first run, the emulator one.
        for (int attempt = 1; ; attempt++)
        {
            using var g = Guest(kvm, v => new IdtVector(v, ResumeSkip: v == 2 ? 0 : -1));
            SetEvents(g.Vcpu, KVM_VCPUEVENT_VALID_NMI_PENDING, e => { e.nmi_pending = 2; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            if (ctx.Target.IsReal && attempt < 3 && g.Deliveries.Count != 1) continue;
            AssertFrame(g.Single(), 2, null, Start, 0x2);
            Assert.Equal(0x77UL, g.Vcpu.GetRegs().rax);
            var after = g.Vcpu.GetEvents();
            Assert.Equal((1, 0), (after.nmi_pending, after.nmi_masked));
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            var all = g.Deliveries;
            Assert.Equal(2, all.Count);
            AssertFrame(all[1], 2, null, AfterFirstHlt, 0x2);
            Assert.Equal((0, 0), (g.Vcpu.GetEvents().nmi_pending, g.Vcpu.GetEvents().nmi_masked));
            break;
        }
        // Any IRET unmasks, not only one ending an NMI handler.
        using (var g = Guest(kvm, program: a =>
        {
            var done = a.CreateLabel();
            a.mov(rax, rsp);
            a.push(0x10);
            a.push(rax);
            a.pushfq();
            a.push(0x8);
            a.lea(rax, __[done]);
            a.push(rax);
            a.iretq();
            a.Label(ref done);
            a.hlt();
        }))
        {
            SetEvents(g.Vcpu, KVM_VCPUEVENT_VALID_NMI_PENDING, e => { e.nmi_pending = 1; e.nmi_masked = 1; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Empty(g.Deliveries);
            var after = g.Vcpu.GetEvents();
            Assert.Equal((1, 0), (after.nmi_pending, after.nmi_masked));
        }
    }

    [ConformanceCase("x86.c kvm_check_and_inject_events: a re-injected event or a pending exception is delivered alone; a pending NMI waits")]
    public static void pending_nmi_waits_behind_an_injected_exception(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // kvm_pvm (nested, software) once delivered the NMI first under a loaded clean-clone CI run (session 12; 15 of 15
        // runs on a quieter machine kept the order): the real kernel gets three fresh attempts, the emulator one.
        for (int attempt = 1; ; attempt++)
        {
            using var g = Guest(kvm, v => new IdtVector(v, ResumeSkip: v is 2 or 13 ? 0 : -1));
            SetEvents(g.Vcpu, KVM_VCPUEVENT_VALID_NMI_PENDING, e => { e.exception_injected = 1; e.exception_nr = 13; e.exception_has_error_code = 1; e.nmi_pending = 1; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            if (ctx.Target.IsReal && attempt < 3 && (g.Deliveries.Count != 1 || g.Deliveries[0].Vector != 13)) continue;
            AssertFrame(g.Single(), 13, 0, Start, 0x2);
            Assert.Equal(1, g.Vcpu.GetEvents().nmi_pending);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Equal(2, g.Deliveries.Count);
            AssertFrame(g.Deliveries[1], 2, null, AfterFirstHlt, 0x2);
            return;
        }
    }

    [ConformanceCase("kvm_arch_vcpu_ioctl_run: with immediate_exit the queued event stays queued (-EINTR before vcpu_enter_guest)")]
    public static void immediate_exit_keeps_the_event_queued(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm);
        SetEvents(g.Vcpu, 0, e => { e.exception_injected = 1; e.exception_nr = 13; e.exception_has_error_code = 1; return e; });
        g.Vcpu.ImmediateExit = true;
        Assert.True(g.Vcpu.Run().Interrupted); // -EINTR
        g.Vcpu.ImmediateExit = false;
        Assert.Equal(1, g.Vcpu.GetEvents().exception_injected);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        AssertFrame(g.Single(), 13, 0, Start, 0x2);
    }

    [ConformanceCase("HostDeviations.KvmPvmGuestExceptionsPassThroughQueue: a guest's own fault is queued by KVM, so KVM_GET_VCPU_EVENTS reads its vector and error code after")]
    public static void guest_faults_pass_through_the_exception_queue(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (Action<Assembler> Body, byte Vector, byte HasError, uint Error)[] cases =
        [
            (a => a.ud2(), 6, 0, 0),
            (a => { a.mov(rax, long.MinValue); a.mov(rbx, __qword_ptr[rax]); }, 13, 1, 0),
            (a => { a.mov(rax, 0x4000_0000L); a.mov(__qword_ptr[rax], rax); }, 14, 1, 2),
        ];
        foreach (var (body, vector, hasError, error) in cases)
        {
            using var g = Guest(kvm, program: a => { body(a); a.hlt(); });
            SetEvents(g.Vcpu, 0, e => { e.exception_nr = 5; e.exception_error_code = 0x99; e.exception_payload = 0xdead000; return e; });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Equal((ulong)vector, g.Single().Vector);
            var e = g.Vcpu.GetEvents();
            Assert.Equal((0, vector, hasError, error, 0, 0UL), (e.exception_injected, e.exception_nr, e.exception_has_error_code, e.exception_error_code, e.exception_has_payload, e.exception_payload));
        }
    }
}
