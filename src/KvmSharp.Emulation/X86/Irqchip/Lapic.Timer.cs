// SPDX-License-Identifier: MIT

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>The local APIC timer: one-shot, periodic and TSC-deadline (lapic.c struct kvm_timer).</summary>
internal sealed partial class Lapic
{
    // The APIC timer (lapic.c struct kvm_timer): lapic_timer.period and target_expiration in host-monotonic ns
    // (-1: no hrtimer armed), lapic_timer.pending, lapic_timer.tscdeadline, lapic_timer.timer_mode, apic->divide_count.
    internal const int Tmict = 0x380, Tdcr = 0x3e0;
    private const uint TimerOneShot = 0, TimerPeriodic = 1u << 17, TimerTscDeadline = 2u << 17;

    /// <summary>min_timer_period_us (module parameter, default 200): the shortest periodic period.</summary>
    private const long MinTimerPeriodNs = 200_000;

    /// <summary>lapic_timer.timer_advance_ns: LAPIC_TIMER_ADVANCE_NS_INIT (lapic_timer_advance defaults to true).</summary>
    private const long TimerAdvanceNs = 1000;

    private long _timerPeriodNs;
    private long _timerTargetNs = -1;
    private bool _timerPending;
    private ulong _tscDeadline;
    private uint _timerMode = TimerOneShot;
    private int _divideCount = 2;

