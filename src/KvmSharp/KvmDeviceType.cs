// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// The in-kernel device types KVM_CREATE_DEVICE knows (enum kvm_device_type). Which ones a kernel has depends on its
/// architecture and configuration: <see cref="Vm.SupportsDevice"/> asks.
/// </summary>
public enum KvmDeviceType : uint
{
    /// <summary>The kvm-vfio bridge (CONFIG_KVM_VFIO): tells KVM which VFIO files the VM's devices use.</summary>
    Vfio = KvmDeviceConstants.KVM_DEV_TYPE_VFIO,

    /// <summary>arm64: a GICv2 distributor and CPU interface (only on hosts whose GIC can emulate one).</summary>
    ArmVgicV2 = KvmDeviceConstants.KVM_DEV_TYPE_ARM_VGIC_V2,

    /// <summary>arm64: a GICv3 distributor and redistributors.</summary>
    ArmVgicV3 = KvmDeviceConstants.KVM_DEV_TYPE_ARM_VGIC_V3,

    /// <summary>arm64: a GICv3 ITS (needs a GICv3).</summary>
    ArmVgicIts = KvmDeviceConstants.KVM_DEV_TYPE_ARM_VGIC_ITS,
}
