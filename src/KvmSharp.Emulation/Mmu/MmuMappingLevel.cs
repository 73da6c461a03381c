// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.KvmMain;

namespace KvmSharp.Emulation.Mmu;

/// <summary>
/// The level (4 KiB, 2 MiB, 1 GiB: PG_LEVEL_4K/2M/1G = 1/2/3) the x86 TDP MMU maps a fault at, as Linux 6.18 decides
/// it (arch/x86/kvm/mmu/mmu.c): kvm_mmu_faultin_pfn_gmem sets fault-&gt;max_level = kvm_max_level_for_order(max_order)
/// from kvm_gmem_get_pfn's max_order; kvm_mmu_hugepage_adjust takes kvm_mmu_max_mapping_level(kvm, fault, slot, gfn):
/// min(max_level, max_huge_page_level), lowered while lpage_info's disallow_lpage is set at that level, then for a
/// private or gmem-only fault kvm_gmem_max_mapping_level (the arch's gmem_max_mapping_level: TDX, SNP), otherwise
/// host_pfn_mapping_level. Every method runs under the kernel lock.
/// </summary>
internal static class MmuMappingLevel
{
    /// <summary>PG_LEVEL_4K, PG_LEVEL_2M, PG_LEVEL_1G (arch/x86/include/asm/pgtable_types.h).</summary>
    public const int Level4K = 1, Level2M = 2, Level1G = 3;

    /// <summary>
    /// max_huge_page_level = tdp_huge_page_level: PG_LEVEL_1G when the host has X86_FEATURE_GBPAGES, else 2M
    /// (mmu.c kvm_configure_mmu). Every EPYC the emulator models has GBPAGES.
    /// </summary>
    public const int MaxHugePageLevel = Level1G;

    /// <summary>KVM_HPAGE_GFN_SHIFT(level): 0, 9, 18.</summary>
    public static int GfnShift(int level) => (level - 1) * 9;

    /// <summary>log2 of the bytes a leaf at <paramref name="level"/> maps: 12, 21, 30.</summary>
    public static int PageShift(int level) => EmulatorConfig.PageShift + GfnShift(level);

    /// <summary>mmu.c kvm_max_level_for_order: 1G for order ≥ 18, 2M for order ≥ 9, else 4K.</summary>
    public static int MaxLevelForOrder(int order) => order >= GfnShift(Level1G) ? Level1G : order >= GfnShift(Level2M) ? Level2M : Level4K;

    /// <summary>
    /// kvm_gmem_get_pfn's max_order for <paramref name="gfn"/> of a gmem <paramref name="slot"/>, once the folio exists.
    /// Linux 6.18 (virt/kvm/guest_memfd.c kvm_gmem_get_pfn): "if (max_order) *max_order = 0;" — always 0: 4 KiB
    /// folios only. With the HugeTLB proposal on (<see cref="EmulatorConfig.GuestMemfdHugetlb"/>; unmerged:
    /// "[RFC PATCH v2 00/51] 1G page support for guest_memfd" and the 6.18-based branch, GuestMemfd/GmemHugetlb.cs):
    /// __kvm_gmem_get_pfn's max_order = folio_order(folio), i.e. the page order iff the huge folio is whole (not
    /// restructured to order 0 by a conversion). ASSUMPTION (session 12, as GuestMemfdHugetlbInspection): a part of the
    /// folio backs a huge mapping only when the GFN and the file index agree modulo that part (an aligned GFN range
    /// must land on an aligned pfn range), so max_order is the largest of the folio order, 9 and 0 at which they do.
    /// </summary>
    public static int GmemMaxOrder(KvmMemorySlot slot, ulong gfn)
    {
        if (slot.GmemFile?.GmemInode.Hugetlb is not { } huge) return 0;
        ulong index = gfn - slot.BaseGfn + slot.GmemPgoff;
        if (!huge.IsWhole(index >> huge.Order)) return 0;
        return CongruentOrder(gfn, index, huge.Order);
    }

    /// <summary>The largest of <paramref name="folioOrder"/>, 9 (when smaller) and 0 at which gfn ≡ index.</summary>
    public static int CongruentOrder(ulong gfn, ulong index, int folioOrder)
    {
        foreach (int order in new[] { folioOrder, GfnShift(Level2M) })
        {
            if (order <= folioOrder && ((gfn ^ index) & ((1UL << order) - 1)) == 0) return order;
        }
        return 0;
    }

