// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c kvm->buses: per bus one array of <see cref="KvmIoRange"/> — ioeventfds, coalesced MMIO zones
/// and the in-kernel devices (<see cref="IKvmIoDevice"/>: PIC ports, IOAPIC MMIO, PIT …) together — kept in
/// kvm_io_bus_register_dev's order and searched as kvm_io_bus_get_first_dev does (bsearch, then back to the first
/// range that contains the access), so overlapping registrations are tried in the kernel's order. Changed under the
/// kernel lock (slots_lock) by publishing a new array; read by running vCPUs without it, as the kernel reads the
/// SRCU-protected bus.
/// </summary>
internal sealed class IoBus
{
    /// <summary>include/linux/kvm_host.h NR_IOBUS_DEVS.</summary>
    public const int NrIoBusDevs = 1000;

    // include/linux/kvm_host.h enum kvm_bus: MMIO, PIO, VIRTIO_CCW_NOTIFY, FAST_MMIO (KvmBus).
    private readonly KvmIoRange[][] _buses = [[], [], [], []];
    private readonly int[] _ioeventfdCount = new int[4];
    private IoEventFd[] _ioeventfds = [];

    /// <summary>The registrations that are not ioeventfds (in-kernel devices, coalesced zones), bus by bus in bus order.</summary>
    public IReadOnlyList<KvmIoRange> Ranges =>
        [.. _buses.SelectMany(b => Volatile.Read(ref b)).Where(r => r.Device is not IoEventFd)];

    /// <summary>One bus's registrations in the kernel's order (kvm->buses[bus]->range).</summary>
    public IReadOnlyList<KvmIoRange> BusRanges(KvmBus bus) => Volatile.Read(ref _buses[(int)bus]);

    /// <summary>
    /// kvm_io_bus_register_dev (caller holds slots_lock): "exclude ioeventfd which is limited by maximum fd" —
    /// "if (bus-&gt;dev_count - bus-&gt;ioeventfd_count &gt; NR_IOBUS_DEVS - 1) return -ENOSPC" (an ioeventfd's own
    /// registration is refused too once 1000 others fill the bus); the new range goes before the first one
    /// "kvm_io_bus_cmp(&amp;bus-&gt;range[i], &amp;range) &gt; 0" (so after every equal one).
    /// </summary>
    public long TryRegister(KvmBus bus, ulong addr, int length, IKvmIoDevice device)
    {
        int b = (int)bus;
        var old = _buses[b];
        if (old.Length - _ioeventfdCount[b] > NrIoBusDevs - 1) return Err.ENOSPC;
        var range = new KvmIoRange(bus, addr, length, device);
        int i = 0;
        while (i < old.Length && Compare(old[i].Addr, old[i].Length, range.Addr, range.Length) <= 0) i++;
        Volatile.Write(ref _buses[b], [.. old.AsSpan(0, i), range, .. old.AsSpan(i)]);
        return 0;
    }

    /// <summary>
    /// kvm_io_bus_unregister_dev: the first registration of <paramref name="device"/> on <paramref name="bus"/> goes
    /// (none: nothing happens). Returns whether one went.
    /// </summary>
    public bool Unregister(KvmBus bus, IKvmIoDevice device)
    {
        int b = (int)bus;
        var old = _buses[b];
        int i = Array.FindIndex(old, r => ReferenceEquals(r.Device, device));
        if (i < 0) return false;
        Volatile.Write(ref _buses[b], [.. old.AsSpan(0, i), .. old.AsSpan(i + 1)]);
        return true;
    }

    /// <summary>Takes every registration of a kind of device off <paramref name="bus"/> (a failed creation's unwinding).</summary>
    public void UnregisterAll(KvmBus bus, Func<IKvmIoDevice, bool> which)
    {
        int b = (int)bus;
        Volatile.Write(ref _buses[b], [.. _buses[b].Where(r => !which(r.Device))]);
    }

    /// <summary>kvm->ioeventfds, in registration order.</summary>
    public IReadOnlyList<IoEventFd> IoEventFds => Volatile.Read(ref _ioeventfds);

    /// <summary>
    /// kvm_assign_ioeventfd_idx after the collision check: kvm_io_bus_register_dev (ENOSPC as above), then
    /// "kvm_get_bus(kvm, bus_idx)-&gt;ioeventfd_count++" and list_add_tail to kvm->ioeventfds.
    /// </summary>
    public long Add(IoEventFd device)
    {
        long r = TryRegister(device.Bus, device.Addr, device.Length, device);
        if (r != 0) return r;
        _ioeventfdCount[(int)device.Bus]++;
        Volatile.Write(ref _ioeventfds, [.. _ioeventfds, device]);
        return 0;
    }

