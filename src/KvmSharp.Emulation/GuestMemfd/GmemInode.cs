// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.MemoryAttributes;
using KvmSharp.Emulation.Mm.Numa;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>
/// <c>struct gmem_inode</c>: the guest memory itself — size, creation flags, page cache, per-page attributes (v8) and
/// long-term pins. The page cache is a host shmem file of the same size (<see cref="GmemBacking"/>): its pages are the
/// bytes (sparse until used, zero-filled when created, freed by punch-hole), and every host mapping of the gmem file
/// maps that file, so all mappings and the guest path share the bytes. The real guest_memfd (6.18) uses order-0
/// folios; the host backing may use 2 MiB ones, so the page-cache <em>state</em> of each 4 KiB page (absent,
/// allocated, up to date) is recorded here for every path the emulator runs, never inferred from the backing's
/// residency — except for host faults through a real mapping, which the emulator cannot see (see
/// <see cref="GetPageState"/>).
/// </summary>
internal sealed class GmemInode
{
    // Per 4 KiB page, what the emulator's own paths did: fallocate (Allocated), the guest path and populate (Uptodate),
    // punch-hole (Absent).
    private readonly RangeMap<PageState> _state = new(PageState.Absent);

    // Pages a host fault may have made up to date since their last truncation: mmap-able and shared at some point
    // (INIT_SHARED at creation, or converted to shared). Only these consult the backing's residency.
    private readonly RangeMap<bool> _hostReachable = new(false);

    // Pages a populate filled (added to the TDX S-EPT / assigned in the SNP RMP), until punched out.
    private readonly RangeMap<bool> _populated = new(false);

    private readonly Dictionary<ulong, int> _pins = [];

    // struct gmem_inode's shared_policy (6.19, mpol_shared_policy_init(&gi->policy, NULL)): an interned policy id per
    // index, 0 for none (mpol_shared_policy_lookup → NULL).
    private readonly RangeMap<int> _sharedPolicy = new(0);

    // The node of each folio of the page cache (folio_nid); -1 when there is none, or when a host fault allocated it
    // unseen (see FolioNode).
    private readonly RangeMap<int> _folioNode = new(-1);

    private readonly NumaState _numa;
    private readonly bool _mempolicy;

    private GmemInode(ulong ino, long size, ulong flags, int memfd, ulong initialAttributes, NumaState numa, bool mempolicy, bool noDirectMap)
    {
        Ino = ino;
        NoDirectMap = noDirectMap;
        Size = size;
        Flags = flags;
        MemfdFd = memfd;
        _numa = numa;
        _mempolicy = mempolicy;
        Attributes = new RangeMap<ulong>(initialAttributes);
        // kvm_gmem_fault_user_mapping (6.18) serves host faults only with GUEST_MEMFD_FLAG_INIT_SHARED.
        if (SupportsMmap && InitShared) _hostReachable.Set(0, NrPages, true);
    }

    public ulong Ino { get; }

    /// <summary>i_size, fixed at creation (kvm_gmem_setattr refuses every change).</summary>
    public long Size { get; }

    /// <summary>GMEM_I(inode)->flags: the KVM_CREATE_GUEST_MEMFD flags.</summary>
    public ulong Flags { get; }

    /// <summary>The host shmem file (memfd or private tmpfs file) holding the page cache.</summary>
    public int MemfdFd { get; private set; }

    public ulong NrPages => (ulong)Size >> EmulatorConfig.PageShift;

    public bool SupportsMmap => (Flags & KvmConstants.GUEST_MEMFD_FLAG_MMAP) != 0;

    public bool InitShared => (Flags & KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED) != 0;

    /// <summary>
    /// AS_NO_DIRECT_MAP on the mapping ([PATCH v12 10/16] __kvm_gmem_create: mapping_set_no_direct_map when created with
    /// GUEST_MEMFD_FLAG_NO_DIRECT_MAP; see <see cref="GmemNoDirectMap"/>): GUP refuses every mapping of the file.
    /// </summary>
    public bool NoDirectMap { get; }

