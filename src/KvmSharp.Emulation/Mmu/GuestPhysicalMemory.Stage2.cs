// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Mmu;

/// <summary>
/// The same per-vCPU page cache, for the arm64 stage-2 path (Arm64/Stage2Access.cs): pages its gmem_abort /
/// user_mem_abort resolved are kept, as the kernel keeps the stage-2 leaf it installed, while kvm->mmu_invalidate_seq
/// is unchanged (every zap — punch hole, memslot deletion or move, gmem release, KVM_MEM_USERFAULT turned on, munmap
/// of anonymous memory — bumps it: <see cref="DropStale"/>), and emptied with it. Write protection without a zap
/// (dirty logging turned on, GET/CLEAR_DIRTY_LOG, KVM_RESET_DIRTY_RINGS: Kvm.WriteProtectGuestMappings) moves kvm->MmuWriteProtectSeq
/// instead, and the entries turn read-only (<see cref="TryStage2Cached"/>), as the leaves they stand for do. A slot's guest_memfd
/// range is reached through a kernel mapping made once per epoch (<see cref="Stage2Window"/>), unmapped when the cache
/// is emptied (a new epoch, or <see cref="Dispose"/> with the vCPU). The arm64 entries are kept apart
/// from x86's (<see cref="_stage2Pages"/>): arm64 refuses a write to a READONLY gmem slot (MMIO), x86 never sees one,
/// so an entry made by one path never answers the other. Only the vCPU's own thread uses the cache (KVM_RUN holds the
/// vCPU mutex; <see cref="Dispose"/> takes it too).
/// </summary>
internal sealed partial class GuestPhysicalMemory
{
    /// <summary>
    /// Where the stage-2 windows are asked to go (a hint, not MAP_FIXED): 48 TiB up, away from where the host puts the
    /// process's own mmaps (below mmap_base, top-down). The emulated kernel shares this process's address space with the
    /// guest's host process, and a window made at fault time must not fill a range that process just unmapped: the
    /// kernel's guest path makes no user mapping (user_mem_abort's vma_lookup / mincore of such a hole must still fail).
    /// </summary>
    private const long Stage2WindowBase = 0x3000_0000_0000;

    private static long s_nextWindow = Stage2WindowBase;

    private readonly Dictionary<ulong, CachedPage> _stage2Pages = [];
    private readonly Dictionary<KvmMemorySlot, (nint Address, ulong Length)> _stage2Windows = [];
    private bool _disposed;

    // The entry TryStage2Cached found last (GFN ulong.MaxValue: none): the same answer as the dictionary, without the
    // lookup, while no entry is added or replaced and the entries are not emptied (each of those forgets it).
    private ulong _stage2LastGfn = ulong.MaxValue;
    private CachedPage _stage2Last;

    // The kvm->MmuWriteProtectSeq the writable entries are current for.
    private long _stage2WpSeq;

    /// <summary>
    /// Copies <paramref name="data"/> from or to the cached page of <paramref name="ipa"/> (the range stays in one
    /// page); false (nothing copied) when the page is not cached in the current epoch, or is cached read-only and this
    /// is a write: the caller then takes the stage-2 fault path.
    /// </summary>
    public bool TryStage2Cached(ulong ipa, Span<byte> data, bool write)
    {
        DropStale();
        ulong gfn = ipa >> PageShift;
        CachedPage page;
        if (gfn == _stage2LastGfn)
        {
            page = _stage2Last;
        }
        else
        {
            if (!_stage2Pages.TryGetValue(gfn, out page)) return false;
            (_stage2LastGfn, _stage2Last) = (gfn, page);
        }
        if (write && page.ReadOnly) return false;
        if (write && _stage2WpSeq != _kvm.MmuWriteProtectSeq)
        {
            // arm64 mmu.c kvm_stage2_wp_range ran since (dirty logging turned on, KVM_GET_DIRTY_LOG,
            // KVM_CLEAR_DIRTY_LOG or KVM_RESET_DIRTY_RINGS re-protecting): the leaves stay mapped read-only, so this
            // write takes the permission fault (and mark_page_dirty_in_slot) on the fault path.
            Stage2WriteProtect();
            return false;
        }
        Copy(page.Span(ipa & PageMask, data.Length), data, write);
        return true;
    }

    /// <summary>
    /// Turns every stage-2 entry read-only (reads and the read views stay valid: the pages stay mapped) and records
    /// the write-protection epoch; the fault path caches a page writable again once it may be.
    /// </summary>
    private void Stage2WriteProtect()
    {
        _stage2WpSeq = _kvm.MmuWriteProtectSeq;
        foreach (ulong gfn in _stage2Pages.Keys.ToArray())
        {
            var page = _stage2Pages[gfn];
            if (!page.ReadOnly) _stage2Pages[gfn] = page with { ReadOnly = true };
        }
        _stage2LastGfn = ulong.MaxValue;
    }

