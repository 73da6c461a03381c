// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c userspace MSR handling as far as a VMM sets it up: KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)
/// (kvm->arch.user_space_msr_mask) and KVM_X86_SET_MSR_FILTER (kvm_vm_ioctl_set_msr_filter, kvm->arch.msr_filter),
/// with kvm_msr_allowed to read the filter back. QEMU enables both at startup (target/i386/kvm/kvm.c kvm_arch_init:
/// KVM_MSR_EXIT_REASON_FILTER, a read filter on MSR_CORE_THREAD_COUNT). The KVM_EXIT_X86_RDMSR/WRMSR exits a guest's
/// filtered or unknown access would make are not modelled: a guest RDMSR/WRMSR follows MsrRules as without a filter.
/// </summary>
internal static class MsrFilter
{
    /// <summary>_IOW(KVMIO, 0xc6, struct kvm_msr_filter) (include/uapi/linux/kvm.h).</summary>
    public static readonly uint KVM_X86_SET_MSR_FILTER =
        IoctlEncoding._IOW(KvmIoctls.KVMIO, 0xc6, (uint)Unsafe.SizeOf<kvm_msr_filter>());

    /// <summary>include/uapi/linux/kvm.h: KVM_CAP_X86_USER_SPACE_MSR.</summary>
    public const int KVM_CAP_X86_USER_SPACE_MSR = 188;

    /// <summary>KVM_MSR_EXIT_REASON_INVAL | _UNKNOWN | _FILTER (x86.c KVM_MSR_EXIT_REASON_VALID_MASK).</summary>
    private const ulong ExitReasonValidMask = 0x7;

    /// <summary>arch/x86/include/uapi/asm/kvm.h: KVM_MSR_FILTER_READ, KVM_MSR_FILTER_WRITE.</summary>
    public const uint FilterRead = 1, FilterWrite = 2;

    private const uint RangeValidMask = FilterRead | FilterWrite;

    /// <summary>KVM_MSR_FILTER_DEFAULT_DENY, the only flag (KVM_MSR_FILTER_VALID_MASK).</summary>
    private const uint DefaultDeny = 1;

    /// <summary>arch/x86/include/uapi/asm/kvm.h KVM_MSR_FILTER_MAX_BITMAP_SIZE.</summary>
    private const ulong MaxBitmapSize = 0x600;

    /// <summary>
    /// kvm_vm_ioctl_enable_cap "case KVM_CAP_X86_USER_SPACE_MSR": args[0] beyond KVM_MSR_EXIT_REASON_VALID_MASK →
    /// EINVAL, else it replaces kvm->arch.user_space_msr_mask (no kvm->created_vcpus check; args[1..3] ignored).
    /// </summary>
    public static long EnableUserSpaceMsr(Kvm kvm, in kvm_enable_cap cap)
    {
        if ((cap.args[0] & ~ExitReasonValidMask) != 0) return Err.EINVAL;
        kvm.UserSpaceMsrMask = cap.args[0];
        return 0;
    }

    /// <summary>
    /// kvm_arch_vm_ioctl KVM_X86_SET_MSR_FILTER: copy_from_user of the struct (EFAULT), then
    /// kvm_vm_ioctl_set_msr_filter: flags beyond DEFAULT_DENY → EINVAL; no range with nmsrs and DEFAULT_DENY → EINVAL;
    /// each range with nmsrs through kvm_add_msr_filter (its flags beyond READ|WRITE, or none, → EINVAL; a bitmap of
    /// BITS_TO_LONGS(nmsrs) longs beyond KVM_MSR_FILTER_MAX_BITMAP_SIZE → EINVAL; memdup_user of it → EFAULT). Only a
    /// whole new filter replaces the old one (rcu_replace_pointer): a failed call changes nothing. Probed on this host:
    /// each of these answers, and a 0x600-byte bitmap (nmsrs 0x3000) accepted.
    /// </summary>
    public static long SetIoctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_msr_filter filter)) return Err.EFAULT;
        if ((filter.flags & ~DefaultDeny) != 0) return Err.EINVAL;
        bool empty = true;
        foreach (ref readonly var r in filter.ranges) empty &= r.nmsrs == 0;
        bool defaultAllow = (filter.flags & DefaultDeny) == 0;
        if (empty && !defaultAllow) return Err.EINVAL;

        var ranges = new List<Range>();
        foreach (ref readonly var r in filter.ranges)
        {
            if (r.nmsrs == 0) continue;
            if ((r.flags & ~RangeValidMask) != 0 || r.flags == 0) return Err.EINVAL;
            // bitmap_size = BITS_TO_LONGS(nmsrs) * sizeof(long).
            ulong bitmapSize = ((r.nmsrs + 63UL) / 64) * 8;
            if (bitmapSize > MaxBitmapSize) return Err.EINVAL;
            var bitmap = new byte[bitmapSize];
            if (!UserMemory.CopyFromUser(kvm.Kernel.Config, r.bitmap, bitmap)) return Err.EFAULT;
            ranges.Add(new Range(r.flags, r.@base, r.nmsrs, bitmap));
        }
        kvm.MsrFilter = new Filter(defaultAllow, [.. ranges]);
        return 0;
    }

    /// <summary>
    /// kvm_msr_allowed(vcpu, index, type): x2APIC MSRs (0x800–0x8ff) are never filtered; no filter allows; else the
    /// first range holding the MSR for that access type decides by its bit, and the filter's default when none does.
    /// </summary>
    public static bool Allowed(Kvm kvm, uint index, uint type)
    {
        if (index is >= 0x800 and <= 0x8ff) return true;
        if (kvm.MsrFilter is not { } filter) return true;
        foreach (var r in filter.Ranges)
        {
            // "u32 end = start + ranges[i].nmsrs" wraps like the kernel's u32.
            uint end = unchecked(r.Base + r.NMsrs);
            if (index >= r.Base && index < end && (r.Flags & type) != 0)
            {
                uint bit = index - r.Base;
                return (r.Bitmap[bit / 8] & (1 << (int)(bit % 8))) != 0;
            }
        }
        return filter.DefaultAllow;
    }

    /// <summary>struct kvm_x86_msr_filter: the default and the ranges with their copied bitmaps.</summary>
    internal sealed record Filter(bool DefaultAllow, Range[] Ranges);

    /// <summary>struct msr_bitmap_range.</summary>
    internal sealed record Range(uint Flags, uint Base, uint NMsrs, byte[] Bitmap);
}

/// <summary>struct kvm_msr_filter_range (arch/x86/include/uapi/asm/kvm.h): 24 bytes, the bitmap a user pointer.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_msr_filter_range
{
    public uint flags;
    public uint nmsrs;
    public uint @base;
    private readonly uint _pad;
    public ulong bitmap;
}

/// <summary>struct kvm_msr_filter: flags and KVM_MSR_FILTER_MAX_RANGES (16) ranges, 392 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_msr_filter
{
    public uint flags;
    private readonly uint _pad;
    public MsrFilterRanges ranges;
}

[InlineArray(16)]
internal struct MsrFilterRanges
{
    private kvm_msr_filter_range _element;
}
