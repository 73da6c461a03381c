// SPDX-License-Identifier: MIT

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>
/// HugeTLB pool and restructuring invariants (GmemHugetlb.cs): for every pool, reservations ≤ nr_hugepages and the
/// pool's reserved/allocated counts equal the sums over live guest_memfd inodes (no page counted twice, none leaked
/// after release); per inode, allocated huge pages ≤ its subpool's reservation and equal to its allocated runs; and
/// an allocated huge page is whole iff all of its 4 KiB pages are private ([BRANCH] __maybe_split_fresh_folio,
/// kvm_gmem_restructure).
/// </summary>
internal static class GmemHugetlbInvariants
{
    public static void Check(EmulatedKernel kernel, IEnumerable<GmemFile> liveFiles, List<string> errors)
    {
        if (kernel.Config.GuestMemfdHugetlb == Abi.GuestMemfdHugetlbEncoding.None) return;
        var reserved = new Dictionary<int, long>();
        var allocated = new Dictionary<int, long>();
        foreach (var f in liveFiles)
        {
            if (f.GmemInode.Hugetlb is not { } h) continue;
            string name = $"guest_memfd ino {f.GmemInode.Ino}";
            if (h.Released) errors.Add($"{name} is live but its HugeTLB subpool was released");
            reserved[h.Pool.Order] = reserved.GetValueOrDefault(h.Pool.Order) + h.Reserved;
            allocated[h.Pool.Order] = allocated.GetValueOrDefault(h.Pool.Order) + h.AllocatedCount;
            if (h.AllocatedCount > h.Reserved) errors.Add($"{name} has {h.AllocatedCount} huge pages allocated but reserved {h.Reserved}");
            ulong hugePages = (ulong)f.GmemInode.Size >> (h.Order + EmulatorConfig.PageShift);
            if ((ulong)h.Reserved != hugePages) errors.Add($"{name} reserved {h.Reserved} huge pages for a {hugePages}-huge-page file");
            ulong counted = 0;
            foreach (var (s, e, split) in h.AllocatedRuns(hugePages))
            {
                counted += e - s;
                // Check each run's ends and one page inside: the runs are uniform, the attribute runs bounded.
                foreach (ulong p in new[] { s, e - 1, s + (e - s) / 2 })
                {
                    if (split == h.AllPrivate(p))
                        errors.Add($"{name} huge page {p} is {(split ? "split" : "whole")} but its pages are {(split ? "all private" : "not all private")}");
                }
            }
            if ((long)counted != h.AllocatedCount) errors.Add($"{name} counts {h.AllocatedCount} allocated huge pages, its map holds {counted}");
        }
        foreach (var pool in GmemHugetlb.AllPools(kernel))
        {
            if (pool.Reserved > pool.Total) errors.Add($"HugeTLB pool order {pool.Order}: {pool.Reserved} reserved > {pool.Total} pages");
            if (pool.Reserved != reserved.GetValueOrDefault(pool.Order))
                errors.Add($"HugeTLB pool order {pool.Order}: {pool.Reserved} reserved, live files reserve {reserved.GetValueOrDefault(pool.Order)}");
            if (pool.Allocated != allocated.GetValueOrDefault(pool.Order))
                errors.Add($"HugeTLB pool order {pool.Order}: {pool.Allocated} allocated, live files hold {allocated.GetValueOrDefault(pool.Order)}");
        }
    }
}