    /// <summary>
    /// The epoch a stage-2 fault-in that may be cached starts in: kvm->mmu_invalidate_seq, read under the kernel lock
    /// before the fault (the kernel's mmu_seq snapshot); -1 when nothing may be cached (the cache already disposed, or
    /// its entries are of an older epoch that this access did not drop yet).
    /// </summary>
    public long Stage2FaultSeq()
    {
        long seq = _kvm.MmuInvalidateSeq;
        return !_disposed && seq == _seq ? seq : -1;
    }

    /// <summary>
    /// Keeps the guest_memfd page of <paramref name="gfn"/> in <paramref name="slot"/>, which gmem_abort just resolved
    /// (kvm_gmem_get_pfn succeeded, so the page is allocated, up to date and inside the file: reading or writing it
    /// through the mapping cannot raise SIGBUS), unless mmu_invalidate_seq moved since <paramref name="seq"/>
    /// (is_page_fault_stale / mmu_invalidate_retry: the fault does not install its mapping). Caller holds the kernel lock.
    /// </summary>
    public void CacheStage2Gmem(long seq, KvmMemorySlot slot, ulong gfn, bool readOnly)
    {
        if (seq < 0 || seq != _kvm.MmuInvalidateSeq || seq != _seq || _disposed) return;
        if (!Stage2Window(slot, out nint window)) return;
        _stage2LastGfn = ulong.MaxValue;
        _stage2Pages[gfn] = new CachedPage(null, 0, readOnly, window + (nint)((gfn - slot.BaseGfn) << PageShift));
    }

    /// <summary>
    /// The kernel mapping (MAP_SHARED of the gmem inode's memfd, as GmemInode.MapForKernel maps it) of the slot's whole
    /// guest_memfd range, made at the first cached page of the slot in this epoch; false when mmap fails (nothing cached).
    /// Only pages kvm_gmem_get_pfn made present are ever touched through it, so no access can raise SIGBUS.
    /// </summary>
    private bool Stage2Window(KvmMemorySlot slot, out nint window)
    {
        if (_stage2Windows.TryGetValue(slot, out var w))
        {
            window = w.Address;
            return true;
        }
        window = 0;
        var inode = slot.GmemFile!.GmemInode;
        ulong length = slot.NPages << PageShift;
        ulong span = (length + (2UL << 20) - 1) & ~((2UL << 20) - 1);
        nint hint = (nint)(Interlocked.Add(ref s_nextWindow, (long)span) - (long)span);
        long rc = HostMemory.Mmap(hint, length, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED,
            inode.MemfdFd, (long)(slot.GmemPgoff << PageShift), out window);
        if (rc < 0) return false;
        _stage2Windows[slot] = (window, length);
        return true;
    }

    /// <summary>Empties the stage-2 entries, then unmaps their windows (nothing refers to them any more).</summary>
    private void ClearStage2()
    {
        _stage2Pages.Clear();
        _stage2LastGfn = ulong.MaxValue;
        foreach (var (address, length) in _stage2Windows.Values) HostMemory.Munmap(address, length);
        _stage2Windows.Clear();
    }

    /// <summary>
    /// Keeps the page of anonymous memory at <paramref name="pageHva"/> that user_mem_abort just used directly (its
    /// munmap invalidates and waits for the vCPUs: EmulatedKernel.ForgetAnonymous); as <see cref="CacheStage2Gmem"/>.
    /// </summary>
    public void CacheStage2Anonymous(long seq, ulong gfn, nint pageHva, bool readOnly)
    {
        if (seq < 0 || seq != _kvm.MmuInvalidateSeq || seq != _seq || _disposed) return;
        _stage2LastGfn = ulong.MaxValue;
        _stage2Pages[gfn] = new CachedPage(null, 0, readOnly, pageHva);
    }

    /// <summary>
    /// A read view of the cached stage-2 page holding <paramref name="ipa"/> (as <see cref="TryGetReadView"/> for x86's
    /// entries): reading through it is the copy <see cref="TryStage2Cached"/> makes, while <see cref="IsStage2Current"/>.
    /// False when the page is not cached in the current epoch (pages of a KVM_MEM_USERFAULT slot and process_vm_readv
    /// memory never are).
    /// </summary>
    public bool TryGetStage2ReadView(ulong ipa, out ReadView view)
    {
        DropStale();
        if (_stage2Pages.TryGetValue(ipa >> PageShift, out var page))
        {
            view = new ReadView(page.Mapping, page.Offset, page.Address, _seq, ipa >> PageShift);
            return true;
        }
        view = default;
        return false;
    }

    /// <summary>
    /// True while <paramref name="view"/> (from <see cref="TryGetStage2ReadView"/>) still reads what the stage-2 path
    /// would: its epoch is the current kvm->mmu_invalidate_seq and the entries were not emptied since (a new epoch or
    /// <see cref="Dispose"/> unmaps the windows the views point into).
    /// </summary>
    public bool IsStage2Current(in ReadView view) =>
        view.IsView && view.Seq == _seq && _seq == _kvm.MmuInvalidateSeq && _stage2Pages.Count > 0;
}
