// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Devices;

namespace KvmSharp.Vmm.Tests;

public sealed class BusTests
{
    private sealed class Probe : IBusDevice
    {
        public ulong LastOffset { get; private set; } = ulong.MaxValue;

        public void Read(ulong offset, Span<byte> data) => LastOffset = offset;

        public void Write(ulong offset, ReadOnlySpan<byte> data) => LastOffset = offset;
    }

    [Fact]
    public void Ranges_must_be_non_empty_and_must_not_overflow()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BusRange(0x10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BusRange(ulong.MaxValue, 2));
        Assert.Equal(ulong.MaxValue, new BusRange(ulong.MaxValue - 1, 1).End);
    }

    [Fact]
    public void Overlapping_devices_are_rejected_and_adjacent_ones_accepted()
    {
        var bus = new Bus();
        bus.Insert(new Probe(), 0x3F8, 8);
        Assert.Throws<ArgumentException>(() => bus.Insert(new Probe(), 0x3FF, 1));
        Assert.Throws<ArgumentException>(() => bus.Insert(new Probe(), 0x3F0, 9));
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Insert(new Probe(), 0x500, 0));
        bus.Insert(new Probe(), 0x400, 1);
        bus.Insert(new Probe(), 0x3F0, 8);
        Assert.Equal(3, bus.Count);
    }

    [Fact]
    public void Devices_see_offsets_inside_their_range()
    {
        var bus = new Bus();
        var serial = new Probe();
        bus.Insert(serial, 0x3F8, 8);
        Assert.True(bus.TryResolve(0x3FD, out var device, out ulong offset));
        Assert.Same(serial, device);
        Assert.Equal(5UL, offset);
        Assert.False(bus.TryResolve(0x400, out _, out _));
        Assert.False(bus.TryResolve(0x3F7, out _, out _));
    }

    [Fact]
    public void Serial_reports_an_idle_transmitter_and_keeps_only_thr_bytes()
    {
        var serial = new Serial16550(capacity: 4);
        Span<byte> lsr = stackalloc byte[1];
        serial.Read(Serial16550.Lsr, lsr);
        Assert.Equal(Serial16550.LsrIdle, lsr[0]);
        serial.Write(1, "I"u8); // IER: ignored
        foreach (byte b in "hello"u8) serial.Write(Serial16550.Thr, [b]);
        Assert.Equal("hell", serial.Text);
        Assert.True(serial.Truncated);
    }

    [Fact]
    public void Exit_port_takes_a_32_bit_status_from_any_access_size()
    {
        var hc = new HypercallDevice();
        hc.Write(0, [0x2A]);
        Assert.Equal(GuestRequest.Exit, hc.Request);
        Assert.Equal(42u, hc.Status);
        hc.Clear();
        hc.Write(0, [0xFF, 0xFF, 0xFF, 0xFF]);
        Assert.Equal(uint.MaxValue, hc.Status);
        hc.Clear();
        hc.Write(1, [0]);
        Assert.Equal(GuestRequest.Return, hc.Request);
    }
}
