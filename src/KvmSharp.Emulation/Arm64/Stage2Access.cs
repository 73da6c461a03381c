// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Arm64;

/// <summary>How one guest access through stage 2 ended (the outcomes of kvm_handle_guest_abort).</summary>
internal enum Stage2Status
{
    /// <summary>The bytes were read or written (user_mem_abort / gmem_abort mapped the page).</summary>
    Done,

    /// <summary>No memslot, or a write to a read-only slot, by a data access: io_mem_abort.</summary>
    Mmio,

    /// <summary>
    /// An IPA at or beyond the host's IPA limit: 6.18 kvm_handle_guest_abort "Beyond sanitised PARange (which is the
    /// IPA limit)" → kvm_inject_size_fault (FSC 0, FAR = the IPA | VA[11:0]).
    /// </summary>
    InjectAbort,

    /// <summary>
    /// An IPA between the VM's IPA size and the host's limit: "Falls between the IPA range and the PARange?" →
    /// "fault_ipa |= kvm_vcpu_get_hfar(vcpu) &amp; GENMASK(11, 0); return kvm_inject_sea(vcpu, is_iabt, fault_ipa)" — an
    /// external abort (FSC 0x10) with FAR = the IPA | VA[11:0].
    /// </summary>
    InjectSeaIpa,

    /// <summary>
    /// An instruction fetch outside every memslot: 6.18 kvm_handle_guest_abort "if (is_iabt) { ret = -ENOEXEC; goto
    /// out; } … out: if (ret == -ENOEXEC) ret = kvm_inject_sea_iabt(vcpu, kvm_vcpu_get_hfar(vcpu))" — a synchronous
    /// external abort (inject_abt64: FSC = ESR_ELx_FSC_EXTABT) with FAR_EL1 = the faulting VA.
    /// </summary>
    InjectSea,

    /// <summary>KVM_RUN fails with <see cref="Stage2Result.Errno"/>; for gmem_abort with a KVM_EXIT_MEMORY_FAULT.</summary>
    Error,
}

/// <summary>
/// <see cref="Userfault"/>: the memory fault exit carries KVM_MEMORY_EXIT_FLAG_USERFAULT (KVM userfault, see
/// <see cref="Stage2Access"/>).
/// </summary>
internal readonly record struct Stage2Result(Stage2Status Status, long Errno = 0, bool MemoryFaultExit = false, bool Userfault = false)
{
    public static Stage2Result Done => new(Stage2Status.Done);
}

/// <summary>
/// The arm64 stage-2 fault path for one vCPU, resolved per access: arch/arm64/kvm/mmu.c kvm_handle_guest_abort →
/// gmem_abort (any slot with guest_memfd: kvm_slot_has_gmem) or user_mem_abort (userspace_addr). guest_memfd pages
/// are read and written through the file (kvm_gmem_get_pfn, then the folio), userspace pages through the host's
/// checked process_vm_readv/writev (anonymous memory of this kernel directly).
/// <para>The interpreter's instance (<see cref="PageCache"/>, given at construction) keeps each page it resolved in its vCPU's page cache
/// (Mmu/GuestPhysicalMemory.Stage2.cs), as the kernel keeps the stage-2 leaf the abort installed: later accesses copy
/// through the gmem inode's kernel mapping or the anonymous page, without the fault path, while
/// kvm->mmu_invalidate_seq is unchanged. Every event that changes what the fault path would decide bumps it (punch
/// hole, memslot deletion or move, gmem release, KVM_MEM_USERFAULT turned on, munmap), so a cached access does exactly
/// what the fault path would. Dirty logging turned on, GET_DIRTY_LOG and CLEAR_DIRTY_LOG zap nothing: they
/// write-protect (Kvm.WriteProtectGuestMappings, as mmu.c kvm_stage2_wp_range), and the cache turns its writable pages
/// read-only. What the fault path must see at every access is never cached: a
/// userfault slot's bitmap (pages of a KVM_MEM_USERFAULT slot always fault), a write to a READONLY slot (MMIO), a
/// write to a dirty-logged slot (the page is cached read-only, so each write asks its leaf: a write-protected leaf
/// takes the permission fault that marks it), process_vm_readv memory. Other instances (vGIC tables, PV time) are
/// unbound: kernel copies, which never cache, install no leaf and mark every write.</para>
/// <para>Dirty pages are marked where 6.18 mmu.c marks them, when a fault maps a page writable ("if (writable &amp;&amp;
/// !ret) mark_page_dirty_in_slot"), so the leaves' permissions decide what is logged: while the slot logs
/// (memslot_is_logging: a dirty bitmap) a read fault maps read-only and the first write to each 4 KiB page is marked;
/// with a dirty ring but no bitmap (no KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP) the slot does not log, so a read fault on a
/// writable host page maps it writable and is pushed to the ring, blocks stay allowed, and the other pages of a block
/// take no fault and are never pushed. Turning logging on (SetMemoryRegion.CommitArm64Logging) and a ring reset
/// (kvm_arch_mmu_enable_log_dirty_pt_masked) write-protect with or without a bitmap.</para>
/// With <see cref="EmulatorConfig.KvmUserfault"/>, a slot with KVM_MEM_USERFAULT consults its bitmap in both paths
/// (<see cref="UserfaultExit"/>).
/// </summary>
internal sealed class Stage2Access(Kvm kvm)
{
    private static ulong PageMask => (ulong)EmulatorConfig.PageSize - 1;

