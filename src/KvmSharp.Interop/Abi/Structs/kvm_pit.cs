// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_pit_channel_state</c> (arch/x86/include/uapi/asm/kvm.h), 24 bytes: one i8254 channel as
/// arch/x86/kvm/i8254.c keeps it (struct kvm_kpit_channel_state has the same layout; KVM_GET/SET_PIT copy it whole).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_pit_channel_state
{
    /// <summary>The initial count; 0 written by the guest is kept as 0x10000 ("can be 65536").</summary>
    public uint count;
    public ushort latched_count;
    /// <summary>0, or the RW_STATE_* that the latched count is read back in.</summary>
    public byte count_latched;
    public byte status_latched;
    public byte status;
    /// <summary>RW_STATE_LSB (1), MSB (2), WORD0 (3), WORD1 (4).</summary>
    public byte read_state;
    public byte write_state;
    public byte write_latch;
    /// <summary>The access mode of the last control word (1 lobyte, 2 hibyte, 3 word).</summary>
    public byte rw_mode;
    /// <summary>Counter mode 0–5; 0xff at creation (no mode programmed).</summary>
    public byte mode;
    public byte bcd;
    public byte gate;
    /// <summary>ktime_get() (CLOCK_MONOTONIC, ns) when the count was loaded; channel 0 keeps the caller's value.</summary>
    public long count_load_time;
}

/// <summary><c>struct kvm_pit_state</c>, 72 bytes (KVM_GET_PIT / KVM_SET_PIT): <c>channels[3]</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_pit_state
{
    public PitChannels3 channels;
}

/// <summary>
/// <c>struct kvm_pit_state2</c>, 112 bytes (KVM_GET_PIT2 / KVM_SET_PIT2): <c>channels[3]; __u32 flags;
/// __u32 reserved[9]</c>. flags: KVM_PIT_FLAGS_HPET_LEGACY, KVM_PIT_FLAGS_SPEAKER_DATA_ON (stored as given by SET).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_pit_state2
{
    public PitChannels3 channels;
    public uint flags;
    public U32x9 reserved;
}

/// <summary><c>struct kvm_pit_config</c>, 64 bytes (KVM_CREATE_PIT2): <c>__u32 flags; __u32 pad[15]</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_pit_config
{
    /// <summary>KVM_PIT_SPEAKER_DUMMY: also register the dummy speaker port 0x61; other bits are ignored.</summary>
    public uint flags;
    public U32x15 pad;
}

/// <summary><c>struct kvm_reinject_control</c>, 32 bytes (KVM_REINJECT_CONTROL): <c>__u8 pit_reinject; __u8 reserved[31]</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_reinject_control
{
    public byte pit_reinject;
    public U8x31 reserved;
}

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary>The three <see cref="kvm_pit_channel_state"/> of a PIT state.</summary>
[InlineArray(3)] public struct PitChannels3 { private kvm_pit_channel_state _e0; }
/// <summary>__u32[9].</summary>
[InlineArray(9)] public struct U32x9 { private uint _e0; }
/// <summary>__u32[15].</summary>
[InlineArray(15)] public struct U32x15 { private uint _e0; }
/// <summary>__u8[31].</summary>
[InlineArray(31)] public struct U8x31 { private byte _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169
