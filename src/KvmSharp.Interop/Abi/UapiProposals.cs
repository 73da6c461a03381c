// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>
/// Numbers that exist only in unmerged patch series, chosen per kernel instead of globally: a patched host (or an
/// emulator configured like one) may use other values than the series this SDK was written against. Immutable;
/// pass one to <c>Kvm.Open</c>.
/// </summary>
public sealed record UapiProposals
{
    /// <summary>The numbers of the newest public series: v8 in-place conversion, no FLAGS_HI capability.</summary>
    public static UapiProposals Default { get; } = new();

    /// <summary>
    /// KVM_CAP_GUEST_MEMFD_FLAGS_HI: bits 63:32 of the supported guest_memfd flags. Only named in the follow-up
    /// discussion of "[PATCH v2 01/13] KVM: Rework KVM_CAP_GUEST_MEMFD_MMAP into KVM_CAP_GUEST_MEMFD_FLAGS"
    /// (seed 000); no number is allocated, so null means "not asked".
    /// </summary>
    public int? GuestMemfdFlagsHiCap { get; init; }

    /// <summary>KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES ([PATCH v8 17/46]: 250; RFCs used 246/248/249).</summary>
    public int GuestMemfdMemoryAttributesCap { get; init; } = KvmCaps.KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES;

    /// <summary>KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd ([PATCH v8 14/46]: _IOWR(KVMIO, 0xd2, 128 bytes)).</summary>
    public uint SetMemoryAttributes2Request { get; init; } = KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2;

    /// <summary>
    /// KVM_CAP_USERFAULT ("[PATCH v3 07/15] KVM: Enable and advertise support for KVM userfault exits": 243, a number
    /// upstream has since given to KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED; see <see cref="KvmCaps.KVM_CAP_USERFAULT"/>).
    /// </summary>
    public int UserfaultCap { get; init; } = KvmCaps.KVM_CAP_USERFAULT;

    /// <summary>
    /// How this kernel's guest_memfd HugeTLB takes the huge page size (<see cref="GuestMemfdHugetlbAbi"/>: "[RFC PATCH
    /// v2 00/51]" flag bits 63:58, or the 6.18-based branch's page_order field); None when it has no such proposal.
    /// </summary>
    public GuestMemfdHugetlbEncoding GuestMemfdHugetlb { get; init; }

    /// <summary>
    /// KVM_EXIT_SNP_REQ_CERTS's number: 42 in "[PATCH v7 1/2] KVM: Introduce KVM_EXIT_SNP_REQ_CERTS for SNP
    /// certificate-fetching" (2026-01-09), 43 in mainline after 6.18 (<see cref="KvmExitReason.KVM_EXIT_SNP_REQ_CERTS"/>).
    /// </summary>
    public uint SnpReqCertsExit { get; init; } = (uint)KvmExitReason.KVM_EXIT_SNP_REQ_CERTS;
}
