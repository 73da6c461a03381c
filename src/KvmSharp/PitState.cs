// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>The in-kernel PIT's state (struct kvm_pit_state2): three channels and the flags.</summary>
/// <param name="Channel0">Counter 0 (IRQ0's timer).</param>
/// <param name="Channel1">Counter 1.</param>
/// <param name="Channel2">Counter 2 (the speaker's; gated by port 0x61 bit 0).</param>
/// <param name="Flags">HPET legacy and speaker data.</param>
public readonly record struct PitState(PitChannelState Channel0, PitChannelState Channel1, PitChannelState Channel2, PitStateFlags Flags)
{
    /// <summary>Channel <paramref name="index"/> (0–2).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is not 0, 1 or 2.</exception>
    public PitChannelState this[int index] => index switch
    {
        0 => Channel0,
        1 => Channel1,
        2 => Channel2,
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "the PIT has channels 0, 1 and 2"),
    };

    /// <summary>From the kernel struct.</summary>
    public static PitState FromKernel(in kvm_pit_state2 s) => new(
        PitChannelState.FromKernel(s.channels[0]), PitChannelState.FromKernel(s.channels[1]),
        PitChannelState.FromKernel(s.channels[2]), (PitStateFlags)s.flags);

    /// <summary>To the kernel struct (reserved zero).</summary>
    public kvm_pit_state2 ToKernel()
    {
        var s = new kvm_pit_state2 { flags = (uint)Flags };
        s.channels[0] = Channel0.ToKernel();
        s.channels[1] = Channel1.ToKernel();
        s.channels[2] = Channel2.ToKernel();
        return s;
    }
}
