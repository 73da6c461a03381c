// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>
/// The fields of <see cref="kvm_stats_desc.flags"/> (include/uapi/linux/kvm.h, "KVM_STATS_TYPE_*", "KVM_STATS_UNIT_*",
/// "KVM_STATS_BASE_*"): the type in bits 3:0, the unit in bits 7:4, the base in bits 11:8.
/// </summary>
public static class KvmStatsFlags
{
    public const uint KVM_STATS_TYPE_SHIFT = 0;
    public const uint KVM_STATS_TYPE_MASK = 0xFu << (int)KVM_STATS_TYPE_SHIFT;
    /// <summary>A counter that only grows.</summary>
    public const uint KVM_STATS_TYPE_CUMULATIVE = 0x0u << (int)KVM_STATS_TYPE_SHIFT;
    /// <summary>A value that goes up and down.</summary>
    public const uint KVM_STATS_TYPE_INSTANT = 0x1u << (int)KVM_STATS_TYPE_SHIFT;
    /// <summary>The largest value seen so far.</summary>
    public const uint KVM_STATS_TYPE_PEAK = 0x2u << (int)KVM_STATS_TYPE_SHIFT;
    /// <summary>A histogram with buckets of kvm_stats_desc.bucket_size each.</summary>
    public const uint KVM_STATS_TYPE_LINEAR_HIST = 0x3u << (int)KVM_STATS_TYPE_SHIFT;
    /// <summary>A histogram whose bucket i holds values in [2^(i-1), 2^i) (bucket 0: the value 0).</summary>
    public const uint KVM_STATS_TYPE_LOG_HIST = 0x4u << (int)KVM_STATS_TYPE_SHIFT;
    public const uint KVM_STATS_TYPE_MAX = KVM_STATS_TYPE_LOG_HIST;

    public const uint KVM_STATS_UNIT_SHIFT = 4;
    public const uint KVM_STATS_UNIT_MASK = 0xFu << (int)KVM_STATS_UNIT_SHIFT;
    public const uint KVM_STATS_UNIT_NONE = 0x0u << (int)KVM_STATS_UNIT_SHIFT;
    public const uint KVM_STATS_UNIT_BYTES = 0x1u << (int)KVM_STATS_UNIT_SHIFT;
    public const uint KVM_STATS_UNIT_SECONDS = 0x2u << (int)KVM_STATS_UNIT_SHIFT;
    public const uint KVM_STATS_UNIT_CYCLES = 0x3u << (int)KVM_STATS_UNIT_SHIFT;
    /// <summary>0 or 1.</summary>
    public const uint KVM_STATS_UNIT_BOOLEAN = 0x4u << (int)KVM_STATS_UNIT_SHIFT;
    public const uint KVM_STATS_UNIT_MAX = KVM_STATS_UNIT_BOOLEAN;

    public const uint KVM_STATS_BASE_SHIFT = 8;
    public const uint KVM_STATS_BASE_MASK = 0xFu << (int)KVM_STATS_BASE_SHIFT;
    public const uint KVM_STATS_BASE_POW10 = 0x0u << (int)KVM_STATS_BASE_SHIFT;
    public const uint KVM_STATS_BASE_POW2 = 0x1u << (int)KVM_STATS_BASE_SHIFT;
    public const uint KVM_STATS_BASE_MAX = KVM_STATS_BASE_POW2;
}
