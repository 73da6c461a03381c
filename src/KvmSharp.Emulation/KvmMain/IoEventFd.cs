// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Fs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>The buses of include/linux/kvm_host.h <c>enum kvm_bus</c> an ioeventfd can sit on.</summary>
internal enum KvmBus
{
    Mmio = 0,
    Pio = 1,
    VirtioCcwNotify = 2,
    FastMmio = 3,
}

/// <summary>
/// virt/kvm/eventfd.c <c>struct _ioeventfd</c>: an address (and length; 0 = any) on one bus whose matching writes
/// signal <see cref="Ctx"/> (a reference held until deassigned or the VM is destroyed). Its kvm_io_device sits on the
/// bus at (Addr, Length) beside the other devices (<see cref="IoBus"/>).
/// </summary>
internal sealed record IoEventFd(KvmBus Bus, ulong Addr, int Length, EventFdCtx Ctx, ulong Datamatch, bool Wildcard) : IKvmIoDevice
{
    /// <summary>ioeventfd_ops has no read: kvm_iodevice_read answers -EOPNOTSUPP.</summary>
    public bool Read(Vcpu.KvmVcpu vcpu, ulong addr, Span<byte> data) => false;

    /// <summary>ioeventfd_write: "if (!ioeventfd_in_range(p, addr, len, val)) return -EOPNOTSUPP; eventfd_signal(p-&gt;eventfd)".</summary>
    public bool Write(Vcpu.KvmVcpu vcpu, ulong addr, ReadOnlySpan<byte> data)
    {
        ulong value = 0;
        for (int b = 0; b < data.Length && b < 8; b++) value |= (ulong)data[b] << (8 * b);
        if (!InRange(addr, data.Length, value)) return false;
        Ctx.Signal();
        return true;
    }

    /// <summary>
    /// ioeventfd_in_range: the address must be exact; length 0 matches any write; else the length must be exact and
    /// the value (read at the write's width) equal datamatch unless wildcard. A datamatch with bits above the width
    /// never matches.
    /// </summary>
    public bool InRange(ulong addr, int len, ulong value)
    {
        if (addr != Addr) return false;
        if (Length == 0) return true;
        if (len != Length) return false;
        if (Wildcard) return true;
        ulong v = len switch
        {
            1 => (byte)value,
            2 => (ushort)value,
            4 => (uint)value,
            8 => value,
            _ => ulong.MaxValue,
        };
        if (len is not (1 or 2 or 4 or 8)) return false;
        return v == Datamatch;
    }

    /// <summary>
    /// ioeventfd_check_collision: same bus and address, and either length 0, or the same length with a wildcard on
    /// either side or the same datamatch.
    /// </summary>
    public bool CollidesWith(IoEventFd other) =>
        other.Bus == Bus && other.Addr == Addr &&
        (other.Length == 0 || Length == 0 ||
         (other.Length == Length && (other.Wildcard || Wildcard || other.Datamatch == Datamatch)));
}
