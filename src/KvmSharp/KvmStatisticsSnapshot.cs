// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>
/// The values of one stats file at one read, looked up by name. Reuse one with
/// <see cref="KvmStatistics.ReadInto(KvmStatisticsSnapshot)"/> to read without allocating.
/// </summary>
public sealed class KvmStatisticsSnapshot
{
    private readonly ulong[] _values;

    internal KvmStatisticsSnapshot(KvmStatistics source)
    {
        Source = source;
        _values = new ulong[source.ValueCount];
    }

    /// <summary>The stats file the values come from (its descriptors name them).</summary>
    public KvmStatistics Source { get; }

    /// <summary>Every value of the data block, in file order.</summary>
    public ReadOnlySpan<ulong> Values => _values;

    internal Span<ulong> Writable => _values;

    /// <summary>The first (for a counter: the only) value of statistic <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">The file has no statistic of that name.</exception>
    public ulong this[string name] => GetValues(name)[0];

    /// <summary>The first value of <paramref name="descriptor"/>, one of <see cref="Source"/>'s descriptors.</summary>
    public ulong this[KvmStatisticDescriptor descriptor] => GetValues(descriptor)[0];

    /// <summary>All values of statistic <paramref name="name"/> (a histogram's buckets).</summary>
    /// <exception cref="KeyNotFoundException">The file has no statistic of that name.</exception>
    public ReadOnlySpan<ulong> GetValues(string name) => GetValues(Source.GetDescriptor(name));

    /// <summary>All values of <paramref name="descriptor"/>.</summary>
    public ReadOnlySpan<ulong> GetValues(KvmStatisticDescriptor descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return _values.AsSpan(descriptor.Index, descriptor.Size);
    }

    /// <summary>The first value of <paramref name="name"/>, or false when the file has no such statistic.</summary>
    public bool TryGetValue(string name, out ulong value)
    {
        value = 0;
        if (!Source.TryGetDescriptor(name, out var d)) return false;
        value = _values[d.Index];
        return true;
    }
}
