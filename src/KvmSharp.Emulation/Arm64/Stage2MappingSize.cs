// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The size of the stage-2 leaf a guest abort installs, as Linux 6.18 arch/arm64/kvm/mmu.c decides it for the 4 KiB
/// granule, expressed as <see cref="MmuMappingLevel"/> levels (1 = PAGE_SIZE page, 2 = PMD_SIZE 2 MiB block, 3 =
/// PUD_SIZE 1 GiB block — arm64 stage-2 lookup levels 3, 2 and 1) so <see cref="MmuMappings"/> and
/// <see cref="GuestMappingInspection"/> serve both architectures. Callers hold the kernel lock.
/// <para>What the emulator can meet: gmem slots (gmem_abort: always PAGE_SIZE) and anonymous host memory
/// (user_mem_abort). Not modelled, as no emulated VMA has them: hugetlbfs VMAs (get_vma_page_shift →
/// huge_page_shift(hstate_vma): PUD_SHIFT / CONT_PMD_SHIFT / PMD_SHIFT / CONT_PTE_SHIFT, the switch in
/// user_mem_abort), VM_PFNMAP device memory (get_vma_page_shift's PUD/PMD alignment of vm_pgoff, and
/// s2_force_noncacheable keeping PAGE_SIZE for a device pfn), nested stage 2 (kvm_s2_trans), protected KVM, and eager
/// page splitting (KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE is refused here, so split_page_chunk_size stays 0 and
/// kvm_mmu_split_huge_pages splits nothing). A write to a read-only leaf is a permission fault
/// (<see cref="ForPermissionFault"/>).</para>
/// </summary>
internal static class Stage2MappingSize
{
    /// <summary>PMD_SIZE with 4 KiB pages.</summary>
    private const ulong PmdSize = 1UL << 21;

    /// <summary>
    /// gmem_abort (6.18, "KVM: arm64: Handle guest_memfd-backed guest page faults"): "ret =
    /// KVM_PGT_FN(kvm_pgtable_stage2_map)(pgt, fault_ipa, PAGE_SIZE, …)" — kvm_gmem_get_pfn is called with a NULL
    /// max_order ("Until guest_memfd gains support for huge pages, the fault granule for these memory regions is
    /// restricted to PAGE_SIZE"), so a whole HugeTLB folio (the unmerged proposal, GuestMemfd/GmemHugetlb.cs) still maps
    /// 4 KiB: no arm64 patch of that proposal is modelled.
    /// </summary>
    public static int ForGmemAbort() => MmuMappingLevel.Level4K;

    /// <summary>The level of a user_mem_abort fault at <paramref name="hva"/> of <paramref name="slot"/>.</summary>
    public static int ForUserMemAbort(Kvm kvm, KvmMemorySlot slot, ulong hva)
    {
        // user_mem_abort: "if (logging_active) { force_pte = true; vma_shift = PAGE_SHIFT; }" (memslot_is_logging).
        if (IsLogging(slot)) return MmuMappingLevel.Level4K;
        // get_vma_page_shift: an anonymous VMA (not hugetlb, not VM_PFNMAP) is PAGE_SHIFT; "case PAGE_SHIFT: break;"
        // leaves force_pte false, so "if (vma_pagesize == PAGE_SIZE && !(force_pte || s2_force_noncacheable))"
        // asks transparent_hugepage_adjust.
        return TransparentHugepageAdjust(kvm, slot, hva);
    }

    /// <summary>
    /// mmu.c memslot_is_logging: "return memslot-&gt;dirty_bitmap &amp;&amp; !(memslot-&gt;flags &amp; KVM_MEM_READONLY);".
    /// A dirty ring without KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP leaves a KVM_MEM_LOG_DIRTY_PAGES slot without a bitmap
    /// (kvm_main.c kvm_prepare_memory_region: "else if (kvm_use_dirty_bitmap(kvm))" allocates it): not logging, so
    /// user_mem_abort maps blocks and read faults writable, and marks those read faults (Stage2Access.Mapped). A slot
    /// made before the ring was enabled keeps its bitmap and logs.
    /// </summary>
    public static bool IsLogging(KvmMemorySlot slot) =>
        slot.DirtyBitmap is not null && (slot.Flags & KvmConstants.KVM_MEM_READONLY) == 0;

