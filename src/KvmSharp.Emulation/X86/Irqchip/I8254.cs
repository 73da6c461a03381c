// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/i8254.c <c>struct kvm_pit</c> (kvm->arch.vpit): the three counters, the state flags, channel 0's
/// hrtimer and the reinjection setting, under pit_state.lock. Counts are computed from the host's CLOCK_MONOTONIC
/// (ktime_get, Stopwatch here) at KVM_PIT_FREQ. Channel 0's elapsed time comes from the hrtimer (__kpit_elapsed:
/// period − remaining), channels 1 and 2 from count_load_time. The timer's expiry is modelled (it sets what the guest
/// reads); its expiries raise IRQ0 when the emulator polls the PIT (I8254.Irq.cs).
/// </summary>
internal sealed partial class I8254
{
    /// <summary>i8254.h KVM_PIT_FREQ.</summary>
    public const long PitFreq = 1193182;

    /// <summary>i8254.h KVM_PIT_BASE_ADDRESS, KVM_PIT_MEM_LENGTH, KVM_SPEAKER_BASE_ADDRESS.</summary>
    public const ulong BaseAddress = 0x40, SpeakerAddress = 0x61;

    public const int MemLength = 4;

    /// <summary>x86.c module parameter min_timer_period_us (default 200): the shortest periodic PIT period.</summary>
    public const long MinPeriodNs = 200 * 1000;

    private readonly Func<long> _now;
    private readonly Func<bool> _ioapicInKernel;
    private long _period;          // ps->period (0 until a timer was created)
    private bool _isPeriodic;      // ps->is_periodic
    private bool _timerRunning;    // hrtimer queued (periodic timers re-arm, one-shots stop after expiring)
    private long _firstExpiry;     // ktime of the first expiry after hrtimer_start
    private long _frozenExpiry;    // the hrtimer's expiry when it was cancelled

    /// <param name="createFlags">The KVM_CREATE_PIT2 flags.</param>
    /// <param name="now">ktime_get (tests pass a fake clock).</param>
    /// <param name="ioapicInKernel">ioapic_in_kernel(kvm): without it channel 0 never starts a timer.</param>
    public I8254(uint createFlags, Func<long>? now = null, Func<bool>? ioapicInKernel = null)
    {
        _now = now ?? KtimeGet;
        _ioapicInKernel = ioapicInKernel ?? (() => true);
        CreateFlags = createFlags;
        Reset();
        // kvm_create_pit: kvm_pit_set_reinject(pit, true).
        Reinject = true;
    }

    /// <summary>ktime_get(): CLOCK_MONOTONIC in ns (Stopwatch on Linux).</summary>
    public static long KtimeGet() => (long)((Int128)Stopwatch.GetTimestamp() * 1_000_000_000 / Stopwatch.Frequency);

    /// <summary>pit_state.lock.</summary>
    public Lock Lock { get; } = new();

    /// <summary>The KVM_CREATE_PIT2 flags (KVM_PIT_SPEAKER_DUMMY registered the speaker port).</summary>
    public uint CreateFlags { get; }

    public I8254Channel[] Channels { get; } = [new(), new(), new()];

    /// <summary>pit_state.flags (KVM_PIT_FLAGS_*; KVM_SET_PIT2 stores any value).</summary>
    public uint Flags { get; set; }

    /// <summary>pit_state.reinject (KVM_REINJECT_CONTROL; on at creation).</summary>
    public bool Reinject { get; set; }

    /// <summary>pit_state.pending and irq_ack (kvm_pit_reset_reinject: 0 and 1).</summary>
    public int Pending { get; private set; }

    public bool IrqAck { get; private set; } = true;

    /// <summary>ps->period in ns (0: no timer was ever created).</summary>
    public long PeriodNs => _period;

    /// <summary>ps->is_periodic.</summary>
    public bool IsPeriodic => _isPeriodic;

    /// <summary>hrtimer_active: channel 0's timer is armed.</summary>
    public bool TimerArmed
    {
        get
        {
            if (!_timerRunning) return false;
            return _isPeriodic || _now() < _firstExpiry;
        }
    }

    /// <summary>kvm_pit_reset: flags 0; every channel mode 0xff, gate 1 (channel 2: 0), count 0 loaded.</summary>
    private void Reset()
    {
        Flags = 0;
        for (int i = 0; i < 3; i++)
        {
            Channels[i].Mode = 0xff;
            Channels[i].Gate = (byte)(i != 2 ? 1 : 0);
            LoadCount(i, 0);
        }
        ResetReinject();
    }