    /// <summary>
    /// [PATCH v8 01/46] the per-inode maple tree of attributes over [0, i_size/PAGE_SIZE): PRIVATE unless
    /// INIT_SHARED. Read here; changed only through <see cref="SetAttributes"/>.
    /// </summary>
    public RangeMap<ulong> Attributes { get; }

    /// <summary>
    /// Creates the inode and its backing file; -errno (EMFILE, ENOMEM …) when the host refuses.
    /// <paramref name="exactResidency"/> asks for an order-0 backing (see <see cref="GmemBacking"/>).
    /// </summary>
    public static long Create(ulong ino, long size, ulong flags, bool exactResidency, NumaState numa, bool mempolicy, bool noDirectMap, out GmemInode? inode)
    {
        inode = null;
        long fd = GmemBacking.Create(exactResidency);
        if (Err.IsError(fd)) return fd;
        long rc = HostMemory.Ftruncate((int)fd, size);
        if (Err.IsError(rc))
        {
            _ = HostMemory.Close((int)fd);
            // A size the host's shmem cannot represent; the kernel would only fail later allocations.
            return Err.ENOMEM;
        }
        ulong init = (flags & KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED) != 0 ? 0 : KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE;
        inode = new GmemInode(ino, size, flags, (int)fd, init, numa, mempolicy, noDirectMap);
        return 0;
    }

    /// <summary>The HugeTLB state (GmemHugetlb.cs) when the file was created with a HugeTLB proposal's flag, else null.</summary>
    public GmemHugetlbState? Hugetlb { get; private set; }

    /// <summary>GMEM_I(inode)->page_order: 0 for order-0 folios.</summary>
    public int PageOrder => Hugetlb?.Order ?? 0;

    /// <summary>
    /// st_blksize (1 &lt;&lt; i_blkbits): the page size, or the huge page size for HugeTLB ([RFC PATCH v2]
    /// kvm_gmem_inode_make_secure_inode: "inode->i_blkbits = ilog2(nr_pages &lt;&lt; PAGE_SHIFT)").
    /// </summary>
    public long BlockSize => (long)EmulatorConfig.PageSize << PageOrder;

    /// <summary>Attaches the HugeTLB state right after creation (KvmGmemCreate, once).</summary>
    public void AttachHugetlb(GmemHugetlbState state)
    {
        if (Hugetlb is not null) throw new InvalidOperationException("HugeTLB state attached twice");
        Hugetlb = state;
    }