    /// <summary>
    /// vma_pagesize of a write permission fault on a present leaf of <paramref name="faultLevel"/> (fault_granule =
    /// kvm_vcpu_trap_get_perm_fault_granule). gmem_abort: PAGE_SIZE. user_mem_abort: while logging, "force_pte = true;
    /// vma_shift = PAGE_SHIFT" (a write-protected block is split); otherwise "if (vma_pagesize == PAGE_SIZE &amp;&amp;
    /// !(force_pte || s2_force_noncacheable)) { if (fault_is_perm &amp;&amp; fault_granule &gt; PAGE_SIZE) vma_pagesize =
    /// fault_granule; else vma_pagesize = transparent_hugepage_adjust(…); }" — a block keeps its size, a page may become
    /// the THP's block. The caller relaxes permissions when the size equals the leaf's ("if (fault_is_perm &amp;&amp;
    /// vma_pagesize == fault_granule) kvm_pgtable_stage2_relax_perms"), else maps a new leaf of this size.
    /// </summary>
    public static int ForPermissionFault(Kvm kvm, KvmMemorySlot slot, ulong hva, int faultLevel)
    {
        if (slot.HasGmem) return ForGmemAbort();
        if (IsLogging(slot)) return MmuMappingLevel.Level4K;
        if (faultLevel > MmuMappingLevel.Level4K) return faultLevel;
        return TransparentHugepageAdjust(kvm, slot, hva);
    }

    /// <summary>
    /// transparent_hugepage_adjust: "if (fault_supports_stage2_huge_mapping(memslot, hva, PMD_SIZE)) { int sz =
    /// get_user_mapping_size(kvm, hva); … if (sz &lt; PMD_SIZE) return PAGE_SIZE; *ipap &amp;= PMD_MASK; … return
    /// PMD_SIZE; } return PAGE_SIZE;" — get_user_mapping_size walks the host's page table: PMD_SIZE for a PMD-mapped
    /// THP (Mm/AnonymousMappings.PmdMappedThp models when the host has one).
    /// </summary>
    private static int TransparentHugepageAdjust(Kvm kvm, KvmMemorySlot slot, ulong hva)
    {
        if (!FaultSupportsStage2HugeMapping(slot, hva, PmdSize)) return MmuMappingLevel.Level4K;
        return kvm.Kernel.Anonymous.PmdMappedThp(hva, PmdSize) ? MmuMappingLevel.Level2M : MmuMappingLevel.Level4K;
    }

    /// <summary>
    /// fault_supports_stage2_huge_mapping: "if ((gpa_start &amp; (map_size - 1)) != (uaddr_start &amp; (map_size -
    /// 1))) return false;" then the block must lie in the slot: "(hva &amp; ~(map_size - 1)) &gt;= uaddr_start &amp;&amp;
    /// (hva &amp; ~(map_size - 1)) + map_size &lt;= uaddr_end".
    /// </summary>
    public static bool FaultSupportsStage2HugeMapping(KvmMemorySlot slot, ulong hva, ulong mapSize)
    {
        if (mapSize == (ulong)EmulatorConfig.PageSize) return true;
        ulong gpaStart = slot.BaseGfn << EmulatorConfig.PageShift;
        ulong uaddrStart = slot.UserspaceAddr;
        ulong uaddrEnd = uaddrStart + (slot.NPages << EmulatorConfig.PageShift);
        if ((gpaStart & (mapSize - 1)) != (uaddrStart & (mapSize - 1))) return false;
        ulong block = hva & ~(mapSize - 1);
        return block >= uaddrStart && block + mapSize <= uaddrEnd;
    }
}
