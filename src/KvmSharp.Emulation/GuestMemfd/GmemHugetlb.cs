// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Emulation.MemoryAttributes;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>
/// guest_memfd backed by HugeTLB, modelled when <see cref="EmulatorConfig.GuestMemfdHugetlb"/> names an encoding
/// (unmerged; <see cref="GuestMemfdHugetlbAbi"/> names both). Sources, in kernel order:
/// <list type="bullet">
/// <item>RFC: "[RFC PATCH v2 00/51] 1G page support for guest_memfd" (Ackerley Tng, 2025-05-14): kvm_gmem_create's
/// valid_flags gains HUGETLB and the allocator mask (bits 63:58) only when HUGETLB is set; guestmem_hugetlb_setup:
/// hstate_sizelog(log) NULL → -EINVAL, !IS_ALIGNED(size, huge_page_size(h)) → -EINVAL, hugepage_new_subpool(h,
/// hpages, hpages) (a reservation of every huge page of the file at creation) NULL → -ENOMEM;
/// inode->i_blkbits = ilog2(huge page size).</item>
/// <item>BRANCH: the 6.18-based guest_memfd HugeTLB branch (virt/kvm/guest_memfd.c, guest_memfd_hugetlb.c as carried by
/// AMDESE/linux-kvm and intel/tdx): kvm_gmem_create: <c>args-&gt;page_order &amp;&amp; !HUGETLB</c> → -EINVAL; HUGETLB
/// with INIT_SHARED → -EINVAL; !gmem_hugetlb_valid_order(order) (0, or no hstate of that order) → -EINVAL;
/// size not a multiple of PAGE_SIZE &lt;&lt; order → -EINVAL; gmem_hugetlb_setup: the same subpool reservation;
/// kvm_gmem_fallocate: offset and len aligned to PAGE_SIZE &lt;&lt; page_order else -EINVAL; __maybe_split_fresh_folio:
/// a new huge folio stays whole only if its whole range is PRIVATE, else it is split to order 0;
/// kvm_gmem_restructure (conversion, one huge page per batch): to shared splits, to private merges when the rest of
/// the huge page is private too; merge_truncate_range: punch merges, then frees the folio to the subpool;
/// kvm_gmem_evict_inode + gmem_hugetlb_teardown: release of the file gives the reservation back;
/// kvm_gmem_mapping_order / __kvm_gmem_get_pfn: max_order = folio_order, i.e. page_order iff the huge page is whole.</item>
/// </list>
/// State is kept per huge page in range maps (O(ranges): a 1 GiB file holds no per-4K array).
/// </summary>
internal static class GmemHugetlb
{
    private static readonly ConditionalWeakTable<EmulatedKernel, Dictionary<int, HugetlbPool>> Pools = new();

    /// <summary>The variant the kernel models (None when off).</summary>
    public static GuestMemfdHugetlbEncoding Variant(EmulatedKernel kernel) => kernel.Config.GuestMemfdHugetlb;

    /// <summary>
    /// Whether the HUGETLB bit can mean HugeTLB here: the variant is on and no other modelled proposal claims bit 2
    /// (NO_DIRECT_MAP [PATCH v12] uses 1 &lt;&lt; 2 too; <see cref="Validate"/> refuses such a configuration).
    /// </summary>
    public static bool Enabled(EmulatedKernel kernel) =>
        Variant(kernel) != GuestMemfdHugetlbEncoding.None && Conflict(kernel.Config) is null;

    /// <summary>A configuration error (two meanings for one bit), or null.</summary>
    public static string? Conflict(EmulatorConfig config)
    {
        if (config.GuestMemfdHugetlb == GuestMemfdHugetlbEncoding.None) return null;
        if (config.GuestMemfdNoDirectMap)
            return "GUEST_MEMFD_FLAG_HUGETLB and GUEST_MEMFD_FLAG_NO_DIRECT_MAP both claim bit 2; enable one proposal";
        if ((config.ExtraGuestMemfdFlags & (GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB | GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_SIZE_BITS)) != 0)
            return "GUEST_MEMFD_FLAG_HUGETLB (and bits 63:58) are modeled by GuestMemfdHugetlb; leave them out of ExtraGuestMemfdFlags";
        if (config.HugetlbPools.Keys.Any(o => o <= 0 || o > 30))
            return "HugetlbPools are keyed by page order (9 = 2 MiB, 18 = 1 GiB)";
        return null;
    }