    private ulong _leafStart, _leafEnd;
    private long _leafSeq = -1;

    // Whether that leaf was writable, as of kvm->MmuWriteProtectSeq _leafWpSeq: only then may a write skip the lock.
    private bool _leafWritable;
    private long _leafWpSeq = -1;

    private GuestPhysicalMemory? _cache;

    /// <summary>The running vCPU's dirty ring (mark_page_dirty_in_slot pushes to it), or null.</summary>
    public KvmDirtyRing? DirtyRing { get; init; }

    /// <summary>
    /// The bound vCPU's page cache, or null: given at construction by the vCPU's interpreter instance
    /// (<c>PageCache = vcpu.Memory</c>). Resolved pages are cached in it; read views
    /// of them serve the stage-1 walk reuse and the fetch page (A64Interpreter.WalkCache.cs, A64Interpreter.FetchCache.cs).
    /// The cache lives and is disposed with the vCPU (KvmVcpu.Dispose, at VM destruction) and is only used on its thread.
    /// </summary>
    public GuestPhysicalMemory? PageCache
    {
        get => _cache;
        init => _cache = value;
    }

    /// <summary>Reads or writes <paramref name="data"/> at <paramref name="ipa"/>; the range stays in one page.</summary>
    public Stage2Result Access(ulong ipa, Span<byte> data, bool write, bool fetch)
    {
        // 6.18 kvm_handle_guest_abort (translation fault): "if (fault_ipa >= BIT_ULL(get_kvm_ipa_limit()))
        // kvm_inject_size_fault"; "if (fault_ipa >= BIT_ULL(VTCR_EL2_IPA(…vtcr)))" kvm_inject_sea.
        if (ipa >> Arch.Arm64Kvm.IpaLimit != 0) return new(Stage2Status.InjectAbort);
        if (kvm.ArchState.PhysBits < 64 && ipa >> kvm.ArchState.PhysBits != 0) return new(Stage2Status.InjectSeaIpa);
        // A page resolved earlier in this mmu_invalidate_seq epoch: its stage-2 leaf is still there (class comment).
        var cache = _cache;
        if (cache is not null && cache.TryStage2Cached(ipa, data, write)) return Stage2Result.Done;
        return Fault(ipa, data, write, fetch);
    }

