// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR, <paramref name="reasons"/>): a guest RDMSR/WRMSR that fails for one of
    /// these reasons exits to userspace (KVM_EXIT_X86_RDMSR/WRMSR, <see cref="VcpuExit.IsMsrExit"/>) instead of taking
    /// #GP(0); the next <see cref="Vcpu.Run"/> completes it with the <see cref="VcpuExit.MsrData"/> and
    /// <see cref="VcpuExit.MsrError"/> left in the exit. Replaces the previous set (<see cref="MsrExitReasons.None"/>
    /// turns them off), before or after vCPUs exist.
    /// </summary>
    /// <exception cref="KvmException">EINVAL: a bit outside KVM_MSR_EXIT_REASON_VALID_MASK.</exception>
    public void EnableUserSpaceMsr(MsrExitReasons reasons) =>
        EnableCapability(KvmCaps.KVM_CAP_X86_USER_SPACE_MSR, (ulong)reasons);

    /// <summary>
    /// KVM_X86_SET_MSR_FILTER: from now on a guest RDMSR/WRMSR is checked against <paramref name="ranges"/> (the
    /// first one that holds the MSR for that access decides; x2APIC MSRs 0x800–0x8ff are never filtered) and, for an
    /// MSR none holds, <paramref name="defaultAction"/>. A denied access is a #GP(0), or a KVM_EXIT_X86_RDMSR/WRMSR
    /// with <see cref="MsrExitReasons.Filter"/> when <see cref="EnableUserSpaceMsr"/> asked for it. Replaces the whole
    /// previous filter, also while vCPUs exist; KVM_GET/SET_MSRS are not filtered.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">More than KVM_MSR_FILTER_MAX_RANGES (16) ranges.</exception>
    /// <exception cref="KvmException">
    /// EINVAL: <see cref="MsrFilterDefault.Deny"/> without a range, a range without access or with other bits, or a
    /// bitmap beyond KVM_MSR_FILTER_MAX_BITMAP_SIZE (more than 12 288 MSRs). The previous filter then stays.
    /// </exception>
    public void SetMsrFilter(MsrFilterDefault defaultAction, params ReadOnlySpan<MsrFilterRange> ranges)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ranges.Length, KvmMsrFilter.KVM_MSR_FILTER_MAX_RANGES, nameof(ranges));
        var filter = new kvm_msr_filter
        {
            flags = defaultAction == MsrFilterDefault.Deny ? KvmMsrFilter.KVM_MSR_FILTER_DEFAULT_DENY : KvmMsrFilter.KVM_MSR_FILTER_DEFAULT_ALLOW,
        };
        var bitmaps = new PinnedArray<ulong>[ranges.Length];
        for (int i = 0; i < ranges.Length; i++)
        {
            var r = ranges[i];
            ulong[] words = r.KernelBitmap();
            bitmaps[i] = new PinnedArray<ulong>(words.Length);
            words.CopyTo(bitmaps[i].Items, 0);
            filter.ranges[i] = new kvm_msr_filter_range { flags = (uint)r.Access, nmsrs = r.Count, @base = r.Base, bitmap = bitmaps[i].Address };
        }
        long rc = Kernel.Ioctl(Handle, KvmMsrFilter.KVM_X86_SET_MSR_FILTER, KvmCall.Bytes(ref filter));
        GC.KeepAlive(bitmaps);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_X86_SET_MSR_FILTER", Describe(defaultAction, ranges));
    }

    /// <summary>KVM_X86_SET_MSR_FILTER with an empty default-allow filter: every MSR access goes on as before any filter.</summary>
    public void ClearMsrFilter() => SetMsrFilter(MsrFilterDefault.Allow);

    private static string Describe(MsrFilterDefault defaultAction, ReadOnlySpan<MsrFilterRange> ranges)
    {
        var text = new StringBuilder($"default={defaultAction}");
        foreach (var r in ranges)
            text.Append(CultureInfo.InvariantCulture, $" [{r.Access} base=0x{r.Base:X} nmsrs={r.Count}]");
        return text.ToString();
    }
}
