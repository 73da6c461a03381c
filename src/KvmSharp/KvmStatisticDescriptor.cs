// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// One statistic of a stats file (<c>struct kvm_stats_desc</c> and its name), decoded. Kinds, units and bases the
/// SDK does not name stay readable as numbers (<see cref="Flags"/>).
/// </summary>
public sealed class KvmStatisticDescriptor
{
    internal KvmStatisticDescriptor(string name, kvm_stats_desc desc, int index)
    {
        Name = name;
        Flags = desc.flags;
        Exponent = desc.exponent;
        Size = desc.size;
        Offset = desc.offset;
        BucketSize = desc.bucket_size;
        Index = index;
    }

    /// <summary>The statistic's name, e.g. "halt_exits".</summary>
    public string Name { get; }

    /// <summary>The raw flags: type | unit | base.</summary>
    public uint Flags { get; }

    /// <summary>KVM_STATS_TYPE_* as an enum (a value above LogHistogram is a type this SDK does not know).</summary>
    public KvmStatisticKind Kind => (KvmStatisticKind)((Flags & KvmStatsFlags.KVM_STATS_TYPE_MASK) >> (int)KvmStatsFlags.KVM_STATS_TYPE_SHIFT);

    /// <summary>KVM_STATS_UNIT_*.</summary>
    public KvmStatisticUnit Unit => (KvmStatisticUnit)((Flags & KvmStatsFlags.KVM_STATS_UNIT_MASK) >> (int)KvmStatsFlags.KVM_STATS_UNIT_SHIFT);

    /// <summary>KVM_STATS_BASE_*.</summary>
    public KvmStatisticBase Base => (KvmStatisticBase)((Flags & KvmStatsFlags.KVM_STATS_BASE_MASK) >> (int)KvmStatsFlags.KVM_STATS_BASE_SHIFT);

    /// <summary>The values are in unit × base^Exponent (-9 with seconds: nanoseconds).</summary>
    public short Exponent { get; }

    /// <summary>How many 64-bit values the statistic has (1, or a histogram's bucket count).</summary>
    public int Size { get; }

    /// <summary>Byte offset of its first value in the file's data block.</summary>
    public uint Offset { get; }

    /// <summary>A linear histogram's bucket width; 0 otherwise.</summary>
    public uint BucketSize { get; }

    /// <summary>True for a histogram (linear or logarithmic).</summary>
    public bool IsHistogram => Kind is KvmStatisticKind.LinearHistogram or KvmStatisticKind.LogHistogram;

    /// <summary>Index of its first value among a snapshot's values (<see cref="Offset"/> / 8).</summary>
    internal int Index { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({Kind}, {Unit}, {Base}^{Exponent}, size {Size})";
}
