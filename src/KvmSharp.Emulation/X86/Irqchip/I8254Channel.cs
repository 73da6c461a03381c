// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/i8254.h <c>struct kvm_kpit_channel_state</c>: one i8254 counter, field for field the uAPI
/// <see cref="kvm_pit_channel_state"/> (KVM_GET/SET_PIT memcpy it).
/// </summary>
internal sealed class I8254Channel
{
    /// <summary>i8254.c RW_STATE_LSB, RW_STATE_MSB, RW_STATE_WORD0, RW_STATE_WORD1.</summary>
    public const byte RwStateLsb = 1, RwStateMsb = 2, RwStateWord0 = 3, RwStateWord1 = 4;

    public uint Count;
    public ushort LatchedCount;
    public byte CountLatched;
    public byte StatusLatched;
    public byte Status;
    public byte ReadState;
    public byte WriteState;
    public byte WriteLatch;
    public byte RwMode;
    public byte Mode;
    public byte Bcd;
    public byte Gate;
    /// <summary>ktime_get() in ns when the count was loaded (channels 1 and 2 only: channel 0 runs on the hrtimer).</summary>
    public long CountLoadTime;

    public kvm_pit_channel_state ToAbi() => new()
    {
        count = Count, latched_count = LatchedCount, count_latched = CountLatched, status_latched = StatusLatched,
        status = Status, read_state = ReadState, write_state = WriteState, write_latch = WriteLatch, rw_mode = RwMode,
        mode = Mode, bcd = Bcd, gate = Gate, count_load_time = CountLoadTime,
    };

    public void FromAbi(in kvm_pit_channel_state s)
    {
        Count = s.count; LatchedCount = s.latched_count; CountLatched = s.count_latched; StatusLatched = s.status_latched;
        Status = s.status; ReadState = s.read_state; WriteState = s.write_state; WriteLatch = s.write_latch;
        RwMode = s.rw_mode; Mode = s.mode; Bcd = s.bcd; Gate = s.gate; CountLoadTime = s.count_load_time;
    }
}
