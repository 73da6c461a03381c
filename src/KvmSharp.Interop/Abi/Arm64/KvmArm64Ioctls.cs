// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Abi.Arm64;

/// <summary>The arm64 vCPU/VM ioctls of include/uapi/linux/kvm.h, computed as the header does.</summary>
public static class KvmArm64Ioctls
{
    /// <summary>VM ioctl: <c>_IOR(KVMIO, 0xaf, struct kvm_vcpu_init)</c>.</summary>
    public static readonly uint KVM_ARM_PREFERRED_TARGET = _IOR(KvmIoctls.KVMIO, 0xaf, Size<kvm_vcpu_init>());

    /// <summary>vCPU ioctl: <c>_IOW(KVMIO, 0xae, struct kvm_vcpu_init)</c>.</summary>
    public static readonly uint KVM_ARM_VCPU_INIT = _IOW(KvmIoctls.KVMIO, 0xae, Size<kvm_vcpu_init>());

    /// <summary>vCPU ioctl: <c>_IOW(KVMIO, 0xab, struct kvm_one_reg)</c> (IOW although it returns data through addr).</summary>
    public static readonly uint KVM_GET_ONE_REG = _IOW(KvmIoctls.KVMIO, 0xab, Size<kvm_one_reg>());

    /// <summary>vCPU ioctl: <c>_IOW(KVMIO, 0xac, struct kvm_one_reg)</c>.</summary>
    public static readonly uint KVM_SET_ONE_REG = _IOW(KvmIoctls.KVMIO, 0xac, Size<kvm_one_reg>());

    /// <summary>
    /// vCPU ioctl: <c>_IOWR(KVMIO, 0xb0, struct kvm_reg_list)</c> — a __u64 count n followed by n register ids; the
    /// kernel writes the count it needs and answers E2BIG when n is smaller.
    /// </summary>
    public static readonly uint KVM_GET_REG_LIST = _IOWR(KvmIoctls.KVMIO, 0xb0, sizeof(ulong));

    private static uint Size<T>() where T : unmanaged => (uint)Unsafe.SizeOf<T>();
}
