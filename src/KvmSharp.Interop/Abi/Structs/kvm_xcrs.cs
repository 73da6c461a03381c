// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary><c>struct kvm_xcr</c>, 16 bytes: <c>__u32 xcr; __u32 reserved; __u64 value</c> (reserved is not checked).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_xcr
{
    public uint xcr;
    public uint reserved;
    public ulong value;
}

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary><c>struct kvm_xcr xcrs[KVM_MAX_XCRS]</c> of <see cref="kvm_xcrs"/>.</summary>
[InlineArray(16)] public struct KvmXcrx16 { private kvm_xcr _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169

/// <summary>
/// <c>struct kvm_xcrs</c>, 392 bytes (KVM_GET_XCRS / KVM_SET_XCRS, KVM_CAP_XCRS): <c>__u32 nr_xcrs; __u32 flags;
/// struct kvm_xcr xcrs[16]; __u64 padding[16]</c>. Only XCR0 exists: GET reports one entry.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_xcrs
{
    /// <summary>uapi KVM_MAX_XCRS: nr_xcrs above it is EINVAL.</summary>
    public const int KVM_MAX_XCRS = 16;

    public uint nr_xcrs;
    public uint flags;
    public KvmXcrx16 xcrs;
    public U64x16 padding;
}
