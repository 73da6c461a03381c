// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain.BinaryStats;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c halt polling (6.18), for x86's HALTED vCPU (x86.c vcpu_block) and arm64's WFI / PSCI
/// CPU_SUSPEND (arm.c kvm_vcpu_wfi):
/// <list type="bullet">
/// <item>KVM_CAP_HALT_POLL (kvm_vm_ioctl_enable_cap_generic): flags must be 0 and args[0] fit an unsigned int, else
/// -EINVAL; it sets kvm-&gt;max_halt_poll_ns and override_halt_poll_ns, at any time (vCPUs or not); args[1..3] are
/// never looked at.</item>
/// <item>kvm_vcpu_max_halt_poll_ns: the VM's value once overridden, else the module's <c>halt_poll_ns</c>
/// (<see cref="HaltPollParameters"/>).</item>
/// <item>kvm_vcpu_halt: vcpu-&gt;halt_poll_ns (0 for a new vCPU) is cut to the maximum; when it is not 0 the vCPU polls
/// its wake condition (kvm_vcpu_check_block) for up to that long, then blocks (kvm_vcpu_block) unless it woke; then
/// update_halt_poll_stats and grow_halt_poll_ns / shrink_halt_poll_ns after the whole halt's length.</item>
/// </list>
/// The poll is a busy loop over the same check the emulator's wait makes. It stops at the deadline only:
/// kvm_vcpu_can_poll's single_task_running() and need_resched() have no equivalent here (a real host that has
/// another runnable task on the CPU ends the poll early and counts a failed one). vcpu_valid_wakeup is true outside
/// s390, so halt_poll_invalid stays 0. x86's kvm_arch_no_poll (MSR_KVM_POLL_CONTROL bit 0 clear) never holds: the
/// emulator has no MSR_KVM_POLL_CONTROL, whose reset value 1 (kvm_arch_vcpu_create) allows polling.
/// The state lives in <see cref="Kvm.MaxHaltPollNs"/>, <see cref="Kvm.OverrideHaltPollNs"/> and
/// <see cref="KvmVcpu.HaltPollNs"/>; only this class reads or writes it.
/// </summary>
internal static class HaltPolling
{
    /// <summary>The module parameters of <paramref name="kernel"/>: its configuration's, else the architecture's defaults.</summary>
    public static HaltPollParameters Parameters(EmulatedKernel kernel) =>
        kernel.Config.HaltPoll ?? (kernel.Config.Architecture == Architecture.Arm64 ? HaltPollParameters.Arm64Default : HaltPollParameters.X86Default);

    /// <summary>
    /// kvm_vm_ioctl_enable_cap_generic KVM_CAP_HALT_POLL: "if (cap-&gt;flags || cap-&gt;args[0] != (unsigned
    /// int)cap-&gt;args[0]) return -EINVAL; kvm-&gt;max_halt_poll_ns = cap-&gt;args[0]; smp_wmb();
    /// kvm-&gt;override_halt_poll_ns = true; return 0;".
    /// </summary>
    public static long EnableCap(Kvm kvm, kvm_enable_cap cap)
    {
        if (cap.flags != 0 || cap.args[0] > uint.MaxValue) return Err.EINVAL;
        Volatile.Write(ref kvm.MaxHaltPollNs, (uint)cap.args[0]);
        kvm.OverrideHaltPollNs = true;
        return 0;
    }

    /// <summary>kvm_vcpu_max_halt_poll_ns: kvm-&gt;max_halt_poll_ns once KVM_CAP_HALT_POLL was enabled, else halt_poll_ns.</summary>
    public static uint MaxHaltPollNs(KvmVcpu vcpu)
    {
        if (vcpu.Kvm.OverrideHaltPollNs) return Volatile.Read(ref vcpu.Kvm.MaxHaltPollNs);
        return Parameters(vcpu.Kvm.Kernel).HaltPollNs;
    }

    /// <summary>vcpu-&gt;halt_poll_ns, for tests.</summary>
    public static uint VcpuHaltPollNs(KvmVcpu vcpu) => vcpu.HaltPollNs;

