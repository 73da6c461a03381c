// SPDX-License-Identifier: MIT
using System.Diagnostics;

namespace KvmSharp.Vmm;

/// <summary>
/// Stops a runaway guest after a wall-clock limit, the way QEMU and Firecracker do: <see cref="Vcpu.Kick"/> sets
/// kvm_run.immediate_exit (so a vCPU between two KVM_RUNs does not re-enter) and signals the thread inside KVM_RUN
/// (so a vCPU in guest mode leaves it); KVM_RUN returns EINTR, the run loop sees <see cref="VcpuExit.Interrupted"/>
/// with <see cref="Fired"/> set and reports the outcome of <see cref="Reason"/>: <see cref="GuestOutcome.Timeout"/> for the
/// limit, <see cref="GuestOutcome.Cancelled"/> for the caller's token (<see cref="Cancel"/>), <see cref="GuestOutcome.Disposed"/>
/// for a <see cref="MicroVm.Dispose"/> from another thread (<see cref="Abort"/>). Guest memory and vCPU state are left
/// alone, so the micro-VM can take its next call without a reset.
/// <para>
/// Ordering (per call, on the calling thread): clear immediate_exit → <see cref="Arm"/> → run loop →
/// <see cref="Disarm"/>. A kick can only happen between Arm and Disarm (Fire checks the arming's generation under
/// the lock, and Disarm takes the same lock), so the clear at the start of a call can never erase a kick meant for
/// that call, and a kick of an earlier call cannot reach a later one: a late deadline of an earlier arming carries an
/// old generation and is ignored, and immediate_exit left set by a kick that raced with the end of its call is wiped
/// by the next call's clear. A kick signal that is still in flight when the next call enters KVM_RUN only makes that
/// KVM_RUN return EINTR with <see cref="Fired"/> false: the run loop runs again.
/// </para>
/// <para>
/// Deadlines are kept by one background thread for all micro-VMs (<see cref="WatchdogClock"/>), not by thread-pool
/// timers: a vCPU thread blocked in KVM_RUN is often a pool thread, and a starved pool would delay the very callback
/// that is meant to unblock it.
/// </para>
/// </summary>
internal sealed class Watchdog : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Vcpu _vcpu;
    private long _generation;
    private bool _armed;
    private GuestOutcome _reason;
    private volatile bool _fired;

    public Watchdog(Vcpu vcpu) => _vcpu = vcpu;

    /// <summary>
    /// True once the current arming kicked the vCPU: its limit elapsed, <see cref="Cancel"/> or <see cref="Abort"/>
    /// stopped it.
    /// </summary>
    public bool Fired => _fired;

    /// <summary>
    /// What the current arming's kick stands for, or null while it has not kicked (a KVM_RUN that returned EINTR then
    /// was interrupted by a stray signal): <see cref="GuestOutcome.Timeout"/>, <see cref="GuestOutcome.Cancelled"/> or
    /// <see cref="GuestOutcome.Disposed"/>. The first reason to stop a call is the one it keeps.
    /// </summary>
    public GuestOutcome? Reason => _fired ? _reason : null; // _fired is volatile: a read of it is an acquire, _reason was stored before it

    public void Arm(TimeSpan timeout)
    {
        long generation;
        lock (_gate)
        {
            _fired = false;
            _reason = GuestOutcome.Timeout;
            _armed = true;
            _paused = false;
            _deadline = long.MaxValue;
            generation = ++_generation;
        }
        if (timeout == Timeout.InfiniteTimeSpan) return;
        double ticks = Math.Ceiling(timeout.TotalSeconds * Stopwatch.Frequency);
        long now = Stopwatch.GetTimestamp();
        if (ticks >= long.MaxValue - now) return; // centuries away: as good as infinite
        lock (_gate)
        {
            if (generation == _generation) _deadline = now + (long)ticks;
        }
        WatchdogClock.Add(this, now + (long)ticks, generation);
    }

    // The current arming's deadline (Stopwatch ticks; long.MaxValue: none), and the ticks it had left when paused.
    private long _deadline = long.MaxValue;
    private long _left;
    private bool _paused;

    /// <summary>
    /// Stops the clock of the current arming (a guest stopped in a debugger: Debugging/GdbStub.cs); a kick by
    /// <see cref="Cancel"/> or <see cref="Abort"/> still comes. <see cref="Resume"/> starts it again with the time
    /// left. Does nothing when disarmed, kicked, paused already or without a limit.
    /// </summary>
    public void Pause()
    {
        lock (_gate)
        {
            if (!_armed || _fired || _paused || _deadline == long.MaxValue) return;
            _left = Math.Max(0, _deadline - Stopwatch.GetTimestamp());
            _paused = true;
            // Under _gate, so a deadline due right now either kicked before this (_fired) or finds the generation
            // changed: Expire compares it.
            _generation++;
        }
        WatchdogClock.Remove(this);
    }

    /// <summary>Starts the clock paused by <see cref="Pause"/> again, with the time it had left.</summary>
    public void Resume()
    {
        long deadline, generation;
        lock (_gate)
        {
            if (!_paused) return;
            _paused = false;
            if (!_armed || _fired) return;
            deadline = _deadline = Stopwatch.GetTimestamp() + _left;
            generation = _generation;
        }
        WatchdogClock.Add(this, deadline, generation);
    }

    /// <summary>After this returns the watchdog will not kick the vCPU (a late deadline sees it disarmed).</summary>
    public void Disarm()
    {
        lock (_gate)
        {
            _armed = false;
        }
        WatchdogClock.Remove(this);
    }

    /// <summary>Stops the guest now, as if the limit of the current arming had elapsed.</summary>
    public void Fire()
    {
        lock (_gate)
        {
            Kick(GuestOutcome.Timeout);
        }
    }

    /// <summary>
    /// Stops the guest of the current arming now, for its caller's CancellationToken (any thread). Does nothing when
    /// disarmed or already kicked: the first reason to stop a call is the one it reports. The call unregisters its
    /// token before <see cref="Disarm"/>, so a cancellation cannot reach a later call.
    /// </summary>
    public void Cancel()
    {
        lock (_gate)
        {
            Kick(GuestOutcome.Cancelled);
        }
    }

    /// <summary>
    /// Stops the guest of the current arming now because its micro-VM is being disposed from another thread; the call
    /// ends as <see cref="GuestOutcome.Disposed"/> unless something stopped it first. Does nothing when disarmed.
    /// </summary>
    public void Abort()
    {
        lock (_gate)
        {
            Kick(GuestOutcome.Disposed);
        }
    }

    /// <summary>The deadline of arming <paramref name="generation"/> passed (called by <see cref="WatchdogClock"/>).</summary>
    internal void Expire(long generation)
    {
        lock (_gate)
        {
            if (generation == _generation) Kick(GuestOutcome.Timeout);
        }
    }

    private void Kick(GuestOutcome reason)
    {
        if (!_armed || _fired) return;
        _reason = reason; // before _fired (a release): Reason reads it only after seeing _fired
        // immediate_exit before _fired: a host function that sees TimedOut (= _fired) returns to a run loop whose next
        // KVM_RUN must stop at once; were _fired published first, that KVM_RUN could enter the guest before the kick
        // stored immediate_exit and the call end as an exit instead of a timeout (seen under load in CI). A KVM_RUN
        // that returns EINTR before _fired is visible is taken for a stray signal and run again, and stops again.
        _vcpu.ImmediateExit = true;
        _fired = true; // volatile: a release, so the store above is visible first
        // _fired before the signal: the run loop reads it after KVM_RUN returned EINTR for it.
        _vcpu.Kick();
    }

    public void Dispose() => Disarm();
}

