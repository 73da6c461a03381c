// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Devices;

/// <summary>
/// Maps address ranges to devices (Firecracker vstate/bus.rs). Ranges may not overlap. A micro-VM has a handful of
/// devices, so lookup is a scan of a small sorted array: no allocation and no hashing on the exit path.
/// </summary>
public sealed class Bus
{
    private (BusRange Range, IBusDevice Device)[] _entries = [];

    /// <summary>The number of devices on the bus.</summary>
    public int Count => _entries.Length;

    /// <summary>Adds <paramref name="device"/> at [<paramref name="base"/>, +<paramref name="length"/>).</summary>
    public void Insert(IBusDevice device, ulong @base, ulong length)
    {
        ArgumentNullException.ThrowIfNull(device);
        var range = new BusRange(@base, length);
        foreach (var (existing, _) in _entries)
        {
            if (existing.Overlaps(range))
                throw new ArgumentException($"bus range {range} overlaps {existing}", nameof(@base));
        }
        var entries = new (BusRange, IBusDevice)[_entries.Length + 1];
        _entries.CopyTo(entries, 0);
        entries[^1] = (range, device);
        Array.Sort(entries, (a, b) => a.Item1.Base.CompareTo(b.Item1.Base));
        _entries = entries;
    }

    /// <summary>The device whose range holds <paramref name="address"/>, and the offset inside that range.</summary>
    public bool TryResolve(ulong address, out IBusDevice? device, out ulong offset)
    {
        foreach (var (range, dev) in _entries)
        {
            if (range.Contains(address))
            {
                device = dev;
                offset = address - range.Base;
                return true;
            }
        }
        device = null;
        offset = 0;
        return false;
    }
}