    /// <summary>True when the page's current attributes make it shared (host-accessible).</summary>
    public bool IsShared(ulong index) => (Attributes.Get(index) & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0;

    /// <summary>Stores new attributes for [start, end) (the caller did the kernel's checks and invalidations).</summary>
    public void SetAttributes(ulong start, ulong end, ulong attributes)
    {
        Attributes.Set(start, end, attributes);
        // [BRANCH] kvm_gmem_convert → kvm_gmem_restructure: split / merge the huge folios touched.
        Hugetlb?.RestructurePages(start, end);
        // [PATCH v8] kvm_gmem_fault_user_mapping serves shared pages: from now on the host may fault them in.
        if (SupportsMmap && (attributes & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0) _hostReachable.Set(start, end, true);
        // [PATCH v8] a page converted to shared in place is the host's again: sev_gmem_invalidate's rmp_make_shared.
        if ((attributes & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0) Arch.SnpRmp.Invalidate(this, start, end);
    }

    /// <summary>
    /// The page-cache state of page <paramref name="index"/> as the kernel's order-0 folio would have it. Every path
    /// the emulator runs records its effect here. A host fault through a real mapping (kvm_gmem_fault_user_mapping:
    /// "if (!folio_test_uptodate) { clear_highpage; folio_mark_uptodate }") is not seen, so for pages the host could
    /// have faulted the backing's own uptodate notion answers too (SEEK_DATA skips holes and shmem folios that were
    /// fallocated but never zeroed). That is exact on an order-0 backing; on a huge one a shared neighbour of a
    /// host-touched page also reads up to date, which only VMs without an arch populate get (nothing there observes
    /// it, and the guest path skipping its zeroing writes nothing different: the page holds zeroes).
    /// </summary>
    public PageState GetPageState(ulong index)
    {
        var state = _state.Get(index);
        if (state == PageState.Uptodate || MemfdFd < 0 || !_hostReachable.Get(index)) return state;
        long offset = (long)(index << EmulatorConfig.PageShift);
        return HostMemory.Lseek(MemfdFd, offset, HostMemory.SEEK_DATA) == offset ? PageState.Uptodate : state;
    }

    /// <summary>kvm_gmem_allocate: a folio for each page of [start, end), not zeroed yet.</summary>
    public long Allocate(ulong start, ulong end)
    {
        if (Hugetlb is { } huge)
        {
            // [BRANCH] kvm_gmem_allocate → kvm_gmem_get_folio: whole huge folios from the subpool, which reserved them
            // at creation (so no ENOMEM here); the host backing is not fallocated (a 1 GiB page stays sparse).
            huge.Allocate(start, end);
            foreach (var (s, e, state) in _state.Segments(start, end).ToArray())
            {
                if (state == PageState.Absent) _state.Set(s, e, PageState.Allocated);
            }
            if (_numa.NodeCount == 1) _folioNode.Set(start, end, NumaState.LocalNode);
            return 0;
        }
        int shift = EmulatorConfig.PageShift;
        long rc = HostMemory.Fallocate(MemfdFd, 0x01 /* FALLOC_FL_KEEP_SIZE */, (long)(start << shift), (long)((end - start) << shift));
        // Folio allocation failure → ENOMEM (shmem may say ENOSPC); shmem undoes a partial fallocate.
        if (Err.IsError(rc)) return Err.ENOMEM;
        foreach (var (s, e, state) in _state.Segments(start, end).ToArray())
        {
            if (state != PageState.Absent) continue;
            // kvm_gmem_allocate → kvm_gmem_get_folio: each new folio follows the policy of its index.
            if (_numa.NodeCount == 1) _folioNode.Set(s, e, NumaState.LocalNode);
            else for (ulong i = s; i < e; i++) NoteNewFolio(i);
            _state.Set(s, e, PageState.Allocated);
        }
        return 0;
    }

    /// <summary>
    /// truncate_inode_pages_range: the folios of [start, end) are freed; their contents read as zero after. The arch
    /// invalidation (kvm_gmem_punch_hole → kvm_gmem_invalidate_begin; TDX removes the S-EPT page, SNP's
    /// sev_gmem_invalidate makes the RMP entry shared again) forgets every populate of the range.
    /// </summary>
    public void Truncate(ulong start, ulong end)
    {
        end = Math.Min(end, NrPages);
        if (start >= end) return;
        int shift = EmulatorConfig.PageShift;
        long rc = HostMemory.Fallocate(MemfdFd, 0x01 | 0x02 /* KEEP_SIZE|PUNCH_HOLE */, (long)(start << shift), (long)((end - start) << shift));
        if (Err.IsError(rc)) throw new InvalidOperationException($"host punch-hole on the gmem memfd failed: {rc}");
        _state.Set(start, end, PageState.Absent);
        // [BRANCH] merge_truncate_range: the huge folios go back to the subpool.
        Hugetlb?.Free(start, end);
        _populated.Set(start, end, false);
        Arch.SnpRmp.Invalidate(this, start, end); // kvm_gmem_free_folio → sev_gmem_invalidate: rmp_make_shared
        _folioNode.Set(start, end, -1);
        // A private page cannot be host-faulted again until it is converted back to shared.
        foreach (var (s, e, attrs) in Attributes.Segments(start, end).ToArray())
        {
            if ((attrs & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0) _hostReachable.Set(s, e, false);
        }
    }

    /// <summary>
    /// kvm_gmem_get_folio + "if (!folio_test_uptodate) { clear_highpage; folio_mark_uptodate }" for the guest path:
    /// writing the zero page makes the page present and up to date, exactly once per lifetime of the folio.
    /// </summary>
    public long PrepareForGuest(ulong index)
    {
        if (Hugetlb is { } huge && index < NrPages)
        {
            huge.Allocate(index, index + 1);
            ulong h = index >> huge.Order;
            if (huge.IsWhole(h))
            {
                // A whole huge folio is zeroed and marked up to date as one (folio_test_uptodate is per folio):
                // the pages not yet up to date are zeroed by a host punch (reads back as zero, O(ranges)).
                ulong s = h << huge.Order, e = Math.Min(s + huge.PagesPerHuge, NrPages);
                int shift = EmulatorConfig.PageShift;
                foreach (var (a, b, state) in _state.Segments(s, e).ToArray())
                {
                    if (state == PageState.Uptodate) continue;
                    long rc = HostMemory.Fallocate(MemfdFd, 0x01 | 0x02 /* KEEP_SIZE|PUNCH_HOLE */, (long)(a << shift), (long)((b - a) << shift));
                    if (Err.IsError(rc)) return Err.ENOMEM;
                }
                _state.Set(s, e, PageState.Uptodate);
                if (_numa.NodeCount == 1) _folioNode.Set(s, e, NumaState.LocalNode);
                return 0;
            }
        }
        if (GetPageState(index) == PageState.Uptodate) return 0;
        Span<byte> zero = stackalloc byte[EmulatorConfig.PageSize];
        zero.Clear();
        return WritePage(index, zero);
    }

    /// <summary>
    /// Writes a whole page into the page cache and marks it up to date (kvm_gmem_populate's post_populate +
    /// kvm_gmem_mark_prepared, or the guest path's zeroing). 0, or -ENOMEM with nothing recorded.
    /// </summary>
    public long WritePage(ulong index, ReadOnlySpan<byte> contents)
    {
        long rc = HostMemory.Pwrite(MemfdFd, contents, (long)(index << EmulatorConfig.PageShift));
        if (Err.IsError(rc) || rc != contents.Length) return Err.ENOMEM;
        Hugetlb?.Allocate(index, index + 1);
        NoteNewFolio(index);
        _state.Set(index, index + 1, PageState.Uptodate);
        return 0;
    }

    /// <summary>
    /// [PATCH v7 1/2] kvm_gmem_write_begin + copy + kvm_gmem_write_end for the whole pages from <paramref name="start"/>
    /// that <paramref name="contents"/> covers: kvm_gmem_get_folio (a folio per page, after the NUMA policy of its
    /// index), the bytes copied, the folio marked up to date (prepared: the next fault does not zero it). The number of
    /// pages written (a short host write stops early), or -ENOMEM when none was.
    /// </summary>
    public long WritePages(ulong start, ReadOnlySpan<byte> contents)
    {
        int shift = EmulatorConfig.PageShift;
        long rc = HostMemory.Pwrite(MemfdFd, contents, (long)(start << shift));
        if (Err.IsError(rc)) return Err.ENOMEM;
        ulong end = start + ((ulong)rc >> shift);
        if (end == start) return Err.ENOMEM;
        Hugetlb?.Allocate(start, end);
        // One node: every folio, old or new, is on node 0.
        if (_numa.NodeCount == 1) _folioNode.Set(start, end, NumaState.LocalNode);
        else for (ulong i = start; i < end; i++) NoteNewFolio(i);
        _state.Set(start, end, PageState.Uptodate);
        return (long)(end - start);
    }

    /// <summary>
    /// The policy a new folio at <paramref name="index"/> follows (kvm_gmem_get_folio, 6.19:
    /// mpol_shared_policy_lookup(&amp;GMEM_I(inode)->policy, index), null = the task's default). Before 6.19 guest_memfd
    /// allocates with filemap_grab_folio, i.e. the task's policy: null.
    /// </summary>
    public MemPolicy? PolicyAt(ulong index) => _mempolicy ? _numa.Lookup(_sharedPolicy.Get(index)) : null;

    /// <summary>The shared policy's id at <paramref name="index"/> (kvm_gmem_get_policy; 0 = none).</summary>
    public int SharedPolicyId(ulong index) => _sharedPolicy.Get(index);

    /// <summary>
    /// kvm_gmem_set_policy → mpol_set_shared_policy for [start, end): later allocations there follow
    /// <paramref name="policyId"/> (0 removes the range's policy). Existing folios stay where they are (guest_memfd
    /// folios are unmovable): those a host fault created unseen get their node from the policy in force before.
    /// </summary>
    public void SetSharedPolicy(ulong start, ulong end, int policyId)
    {
        ObserveFolios(start, end);
        _sharedPolicy.Set(start, end, policyId);
    }

    /// <summary>
    /// folio_nid of the folio at <paramref name="index"/>, or -1 when the page cache has none. A folio the emulator did
    /// not see allocated (a host fault through a mapping: kvm_gmem_fault_user_mapping → kvm_gmem_get_folio) gets the
    /// node of the policy in force now; every policy change observes the range first, so that is the policy in force
    /// when the fault happened (interleaving follows the order of observation, not of the faults).
    /// </summary>
    public int FolioNode(ulong index)
    {
        int node = _folioNode.Get(index);
        if (node >= 0 || index >= NrPages || GetPageState(index) == PageState.Absent) return node;
        NoteNewFolio(index);
        return _folioNode.Get(index);
    }

    private void ObserveFolios(ulong start, ulong end)
    {
        // One node: every folio is on node 0 whatever the policy; nothing to remember before a change.
        if (_numa.NodeCount == 1) return;
        for (ulong i = start; i < Math.Min(end, NrPages); i++) _ = FolioNode(i);
    }

    private void NoteNewFolio(ulong index)
    {
        if (_folioNode.Get(index) >= 0) return;
        _folioNode.Set(index, index + 1, _numa.AllocateNode(PolicyAt(index)));
    }

    /// <summary>Page <paramref name="index"/> was added by a populate (arch state: S-EPT entry / RMP assigned).</summary>
    public void MarkPopulated(ulong index) => _populated.Set(index, index + 1, true);

    /// <summary>Whether a populate added page <paramref name="index"/> and it was not punched out since.</summary>
    public bool IsPopulated(ulong index) => _populated.Get(index);

    /// <summary>A pin (GUP FOLL_LONGTERM stand-in) on page <paramref name="index"/>.</summary>
    public void Pin(ulong index) => _pins[index] = _pins.GetValueOrDefault(index) + 1;

    public void Unpin(ulong index)
    {
        if (!_pins.TryGetValue(index, out int n)) return;
        if (n <= 1) _pins.Remove(index);
        else _pins[index] = n - 1;
    }

    /// <summary>The lowest pinned page in [start, end) (a folio whose refcount exceeds the expected value), or null.</summary>
    public ulong? FirstPinned(ulong start, ulong end)
    {
        ulong? first = null;
        foreach (ulong index in _pins.Keys)
        {
            if (index >= start && index < end && (first is null || index < first)) first = index;
        }
        return first;
    }

    /// <summary>A kernel mapping of pages [index, index+count) for the guest path (valid while the inode lives).</summary>
    public long MapForKernel(ulong index, ulong count, out HostMapping? mapping) =>
        HostMapping.MapShared(MemfdFd, (long)(index << EmulatorConfig.PageShift), count << EmulatorConfig.PageShift, out mapping);

    /// <summary>iput of the last reference: the page cache is freed.</summary>
    public void Evict()
    {
        if (MemfdFd < 0) return;
        _ = HostMemory.Close(MemfdFd);
        MemfdFd = -1;
        _pins.Clear();
        // kvm_gmem_evict_inode / gmem_hugetlb_teardown: folios freed, the subpool's reservation returned.
        Hugetlb?.Release();
    }
}
