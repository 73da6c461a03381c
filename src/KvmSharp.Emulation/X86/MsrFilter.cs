// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Abi.KvmMsrFilter;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c userspace MSR handling: KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR) (kvm->arch.user_space_msr_mask),
/// KVM_X86_SET_MSR_FILTER (kvm_vm_ioctl_set_msr_filter, kvm->arch.msr_filter), and what a guest RDMSR/WRMSR makes of
/// them: kvm_emulate_msr_read / kvm_emulate_msr_write (the filter first, <see cref="Allowed"/>, then MsrRules), and
/// kvm_msr_reason / kvm_msr_user_space for a failed access (<see cref="ExitReason"/>). The instruction side — the
/// KVM_EXIT_X86_RDMSR/WRMSR exit and its completion on the next KVM_RUN — is X86Emulator.UserSpaceMsr.cs. QEMU
/// enables both at startup (target/i386/kvm/kvm.c kvm_arch_init: KVM_MSR_EXIT_REASON_FILTER, a read filter on
/// MSR_CORE_THREAD_COUNT).
/// </summary>
internal static class MsrFilter
{

    /// <summary>x86.h KVM_MSR_RET_UNSUPPORTED: the MSR is not handled at all (MsrRules' answer for an unknown MSR).</summary>
    public const int RetUnsupported = 2;

    /// <summary>x86.h KVM_MSR_RET_FILTERED: the MSR filter denied the access (kvm_emulate_msr_read / _write).</summary>
    public const int RetFiltered = 3;

    /// <summary>
    /// kvm_vm_ioctl_enable_cap "case KVM_CAP_X86_USER_SPACE_MSR": args[0] beyond KVM_MSR_EXIT_REASON_VALID_MASK →
    /// EINVAL, else it replaces kvm->arch.user_space_msr_mask (no kvm->created_vcpus check; args[1..3] ignored).
    /// </summary>
    public static long EnableUserSpaceMsr(Kvm kvm, in kvm_enable_cap cap)
    {
        if ((cap.args[0] & ~KVM_MSR_EXIT_REASON_VALID_MASK) != 0) return Err.EINVAL;
        kvm.UserSpaceMsrMask = cap.args[0];
        return 0;
    }

    /// <summary>
    /// kvm_arch_vm_ioctl KVM_X86_SET_MSR_FILTER: copy_from_user of the struct (EFAULT), then
    /// kvm_vm_ioctl_set_msr_filter: flags beyond DEFAULT_DENY → EINVAL; no range with nmsrs and DEFAULT_DENY → EINVAL;
    /// each range with nmsrs through kvm_add_msr_filter in array order (its flags beyond READ|WRITE, or none, → EINVAL;
    /// a bitmap of BITS_TO_LONGS(nmsrs) longs beyond KVM_MSR_FILTER_MAX_BITMAP_SIZE → EINVAL; memdup_user of it →
    /// EFAULT). Only a whole new filter replaces the old one (rcu_replace_pointer), also after vCPUs exist and between
    /// runs: a failed call changes nothing. An empty default-allow filter is accepted (it allows everything).
    /// </summary>
    public static long SetIoctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_msr_filter filter)) return Err.EFAULT;
        if ((filter.flags & ~KVM_MSR_FILTER_DEFAULT_DENY) != 0) return Err.EINVAL;
        bool empty = true;
        foreach (ref readonly var r in filter.ranges) empty &= r.nmsrs == 0;
        bool defaultAllow = (filter.flags & KVM_MSR_FILTER_DEFAULT_DENY) == 0;
        if (empty && !defaultAllow) return Err.EINVAL;

        var ranges = new List<Range>();
        foreach (ref readonly var r in filter.ranges)
        {
            if (r.nmsrs == 0) continue;
            if ((r.flags & ~KVM_MSR_FILTER_RANGE_VALID_MASK) != 0 || r.flags == 0) return Err.EINVAL;
            // "bitmap_size = BITS_TO_LONGS(user_range->nmsrs) * sizeof(long)" — size_t arithmetic, no wrap.
            ulong bitmapSize = ((r.nmsrs + 63UL) / 64) * 8;
            if (bitmapSize > KVM_MSR_FILTER_MAX_BITMAP_SIZE) return Err.EINVAL;
            var bitmap = new byte[bitmapSize];
            if (!UserMemory.CopyFromUser(kvm.Kernel.Config, r.bitmap, bitmap)) return Err.EFAULT;
            ranges.Add(new Range(r.flags, r.@base, r.nmsrs, bitmap));
        }
        kvm.MsrFilter = new Filter(defaultAllow, [.. ranges]);
        return 0;
    }

    /// <summary>
    /// kvm_msr_allowed(vcpu, index, type): "x2APIC MSRs do not support filtering" (0x800–0x8ff always allowed); no
    /// filter allows; else the first range (in the order KVM_X86_SET_MSR_FILTER gave them) that holds the MSR and
    /// has <paramref name="type"/> (KVM_MSR_FILTER_READ or _WRITE) in its flags decides by its bit ("allowed =
    /// test_bit(index - start, bitmap)"), and the filter's default when none does.
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

    /// <summary>
    /// x86.c kvm_emulate_msr_read: "if (!kvm_msr_allowed(vcpu, index, KVM_MSR_FILTER_READ)) return
    /// KVM_MSR_RET_FILTERED;" then the guest-initiated access (__kvm_emulate_msr_read → kvm_do_msr_access):
    /// 0, 1 (refused), <see cref="RetUnsupported"/> or <see cref="RetFiltered"/>.
    /// </summary>
    public static int GuestRead(Kvm kvm, X86Cpu cpu, uint index, out ulong data)
    {
        data = 0;
        if (!Allowed(kvm, index, KVM_MSR_FILTER_READ)) return RetFiltered;
        return MsrRules.Get(cpu, index, hostInitiated: false, out data);
    }

    /// <summary>x86.c kvm_emulate_msr_write: the filter (KVM_MSR_FILTER_WRITE), then __kvm_emulate_msr_write.</summary>
    public static int GuestWrite(Kvm kvm, X86Cpu cpu, uint index, ulong data)
    {
        if (!Allowed(kvm, index, KVM_MSR_FILTER_WRITE)) return RetFiltered;
        return MsrRules.Set(cpu, index, data, hostInitiated: false);
    }

    /// <summary>
    /// kvm_msr_user_space's test: the KVM_MSR_EXIT_REASON_* of a failed access (kvm_msr_reason: UNSUPPORTED →
    /// UNKNOWN, FILTERED → FILTER, anything else → INVAL) when userspace enabled it in user_space_msr_mask; else 0,
    /// and the instruction ends in #GP(0).
    /// </summary>
    public static ulong ExitReason(Kvm kvm, int r)
    {
        ulong reason = r switch
        {
            RetUnsupported => KVM_MSR_EXIT_REASON_UNKNOWN,
            RetFiltered => KVM_MSR_EXIT_REASON_FILTER,
            _ => KVM_MSR_EXIT_REASON_INVAL,
        };
        return (kvm.UserSpaceMsrMask & reason) != 0 ? reason : 0;
    }

    /// <summary>struct kvm_x86_msr_filter: the default and the ranges with their copied bitmaps.</summary>
    internal sealed record Filter(bool DefaultAllow, Range[] Ranges);

    /// <summary>struct msr_bitmap_range.</summary>
    internal sealed record Range(uint Flags, uint Base, uint NMsrs, byte[] Bitmap);
}