    /// <summary>
    /// The rest of <see cref="Access"/>: the stage-2 fault path for an IPA within the limits that the page cache did not
    /// answer. A method of its own, not inlined, so that the cached access above does not set up this path's locals.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Stage2Result Fault(ulong ipa, Span<byte> data, bool write, bool fetch)
    {
        var cache = _cache;
        // The fault's mmu_seq snapshot, taken before the memslot lookup: a resolved page is cached only if no
        // invalidation ran since (kvm_faultin_pfn … mmu_invalidate_retry).
        long seq = cache?.Stage2FaultSeq() ?? -1;
        ulong gfn = ipa >> EmulatorConfig.PageShift;
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, gfn);
        // gfn_to_hva_memslot_prot: no slot → error hva; writable = !(flags & KVM_MEM_READONLY).
        bool writable = slot is not null && (slot.Flags & KvmConstants.KVM_MEM_READONLY) == 0;
        if (slot is null || (write && !writable))
        {
            // "The guest has put either its instructions or its page-tables somewhere it shouldn't have": an
            // instruction abort is re-injected as an SEA (kvm_inject_sea_iabt); a data abort goes to io_mem_abort.
            return fetch ? new(Stage2Status.InjectSea) : new(Stage2Status.Mmio);
        }
        int offset = (int)(ipa & PageMask);
        if (slot.HasGmem)
        {
            if (slot.IsUserfault && UserfaultExit(slot, gfn) is { } gmemUserfault) return gmemUserfault;
            // gmem_abort: kvm_gmem_get_pfn failure → kvm_prepare_memory_fault_exit(fault_ipa, PAGE_SIZE, …, false).
            long r = GuestMemoryPath.GmemGetPfn(slot, gfn, out var page);
            if (r != 0) return new(Stage2Status.Error, r, MemoryFaultExit: true);
            long n = write ? page.Write(offset, data) : page.Read(offset, data);
            if (n != data.Length) return new(Stage2Status.Error, Vfs.Err.EFAULT, MemoryFaultExit: true);
            if (cache is not null && seq >= 0 && !slot.IsUserfault)
            {
                lock (kvm.Kernel.SyncRoot) cache.CacheStage2Gmem(seq, slot, gfn, readOnly: !writable);
            }
            return MappedOrCopied(slot, gfn, 0, write);
        }
        ulong hva = slot.UserspaceAddr + ((gfn - slot.BaseGfn) << EmulatorConfig.PageShift) + (ulong)offset;
        if (slot.IsUserfault)
        {
            // user_mem_abort: "vma = vma_lookup(current->mm, hva); if (unlikely(!vma)) { …; return -EFAULT; }" comes
            // before the userfault check (mincore's ENOMEM is the hole), then kvm_do_userfault.
            Span<byte> resident = stackalloc byte[1];
            if (kvm.Kernel.Mincore((nint)(hva & ~PageMask), (ulong)EmulatorConfig.PageSize, resident) == Vfs.Err.ENOMEM)
                return new(Stage2Status.Error, Vfs.Err.EFAULT);
            if (UserfaultExit(slot, gfn) is { } userfault) return userfault;
        }
        // user_mem_abort: __kvm_faultin_pfn → is_error_noslot_pfn → -EFAULT (no memory-fault exit on arm64). The page
        // is marked dirty where the fault maps it writable (Mapped), not at every write.
        // __kvm_faultin_pfn's GUP refuses a NO_DIRECT_MAP guest_memfd mapping ([PATCH v12 06/16]): -EFAULT.
        if (kvm.Kernel.GupRefuses(hva)) return new(Stage2Status.Error, Vfs.Err.EFAULT);
        // Anonymous memory mapped through this kernel is used directly (its munmap waits for this instruction to end:
        // EmulatedKernel.ForgetAnonymous); other addresses through the checked process_vm_readv/writev.
        if (kvm.Kernel.IsDirectlyUsable((nint)hva, (ulong)data.Length, write))
        {
            var memory = HostMemory.UnownedSpan((nint)hva, data.Length);
            if (write) data.CopyTo(memory);
            else memory.CopyTo(data);
            var mapped = MappedOrCopied(slot, gfn, hva, write);
            // Cached writable only while the leaf is: a read of a page left read-only (mapped by a load while logging,
            // then logging turned off) must not let a later write skip its permission fault.
            bool leafWritable = _leafWritable && _leafWpSeq == kvm.MmuWriteProtectSeq;
            if (cache is not null && seq >= 0 && !slot.IsUserfault) CacheAnonymous(cache, seq, slot, gfn, hva & ~PageMask, writable && leafWritable);
            return mapped;
        }
        long rc = write ? HostMemory.WriteProcessMemory(hva, data) : HostMemory.ReadProcessMemory(hva, data);
        return rc == data.Length ? MappedOrCopied(slot, gfn, hva, write) : new(Stage2Status.Error, Vfs.Err.EFAULT);
    }

    /// <summary>
    /// A cache-maintenance operation by VA at <paramref name="ipa"/> (A64Interpreter.CacheMaintenance.cs). It needs only
    /// read permission at stage 2, so a page stage 2 maps (any leaf, write-protected by dirty logging or a READONLY slot
    /// included) takes no fault: Done, nothing marked. Otherwise the abort has CM = 1 and WnR = 1, which KVM takes for a
    /// write (kvm_emulate.h kvm_is_write_fault → kvm_vcpu_dabt_iswrite): kvm_handle_guest_abort "if
    /// (kvm_is_error_hva(hva) || (write_fault &amp;&amp; !writable))" → Mmio (<paramref name="outsideMemslots"/>: no
    /// slot, the instruction is skipped; a READONLY slot: io_mem_abort without ISV); else the write fault path of
    /// <see cref="Access"/> with no data moved: user_mem_abort maps the page writable and, "if (writable &amp;&amp; !ret)
    /// mark_page_dirty_in_slot", marks it dirty under dirty logging.
    /// </summary>
    public Stage2Result CacheMaintenance(ulong ipa, out bool outsideMemslots)
    {
        outsideMemslots = false;
        if (ipa >> Arch.Arm64Kvm.IpaLimit != 0) return new(Stage2Status.InjectAbort);
        if (kvm.ArchState.PhysBits < 64 && ipa >> kvm.ArchState.PhysBits != 0) return new(Stage2Status.InjectSeaIpa);
        ulong gfn = ipa >> EmulatorConfig.PageShift;
        if (gfn >= _leafStart && gfn < _leafEnd && _leafSeq == kvm.MmuInvalidateSeq) return Stage2Result.Done;
        lock (kvm.Kernel.SyncRoot)
        {
            if (MmuMappings.Lookup(kvm, gfn) is not null) return Stage2Result.Done;
        }
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, gfn);
        if (slot is null || (slot.Flags & KvmConstants.KVM_MEM_READONLY) != 0)
        {
            outsideMemslots = slot is null;
            return new(Stage2Status.Mmio);
        }
        if (slot.HasGmem)
        {
            if (slot.IsUserfault && UserfaultExit(slot, gfn) is { } gmemUserfault) return gmemUserfault;
            long r = GuestMemoryPath.GmemGetPfn(slot, gfn, out _);
            if (r != 0) return new(Stage2Status.Error, r, MemoryFaultExit: true);
            return Mapped(slot, gfn, 0, write: true);
        }
        ulong hva = slot.UserspaceAddr + ((gfn - slot.BaseGfn) << EmulatorConfig.PageShift);
        if (slot.IsUserfault)
        {
            Span<byte> resident = stackalloc byte[1];
            if (kvm.Kernel.Mincore((nint)hva, (ulong)EmulatorConfig.PageSize, resident) == Vfs.Err.ENOMEM)
                return new(Stage2Status.Error, Vfs.Err.EFAULT);
            if (UserfaultExit(slot, gfn) is { } userfault) return userfault;
        }
        if (kvm.Kernel.GupRefuses(hva)) return new(Stage2Status.Error, Vfs.Err.EFAULT);
        // __kvm_faultin_pfn(…, FOLL_WRITE): the host page must be writable. Anonymous memory of this kernel is checked
        // in place; other memory by writing its first byte back through process_vm_writev.
        if (!kvm.Kernel.IsDirectlyUsable((nint)hva, 1, write: true))
        {
            Span<byte> b = stackalloc byte[1];
            if (HostMemory.ReadProcessMemory(hva, b) != 1 || HostMemory.WriteProcessMemory(hva, b) != 1)
                return new(Stage2Status.Error, Vfs.Err.EFAULT);
        }
        // The fault maps the page writable (a write fault) and marks it dirty (Mapped).
        return Mapped(slot, gfn, hva, write: true);
    }

    /// <summary>
    /// Caches a directly usable anonymous page as GuestPhysicalMemory does for x86: only when the whole page is usable
    /// (for writes when the slot is writable), and read-only in a READONLY or dirty-logged slot, so that every write
    /// there still takes the fault path (MMIO, or the leaf's permission: a permission fault marks the page).
    /// </summary>
    private void CacheAnonymous(GuestPhysicalMemory cache, long seq, KvmMemorySlot slot, ulong gfn, ulong pageHva, bool writable)
    {
        lock (kvm.Kernel.SyncRoot)
        {
            if (!kvm.Kernel.IsDirectlyUsable((nint)pageHva, (ulong)EmulatorConfig.PageSize, writable)) return;
            cache.CacheStage2Anonymous(seq, gfn, (nint)pageHva, readOnly: !writable || slot.DirtyTrackEnabled);
        }
    }

    /// <summary>
    /// The stage-2 leaf the access used, recorded for <see cref="GuestMappingInspection"/>: a GFN no leaf maps took a
    /// fault (kvm_handle_guest_abort), which installed one at the size gmem_abort / user_mem_abort chose
    /// (<see cref="Stage2MappingSize"/>; <paramref name="hva"/> 0 for gmem), writable or not
    /// (<see cref="Stage2Permissions"/>); a <paramref name="write"/> to a read-only leaf took a permission fault
    /// (<see cref="PermissionFault"/>). The leaf this vCPU last used is remembered while kvm-&gt;mmu_invalidate_seq is
    /// unchanged (for a write: while it is writable and no write protection ran), so most accesses skip the kernel lock.
    /// </summary>
    private Stage2Result Mapped(KvmMemorySlot slot, ulong gfn, ulong hva, bool write)
    {
        if (gfn >= _leafStart && gfn < _leafEnd && _leafSeq == kvm.MmuInvalidateSeq &&
            (!write || (_leafWritable && _leafWpSeq == kvm.MmuWriteProtectSeq)))
            return Stage2Result.Done;
        lock (kvm.Kernel.SyncRoot)
        {
            long wpSeq = kvm.MmuWriteProtectSeq;
            bool writable;
            if (MmuMappings.Lookup(kvm, gfn) is not { } leaf)
            {
                int level = slot.HasGmem ? Stage2MappingSize.ForGmemAbort() : Stage2MappingSize.ForUserMemAbort(kvm, slot, hva);
                leaf = new MmuLeaf(gfn & ~((1UL << MmuMappingLevel.GfnShift(level)) - 1), level, Private: false, GmemOrder: 0);
                MmuMappings.Install(kvm, leaf);
                writable = TranslationFaultWritable(slot, hva, write);
                Stage2Permissions.Set(kvm, leaf, writable);
                // gmem_abort / user_mem_abort, once the leaf is in: "/* Mark the page dirty only if the fault is handled
                // successfully */ if (writable && !ret) mark_page_dirty_in_slot(kvm, memslot, gfn);" — a read fault
                // mapped writable too (memslot_is_logging false: a dirty ring without a bitmap). gfn is the faulting
                // page's, not the block's: transparent_hugepage_adjust aligns fault_ipa only (hugetlbfs VMAs, whose
                // block aligns gfn, are not modelled).
                if (writable) slot.MarkPageDirtyInSlot(gfn, DirtyRing);
            }
            else
            {
                writable = Stage2Permissions.IsWritable(kvm, leaf);
                if (write && !writable)
                {
                    leaf = PermissionFault(slot, leaf, gfn, hva);
                    writable = true;
                    // The permission fault's user_mem_abort maps (or relaxes) the leaf writable: the same mark.
                    slot.MarkPageDirtyInSlot(gfn, DirtyRing);
                }
            }
            (_leafStart, _leafEnd, _leafSeq) = (leaf.Gfn, leaf.End, kvm.MmuInvalidateSeq);
            (_leafWritable, _leafWpSeq) = (writable, wpSeq);
        }
        return Stage2Result.Done;
    }

    /// <summary>
    /// The guest's access went through stage 2 (<see cref="Mapped"/>); an unbound instance's is a kernel copy —
    /// kvm_read_guest / kvm_write_guest (vGIC tables, PV time) through the userspace address, no stage-2 fault, leaf or
    /// permission involved: "__kvm_write_guest_page: … r = __copy_to_user(…); if (r) return -EFAULT;
    /// mark_page_dirty_in_slot(kvm, memslot, gfn);" — every write marked.
    /// </summary>
    private Stage2Result MappedOrCopied(KvmMemorySlot slot, ulong gfn, ulong hva, bool write)
    {
        if (GuestAccess) return Mapped(slot, gfn, hva, write);
        if (write)
        {
            lock (kvm.Kernel.SyncRoot) slot.MarkPageDirtyInSlot(gfn, DirtyRing);
        }
        return Stage2Result.Done;
    }

    /// <summary>
    /// The interpreter's instance (given a <see cref="PageCache"/>): its accesses are the guest's. Unbound instances
    /// copy for the kernel (<see cref="MappedOrCopied"/>).
    /// </summary>
    private bool GuestAccess => _cache is not null;

    /// <summary>
    /// Whether a translation fault maps its leaf writable. gmem_abort: "writable = !(memslot-&gt;flags &amp;
    /// KVM_MEM_READONLY);". user_mem_abort: a READONLY slot never (gfn_to_hva_memslot_prot; a write there went to
    /// io_mem_abort); a write fault always (__kvm_faultin_pfn(FOLL_WRITE) got a writable page); a read fault "else if
    /// (logging_active &amp;&amp; !write_fault) { /* Only actually map the page as writable if this was a write fault.
    /// */ writable = false; }" — and without logging (memslot_is_logging: a dirty bitmap) only when the host page is
    /// writable (<see cref="HostPageWritable"/>).
    /// </summary>
    private bool TranslationFaultWritable(KvmMemorySlot slot, ulong hva, bool write)
    {
        if ((slot.Flags & KvmConstants.KVM_MEM_READONLY) != 0) return false;
        if (slot.HasGmem || write) return true;
        return !Stage2MappingSize.IsLogging(slot) && HostPageWritable(hva);
    }

    /// <summary>
    /// A read fault's __kvm_faultin_pfn(…, 0, &amp;writable, …): virt/kvm/kvm_main.c hva_to_pfn — hva_to_pfn_fast
    /// ("if (!((kfp-&gt;flags &amp; FOLL_WRITE) || kfp-&gt;map_writable)) return false;" … get_user_page_fast_only(hva,
    /// FOLL_WRITE)), then hva_to_pfn_slow's "/* map read fault as writable if possible */ if (!(flags &amp; FOLL_WRITE)
    /// &amp;&amp; kfp-&gt;map_writable &amp;&amp; get_user_page_fast_only(kfp-&gt;hva, FOLL_WRITE, &amp;wpage))": writable
    /// only when GUP-fast finds a present, writable host PTE. Modelled as: a writable mapping of this kernel (a read
    /// through process_vm_readv memory: no) whose page the host has present (move_pages: a node) — not absent (the
    /// read fault maps the zero page, -ENOENT before it) and not the zero page (-EFAULT), whose PTE is read-only.
    /// ASSUMPTION: a present page of a writable private mapping has a writable PTE (no CoW after fork, no KSM); if
    /// move_pages itself fails (seccomp), the mapping's protection decides.
    /// </summary>
    private bool HostPageWritable(ulong hva)
    {
        ulong page = hva & ~PageMask;
        if (!kvm.Kernel.IsDirectlyUsable((nint)page, (ulong)EmulatorConfig.PageSize, write: true)) return false;
        long status = HostMemory.PageStatus((nint)page);
        return status >= 0 || (status != Vfs.Err.ENOENT && status != Vfs.Err.EFAULT);
    }

    /// <summary>
    /// A write to a present, read-only leaf (write-protected by dirty logging, or mapped by a read while logging):
    /// kvm_handle_guest_abort → user_mem_abort(…, fault_is_perm = true) with fault_granule = the leaf's size. "if
    /// (fault_is_perm &amp;&amp; vma_pagesize == fault_granule)" kvm_pgtable_stage2_relax_perms makes the leaf writable in
    /// place; else kvm_pgtable_stage2_map installs a leaf of vma_pagesize (<see cref="Stage2MappingSize.ForPermissionFault"/>):
    /// a 4 KiB page in a write-protected block while logging (pgtable.c stage2_map_walk_leaf: "If we've run into an
    /// existing block mapping then replace it with a table. Accesses beyond 'end' that fall within the new table will be
    /// mapped lazily." — the rest of the block is unmapped), or a block over a read-only page once logging is off
    /// (stage2_map_walk_table_pre frees the table the page was in). Caller holds the kernel lock.
    /// </summary>
    private MmuLeaf PermissionFault(KvmMemorySlot slot, MmuLeaf leaf, ulong gfn, ulong hva)
    {
        int level = Stage2MappingSize.ForPermissionFault(kvm, slot, hva, leaf.Level);
        if (level != leaf.Level)
        {
            leaf = new MmuLeaf(gfn & ~((1UL << MmuMappingLevel.GfnShift(level)) - 1), level, Private: false, GmemOrder: 0);
            MmuMappings.Install(kvm, leaf);
        }
        Stage2Permissions.Set(kvm, leaf, writable: true);
        return leaf;
    }

    /// <summary>
    /// KVM userfault on arm64, null when the access may go on. user_mem_abort: "[PATCH v3 06/15] KVM: arm64: Add support
    /// for KVM userfault exits" (James Houghton, 2025-06-18): "if (kvm_do_userfault(vcpu, &amp;fault)) return -EFAULT;"
    /// after the VMA lookup, before __kvm_faultin_pfn. gmem_abort postdates v3; the check before kvm_gmem_get_pfn is
    /// the 6.18 rebase Firecracker carries ("KVM: arm64: Add support for KVM_MEM_USERFAULT",
    /// resources/hiding_ci/kernels/6.18-amazon-linux, patch 53). Both with v3's kvm_do_userfault (KvmMain/Userfault.cs):
    /// a set bit exits with gfn's page, PAGE_SIZE and the USERFAULT flag (never PRIVATE on arm64); an unreadable bitmap
    /// is a bare -EFAULT.
    /// </summary>
    private Stage2Result? UserfaultExit(KvmMemorySlot slot, ulong gfn)
    {
        if (Userfault.Check(kvm, slot, gfn, gfn << EmulatorConfig.PageShift, isPrivate: false) is not { } result) return null;
        return result.NoExit
            ? new(Stage2Status.Error, result.Errno)
            : new(Stage2Status.Error, result.Errno, MemoryFaultExit: true, Userfault: true);
    }
}

