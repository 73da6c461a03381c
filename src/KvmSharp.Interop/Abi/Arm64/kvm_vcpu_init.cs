// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi.Arm64;

/// <summary>
/// arch/arm64/include/uapi/asm/kvm.h <c>struct kvm_vcpu_init { __u32 target; __u32 features[7]; }</c>, 32 bytes:
/// the argument of KVM_ARM_VCPU_INIT and the result of KVM_ARM_PREFERRED_TARGET.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_vcpu_init
{
    public uint target;
    public U32x7 features;
}

/// <summary><c>__u32 features[7]</c> of <see cref="kvm_vcpu_init"/>.</summary>
[InlineArray(7)]
#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // the element field is accessed through the inline-array indexer
public struct U32x7 { private uint _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169
