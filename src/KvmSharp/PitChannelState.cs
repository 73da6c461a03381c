// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// One i8254 counter as the kernel keeps it (struct kvm_pit_channel_state), from <see cref="Vm.GetPit"/>.
/// </summary>
/// <param name="Count">The initial count (1–65536: a 0 written by the guest is kept as 65536).</param>
/// <param name="LatchedCount">The count a latch command captured.</param>
/// <param name="CountLatched">0, or the access mode the latched count is read back in.</param>
/// <param name="StatusLatched">A read-back status is waiting to be read.</param>
/// <param name="Status">The latched status byte (OUT, access mode, mode, BCD).</param>
/// <param name="ReadState">Which byte the next read returns (1 LSB, 2 MSB, 3/4 first/second byte of a word).</param>
/// <param name="WriteState">Which byte the next write loads (as <paramref name="ReadState"/>).</param>
/// <param name="WriteLatch">The low byte of a word count waiting for its high byte.</param>
/// <param name="AccessMode">The control word's access mode (1 lobyte, 2 hibyte, 3 word).</param>
/// <param name="Mode">The counter mode 0–5; 0xff before the guest programs it.</param>
/// <param name="Bcd">The control word's BCD bit (stored; the kernel counts in binary).</param>
/// <param name="Gate">The gate input (channel 2's is port 0x61 bit 0).</param>
/// <param name="CountLoadTime">CLOCK_MONOTONIC ns when the count was loaded (channels 1 and 2).</param>
public readonly record struct PitChannelState(
    uint Count, ushort LatchedCount, byte CountLatched, bool StatusLatched, byte Status, byte ReadState, byte WriteState,
    byte WriteLatch, byte AccessMode, byte Mode, bool Bcd, byte Gate, long CountLoadTime)
{
    /// <summary>From the kernel struct.</summary>
    public static PitChannelState FromKernel(in kvm_pit_channel_state s) => new(
        s.count, s.latched_count, s.count_latched, s.status_latched != 0, s.status, s.read_state, s.write_state,
        s.write_latch, s.rw_mode, s.mode, s.bcd != 0, s.gate, s.count_load_time);

    /// <summary>To the kernel struct.</summary>
    public kvm_pit_channel_state ToKernel() => new()
    {
        count = Count, latched_count = LatchedCount, count_latched = CountLatched, status_latched = StatusLatched ? (byte)1 : (byte)0,
        status = Status, read_state = ReadState, write_state = WriteState, write_latch = WriteLatch, rw_mode = AccessMode,
        mode = Mode, bcd = Bcd ? (byte)1 : (byte)0, gate = Gate, count_load_time = CountLoadTime,
    };
}