/// <summary>
/// Which arm64 stage-2 leaves of a VM (Mmu/MmuMappings.cs) are writable (KVM_PGTABLE_PROT_W): each fault sets its leaf's
/// permission (Stage2Access.Mapped), <see cref="WriteProtect"/> (kvm_stage2_wp_range) takes it away. A GFN counts only
/// while a leaf starts there: an entry left behind by a zap or a replaced leaf means nothing, and is overwritten when a
/// fault installs a leaf at that GFN again. Only the data of leaves matters here: a present leaf, writable or not, takes
/// no abort for a read or a cache-maintenance operation (Stage2Access.CacheMaintenance). Callers hold the kernel lock.
/// </summary>
internal sealed class Stage2Permissions
{
    /// <summary>The GFNs of a 1 GiB block, the largest leaf: one reaching into a range starts less than this before it.</summary>
    private const ulong MaxLeafPages = 1UL << 18;

    private static readonly ConditionalWeakTable<Kvm, Stage2Permissions> Tables = [];

    private readonly SortedSet<ulong> _writable = [];
    private long _seq = -1;

    private static Stage2Permissions Of(Kvm kvm)
    {
        var t = Tables.GetValue(kvm, _ => new Stage2Permissions());
        // After an invalidation, forget entries whose leaf is gone (MmuMappings dropped it), so the set stays small.
        if (t._seq != kvm.MmuInvalidateSeq)
        {
            t._writable.RemoveWhere(g => MmuMappings.Lookup(kvm, g) is not { } l || l.Gfn != g);
            t._seq = kvm.MmuInvalidateSeq;
        }
        return t;
    }

