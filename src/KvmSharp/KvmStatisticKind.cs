// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>What a statistic's values mean (KVM_STATS_TYPE_* in bits 3:0 of the descriptor's flags).</summary>
public enum KvmStatisticKind
{
    /// <summary>KVM_STATS_TYPE_CUMULATIVE: a counter that only grows.</summary>
    Cumulative = 0,
    /// <summary>KVM_STATS_TYPE_INSTANT: a value that goes up and down.</summary>
    Instant = 1,
    /// <summary>KVM_STATS_TYPE_PEAK: the largest value seen.</summary>
    Peak = 2,
    /// <summary>KVM_STATS_TYPE_LINEAR_HIST: buckets of <see cref="KvmStatisticDescriptor.BucketSize"/> each.</summary>
    LinearHistogram = 3,
    /// <summary>KVM_STATS_TYPE_LOG_HIST: bucket i counts values in [2^(i-1), 2^i), bucket 0 the value 0.</summary>
    LogHistogram = 4,
}

/// <summary>The unit of a statistic's values (KVM_STATS_UNIT_* in bits 7:4), scaled by base^exponent.</summary>
public enum KvmStatisticUnit
{
    /// <summary>KVM_STATS_UNIT_NONE: a plain count.</summary>
    None = 0,
    /// <summary>KVM_STATS_UNIT_BYTES.</summary>
    Bytes = 1,
    /// <summary>KVM_STATS_UNIT_SECONDS (exponent -9: nanoseconds).</summary>
    Seconds = 2,
    /// <summary>KVM_STATS_UNIT_CYCLES.</summary>
    Cycles = 3,
    /// <summary>KVM_STATS_UNIT_BOOLEAN: 0 or 1.</summary>
    Boolean = 4,
}

/// <summary>The base of a statistic's exponent (KVM_STATS_BASE_* in bits 11:8).</summary>
public enum KvmStatisticBase
{
    /// <summary>KVM_STATS_BASE_POW10.</summary>
    Pow10 = 0,
    /// <summary>KVM_STATS_BASE_POW2.</summary>
    Pow2 = 1,
}
