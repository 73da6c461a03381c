// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Abi.KvmVcpuEvents;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Rules of the event queue the differential fuzzer's interrupt ops found the emulator getting wrong (src/KvmSharp.Fuzzing
/// InterruptOps, TinyGuestRun.Interrupts): the interrupt shadow KVM's instruction emulator gives STI, what a KVM_RUN that
/// fails after injecting leaves queued, and two rules of KVM_SET_GUEST_DEBUG. Probed on Linux 6.18 kvm_pvm in C first.
/// </summary>
public static class EventQueueRules
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const ulong If = 1UL << 9, Tf = 1UL << 8;

    /// <summary>The real-mode guest's MMIO address: DS = 0x2000 puts [0] at 0x20000, past the slot.</summary>
    private const ulong MmioGpa = 0x20000;

    private static RealModeGuest ShadowGuest(Kvm kvm, ulong rflags, Action<Assembler> beforeRead)
    {
        var g = RealModeGuest.Create(kvm, a =>
        {
            a.mov(ax, 0x2000);
            a.mov(ds, ax);
            beforeRead(a);
            a.mov(ax, __word_ptr[0]);
            a.hlt();
        }, backing: GuestMemoryBacking.HostMemory);
        var r = g.Vcpu.GetRegs();
        r.rflags = rflags;
        g.Vcpu.SetRegs(r);
        return g;
    }

    [ConformanceCase("arch/x86/kvm/emulate.c em_sti + " + X86 + " toggle_interruptibility: STI opens an interrupt shadow whether IF was clear or already set (ctxt->interruptibility = KVM_X86_SHADOW_INT_STI); an STI in an STI shadow opens none; MOV SS opens a MOV SS shadow — seen while the next instruction waits for its MMIO read (ready_for_interrupt_injection 0)")]
    public static void sti_opens_a_shadow_whatever_if_was(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (ulong rflags in new[] { 0x2UL, 0x2 | If })
        {
            using (var g = ShadowGuest(kvm, rflags, a => a.sti()))
            {
                var exit = g.Vcpu.Run();
                Assert.Equal((KvmExitReason.KVM_EXIT_MMIO, MmioGpa), (exit.Reason, exit.MmioAddress));
                Assert.Equal(KVM_X86_SHADOW_INT_STI, g.Vcpu.GetEvents().interrupt_shadow);
                Assert.False(exit.ReadyForInterruptInjection, $"rflags 0x{rflags:X}: in the STI shadow");
                Assert.True(exit.InterruptFlag);
                // The read completes, the shadow ends with it.
                Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
                Assert.Equal(0, g.Vcpu.GetEvents().interrupt_shadow);
                Assert.True(g.Vcpu.ReadyForInterruptInjection);
            }
            using (var g = ShadowGuest(kvm, rflags, a => { a.sti(); a.sti(); }))
            {
                var exit = g.Vcpu.Run();
                Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
                Assert.Equal(0, g.Vcpu.GetEvents().interrupt_shadow);
                Assert.True(exit.ReadyForInterruptInjection, $"rflags 0x{rflags:X}: sti; sti");
            }
            using (var g = ShadowGuest(kvm, rflags, a => { a.mov(bx, ss); a.mov(ss, bx); }))
            {
                var exit = g.Vcpu.Run();
                Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
                Assert.Equal(KVM_X86_SHADOW_INT_MOV_SS, g.Vcpu.GetEvents().interrupt_shadow);
                Assert.False(exit.ReadyForInterruptInjection);
            }
        }
    }

    private static long RunRaw(CaseContext ctx, Vcpu vcpu) => ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_RUN, 0UL);

    private static void Events(Vcpu vcpu, Func<kvm_vcpu_events, kvm_vcpu_events> edit)
    {
        var e = vcpu.GetEvents();
        e.flags = 0;
        vcpu.SetEvents(edit(e));
    }

    /// <summary>A vCPU of a VM without memslots; KVM_RUN must fail with ENOSPC there (shadow paging), or the case skips.</summary>
    private static (Vm Vm, Vcpu Vcpu) Slotless(CaseContext ctx, Kvm kvm, Action<Vcpu> queue)
    {
        var vm = kvm.CreateVm();
        var vcpu = vm.CreateVcpu();
        queue(vcpu);
        long rc = RunRaw(ctx, vcpu);
        if (rc != -(long)Errno.ENOSPC)
        {
            vcpu.Dispose();
            vm.Dispose();
            CaseContext.Skip($"KVM_RUN of a VM without memslots answered {rc}, not ENOSPC (this kernel's MMU loads a root without them)");
        }
        return (vm, vcpu);
    }

    [ConformanceCase(X86 + " vcpu_enter_guest: kvm_check_and_inject_events runs before kvm_mmu_reload; when that fails (ENOSPC: shadow paging, no memslot yet) cancel_injection requeues the one event injected — NMI masking, a pending NMI taken and a pending exception made injected stay (kvm_inject_exception drops has_error_code in real mode); a soft exception or soft interrupt, which svm_update_soft_interrupt_rip cannot decode without memory, is dropped; events behind the injected one stay")]
    public static void a_failed_entry_keeps_what_injection_did(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (string What, Action<Vcpu> Queue, Action<kvm_vcpu_events> Check)[] cases =
        [
            ("KVM_NMI x2", v => { v.InjectNmi(); v.InjectNmi(); },
                e => Assert.Equal((1, 1, 1), (e.nmi_injected, e.nmi_pending, e.nmi_masked))),
            ("NMI injected", v => Events(v, e => { e.nmi_injected = 1; return e; }),
                e => Assert.Equal((1, 0, 1), (e.nmi_injected, e.nmi_pending, e.nmi_masked))),
            ("KVM_NMI, NMIs masked", v => { Events(v, e => { e.nmi_masked = 1; return e; }); v.InjectNmi(); },
                e => Assert.Equal((0, 1, 1), (e.nmi_injected, e.nmi_pending, e.nmi_masked))),
            ("interrupt injected + KVM_NMI", v => { v.InjectInterrupt(0x30); v.InjectNmi(); },
                e => Assert.Equal((1, 0x30, 0, 1, 0), (e.interrupt_injected, e.interrupt_nr, e.nmi_injected, e.nmi_pending, e.nmi_masked))),
            ("#BP pending (INJECT_BP) + KVM_NMI", v => { v.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.InjectBreakpointException); v.InjectNmi(); },
                e => Assert.Equal((0, 0, 3, 0, 1), (e.exception_injected, e.exception_pending, e.exception_nr, e.nmi_injected, e.nmi_pending))),
            ("#OF injected", v => Events(v, e => { e.exception_injected = 1; e.exception_nr = 4; return e; }),
                e => Assert.Equal((0, 4), (e.exception_injected, e.exception_nr))),
            ("soft interrupt 0x40", v => Events(v, e => { e.interrupt_injected = 1; e.interrupt_nr = 0x40; e.interrupt_soft = 1; return e; }),
                e => Assert.Equal((0, 0x40, 0), (e.interrupt_injected, e.interrupt_nr, e.interrupt_soft))),
            ("#GP injected + KVM_NMI", v => { Events(v, e => { e.exception_injected = 1; e.exception_nr = 13; e.exception_has_error_code = 1; e.exception_error_code = 0x18; return e; }); v.InjectNmi(); },
                e => Assert.Equal((1, 13, 0, 0x18u, 0, 1), (e.exception_injected, e.exception_nr, e.exception_has_error_code, e.exception_error_code, e.nmi_injected, e.nmi_pending))),
            // kvm_inject_exception: "has_error_code &= is_protmode(vcpu)" — real mode drops the flag, keeps the code.
            ("#OF injected with an error code", v => Events(v, e => { e.exception_injected = 1; e.exception_nr = 4; e.exception_has_error_code = 1; e.exception_error_code = 0x77; return e; }),
                e => Assert.Equal((0, 4, 0, 0x77u), (e.exception_injected, e.exception_nr, e.exception_has_error_code, e.exception_error_code))),
            ("#GP injected in protected mode", v => { var sr = v.GetSregs(); sr.cr0 |= 1; v.SetSregs(sr); Events(v, e => { e.exception_injected = 1; e.exception_nr = 13; e.exception_has_error_code = 1; e.exception_error_code = 0x18; return e; }); },
                e => Assert.Equal((1, 13, 1, 0x18u), (e.exception_injected, e.exception_nr, e.exception_has_error_code, e.exception_error_code))),
        ];
        foreach (var (what, queue, check) in cases)
        {
            var (vm, vcpu) = Slotless(ctx, kvm, queue);
            using (vm)
            using (vcpu)
            {
                var e = vcpu.GetEvents();
                try
                {
                    check(e);
                }
                catch (Xunit.Sdk.XunitException ex)
                {
                    throw new Xunit.Sdk.XunitException($"{what}: {ex.Message}");
                }
                // A second failed entry changes nothing more.
                CaseContext.AssertErrno(Errno.ENOSPC, RunRaw(ctx, vcpu), what + ": again");
                var again = vcpu.GetEvents();
                Assert.True(System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<kvm_vcpu_events>(ref e)).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<kvm_vcpu_events>(ref again))), $"{what}: the second failed entry changed the queue");
            }
        }
    }

    [ConformanceCase(X86 + " kvm_arch_vcpu_ioctl_set_guest_debug: INJECT_BP/INJECT_DB is EBUSY while kvm_is_exception_pending — a KVM_REQ_TRIPLE_FAULT from KVM_X86_SET_MCE (CR4.MCE clear) counts; the guest's RFLAGS.TF is read through kvm_get_rflags, which hides TF while single-stepping, so turning single-step off (or changing it) clears the guest's own TF")]
    public static void set_guest_debug_sees_triple_faults_and_drops_tf(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var vm = kvm.CreateVm())
        using (var vcpu = vm.CreateVcpu())
        {
            vcpu.SetupMce(McgCap(2));
            var s = vcpu.GetSregs();
            s.cr4 &= ~(1UL << 6);
            vcpu.SetSregs(s);
            vcpu.InjectMachineCheck(0, (1UL << 63) | (1UL << 61) | (1UL << 60) | (1UL << 56) | (1UL << 55), 0x1000, 0x86, 0x5);
            Assert.Equal(0, vcpu.GetEvents().exception_injected); // a triple-fault request, no #MC
            CaseContext.AssertErrno(Errno.EBUSY, () => vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.InjectBreakpointException));
            vcpu.SetGuestDebug(GuestDebugFlags.Enable); // no INJECT_*: accepted
        }
        foreach (var (flags, keepsTf) in new[] { (GuestDebugFlags.Enable, true), (GuestDebugFlags.Enable | GuestDebugFlags.SingleStep, false) })
        {
            using var vm = kvm.CreateVm();
            using var vcpu = vm.CreateVcpu();
            var r = vcpu.GetRegs();
            r.rflags = 0x2 | Tf;
            vcpu.SetRegs(r);
            vcpu.SetGuestDebug(flags);
            vcpu.DisableGuestDebug();
            Assert.True(keepsTf == ((vcpu.GetRegs().rflags & Tf) != 0), $"{flags}: TF after KVM_SET_GUEST_DEBUG(0)");
        }
    }

    [ConformanceCase(X86 + " kvm_arch_vcpu_ioctl_set_guest_debug → kvm_queue_exception → kvm_multiple_exception: INJECT_BP onto an exception KVM_SET_VCPU_EVENTS left injected is accepted (only a pending one is EBUSY); onto an injected #DF it queues nothing and requests a triple fault (\"if (prev_nr == DF_VECTOR) kvm_make_request(KVM_REQ_TRIPLE_FAULT)\"): the #DF stays, the next INJECT_BP is EBUSY, KVM_RUN exits with KVM_EXIT_SHUTDOWN; onto another injected exception the benign #BP replaces it")]
    public static void inject_bp_onto_an_injected_double_fault_is_a_triple_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (byte injected in new byte[] { 8, 13 })
        {
            using var guest = RealModeGuest.Create(kvm, a => a.hlt(), backing: GuestMemoryBacking.HostMemory);
            var vcpu = guest.Vcpu;
            var ev = vcpu.GetEvents();
            ev.exception_injected = 1;
            ev.exception_nr = injected;
            ev.exception_has_error_code = 1;
            ev.exception_error_code = 0x1234;
            vcpu.SetEvents(ev);
            vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.InjectBreakpointException);
            var after = vcpu.GetEvents();
            if (injected == 8)
            {
                // Found by the differential fuzzer (seed 12): the emulator had replaced the #DF with the #BP.
                Assert.Equal((1, 8, 1, 0x1234u), (after.exception_injected, after.exception_nr, after.exception_has_error_code, after.exception_error_code));
                CaseContext.AssertErrno(Errno.EBUSY, () => vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.InjectBreakpointException));
                var exit = vcpu.Run();
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SHUTDOWN, $"#DF + INJECT_BP: expected KVM_EXIT_SHUTDOWN, got {exit.ToString()}");
            }
            else
            {
                // The #BP is pending now, which KVM_GET_VCPU_EVENTS does not report as injected or pending: a soft
                // exception (kvm_exception_is_soft) has no instruction length in this API. Only its vector shows.
                Assert.Equal((0, 3, 0, 0), (after.exception_injected, after.exception_nr, after.exception_has_error_code, after.exception_pending));
                CaseContext.AssertErrno(Errno.EBUSY, () => vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.InjectBreakpointException));
            }
        }
    }

    private static ulong McgCap(int banks) => (ulong)banks | KvmSharp.X86.McgCap.CtlP;
}