    /// <summary>kvm_pit_reset_reinject.</summary>
    private void ResetReinject()
    {
        Pending = 0;
        IrqAck = true;
        Changed();
    }

    /// <summary>
    /// kvm_pit_set_reinject: a change to on resets pending/irq_ack and registers the ack notifier (kvm_pit_ack_irq) and
    /// the mask notifier (pit_mask_notifer) on GSI 0, a change to off unregisters both; here both check
    /// <see cref="Reinject"/> (<see cref="AckIrq"/>, <see cref="MaskNotify"/>).
    /// </summary>
    public void SetReinject(bool reinject)
    {
        if (Reinject == reinject) return;
        if (reinject) ResetReinject();
        Reinject = reinject;
        Changed();
    }

    /// <summary>hrtimer's expiry now: a periodic timer has been re-armed by period at each expiry passed.</summary>
    private long Expires(long now)
    {
        if (!_timerRunning) return _frozenExpiry;
        if (!_isPeriodic || now < _firstExpiry) return _firstExpiry;
        long fired = (now - _firstExpiry) / _period + 1;
        return _firstExpiry + fired * _period;
    }

    /// <summary>
    /// destroy_pit_timer: hrtimer_cancel (the expiry stays what hrtimer_get_remaining reads), then kthread_flush_work —
    /// the expiries already passed ran pit_timer_fn (reinject: pending++ each) and their work runs now (<see cref="FlushWork"/>),
    /// so a stopped timer keeps the ticks it left pending.
    /// </summary>
    private void DestroyTimer()
    {
        long now = _now();
        FlushWork();
        _frozenExpiry = Expires(now);
        _timerRunning = false;
        Changed();
    }

    /// <summary>
    /// create_pit_timer: nothing without an in-kernel IOAPIC or with HPET legacy; else period = val·10⁹/KVM_PIT_FREQ, a periodic one raised to
    /// min_timer_period_us, started to expire one (unclamped) interval from now.
    /// </summary>
    private void CreateTimer(uint val, bool periodic)
    {
        if (!_ioapicInKernel() || (Flags & KvmConstants.KVM_PIT_FLAGS_HPET_LEGACY) != 0) return;
        long interval = (long)((ulong)val * 1_000_000_000UL / PitFreq);
        // "hrtimer_cancel(&ps->timer); kthread_flush_work(&pit->expired);" before kvm_pit_reset_reinject.
        FlushWork();
        _period = interval;
        _isPeriodic = periodic;
        ResetReinject();
        if (_isPeriodic && _period < MinPeriodNs) _period = MinPeriodNs;
        long now = _now();
        _firstExpiry = now + interval;
        _timerRunning = true;
        _firesSeen = 0;
        Changed();
    }

    /// <summary>
    /// pit_load_count: 0 is 0x10000; channels 1 and 2 note count_load_time; channel 0 by mode: 0, 1, 4 one-shot timer,
    /// 2, 3 periodic, anything else cancels it.
    /// </summary>
    public void LoadCount(int channel, uint val)
    {
        if (val == 0) val = 0x10000;
        Channels[channel].Count = val;
        if (channel != 0)
        {
            Channels[channel].CountLoadTime = _now();
            return;
        }
        switch (Channels[0].Mode)
        {
            case 0 or 1 or 4:
                CreateTimer(val, periodic: false);
                break;
            case 2 or 3:
                CreateTimer(val, periodic: true);
                break;
            default:
                DestroyTimer();
                break;
        }
    }

    /// <summary>kvm_pit_load_count: with hpet_legacy_start channel 0 loads with mode 0xff (the timer stops), mode kept.</summary>
    private void LoadCount(int channel, uint val, bool hpetLegacyStart)
    {
        if (!hpetLegacyStart)
        {
            LoadCount(channel, val);
            return;
        }
        byte saved = Channels[0].Mode;
        Channels[0].Mode = 0xff;
        LoadCount(channel, val);
        Channels[0].Mode = saved;
    }

    /// <summary>kpit_elapsed: channel 0 __kpit_elapsed (0 without a period, else period − remaining), others now − load time.</summary>
    private long Elapsed(int channel)
    {
        long now = _now();
        if (channel != 0) return now - Channels[channel].CountLoadTime;
        if (_period == 0) return 0;
        return _period - (Expires(now) - now);
    }