    /// <summary>
    /// The level of one fault (kvm_mmu_hugepage_adjust's fault-&gt;goal_level). <paramref name="fromGmem"/>: the fault
    /// went through kvm_mmu_faultin_pfn_gmem (private, or a gmem-only slot), with <paramref name="gmemOrder"/> =
    /// <see cref="GmemMaxOrder"/>.
    /// </summary>
    public static int ForFault(Kvm kvm, KvmMemorySlot slot, ulong gfn, bool isPrivate, bool fromGmem, int gmemOrder)
    {
        // kvm_mmu_hugepage_adjust: "if (kvm_slot_dirty_track_enabled(slot)) return;" — dirty logging maps 4K.
        if (slot.DirtyTrackEnabled) return Level4K;
        if (!fromGmem) return ForHostMemoryFault(kvm, slot, gfn);
        // KVM Userfault [PATCH v3] __kvm_mmu_max_mapping_level / kvm_max_private_mapping_level: "if
        // (kvm_userfault_enabled(kvm)) return PG_LEVEL_4K;" — the check was for this page only. Modelled as: a memslot
        // of the VM has KVM_MEM_USERFAULT.
        if (UserfaultEnabled(kvm)) return Level4K;
        // kvm_mmu_faultin_pfn_gmem: fault->max_level = kvm_max_level_for_order(max_order).
        int level = LpageInfoMaxLevel(kvm, slot, gfn, MaxLevelForOrder(gmemOrder));
        if (level == Level4K) return Level4K;
        // kvm_gmem_max_mapping_level: "coco_level = kvm_x86_call(gmem_max_mapping_level)(kvm, pfn, is_private);
        // if (coco_level) max_level = min(max_level, coco_level);" (0 = no further restriction).
        int coco = CocoMaxLevel(kvm, slot, gfn, isPrivate);
        return coco != 0 ? Math.Min(level, coco) : level;
    }

    /// <summary>
    /// A fault served through userspace_addr (__kvm_faultin_pfn): fault-&gt;max_level is KVM_MAX_HUGEPAGE_LEVEL, so
    /// kvm_mmu_max_mapping_level is the lpage_info loop, then "host_level = host_pfn_mapping_level(kvm, gfn, slot);
    /// return min(host_level, max_level);". kvm_mmu_hugepage_adjust's other limit, fault-&gt;huge_page_disallowed for
    /// an exec fault with the NX huge page mitigation (is_nx_huge_page_enabled), stays off: nx_huge_pages=auto enables
    /// it only on CPUs with X86_BUG_ITLB_MULTIHIT, and every modelled CPU is an AMD EPYC.
    /// </summary>
    private static int ForHostMemoryFault(Kvm kvm, KvmMemorySlot slot, ulong gfn)
    {
        // Without TDP the shadow MMU caps the level at the guest's own mapping (paging_tmpl.h FNAME(page_fault):
        // "fault->max_level = walker.level"), which is not passed here: kept at 4K (what every earlier emulator
        // release answered, and what a guest mapping its memory with 4 KiB PTEs gets).
        if (!kvm.Kernel.Config.TdpEnabled) return Level4K;
        // KVM Userfault [PATCH v3] __kvm_mmu_max_mapping_level: "if (kvm_userfault_enabled(kvm)) return PG_LEVEL_4K;".
        if (UserfaultEnabled(kvm)) return Level4K;
        int level = LpageInfoMaxLevel(kvm, slot, gfn, MaxHugePageLevel);
        if (level == Level4K) return Level4K;
        return Math.Min(level, HostPfnMappingLevel(kvm, slot, gfn));
    }

    /// <summary>
    /// mmu.c host_pfn_mapping_level: the level of the host's own page-table entry for the slot's HVA of
    /// <paramref name="gfn"/> ("hva = __gfn_to_hva_memslot(slot, gfn); … pud = READ_ONCE(*pud_offset(&amp;p4d, hva));
    /// if (pud_leaf(pud)) level = PG_LEVEL_1G; … if (pmd_leaf(pmd)) level = PG_LEVEL_2M;"). The emulated host maps
    /// anonymous memory with 4 KiB pages except a PMD-mapped THP (Mm/AnonymousMappings.PmdMappedThp: MADV_HUGEPAGE
    /// in the host's "madvise" THP mode, the same model arm64's get_user_mapping_size reads); no PUD-sized THP,
    /// hugetlbfs or VM_PFNMAP mapping is modelled.
    /// </summary>
    public static int HostPfnMappingLevel(Kvm kvm, KvmMemorySlot slot, ulong gfn)
    {
        ulong hva = slot.UserspaceAddr + ((gfn - slot.BaseGfn) << EmulatorConfig.PageShift);
        ulong pmdSize = 1UL << PageShift(Level2M);
        return kvm.Kernel.Anonymous.PmdMappedThp(hva, pmdSize) ? Level2M : Level4K;
    }

    /// <summary>
    /// kvm_mmu_max_mapping_level's lpage_info loop: "max_level = min(max_level, max_huge_page_level); for ( ; max_level
    /// &gt; PG_LEVEL_4K; max_level--) { linfo = lpage_info_slot(gfn, slot, max_level); if (!linfo-&gt;disallow_lpage)
    /// break; }".
    /// </summary>
    public static int LpageInfoMaxLevel(Kvm kvm, KvmMemorySlot slot, ulong gfn, int maxLevel)
    {
        int level = Math.Min(maxLevel, MaxHugePageLevel);
        for (; level > Level4K; level--)
        {
            if (!DisallowLpage(kvm, slot, gfn, level)) break;
        }
        return level;
    }

