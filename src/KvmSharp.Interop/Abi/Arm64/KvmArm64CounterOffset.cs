// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi.Arm64;

/// <summary>The VM-wide counter offset of arm64 (Linux 6.4+; api.rst "KVM_ARM_SET_COUNTER_OFFSET").</summary>
public static class KvmArm64CounterOffset
{
    /// <summary>linux/kvm.h "#define KVM_CAP_COUNTER_OFFSET 227": KVM_ARM_SET_COUNTER_OFFSET exists.</summary>
    public const int KVM_CAP_COUNTER_OFFSET = 227;
}

/// <summary>
/// asm/kvm.h <c>struct kvm_arm_counter_offset { __u64 counter_offset; __u64 reserved; }</c>, 16 bytes: the argument of
/// <see cref="KvmArm64Ioctls.KVM_ARM_SET_COUNTER_OFFSET"/>; reserved must be zero.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_arm_counter_offset
{
    public ulong counter_offset;
    public ulong reserved;
}