    /// <summary>mul_u64_u32_div(t, KVM_PIT_FREQ, NSEC_PER_SEC): t is taken as u64.</summary>
    private static long Ticks(long t) => (long)(ulong)((UInt128)(ulong)t * PitFreq / 1_000_000_000);

    /// <summary>mod_64 on the s64 operands (C % truncates toward zero).</summary>
    private static long Mod(long x, uint y) => y == 0 ? x : x % y;

    /// <summary>pit_get_count.</summary>
    public int GetCount(int channel)
    {
        var c = Channels[channel];
        long d = Ticks(Elapsed(channel));
        return c.Mode switch
        {
            0 or 1 or 4 or 5 => (int)((c.Count - d) & 0xffff),
            3 => (int)(c.Count - Mod(2 * d, c.Count)),
            _ => (int)(c.Count - Mod(d, c.Count)),
        };
    }

    /// <summary>pit_get_out.</summary>
    public int GetOut(int channel)
    {
        var c = Channels[channel];
        long d = Ticks(Elapsed(channel));
        return c.Mode switch
        {
            1 => d < c.Count ? 1 : 0,
            2 => Mod(d, c.Count) == 0 && d != 0 ? 1 : 0,
            3 => Mod(d, c.Count) < ((c.Count + 1) >> 1) ? 1 : 0,
            4 or 5 => d == c.Count ? 1 : 0,
            _ => d >= c.Count ? 1 : 0,
        };
    }

    /// <summary>pit_set_gate: modes 1, 2, 3, 5 restart counting on a rising edge.</summary>
    private void SetGate(int channel, uint val)
    {
        var c = Channels[channel];
        if (c.Mode is 1 or 2 or 3 or 5 && c.Gate < val) c.CountLoadTime = _now();
        c.Gate = (byte)val;
    }

    /// <summary>pit_latch_count: a second latch before the first is read is ignored.</summary>
    private void LatchCount(int channel)
    {
        var c = Channels[channel];
        if (c.CountLatched != 0) return;
        c.LatchedCount = (ushort)GetCount(channel);
        c.CountLatched = c.RwMode;
    }

    /// <summary>pit_latch_status: OUT, access mode, mode, BCD (NULL COUNT is not reported).</summary>
    private void LatchStatus(int channel)
    {
        var c = Channels[channel];
        if (c.StatusLatched != 0) return;
        c.Status = (byte)((GetOut(channel) << 7) | (c.RwMode << 4) | (c.Mode << 1) | c.Bcd);
        c.StatusLatched = 1;
    }

    /// <summary>pit_ioport_write at port offset <paramref name="port"/> (0–3) of byte <paramref name="val"/>.</summary>
    public void PortWrite(int port, byte val)
    {
        lock (Lock)
        {
            if (port == 3)
            {
                int channel = val >> 6;
                if (channel == 3)
                {
                    // Read-Back Command: bit 1+n selects channel n; bit 5 clear latches the count, bit 4 clear the status.
                    for (channel = 0; channel < 3; channel++)
                    {
                        if ((val & (2 << channel)) == 0) continue;
                        if ((val & 0x20) == 0) LatchCount(channel);
                        if ((val & 0x10) == 0) LatchStatus(channel);
                    }
                    return;
                }
                var s = Channels[channel];
                int access = (val >> 4) & 3;
                if (access == 0)
                {
                    LatchCount(channel);
                    return;
                }
                s.RwMode = (byte)access;
                s.ReadState = (byte)access;
                s.WriteState = (byte)access;
                s.Mode = (byte)((val >> 1) & 7);
                if (s.Mode > 5) s.Mode -= 4;
                s.Bcd = (byte)(val & 1);
                return;
            }
            var ch = Channels[port];
            switch (ch.WriteState)
            {
                case I8254Channel.RwStateMsb:
                    LoadCount(port, (uint)val << 8);
                    break;
                case I8254Channel.RwStateWord0:
                    ch.WriteLatch = val;
                    ch.WriteState = I8254Channel.RwStateWord1;
                    break;
                case I8254Channel.RwStateWord1:
                    LoadCount(port, ch.WriteLatch | ((uint)val << 8));
                    ch.WriteState = I8254Channel.RwStateWord0;
                    break;
                default: // RW_STATE_LSB and anything KVM_SET_PIT stored
                    LoadCount(port, val);
                    break;
            }
        }
    }