    private static long NowNs => (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1e9 / System.Diagnostics.Stopwatch.Frequency));

    /// <summary>
    /// apic-&gt;lapic_timer.timer_mode_mask: 0 from kvm_create_lapic (kzalloc) until KVM_SET_CPUID2 —
    /// kvm_vcpu_after_set_cpuid: 3 &lt;&lt; 17 with X86_FEATURE_TSC_DEADLINE_TIMER in the guest's CPUID, else 1 &lt;&lt; 17.
    /// So a vCPU whose CPUID was never set has only the one-shot timer (probed: LVTT 0x20040 reads back 0x40).
    /// </summary>
    public Func<uint>? TimerModeMask { get; set; }

    /// <summary>
    /// apic_update_lvtt: timer_mode = LVTT &amp; timer_mode_mask; a change into or out of TSC-deadline mode cancels the
    /// timer (cancel_apic_timer: pending 0) and clears TMICT, the period and tscdeadline. Under the register lock.
    /// </summary>
    private void UpdateLvtt()
    {
        uint mode = Get(LvtT) & (TimerModeMask?.Invoke() ?? 0);
        if (mode == _timerMode) return;
        if ((_timerMode == TimerTscDeadline) != (mode == TimerTscDeadline))
        {
            _timerTargetNs = -1;
            _timerPending = false;
            Set(Tmict, 0);
            _timerPeriodNs = 0;
            _tscDeadline = 0;
        }
        _timerMode = mode;
        // limit_periodic_timer_frequency.
        if (_timerMode == TimerPeriodic && _timerPeriodNs != 0 && _timerPeriodNs < MinTimerPeriodNs) _timerPeriodNs = MinTimerPeriodNs;
    }

    /// <summary>update_divide_count: TDCR bits 3, 1:0 → 2, 4, 8, 16, 32, 64, 128 or 1.</summary>
    private void UpdateDivideCount()
    {
        uint tmp1 = Get(Tdcr) & 0xf;
        uint tmp2 = ((tmp1 & 0x3) | ((tmp1 & 0x8) >> 1)) + 1;
        _divideCount = 1 << (int)(tmp2 & 0x7);
    }

    /// <summary>tmict_to_ns: count × kvm-&gt;arch.apic_bus_cycle_ns (APIC_BUS_CYCLE_NS_DEFAULT, 1) × divide_count.</summary>
    private long TmictToNs(uint count) => (long)count * _divideCount;

    /// <summary>
    /// __start_apic_timer: pending 0; one-shot and periodic → set_target_expiration: period = tmict_to_ns(TMICT), 0
    /// leaves the timer off; limit_periodic_timer_frequency; target = now + period (or the <paramref name="remainingCount"/>
    /// of a restored TMCCT); TSC-deadline → start_sw_tscdeadline. Called under the register lock.
    /// </summary>
    private void StartTimer(uint remainingCount)
    {
        _timerTargetNs = -1;
        _timerPending = false;
        if (_timerMode == TimerTscDeadline)
        {
            StartTscDeadline();
            return;
        }
        _timerPeriodNs = TmictToNs(Get(Tmict));
        if (_timerPeriodNs == 0) return;
        if (_timerMode == TimerPeriodic && _timerPeriodNs < MinTimerPeriodNs) _timerPeriodNs = MinTimerPeriodNs;
        _timerTargetNs = NowNs + (remainingCount != 0 ? TmictToNs(remainingCount) : _timerPeriodNs);
    }

    /// <summary>
    /// start_sw_tscdeadline: nothing with tscdeadline 0; ns = (tscdeadline - guest TSC) in the vCPU's TSC frequency
    /// (here the emulator's: Stopwatch ticks, X86/MsrState.ReadTsc); a deadline ahead by more than timer_advance_ns
    /// arms the hrtimer at now + ns - timer_advance_ns, else it has expired (apic_timer_expired: pending).
    /// </summary>
    private void StartTscDeadline()
    {
        if (_tscDeadline == 0 || _cpu is null) return;
        ulong tsc = _cpu.Msrs.ReadTsc();
        double ns = _tscDeadline > tsc ? (_tscDeadline - tsc) * (1e9 / System.Diagnostics.Stopwatch.Frequency) : 0;
        if (_tscDeadline > tsc && ns > TimerAdvanceNs)
            _timerTargetNs = NowNs + (long)Math.Min(ns - TimerAdvanceNs, long.MaxValue / 4);
        else
            _timerPending = true;
    }

    /// <summary>
    /// apic_get_tmcct (__apic_read APIC_TMCCT: 0 in TSC-deadline mode): 0 when TMICT or the period is 0; else the time
    /// left (0 once past) modulo the period, in bus cycles × divide_count. Called under the register lock.
    /// </summary>
    private uint CurrentCount()
    {
        if (_timerMode == TimerTscDeadline) return 0;
        if (Get(Tmict) == 0 || _timerPeriodNs == 0 || _timerTargetNs < 0) return 0;
        long remaining = Math.Max(0, _timerTargetNs - NowNs);
        return (uint)((remaining % _timerPeriodNs) / _divideCount);
    }

    /// <summary>
    /// kvm_get_lapic_tscdeadline_msr: 0 unless the APIC is present (hardware-enabled) and in TSC-deadline mode; else
    /// lapic_timer.tscdeadline (0 again once the timer's interrupt was injected).
    /// </summary>
    public ulong TscDeadlineMsr
    {
        get
        {
            using var scope = _lock.EnterScope();
            Sync();
            return HwEnabled && _timerMode == TimerTscDeadline ? _tscDeadline : 0;
        }
    }

    /// <summary>
    /// kvm_set_lapic_tscdeadline_msr (x86.c kvm_set_msr_common MSR_IA32_TSC_DEADLINE, never refused): ignored unless
    /// the APIC is present and in TSC-deadline mode; else hrtimer_cancel, tscdeadline = data, start_apic_timer (0
    /// leaves the timer off, a deadline already passed expires at once).
    /// </summary>
    public void SetTscDeadlineMsr(ulong data)
    {
        using var scope = _lock.EnterScope();
        Sync();
        if (!HwEnabled || _timerMode != TimerTscDeadline) return;
        _tscDeadline = data;
        StartTimer(0);
    }

    /// <summary>
    /// lapic_timer.target_expiration, when the armed hrtimer expires (apic_timer_fn, which kicks a blocked vCPU), in
    /// ktime ns; -1 with no hrtimer armed. Read-only, for a blocked vCPU's wait (Vcpu/VcpuRun.cs).
    /// </summary>
    public long TimerExpiryNs => Volatile.Read(ref _timerTargetNs);

    /// <summary>kvm_cpu_has_pending_timer / apic_has_pending_timer: an expired timer (pending or due).</summary>
    public bool TimerDue => Volatile.Read(ref _timerPending) || (Volatile.Read(ref _timerTargetNs) is >= 0 and var t && NowNs >= t);

    /// <summary>
    /// apic_timer_fn → apic_timer_expired (a due target makes the timer pending; a periodic one advances by the period,
    /// advance_periodic_target_expiration, others are done), then vcpu_run's kvm_inject_pending_timer_irqs when
    /// apic_has_pending_timer (apic_enabled and LVTT unmasked — else the timer stays pending):
    /// kvm_apic_inject_pending_timer_irqs → kvm_apic_local_deliver(APIC_LVTT) → __apic_accept_irq of LVTT's vector
    /// (level 1, LVTT's trigger; the fixed mode is modelled), and tscdeadline = 0 for a TSC-deadline or one-shot timer.
    /// True when a vector was accepted.
    /// </summary>
    public bool FireTimerIfDue(bool hardwareEnabled)
    {
        if (!TimerDue) return false;
        lock (_lock)
        {
            long now = NowNs;
            if (_timerTargetNs >= 0 && now >= _timerTargetNs)
            {
                if (_timerMode == TimerPeriodic && _timerPeriodNs > 0)
                {
                    _timerTargetNs += _timerPeriodNs;
                    if (_timerTargetNs <= now) _timerTargetNs = now;
                }
                else
                {
                    _timerTargetNs = -1;
                }
                _timerPending = true;
            }
            uint lvtt = Get(LvtT);
            if (!_timerPending || !hardwareEnabled || !SoftwareEnabled || (lvtt & LvtMasked) != 0) return false;
            _timerPending = false;
            if (_timerMode != TimerPeriodic) _tscDeadline = 0;
            // __apic_accept_irq(APIC_DM_FIXED, …): apic_enabled, TMR by the trigger, IRR.
            if (((lvtt >> 8) & 7) != 0) return false;
            bool level = (lvtt & (1u << 15)) != 0;
            SetVector(Tmr, (int)(lvtt & 0xff), level);
            SetVector(Irr, (int)(lvtt & 0xff), true);
            return true;
        }
    }
}
