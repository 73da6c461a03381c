// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// KVM_IOEVENTFD: from now on a guest write of <paramref name="length"/> bytes at <paramref name="address"/> in
    /// <paramref name="space"/> (with <paramref name="datamatch"/>: only of that value) adds 1 to
    /// <paramref name="eventFd"/> instead of exiting to userspace. Length 0 matches a write of any length at the address
    /// (no datamatch then). Reads still exit, and so do writes that do not match. Dispose the returned registration to
    /// remove it; else it lives as long as the VM, even after <paramref name="eventFd"/> is closed.
    /// </summary>
    /// <exception cref="KvmException">
    /// KVM_IOEVENTFD refused, with the errno and the values asked: EINVAL (length not 0/1/2/4/8, address + length
    /// wraps, length 0 with a datamatch), EEXIST (an ioeventfd that could match the same write is registered).
    /// </exception>
    /// <exception cref="ArgumentException"><paramref name="eventFd"/> belongs to another kernel.</exception>
    public IoEventFdRegistration RegisterIoEventFd(EventFd eventFd, IoEventFdSpace space, ulong address, uint length, ulong? datamatch = null)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        if (!ReferenceEquals(eventFd.Kernel, Kernel))
            throw new ArgumentException("the eventfd was created on another kernel than this VM's", nameof(eventFd));
        uint flags = (space == IoEventFdSpace.Pio ? KvmConstants.KVM_IOEVENTFD_FLAG_PIO : 0) |
                     (datamatch is null ? 0 : KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH);
        var args = new kvm_ioeventfd { addr = address, len = length, flags = flags, datamatch = datamatch ?? 0 };
        IoEventFdCall(eventFd, ref args, "assign");
        return new IoEventFdRegistration(this, eventFd, space, address, length, datamatch);
    }

    /// <summary>KVM_IOEVENTFD with <paramref name="args"/> and the eventfd's number held for the call.</summary>
    internal long IoEventFdRaw(EventFd eventFd, ref kvm_ioeventfd args)
    {
        using var lease = eventFd.Handle.Borrow();
        args.fd = lease.Number;
        return Kernel.Ioctl(Handle, KvmIoctls.KVM_IOEVENTFD, KvmCall.Bytes(ref args));
    }

    internal void IoEventFdCall(EventFd eventFd, ref kvm_ioeventfd args, string what)
    {
        long rc = IoEventFdRaw(eventFd, ref args);
        KvmCall.Check(rc, "KVM_IOEVENTFD",
            $"{what} {((args.flags & KvmConstants.KVM_IOEVENTFD_FLAG_PIO) != 0 ? "pio port" : "mmio addr")}=0x{args.addr:X} len={args.len} fd={args.fd} flags=0x{args.flags:X}{((args.flags & KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH) != 0 ? $" datamatch=0x{args.datamatch:X}" : "")}");
    }
}