    /// <summary>
    /// pit_ioport_read at port offset <paramref name="port"/> (0–2; 3 is answered by the caller without data): a
    /// latched status first, then a latched count, else the live count in the channel's read state.
    /// </summary>
    public int PortRead(int port)
    {
        lock (Lock)
        {
            var s = Channels[port];
            if (s.StatusLatched != 0)
            {
                s.StatusLatched = 0;
                return s.Status;
            }
            if (s.CountLatched != 0)
            {
                switch (s.CountLatched)
                {
                    case I8254Channel.RwStateMsb:
                        s.CountLatched = 0;
                        return s.LatchedCount >> 8;
                    case I8254Channel.RwStateWord0:
                        s.CountLatched = I8254Channel.RwStateMsb;
                        return s.LatchedCount & 0xff;
                    default:
                        s.CountLatched = 0;
                        return s.LatchedCount & 0xff;
                }
            }
            switch (s.ReadState)
            {
                case I8254Channel.RwStateMsb:
                    return (GetCount(port) >> 8) & 0xff;
                case I8254Channel.RwStateWord0:
                    s.ReadState = I8254Channel.RwStateWord1;
                    return GetCount(port) & 0xff;
                case I8254Channel.RwStateWord1:
                    s.ReadState = I8254Channel.RwStateWord0;
                    return (GetCount(port) >> 8) & 0xff;
                default:
                    return GetCount(port) & 0xff;
            }
        }
    }

    /// <summary>speaker_ioport_write: bit 1 is the speaker data flag, bit 0 channel 2's gate.</summary>
    public void SpeakerWrite(uint val)
    {
        lock (Lock)
        {
            if ((val & 2) != 0) Flags |= KvmConstants.KVM_PIT_FLAGS_SPEAKER_DATA_ON;
            else Flags &= ~KvmConstants.KVM_PIT_FLAGS_SPEAKER_DATA_ON;
            SetGate(2, val & 1);
        }
    }

    /// <summary>
    /// speaker_ioport_read: speaker data (bit 1), channel 2's gate (bit 0, the byte as stored), channel 2's OUT (bit 5)
    /// and the refresh clock, bit 14 of ktime_get's ns (bit 4).
    /// </summary>
    public int SpeakerRead()
    {
        int refresh = (int)(((uint)_now() >> 14) & 1);
        lock (Lock)
        {
            return ((Flags & KvmConstants.KVM_PIT_FLAGS_SPEAKER_DATA_ON) != 0 ? 2 : 0)
                | Channels[2].Gate | (GetOut(2) << 5) | (refresh << 4);
        }
    }

    /// <summary>kvm_vm_ioctl_get_pit / get_pit2: the channels as they are.</summary>
    public void GetChannels(ref PitChannels3 channels)
    {
        lock (Lock)
        {
            for (int i = 0; i < 3; i++) channels[i] = Channels[i].ToAbi();
        }
    }

    /// <summary>kvm_vm_ioctl_set_pit: the channels copied in, then each count loaded again (kvm_pit_load_count).</summary>
    public void SetChannels(in PitChannels3 channels)
    {
        lock (Lock)
        {
            for (int i = 0; i < 3; i++) Channels[i].FromAbi(channels[i]);
            for (int i = 0; i < 3; i++) LoadCount(i, Channels[i].Count, hpetLegacyStart: false);
        }
    }

    /// <summary>
    /// kvm_vm_ioctl_set_pit2: as SET_PIT with the flags stored whole; HPET legacy turning on loads channel 0 with the
    /// timer stopped (hpet_legacy_start).
    /// </summary>
    public void SetState2(in kvm_pit_state2 ps)
    {
        lock (Lock)
        {
            bool start = (Flags & KvmConstants.KVM_PIT_FLAGS_HPET_LEGACY) == 0 && (ps.flags & KvmConstants.KVM_PIT_FLAGS_HPET_LEGACY) != 0;
            for (int i = 0; i < 3; i++) Channels[i].FromAbi(ps.channels[i]);
            Flags = ps.flags;
            for (int i = 0; i < 3; i++) LoadCount(i, Channels[i].Count, start && i == 0);
        }
    }
}
