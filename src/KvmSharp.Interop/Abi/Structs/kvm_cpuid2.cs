// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// x86 <c>struct kvm_cpuid_entry2</c> (arch/x86/include/uapi/asm/kvm.h), 40 bytes: one CPUID leaf (function) and
/// subleaf (index) with its four output registers. <see cref="index"/> matters only when <see cref="flags"/> has
/// <see cref="KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX"/>.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_cpuid_entry2
{
    public uint function;
    public uint index;
    public uint flags;
    public uint eax;
    public uint ebx;
    public uint ecx;
    public uint edx;
    public U32x3 padding;
}

/// <summary>
/// x86 <c>struct kvm_cpuid2</c> (arch/x86/include/uapi/asm/kvm.h), the 8-byte header of KVM_GET_SUPPORTED_CPUID,
/// KVM_GET_EMULATED_CPUID, KVM_SET_CPUID2 and KVM_GET_CPUID2: <c>__u32 nent; __u32 padding; struct kvm_cpuid_entry2
/// entries[];</c>. The flexible array follows the header directly (offset 8); the ioctl numbers encode only the
/// header's size.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_cpuid2
{
    public uint nent;
    public uint padding;
}

/// <summary>The kvm_cpuid_entry2 flag bits (arch/x86/include/uapi/asm/kvm.h).</summary>
public static class KvmCpuid
{
    /// <summary>The entry's index (subleaf, ECX on input) is significant: CPUID matches function and index.</summary>
    public const uint KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1 << 0;
    /// <summary>Deprecated (leaf 2's stateful iteration); KVM no longer sets it.</summary>
    public const uint KVM_CPUID_FLAG_STATEFUL_FUNC = 1 << 1;
    /// <summary>Deprecated companion of <see cref="KVM_CPUID_FLAG_STATEFUL_FUNC"/>.</summary>
    public const uint KVM_CPUID_FLAG_STATE_READ_NEXT = 1 << 2;
}

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary><c>__u32 padding[3]</c> of <see cref="kvm_cpuid_entry2"/>.</summary>
[InlineArray(3)] public struct U32x3 { private uint _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169
