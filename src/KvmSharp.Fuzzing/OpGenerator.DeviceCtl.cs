// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// KVM_CREATE_DEVICE and the device fds it makes (<see cref="OpKind.DeviceCtl"/>): mostly the kvm-vfio type, so a second
/// one meets the first (EBUSY) until it is closed; other and out-of-range types, TEST and junk flags; attributes around
/// kvm-vfio's group and attributes with descriptors that are not VFIO files. Drawn only on a kernel without
/// guest_memfd, from a stream of its own (<c>_dev</c>), asked after the interrupt stream.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _dev;

    private FuzzOp? NextDeviceCtl()
    {
        if (_dev.Next(40) != 0) return null;
        int e = _dev.Next(10) switch
        {
            < 3 => DeviceCtlOps.Create,
            < 5 => DeviceCtlOps.Has,
            < 8 => DeviceCtlOps.Set,
            8 => DeviceCtlOps.Get,
            _ => DeviceCtlOps.Close,
        };
        // Mostly a live VM; now and then a system handle (EINVAL) or a closed one (EBADF).
        var pool = _dev.Next(12) == 0 ? _systems.Concat(_closed).ToList() : _vms;
        int target = pool.Count == 0 ? -1 : pool[_dev.Next(pool.Count)];
        ulong type, flags;
        if (e == DeviceCtlOps.Create)
        {
            type = _dev.Next(6) switch { 0 => (ulong)_dev.Next(0, 20), 1 => uint.MaxValue, _ => KvmDeviceConstants.KVM_DEV_TYPE_VFIO };
            flags = _dev.Next(5) switch { 0 => KvmDeviceConstants.KVM_CREATE_DEVICE_TEST, 1 => (ulong)(uint)_dev.Next(), _ => 0 };
        }
        else
        {
            type = _dev.Next(5) == 0 ? (ulong)_dev.Next(0, 4) : KvmDeviceConstants.KVM_DEV_VFIO_FILE;
            flags = _dev.Next(5) == 0 ? (ulong)_dev.Next(0, 10) : (ulong)_dev.Next(1, 3);
        }
        // D: a /dev/kvm handle, whose descriptor a SET may pass (not a VFIO file).
        int system = _systems.Count == 0 ? -1 : _systems[0];
        return new FuzzOp(OpKind.DeviceCtl, Target: target, A: type, B: flags, C: (ulong)_dev.Next(5), D: (ulong)(long)system, E: e, U: (ulong)_dev.Next());
    }
}
