// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Mmu;

/// <summary>
/// One vCPU's view of guest-physical memory: the x86 TDP fault path (arch/x86/kvm/mmu/mmu.c kvm_mmu_do_page_fault →
/// kvm_mmu_faultin_pfn → kvm_mmu_faultin_pfn_gmem / __kvm_faultin_pfn) resolved per access. Guest_memfd pages are
/// reached through a kernel mapping of the bound range, cached per GFN only while kvm->mmu_invalidate_seq is
/// unchanged (every zap — punch hole, conversion, memslot deletion, gmem release — bumps it, as the kernel's
/// mmu_notifier retry does). Userspace-backed pages in anonymous memory mapped through this emulated kernel are used
/// directly and cached the same way (its munmap is the MMU notifier); any other userspace address is read and written
/// through the host's checked process_vm_readv/writev, never cached: nothing tells the emulator when it is unmapped.
/// </summary>
internal sealed class GuestPhysicalMemory : IDisposable
{
    /// <summary>
    /// TDX/SNP guests choose shared vs private per access; modeled as GPA bit 51 = shared, like TDX with a 52-bit GPAW
    /// (kvm_gfn_direct_bits: gfn_to_gpa(kvm_gfn_direct_bits()) is the shared bit, stripped before the memslot lookup).
    /// </summary>
    public const int SharedBit = 51;

    private readonly Kvm _kvm;
    private readonly Dictionary<ulong, CachedPage> _pages = [];
    private readonly Dictionary<KvmMemorySlot, HostMapping> _slotMappings = [];
    private long _seq = -1;

    public GuestPhysicalMemory(Kvm kvm) => _kvm = kvm;

    /// <summary>The dirty ring of the vCPU this view belongs to (kvm_get_running_vcpu()->dirty_ring), or null.</summary>
    public KvmDirtyRing? DirtyRing { get; set; }

    private static int PageShift => EmulatorConfig.PageShift;

    private static ulong PageMask => (ulong)EmulatorConfig.PageSize - 1;

    /// <summary>Reads <paramref name="data"/>.Length bytes at <paramref name="gpa"/> (the range stays in one page).</summary>
    public GpaResult Read(ulong gpa, Span<byte> data) => Access(gpa, data, write: false);

    /// <summary>Writes <paramref name="data"/> at <paramref name="gpa"/> (the range stays in one page).</summary>
    public GpaResult Write(ulong gpa, Span<byte> data) => Access(gpa, data, write: true);

    /// <summary>KVM_PRE_FAULT_MEMORY's kvm_tdp_map_page for one page: resolve without touching the bytes.</summary>
    public GpaResult Prefault(ulong gpa) => Access(gpa, Span<byte>.Empty, write: false);

    private GpaResult Access(ulong gpa, Span<byte> data, bool write)
    {
        DropStale();
        ulong gfn = gpa >> PageShift;
        if (_pages.TryGetValue(gfn, out var cached) && (!write || !cached.ReadOnly))
        {
            Copy(cached.Span(gpa & PageMask, data.Length), data, write);
            return GpaResult.Done;
        }
        lock (_kvm.Kernel.SyncRoot)
        {
            long seq = _kvm.MmuInvalidateSeq;
            var r = Fault(gpa, write, out var page, out ulong hva, out KvmMemorySlot? logTo);
            if (r.Status != GpaStatus.Done) return r;
            if (page is CachedPage p)
            {
                if (seq == _kvm.MmuInvalidateSeq) _pages[gfn] = p;
                Copy(p.Span(gpa & PageMask, data.Length), data, write);
                return GpaResult.Done;
            }
            if (data.IsEmpty) return GpaResult.Done;
            long rc = write ? HostMemory.WriteProcessMemory(hva, data) : HostMemory.ReadProcessMemory(hva, data);
            // __kvm_faultin_pfn could not get the page: kvm_handle_error_pfn → memory fault exit, -EFAULT (nothing
            // is logged: the page is marked dirty only once it is mapped writable).
            if (rc < 0) return GpaResult.Fault(Err.EFAULT, gpa, false);
            logTo?.MarkDirty(gpa >> PageShift, DirtyRing);
            return GpaResult.Done;
        }
    }