    /// <summary>The present <paramref name="leaf"/> is writable.</summary>
    public static bool IsWritable(Kvm kvm, MmuLeaf leaf) => Of(kvm)._writable.Contains(leaf.Gfn);

    /// <summary>A fault installed <paramref name="leaf"/> (or relaxed its permissions) with this write permission.</summary>
    public static void Set(Kvm kvm, MmuLeaf leaf, bool writable)
    {
        var t = Of(kvm);
        if (writable) t._writable.Add(leaf.Gfn);
        else t._writable.Remove(leaf.Gfn);
    }

    /// <summary>
    /// kvm_stage2_wp_range → kvm_pgtable_stage2_wrprotect over GFNs [<paramref name="start"/>, <paramref name="end"/>):
    /// the leaf walker clears the write permission of every present leaf it visits, a block that only reaches into the
    /// range included (stage2_update_leaf_attrs changes the block descriptor); nothing is unmapped or split.
    /// </summary>
    public static void WriteProtect(Kvm kvm, ulong start, ulong end)
    {
        var t = Of(kvm);
        if (start >= end || t._writable.Count == 0) return;
        ulong low = start >= MaxLeafPages ? start - MaxLeafPages + 1 : 0;
        foreach (ulong gfn in t._writable.GetViewBetween(low, end - 1).ToArray())
        {
            if (MmuMappings.Lookup(kvm, gfn) is { } leaf && leaf.Gfn == gfn && leaf.End > start) t._writable.Remove(gfn);
        }
    }
}
