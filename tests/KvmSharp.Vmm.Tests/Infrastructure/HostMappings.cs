// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// This process's mappings (/proc/self/maps), to see that guest memory in host memory (an anonymous mapping, which
/// <see cref="KvmFds.KvmMappings"/> does not count) is unmapped when its micro-VM is disposed.
/// </summary>
public static class HostMappings
{
    /// <summary>True when some mapping of this process overlaps [address, address+length).</summary>
    public static bool AnyIn(nint address, ulong length)
    {
        ulong start = (ulong)address, end = start + length;
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            ulong from = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong to = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (from < end && start < to) return true;
        }
        return false;
    }
}
