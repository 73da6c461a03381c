// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_msr_filter_range</c> (arch/x86/include/uapi/asm/kvm.h), 24 bytes: <c>__u32 flags; __u32 nmsrs;
/// __u32 base; __u8 *bitmap</c>. Bit n of the bitmap (little-endian bit order) allows MSR base + n for the accesses in
/// flags (KVM_MSR_FILTER_READ / _WRITE); KVM copies BITS_TO_LONGS(nmsrs) longs of it.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_msr_filter_range
{
    public uint flags;
    public uint nmsrs;
    public uint @base;
    private readonly uint _pad;
    public ulong bitmap;
}

/// <summary>
/// <c>struct kvm_msr_filter</c>, 392 bytes (KVM_X86_SET_MSR_FILTER): <c>__u32 flags; struct kvm_msr_filter_range
/// ranges[KVM_MSR_FILTER_MAX_RANGES]</c> (16; the u64 in each range puts the array at offset 8). A range with nmsrs 0
/// is unused.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_msr_filter
{
    public uint flags;
    private readonly uint _pad;
    public KvmMsrFilterRanges ranges;
}

/// <summary>The KVM_MSR_FILTER_MAX_RANGES (16) ranges of a <see cref="kvm_msr_filter"/>.</summary>
[InlineArray(KvmMsrFilter.KVM_MSR_FILTER_MAX_RANGES)]
#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // the element is accessed through the inline-array indexer
public struct KvmMsrFilterRanges
{
    private kvm_msr_filter_range _e0;
}
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169
