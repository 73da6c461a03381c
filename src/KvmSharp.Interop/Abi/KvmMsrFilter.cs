// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Abi;

/// <summary>
/// KVM_X86_SET_MSR_FILTER and KVM_CAP_X86_USER_SPACE_MSR's numbers (include/uapi/linux/kvm.h,
/// arch/x86/include/uapi/asm/kvm.h; Documentation/virt/kvm/api.rst 4.126 and 7.21).
/// </summary>
public static class KvmMsrFilter
{
    /// <summary><c>_IOW(KVMIO, 0xc6, struct kvm_msr_filter)</c> = 0x4188AEC6 (a VM ioctl).</summary>
    public static readonly uint KVM_X86_SET_MSR_FILTER = _IOW(KvmIoctls.KVMIO, 0xc6, (uint)Unsafe.SizeOf<kvm_msr_filter>());

    /// <summary>kvm_run.msr.reason and KVM_CAP_X86_USER_SPACE_MSR's args[0] bits: KVM refused the value (kvm_msr_reason: any failure but the two below).</summary>
    public const ulong KVM_MSR_EXIT_REASON_INVAL = 1UL << 0;

    /// <summary>The MSR is unknown to KVM (KVM_MSR_RET_UNSUPPORTED).</summary>
    public const ulong KVM_MSR_EXIT_REASON_UNKNOWN = 1UL << 1;

    /// <summary>The MSR filter denied the access (KVM_MSR_RET_FILTERED).</summary>
    public const ulong KVM_MSR_EXIT_REASON_FILTER = 1UL << 2;

    /// <summary>x86.c KVM_MSR_EXIT_REASON_VALID_MASK: INVAL | UNKNOWN | FILTER.</summary>
    public const ulong KVM_MSR_EXIT_REASON_VALID_MASK = 0x7;

    /// <summary>kvm_msr_filter_range.flags: the range applies to reads (RDMSR).</summary>
    public const uint KVM_MSR_FILTER_READ = 1u << 0;

    /// <summary>kvm_msr_filter_range.flags: the range applies to writes (WRMSR).</summary>
    public const uint KVM_MSR_FILTER_WRITE = 1u << 1;

    /// <summary>KVM_MSR_FILTER_RANGE_VALID_MASK: READ | WRITE.</summary>
    public const uint KVM_MSR_FILTER_RANGE_VALID_MASK = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;

    /// <summary>kvm_msr_filter.flags 0: an MSR no range covers is allowed.</summary>
    public const uint KVM_MSR_FILTER_DEFAULT_ALLOW = 0;

    /// <summary>kvm_msr_filter.flags: an MSR no range covers is denied (the only valid flag, KVM_MSR_FILTER_VALID_MASK).</summary>
    public const uint KVM_MSR_FILTER_DEFAULT_DENY = 1u << 0;

    /// <summary>KVM_MSR_FILTER_MAX_RANGES: the ranges in a struct kvm_msr_filter.</summary>
    public const int KVM_MSR_FILTER_MAX_RANGES = 16;

    /// <summary>KVM_MSR_FILTER_MAX_BITMAP_SIZE: the largest bitmap a range may have, in bytes (0x600: 12 288 MSRs).</summary>
    public const int KVM_MSR_FILTER_MAX_BITMAP_SIZE = 0x600;
}