    /// <summary>Throws for a configuration <see cref="Conflict"/> names (for EmulatedKernel's constructor checks).</summary>
    public static void Validate(EmulatorConfig config)
    {
        if (Conflict(config) is string why) throw new ArgumentException(why, nameof(config));
    }

    /// <summary>
    /// The flags kvm_gmem_get_supported_flags gains. RFC v2 had no KVM_CAP_GUEST_MEMFD_FLAGS (it had
    /// KVM_CAP_GMEM_HUGETLB, 242); in the FLAGS model ("the capability would simply enumerate all supported flags",
    /// seed 000) a kernel lists HUGETLB in bits 31:0 and, for the RFC encoding, the whole size field 63:58 (valid bits,
    /// conditionally on HUGETLB) — visible only through KVM_CAP_GUEST_MEMFD_FLAGS_HI. DECISION, documented: the branch
    /// encoding lists HUGETLB only. Offered on /dev/kvm and every VM (neither series restricts VM types).
    /// </summary>
    public static ulong OfferedFlags(EmulatedKernel kernel) => !Enabled(kernel) ? 0 : Variant(kernel) switch
    {
        GuestMemfdHugetlbEncoding.RfcV2FlagBits => GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB | GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_SIZE_BITS,
        GuestMemfdHugetlbEncoding.PageOrderField => GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB,
        _ => 0,
    };

    /// <summary>The pool of huge pages of <paramref name="order"/> (null: the host has no such hstate).</summary>
    public static HugetlbPool? Pool(EmulatedKernel kernel, int order)
    {
        var pools = Pools.GetValue(kernel, k => k.Config.HugetlbPools.ToDictionary(p => p.Key, p => new HugetlbPool(p.Key, p.Value)));
        return pools.GetValueOrDefault(order);
    }

    /// <summary>Every pool of <paramref name="kernel"/> (for the invariants).</summary>
    public static IEnumerable<HugetlbPool> AllPools(EmulatedKernel kernel) =>
        kernel.Config.HugetlbPools.Keys.Select(o => Pool(kernel, o)!);