    /// <summary>
    /// kvm_vcpu_halt. <paramref name="checkBlock"/> is kvm_vcpu_check_block (true: "&lt; 0", the vCPU is runnable, has
    /// a pending timer, a signal or an unblock request); <paramref name="signalled"/> tells a signal's wake-up from
    /// kvm_vcpu_wake_up's (halt_wakeup). <paramref name="pollAllowed"/> is !kvm_arch_no_poll. <paramref name="nextDue"/>:
    /// when the vCPU's timers next expire (<see cref="Block"/>).
    /// </summary>
    public static void Halt(KvmVcpu vcpu, Func<bool> checkBlock, Func<bool> signalled, bool pollAllowed = true, Func<long>? nextDue = null)
    {
        var p = Parameters(vcpu.Kvm.Kernel);
        uint max = MaxHaltPollNs(vcpu);
        // "if (vcpu->halt_poll_ns > max_halt_poll_ns) vcpu->halt_poll_ns = max_halt_poll_ns;"
        if (vcpu.HaltPollNs > max) vcpu.HaltPollNs = max;
        bool doHaltPoll = pollAllowed && vcpu.HaltPollNs != 0;
        bool waited = false;
        long start = Stopwatch.GetTimestamp(), cur = start, pollEnd = start;
        bool wokeWhilePolling = false;
        if (doHaltPoll)
        {
            long stop = start + NsToTicks(vcpu.HaltPollNs);
            // "do { if (kvm_vcpu_check_block(vcpu) < 0) goto out; cpu_relax(); poll_end = cur = ktime_get(); }
            // while (kvm_vcpu_can_poll(cur, stop));"
            do
            {
                if (checkBlock())
                {
                    wokeWhilePolling = true;
                    break;
                }
                // Polling, the vCPU touches no guest memory: answer invalidations (KvmVcpu.Quiesce) as asleep.
                vcpu.PollQuiesce();
                Thread.SpinWait(8);
                pollEnd = cur = Stopwatch.GetTimestamp();
            } while (cur < stop);
        }
        if (!wokeWhilePolling)
        {
            waited = Block(vcpu, checkBlock, signalled, nextDue);
            cur = Stopwatch.GetTimestamp();
            // "if (waited) { halt_wait_ns += cur - poll_end; KVM_STATS_LOG_HIST_UPDATE(halt_wait_hist, …); }"
            if (waited) AddTime(vcpu.Stats, vcpu.Stats.Table.Slots.HaltWaitNs, vcpu.Stats.Table.Slots.HaltWaitHist, TicksToNs(cur - pollEnd));
        }
        // out: "halt_ns = ktime_to_ns(cur) - ktime_to_ns(start);"
        ulong haltNs = TicksToNs(cur - start);
        // "if (do_halt_poll) update_halt_poll_stats(vcpu, start, poll_end, !waited);"
        if (doHaltPoll) UpdateHaltPollStats(vcpu.Stats, TicksToNs(pollEnd - start), success: !waited);
        if (!pollAllowed) return;
        // "Recompute the max halt poll time in case it changed."; vcpu_valid_wakeup is true (no shrink for it).
        max = MaxHaltPollNs(vcpu);
        if (max == 0)
        {
            vcpu.HaltPollNs = 0;
            return;
        }
        if (haltNs <= vcpu.HaltPollNs) return;
        // "we had a long block, shrink polling"
        if (vcpu.HaltPollNs != 0 && haltNs > max) vcpu.HaltPollNs = Shrink(vcpu.HaltPollNs, p);
        // "we had a short halt and our poll time is too small"
        else if (vcpu.HaltPollNs < max && haltNs < max) vcpu.HaltPollNs = Grow(vcpu.HaltPollNs, p);
    }

    /// <summary>
    /// kvm_vcpu_block: "blocking = 1", then "for (;;) { set_current_state(TASK_INTERRUPTIBLE); if
    /// (kvm_vcpu_check_block(vcpu) &lt; 0) break; waited = true; schedule(); }", "blocking = 0"; true when it slept. A
    /// sleep that ended for anything but a signal was kvm_vcpu_wake_up's ("++vcpu-&gt;stat.generic.halt_wakeup").
    /// Asleep, the vCPU answers invalidations so a munmap does not wait for it.
    /// <para>
    /// The kernel's sleeper is woken by kvm_vcpu_wake_up, which the expiry of its timers calls too (lapic.c
    /// apic_timer_expired → kvm_vcpu_kick for the LAPIC timer and TSC deadline; i8254.c pit_do_work → kvm_set_irq for the
    /// PIT; arch_timer.c kvm_bg_timer_expire, the hrtimer armed at the earliest guest timer when the vCPU blocks
    /// (kvm_timer_vcpu_load / kvm_timer_blocking)). The emulator's timers have no thread of their own:
    /// <paramref name="nextDue"/> gives the Stopwatch timestamp at which the vCPU's timers next expire (long.MaxValue:
    /// none), and the sleep ends then (<see cref="KvmVcpu.WaitForKick"/>), or at once on a kick (an interrupt delivered by
    /// another thread — an MSI, an irq line, an IPI —, a signal, a request such as KVM_REQ_VM_DEAD). The due time is read before the check, so one that passes between the check and the sleep ends
    /// the sleep at once, and again after it (a periodic timer the check fired has a new one); due times already past
    /// before the check are left out (a level the check saw and found not to wake the vCPU, e.g. an arm64 timer whose
    /// PPI is masked). Whatever wakes the vCPU with neither a due time nor a kick is seen within <see cref="BackstopMs"/>.
    /// </para>
    /// </summary>
    public static bool Block(KvmVcpu vcpu, Func<bool> checkBlock, Func<bool> signalled, Func<long>? nextDue = null)
    {
        var stats = vcpu.Stats;
        var slots = stats.Table.Slots;
        stats.Set(slots.Blocking, 1);
        bool waited = false;
        try
        {
            while (true)
            {
                long due = FutureDue(nextDue);
                if (checkBlock()) break;
                waited = true;
                vcpu.PollQuiesce();
                vcpu.WaitForKick(Math.Min(due, FutureDue(nextDue)), BackstopMs);
            }
            if (waited && !signalled()) stats.Increment(slots.HaltWakeup);
        }
        finally
        {
            stats.Set(slots.Blocking, 0);
        }
        return waited;
    }

