// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain.Devices;

/// <summary>
/// <c>struct kvm_device_ops</c> (include/linux/kvm_host.h): what one device type does. An accessor the type does not
/// have makes kvm_device_ioctl_attr answer EPERM before it reads the attribute (<see cref="HasGetAttr"/> …).
/// </summary>
internal abstract class KvmDeviceOps
{
    /// <summary>ops->name: the anon inode's name ("anon_inode:&lt;name&gt;" in /proc/self/fd).</summary>
    public abstract string Name { get; }

    /// <summary>ops->create, under kvm->lock: 0 or -errno (nothing is left behind on an error).</summary>
    public abstract long Create(KvmDevice dev, uint type);

    public virtual bool HasSetAttr => true;

    public virtual bool HasGetAttr => true;

    public virtual bool HasHasAttr => true;

    /// <summary>ops->release: called when the device's file is closed (the device leaves the VM's list then).</summary>
    public virtual bool HasRelease => false;

    public virtual long SetAttr(KvmDevice dev, in kvm_device_attr attr) => Err.EPERM;

    public virtual long GetAttr(KvmDevice dev, in kvm_device_attr attr) => Err.EPERM;

    public virtual long HasAttr(KvmDevice dev, in kvm_device_attr attr) => Err.EPERM;

    /// <summary>ops->ioctl for requests other than the attribute ones; none → ENOTTY.</summary>
    public virtual long Ioctl(KvmDevice dev, uint request, IoctlArg arg) => Err.ENOTTY;

    /// <summary>ops->release.</summary>
    public virtual void Release(KvmDevice dev) { }
}
