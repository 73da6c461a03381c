// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain.Devices;

/// <summary>
/// KVM_CREATE_DEVICE on a VM fd: kvm_vm_ioctl copies struct kvm_create_device in (EFAULT), calls
/// kvm_ioctl_create_device and copies it back (EFAULT). Probed on this host: type 4 (VFIO) alone exists on x86,
/// any other type and any type ≥ KVM_DEV_TYPE_MAX is ENODEV, flags other than KVM_CREATE_DEVICE_TEST are ignored.
/// </summary>
internal static class CreateDevice
{
    public static long Ioctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_create_device cd)) return Err.EFAULT;
        long r = Create(kvm, ref cd);
        if (r != 0) return r;
        // The descriptor stays installed when the copy back fails, as in the kernel.
        return arg.CopyToUser(cd) ? 0 : Err.EFAULT;
    }

    /// <summary>virt/kvm/kvm_main.c kvm_ioctl_create_device.</summary>
    private static long Create(Kvm kvm, ref kvm_create_device cd)
    {
        // "if (cd->type >= ARRAY_SIZE(kvm_device_ops_table)) return -ENODEV"; a NULL entry → -ENODEV.
        if (cd.type >= KvmDeviceConstants.KVM_DEV_TYPE_MAX) return Err.ENODEV;
        var ops = OpsFor(kvm, cd.type);
        if (ops is null) return Err.ENODEV;
        if ((cd.flags & KvmDeviceConstants.KVM_CREATE_DEVICE_TEST) != 0) return 0;
        var dev = new KvmDevice(ops, kvm, cd.type);
        long r = ops.Create(dev, cd.type);
        if (r < 0) return r;
        var list = KvmDevice.ListOf(kvm);
        list.Add(dev);
        // anon_inode_getfd failing (EMFILE): the device leaves the list and is released / destroyed again (what
        // ops->create set up in the VM, e.g. a vGIC's in_kernel, stays, as there).
        if (!kvm.Kernel.HasFdRoom)
        {
            list.Remove(dev);
            if (ops.HasRelease) ops.Release(dev);
            return Err.EMFILE;
        }
        kvm.Get();
        cd.fd = (uint)kvm.Kernel.InstallFile(new KvmDeviceFile(dev));
        return 0;
    }

    /// <summary>
    /// kvm_device_ops_table as kvm_init / the arch fill it: KVM_DEV_TYPE_VFIO from kvm_vfio_ops_init (CONFIG_KVM_VFIO),
    /// the rest from the architecture (arm64: kvm_register_vgic_device).
    /// </summary>
    private static KvmDeviceOps? OpsFor(Kvm kvm, uint type)
    {
        if (type == KvmDeviceConstants.KVM_DEV_TYPE_VFIO) return kvm.Kernel.Config.Kconfig.KVM_VFIO ? KvmVfio.Ops : null;
        return kvm.Arch.DeviceOps(type);
    }
}