/// <summary>
/// The deadlines of all armed watchdogs, kept by one background thread that sleeps until the earliest one. Arming
/// wakes the thread only when the new deadline is earlier than the one it sleeps until, so back-to-back calls with
/// the same limit cost a lock and a list entry, not a thread switch.
/// </summary>
internal static class WatchdogClock
{
    private static readonly object s_gate = new();
    private static readonly List<(Watchdog Dog, long Deadline, long Generation)> s_armed = [];
    private static long s_wakeAt = long.MaxValue;
    private static Thread? s_thread;

    public static void Add(Watchdog dog, long deadline, long generation)
    {
        lock (s_gate)
        {
            s_armed.Add((dog, deadline, generation));
            if (s_thread is null)
            {
                s_thread = new Thread(Loop) { IsBackground = true, Name = "KvmSharp.Vmm watchdog" };
                s_thread.Start();
            }
            else if (deadline < s_wakeAt)
            {
                Monitor.Pulse(s_gate);
            }
        }
    }

    public static void Remove(Watchdog dog)
    {
        lock (s_gate)
        {
            // No wake-up: the thread finds nothing due at its old deadline and sleeps again.
            for (int i = s_armed.Count - 1; i >= 0; i--)
            {
                if (ReferenceEquals(s_armed[i].Dog, dog)) s_armed.RemoveAt(i);
            }
        }
    }

    private static void Loop()
    {
        var due = new List<(Watchdog Dog, long Generation)>();
        while (true)
        {
            lock (s_gate)
            {
                while (true)
                {
                    long now = Stopwatch.GetTimestamp();
                    long next = long.MaxValue;
                    for (int i = s_armed.Count - 1; i >= 0; i--)
                    {
                        var e = s_armed[i];
                        if (e.Deadline <= now)
                        {
                            due.Add((e.Dog, e.Generation));
                            s_armed.RemoveAt(i);
                        }
                        else
                        {
                            next = Math.Min(next, e.Deadline);
                        }
                    }
                    if (due.Count > 0) break;
                    s_wakeAt = next;
                    if (next == long.MaxValue)
                    {
                        Monitor.Wait(s_gate);
                    }
                    else
                    {
                        // Rounded up to whole milliseconds: never early.
                        double ms = Math.Ceiling((next - now) * 1000.0 / Stopwatch.Frequency);
                        Monitor.Wait(s_gate, (int)Math.Min(ms, int.MaxValue));
                    }
                }
                s_wakeAt = long.MaxValue;
            }
            // Outside s_gate: Expire takes the watchdog's own lock, which Disarm holds before it takes s_gate.
            foreach (var (dog, generation) in due)
            {
                try
                {
                    dog.Expire(generation);
                }
                catch (ObjectDisposedException)
                {
                    // A micro-VM disposed by another thread in the middle of a call (MicroVm is not thread-safe):
                    // nothing is left to stop, and this thread serves every other micro-VM.
                }
            }
            due.Clear();
        }
    }
}
