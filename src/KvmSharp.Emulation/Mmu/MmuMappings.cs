// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Emulation.KvmMain;

namespace KvmSharp.Emulation.Mmu;

/// <summary>One leaf SPTE the emulated TDP MMU installed: GFNs [<see cref="Gfn"/>, + 512^(level-1)).</summary>
internal readonly record struct MmuLeaf(ulong Gfn, int Level, bool Private, int GmemOrder)
{
    public ulong Pages => 1UL << MmuMappingLevel.GfnShift(Level);

    public ulong End => Gfn + Pages;
}

/// <summary>
/// The leaves the emulated TDP MMU has installed for a VM (address space 0), as far as the mapping level goes: each
/// fault installs one (arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_map at fault-&gt;goal_level), a zap removes every leaf
/// overlapping the range (kvm_tdp_mmu_unmap_gfn_range: a huge leaf that overlaps is zapped whole, so the next fault
/// maps at the level the new state allows). Invalidations that name no range (memslot changes, munmap of userspace
/// memory, PVALIDATE) drop every leaf, as the vCPUs' translation caches do (GuestPhysicalMemory.DropStale).
/// Callers hold the kernel lock.
/// </summary>
internal sealed class MmuMappings
{
    private static readonly ConditionalWeakTable<Kvm, MmuMappings> Tables = [];
    private static readonly Comparer<MmuLeaf> ByGfn = Comparer<MmuLeaf>.Create((a, b) => a.Gfn.CompareTo(b.Gfn));

    private readonly SortedSet<MmuLeaf> _leaves = new(ByGfn);

    /// <summary>Leaves per level (index 1..3): kvm-&gt;stat.pages[level - 1] as kvm_update_page_stats keeps it.</summary>
    private readonly long[] _pages = new long[MmuMappingLevel.Level1G + 1];
    private long _seq;

    private MmuMappings(long seq) => _seq = seq;

    private static MmuMappings Of(Kvm kvm)
    {
        var table = Tables.GetValue(kvm, k => new MmuMappings(k.MmuInvalidateSeq));
        // An invalidation without a range since the last look: every leaf went (see the class summary).
        if (table._seq != kvm.MmuInvalidateSeq)
        {
            table._leaves.Clear();
            Array.Clear(table._pages);
            table._seq = kvm.MmuInvalidateSeq;
        }
        return table;
    }

    /// <summary>A fault installed <paramref name="leaf"/> (replacing whatever overlapped it: a split or a collapse).</summary>
    public static void Install(Kvm kvm, MmuLeaf leaf)
    {
        var t = Of(kvm);
        t.Remove(leaf.Gfn, leaf.End);
        t._leaves.Add(leaf);
        // mmu.c kvm_update_page_stats(kvm, level, 1) for the new leaf SPTE (tdp_mmu.c handle_changed_spte / mmu_set_spte).
        t._pages[leaf.Level]++;
    }

    /// <summary>
    /// The leaves installed now at <paramref name="level"/> (1 = 4K, 2 = 2M, 3 = 1G): the pages_4k/2m/1g VM statistics.
    /// </summary>
    public static long LeafCount(Kvm kvm, int level) => Of(kvm)._pages[level];

    /// <summary>The leaf mapping <paramref name="gfn"/>, or null.</summary>
    public static MmuLeaf? Lookup(Kvm kvm, ulong gfn)
    {
        var t = Of(kvm);
        var leaf = t.LastStartingAtOrBefore(gfn);
        return leaf is { } l && gfn < l.End ? l : null;
    }

    /// <summary>
    /// kvm_mmu_invalidate_begin/end with kvm_unmap_gfn_range over the GFN <paramref name="ranges"/>: every leaf
    /// overlapping one is zapped, and kvm-&gt;mmu_invalidate_seq moves once (the vCPUs drop their cached pages). The
    /// attribute filter (KVM_FILTER_PRIVATE/SHARED) only separates a TD's mirror and shared roots; a GFN has one leaf
    /// here, so every leaf in the range goes.
    /// </summary>
    public static void InvalidateRanges(Kvm kvm, IEnumerable<(ulong Start, ulong End)> ranges)
    {
        var t = Of(kvm);
        foreach (var (s, e) in ranges) t.Remove(s, e);
        kvm.InvalidateGuestMappings();
        t._seq = kvm.MmuInvalidateSeq;
    }

    private void Remove(ulong start, ulong end)
    {
        if (start >= end) return;
        // Leaves never overlap: only the last one starting before the range can reach into it.
        // Each zapped leaf: kvm_update_page_stats(kvm, level, -1) (tdp_mmu.c handle_changed_spte, mmu.c drop_spte).
        if (start > 0 && LastStartingAtOrBefore(start - 1) is { } before && before.End > start && _leaves.Remove(before)) _pages[before.Level]--;
        var inside = _leaves.GetViewBetween(Key(start), Key(end - 1)).ToArray();
        foreach (var l in inside)
        {
            if (_leaves.Remove(l)) _pages[l.Level]--;
        }
    }

    /// <summary>The leaf with the largest start ≤ <paramref name="gfn"/> (O(log n): a view's Max walks the tree).</summary>
    private MmuLeaf? LastStartingAtOrBefore(ulong gfn)
    {
        if (_leaves.Count == 0 || _leaves.Min.Gfn > gfn) return null;
        var max = _leaves.GetViewBetween(_leaves.Min, Key(gfn)).Max;
        return max.Level == 0 ? null : max;
    }

    private static MmuLeaf Key(ulong gfn) => new(gfn, MmuMappingLevel.Level4K, false, 0);
}
