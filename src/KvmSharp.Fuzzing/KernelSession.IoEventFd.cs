// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.IoEventFd"/>: the session's non-blocking eventfds (made on first use, through the kernel under
/// test) in KVM_IOEVENTFD / KVM_IRQFD, read, written and re-made. Descriptor numbers differ between kernels and never
/// appear in a result: results are the errno, or a read's count.
/// </summary>
public sealed partial class KernelSession
{
    private readonly KernelFd?[] _eventFds = new KernelFd?[IoEventFdOps.Slots];

    private string IoEventFd(FuzzOp op)
    {
        int slot = IoEventFdOps.Slot(op.U);
        if (slot < IoEventFdOps.Slots && _eventFds[slot] is null)
        {
            long made = _kernel.EventFd(0, LinuxConstants.EFD_NONBLOCK, out var fd);
            if (made < 0) return "eventfd2 " + Describe(made);
            _eventFds[slot] = fd;
        }
        var eventFd = slot < IoEventFdOps.Slots ? _eventFds[slot] : null;
        Span<byte> counter = stackalloc byte[8];
        switch (op.E)
        {
            case IoEventFdOps.Read:
            {
                if (eventFd is null) return Describe(_kernel.Read(ClosedFd, counter));
                long rc = _kernel.Read(eventFd, counter);
                return rc == 8 ? "ok " + BinaryPrimitives.ReadUInt64LittleEndian(counter).ToString(CultureInfo.InvariantCulture) : Describe(rc);
            }
            case IoEventFdOps.Write:
                BinaryPrimitives.WriteUInt64LittleEndian(counter, op.B);
                return Describe(_kernel.Write(eventFd ?? ClosedFd, counter));
            case IoEventFdOps.Recreate:
                if (eventFd is null) return "no eventfd";
                eventFd.Dispose();
                _eventFds[slot] = null;
                return "ok";
        }
        if (eventFd is null) return Register(op, NoSuchFd);
        using var lease = eventFd.Borrow();
        return Register(op, lease.Number);
    }

    /// <summary>KVM_IRQFD or KVM_IOEVENTFD with descriptor number <paramref name="number"/> in the struct.</summary>
    private string Register(FuzzOp op, int number)
    {
        if (op.E == IoEventFdOps.IrqFd)
        {
            var irq = new kvm_irqfd { fd = (uint)number, gsi = (uint)op.A, flags = (uint)op.D, resamplefd = (uint)number };
            return Describe(_kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_IRQFD, Bytes(ref irq)));
        }
        var args = new kvm_ioeventfd { addr = op.A, datamatch = op.B, len = (uint)op.C, flags = (uint)op.D, fd = number };
        return Describe(_kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_IOEVENTFD, Bytes(ref args)));
    }

    private void DisposeEventFds()
    {
        for (int i = 0; i < _eventFds.Length; i++)
        {
            _eventFds[i]?.Dispose();
            _eventFds[i] = null;
        }
    }
}
