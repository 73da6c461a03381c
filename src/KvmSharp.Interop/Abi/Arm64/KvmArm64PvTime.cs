// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi.Arm64;

/// <summary>
/// Stolen-time accounting for arm64 guests (arch/arm64/kvm/pvtime.c, Documentation/virt/kvm/arm/pvtime.rst):
/// KVM_CAP_STEAL_TIME (include/uapi/linux/kvm.h) says whether the vCPU attribute
/// <see cref="KvmArm64VcpuAttrs.KVM_ARM_VCPU_PVTIME_IPA"/> exists.
/// </summary>
public static class KvmArm64PvTime
{
    public const int KVM_CAP_STEAL_TIME = 187;
}
