// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Mm;

/// <summary>
/// The anonymous host mappings made through this emulated kernel's mmap, with their protection. Guest accesses to a
/// memslot whose userspace_addr lies in one may use the memory directly (a cached page, like KVM's mapped pfn);
/// anything else goes through process_vm_readv/writev. A range leaves the table before it is unmapped, and the
/// unmap waits for running vCPUs (the MMU-notifier invalidation of kvm_mmu_notifier_invalidate_range_start).
/// </summary>
internal sealed class AnonymousMappings
{
    private readonly List<(nint Start, nint End, int Prot, bool Shared)> _ranges = [];

    /// <summary>The ranges madvise(MADV_HUGEPAGE) marked VM_HUGEPAGE (and MADV_NOHUGEPAGE has not unmarked since).</summary>
    private readonly List<(nint Start, nint End)> _hugeAdvised = [];

    /// <summary>Records a new anonymous mapping; <paramref name="shared"/>: MAP_SHARED (shmem-backed).</summary>
    public void Add(nint start, ulong length, int prot, bool shared = false) => _ranges.Add((start, start + (nint)length, prot, shared));

    /// <summary>Drops [start, start+length) from the table; returns whether any tracked range overlapped it.</summary>
    public bool Remove(nint start, ulong length)
    {
        nint end = start + (nint)length;
        bool any = false;
        for (int i = _ranges.Count - 1; i >= 0; i--)
        {
            var r = _ranges[i];
            if (r.End <= start || r.Start >= end) continue;
            any = true;
            _ranges.RemoveAt(i);
            if (r.Start < start) _ranges.Add((r.Start, start, r.Prot, r.Shared));
            if (r.End > end) _ranges.Add((end, r.End, r.Prot, r.Shared));
        }
        ClipAdvice(start, end);
        return any;
    }

    /// <summary>
    /// mm/khugepaged.c hugepage_madvise: MADV_HUGEPAGE sets VM_HUGEPAGE on [start, start+length), MADV_NOHUGEPAGE
    /// (<paramref name="on"/> false) clears it. Recorded for <see cref="PmdMappedThp"/>.
    /// </summary>
    public void AdviseHuge(nint start, ulong length, bool on)
    {
        nint end = start + (nint)length;
        ClipAdvice(start, end);
        if (on) _hugeAdvised.Add((start, end));
    }

    /// <summary>
    /// Whether the host page behind <paramref name="address"/> is modelled as a PMD-mapped transparent huge page (what
    /// arm64 get_user_mapping_size / x86 host_pfn_mapping_level read from the host's page table). The emulated host runs
    /// THP in "madvise" mode (/sys/kernel/mm/transparent_hugepage/enabled, the default here): mm/huge_memory.c
    /// do_huge_pmd_anonymous_page allocates a PMD-sized folio when thp_vma_allowable_order allows it (VM_HUGEPAGE:
    /// MADV_HUGEPAGE) and thp_vma_suitable_order finds the aligned block inside the VMA. ASSUMPTION: the allocation
    /// succeeds and nothing split the folio (the real host may fall back to small pages under fragmentation); the
    /// block must lie in one mapping made through this kernel and be advised whole. A MAP_SHARED anonymous mapping is
    /// shmem, whose THP follows /sys/kernel/mm/transparent_hugepage/shmem_enabled instead — "never" on this host (read
    /// 2026-12-06; mm/shmem.c shmem_allowable_huge_orders) — so it never has one.
    /// </summary>
    public bool PmdMappedThp(ulong address, ulong pmdSize)
    {
        nint start = (nint)(address & ~(pmdSize - 1));
        nint end = start + (nint)pmdSize;
        if (!_ranges.Any(r => r.Start <= start && end <= r.End && !r.Shared)) return false;
        long covered = 0;
        foreach (var a in _hugeAdvised)
        {
            nint s = Math.Max(a.Start, start), e = Math.Min(a.End, end);
            if (s < e) covered += e - s;
        }
        return covered == (long)pmdSize;
    }

    private void ClipAdvice(nint start, nint end)
    {
        for (int i = _hugeAdvised.Count - 1; i >= 0; i--)
        {
            var a = _hugeAdvised[i];
            if (a.End <= start || a.Start >= end) continue;
            _hugeAdvised.RemoveAt(i);
            if (a.Start < start) _hugeAdvised.Add((a.Start, start));
            if (a.End > end) _hugeAdvised.Add((end, a.End));
        }
    }

    /// <summary>Whether [address, address+length) lies in one tracked mapping readable (and writable, if asked).</summary>
    public bool Covers(nint address, ulong length, bool write)
    {
        nint end = address + (nint)length;
        foreach (var r in _ranges)
        {
            if (address < r.Start || end > r.End) continue;
            if ((r.Prot & LinuxConstants.PROT_READ) == 0) return false;
            return !write || (r.Prot & LinuxConstants.PROT_WRITE) != 0;
        }
        return false;
    }

    /// <summary>The tracked mappings that overlap [start, end), whole.</summary>
    public IEnumerable<(nint Start, nint End)> Overlapping(nint start, nint end) =>
        _ranges.Where(r => r.Start < end && start < r.End).Select(r => (r.Start, r.End));

    public void Clear()
    {
        _ranges.Clear();
        _hugeAdvised.Clear();
    }
}
