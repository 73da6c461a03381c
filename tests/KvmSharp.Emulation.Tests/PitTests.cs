// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.X86.Irqchip;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The emulator's i8254 (X86/Irqchip/I8254*.cs, PitIoctls.cs) on a fake clock, where exact counts can be asserted;
/// the conformance case PitRules compares the same behaviour with the real kernel in ranges.
/// </summary>
public sealed class PitTests
{
    private const long ENXIO = -6;

    private sealed class FakeClock
    {
        public long Ns = 1_000_000_000;
        public long Now() => Ns;
    }

    /// <summary>mul_u64_u32_div(ns, KVM_PIT_FREQ, NSEC_PER_SEC).</summary>
    private static long Ticks(long ns) => (long)((UInt128)(ulong)ns * 1193182 / 1_000_000_000);

    private static (I8254 Pit, FakeClock Clock) NewPit()
    {
        var clock = new FakeClock();
        return (new I8254(KvmConstants.KVM_PIT_SPEAKER_DUMMY, clock.Now), clock);
    }

    private static void Program(I8254 pit, int channel, int mode, uint count)
    {
        pit.PortWrite(3, (byte)((channel << 6) | 0x30 | (mode << 1)));
        pit.PortWrite(channel, (byte)count);
        pit.PortWrite(channel, (byte)(count >> 8));
    }

    private static int ReadWord(I8254 pit, int channel) => pit.PortRead(channel) | (pit.PortRead(channel) << 8);

    [Fact]
    public void Reset_state_is_the_kernels()
    {
        var (pit, clock) = NewPit();
        var s = default(PitChannels3);
        pit.GetChannels(ref s);
        Assert.Equal((0x10000u, (byte)0xff, (byte)1, 0L), (s[0].count, s[0].mode, s[0].gate, s[0].count_load_time));
        Assert.Equal((0x10000u, (byte)1, clock.Ns), (s[1].count, s[1].gate, s[1].count_load_time));
        Assert.Equal((byte)0, s[2].gate);
        Assert.True(pit.Reinject);
        Assert.Equal(0L, pit.PeriodNs);
    }

    [Fact]
    public void Channel0_mode2_counts_down_from_the_timer_and_reloads_each_period()
    {
        var (pit, clock) = NewPit();
        Program(pit, 0, 2, 1000);
        long period = 1000L * 1_000_000_000 / 1193182;
        Assert.Equal(period, pit.PeriodNs);
        Assert.True(pit.IsPeriodic);
        Assert.Equal(1000, ReadWord(pit, 0));
        clock.Ns += period / 2;
        Assert.Equal(1000 - Ticks(period / 2), ReadWord(pit, 0));
        // One and a half periods on: the hrtimer re-armed once, so the count is back in the second half.
        clock.Ns += period;
        Assert.Equal(1000 - Ticks(period / 2), ReadWord(pit, 0));
    }

    [Fact]
    public void Short_periodic_timers_are_raised_to_min_timer_period()
    {
        var (pit, _) = NewPit();
        Program(pit, 0, 2, 100);
        Assert.Equal(I8254.MinPeriodNs, pit.PeriodNs);
        Program(pit, 0, 0, 100); // one-shot: not clamped
        Assert.Equal(100L * 1_000_000_000 / 1193182, pit.PeriodNs);
    }

    [Fact]
    public void Channel2_mode0_wraps_and_out_goes_high_at_terminal_count()
    {
        var (pit, clock) = NewPit();
        Program(pit, 2, 0, 10);
        Assert.Equal(0, pit.GetOut(2));
        clock.Ns += 1_000_000_000; // 1193182 ticks: (10 - d) & 0xffff
        Assert.Equal((int)((10 - 1193182) & 0xffff), pit.GetCount(2));
        Assert.Equal(1, pit.GetOut(2));
    }

    [Fact]
    public void Latch_command_freezes_the_count_until_both_bytes_are_read()
    {
        var (pit, clock) = NewPit();
        Program(pit, 1, 2, 5000);
        clock.Ns += 1_000_000; // 1193 ticks
        pit.PortWrite(3, 0x40); // latch channel 1
        int latched = 5000 - (int)Ticks(1_000_000);
        clock.Ns += 1_000_000;
        pit.PortWrite(3, 0x40); // ignored: the first latch is still unread
        Assert.Equal(latched, ReadWord(pit, 1));
        Assert.Equal(5000 - (int)Ticks(2_000_000), ReadWord(pit, 1)); // live again
    }

    [Fact]
    public void Read_back_latches_status_then_count()
    {
        var (pit, _) = NewPit();
        pit.PortWrite(3, 0x80 | 0x30 | (3 << 1) | 1); // channel 2, word, mode 3, BCD
        pit.PortWrite(2, 0x34);
        pit.PortWrite(2, 0x12);
        pit.PortWrite(3, 0xC0 | (1 << 3)); // read-back: count and status of channel 2
        int status = pit.PortRead(2);
        Assert.Equal(0x30 | (3 << 1) | 1, status & 0x7f);
        Assert.Equal(1, status >> 7); // mode 3 starts with OUT high
        Assert.Equal(0x1234, ReadWord(pit, 2));
    }

    [Fact]
    public void Modes_6_and_7_are_2_and_3_and_lobyte_hibyte_access_loads_one_byte()
    {
        var (pit, _) = NewPit();
        pit.PortWrite(3, 0x40 | 0x10 | (6 << 1)); // channel 1, lobyte, mode 6
        Assert.Equal((byte)2, pit.Channels[1].Mode);
        pit.PortWrite(1, 0x55);
        Assert.Equal(0x55u, pit.Channels[1].Count);
        pit.PortWrite(3, 0x40 | 0x20 | (7 << 1)); // hibyte, mode 7
        Assert.Equal((byte)3, pit.Channels[1].Mode);
        pit.PortWrite(1, 0x00); // 0 << 8 = 0 → 0x10000
        Assert.Equal(0x10000u, pit.Channels[1].Count);
    }