    /// <summary>
    /// The creation rules after the generic <c>flags &amp; ~supported</c> check, in each variant's order. 0 with the page
    /// order (0 = not HugeTLB) and, for HugeTLB, the reserved pool; or -errno with nothing reserved.
    /// </summary>
    public static long CheckCreate(EmulatedKernel kernel, in kvm_create_guest_memfd args, out int order, out HugetlbPool? pool)
    {
        order = 0;
        pool = null;
        long size = (long)args.size;
        ulong flags = args.flags;
        bool hugetlb = Enabled(kernel) && (flags & GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB) != 0;
        switch (Enabled(kernel) ? Variant(kernel) : GuestMemfdHugetlbEncoding.None)
        {
            case GuestMemfdHugetlbEncoding.RfcV2FlagBits:
            {
                // [RFC v2] kvm_gmem_create: the allocator mask is valid only "if (flags & GUEST_MEMFD_FLAG_HUGETLB)".
                if (!hugetlb && (flags & GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_SIZE_BITS) != 0) return Err.EINVAL;
                // then "size <= 0 || !PAGE_ALIGNED(size)" → -EINVAL, before the allocator's setup.
                if (size <= 0 || (size & (EmulatorConfig.PageSize - 1)) != 0) return Err.EINVAL;
                if (!hugetlb) return 0;
                // guestmem_hugetlb_setup: hstate_sizelog(log): 0 → the default hstate (2 MiB on x86), else a size the
                // host has an hstate for → else -EINVAL.
                int log = (int)((flags >> GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_SHIFT) & GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_MASK);
                int sizeLog = log == 0 ? EmulatorConfig.PageShift + 9 : log;
                order = sizeLog - EmulatorConfig.PageShift;
                if (order <= 0 || Pool(kernel, order) is null) return Err.EINVAL;
                break;
            }
            case GuestMemfdHugetlbEncoding.PageOrderField:
            {
                byte pageOrder = (byte)args.reserved[0];
                // [BRANCH] kvm_gmem_create: "if (args->page_order && !(flags & GUEST_MEMFD_FLAG_HUGETLB)) return -EINVAL;"
                if (pageOrder != 0 && !hugetlb) return Err.EINVAL;
                if (hugetlb)
                {
                    // "if (flags & GUEST_MEMFD_FLAG_INIT_SHARED) return -EINVAL;"
                    if ((flags & KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED) != 0) return Err.EINVAL;
                    // gmem_hugetlb_valid_order: order 0 is not HugeTLB; hugetlb_order_to_hstate(order) must exist.
                    if (pageOrder == 0 || Pool(kernel, pageOrder) is null) return Err.EINVAL;
                    order = pageOrder;
                }
                // "if (size <= 0 || !IS_ALIGNED(size, PAGE_SIZE << page_order)) return -EINVAL;"
                if (size <= 0 || (size & ((EmulatorConfig.PageSize << order) - 1)) != 0) return Err.EINVAL;
                if (!hugetlb) return 0;
                break;
            }
            default:
                if (size <= 0 || (size & (EmulatorConfig.PageSize - 1)) != 0) return Err.EINVAL;
                return 0;
        }
        // [RFC v2] guestmem_hugetlb_setup: "if (!IS_ALIGNED(size, huge_page_size(h))) return ERR_PTR(-EINVAL);"
        // (the branch checked it above).
        if ((size & ((EmulatorConfig.PageSize << order) - 1)) != 0) return Err.EINVAL;
        // Both: hugepage_new_subpool(h, hpages, hpages, ...) reserves every huge page of the file (min_hpages);
        // hugetlb_acct_memory failing → NULL → -ENOMEM.
        var p = Pool(kernel, order)!;
        long hpages = size >> (order + EmulatorConfig.PageShift);
        if (!p.TryReserve(hpages)) return Err.ENOMEM;
        pool = p;
        return 0;
    }
}

/// <summary>
/// The HugeTLB part of one guest_memfd inode: its page order, its subpool's reservation, and per huge page whether
/// a folio is allocated and whether it is restructured (split to order 0) — range maps over huge-page indices.
/// </summary>
internal sealed class GmemHugetlbState
{
    private readonly RangeMap<bool> _allocated = new(false);
    private readonly RangeMap<bool> _split = new(false);
    private readonly RangeMap<ulong> _attributes;
    private bool _released;

    public GmemHugetlbState(int order, HugetlbPool pool, long hugePages, RangeMap<ulong> attributes)
    {
        Order = order;
        Pool = pool;
        Reserved = hugePages;
        _attributes = attributes;
    }

    /// <summary>GMEM_I(inode)->page_order.</summary>
    public int Order { get; }

    public HugetlbPool Pool { get; }

    /// <summary>The subpool's reservation (the file's huge pages).</summary>
    public long Reserved { get; }

    /// <summary>Allocated huge folios of this file.</summary>
    public long AllocatedCount { get; private set; }

    /// <summary>4 KiB pages per huge page.</summary>
    public ulong PagesPerHuge => 1UL << Order;

    /// <summary>Range maps in use (for the O(ranges) checks).</summary>
    public int RangeCount => _allocated.RangeCount + _split.RangeCount;

    public bool IsAllocated(ulong hugeIndex) => _allocated.Get(hugeIndex);

    /// <summary>A folio exists and is one huge folio (not restructured to order 0).</summary>
    public bool IsWhole(ulong hugeIndex) => _allocated.Get(hugeIndex) && !_split.Get(hugeIndex);

    /// <summary>The whole huge page [h*N, (h+1)*N) is PRIVATE (kvm_gmem_range_has_attributes(..., PRIVATE)).</summary>
    public bool AllPrivate(ulong hugeIndex) =>
        _attributes.AllEqual(hugeIndex * PagesPerHuge, (hugeIndex + 1) * PagesPerHuge, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);

