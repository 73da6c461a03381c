// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// A vCPU with an in-kernel local APIC that is not running waits inside KVM_RUN (arch/x86/kvm/x86.c
/// kvm_arch_vcpu_ioctl_run, vcpu_run, vcpu_block, __kvm_emulate_halt; virt/kvm/kvm_main.c kvm_vcpu_block /
/// kvm_vcpu_check_block) until an event wakes it, and INIT / SIPI bring an AP up (arch/x86/kvm/lapic.c
/// __apic_accept_irq, kvm_apic_accept_events, kvm_apic_send_ipi). Each case runs vCPUs on threads of their own; a
/// vCPU that must be interrupted is signalled (IKernel.KickThread) until its KVM_RUN returns — no timing is asserted.
/// Probed in C on Linux 6.18 kvm_pvm first: no difference from upstream.
/// </summary>
public static class ApicWaiting
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const ulong MemSize = 0x10000;
    private const ulong Code = 0x1000, NmiHandler = 0x1100, ApCode = 0x2000, ApData = 0x3000;
    private const byte ResumedPort = 0x10, NmiPort = 0x12, ApPort = 0x16;

    /// <summary>A hang guard, not a timing assertion: a vCPU thread still running after this long fails the case.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    private static byte[] Asm(int bitness, ulong ip, Action<Assembler> program)
    {
        var a = new Assembler(bitness);
        program(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), ip);
        return stream.ToArray();
    }

    /// <summary>A VM with a full irqchip and 64 KiB of memory at GPA 0: the BSP's real-mode code at 0x1000 (hlt, then
    /// OUT 0x10), an NMI handler at 0x1100 (OUT 0x12, hlt) in the IVT, the AP's code at 0x2000 (a byte to 0x3000, OUT 0x16, hlt).</summary>
    private static (Vm Vm, AnonymousMemory Mem) CreateVm(Kvm kvm, Action<Assembler>? bspProgram = null, int bitness = 16)
    {
        var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        var mem = vm.AllocateMemory(MemSize);
        vm.AddMemorySlot(0, 0, mem);
        mem.Write(Code, Asm(bitness, Code, bspProgram ?? (a =>
        {
            a.hlt();
            a.@out(ResumedPort, al);
            a.hlt();
        })));
        mem.Write(NmiHandler, Asm(16, NmiHandler, a =>
        {
            a.@out(NmiPort, al);
            a.hlt();
        }));
        mem.Write(ApCode, Asm(16, ApCode, a =>
        {
            a.mov(__byte_ptr[(int)ApData], 0x5a);
            a.@out(ApPort, al);
            a.hlt();
        }));
        mem.Write<uint>(2 * 4, (uint)NmiHandler); // IVT[2] = 0000:1100
        return (vm, mem);
    }

    /// <summary>Real mode at <see cref="Code"/> with CS base 0, IF clear.</summary>
    private static void StartRealMode(Vcpu vcpu)
    {
        var s = vcpu.GetSregs();
        s.cs.@base = 0;
        s.cs.selector = 0;
        vcpu.SetSregs(s);
        vcpu.SetRegs(new kvm_regs { rip = Code, rflags = 2, rsp = 0x7000 });
    }

    private sealed class RunThread
    {
        private readonly Thread _thread;
        private int _tid;

        public RunThread(CaseContext ctx, Func<object?> body)
        {
            using var started = new ManualResetEventSlim();
            _thread = new Thread(() =>
            {
                _tid = ctx.Kernel.GetTid();
                started.Set();
                try
                {
                    Result = body();
                }
                catch (Exception e)
                {
                    Error = e;
                }
            }) { IsBackground = true };
            _thread.Start();
            started.Wait();
            Ctx = ctx;
        }

        private CaseContext Ctx { get; }

        public object? Result { get; private set; }

        public Exception? Error { get; private set; }

        /// <summary>Signals the thread until its body returned (a signal outside KVM_RUN is ignored, so it repeats).</summary>
        public void KickUntilDone()
        {
            var deadline = DateTime.UtcNow + HangGuard;
            while (!_thread.Join(10))
            {
                Ctx.Kernel.KickThread(_tid);
                Assert.True(DateTime.UtcNow < deadline, "the vCPU thread did not return to a signal");
            }
        }

        /// <summary>Waits for the body; after the hang guard the thread is signalled and the case fails.</summary>
        public void Join()
        {
            if (_thread.Join(HangGuard)) return;
            KickUntilDone();
            Assert.Fail("the vCPU never left KVM_RUN on its own");
        }

        public T Get<T>()
        {
            if (Error is not null) throw new InvalidOperationException("vCPU thread failed", Error);
            return (T)Result!;
        }
    }

    private static (bool Interrupted, KvmExitReason Reason, ushort Port) Describe(VcpuExit exit) =>
        (exit.Interrupted, exit.Reason, exit.Reason == KvmExitReason.KVM_EXIT_IO ? exit.IoPort : (ushort)0);

    /// <summary>
    /// Runs <paramref name="vcpu"/> into HLT: each KVM_RUN is signalled until it returns (-EINTR, KVM_EXIT_INTR), and a
    /// run the signal ended before the HLT is run again (<paramref name="beforeHlt"/> checks the vCPU then).
    /// </summary>
    private static void RunUntilHalted(CaseContext ctx, Vcpu vcpu, Action? beforeHlt = null)
    {
        while (true)
        {
            var t = new RunThread(ctx, () => Describe(vcpu.Run()));
            t.KickUntilDone();
            Assert.Equal((true, KvmExitReason.KVM_EXIT_INTR, (ushort)0), t.Get<(bool, KvmExitReason, ushort)>());
            if (vcpu.GetMpState() == KvmMpState.KVM_MP_STATE_HALTED) return;
            beforeHlt?.Invoke();
        }
    }

    [ConformanceCase(X86 + " __kvm_emulate_halt with an in-kernel APIC: HLT makes the vCPU HALTED and vcpu_block waits in KVM_RUN (no KVM_EXIT_HLT); a signal ends the wait with -EINTR and KVM_EXIT_INTR, the vCPU still HALTED; immediate_exit returns -EINTR at once; an NMI (KVM_SIGNAL_MSI) wakes it — RUNNABLE, the NMI delivered through the IVT")]
    public static void hlt_waits_in_the_kernel_until_an_event(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var (vm, mem) = CreateVm(kvm);
        using (vm)
        using (mem)
        using (var v0 = vm.CreateVcpu(0))
        {
            StartRealMode(v0);
            // The only vCPU is not in the APIC map until it is recalculated (ApicMessages.msi_destinations_follow_the_apic_map).
            v0.SetLapic(v0.GetLapic());
            RunUntilHalted(ctx, v0, beforeHlt: () => Assert.Equal(Code, v0.GetRegs().rip));
            Assert.Equal(Code + 1, v0.GetRegs().rip);
            v0.ImmediateExit = true;
            Assert.True(v0.Run().Interrupted);
            v0.ImmediateExit = false;
            Assert.Equal(KvmMpState.KVM_MP_STATE_HALTED, v0.GetMpState());
            var run = new RunThread(ctx, () => Describe(v0.Run()));
            Assert.Equal(1, vm.SignalMsi(0xfee00000, 0x400));
            run.Join();
            Assert.Equal((false, KvmExitReason.KVM_EXIT_IO, (ushort)NmiPort), run.Get<(bool, KvmExitReason, ushort)>());
            Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v0.GetMpState());
        }
    }

    [ConformanceCase("virt/kvm/eventfd.c irqfd_wakeup → kvm_set_msi → kvm_vcpu_kick: a write to an irqfd whose GSI routes an NMI message to the vCPU wakes it from HLT in KVM_RUN — RUNNABLE, the NMI delivered through the IVT")]
    public static void an_irqfd_wakes_a_halted_vcpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var (vm, mem) = CreateVm(kvm);
        using (vm)
        using (mem)
        using (var v0 = vm.CreateVcpu(0))
        using (var eventFd = kvm.CreateEventFd(options: EventFdOptions.NonBlocking))
        {
            StartRealMode(v0);
            v0.SetLapic(v0.GetLapic());
            vm.SetGsiRouting([GsiRoute.ToMsi(100, 0xfee0_0000, 0x400)]);
            using var irqfd = vm.AssignIrqFd(eventFd, 100);
            RunUntilHalted(ctx, v0);
            var run = new RunThread(ctx, () => Describe(v0.Run()));
            eventFd.Signal();
            run.Join();
            Assert.Equal((false, KvmExitReason.KVM_EXIT_IO, (ushort)NmiPort), run.Get<(bool, KvmExitReason, ushort)>());
            Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v0.GetMpState());
            Assert.False(eventFd.TryRead(out _), "the irqfd consumed the write");
        }
    }

    [ConformanceCase(X86 + " kvm_arch_vcpu_ioctl_run for an UNINITIALIZED AP: immediate_exit → -EINTR (exit_reason untouched); else kvm_vcpu_block until an event: a signal → -EINTR with KVM_EXIT_INTR, an INIT → kvm_apic_accept_events (INIT_RECEIVED) and -EAGAIN; then an INIT_RECEIVED AP waits in vcpu_block for its SIPI, which starts it in real mode at vector << 12 (kvm_vcpu_deliver_sipi_vector)")]
    public static void an_ap_waits_for_init_and_sipi(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var (vm, mem) = CreateVm(kvm);
        using (vm)
        using (mem)
        using (var v0 = vm.CreateVcpu(0))
        using (var v1 = vm.CreateVcpu(1))
        {
            Assert.Equal(KvmMpState.KVM_MP_STATE_UNINITIALIZED, v1.GetMpState());
            v1.ImmediateExit = true;
            var quick = v1.Run();
            Assert.Equal((true, (KvmExitReason)0), (quick.Interrupted, quick.Reason));
            v1.ImmediateExit = false;
            var blocked = new RunThread(ctx, () => Describe(v1.Run()));
            blocked.KickUntilDone();
            Assert.Equal((true, KvmExitReason.KVM_EXIT_INTR, (ushort)0), blocked.Get<(bool, KvmExitReason, ushort)>());
            Assert.Equal(KvmMpState.KVM_MP_STATE_UNINITIALIZED, v1.GetMpState());
            // vCPU 1 joined the APIC map only now (ApicMessages.msi_destinations_follow_the_apic_map).
            v1.SetLapic(v1.GetLapic());
            var init = new RunThread(ctx, () => AssertErrno(Errno.EAGAIN, () => v1.Run()).Errno);
            Assert.Equal(1, vm.SignalMsi(0xfee01000, 0x500));
            init.Join();
            Assert.Equal(Errno.EAGAIN, init.Get<Errno>());
            Assert.Equal(KvmMpState.KVM_MP_STATE_INIT_RECEIVED, v1.GetMpState());
            var sipi = new RunThread(ctx, () => Describe(v1.Run()));
            Assert.Equal(1, vm.SignalMsi(0xfee01000, 0x600 | (uint)(ApCode >> 12)));
            sipi.Join();
            Assert.Equal((false, KvmExitReason.KVM_EXIT_IO, (ushort)ApPort), sipi.Get<(bool, KvmExitReason, ushort)>());
            var s = v1.GetSregs();
            Assert.Equal(((ushort)0x0200, 0x2000UL), (s.cs.selector, s.cs.@base));
            Assert.Equal(0x5a, mem.Read<byte>(ApData));
        }
    }

    [ConformanceCase("arch/x86/kvm/lapic.c the APIC timer (start_apic_timer, apic_timer_expired, kvm_apic_local_deliver(APIC_LVTT), apic_get_tmcct, update_divide_count) driven by a real-mode guest whose DS base is the xAPIC page: a one-shot count wakes the halted vCPU with LVTT's vector, a periodic one (timer_mode_mask from KVM_SET_CPUID2, kvm_vcpu_after_set_cpuid) keeps interrupting until TMICT is 0, and TMCCT counts down from TMICT (the guest's read and KVM_GET_LAPIC's); only that interrupts arrive is asserted, not when")]
    public static void apic_timer_one_shot_and_periodic(CaseContext ctx)
    {
        const int Count = 0x3100, Tmcct = 0x3104;
        using var kvm = ctx.OpenKvm();
        // Real mode (this host's KVM emulates every instruction, and its emulator has no protected-mode IRET): DS's base
        // is the APIC page, ES's is 0.
        var (vm, mem) = CreateVm(kvm, a =>
        {
            var oneShot = a.CreateLabel();
            var periodic = a.CreateLabel();
            a.mov(__dword_ptr[0xF0], 0x1ff);
            a.mov(__dword_ptr[0x3E0], 0xb);
            a.mov(__dword_ptr[0x320], 0x40);
            a.mov(__dword_ptr[0x380], 100_000);
            a.sti();
            a.Label(ref oneShot);
            a.hlt();
            a.cmp(__dword_ptr.es[Count], 1);
            a.jb(oneShot);
            a.@out(ResumedPort, al);
            a.mov(__dword_ptr[0x320], 0x20040);
            a.mov(__dword_ptr[0x380], 300_000);
            a.Label(ref periodic);
            a.hlt();
            a.cmp(__dword_ptr.es[Count], 4);
            a.jb(periodic);
            a.mov(__dword_ptr[0x380], 0);
            a.@out(ResumedPort + 1, al);
            a.mov(__dword_ptr[0x320], 0x10040);
            a.mov(__dword_ptr[0x3E0], 0xa);
            a.mov(__dword_ptr[0x380], unchecked((int)0xffffffff));
            a.mov(eax, __dword_ptr[0x390]);
            a.mov(__dword_ptr.es[Tmcct], eax);
            a.@out(ResumedPort + 2, al);
            a.cli();
            a.hlt();
        });
        using (vm)
        using (mem)
        using (var v0 = vm.CreateVcpu(0))
        {
            mem.Write(0x1200, Asm(16, 0x1200, a =>
            {
                a.inc(__dword_ptr.es[Count]);
                a.mov(__dword_ptr[0xB0], 0);
                a.iret();
            }));
            mem.Write<uint>(0x40 * 4, 0x1200); // IVT[0x40] = 0000:1200
            // Without KVM_SET_CPUID2 timer_mode_mask is 0 and LVTT's periodic bit is dropped (kvm_vcpu_after_set_cpuid).
            v0.SetCpuid(kvm.GetSupportedCpuid());
            StartRealMode(v0);
            var s = v0.GetSregs();
            s.ds.@base = 0xFEE00000;
            s.es.@base = 0;
            v0.SetSregs(s);
            foreach (int port in new[] { ResumedPort, ResumedPort + 1, ResumedPort + 2 })
            {
                var t = new RunThread(ctx, () => Describe(v0.Run()));
                t.Join();
                var got = t.Get<(bool, KvmExitReason, ushort)>();
                Assert.True(got == (false, KvmExitReason.KVM_EXIT_IO, (ushort)port),
                    $"expected OUT 0x{port:X}, got {got} at RIP 0x{v0.GetRegs().rip:X}, {mem.Read<uint>(Count)} interrupts");
            }
            Assert.True(mem.Read<uint>(Count) >= 4, $"timer interrupts: {mem.Read<uint>(Count)}");
            uint guestRead = mem.Read<uint>(Tmcct);
            var l = v0.GetLapic();
            Assert.True(guestRead > 0 && l.TimerCurrentCount > 0 && l.TimerCurrentCount <= guestRead,
                $"TMCCT: the guest read 0x{guestRead:X}, KVM_GET_LAPIC 0x{l.TimerCurrentCount:X}");
            Assert.Equal(0xffffffffu, l[0x380]);
        }
    }

    [ConformanceCase("arch/x86/kvm/lapic.c kvm_lapic_reg_write APIC_LVTT: \"val &= (apic_lvt_mask[LVT_TIMER] | apic->lapic_timer.timer_mode_mask)\"; timer_mode_mask is 0 until KVM_SET_CPUID2 (cpuid.c kvm_vcpu_after_set_cpuid: 1 << 17, 3 << 17 with TSC-deadline), so the guest's periodic LVTT reads back one-shot on a vCPU whose CPUID was never set; reserved bits are dropped either way")]
    public static void lvtt_timer_mode_needs_cpuid(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (bool cpuid in new[] { false, true })
        {
            var (vm, mem) = CreateVm(kvm, a =>
            {
                a.mov(__dword_ptr[0xF0], 0x1ff);
                a.mov(__dword_ptr[0x320], 0x2_a740);
                a.@out(ResumedPort, al);
                a.cli();
                a.hlt();
            });
            using (vm)
            using (mem)
            using (var v0 = vm.CreateVcpu(0))
            {
                if (cpuid) v0.SetCpuid(kvm.GetSupportedCpuid());
                StartRealMode(v0);
                var s = v0.GetSregs();
                s.ds.@base = 0xFEE00000;
                v0.SetSregs(s);
                var t = new RunThread(ctx, () => Describe(v0.Run()));
                t.Join();
                Assert.Equal((false, KvmExitReason.KVM_EXIT_IO, (ushort)ResumedPort), t.Get<(bool, KvmExitReason, ushort)>());
                Assert.Equal(cpuid ? 0x2_0040u : 0x40u, v0.GetLapic()[LapicState.LvtTimerOffset]);
            }
        }
    }

    [ConformanceCase("arch/x86/kvm/lapic.c kvm_lapic_reg_write APIC_ICR → kvm_apic_send_ipi: a BSP guest in 32-bit protected mode software-enables its APIC (SPIV), writes ICR2 = APIC 1 and sends INIT, SIPI, SIPI through the xAPIC page (no KVM_EXIT_MMIO); the AP, waiting in KVM_RUN on its own thread (-EAGAIN after the INIT, then waiting for the SIPI), starts at vector << 12 and writes its flag")]
    public static void bsp_starts_an_ap_with_init_sipi_sipi(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        uint vector = (uint)(ApCode >> 12);
        var (vm, mem) = CreateVm(kvm, a =>
        {
            a.mov(__dword_ptr[0xFEE000F0u], 0x1ff);
            a.mov(__dword_ptr[0xFEE00310u], 1u << 24);
            a.mov(__dword_ptr[0xFEE00300u], 0x4500);
            a.mov(__dword_ptr[0xFEE00300u], 0x4600 | vector);
            a.mov(__dword_ptr[0xFEE00300u], 0x4600 | vector);
            a.@out(ResumedPort, al);
            a.hlt();
        }, bitness: 32);
        using (vm)
        using (mem)
        using (var v0 = vm.CreateVcpu(0))
        using (var v1 = vm.CreateVcpu(1))
        {
            var s = v0.GetSregs();
            var code = new kvm_segment { @base = 0, limit = 0xffffffff, selector = 8, type = 11, present = 1, s = 1, db = 1, g = 1 };
            var data = code with { selector = 16, type = 3 };
            s.cs = code;
            s.ds = s.es = s.ss = s.fs = s.gs = data;
            s.cr0 |= 1;
            v0.SetSregs(s);
            v0.SetRegs(new kvm_regs { rip = Code, rflags = 2, rsp = 0x7000 });
            var ap = new RunThread(ctx, () =>
            {
                while (true)
                {
                    try
                    {
                        return (object)Describe(v1.Run());
                    }
                    catch (KvmException e) when (e.Errno == Errno.EAGAIN)
                    {
                        // kvm_arch_vcpu_ioctl_run of an UNINITIALIZED vCPU that took its INIT: run again.
                    }
                }
            });
            var bsp = new RunThread(ctx, () => Describe(v0.Run()));
            bsp.Join();
            Assert.Equal((false, KvmExitReason.KVM_EXIT_IO, (ushort)ResumedPort), bsp.Get<(bool, KvmExitReason, ushort)>());
            ap.Join();
            Assert.Equal((false, KvmExitReason.KVM_EXIT_IO, (ushort)ApPort), ap.Get<(bool, KvmExitReason, ushort)>());
            Assert.Equal(0x5a, mem.Read<byte>(ApData));
            Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v1.GetMpState());
        }
    }
}
