// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>KVM_CREATE_PIT2 flags (struct kvm_pit_config.flags).</summary>
[Flags]
public enum PitFlags : uint
{
    /// <summary>No speaker port: guest accesses to port 0x61 exit to the VMM.</summary>
    None = 0,

    /// <summary>
    /// KVM_PIT_SPEAKER_DUMMY: the kernel also answers port 0x61 (channel 2's gate, the speaker data bit, channel 2's
    /// OUT and a refresh-clock bit), as Firecracker and QEMU ask for.
    /// </summary>
    SpeakerDummy = KvmConstants.KVM_PIT_SPEAKER_DUMMY,
}

/// <summary>kvm_pit_state2.flags.</summary>
[Flags]
public enum PitStateFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>KVM_PIT_FLAGS_HPET_LEGACY: an HPET drives IRQ0; channel 0's timer does not run.</summary>
    HpetLegacy = KvmConstants.KVM_PIT_FLAGS_HPET_LEGACY,

    /// <summary>KVM_PIT_FLAGS_SPEAKER_DATA_ON: the guest last wrote port 0x61 with bit 1 set.</summary>
    SpeakerDataOn = KvmConstants.KVM_PIT_FLAGS_SPEAKER_DATA_ON,
}
