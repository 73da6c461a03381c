// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Halt polling (virt/kvm/kvm_main.c kvm_vcpu_halt, update_halt_poll_stats, grow_halt_poll_ns, shrink_halt_poll_ns,
/// kvm_vcpu_max_halt_poll_ns; KVM_CAP_HALT_POLL in kvm_vm_ioctl_check_extension_generic and
/// kvm_vm_ioctl_enable_cap_generic; Documentation/virt/kvm/api.rst "KVM_CAP_HALT_POLL"). The guest is a real-mode
/// vCPU with an in-kernel APIC whose one-shot APIC timer wakes it from HLT (x86.c vcpu_block → kvm_vcpu_halt). Only
/// counts and their relations are asserted, never times: on a loaded host a poll ends early
/// (kvm_vcpu_can_poll: single_task_running, need_resched), so whether one poll succeeds is up to the scheduler.
/// </summary>
public static class HaltPollingRules
{
    private const string Main = "virt/kvm/kvm_main.c";


    // The shared real-mode APIC-timer guest (Guests/HaltTimerGuest.cs).
    private const ulong MemSize = HaltTimerGuest.MemSize, Code = HaltTimerGuest.Code;
    private const int Count = HaltTimerGuest.Count;
    private const byte DonePort = HaltTimerGuest.DonePort;
    private const byte Vector = HaltTimerGuest.TimerVector;

