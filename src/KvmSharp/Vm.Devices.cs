// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// Whether this VM can have a device of <paramref name="type"/>: KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST,
    /// which creates nothing (0: yes; ENODEV: the kernel has no such device type).
    /// </summary>
    /// <exception cref="KvmException">Another error (EINVAL or ENOTTY from a kernel without KVM_CAP_DEVICE_CTRL).</exception>
    public bool SupportsDevice(KvmDeviceType type)
    {
        var cd = new kvm_create_device { type = (uint)type, flags = KvmDeviceConstants.KVM_CREATE_DEVICE_TEST };
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_CREATE_DEVICE, KvmCall.Bytes(ref cd));
        if (rc == -(long)Errno.ENODEV) return false;
        KvmCall.Check(rc, "KVM_CREATE_DEVICE", $"type={type} ({(uint)type}) flags=KVM_CREATE_DEVICE_TEST");
        return true;
    }

    /// <summary>
    /// Creates an in-kernel device (KVM_CREATE_DEVICE): the returned object owns its descriptor, which keeps this VM
    /// alive in the kernel until it is disposed.
    /// </summary>
    /// <exception cref="KvmCapabilityException">ENODEV: the kernel has no device of this type.</exception>
    /// <exception cref="KvmException">The device refused (EBUSY: a second kvm-vfio device; EEXIST: the VM already has
    /// an irqchip; …).</exception>
    public KvmDevice CreateDevice(KvmDeviceType type)
    {
        var cd = new kvm_create_device { type = (uint)type };
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_CREATE_DEVICE, KvmCall.Bytes(ref cd));
        string request = $"type={type} ({(uint)type})";
        if (rc == -(long)Errno.ENODEV)
            throw new KvmCapabilityException("KVM_CREATE_DEVICE", (int)Errno.ENODEV, request, $"KVM_DEV_TYPE {type}", 0);
        KvmCall.Check(rc, "KVM_CREATE_DEVICE", request);
        return new KvmDevice(this, type, Kernel.Adopt((int)cd.fd));
    }
}
