// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain.Devices;

/// <summary>
/// The kvm-vfio pseudo device (virt/kvm/vfio.c, 6.18): one per VM, attributes KVM_DEV_VFIO_FILE ADD / DEL, no
/// get_attr (EPERM), a release callback (closing it frees the slot for another). The emulated kernel has no VFIO
/// files, so every ADD of an open descriptor fails as kvm_vfio_file_is_valid does for a non-VFIO file (EINVAL) and
/// every DEL finds nothing (ENOENT) — what this host answers too (it has no VFIO module loaded).
/// </summary>
internal sealed class KvmVfio : KvmDeviceOps
{
    public static readonly KvmVfio Ops = new();

    public override string Name => "kvm-vfio";

    public override bool HasGetAttr => false;

    public override bool HasRelease => true;

    /// <summary>kvm_vfio_create: "Only one VFIO "device" per VM" → EBUSY.</summary>
    public override long Create(KvmDevice dev, uint type)
    {
        if (KvmDevice.ListOf(dev.Kvm).Any(d => d.Ops == this)) return Err.EBUSY;
        dev.Private = new object();
        return 0;
    }

    /// <summary>kvm_vfio_set_attr → kvm_vfio_set_file; any other group → ENXIO.</summary>
    public override long SetAttr(KvmDevice dev, in kvm_device_attr attr)
    {
        if (attr.group != KvmDeviceConstants.KVM_DEV_VFIO_FILE) return Err.ENXIO;
        // kvm_vfio_set_file: ADD and DEL get_user an int32 descriptor (EFAULT); SET_SPAPR_TCE exists only with
        // CONFIG_SPAPR_TCE_IOMMU (powerpc); anything else → ENXIO.
        if (attr.attr != KvmDeviceConstants.KVM_DEV_VFIO_FILE_ADD && attr.attr != KvmDeviceConstants.KVM_DEV_VFIO_FILE_DEL)
            return Err.ENXIO;
        var config = dev.Kvm.Kernel.Config;
        if (!UserMemory.CopyFromUser(config, attr.addr, out int fd)) return Err.EFAULT;
        // kvm_vfio_file_add / _del: fget(fd) → EBADF (a negative int32 is a huge unsigned fd).
        if (fd < 0 || dev.Kvm.Kernel.Fget((uint)fd) is null) return Err.EBADF;
        // add: !kvm_vfio_file_is_valid(filp) → EINVAL; del: no entry for the file on kv->file_list → ENOENT.
        return attr.attr == KvmDeviceConstants.KVM_DEV_VFIO_FILE_ADD ? Err.EINVAL : Err.ENOENT;
    }

    /// <summary>kvm_vfio_has_attr: FILE ADD / DEL → 0, else ENXIO.</summary>
    public override long HasAttr(KvmDevice dev, in kvm_device_attr attr) =>
        attr.group == KvmDeviceConstants.KVM_DEV_VFIO_FILE &&
        attr.attr is KvmDeviceConstants.KVM_DEV_VFIO_FILE_ADD or KvmDeviceConstants.KVM_DEV_VFIO_FILE_DEL
            ? 0 : Err.ENXIO;
}
