// SPDX-License-Identifier: MIT
using static KvmSharp.Abi.KvmStatsFlags;

namespace KvmSharp.Emulation.KvmMain.BinaryStats;

/// <summary>
/// One <c>struct _kvm_stats_desc</c> (include/linux/kvm_host.h): the uAPI descriptor and its name. The factories are
/// the kernel's STATS_DESC_* macros, so a table reads like the C one.
/// </summary>
internal readonly record struct StatsDesc(string Name, uint Flags, short Exponent, ushort Size, uint Offset, uint BucketSize)
{
    /// <summary>include/linux/kvm_host.h HALT_POLL_HIST_COUNT: the buckets of the halt-polling log histograms.</summary>
    public const int HaltPollHistCount = 32;

    /// <summary>STATS_DESC_COUNTER: cumulative, no unit, POW10, exponent 0.</summary>
    public static StatsDesc Counter(string name, uint offset) => new(name, KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10, 0, 1, offset, 0);

    /// <summary>STATS_DESC_ICOUNTER: instant, no unit.</summary>
    public static StatsDesc ICounter(string name, uint offset) => new(name, KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10, 0, 1, offset, 0);

    /// <summary>STATS_DESC_PCOUNTER: peak, no unit.</summary>
    public static StatsDesc PCounter(string name, uint offset) => new(name, KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10, 0, 1, offset, 0);

    /// <summary>STATS_DESC_IBOOLEAN: instant, boolean unit.</summary>
    public static StatsDesc IBoolean(string name, uint offset) => new(name, KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN | KVM_STATS_BASE_POW10, 0, 1, offset, 0);

    /// <summary>STATS_DESC_TIME_NSEC: cumulative seconds, POW10, exponent -9.</summary>
    public static StatsDesc TimeNsec(string name, uint offset) => new(name, KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10, -9, 1, offset, 0);

    /// <summary>STATS_DESC_LOGHIST_TIME_NSEC: a log histogram of nanoseconds, bucket_size 0.</summary>
    public static StatsDesc LogHistTimeNsec(string name, uint offset, ushort size) => new(name, KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10, -9, size, offset, 0);
}
