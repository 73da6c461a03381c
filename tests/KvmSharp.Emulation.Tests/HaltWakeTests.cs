// SPDX-License-Identifier: MIT
using System.Diagnostics;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
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
public sealed class HaltWakeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // The shared real-mode APIC-timer guest (KvmSharp.Conformance/Guests/HaltTimerGuest.cs), plus an MSI handler.
    private const ulong MsiHandler = 0x1300;
    private const int Count = HaltTimerGuest.Count;
    private const byte TimerVector = HaltTimerGuest.TimerVector, MsiVector = 0x41, DonePort = HaltTimerGuest.DonePort, MsiPort = 0x11;
    private const uint TscDeadlineMsr = 0x6e0;

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
            Mem = Vm.AllocateMemory(HaltTimerGuest.MemSize);
            Vm.AddMemorySlot(0, 0, Mem);
            HaltTimerGuest.Load(Mem, main);
            Mem.Write(MsiHandler, HaltTimerGuest.Assemble16(MsiHandler, a => a.@out(MsiPort, al)));
            Mem.Write<uint>(MsiVector * 4, (uint)MsiHandler);
            Vcpu = Vm.CreateVcpu(0);
            if (tscDeadline)
            {
                // X86_FEATURE_TSC_DEADLINE_TIMER (CPUID.1:ECX[24]) lets LVTT select TSC-deadline mode
                // (kvm_vcpu_after_set_cpuid: timer_mode_mask 3 << 17).
                Vcpu.SetCpuid([.. Sdk.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | (1u << 24) } : e)]);
            }
            HaltTimerGuest.SetUp(Vcpu);
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
    private static Action<Assembler> HaltLoop(int halts, uint lvtt, Action<Assembler> arm) => HaltTimerGuest.HaltLoop(halts, lvtt, arm);

    /// <summary>Runs the guest to OUT 0x10 and returns (halts woken by the timer, waits, sleeps toward a due time, halt_exits).</summary>
    private static (ulong Halts, ulong Waits, ulong TimedWaits, ulong HaltExits) RunToDone(Guest g)
    {
        var exit = g.Vcpu.RunBounded();
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
        var exit = g.Vcpu.RunBounded();
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
    public void A_kick_ends_the_wait_at_once_and_a_kick_made_before_the_wait_ends_the_next_one()
    {
        using var g = new Guest(a => a.hlt());
        var vcpu = g.Internal;
        // A kick from another thread 20 ms into a wait for a due time 30 s away (maximum 60 s).
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
        // A kick made while the vCPU was not waiting (the caller published its wake condition, then kicked, before the
        // vCPU slept) ends the next wait at once, even a 30 s one; it is seen once (the wait after sleeps again).
        vcpu.Kick();
        vcpu.Kick();
        start = Stopwatch.GetTimestamp();
        vcpu.WaitForKick(start + Stopwatch.Frequency * 30, 60_000);
        Assert.True(Stopwatch.GetElapsedTime(start).TotalSeconds < 10, $"{Stopwatch.GetElapsedTime(start).TotalMilliseconds:F1} ms");
        start = Stopwatch.GetTimestamp();
        long due = start + Stopwatch.Frequency * 300 / 1_000_000;
        vcpu.WaitForKick(due, HaltPolling.BackstopMs);
        Assert.True(Stopwatch.GetTimestamp() >= due, "a kick was seen twice");
    }

    [Fact]
    public void Quiesce_does_not_wait_for_a_vcpu_asleep_in_its_halt()
    {
        // EmulatedKernel.ForgetAnonymous (a munmap of memory guests use directly) quiesces every vCPU. One asleep in
        // kvm_vcpu_block is outside guest mode: the invalidation needs nothing from it, so it is neither waited for nor
        // woken (the old wait answered only when its sleep ended).
        using var g = new Guest(a => a.hlt());
        var vcpu = g.Internal;
        vcpu.EnterRun();
        try
        {
            long slept = 0;
            var sleeper = new Thread(() =>
            {
                vcpu.WaitForKick(Stopwatch.GetTimestamp() + Stopwatch.Frequency * 60, 60_000);
                Volatile.Write(ref slept, Stopwatch.GetTimestamp());
            }) { IsBackground = true };
            sleeper.Start();
            // Quiesce returns once the sleeper sleeps; it sleeps for 60 s unless kicked.
            for (int i = 0; i < 2; i++)
            {
                var quiesce = new Thread(vcpu.Quiesce) { IsBackground = true };
                quiesce.Start();
                Assert.True(quiesce.Join(TimeSpan.FromSeconds(20)), "Quiesce waited for the sleeping vCPU");
                Assert.Equal(0, Volatile.Read(ref slept));
            }
            vcpu.Kick();
            Assert.True(sleeper.Join(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            vcpu.LeaveRun();
        }
    }

    [SkippableFact]
    public void A_vcpu_halting_on_a_1_ms_timer_sleeps_rather_than_spins()
    {
        // 200 halts, each woken by a one-shot APIC timer 1 ms away (1_000_000 bus cycles at divide 1). The old wait
        // yielded (sched_yield) for the last 1.2 ms before each due time, i.e. always here; a futex sleep to the due
        // time leaves the thread on a CPU only for the guest's few instructions and the wake-ups. Measured under load
        // 14-22 (other builds): the futex sleep 10-16 ms of CPU (the real kernel's KVM_RUN thread 8-10 ms), the old
        // loop 125-160 ms in a harness — but 29 ms of 2.4 s in this test, as a yield gives the CPU to whatever else is
        // runnable. So the bound, half the timers' 200 ms, catches a busy wait only on a host with a CPU to spare, and
        // stays far above the sleep's use on a loaded one.
        const int Halts = 200;
        Skip.IfNot(File.Exists("/proc/thread-self/schedstat"), "no /proc/thread-self/schedstat (CONFIG_SCHED_INFO) to read the thread's CPU time");
        // First a short run, so that the JIT's first compilations are not counted.
        using (var warm = new Guest(HaltLoop(20, TimerVector, a => a.mov(__dword_ptr[0x380], 100_000))))
            RunToDone(warm);
        using var g = new Guest(HaltLoop(Halts, TimerVector, a => a.mov(__dword_ptr[0x380], 1_000_000)));
        long cpu0 = ThreadCpuNs(), wall0 = Stopwatch.GetTimestamp();
        var (halts, _, timedWaits, _) = RunToDone(g);
        double cpuMs = (ThreadCpuNs() - cpu0) / 1e6, wallMs = Stopwatch.GetElapsedTime(wall0).TotalMilliseconds;
        output.WriteLine($"{Halts} halts of 1 ms: the vCPU thread was on a CPU for {cpuMs:F1} ms of {wallMs:F1} ms");
        Assert.Equal((ulong)Halts, halts);
        Assert.True(timedWaits >= Halts / 2, $"{timedWaits} sleeps toward a due time for {Halts} halts");
        Assert.True(cpuMs < Halts / 2.0, $"the vCPU thread was on a CPU for {cpuMs:F1} ms of {wallMs:F1} ms ({Halts} halts of 1 ms)");
    }

    /// <summary>The calling thread's time on a CPU in ns (/proc/thread-self/schedstat's first field).</summary>
    private static long ThreadCpuNs() =>
        long.Parse(File.ReadAllText("/proc/thread-self/schedstat").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
}
