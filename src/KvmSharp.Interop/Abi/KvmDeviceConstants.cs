// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>
/// The device-control API (include/uapi/linux/kvm.h, Documentation/virt/kvm/devices/): KVM_CREATE_DEVICE's flag,
/// the device types (enum kvm_device_type) and the kvm-vfio device's attributes (devices/vfio.rst).
/// </summary>
public static class KvmDeviceConstants
{
    /// <summary>kvm_create_device.flags: only ask whether the type exists.</summary>
    public const uint KVM_CREATE_DEVICE_TEST = 1;

    // enum kvm_device_type.
    public const uint KVM_DEV_TYPE_FSL_MPIC_20 = 1;
    public const uint KVM_DEV_TYPE_FSL_MPIC_42 = 2;
    public const uint KVM_DEV_TYPE_XICS = 3;
    public const uint KVM_DEV_TYPE_VFIO = 4;
    public const uint KVM_DEV_TYPE_ARM_VGIC_V2 = 5;
    public const uint KVM_DEV_TYPE_FLIC = 6;
    public const uint KVM_DEV_TYPE_ARM_VGIC_V3 = 7;
    public const uint KVM_DEV_TYPE_ARM_VGIC_ITS = 8;
    public const uint KVM_DEV_TYPE_XIVE = 9;
    public const uint KVM_DEV_TYPE_ARM_PV_TIME = 10;
    public const uint KVM_DEV_TYPE_RISCV_AIA = 11;
    public const uint KVM_DEV_TYPE_LOONGARCH_IPI = 12;
    public const uint KVM_DEV_TYPE_LOONGARCH_EIOINTC = 13;
    public const uint KVM_DEV_TYPE_LOONGARCH_PCHPIC = 14;
    public const uint KVM_DEV_TYPE_ARM_VGIC_V5 = 15;
    /// <summary>KVM_DEV_TYPE_MAX: the size of virt/kvm/kvm_main.c's kvm_device_ops_table.</summary>
    public const uint KVM_DEV_TYPE_MAX = 16;

    // The kvm-vfio device (devices/vfio.rst): group KVM_DEV_VFIO_FILE (formerly KVM_DEV_VFIO_GROUP, same value), whose
    // ADD / DEL attributes take a pointer to an int32 descriptor of a VFIO group or device file.
    public const uint KVM_DEV_VFIO_FILE = 1;
    public const ulong KVM_DEV_VFIO_FILE_ADD = 1;
    public const ulong KVM_DEV_VFIO_FILE_DEL = 2;
    /// <summary>Only with CONFIG_SPAPR_TCE_IOMMU (powerpc); ENXIO elsewhere.</summary>
    public const ulong KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE = 3;
}