    /// <summary>
    /// lpage_info_slot(gfn, slot, level)-&gt;disallow_lpage != 0, computed rather than kept (same answers: upstream
    /// keeps it current on every memslot and attribute change):
    /// <list type="bullet">
    /// <item>x86.c kvm_alloc_memslot_metadata: the huge page holding the GFN sticks out of the slot (its unaligned
    /// head or tail: "if (slot-&gt;base_gfn &amp; (KVM_PAGES_PER_HPAGE(level) - 1)) linfo[0].disallow_lpage = 1;" and the
    /// same for the last entry), or "(slot-&gt;base_gfn ^ ugfn) &amp; (KVM_PAGES_PER_HPAGE(level) - 1)" with ugfn =
    /// userspace_addr &gt;&gt; PAGE_SHIFT (0 for a gmem-only slot bound without a mapping): every entry.</item>
    /// <item>KVM_LPAGE_MIXED_FLAG (mmu.c kvm_arch_post_set_memory_attributes / kvm_mmu_init_memslot_memory_attributes,
    /// hugepage_has_attrs): the per-VM attributes are not uniform over the huge page (for 1G: a 2M part is mixed or
    /// the parts differ — the same as "not uniform"). Kept only for VMs with private memory ("if
    /// (!kvm_arch_has_private_mem(kvm)) return;") and only for the per-VM attributes (KVM_SET_MEMORY_ATTRIBUTES); with
    /// in-place conversion ([PATCH v8] guest_memfd attributes) the folio order limits the level instead.</item>
    /// </list>
    /// </summary>
    public static bool DisallowLpage(Kvm kvm, KvmMemorySlot slot, ulong gfn, int level)
    {
        ulong n = 1UL << GfnShift(level);
        ulong head = gfn & ~(n - 1);
        if (head < slot.BaseGfn || head + n > slot.EndGfn) return true;
        ulong ugfn = slot.UserspaceAddr >> EmulatorConfig.PageShift;
        if (((slot.BaseGfn ^ ugfn) & (n - 1)) != 0) return true;
        return Mixed(kvm, head, head + n);
    }

    /// <summary>KVM_LPAGE_MIXED_FLAG for the huge page [<paramref name="head"/>, <paramref name="end"/>) (see <see cref="DisallowLpage"/>).</summary>
    public static bool Mixed(Kvm kvm, ulong head, ulong end)
    {
        if (!kvm.Kernel.Config.Kconfig.KVM_GENERIC_MEMORY_ATTRIBUTES || kvm.Kernel.InPlaceConversion) return false;
        if (!kvm.Arch.HasPrivateMem(kvm)) return false;
        return !kvm.MemAttrArray.AllEqual(head, end, kvm.MemAttrArray.Get(head));
    }

    /// <summary>
    /// kvm_x86_ops.gmem_max_mapping_level(kvm, pfn, is_private) (private_max_mapping_level before the 6.18 rename):
    /// <list type="bullet">
    /// <item>TDX (arch/x86/kvm/vmx/tdx.c tdx_gmem_max_mapping_level, 6.18): "if (!is_private) return 0; return
    /// PG_LEVEL_4K;" — private memory is always mapped 4K (the S-EPT huge page series is unmerged).</item>
    /// <item>SNP (arch/x86/kvm/svm/sev.c sev_gmem_max_mapping_level): 0 for a VM that is not an SNP guest or a shared
    /// fault; "rc = snp_lookup_rmpentry(pfn, &amp;assigned, &amp;level); if (rc || !assigned) return PG_LEVEL_4K;
    /// return level;" — the RMP entry's size (2M after sev_gmem_prepare made a 2M entry, 4K once PSMASHed or
    /// made 4K; Arch/X86/SnpRmp.cs).</item>
    /// <item>Other VM types: no hook (KVM_X86_OP_OPTIONAL_RET0) → 0.</item>
    /// </list>
    /// </summary>
    public static int CocoMaxLevel(Kvm kvm, KvmMemorySlot slot, ulong gfn, bool isPrivate)
    {
        if (kvm.Type == KvmConstants.KVM_X86_TDX_VM) return isPrivate ? Level4K : 0;
        if (kvm.Type == KvmConstants.KVM_X86_SNP_VM)
        {
            if (!isPrivate || !SnpRmp.IsSnpGuest(kvm) || slot.GmemFile is not { } f) return 0;
            var entry = SnpRmp.Get(f.GmemInode, gfn - slot.BaseGfn + slot.GmemPgoff);
            if (!entry.Assigned) return Level4K;
            return entry.Large ? Level2M : Level4K;
        }
        return 0;
    }

    private static bool UserfaultEnabled(Kvm kvm)
    {
        for (int asId = 0; asId < kvm.Arch.NrMemslotAsIds(kvm); asId++)
        {
            foreach (var s in kvm.Memslots(asId).Values)
            {
                if (s.IsUserfault) return true;
            }
        }
        return false;
    }
}
