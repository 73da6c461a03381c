// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// An in-kernel device made by <see cref="Vm.CreateDevice"/> (a kvm-vfio bridge, an arm64 vGIC): its descriptor and
/// the attribute ioctls on it (KVM_HAS/GET/SET_DEVICE_ATTR). Attributes are addressed by group and attribute number
/// and carry a 32- or 64-bit value, or none; what each means is the device's (Documentation/virt/kvm/devices/).
/// Dispose closes the descriptor; the kernel destroys the device with the VM, or at the close for devices with a
/// release callback (kvm-vfio).
/// </summary>
public sealed class KvmDevice : IDisposable
{
    // The value kvm_device_attr.addr points at: pinned, and one per device, taken under its own lock.
    private readonly PinnedArray<ulong> _value = new(1);

    internal KvmDevice(Vm vm, KvmDeviceType type, KernelFd handle)
    {
        Vm = vm;
        Type = type;
        Handle = handle;
    }

    /// <summary>The VM the device belongs to.</summary>
    public Vm Vm { get; }

    /// <summary>What kind of device it is.</summary>
    public KvmDeviceType Type { get; }

    /// <summary>The device's descriptor; pass it to raw kernel calls.</summary>
    public KernelFd Handle { get; }

    /// <summary>KVM_HAS_DEVICE_ATTR: true when the device has the attribute, false when it answers ENXIO.</summary>
    /// <exception cref="KvmException">Another error.</exception>
    public bool HasAttribute(uint group, ulong attribute) =>
        DeviceAttribute.Has(Vm.Kernel, Handle, group, attribute, $"device={Type}");

    /// <summary>KVM_SET_DEVICE_ATTR of an attribute that takes no value (addr = 0), e.g. a vGIC's CTRL_INIT.</summary>
    /// <exception cref="KvmException">The device refused (the errno names why: ENXIO no such attribute, EBUSY, …).</exception>
    public void SetAttribute(uint group, ulong attribute)
    {
        var attr = new kvm_device_attr { group = group, attr = attribute };
        long rc = Vm.Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, KvmCall.Bytes(ref attr));
        KvmCall.Check(rc, "KVM_SET_DEVICE_ATTR", $"device={Type} group={group} attr={attribute}");
    }

    /// <summary>KVM_SET_DEVICE_ATTR of a 64-bit value (e.g. a vGIC base address).</summary>
    /// <exception cref="KvmException">The device refused.</exception>
    public void SetAttribute64(uint group, ulong attribute, ulong value) => Set(group, attribute, value, $"0x{value:X}");

    /// <summary>KVM_SET_DEVICE_ATTR of a 32-bit value (e.g. a vGIC's interrupt count, a descriptor).</summary>
    /// <exception cref="KvmException">The device refused.</exception>
    public void SetAttribute32(uint group, ulong attribute, uint value) => Set(group, attribute, value, $"{value}");

    /// <summary>KVM_GET_DEVICE_ATTR of a 64-bit value.</summary>
    /// <exception cref="KvmException">The device refused (EPERM: the device has no readable attributes).</exception>
    public ulong GetAttribute64(uint group, ulong attribute) => Get(group, attribute);

    /// <summary>KVM_GET_DEVICE_ATTR of a 32-bit value (the kernel writes 4 bytes).</summary>
    /// <exception cref="KvmException">The device refused.</exception>
    public uint GetAttribute32(uint group, ulong attribute) => (uint)Get(group, attribute);

    /// <summary>
    /// kvm-vfio: tells KVM that the VM's devices use the VFIO group or device file <paramref name="vfioFile"/>
    /// (KVM_DEV_VFIO_FILE_ADD).
    /// </summary>
    /// <exception cref="KvmException">EBADF: not an open descriptor; EINVAL: not a VFIO file; EEXIST: added before.</exception>
    public void AddVfioFile(KernelFd vfioFile)
    {
        ArgumentNullException.ThrowIfNull(vfioFile);
        using var lease = vfioFile.Borrow();
        SetAttribute32(KvmDeviceConstants.KVM_DEV_VFIO_FILE, KvmDeviceConstants.KVM_DEV_VFIO_FILE_ADD, (uint)lease.Number);
    }

    /// <summary>kvm-vfio: forgets a file added by <see cref="AddVfioFile"/> (KVM_DEV_VFIO_FILE_DEL).</summary>
    /// <exception cref="KvmException">EBADF: not an open descriptor; ENOENT: not added.</exception>
    public void RemoveVfioFile(KernelFd vfioFile)
    {
        ArgumentNullException.ThrowIfNull(vfioFile);
        using var lease = vfioFile.Borrow();
        SetAttribute32(KvmDeviceConstants.KVM_DEV_VFIO_FILE, KvmDeviceConstants.KVM_DEV_VFIO_FILE_DEL, (uint)lease.Number);
    }

    /// <summary>Closes the device's descriptor.</summary>
    public void Dispose() => Handle.Dispose();

    private void Set(uint group, ulong attribute, ulong value, string shown)
    {
        long rc;
        lock (_value)
        {
            _value.Span[0] = value;
            rc = DeviceAttribute.Transfer(Vm.Kernel, Handle, set: true, group, attribute, _value);
        }
        KvmCall.Check(rc, "KVM_SET_DEVICE_ATTR", $"device={Type} group={group} attr={attribute} value={shown}");
    }

    private ulong Get(uint group, ulong attribute)
    {
        lock (_value)
        {
            _value.Span[0] = 0;
            long rc = DeviceAttribute.Transfer(Vm.Kernel, Handle, set: false, group, attribute, _value);
            KvmCall.Check(rc, "KVM_GET_DEVICE_ATTR", $"device={Type} group={group} attr={attribute}");
            return _value.Span[0];
        }
    }
}
