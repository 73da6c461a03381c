// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Tests.Abi;

/// <summary>KVM_GET_STATS_FD, struct kvm_stats_header / kvm_stats_desc and the KVM_STATS_* fields against include/uapi/linux/kvm.h.</summary>
public class BinaryStatsAbiTests
{
    [Fact]
    public void Request_is_io_kvmio_0xce() => Assert.Equal(0xAECEu, KvmIoctls.KVM_GET_STATS_FD);

    [Fact]
    public void Request_has_its_kernel_name() => Assert.Equal("KVM_GET_STATS_FD", KvmIoctls.NameOf(KvmIoctls.KVM_GET_STATS_FD));

    [Fact]
    public void Capability_is_203() => Assert.Equal(203, KvmCaps.KVM_CAP_BINARY_STATS_FD);

    [Theory]
    [InlineData(nameof(kvm_stats_header.flags), 0)]
    [InlineData(nameof(kvm_stats_header.name_size), 4)]
    [InlineData(nameof(kvm_stats_header.num_desc), 8)]
    [InlineData(nameof(kvm_stats_header.id_offset), 12)]
    [InlineData(nameof(kvm_stats_header.desc_offset), 16)]
    [InlineData(nameof(kvm_stats_header.data_offset), 20)]
    public void Header_fields_lie_where_the_kernel_puts_them(string field, int offset)
    {
        Assert.Equal(24, Marshal.SizeOf<kvm_stats_header>());
        Assert.Equal(offset, (int)Marshal.OffsetOf<kvm_stats_header>(field));
    }

    [Theory]
    [InlineData(nameof(kvm_stats_desc.flags), 0)]
    [InlineData(nameof(kvm_stats_desc.exponent), 4)]
    [InlineData(nameof(kvm_stats_desc.size), 6)]
    [InlineData(nameof(kvm_stats_desc.offset), 8)]
    [InlineData(nameof(kvm_stats_desc.bucket_size), 12)]
    public void Descriptor_fields_lie_where_the_kernel_puts_them(string field, int offset)
    {
        // The name (header.name_size bytes) follows the 16 fixed bytes: __DECLARE_FLEX_ARRAY adds nothing.
        Assert.Equal(16, Marshal.SizeOf<kvm_stats_desc>());
        Assert.Equal(offset, (int)Marshal.OffsetOf<kvm_stats_desc>(field));
    }

    [Fact]
    public void Flag_fields_are_type_unit_and_base_nibbles()
    {
        Assert.Equal((0xFu, 0xF0u, 0xF00u), (KvmStatsFlags.KVM_STATS_TYPE_MASK, KvmStatsFlags.KVM_STATS_UNIT_MASK, KvmStatsFlags.KVM_STATS_BASE_MASK));
        Assert.Equal((0u, 1u, 2u, 3u, 4u), (KvmStatsFlags.KVM_STATS_TYPE_CUMULATIVE, KvmStatsFlags.KVM_STATS_TYPE_INSTANT,
            KvmStatsFlags.KVM_STATS_TYPE_PEAK, KvmStatsFlags.KVM_STATS_TYPE_LINEAR_HIST, KvmStatsFlags.KVM_STATS_TYPE_LOG_HIST));
        Assert.Equal((0u, 0x10u, 0x20u, 0x30u, 0x40u), (KvmStatsFlags.KVM_STATS_UNIT_NONE, KvmStatsFlags.KVM_STATS_UNIT_BYTES,
            KvmStatsFlags.KVM_STATS_UNIT_SECONDS, KvmStatsFlags.KVM_STATS_UNIT_CYCLES, KvmStatsFlags.KVM_STATS_UNIT_BOOLEAN));
        Assert.Equal((0u, 0x100u), (KvmStatsFlags.KVM_STATS_BASE_POW10, KvmStatsFlags.KVM_STATS_BASE_POW2));
        Assert.Equal((4u, 0x40u, 0x100u), (KvmStatsFlags.KVM_STATS_TYPE_MAX, KvmStatsFlags.KVM_STATS_UNIT_MAX, KvmStatsFlags.KVM_STATS_BASE_MAX));
    }
}