    /// <summary>A hang guard, not a timing assertion.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    private static long EnableRaw(CaseContext ctx, KernelFd fd, ulong arg0, uint flags = 0, ulong arg1 = 0, ulong arg2 = 0, ulong arg3 = 0)
    {
        var c = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_HALT_POLL, flags = flags };
        c.args[0] = arg0;
        c.args[1] = arg1;
        c.args[2] = arg2;
        c.args[3] = arg3;
        return ctx.Kernel.Ioctl(fd, KvmIoctls.KVM_ENABLE_CAP, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref c, 1)));
    }

    [ConformanceCase(Main + " KVM_CAP_HALT_POLL: KVM_CHECK_EXTENSION 1 on /dev/kvm and on a VM (kvm_vm_ioctl_check_extension_generic); KVM_ENABLE_CAP on the VM (kvm_vm_ioctl_enable_cap_generic): flags != 0 or an args[0] that is no unsigned int → EINVAL, any u32 (0, 0xffffffff) → 0, args[1..3] ignored, again and after KVM_CREATE_VCPU; on a vCPU fd → EINVAL (x86.c kvm_vcpu_ioctl_enable_cap has no such cap)")]
    public static void halt_poll_capability(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_HALT_POLL));
        using var vm = kvm.CreateVm();
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_HALT_POLL));
        long einval = -(long)Errno.EINVAL;
        Assert.Equal(einval, EnableRaw(ctx, vm.Handle, 1000, flags: 1));
        Assert.Equal(einval, EnableRaw(ctx, vm.Handle, 1000, flags: 0x8000_0000));
        Assert.Equal(einval, EnableRaw(ctx, vm.Handle, 1UL << 32));
        Assert.Equal(einval, EnableRaw(ctx, vm.Handle, ulong.MaxValue));
        Assert.Equal(0, EnableRaw(ctx, vm.Handle, 0xffff_ffff));
        Assert.Equal(0, EnableRaw(ctx, vm.Handle, 0));
        Assert.Equal(0, EnableRaw(ctx, vm.Handle, 50_000, arg1: ulong.MaxValue, arg2: 1, arg3: 0xdead));
        using var vcpu = vm.CreateVcpu(0);
        Assert.Equal(0, EnableRaw(ctx, vm.Handle, 200_000));
        Assert.Equal(einval, EnableRaw(ctx, vcpu.Handle, 200_000));
    }

    /// <summary>What one guest run counted.</summary>
    private sealed record Counts(ulong Halts, ulong Attempted, ulong Successful, ulong Invalid, ulong SuccessNs, ulong FailNs,
        ulong SuccessHist, ulong FailHist, ulong WaitHist, ulong WaitNs, ulong Blocking, ulong HaltExits, ulong Exits)
    {
        public override string ToString() =>
            $"halts {Halts}, attempted {Attempted}, successful {Successful}, invalid {Invalid}, success_ns {SuccessNs}, fail_ns {FailNs}, " +
            $"success_hist {SuccessHist}, fail_hist {FailHist}, wait_hist {WaitHist}, wait_ns {WaitNs}, blocking {Blocking}, halt_exits {HaltExits}, exits {Exits}";
    }

    private static ulong Sum(ReadOnlySpan<ulong> values)
    {
        ulong sum = 0;
        foreach (ulong v in values) sum += v;
        return sum;
    }

    /// <summary>
    /// A VM with a full irqchip (and KVM_CAP_HALT_POLL's args[0] = <paramref name="maxHaltPollNs"/> when given) whose
    /// real-mode vCPU halts <paramref name="halts"/> times, each woken by a one-shot APIC timer of
    /// <paramref name="timerNs"/> ns armed just before ("cli; mov TMICT; sti; hlt": no wake-up is lost), then OUT 0x10.
    /// Returns the vCPU's halt statistics.
    /// </summary>
    private static Counts RunHalts(CaseContext ctx, uint? maxHaltPollNs, int halts, int timerNs)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        if (maxHaltPollNs is uint max) Assert.Equal(0, EnableRaw(ctx, vm.Handle, max));
        using var mem = vm.AllocateMemory(MemSize);
        vm.AddMemorySlot(0, 0, mem);
        // DS's base is the xAPIC page, ES's is 0: SVR on, divide by 1, LVTT one-shot with the vector.
        HaltTimerGuest.Load(mem, HaltTimerGuest.HaltLoop(halts, Vector, HaltTimerGuest.OneShot(timerNs), parkAfterDone: true));
        using var v0 = vm.CreateVcpu(0);
        HaltTimerGuest.SetUp(v0);
        using var stats = v0.OpenStatistics();
        (KvmExitReason Reason, ushort Port, string Text)? exit = null;
        Exception? error = null;
        int tid = 0;
        using var started = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            tid = ctx.Kernel.GetTid();
            started.Set();
            try
            {
                var e = v0.Run();
                exit = (e.Reason, e.Reason == KvmExitReason.KVM_EXIT_IO ? e.IoPort : (ushort)0, e.ToString());
            }
            catch (Exception e)
            {
                error = e;
            }
        }) { IsBackground = true };
        thread.Start();
        started.Wait();
        if (!thread.Join(HangGuard))
        {
            while (!thread.Join(10)) ctx.Kernel.KickThread(tid);
            Assert.Fail($"the vCPU never left KVM_RUN: {mem.Read<uint>(Count)} timer interrupts");
        }
        if (error is not null) throw new InvalidOperationException("vCPU thread failed", error);
        Assert.True(exit is { Reason: KvmExitReason.KVM_EXIT_IO, Port: DonePort },
            $"expected OUT 0x{DonePort:X}, got {exit?.Text} at RIP 0x{v0.GetRegs().rip:X}, {mem.Read<uint>(Count)} interrupts");
        var st = stats.Read();
        return new Counts(mem.Read<uint>(Count), st["halt_attempted_poll"], st["halt_successful_poll"], st["halt_poll_invalid"],
            st["halt_poll_success_ns"], st["halt_poll_fail_ns"], Sum(st.GetValues("halt_poll_success_hist")),
            Sum(st.GetValues("halt_poll_fail_hist")), Sum(st.GetValues("halt_wait_hist")), st["halt_wait_ns"], st["blocking"], st["halt_exits"], st["exits"]);
    }

    /// <summary>The relations update_halt_poll_stats and kvm_vcpu_halt keep, whatever the timing.</summary>
    private static void AssertConsistent(Counts c, int halts)
    {
        string all = c.ToString();
        Assert.True(c.Halts >= (ulong)halts, all);
        Assert.True(c.Successful <= c.Attempted, all);
        // vcpu_valid_wakeup is true outside s390.
        Assert.True(c.Invalid == 0, all);
        // One histogram sample per poll, in the histogram of its outcome.
        Assert.True(c.SuccessHist == c.Successful, all);
        Assert.True(c.FailHist == c.Attempted - c.Successful, all);
        // Every failed poll went on to wait (that is what failed means); a halt is one wait at most.
        Assert.True(c.WaitHist >= c.Attempted - c.Successful, all);
        Assert.True(c.WaitHist + c.Successful <= c.Halts, all);
        Assert.True(c.WaitHist > 0 || c.WaitNs == 0, all);
        Assert.True(c.Blocking == 0, all);
    }

    [ConformanceCase(Main + " kvm_vcpu_halt after KVM_CAP_HALT_POLL args[0] = 1 s (kvm_vcpu_max_halt_poll_ns → kvm->max_halt_poll_ns): a new vCPU's halt_poll_ns is 0, so its first halt only waits; a halt shorter than the maximum grows it (grow_halt_poll_ns: to halt_poll_ns_grow_start, then × halt_poll_ns_grow), and from then on every halt polls first (halt_attempted_poll); one histogram sample per poll in the histogram of its outcome (update_halt_poll_stats); halt_poll_invalid stays 0; a failed poll waits (halt_wait_hist)")]
    public static void halts_poll_once_the_poll_time_has_grown(CaseContext ctx)
    {
        const int Halts = 60;
        // 100 µs one-shot timers, far below the 1 s maximum: every halt is "short", so halt_poll_ns only grows.
        var c = RunHalts(ctx, 1_000_000_000, Halts, 100_000);
        AssertConsistent(c, Halts);
        Assert.True(c.Attempted >= 1, $"no poll attempted: {c}");
    }

    [ConformanceCase(Main + " kvm_vcpu_halt: a wake-up (the APIC timer's pending expiry, kvm_cpu_has_pending_timer, or its injected vector) that comes while the vCPU polls ends the halt without kvm_vcpu_block — halt_successful_poll. A poll also ends when another task is runnable on the CPU (kvm_vcpu_can_poll: single_task_running), so on the real kernel a run whose every poll was cut short (the kernel's poll times show it) skips; batches of 60 halts are run (at most 21) until one poll succeeds")]
    public static void a_wakeup_inside_the_poll_window_is_a_successful_poll(CaseContext ctx)
    {
        const int Halts = 60;
        Counts c = RunHalts(ctx, 1_000_000_000, Halts, 100_000);
        AssertConsistent(c, Halts);
        for (int attempt = 0; c.Successful == 0 && attempt < 20; attempt++)
        {
            c = RunHalts(ctx, 1_000_000_000, Halts, 100_000);
            AssertConsistent(c, Halts);
        }
        // The kernel's own evidence of a busy CPU: every failed poll ended after well under halt_poll_ns_grow_start
        // (10 µs, the shortest poll once it has grown), i.e. kvm_vcpu_can_poll stopped it at its first check because
        // another task was runnable (single_task_running). A poll that ran its length and still saw no wake-up fails.
        ulong failed = c.Attempted - c.Successful;
        if (c.Successful == 0 && ctx.Target.IsReal && failed > 0 && c.FailNs / failed < CutShortPollNs)
            Skip($"no poll succeeded and every poll was cut short (on average {c.FailNs / failed} ns, under {CutShortPollNs} ns): " +
                $"another task was runnable on the vCPU's CPU (kvm_vcpu_can_poll), the host is busy: {c}");
        Assert.True(c.Successful >= 1, $"no poll succeeded in 21 runs of {Halts} halts: {c}");
    }

    /// <summary>A failed poll shorter than this on average was ended by kvm_vcpu_can_poll, not by its deadline.</summary>
    private const ulong CutShortPollNs = 2_000;

    [ConformanceCase(Main + " kvm_vcpu_halt after KVM_CAP_HALT_POLL args[0] = 0: the maximum is 0, so vcpu->halt_poll_ns stays 0 and no halt polls (do_halt_poll false: halt_attempted_poll, halt_successful_poll, the poll times and histograms stay 0); the halts still wait (halt_wait_hist)")]
    public static void max_halt_poll_ns_0_disables_polling(CaseContext ctx)
    {
        const int Halts = 40;
        var c = RunHalts(ctx, 0, Halts, 100_000);
        AssertConsistent(c, Halts);
        Assert.True((c.Attempted, c.Successful, c.SuccessNs, c.FailNs, c.SuccessHist, c.FailHist) == (0, 0, 0, 0, 0, 0), c.ToString());
        Assert.True(c.WaitHist >= 1 && c.WaitNs > 0, $"no halt waited: {c}");
    }

    [ConformanceCase("arch/x86/kvm/x86.c __kvm_emulate_halt (kvm_emulate_halt_noskip): \"++vcpu->stat.halt_exits\" for every HLT, before it looks at lapic_in_kernel — a HLT with an in-kernel local APIC, which halts inside KVM_RUN (mp_state HALTED, woken by the APIC timer), counts as one as much as a HLT without one, which exits with KVM_EXIT_HLT; each is a VM exit too, counted in exits (vcpu_enter_guest \"++vcpu->stat.exits\")")]
    public static void every_hlt_counts_a_halt_exit(CaseContext ctx)
    {
        const int Halts = 20;
        // In-kernel LAPIC: each of the 20 HLTs is woken by its own one-shot timer interrupt (the handler counts them),
        // one HLT per interrupt; max_halt_poll_ns 0 so every halt sleeps.
        var c = RunHalts(ctx, 0, Halts, 100_000);
        Assert.True(c.Halts == Halts && c.HaltExits == Halts, $"in-kernel LAPIC, {Halts} HLTs: {c}");
        // Each HLT is a VM exit the kernel handles itself (the vCPU blocks inside KVM_RUN): vcpu_enter_guest
        // "++vcpu->stat.exits" counts it all the same (plus the final OUT and whatever else the CPU exits for).
        Assert.True(c.Exits >= Halts + 1, $"in-kernel LAPIC, {Halts} HLTs: {c}");

        // No irqchip: every HLT is a KVM_EXIT_HLT, RIP after it.
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var mem = vm.AllocateMemory(MemSize);
        vm.AddMemorySlot(0, 0, mem);
        mem.Write(Code, HaltTimerGuest.Assemble16(Code, a =>
        {
            var loop = a.CreateLabel();
            a.mov(cx, Halts);
            a.Label(ref loop);
            a.hlt();
            a.dec(cx);
            a.jnz(loop);
            a.@out(DonePort, al);
        }));
        using var v0 = vm.CreateVcpu(0);
        HaltTimerGuest.SetUp(v0);
        using var stats = v0.OpenStatistics();
        int hltExits = 0;
        KvmExitReason reason;
        while ((reason = v0.Run().Reason) == KvmExitReason.KVM_EXIT_HLT && hltExits <= Halts) hltExits++;
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, Halts), (reason, hltExits));
        var st = stats.Read();
        Assert.Equal((ulong)Halts, st["halt_exits"]);
        Assert.True(st["exits"] >= Halts, $"exits {st["exits"]}");
    }
}
