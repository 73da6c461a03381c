// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>
/// "[PATCH v12 00/16] Direct Map Removal Support for guest_memfd" (Patrick Roy / Nikita Kalyazin, 2026-04-10,
/// unmerged; v5–v11 2025-08 … 2026-03), modeled when <see cref="EmulatorConfig.GuestMemfdNoDirectMap"/> is on:
/// <list type="bullet">
/// <item>[v12 10/16] uapi: <c>GUEST_MEMFD_FLAG_NO_DIRECT_MAP (1ULL &lt;&lt; 2)</c>; kvm_gmem_get_supported_flags adds it
/// when <c>!kvm || kvm_arch_gmem_supports_no_direct_map(kvm)</c>, so /dev/kvm always lists it; KVM_CREATE_GUEST_MEMFD
/// takes it through the generic <c>flags &amp; ~supported → -EINVAL</c> check, with no dependency on MMAP or
/// INIT_SHARED (the selftest creates NO_DIRECT_MAP alone); __kvm_gmem_create sets AS_NO_DIRECT_MAP on the mapping.</item>
/// <item>[v12 08/16] x86: <c>can_set_direct_map() &amp;&amp; vm_type != KVM_X86_TDX_VM &amp;&amp; vm_type != KVM_X86_SNP_VM</c>
/// (SNP excluded since v12, "access pages via direct map in certain operations, such as population"; v11 excluded
/// TDX only; v8–v10 had no kvm argument: can_set_direct_map()). [v12 09/16] arm64: <c>can_set_direct_map() &amp;&amp;
/// cpus_have_final_cap(ARM64_HAS_STAGE2_FWB)</c> (without FWB kvm_pgtable_stage2_map cleans the dcache through the
/// direct map), any VM type. Other arches: the generic stub, false.</item>
/// <item>[v12 06/16] AS_NO_DIRECT_MAP takes secretmem's place everywhere: GUP's check_vma_flags → -EFAULT (pin_user_pages,
/// get_user_pages: KVM's hva_to_pfn, get_mempolicy's lookup_node), and so MADV_POPULATE_(READ|WRITE) → -EINVAL (its
/// FOLL_MADV_POPULATE path maps check_vma_flags failures to EINVAL); GUP-fast refuses the folio; mlock does not set
/// VM_LOCKED. Plain loads and stores through the mapping, and copy_{from,to}_user, still work.</item>
/// <item>[v12 10/16] the direct map entry is zapped when a folio is first mapped (kvm_gmem_fault_user_mapping,
/// kvm_gmem_get_pfn; "zap then prepare") and restored when it is freed — invisible to userspace here.</item>
/// </list>
/// </summary>
internal static class GmemNoDirectMap
{
    /// <summary>GUEST_MEMFD_FLAG_NO_DIRECT_MAP, [PATCH v12 10/16] include/uapi/linux/kvm.h (1ULL &lt;&lt; 2 since v8).</summary>
    public const ulong Flag = 1UL << 2;

    /// <summary>
    /// Whether kvm_gmem_get_supported_flags(kvm) lists NO_DIRECT_MAP: the proposal is applied and either
    /// <paramref name="kvm"/> is null (/dev/kvm: "!kvm || …", [PATCH v12 10/16]) or the arch supports it for the VM.
    /// </summary>
    public static bool Supported(EmulatedKernel kernel, Kvm? kvm) =>
        kernel.Config.GuestMemfdNoDirectMap && (kvm is null || ArchSupports(kernel.Config, kvm.Type));

    /// <summary>kvm_arch_gmem_supports_no_direct_map(kvm) for a VM of <paramref name="vmType"/>.</summary>
    public static bool ArchSupports(EmulatorConfig config, ulong vmType) => config.Architecture switch
    {
        // [PATCH v12 08/16] arch/x86/kvm/x86.c.
        Architecture.X86_64 => config.CanSetDirectMap &&
                               vmType != KvmConstants.KVM_X86_TDX_VM && vmType != KvmConstants.KVM_X86_SNP_VM,
        // [PATCH v12 09/16] arch/arm64/include/asm/kvm_host.h (no VM-type check: pKVM's protected VMs are not excluded).
        Architecture.Arm64 => config.CanSetDirectMap && config.Arm64Stage2Fwb,
        // [PATCH v12 08/16] include/linux/kvm_host.h: the stub for arches that do not define it.
        _ => false,
    };

    /// <summary>
    /// mapping_no_direct_map(): the file was created with the flag while the proposal was applied (an
    /// <see cref="EmulatorConfig.ExtraGuestMemfdFlags"/> bit 2 without the proposal carries no meaning).
    /// </summary>
    public static bool IsSet(GmemInode inode) => inode.NoDirectMap;
}
