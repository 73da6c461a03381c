// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Tests.Abi;

/// <summary>
/// The in-kernel PIT structs and requests against include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h, with
/// the numbers a C probe (gcc, _IO/_IOR/_IOW/_IOWR over the same structs) printed on this host.
/// </summary>
public class PitAbiTests
{
    [Theory]
    [InlineData(typeof(kvm_pit_channel_state), 24)]
    [InlineData(typeof(kvm_pit_state), 72)]
    [InlineData(typeof(kvm_pit_state2), 112)]
    [InlineData(typeof(kvm_pit_config), 64)]
    [InlineData(typeof(kvm_reinject_control), 32)]
    public void Struct_has_the_kernel_size(Type type, int size) => Assert.Equal(size, Marshal.SizeOf(type));

    [Theory]
    [InlineData(typeof(kvm_pit_channel_state), nameof(kvm_pit_channel_state.latched_count), 4)]
    [InlineData(typeof(kvm_pit_channel_state), nameof(kvm_pit_channel_state.count_latched), 6)]
    [InlineData(typeof(kvm_pit_channel_state), nameof(kvm_pit_channel_state.status), 8)]
    [InlineData(typeof(kvm_pit_channel_state), nameof(kvm_pit_channel_state.rw_mode), 12)]
    [InlineData(typeof(kvm_pit_channel_state), nameof(kvm_pit_channel_state.mode), 13)]
    [InlineData(typeof(kvm_pit_channel_state), nameof(kvm_pit_channel_state.gate), 15)]
    [InlineData(typeof(kvm_pit_channel_state), nameof(kvm_pit_channel_state.count_load_time), 16)]
    [InlineData(typeof(kvm_pit_state2), nameof(kvm_pit_state2.flags), 72)]
    [InlineData(typeof(kvm_pit_state2), nameof(kvm_pit_state2.reserved), 76)]
    [InlineData(typeof(kvm_pit_config), nameof(kvm_pit_config.pad), 4)]
    [InlineData(typeof(kvm_reinject_control), nameof(kvm_reinject_control.reserved), 1)]
    public void Field_is_at_the_kernel_offset(Type type, string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf(type, field));

    [Fact]
    public void Requests_are_the_kernels()
    {
        Assert.Equal(0xae64u, KvmIoctls.KVM_CREATE_PIT);
        Assert.Equal(0xc048ae65u, KvmIoctls.KVM_GET_PIT);
        Assert.Equal(0x8048ae66u, KvmIoctls.KVM_SET_PIT);
        Assert.Equal(0xae71u, KvmIoctls.KVM_REINJECT_CONTROL);
        Assert.Equal(0x4040ae77u, KvmIoctls.KVM_CREATE_PIT2);
        Assert.Equal(0x8070ae9fu, KvmIoctls.KVM_GET_PIT2);
        Assert.Equal(0x4070aea0u, KvmIoctls.KVM_SET_PIT2);
        Assert.Equal("KVM_CREATE_PIT2", KvmIoctls.NameOf(KvmIoctls.KVM_CREATE_PIT2));
    }

    [Fact]
    public void Constants_and_capabilities_are_the_kernels()
    {
        Assert.Equal((11, 24, 33, 35), (KvmCaps.KVM_CAP_PIT, KvmCaps.KVM_CAP_REINJECT_CONTROL, KvmCaps.KVM_CAP_PIT2, KvmCaps.KVM_CAP_PIT_STATE2));
        Assert.Equal((1u, 1u, 2u), (KvmConstants.KVM_PIT_SPEAKER_DUMMY, KvmConstants.KVM_PIT_FLAGS_HPET_LEGACY, KvmConstants.KVM_PIT_FLAGS_SPEAKER_DATA_ON));
    }
}
