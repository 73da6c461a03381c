// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// Whether KVM_CAP_GUEST_MEMFD_FLAGS (| _FLAGS_HI) of this VM lists GUEST_MEMFD_FLAG_HUGETLB under the kernel's
    /// HugeTLB proposal (<see cref="UapiProposals.GuestMemfdHugetlb"/>; bit 2 means NO_DIRECT_MAP on kernels without it).
    /// </summary>
    public bool SupportsGuestMemfdHugetlb =>
        Kvm.Proposals.GuestMemfdHugetlb != GuestMemfdHugetlbEncoding.None &&
        ((ulong)SupportedGuestMemfdFlags & GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB) != 0;

    /// <summary>
    /// KVM_CREATE_GUEST_MEMFD backed by HugeTLB pages of <paramref name="hugePages"/> — PROPOSAL (unmerged). The size
    /// is encoded as the kernel's proposal says (<see cref="UapiProposals.GuestMemfdHugetlb"/>, or
    /// <paramref name="encoding"/> when given): "[RFC PATCH v2]" GUEST_MEMFD_FLAG_HUGETLB | log2(size) &lt;&lt; 58, or the
    /// 6.18-based branch's GUEST_MEMFD_FLAG_HUGETLB plus page_order. <paramref name="size"/> must be a multiple of the
    /// huge page; the file reserves all its huge pages at creation.
    /// </summary>
    /// <exception cref="KvmCapabilityException">The kernel does not offer HugeTLB guest_memfd (its flag is refused and not
    /// listed in KVM_CAP_GUEST_MEMFD_FLAGS), or has no guest_memfd at all.</exception>
    /// <exception cref="KvmException">Another refusal: EINVAL (size not a huge-page multiple, no such huge page size on the
    /// host, INIT_SHARED with the branch encoding), ENOMEM (the host's pool has too few free huge pages).</exception>
    public GuestMemfd CreateHugetlbGuestMemfd(ulong size, GuestMemfdFlags flags, GuestMemfdHugePageSize hugePages,
        GuestMemfdHugetlbEncoding? encoding = null)
    {
        if (hugePages == GuestMemfdHugePageSize.None) return CreateGuestMemfd(size, flags);
        var enc = encoding ?? Kvm.Proposals.GuestMemfdHugetlb;
        // A kernel without the proposal gets the RFC v2 encoding: its answer (EINVAL for the unknown bit) is what says so.
        if (enc == GuestMemfdHugetlbEncoding.None) enc = GuestMemfdHugetlbEncoding.RfcV2FlagBits;
        var args = new kvm_create_guest_memfd { size = size, flags = (ulong)flags | GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB };
        if (enc == GuestMemfdHugetlbEncoding.RfcV2FlagBits)
            args.flags |= (ulong)(int)hugePages << GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_SHIFT;
        else
            args.reserved[0] = (ulong)hugePages.PageOrder(); // the low byte: page_order (ASSUMPTION, GuestMemfdHugetlbAbi)
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, KvmCall.Bytes(ref args));
        if (KvmCall.IsError(rc))
        {
            string request = $"size=0x{size:X} flags=0x{args.flags:X} ({((GuestMemfdFlags)args.flags).ToKernelString()}) " +
                             $"huge pages {hugePages.ToShortString()} ({enc})";
            if (rc == -(long)Errno.ENOTTY && !Kvm.SupportsGuestMemfd)
                throw new KvmCapabilityException("KVM_CREATE_GUEST_MEMFD", (int)-rc, request + "; " + Kvm.NoGuestMemfdReason,
                    nameof(KvmCaps.KVM_CAP_GUEST_MEMFD), 0);
            if (rc == -(long)Errno.EINVAL && !SupportsGuestMemfdHugetlb)
            {
                throw new KvmCapabilityException("KVM_CREATE_GUEST_MEMFD", (int)-rc,
                    request + $"; HugeTLB guest_memfd is not offered: KVM_CAP_GUEST_MEMFD_FLAGS lists {SupportedGuestMemfdFlags.ToKernelString()}, " +
                    "without GUEST_MEMFD_FLAG_HUGETLB (an unmerged proposal)",
                    "KVM_CAP_GUEST_MEMFD_FLAGS & GUEST_MEMFD_FLAG_HUGETLB", (long)SupportedGuestMemfdFlags);
            }
            if (rc == -(long)Errno.EINVAL)
                request += $"; the size must be a multiple of {hugePages.Bytes()} bytes and the host must have {hugePages.ToShortString()} huge pages" +
                           (enc == GuestMemfdHugetlbEncoding.PageOrderField ? " (INIT_SHARED is refused with HUGETLB in this encoding)" : "");
            else if (rc == -(long)Errno.ENOMEM)
                request += $"; the host's {hugePages.ToShortString()} HugeTLB pool has fewer than {size / hugePages.Bytes()} free pages to reserve";
            KvmCall.ThrowKvm(rc, "KVM_CREATE_GUEST_MEMFD", request);
        }
        return new GuestMemfd(this, Kernel.Adopt((int)rc), size, flags) { HugePageSize = hugePages };
    }
}
