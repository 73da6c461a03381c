// SPDX-License-Identifier: MIT
using System.Diagnostics;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// How a blocked x86 vCPU wakes (KvmMain/HaltPolling.cs Block, Vcpu/KvmVcpu.cs WaitForKick): at its timer's due time —
/// the LAPIC one-shot timer and the TSC deadline (lapic.c apic_timer_fn → apic_timer_expired → kvm_vcpu_kick) — not at
/// the next millisecond, and at once when another thread kicks it (an MSI: kvm_irq_delivery_to_apic → kvm_vcpu_kick)
/// whatever its timer says. The kernel's hrtimer wakes a 100 µs halt after about 100 µs (+ wake-up latency, measured
/// 120–145 µs on this host); the emulator's old 1 ms sleep ended every such wait after 1.0–1.7 ms, the new one after
/// 100–105 µs on a quiet host (docs/STATUS.md session 24). That latency is the host scheduler's and is measured, not
/// asserted (a busy host deschedules the waiting thread for milliseconds): the tests assert that each halt that
/// sleeps (most: a due time can pass between the check and the sleep) sleeps toward a due time (KvmVcpu.TimedWaits), never returns before it, and that a kick ends it.
/// arm64's WFI: HaltWakeArm64Tests.cs.
/// </summary>
public sealed class HaltWakeTests
{
    private const ulong Code = 0x1000, Handler = 0x1200, MsiHandler = 0x1300;
    private const int Count = 0x3100;
    private const byte TimerVector = 0x40, MsiVector = 0x41, DonePort = 0x10, MsiPort = 0x11;
    private const uint TscDeadlineMsr = 0x6e0;

