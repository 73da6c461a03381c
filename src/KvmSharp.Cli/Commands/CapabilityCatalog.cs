// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Cli.Commands;

/// <summary>How a capability's raw KVM_CHECK_EXTENSION value reads.</summary>
public enum CapabilityMeaning
{
    /// <summary>Non-zero means present.</summary>
    Boolean,
    /// <summary>A number of memory slots.</summary>
    Slots,
    /// <summary>A BIT(type) mask of KVM_CREATE_VM types.</summary>
    VmTypes,
    /// <summary>KVM_MEMORY_ATTRIBUTE_* bits.</summary>
    MemoryAttributes,
    /// <summary>Bits 31:0 of the GUEST_MEMFD_FLAG_* set.</summary>
    GuestMemfdFlags,
    /// <summary>Bits 63:32 of the GUEST_MEMFD_FLAG_* set.</summary>
    GuestMemfdFlagsHigh,
    /// <summary>Bits 31:0 of the GUEST_MEMFD_FLAG_* set on a kernel with a guest_memfd HugeTLB proposal (bit 2 = HUGETLB).</summary>
    GuestMemfdFlagsHugetlb,
    /// <summary>Bits 63:32 of the GUEST_MEMFD_FLAG_* set with a HugeTLB proposal (bits 63:58 = the RFC v2 size field).</summary>
    GuestMemfdFlagsHighHugetlb,
}

/// <summary>
/// One capability the caps verb asks about. <c>Proposal</c>: the number comes from an unmerged patch series and may
/// be reassigned.
/// </summary>
public sealed record CapabilityInfo(string Name, int Number, CapabilityMeaning Meaning, bool Proposal = false);

/// <summary>The capabilities relevant to guest_memfd, in uAPI order.</summary>
public static class CapabilityCatalog
{
    /// <summary>
    /// Read on every call: the proposal numbers (GUEST_MEMFD_MEMORY_ATTRIBUTES, GUEST_MEMFD_FLAGS_HI) are settable in
    /// <see cref="KvmCaps"/>, and FLAGS_HI is listed only once someone has given it a number.
    /// </summary>
    public static IReadOnlyList<CapabilityInfo> GuestMemfdRelevant(UapiProposals proposals)
    {
        ArgumentNullException.ThrowIfNull(proposals);
        // With a guest_memfd HugeTLB proposal bit 2 reads HUGETLB (it is NO_DIRECT_MAP's in another series).
        bool hugetlb = proposals.GuestMemfdHugetlb != GuestMemfdHugetlbEncoding.None;
        var caps = new List<CapabilityInfo>
        {
            new(nameof(KvmCaps.KVM_CAP_USER_MEMORY), KvmCaps.KVM_CAP_USER_MEMORY, CapabilityMeaning.Boolean),
            new(nameof(KvmCaps.KVM_CAP_NR_MEMSLOTS), KvmCaps.KVM_CAP_NR_MEMSLOTS, CapabilityMeaning.Slots),
            new(nameof(KvmCaps.KVM_CAP_READONLY_MEM), KvmCaps.KVM_CAP_READONLY_MEM, CapabilityMeaning.Boolean),
            new(nameof(KvmCaps.KVM_CAP_IMMEDIATE_EXIT), KvmCaps.KVM_CAP_IMMEDIATE_EXIT, CapabilityMeaning.Boolean),
            new(nameof(KvmCaps.KVM_CAP_USER_MEMORY2), KvmCaps.KVM_CAP_USER_MEMORY2, CapabilityMeaning.Boolean),
            new(nameof(KvmCaps.KVM_CAP_MEMORY_FAULT_INFO), KvmCaps.KVM_CAP_MEMORY_FAULT_INFO, CapabilityMeaning.Boolean),
            new(nameof(KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES), KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES, CapabilityMeaning.MemoryAttributes),
            new(nameof(KvmCaps.KVM_CAP_GUEST_MEMFD), KvmCaps.KVM_CAP_GUEST_MEMFD, CapabilityMeaning.Boolean),
            new(nameof(KvmCaps.KVM_CAP_VM_TYPES), KvmCaps.KVM_CAP_VM_TYPES, CapabilityMeaning.VmTypes),
            new(nameof(KvmCaps.KVM_CAP_PRE_FAULT_MEMORY), KvmCaps.KVM_CAP_PRE_FAULT_MEMORY, CapabilityMeaning.Boolean),
            new(nameof(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS), KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS,
                hugetlb ? CapabilityMeaning.GuestMemfdFlagsHugetlb : CapabilityMeaning.GuestMemfdFlags),
            new(nameof(KvmCaps.KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES), proposals.GuestMemfdMemoryAttributesCap,
                CapabilityMeaning.MemoryAttributes, Proposal: true),
        };
        if (proposals.GuestMemfdFlagsHiCap is int flagsHi)
            caps.Add(new("KVM_CAP_GUEST_MEMFD_FLAGS_HI", flagsHi,
                hugetlb ? CapabilityMeaning.GuestMemfdFlagsHighHugetlb : CapabilityMeaning.GuestMemfdFlagsHigh, Proposal: true));
        return caps;
    }
}
