// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The in-kernel PIT in the fuzzer (arch/x86/kvm/i8254.c, x86.c kvm_arch_vm_ioctl): the states KVM_SET_PIT(2) is given
/// and how KVM_GET_PIT(2) answers are described, for the PIT calls of an irqchip session (KernelSession.Pit.cs) and the
/// guests that program the PIT's ports (TinyGuestRun.Irqchip.cs).
/// <para>
/// Nothing compared may follow the host clock. Two things do: counts read while a counter runs (pit_get_count,
/// pit_get_out: elapsed time since count_load_time, or channel 0's hrtimer) and the times channels 1 and 2 are stamped
/// with (pit_load_count: ktime_get). Channel 0 reads the clock only once it has had a timer (__kpit_elapsed returns 0
/// while ps->period is 0), and its timer would raise IRQ0 at a moment of the host's choosing — the PIC's IRR, the
/// IOAPIC's, every later KVM_IRQ_LINE_STATUS answer on GSI 0. So channel 0 never gets a timer that could expire while
/// its VM lives: create_pit_timer starts one only for modes 0–4 (and not with KVM_PIT_FLAGS_HPET_LEGACY), and a mode
/// 0–4 count drawn here is at least 0x40000000 (about 900 s at KVM_PIT_FREQ); guests load channel 0 only in mode 5 or
/// with HPET legacy on. Channels 1 and 2 have no timer; their load times are never shown (a round trip says only
/// whether SET's value was kept), nor, once a guest could latch them, their latched counts and status OUT bits.
/// </para>
/// </summary>
internal static class PitOps
{
    /// <summary>The smallest count a channel-0 mode 0–4 gets: its timer expires after ~900 s, never within a VM's life here.</summary>
    public const uint SafeTimerCount = 0x4000_0000;

    /// <summary>A channel state for KVM_SET_PIT(2): any field any value now and then, channel 0 without a timer that could fire.</summary>
    public static kvm_pit_channel_state Channel(Random rng, int channel, bool timerOff = false)
    {
        byte mode = rng.Next(8) switch
        {
            < 5 => (byte)rng.Next(0, 6),
            5 => 0xff,
            6 => (byte)rng.Next(6, 8),
            _ => (byte)rng.Next(0x100),
        };
        uint count = rng.Next(6) switch
        {
            0 => 0,                                 // pit_load_count: kept as 0x10000
            1 => 0x10000,
            2 => 0xffff,
            3 => (uint)rng.NextInt64(0, 1L << 32),
            4 => 1,
            _ => (uint)rng.Next(2, 0x10000),
        };
        if (channel == 0 && mode <= 4 && !timerOff) count = SafeTimerCount + (uint)rng.NextInt64(0, 0xC000_0000);
        return new kvm_pit_channel_state
        {
            count = count,
            latched_count = (ushort)rng.Next(0x10000),
            count_latched = (byte)(rng.Next(4) == 0 ? rng.Next(0x100) : rng.Next(0, 5)),
            status_latched = (byte)(rng.Next(4) == 0 ? rng.Next(0x100) : rng.Next(0, 2)),
            status = (byte)rng.Next(0x100),
            read_state = (byte)(rng.Next(4) == 0 ? rng.Next(0x100) : rng.Next(0, 5)),
            write_state = (byte)(rng.Next(4) == 0 ? rng.Next(0x100) : rng.Next(0, 5)),
            write_latch = (byte)rng.Next(0x100),
            rw_mode = (byte)(rng.Next(4) == 0 ? rng.Next(0x100) : rng.Next(0, 4)),
            mode = mode,
            bcd = (byte)(rng.Next(4) == 0 ? rng.Next(0x100) : rng.Next(0, 2)),
            gate = (byte)(rng.Next(4) == 0 ? rng.Next(0x100) : rng.Next(0, 2)),
            count_load_time = rng.Next(3) switch { 0 => 0, 1 => rng.Next(), _ => rng.NextInt64(long.MinValue, long.MaxValue) },
        };
    }

    /// <summary>KVM_SET_PIT2's flags: none, HPET legacy, speaker data, both, or any bits.</summary>
    public static uint Flags(Random rng) => rng.Next(6) switch
    {
        0 => KvmConstants.KVM_PIT_FLAGS_HPET_LEGACY,
        1 => KvmConstants.KVM_PIT_FLAGS_SPEAKER_DATA_ON,
        2 => KvmConstants.KVM_PIT_FLAGS_HPET_LEGACY | KvmConstants.KVM_PIT_FLAGS_SPEAKER_DATA_ON,
        3 => (uint)rng.NextInt64(0, 1L << 32),
        _ => 0,
    };

    /// <summary>
    /// The three channels as text. Channel 0 in full (its count_load_time is only ever what KVM_SET_PIT gave:
    /// pit_load_count stamps channels 1 and 2 only). Channels 1 and 2 without count_load_time — with <paramref name="set"/>
    /// (a round trip) whether SET's value was kept — and, when a guest may have latched them
    /// (<paramref name="guestLatched"/>), without latched_count and the status byte's OUT bit.
    /// </summary>
    public static string Describe(in PitChannels3 channels, bool guestLatched = false, PitChannels3? set = null)
    {
        var text = new StringBuilder();
        for (int i = 0; i < 3; i++)
        {
            var c = channels[i];
            bool clocked = i != 0 && guestLatched;
            text.Append(CultureInfo.InvariantCulture, $" c{i}[count=0x{c.count:X}");
            if (!clocked) text.Append(CultureInfo.InvariantCulture, $" latched=0x{c.latched_count:X}");
            text.Append(CultureInfo.InvariantCulture,
                $" cl={c.count_latched} sl={c.status_latched} status=0x{(clocked ? c.status & 0x7f : c.status):X} rs={c.read_state} ws={c.write_state} wl=0x{c.write_latch:X} rw={c.rw_mode} mode=0x{c.mode:X} bcd={c.bcd} gate={c.gate}");
            if (i == 0) text.Append(CultureInfo.InvariantCulture, $" t={c.count_load_time}");
            else if (set is { } s) text.Append(c.count_load_time == s[i].count_load_time ? " t kept" : " t stamped");
            text.Append(']');
        }
        return text.ToString();
    }
}