    [Fact]
    public void Speaker_port_drives_channel2_gate_and_data_flag()
    {
        var (pit, clock) = NewPit();
        Program(pit, 2, 2, 1000);
        clock.Ns += 500_000;
        long loaded = pit.Channels[2].CountLoadTime;
        pit.SpeakerWrite(3);
        Assert.Equal(KvmConstants.KVM_PIT_FLAGS_SPEAKER_DATA_ON, pit.Flags);
        Assert.Equal((byte)1, pit.Channels[2].Gate);
        Assert.NotEqual(loaded, pit.Channels[2].CountLoadTime); // rising edge in mode 2 restarts counting
        Assert.Equal(3, pit.SpeakerRead() & 3);
        pit.SpeakerWrite(0);
        Assert.Equal(0u, pit.Flags);
        Assert.Equal(0, pit.SpeakerRead() & 3);
    }

    [Fact]
    public void Set_state2_with_hpet_legacy_stops_channel0_and_keeps_its_mode()
    {
        var (pit, clock) = NewPit();
        Program(pit, 0, 2, 1000);
        var s = default(kvm_pit_state2);
        pit.GetChannels(ref s.channels);
        s.flags = KvmConstants.KVM_PIT_FLAGS_HPET_LEGACY;
        pit.SetState2(s);
        Assert.Equal((byte)2, pit.Channels[0].Mode);
        Assert.False(pit.TimerArmed);
        clock.Ns += 10_000_000;
        // Loads with HPET legacy set never start a timer.
        Program(pit, 0, 2, 500);
        Assert.False(pit.TimerArmed);
    }

    [Fact]
    public void Ioctls_follow_the_kernel_order_and_a_failure_changes_nothing()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        var cfg = new kvm_pit_config { flags = KvmConstants.KVM_PIT_SPEAKER_DUMMY };
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT2, Span<byte>.Empty));
        Assert.Equal(Raw.ENOENT, k.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT2, Raw.Bytes(ref cfg)));
        Assert.Equal(ENXIO, k.Ioctl(vm, KvmIoctls.KVM_GET_PIT2, Span<byte>.Empty)); // ENXIO before the copy
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmIoctls.KVM_GET_PIT, Span<byte>.Empty)); // the copy before ENXIO
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmIoctls.KVM_REINJECT_CONTROL, Span<byte>.Empty));
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL));
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT2, Raw.Bytes(ref cfg)));
        Assert.Equal(Raw.EEXIST, k.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT, 0UL));
        var s = new kvm_pit_state2 { flags = 0xdead };
        s.reserved[0] = 7;
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmIoctls.KVM_SET_PIT2, new byte[16]));
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_GET_PIT2, Raw.Bytes(ref s)));
        Assert.Equal((0u, 0u), (s.flags, s.reserved[0]));
        Assert.Equal(1, Raw.Cap(k, vm, KvmCaps.KVM_CAP_PIT2));
    }

    [Fact]
    public void Every_generation_needs_the_in_kernel_pic()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false, KernelGeneration.Linux61));
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        Assert.Equal(Raw.ENOENT, k.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT, 0UL));
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL));
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT, 0UL));
    }

    [Fact]
    public void Without_the_irqchip_configured_pit_requests_are_enotty_and_caps_0()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost() with { X86InKernelIrqchip = false });
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        Assert.Equal(Raw.ENOTTY, k.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT, 0UL));
        Assert.Equal(0, Raw.Cap(k, vm, KvmCaps.KVM_CAP_PIT));
    }
    [Fact]
    public void Channel0_ticks_raise_irq0_once_per_ack_with_reinject_and_every_poll_without()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL));
        var kvm = GuestMemoryPath.VmOf(k, vm)!;
        var clock = new FakeClock();
        var pit = new I8254(0, clock.Now);
        Assert.False(pit.Poll(kvm)); // no timer
        Program(pit, 0, 2, 11932); // 10 ms period
        Assert.Equal(clock.Ns + pit.PeriodNs, pit.NextExpiryNs);
        Assert.False(pit.Poll(kvm));
        clock.Ns += pit.PeriodNs;
        Assert.True(pit.Poll(kvm)); // first tick: irq_ack was 1
        Assert.Equal(1, pit.Pending);
        clock.Ns += 3 * pit.PeriodNs;
        Assert.False(pit.Poll(kvm)); // not acked: held, pending counts the ticks
        Assert.Equal(4, pit.Pending);
        Assert.True(pit.AckIrq()); // the ack queues the worker for one held tick
        Assert.Equal(3, pit.Pending);
        Assert.True(pit.Poll(kvm)); // it runs at the next poll, with no new expiry
        Assert.False(pit.Poll(kvm));
        pit.SetReinject(false);
        clock.Ns += pit.PeriodNs;
        Assert.True(pit.Poll(kvm));
        clock.Ns += pit.PeriodNs;
        Assert.True(pit.Poll(kvm)); // without reinject every poll that saw an expiry raises IRQ0
        Program(pit, 0, 0, 11932); // one-shot
        clock.Ns += 5 * pit.PeriodNs;
        Assert.True(pit.Poll(kvm));
        clock.Ns += 5 * pit.PeriodNs;
        Assert.False(pit.Poll(kvm));
        Assert.Null(pit.NextExpiryNs);
    }
}
