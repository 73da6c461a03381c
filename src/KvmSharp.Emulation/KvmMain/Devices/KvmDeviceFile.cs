// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain.Devices;

/// <summary>
/// A device fd (virt/kvm/kvm_main.c kvm_device_fops: unlocked_ioctl = kvm_device_ioctl, release = kvm_device_release,
/// mmap = kvm_device_mmap; no read, write or llseek). Probed on this host with the kvm-vfio device: fstat gives the
/// shared anon inode (mode 0600, size 0), read/write EINVAL, lseek/pread ESPIPE, mmap ENODEV, ftruncate EINVAL.
/// </summary>
internal sealed class KvmDeviceFile(KvmDevice dev) : KernelFile
{
    public KvmDevice Dev { get; } = dev;

    public override uint Mode => 0x180;

    public override ulong Device => KvmVmFile.AnonInodeFsDevice;

    public override ulong Inode => KvmVmFile.AnonInodeIno;

    /// <summary>
    /// kvm_device_ioctl, under the kernel lock like every non-vCPU ioctl here ("dev-&gt;kvm-&gt;mm != current-&gt;mm → EIO"
    /// cannot happen in one process).
    /// </summary>
    public override long Ioctl(uint request, IoctlArg arg)
    {
        var ops = Dev.Ops;
        if (request == KvmIoctls.KVM_SET_DEVICE_ATTR) return Attr(arg, ops.HasSetAttr, ops.SetAttr);
        if (request == KvmIoctls.KVM_GET_DEVICE_ATTR) return Attr(arg, ops.HasGetAttr, ops.GetAttr);
        if (request == KvmIoctls.KVM_HAS_DEVICE_ATTR) return Attr(arg, ops.HasHasAttr, ops.HasAttr);
        return ops.Ioctl(Dev, request, arg);
    }

    /// <summary>kvm_device_ioctl_attr: no accessor → EPERM, then copy_from_user of the attribute (EFAULT).</summary>
    private long Attr(IoctlArg arg, bool hasAccessor, Accessor accessor)
    {
        if (!hasAccessor) return Err.EPERM;
        if (!arg.CopyFromUser(out kvm_device_attr attr)) return Err.EFAULT;
        return accessor(Dev, attr);
    }

    /// <summary>
    /// kvm_device_release: a type with ops->release leaves the VM's list and is released under kvm->lock; then
    /// kvm_put_kvm (a type without one stays until the VM is destroyed).
    /// </summary>
    protected override void OnRelease()
    {
        if (Dev.Ops.HasRelease)
        {
            KvmDevice.ListOf(Dev.Kvm).Remove(Dev);
            Dev.Ops.Release(Dev);
        }
        Dev.Kvm.Put();
    }

    private delegate long Accessor(KvmDevice dev, in kvm_device_attr attr);
}
