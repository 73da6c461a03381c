// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// Channel 0's ticks (i8254.c pit_timer_fn, pit_do_work, kvm_pit_ack_irq). The kernel's hrtimer callback runs at each
/// expiry and queues the kvm-pit worker; here the expiries that passed are counted when the PIT is polled
/// (<see cref="Poll"/>), and the worker runs then — once, as kthread_queue_work does not queue a work already queued.
/// </summary>
internal sealed partial class I8254
{
    /// <summary>KVM_PIT_IRQ_SOURCE_ID (include/linux/kvm_host.h, 6.17+; earlier kvm_request_irq_source_id gave 2 too).</summary>
    public const int IrqSourceId = 2;

    private long _firesSeen; // hrtimer expiries already handed to pit_timer_fn since hrtimer_start
    private bool _workQueued; // pit->expired queued by kvm_pit_ack_irq
    private bool _raiseOwed; // a flushed pit_do_work's kvm_set_irq, sent at the next Poll

    /// <summary>How many expiries the armed timer has reached by <paramref name="now"/> (one-shot: at most one).</summary>
    private long FiresBy(long now)
    {
        if (!_timerRunning) return _firesSeen;
        if (now < _firstExpiry) return 0;
        if (!_isPeriodic) return 1;
        return (now - _firstExpiry) / _period + 1;
    }

    /// <summary>The next expiry not yet handled, or null when the timer is not armed (for a halted vCPU's wait).</summary>
    public long? NextExpiryNs
    {
        get
        {
            lock (Lock)
            {
                if (!_timerRunning) return null;
                if (_firesSeen == 0) return _firstExpiry;
                return _isPeriodic ? _firstExpiry + _firesSeen * _period : null;
            }
        }
    }

    /// <summary>
    /// The hrtimer expiries up to now: pit_timer_fn (reinject: pending++ each) and then pit_do_work once: with reinject
    /// and no ack since the last tick (irq_ack 0) nothing; else IRQ0 raised and lowered for KVM_PIT_IRQ_SOURCE_ID
    /// (kvm_set_irq: the PIC and IOAPIC pin 0 routes). A work that a reprogramming flushed (<see cref="FlushWork"/>)
    /// raises its IRQ0 here too. The NMI watchdog path (vapics_in_nmi_mode) is not modelled. Takes the kernel lock for
    /// kvm_set_irq, as KVM_IRQ_LINE's path does. Returns whether IRQ0 was raised.
    /// </summary>
    public bool Poll(KvmMain.Kvm kvm)
    {
        if (!PollDue) return false;
        lock (Lock)
        {
            bool raise = RunExpiriesAndWork() | _raiseOwed;
            _raiseOwed = false;
            Volatile.Write(ref _nextPollNs, _workQueued ? PollNow : NextExpiryNs ?? PollNever);
            if (!raise) return false;
        }
        RaiseIrq0(kvm);
        return true;
    }

    private const long PollNow = long.MinValue, PollNever = long.MaxValue;

    /// <summary>
    /// When <see cref="Poll"/> has something to do: the next unhandled expiry, <see cref="PollNow"/> after any change of
    /// the timer or the work (<see cref="Changed"/>), <see cref="PollNever"/> with the timer stopped and nothing queued.
    /// Written under <see cref="Lock"/>; read without it, so the vCPU loop's poll at every instruction is one load
    /// (and a clock read only while the timer runs) instead of a lock.
    /// </summary>
    private long _nextPollNs = PollNow;

    private bool PollDue => Volatile.Read(ref _nextPollNs) is var next && next != PollNever && (next == PollNow || _now() >= next);

    /// <summary>The timer, the queued work or reinject changed: the next <see cref="Poll"/> looks. Caller holds <see cref="Lock"/>.</summary>
    private void Changed() => Volatile.Write(ref _nextPollNs, PollNow);

    /// <summary>
    /// pit_timer_fn for the expiries passed since the last look, then pit_do_work if one of them (or an ack) queued it:
    /// "if (atomic_read(&amp;ps-&gt;reinject) &amp;&amp; !atomic_xchg(&amp;ps-&gt;irq_ack, 0)) return;". Returns whether the work
    /// raises IRQ0. Caller holds <see cref="Lock"/>.
    /// </summary>
    private bool RunExpiriesAndWork()
    {
        long fires = FiresBy(_now());
        long fresh = fires - _firesSeen;
        if (fresh <= 0 && !_workQueued) return false;
        _workQueued = false;
        if (fresh > 0)
        {
            _firesSeen = fires;
            if (Reinject) Pending += (int)Math.Min(fresh, int.MaxValue - Pending);
        }
        if (!Reinject) return true;
        bool acked = IrqAck;
        IrqAck = false;
        return acked;
    }

    /// <summary>
    /// hrtimer_cancel + kthread_flush_work (create_pit_timer, destroy_pit_timer): the expiries already passed and the
    /// work they queued run before the timer changes, with pending and irq_ack as they are now; the IRQ0 that work
    /// raises is sent at the next <see cref="Poll"/> (the caller holds the PIT's lock, kvm_set_irq needs the kernel's).
    /// </summary>
    private void FlushWork()
    {
        if (RunExpiriesAndWork()) _raiseOwed = true;
        Changed();
    }

    /// <summary>
    /// i8254.c pit_mask_notifer, the PIT's irq mask notifier on GSI 0 (registered by kvm_pit_set_reinject while reinject
    /// is on): "if (!mask) kvm_pit_reset_reinject(pit)" — an unmask of the pin GSI 0 is routed to (PIC OCW1, an IOAPIC
    /// redirection entry; <see cref="MaskNotifiers"/>) drops the ticks that piled up while it was masked (pending 0) and
    /// lets the next tick through (irq_ack 1). Caller holds the kernel lock.
    /// </summary>
    public void MaskNotify(bool masked)
    {
        lock (Lock)
        {
            if (!Reinject || masked) return;
            ResetReinject();
        }
    }

    /// <summary>
    /// kvm_pit_ack_irq (the ack notifier on GSI 0, registered while reinject is on): irq_ack = 1, and a tick still
    /// pending beyond the one just acked (atomic_dec_if_positive(pending) &gt; 0) queues the worker, which runs at the
    /// next <see cref="Poll"/> (the kernel's runs on the kvm-pit kthread, never inside the EOI). Called from
    /// IrqRouting.NotifyAckedIrq under the kernel lock. Returns whether the worker was queued.
    /// </summary>
    public bool AckIrq()
    {
        lock (Lock)
        {
            if (!Reinject) return false;
            IrqAck = true;
            if (Pending <= 0) return false;
            Pending--;
            if (Pending <= 0) return false;
            _workQueued = true;
            Changed();
            return true;
        }
    }

    /// <summary>pit_do_work: kvm_set_irq(kvm, KVM_PIT_IRQ_SOURCE_ID, 0, 1, false) then (…, 0, 0, false).</summary>
    private static void RaiseIrq0(KvmMain.Kvm kvm)
    {
        lock (kvm.Kernel.SyncRoot)
        {
            if (!kvm.Irqchip.InKernel) return;
            _ = IrqRouting.SetIrq(kvm, 0, true, IrqSourceId);
            _ = IrqRouting.SetIrq(kvm, 0, false, IrqSourceId);
        }
    }
}
