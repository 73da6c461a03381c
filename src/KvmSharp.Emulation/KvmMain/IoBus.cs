// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c kvm->buses: the ioeventfds and the in-kernel devices (<see cref="IKvmIoDevice"/>: PIC ports,
/// IOAPIC MMIO, PIT …). Changed under the kernel lock (slots_lock) by publishing a new array; read by running vCPUs
/// without it, as the kernel reads the SRCU-protected bus. The kernel keeps both kinds in one array sorted by address
/// and tries every range that contains the access in that order; here the ioeventfds are tried first, which differs
/// only for an ioeventfd registered on a device's own port or MMIO window.
/// </summary>
internal sealed class IoBus
{
    private IoEventFd[] _devices = [];
    private KvmIoRange[] _ranges = [];

    /// <summary>The in-kernel devices' registrations, in registration order.</summary>
    public IReadOnlyList<KvmIoRange> Ranges => Volatile.Read(ref _ranges);

    /// <summary>
    /// kvm_io_bus_register_dev for an in-kernel device (its creator holds slots_lock). NR_IOBUS_DEVS (1000) is never
    /// reached by the emulator's few devices per VM.
    /// </summary>
    public void Register(KvmBus bus, ulong addr, int length, IKvmIoDevice device) =>
        Volatile.Write(ref _ranges, [.. _ranges, new KvmIoRange(bus, addr, length, device)]);

    /// <summary>kvm_io_bus_unregister_dev: every registration of <paramref name="device"/> on <paramref name="bus"/>.</summary>
    public void Unregister(KvmBus bus, IKvmIoDevice device) =>
        Volatile.Write(ref _ranges, [.. _ranges.Where(r => r.Bus != bus || !ReferenceEquals(r.Device, device))]);

    /// <summary>
    /// kvm_io_bus_read: the first device containing the access that takes it fills <paramref name="data"/>. False:
    /// no device took it (ioeventfds have no read), the access goes to userspace.
    /// </summary>
    public bool Read(KvmBus bus, Vcpu.KvmVcpu vcpu, ulong addr, Span<byte> data)
    {
        foreach (var r in Volatile.Read(ref _ranges))
        {
            if (r.Bus == bus && r.Contains(addr, data.Length) && r.Device.Read(vcpu, addr, data)) return true;
        }
        return false;
    }

    /// <summary>kvm->ioeventfds, in registration order.</summary>
    public IReadOnlyList<IoEventFd> IoEventFds => Volatile.Read(ref _devices);

    /// <summary>
    /// kvm_io_bus_register_dev: "dev_count - ioeventfd_count &gt; NR_IOBUS_DEVS - 1" → ENOSPC excludes ioeventfds
    /// (limited by the fd limit only), so every registration here succeeds.
    /// </summary>
    public void Add(IoEventFd device) => Volatile.Write(ref _devices, [.. _devices, device]);

    public void Remove(IoEventFd device) => Volatile.Write(ref _devices, [.. _devices.Where(d => !ReferenceEquals(d, device))]);

    /// <summary>
    /// kvm_io_bus_write on <paramref name="bus"/>: the first ioeventfd whose write accepts it (ioeventfd_write: in
    /// range → eventfd_signal, 0), else the first in-kernel device containing it that takes it, handles it. False: no
    /// device took it, the access goes to userspace. <paramref name="value"/> holds the <paramref name="len"/> bytes
    /// little-endian.
    /// </summary>
    public bool Write(KvmBus bus, Vcpu.KvmVcpu vcpu, ulong addr, int len, ulong value)
    {
        foreach (var d in Volatile.Read(ref _devices))
        {
            if (d.Bus != bus || !d.InRange(addr, len, value)) continue;
            d.Ctx.Signal();
            return true;
        }
        var ranges = Volatile.Read(ref _ranges);
        if (ranges.Length == 0 || len is < 1 or > 8) return false;
        Span<byte> data = stackalloc byte[len];
        for (int b = 0; b < len; b++) data[b] = (byte)(value >> (8 * b));
        foreach (var r in ranges)
        {
            if (r.Bus == bus && r.Contains(addr, len) && r.Device.Write(vcpu, addr, data)) return true;
        }
        return false;
    }

    /// <summary>kvm_destroy_vm → kvm_io_bus_destroy → ioeventfd_destructor: every registration's context reference goes.</summary>
    public void Destroy()
    {
        var all = Volatile.Read(ref _devices);
        Volatile.Write(ref _devices, []);
        Volatile.Write(ref _ranges, []);
        foreach (var d in all) d.Ctx.Put();
    }
}
