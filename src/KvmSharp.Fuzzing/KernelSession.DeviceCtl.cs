// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.DeviceCtl"/>: the session's device fds (made by KVM_CREATE_DEVICE through the kernel under test).
/// Descriptor numbers differ between kernels and never appear in a result: results are the errno (a GET's value is
/// never reached: kvm-vfio has no get_attr).
/// </summary>
public sealed partial class KernelSession
{
    private readonly KernelFd?[] _devices = new KernelFd?[DeviceCtlOps.Slots];
    private readonly PinnedArray<int> _deviceValue = new(2);

    private string DeviceCtl(FuzzOp op)
    {
        int slot = DeviceCtlOps.Slot(op.U);
        var device = slot < DeviceCtlOps.Slots ? _devices[slot] : null;
        switch (op.E)
        {
            case DeviceCtlOps.Create:
                return CreateDevice(op, slot);
            case DeviceCtlOps.Close:
                if (device is null) return "no device";
                device.Dispose();
                _devices[slot] = null;
                return "ok";
        }
        var attr = new kvm_device_attr { group = (uint)op.A, attr = op.B };
        uint request = op.E switch
        {
            DeviceCtlOps.Has => KvmIoctls.KVM_HAS_DEVICE_ATTR,
            DeviceCtlOps.Set => KvmIoctls.KVM_SET_DEVICE_ATTR,
            _ => KvmIoctls.KVM_GET_DEVICE_ATTR,
        };
        if (op.E == DeviceCtlOps.Set && op.C != DeviceCtlOps.ValueNull)
        {
            _deviceValue.Span[0] = op.C switch
            {
                DeviceCtlOps.ValueKvm => RawFd((int)op.D),
                DeviceCtlOps.ValueVm => RawFd(op.Target),
                DeviceCtlOps.ValueMinusOne => -1,
                _ => 9999,
            };
            attr.addr = _deviceValue.Address;
        }
        else if (op.E == DeviceCtlOps.Get)
        {
            attr.addr = _deviceValue.Address;
        }
        long rc = _kernel.Ioctl(device ?? ClosedFd, request, Bytes(ref attr));
        GC.KeepAlive(_deviceValue);
        return Describe(rc);
    }

    private string CreateDevice(FuzzOp op, int slot)
    {
        var cd = new kvm_create_device { type = (uint)op.A, flags = (uint)op.B };
        long rc = _kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_CREATE_DEVICE, Bytes(ref cd));
        bool test = (cd.flags & KvmDeviceConstants.KVM_CREATE_DEVICE_TEST) != 0;
        if (rc != 0 || test) return Describe(rc);
        var made = _kernel.Adopt((int)cd.fd);
        if (slot == DeviceCtlOps.Slots)
        {
            made.Dispose();
            return "ok";
        }
        _devices[slot]?.Dispose();
        _devices[slot] = made;
        return "ok";
    }

    private void DisposeDevices()
    {
        for (int i = 0; i < _devices.Length; i++)
        {
            _devices[i]?.Dispose();
            _devices[i] = null;
        }
    }
}