    /// <summary>
    /// kvm_gmem_get_folio for every huge page overlapping [start, end) (4 KiB page indices) that has none: a folio from
    /// the subpool (never fails: it was reserved), split at once unless all of it is private (__maybe_split_fresh_folio).
    /// Returns the huge-page ranges newly allocated.
    /// </summary>
    public List<(ulong Start, ulong End)> Allocate(ulong start, ulong end)
    {
        var fresh = new List<(ulong, ulong)>();
        if (_released || start >= end) return fresh;
        ulong h0 = start >> Order, h1 = ((end - 1) >> Order) + 1;
        foreach (var (s, e, allocated) in _allocated.Segments(h0, h1).ToArray())
        {
            if (allocated) continue;
            _allocated.Set(s, e, true);
            AllocatedCount += (long)(e - s);
            Pool.NoteAllocated((long)(e - s));
            Restructure(s, e);
            fresh.Add((s, e));
        }
        return fresh;
    }

    /// <summary>merge_truncate_range for [start, end) (huge-aligned by kvm_gmem_fallocate): merge, then free to the subpool.</summary>
    public void Free(ulong start, ulong end)
    {
        if (_released || start >= end) return;
        ulong h0 = start >> Order, h1 = ((end - 1) >> Order) + 1;
        foreach (var (s, e, allocated) in _allocated.Segments(h0, h1).ToArray())
        {
            if (!allocated) continue;
            AllocatedCount -= (long)(e - s);
            Pool.NoteAllocated(-(long)(e - s));
        }
        _allocated.Set(h0, h1, false);
        _split.Set(h0, h1, false);
    }

    /// <summary>
    /// kvm_gmem_restructure after a conversion of [start, end) (4 KiB indices): each allocated huge page touched is
    /// whole iff all of it is private (to shared → split to order 0; to private with the rest private → merged).
    /// </summary>
    public void RestructurePages(ulong start, ulong end)
    {
        if (_released || start >= end) return;
        Restructure(start >> Order, ((end - 1) >> Order) + 1);
    }

    private void Restructure(ulong h0, ulong h1)
    {
        foreach (var (s, e, allocated) in _allocated.Segments(h0, h1).ToArray())
        {
            if (!allocated) continue;
            // Uniform attribute runs make this O(ranges): a run of huge pages that is all private merges at once.
            ulong p = s;
            while (p < e)
            {
                ulong from = p * PagesPerHuge;
                var (_, segEnd, attrs) = _attributes.Segments(from, e * PagesPerHuge).First();
                bool priv = (attrs & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0;
                // Huge pages fully inside this run share its verdict; the one it ends in is mixed unless it ends there.
                ulong runEndHuge = segEnd / PagesPerHuge;
                if (runEndHuge > p)
                {
                    _split.Set(p, Math.Min(runEndHuge, e), !priv);
                    p = Math.Min(runEndHuge, e);
                }
                else
                {
                    _split.Set(p, p + 1, true);
                    p++;
                }
            }
        }
    }

    /// <summary>gmem_hugetlb_teardown at inode eviction: every folio freed, the subpool's reservation returned.</summary>
    public void Release()
    {
        if (_released) return;
        _released = true;
        Pool.NoteAllocated(-AllocatedCount);
        AllocatedCount = 0;
        Pool.Unreserve(Reserved);
        _allocated.Set(0, ulong.MaxValue, false);
        _split.Set(0, ulong.MaxValue, false);
    }

    /// <summary>The allocated huge-page runs (for the invariants).</summary>
    public IEnumerable<(ulong Start, ulong End, bool Split)> AllocatedRuns(ulong hugePages)
    {
        foreach (var (s, e, allocated) in _allocated.Segments(0, hugePages))
        {
            if (!allocated) continue;
            foreach (var (s2, e2, split) in _split.Segments(s, e)) yield return (s2, e2, split);
        }
    }

    public bool Released => _released;
}
