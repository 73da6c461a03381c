// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli;

/// <summary>The kernel's names of the in-kernel device types (kvm_device_ops.name), as caps prints them.</summary>
public static class DeviceNames
{
    public static string NameOf(KvmDeviceType type) => type switch
    {
        KvmDeviceType.Vfio => "kvm-vfio",
        KvmDeviceType.ArmVgicV2 => "kvm-arm-vgic-v2",
        KvmDeviceType.ArmVgicV3 => "kvm-arm-vgic-v3",
        KvmDeviceType.ArmVgicIts => "kvm-arm-vgic-its",
        _ => $"type {(uint)type}",
    };
}
