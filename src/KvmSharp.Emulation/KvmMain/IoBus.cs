// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c kvm->buses as far as ioeventfds fill them (the emulator has no other in-kernel device: no
/// irqchip, PIT or coalesced MMIO). Changed under the kernel lock (slots_lock) by publishing a new array; read by
/// running vCPUs without it, as the kernel reads the SRCU-protected bus.
/// </summary>
internal sealed class IoBus
{
    private IoEventFd[] _devices = [];

    /// <summary>kvm->ioeventfds, in registration order.</summary>
    public IReadOnlyList<IoEventFd> IoEventFds => Volatile.Read(ref _devices);

    /// <summary>
    /// kvm_io_bus_register_dev: "dev_count - ioeventfd_count &gt; NR_IOBUS_DEVS - 1" → ENOSPC excludes ioeventfds
    /// (limited by the fd limit only), so every registration here succeeds.
    /// </summary>
    public void Add(IoEventFd device) => Volatile.Write(ref _devices, [.. _devices, device]);

    public void Remove(IoEventFd device) => Volatile.Write(ref _devices, [.. _devices.Where(d => !ReferenceEquals(d, device))]);

    /// <summary>
    /// kvm_io_bus_write on <paramref name="bus"/>: the first device whose write accepts it (ioeventfd_write: in range →
    /// eventfd_signal, 0) handles it. False: no device took it, the access goes to userspace.
    /// </summary>
    public bool Write(KvmBus bus, ulong addr, int len, ulong value)
    {
        foreach (var d in Volatile.Read(ref _devices))
        {
            if (d.Bus != bus || !d.InRange(addr, len, value)) continue;
            d.Ctx.Signal();
            return true;
        }
        return false;
    }

    /// <summary>kvm_destroy_vm → kvm_io_bus_destroy → ioeventfd_destructor: every registration's context reference goes.</summary>
    public void Destroy()
    {
        var all = Volatile.Read(ref _devices);
        Volatile.Write(ref _devices, []);
        foreach (var d in all) d.Ctx.Put();
    }
}
