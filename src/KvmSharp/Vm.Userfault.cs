// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>KVM userfault on this VM — PROPOSAL: "[PATCH v3 00/15] KVM: Introduce KVM Userfault" (unmerged).</summary>
public sealed partial class Vm
{
    /// <summary>
    /// KVM_CAP_USERFAULT (<see cref="UapiProposals.UserfaultCap"/>, 243 in [PATCH v3 07/15]) on this VM: the kernel
    /// accepts KVM_MEM_USERFAULT. Caution: upstream 6.17 gave 243 to KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED, so on an
    /// arm64 kernel without the series this can read 1; pass the patched kernel's number through
    /// <see cref="UapiProposals"/> there. x86 kernels without the series answer 0 (this host: probed).
    /// </summary>
    public bool SupportsUserfault => CheckExtension(Kvm.Proposals.UserfaultCap) > 0;

    /// <summary>The SDK's checks of a bitmap for a new slot of <paramref name="size"/> bytes, before the kernel's.</summary>
    private static void CheckUserfaultBitmap(UserfaultBitmap? bitmap, ulong size)
    {
        if (bitmap is null) return;
        ObjectDisposedException.ThrowIf(bitmap.IsDisposed, bitmap);
        ulong pages = size / (ulong)Environment.SystemPageSize;
        if (bitmap.PageCount < pages)
            throw new ArgumentException($"the userfault bitmap covers {bitmap.PageCount} pages, the slot has {pages}", nameof(bitmap));
    }

    /// <summary>
    /// check_memory_region_flags refuses KVM_MEM_USERFAULT with EINVAL on a kernel without the series (this host:
    /// probed, for creation, toggling and deletion alike): say that the capability is missing instead of a bare EINVAL.
    /// </summary>
    private void ThrowIfUserfaultMissing(long rc, in kvm_userspace_memory_region2 region)
    {
        if (rc != -(long)Errno.EINVAL || (region.flags & KvmConstants.KVM_MEM_USERFAULT) == 0) return;
        long supported = CheckExtension(Kvm.Proposals.UserfaultCap);
        if (supported > 0) return;
        throw new KvmCapabilityException("KVM_SET_USER_MEMORY_REGION2", (int)-rc,
            Describe(region) + "; KVM_MEM_USERFAULT (1 << 3) needs the unmerged KVM Userfault series ([PATCH v3 04/15])",
            nameof(KvmCaps.KVM_CAP_USERFAULT), supported);
    }
}