    private static byte[] Asm(ulong ip, Action<Assembler> program)
    {
        var a = new Assembler(16);
        program(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), ip);
        return stream.ToArray();
    }

    /// <summary>A real-mode vCPU with an in-kernel irqchip (DS = the xAPIC page, ES = 0) and KVM_CAP_HALT_POLL 0.</summary>
    private sealed class Guest : IDisposable
    {
        public readonly EmulatedKernel Kernel = new(EmulatorConfig.X86_64());
        public readonly Kvm Sdk;
        public readonly Vm Vm;
        public readonly AnonymousMemory Mem;
        public readonly KvmSharp.Vcpu Vcpu;
        public readonly KvmStatistics Stats;

        public Guest(Action<Assembler> main, bool tscDeadline = false)
        {
            Sdk = Kvm.Open(Kernel);
            Vm = Sdk.CreateVm();
            Vm.CreateIrqchip();
            // max_halt_poll_ns 0: no halt polls, every halt that is not woken at once waits (halt_wait_hist).
            Vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, 0);
            Mem = Vm.AllocateMemory(0x10000);
            Vm.AddMemorySlot(0, 0, Mem);
            Mem.Write(Code, Asm(Code, main));
            Mem.Write(Handler, Asm(Handler, a =>
            {
                a.inc(__dword_ptr.es[Count]);
                a.mov(__dword_ptr[0xB0], 0);
                a.iret();
            }));
            Mem.Write(MsiHandler, Asm(MsiHandler, a => a.@out(MsiPort, al)));
            Mem.Write<uint>(TimerVector * 4, (uint)Handler);
            Mem.Write<uint>(MsiVector * 4, (uint)MsiHandler);
            Vcpu = Vm.CreateVcpu(0);
            if (tscDeadline)
            {
                // X86_FEATURE_TSC_DEADLINE_TIMER (CPUID.1:ECX[24]) lets LVTT select TSC-deadline mode
                // (kvm_vcpu_after_set_cpuid: timer_mode_mask 3 << 17).
                Vcpu.SetCpuid([.. Sdk.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | (1u << 24) } : e)]);
            }
            var s = Vcpu.GetSregs();
            s.cs.@base = 0;
            s.cs.selector = 0;
            s.ds.@base = 0xFEE00000;
            s.es.@base = 0;
            Vcpu.SetSregs(s);
            Vcpu.SetRegs(new kvm_regs { rip = Code, rflags = 2, rsp = 0x7000 });
            Stats = Vcpu.OpenStatistics();
        }

        /// <summary>The emulator's vCPU behind <see cref="Vcpu"/>.</summary>
        public global::KvmSharp.Emulation.Vcpu.KvmVcpu Internal => Kernel.InvariantView.Vms.Single().Vcpus[0];

        public void Dispose()
        {
            Stats.Dispose();
            Vcpu.Dispose();
            Mem.Dispose();
            Vm.Dispose();
            Sdk.Dispose();
            Kernel.Dispose();
        }
    }

    /// <summary>"SVR on, divide by 1, LVTT = <paramref name="lvtt"/>", then <paramref name="halts"/> times "cli; arm; sti; hlt", then OUT 0x10.</summary>
    private static Action<Assembler> HaltLoop(int halts, uint lvtt, Action<Assembler> arm) => a =>
    {
        var loop = a.CreateLabel();
        a.mov(__dword_ptr[0xF0], 0x1ff);
        a.mov(__dword_ptr[0x3E0], 0xb);
        a.mov(__dword_ptr[0x320], lvtt);
        a.Label(ref loop);
        a.cli();
        arm(a);
        a.sti();
        a.hlt();
        a.cmp(__dword_ptr.es[Count], halts);
        a.jb(loop);
        a.@out(DonePort, al);
    };

    /// <summary>Runs the guest to OUT 0x10 and returns (halts woken by the timer, waits, sleeps toward a due time, halt_exits).</summary>
    private static (ulong Halts, ulong Waits, ulong TimedWaits, ulong HaltExits) RunToDone(Guest g)
    {
        var exit = g.Vcpu.Run();
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, (ushort)DonePort), (exit.Reason, exit.IoPort));
        var st = g.Stats.Read();
        Assert.Equal(0UL, st["blocking"]);
        ulong waits = 0;
        foreach (ulong n in st.GetValues("halt_wait_hist")) waits += n;
        return (g.Mem.Read<uint>(Count), waits, g.Internal.TimedWaits, st["halt_exits"]);
    }

    [Fact]
    public void A_halt_on_a_100_us_apic_timer_sleeps_until_the_timer_not_the_next_millisecond()
    {
        const int Halts = 100;
        // apic_timer_fn wakes the vCPU at the target expiration: every halt that sleeps sleeps toward the timer's
        // expiry (not a 1 ms poll; how soon after it the vCPU runs is the host scheduler's, measured, not asserted).
        using var g = new Guest(HaltLoop(Halts, TimerVector, a => a.mov(__dword_ptr[0x380], 100_000)));
        var (halts, waits, timedWaits, haltExits) = RunToDone(g);
        Assert.Equal(((ulong)Halts, (ulong)Halts), (halts, haltExits));
        Assert.True(waits >= 1 && timedWaits * 2 >= waits, $"{timedWaits} sleeps toward a due time for {waits} halts that waited: not most");
    }

    [Fact]
    public void A_halt_on_a_100_us_tsc_deadline_sleeps_until_the_deadline()
    {
        const int Halts = 100;
        // The emulator's guest TSC counts Stopwatch ticks (X86/MsrState.ReadTsc): 100 µs of them.
        int delta = (int)(Stopwatch.Frequency / 10_000);
        using var g = new Guest(HaltLoop(Halts, 0x4_0000 | TimerVector, a =>
        {
            a.rdtsc();
            a.add(eax, delta);
            a.adc(edx, 0);
            a.mov(ecx, TscDeadlineMsr);
            a.wrmsr();
        }), tscDeadline: true);
        var (halts, waits, timedWaits, _) = RunToDone(g);
        Assert.Equal((ulong)Halts, halts);
        Assert.True(waits >= 1 && timedWaits * 2 >= waits, $"{timedWaits} sleeps toward a due time for {waits} halts that waited: not most");
    }

    [Fact]
    public void An_msi_from_another_thread_wakes_a_halted_vcpu_long_before_its_timer()
    {
        // A one-shot timer 4 s away (TMICT 0xF0000000 at divide 1, about 4 s) and HLT; another thread signals an MSI
        // to APIC 0 with vector 0x41 after 20 ms, whose handler OUTs to 0x11.
        using var g = new Guest(a =>
        {
            a.mov(__dword_ptr[0xF0], 0x1ff);
            a.mov(__dword_ptr[0x3E0], 0xb);
            a.mov(__dword_ptr[0x320], TimerVector);
            a.mov(__dword_ptr[0x380], 0xF000_0000);
            a.sti();
            a.hlt();
            a.@out(DonePort, al);
        });
        long signalled = 0;
        var injector = new Thread(() =>
        {
            // Until the vCPU sleeps (blocking 1), then the MSI (kvm_set_msi → kvm_irq_delivery_to_apic → kick).
            while (g.Stats.Read()["blocking"] == 0) Thread.Sleep(1);
            Thread.Sleep(20);
            Volatile.Write(ref signalled, Stopwatch.GetTimestamp());
            Assert.Equal(1, g.Vm.SignalMsi(0xFEE0_0000, MsiVector));
        }) { IsBackground = true };
        injector.Start();
        var exit = g.Vcpu.Run();
        long woke = Stopwatch.GetTimestamp();
        Assert.True(injector.Join(TimeSpan.FromSeconds(10)));
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, (ushort)MsiPort), (exit.Reason, exit.IoPort));
        double ms = Stopwatch.GetElapsedTime(Volatile.Read(ref signalled), woke).TotalMilliseconds;
        // The wake-up is the kick's, not the 4 s timer's.
        Assert.True(ms < 2000, $"woke {ms:F1} ms after the MSI");
        var st = g.Stats.Read();
        // One HLT (__kvm_emulate_halt), one sleep ended by kvm_vcpu_wake_up (halt_wakeup), not by a signal.
        Assert.Equal((1UL, 1UL, 0UL), (st["halt_exits"], st["halt_wakeup"], st["signal_exits"]));
    }

    [Fact]
    public void Wait_for_kick_never_ends_before_the_due_time()
    {
        using var g = new Guest(a => a.hlt());
        var vcpu = g.Internal;
        long dueTicks = Stopwatch.Frequency * 300 / 1_000_000; // 300 µs
        // How soon after the due time it returns is a measurement (docs/STATUS.md session 24), not asserted here.
        for (int i = 0; i < 21; i++)
        {
            long start = Stopwatch.GetTimestamp();
            vcpu.WaitForKick(start + dueTicks, HaltPolling.BackstopMs);
            long end = Stopwatch.GetTimestamp();
            Assert.True(end >= start + dueTicks, $"returned {(end - start) * 1e6 / Stopwatch.Frequency:F1} µs after the start, before the 300 µs due time");
        }
    }

    [Fact]
    public void Wait_for_kick_with_a_far_due_time_sleeps_only_up_to_its_maximum()
    {
        using var g = new Guest(a => a.hlt());
        var vcpu = g.Internal;
        long start = Stopwatch.GetTimestamp();
        vcpu.WaitForKick(start + Stopwatch.Frequency * 30, HaltPolling.BackstopMs);
        Assert.True(Stopwatch.GetElapsedTime(start).TotalSeconds < 5);
        start = Stopwatch.GetTimestamp();
        vcpu.WaitForKick(long.MaxValue, HaltPolling.BackstopMs);
        Assert.True(Stopwatch.GetElapsedTime(start).TotalSeconds < 5);
        // A due time already past: no wait at all, even with a long maximum.
        start = Stopwatch.GetTimestamp();
        vcpu.WaitForKick(start - 1, 60_000);
        Assert.True(Stopwatch.GetElapsedTime(start).TotalSeconds < 5);
    }

    [Fact]
    public void A_kick_ends_the_wait_at_once_in_the_sleep_and_in_the_last_stretch()
    {
        using var g = new Guest(a => a.hlt());
        var vcpu = g.Internal;
        // The sleep: a kick from another thread 20 ms into a wait for a due time 30 s away (maximum 60 s).
        var kicker = new Thread(() =>
        {
            Thread.Sleep(20);
            vcpu.Kick();
        });
        long start = Stopwatch.GetTimestamp();
        kicker.Start();
        vcpu.WaitForKick(start + Stopwatch.Frequency * 30, 60_000);
        Assert.True(Stopwatch.GetElapsedTime(start).TotalSeconds < 10, $"{Stopwatch.GetElapsedTime(start).TotalMilliseconds:F1} ms");
        kicker.Join();
        // The last stretch (a due time under 1 ms away, waited for without the semaphore's timed wait): a kick made
        // before the wait ends it before the due time. Retried, as a loaded host may deschedule the waiter past it.
        bool early = false;
        for (int attempt = 0; attempt < 10 && !early; attempt++)
        {
            vcpu.Kick();
            start = Stopwatch.GetTimestamp();
            long due = start + Stopwatch.Frequency * 800 / 1_000_000;
            vcpu.WaitForKick(due, HaltPolling.BackstopMs);
            early = Stopwatch.GetTimestamp() < due;
        }
        Assert.True(early, "a pending kick never ended the last stretch before its due time");
    }
}