    /// <summary>
    /// The guest's MAXPHYADDR for reserved-bit checks: 36 without KVM_SET_CPUID2 (cpuid_query_maxphyaddr), 52 for TDX
    /// and SNP VMs, whose shared bit (<see cref="SharedBit"/>) is a GPA bit and not reserved.
    /// </summary>
    public int MaxPhyAddr => _kvm.Type is KvmConstants.KVM_X86_TDX_VM or KvmConstants.KVM_X86_SNP_VM ? 52 : X86.X86Consts.DefaultMaxPhyAddr;

    /// <summary>kvm_mmu_do_page_fault … kvm_mmu_faultin_pfn for a TDP (direct) MMU. Caller holds the kernel lock.</summary>
    private GpaResult Fault(ulong gpa, bool write, out CachedPage? page, out ulong hva, out KvmMemorySlot? logTo)
    {
        page = null;
        hva = 0;
        logTo = null;
        bool isPrivate;
        ulong type = _kvm.Type;
        if (type is KvmConstants.KVM_X86_TDX_VM or KvmConstants.KVM_X86_SNP_VM)
        {
            // The guest's choice: shared bit set → shared, clear → private (see SharedBit). A TD's shared bit is the
            // one KVM_TDX_INIT_VM chose (kvm->arch.gfn_direct_bits: bit 51 for GPAW 52, 47 for GPAW 48).
            ulong shared = type == KvmConstants.KVM_X86_TDX_VM && Arch.CocoState.Tdx(_kvm).SharedGpaBit is not 0 and var td
                ? td : 1UL << SharedBit;
            isPrivate = (gpa & shared) == 0;
            gpa &= ~shared;
        }
        else
        {
            // kvm_mmu_page_fault: SW_PROTECTED sets PFERR_PRIVATE_ACCESS from the gfn's current attributes.
            isPrivate = type == KvmConstants.KVM_X86_SW_PROTECTED_VM && GuestMemoryPath.MemIsPrivate(_kvm, gpa >> PageShift);
        }
        ulong gfn = gpa >> PageShift;
        // "Now that we have a snapshot of mmu_invalidate_seq we can check for a private vs. shared mismatch."
        if (isPrivate != GuestMemoryPath.MemIsPrivate(_kvm, gfn)) return GpaResult.Fault(Err.EFAULT, gpa, isPrivate);
        var slot = GuestMemoryPath.GfnToMemslot(_kvm, 0, gfn);
        if (slot is null)
        {
            // kvm_handle_noslot_fault: a private access cannot be MMIO.
            return isPrivate ? GpaResult.Fault(Err.EFAULT, gpa, true) : GpaResult.Mmio(gpa);
        }
        // [PATCH v3 05/15] __kvm_mmu_faultin_pfn: "if (kvm_do_userfault(vcpu, fault)) return -EFAULT;" before the
        // private (gmem) and shared fault-in alike, so also before a READONLY slot's write becomes MMIO. Pages already
        // cached here are mapped: like the kernel's SPTEs they do not fault again until the flag is turned on anew.
        if (slot.IsUserfault && Userfault.Check(_kvm, slot, gfn, gpa, isPrivate) is GpaResult userfault) return userfault;
        if (isPrivate || slot.GmemOnly)
        {
            // kvm_mmu_faultin_pfn_gmem.
            if (!slot.HasGmem) return GpaResult.Fault(Err.EFAULT, gpa, isPrivate);
            long r = GuestMemoryPath.GmemGetPfn(slot, gfn, out _);
            if (r != 0) return GpaResult.Fault(r, gpa, isPrivate);
            r = SlotMapping(slot, out var mapping);
            if (r != 0) return GpaResult.Fault(Err.EFAULT, gpa, isPrivate);
            page = new CachedPage(mapping!, (gfn - slot.BaseGfn) << PageShift, ReadOnly: false, Address: 0);
            return GpaResult.Done;
        }
        // __kvm_faultin_pfn through userspace_addr; a write to a KVM_MEM_READONLY slot is emulated MMIO
        // (KVM_PFN_ERR_RO_FAULT → RET_PF_EMULATE).
        if (write && (slot.Flags & KvmConstants.KVM_MEM_READONLY) != 0) return GpaResult.Mmio(gpa);
        hva = slot.UserspaceAddr + ((gfn - slot.BaseGfn) << PageShift) + (gpa & PageMask);
        // hva_to_pfn: GUP refuses a mapping of a NO_DIRECT_MAP guest_memfd ([PATCH v12 06/16]) → KVM_PFN_ERR_FAULT →
        // kvm_handle_error_pfn: memory fault exit, -EFAULT (gmem slots do not get here: kvm_gmem_get_pfn serves them).
        if (_kvm.Kernel.GupRefuses(hva)) return GpaResult.Fault(Err.EFAULT, gpa, false);
        // Anonymous memory mapped through this kernel is used directly and cached like a mapped pfn: its munmap
        // invalidates and waits for vCPUs first (EmulatedKernel.ForgetAnonymous). A dirty-logged slot is cached
        // read-only, so every write still faults here and is marked (KVM write-protects logged pages the same way).
        ulong pageHva = hva & ~PageMask;
        bool writable = (slot.Flags & KvmConstants.KVM_MEM_READONLY) == 0;
        if (_kvm.Kernel.IsDirectlyUsable((nint)pageHva, PageMask + 1, write: writable))
        {
            page = new CachedPage(null, 0, ReadOnly: !writable || slot.DirtyTrackEnabled, Address: (nint)pageHva);
            // A write fault on a dirty-logged slot (write-protected by KVM) marks the page: mark_page_dirty_in_slot
            // (with a dirty ring, a push to this vCPU's ring the first time after a reset: KvmMemorySlot.MarkDirty).
            if (write) slot.MarkDirty(gfn, DirtyRing);
        }
        else if (write)
        {
            logTo = slot; // marked once the write through process_vm_writev succeeded
        }
        return GpaResult.Done;
    }

