// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// One KVM_IOEVENTFD registration (<see cref="Vm.RegisterIoEventFd"/>). <see cref="Unregister"/> (or Dispose)
/// deassigns it with the same address, length, space and datamatch. Deassigning needs the eventfd still open: once it
/// is closed, or the VM is, the kernel keeps the registration until the VM is destroyed and Dispose does nothing.
/// </summary>
public sealed class IoEventFdRegistration : IDisposable
{
    private bool _registered = true;

    internal IoEventFdRegistration(Vm vm, EventFd eventFd, IoEventFdSpace space, ulong address, uint length, ulong? datamatch)
    {
        Vm = vm;
        EventFd = eventFd;
        Space = space;
        Address = address;
        Length = length;
        Datamatch = datamatch;
    }

    /// <summary>The VM it is registered on.</summary>
    public Vm Vm { get; }

    /// <summary>The eventfd a matching write signals.</summary>
    public EventFd EventFd { get; }

    /// <summary>MMIO or port I/O.</summary>
    public IoEventFdSpace Space { get; }

    /// <summary>The guest-physical address or port.</summary>
    public ulong Address { get; }

    /// <summary>The write width that matches (0: any).</summary>
    public uint Length { get; }

    /// <summary>The value a write must carry, or null for any value.</summary>
    public ulong? Datamatch { get; }

    /// <summary>True until <see cref="Unregister"/> or Dispose removed it.</summary>
    public bool IsRegistered => _registered;

    /// <summary>KVM_IOEVENTFD with KVM_IOEVENTFD_FLAG_DEASSIGN.</summary>
    /// <exception cref="KvmException">The kernel refused (ENOENT: no such registration any more; EBADF: the eventfd is closed).</exception>
    /// <exception cref="ObjectDisposedException">The eventfd or the VM is closed (the registration then lives until the VM is destroyed).</exception>
    public void Unregister()
    {
        if (!_registered) return;
        ObjectDisposedException.ThrowIf(EventFd.Handle.IsClosed, EventFd);
        ObjectDisposedException.ThrowIf(Vm.Handle.IsClosed, Vm);
        var args = Arguments();
        Vm.IoEventFdCall(EventFd, ref args, "deassign");
        _registered = false;
    }

    /// <summary>Deassigns when the eventfd and the VM are still open; never throws.</summary>
    public void Dispose()
    {
        if (!_registered || EventFd.Handle.IsClosed || Vm.Handle.IsClosed) return;
        var args = Arguments();
        _ = Vm.IoEventFdRaw(EventFd, ref args);
        _registered = false;
    }

    private kvm_ioeventfd Arguments() => new()
    {
        addr = Address,
        len = Length,
        datamatch = Datamatch ?? 0,
        flags = KvmConstants.KVM_IOEVENTFD_FLAG_DEASSIGN |
                (Space == IoEventFdSpace.Pio ? KvmConstants.KVM_IOEVENTFD_FLAG_PIO : 0) |
                (Datamatch is null ? 0 : KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH),
    };
}
