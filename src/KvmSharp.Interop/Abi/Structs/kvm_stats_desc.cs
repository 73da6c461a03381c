// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_stats_desc</c>, 16 bytes, followed in the file by the statistic's NUL-padded name of
/// <see cref="kvm_stats_header.name_size"/> bytes (<c>__DECLARE_FLEX_ARRAY(char, name)</c>).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_stats_desc
{
    /// <summary>KVM_STATS_TYPE_* | KVM_STATS_UNIT_* | KVM_STATS_BASE_* (<see cref="KvmStatsFlags"/>).</summary>
    public uint flags;
    /// <summary>The power of the base the values are scaled by (-9 with POW10 and SECONDS: nanoseconds).</summary>
    public short exponent;
    /// <summary>How many __u64 values the statistic has (1, or the bucket count of a histogram).</summary>
    public ushort size;
    /// <summary>Where its values start, in bytes from the header's data_offset.</summary>
    public uint offset;
    /// <summary>A linear histogram's bucket width; 0 for every other type.</summary>
    public uint bucket_size;
}