    /// <summary>kvm_deassign_ioeventfd_idx: kvm_io_bus_unregister_dev, "bus-&gt;ioeventfd_count--", list_del.</summary>
    public void Remove(IoEventFd device)
    {
        if (Unregister(device.Bus, device)) _ioeventfdCount[(int)device.Bus]--;
        Volatile.Write(ref _ioeventfds, [.. _ioeventfds.Where(d => !ReferenceEquals(d, device))]);
    }

    /// <summary>
    /// kvm_io_bus_read → __kvm_io_bus_read: from kvm_io_bus_get_first_dev, every range containing the access in turn
    /// until a device's read takes it (fills <paramref name="data"/>). False: none did (ioeventfds and coalesced zones
    /// have no read), the access goes to userspace.
    /// </summary>
    public bool Read(KvmBus bus, Vcpu.KvmVcpu vcpu, ulong addr, Span<byte> data)
    {
        var ranges = Volatile.Read(ref _buses[(int)bus]);
        for (int i = FirstDevice(ranges, addr, data.Length); i >= 0 && i < ranges.Length && Compare(addr, data.Length, ranges[i].Addr, ranges[i].Length) == 0; i++)
        {
            if (ranges[i].Device.Read(vcpu, addr, data)) return true;
        }
        return false;
    }

    /// <summary>
    /// kvm_io_bus_write → __kvm_io_bus_write: as <see cref="Read"/>, the first device whose write takes the access
    /// handles it (an ioeventfd in range signals, a coalesced zone with room queues it). False: none did (every device
    /// answered -EOPNOTSUPP), the access goes to userspace. <paramref name="value"/> holds the <paramref name="len"/>
    /// (at most 8) bytes little-endian.
    /// </summary>
    public bool Write(KvmBus bus, Vcpu.KvmVcpu vcpu, ulong addr, int len, ulong value)
    {
        var ranges = Volatile.Read(ref _buses[(int)bus]);
        if (ranges.Length == 0 || len is < 0 or > 8) return false;
        int i = FirstDevice(ranges, addr, len);
        if (i < 0) return false;
        Span<byte> data = stackalloc byte[len];
        for (int b = 0; b < len; b++) data[b] = (byte)(value >> (8 * b));
        for (; i < ranges.Length && Compare(addr, len, ranges[i].Addr, ranges[i].Length) == 0; i++)
        {
            if (ranges[i].Device.Write(vcpu, addr, data)) return true;
        }
        return false;
    }

    /// <summary>
    /// kvm_io_bus_cmp(r1, r2): -1 when r1 starts below r2; then, "If r2-&gt;len == 0, match the exact address. If
    /// r2-&gt;len != 0, accept any overlapping write" — compare the ends (gpa_t arithmetic, wrapping; a negative int
    /// length sign-extends); 1 when r1's is beyond, else 0 (r1 lies inside r2).
    /// </summary>
    private static int Compare(ulong addr1, int len1, ulong addr2, int len2)
    {
        if (addr1 < addr2) return -1;
        if (len2 != 0)
        {
            addr1 += (ulong)(long)len1;
            addr2 += (ulong)(long)len2;
        }
        return addr1 > addr2 ? 1 : 0;
    }

    /// <summary>
    /// kvm_io_bus_get_first_dev: lib/bsearch.c over the sorted ranges with kvm_io_bus_sort_cmp(key, range), then
    /// "while (off &gt; 0 &amp;&amp; kvm_io_bus_cmp(&amp;key, &amp;bus-&gt;range[off-1]) == 0) off--". -1: bsearch found none.
    /// </summary>
    private static int FirstDevice(KvmIoRange[] ranges, ulong addr, int len)
    {
        int lo = 0, num = ranges.Length, found = -1;
        while (num > 0)
        {
            int pivot = lo + (num >> 1);
            int result = Compare(addr, len, ranges[pivot].Addr, ranges[pivot].Length);
            if (result == 0)
            {
                found = pivot;
                break;
            }
            if (result > 0)
            {
                lo = pivot + 1;
                num--;
            }
            num >>= 1;
        }
        if (found < 0) return -1;
        while (found > 0 && Compare(addr, len, ranges[found - 1].Addr, ranges[found - 1].Length) == 0) found--;
        return found;
    }

    /// <summary>
    /// kvm_destroy_vm → kvm_io_bus_destroy: every registration's destructor — ioeventfd_destructor puts its eventfd
    /// context, coalesced_mmio_destructor drops the zone.
    /// </summary>
    public void Destroy()
    {
        var all = Volatile.Read(ref _ioeventfds);
        Volatile.Write(ref _ioeventfds, []);
        for (int b = 0; b < _buses.Length; b++)
        {
            Volatile.Write(ref _buses[b], []);
            _ioeventfdCount[b] = 0;
        }
        foreach (var d in all) d.Ctx.Put();
    }
}
