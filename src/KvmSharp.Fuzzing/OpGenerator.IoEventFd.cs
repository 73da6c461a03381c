// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// KVM_IOEVENTFD, KVM_IRQFD and the eventfds they take (<see cref="OpKind.IoEventFd"/>): few addresses, so registrations
/// collide and deassign; lengths and flags around the valid ones. Like the NUMA calls: drawn only on a kernel without
/// guest_memfd, from a stream of its own (<c>_ioev</c>), asked before the interrupt stream.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _ioev;

    private static readonly ulong[] s_ioeventfdAddresses = [0x10, 0x11, 0xd000_0000, 0xd000_0008, ulong.MaxValue - 1, ulong.MaxValue];

    private FuzzOp? NextIoEventFd()
    {
        if (_ioev.Next(40) != 0) return null;
        int e = _ioev.Next(8) switch
        {
            < 4 => IoEventFdOps.IoEventFd,
            4 => IoEventFdOps.IrqFd,
            5 => IoEventFdOps.Read,
            6 => IoEventFdOps.Write,
            _ => IoEventFdOps.Recreate,
        };
        // Mostly a live VM; now and then a system handle (ENOTTY) or a closed one (EBADF).
        var pool = _ioev.Next(12) == 0 ? _systems.Concat(_closed).ToList() : _vms;
        int target = pool.Count == 0 ? -1 : pool[_ioev.Next(pool.Count)];
        ulong addr = e == IoEventFdOps.IrqFd ? (ulong)_ioev.Next(4) : s_ioeventfdAddresses[_ioev.Next(s_ioeventfdAddresses.Length)];
        ulong len = _ioev.Next(10) switch { 0 => 3, 1 => 16, < 4 => 0, < 6 => 1, < 8 => 4, 8 => 2, _ => 8 };
        uint flags = e == IoEventFdOps.IrqFd
            ? (uint)_ioev.Next(_ioev.Next(6) == 0 ? 8 : 4)
            : (uint)(_ioev.Next(4) == 0 ? KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
              (uint)(_ioev.Next(2) == 0 ? KvmConstants.KVM_IOEVENTFD_FLAG_PIO : 0) |
              (uint)(_ioev.Next(3) == 0 ? KvmConstants.KVM_IOEVENTFD_FLAG_DEASSIGN : 0) |
              (uint)(_ioev.Next(16) == 0 ? 1 << _ioev.Next(3, 6) : 0);
        ulong datamatch = _ioev.Next(4) switch { 0 => ulong.MaxValue - 1, 1 => 0x1_0000_0000, _ => (ulong)_ioev.Next(3) };
        return new FuzzOp(OpKind.IoEventFd, Target: target, A: addr, B: datamatch, C: len, D: flags, E: e, U: (ulong)_ioev.Next());
    }
}