    /// <summary>A kernel mapping of the slot's whole guest_memfd range, made once per invalidation epoch.</summary>
    private long SlotMapping(KvmMemorySlot slot, out HostMapping? mapping)
    {
        if (_slotMappings.TryGetValue(slot, out mapping)) return 0;
        long r = slot.GmemFile!.GmemInode.MapForKernel(slot.GmemPgoff, slot.NPages, out mapping);
        if (r != 0) return r;
        _slotMappings[slot] = mapping!;
        return 0;
    }

    /// <summary>Drops every cached translation when mmu_invalidate_seq moved (is_page_fault_stale).</summary>
    private void DropStale()
    {
        long seq = _kvm.MmuInvalidateSeq;
        if (seq == _seq) return;
        Clear();
        _seq = seq;
    }

    private void Clear()
    {
        _pages.Clear();
        foreach (var m in _slotMappings.Values) m.Dispose();
        _slotMappings.Clear();
    }

    private static void Copy(Span<byte> page, Span<byte> data, bool write)
    {
        if (write) data.CopyTo(page);
        else page.CopyTo(data);
    }

    public void Dispose() => Clear();

    /// <summary>A page the vCPU may use directly: a kernel mapping of guest_memfd, or this process's anonymous memory.</summary>
    private readonly record struct CachedPage(HostMapping? Mapping, ulong Offset, bool ReadOnly, nint Address)
    {
        public Span<byte> Span(ulong offsetInPage, int length) => Mapping is not null
            ? Mapping.GetSpan(Offset + offsetInPage, length)
            : HostMemory.UnownedSpan(Address + (nint)offsetInPage, length);
    }
}
