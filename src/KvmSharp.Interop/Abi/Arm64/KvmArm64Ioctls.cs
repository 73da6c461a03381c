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

    /// <summary>
    /// VM ioctl: <c>_IOR(KVMIO, 0xb6, struct reg_mask_range)</c> — struct reg_mask_range (arm64 asm/kvm.h) is
    /// { __u64 addr; __u32 range; __u32 reserved[13]; }, 64 bytes; the kernel writes
    /// KVM_ARM_FEATURE_ID_RANGE_SIZE __u64 writable masks of the feature ID registers to addr.
    /// </summary>
    public static readonly uint KVM_ARM_GET_REG_WRITABLE_MASKS = _IOR(KvmIoctls.KVMIO, 0xb6, RegMaskRangeSize);

    /// <summary>
    /// VM ioctl (KVM_CAP_COUNTER_OFFSET): <c>_IOW(KVMIO, 0xb5, struct kvm_arm_counter_offset)</c> — the offset the
    /// guest's virtual and physical counters are subtracted by, VM-wide.
    /// </summary>
    public static readonly uint KVM_ARM_SET_COUNTER_OFFSET = _IOW(KvmIoctls.KVMIO, 0xb5, Size<kvm_arm_counter_offset>());

    /// <summary>sizeof(struct reg_mask_range).</summary>
    public const uint RegMaskRangeSize = 64;

    /// <summary>asm/kvm.h KVM_ARM_FEATURE_ID_RANGE: the only range (reg_mask_range.range) the kernel knows.</summary>
    public const uint KVM_ARM_FEATURE_ID_RANGE = 0;

    /// <summary>asm/kvm.h KVM_ARM_FEATURE_ID_RANGE_SIZE: 3 * 8 * 8 masks (op1 0, 1, 3; CRm 0..7; op2 0..7).</summary>
    public const int KVM_ARM_FEATURE_ID_RANGE_SIZE = 3 * 8 * 8;

    /// <summary>asm/kvm.h KVM_ARM_FEATURE_ID_RANGE_IDX(op0, op1, crn, crm, op2): op1 3 folds to 2, then op1:CRm:op2.</summary>
    public static int KVM_ARM_FEATURE_ID_RANGE_IDX(int op0, int op1, int crn, int crm, int op2)
    {
        _ = op0;
        _ = crn;
        int o1 = op1 & 3;
        o1 -= o1 == 3 ? 1 : 0;
        return (o1 << 6) | ((crm & 7) << 3) | op2;
    }

    private static uint Size<T>() where T : unmanaged => (uint)Unsafe.SizeOf<T>();
}