    /// <summary>The longest one sleep of <see cref="Block"/> lasts before it looks at the wake conditions again.</summary>
    public const int BackstopMs = 1;

    /// <summary><paramref name="nextDue"/>'s due time when it is still ahead, else long.MaxValue.</summary>
    private static long FutureDue(Func<long>? nextDue)
    {
        if (nextDue is null) return long.MaxValue;
        long now = Stopwatch.GetTimestamp();
        long due = nextDue();
        return due > now ? due : long.MaxValue;
    }

    /// <summary>A CLOCK_MONOTONIC time in ns (the emulator's ktime_get: Stopwatch) as a Stopwatch timestamp, rounded up.</summary>
    public static long KtimeToTimestamp(long ns)
    {
        if (Stopwatch.Frequency == 1_000_000_000) return ns;
        return (long)Math.Min(Math.Ceiling(ns * (Stopwatch.Frequency / 1e9)), long.MaxValue / 2);
    }

    /// <summary>
    /// grow_halt_poll_ns: "if (!grow) goto out; val *= grow; if (val &lt; grow_start) val = grow_start;" (unsigned int
    /// arithmetic; the cut to the maximum comes at the next halt).
    /// </summary>
    public static uint Grow(uint val, HaltPollParameters p)
    {
        if (p.Grow == 0) return val;
        val = unchecked(val * p.Grow);
        return val < p.GrowStart ? p.GrowStart : val;
    }

    /// <summary>shrink_halt_poll_ns: "if (shrink == 0) val = 0; else val /= shrink; if (val &lt; grow_start) val = 0;".</summary>
    public static uint Shrink(uint val, HaltPollParameters p)
    {
        val = p.Shrink == 0 ? 0 : val / p.Shrink;
        return val < p.GrowStart ? 0 : val;
    }

    /// <summary>
    /// update_halt_poll_stats: "++halt_attempted_poll"; a success "++halt_successful_poll", halt_poll_success_ns and
    /// its histogram; a failure halt_poll_fail_ns and its histogram.
    /// </summary>
    private static void UpdateHaltPollStats(KvmStats stats, ulong pollNs, bool success)
    {
        var slots = stats.Table.Slots;
        stats.Increment(slots.HaltAttemptedPoll);
        if (success)
        {
            stats.Increment(slots.HaltSuccessfulPoll);
            AddTime(stats, slots.HaltPollSuccessNs, slots.HaltPollSuccessHist, pollNs);
        }
        else
        {
            AddTime(stats, slots.HaltPollFailNs, slots.HaltPollFailHist, pollNs);
        }
    }

    /// <summary>"stat += ns; KVM_STATS_LOG_HIST_UPDATE(hist, ns)" (bucket fls64(ns), at most HALT_POLL_HIST_COUNT - 1).</summary>
    private static void AddTime(KvmStats stats, int sum, int hist, ulong ns)
    {
        if (sum < 0) return;
        stats.Set(sum, stats.Get(sum) + ns);
        stats.Increment(hist + LogHistIndex(ns));
    }

    /// <summary>include/linux/kvm_host.h kvm_stats_log_hist_index: "index = fls64(value); return min(index, size - 1)".</summary>
    public static int LogHistIndex(ulong value) =>
        Math.Min(64 - System.Numerics.BitOperations.LeadingZeroCount(value), StatsDesc.HaltPollHistCount - 1);

    private static long NsToTicks(uint ns) => (long)((double)ns * Stopwatch.Frequency / 1e9);

    private static ulong TicksToNs(long ticks) => ticks <= 0 ? 0 : (ulong)((double)ticks * 1e9 / Stopwatch.Frequency);
}
