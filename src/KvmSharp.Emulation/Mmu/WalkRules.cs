// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Mmu;

/// <summary>
/// What the vCPU's CPUID decides about its guest page walk (mmu.c reset_guest_rsvds_bits_mask, recomputed by
/// kvm_mmu_after_set_cpuid): MAXPHYADDR (vcpu->arch.maxphyaddr, or 52 for a TD), 1 GiB pages
/// (guest_cpu_cap_has(X86_FEATURE_GBPAGES): the guest's bit and KVM's), and the AMD non-leaf bit 8 rule
/// (guest_cpuid_is_amd_compatible).
/// </summary>
internal readonly record struct WalkRules(int MaxPhyAddr, bool GbPages, bool AmdCompatible)
{
    /// <summary>A vCPU without KVM_SET_CPUID2: cpuid_query_maxphyaddr's 36, no GBPAGES, Intel-compatible.</summary>
    public static WalkRules NoCpuid => new(X86.X86Consts.DefaultMaxPhyAddr, false, false);
}
