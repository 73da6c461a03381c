// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>The four kinds of memslot update (include/linux/kvm_host.h enum kvm_mr_change).</summary>
internal enum MemslotChange
{
    Create,
    Delete,
    Move,
    FlagsOnly,
}

/// <summary><c>struct kvm_memory_slot</c>: a GFN range of one address space and what backs it.</summary>
internal sealed class KvmMemorySlot
{
    public KvmMemorySlot(int asId, int id, ulong baseGfn, ulong npages, uint flags, ulong userspaceAddr)
    {
        AsId = asId;
        Id = id;
        BaseGfn = baseGfn;
        NPages = npages;
        Flags = flags;
        UserspaceAddr = userspaceAddr;
    }

    public int AsId { get; }

    public int Id { get; }

    public ulong BaseGfn { get; set; }

    public ulong NPages { get; }

    /// <summary>The user-visible KVM_MEM_* flags.</summary>
    public uint Flags { get; set; }

    public ulong UserspaceAddr { get; }

    /// <summary>
    /// slot->userfault_bitmap ([PATCH v3 04/15]): the user address of one bit per page, read at fault time while
    /// <see cref="IsUserfault"/>; set from the request whenever the slot is created or changed with KVM_MEM_USERFAULT.
    /// </summary>
    public ulong UserfaultBitmap { get; set; }

    /// <summary>kvm_is_userfault_memslot() ([PATCH v3 04/15]): the slot has KVM_MEM_USERFAULT.</summary>
    public bool IsUserfault => (Flags & KvmConstants.KVM_MEM_USERFAULT) != 0;

    /// <summary>kvm_slot_has_gmem(): created with KVM_MEM_GUEST_MEMFD.</summary>
    public bool HasGmem => (Flags & KvmConstants.KVM_MEM_GUEST_MEMFD) != 0;

    /// <summary>
    /// KVM_MEMSLOT_GMEM_ONLY (set by kvm_gmem_bind when the file has GUEST_MEMFD_FLAG_MMAP): every guest fault,
    /// shared or private, is served from guest_memfd; userspace_addr is not used by the guest path.
    /// </summary>
    public bool GmemOnly { get; set; }

    /// <summary>slot->gmem.file: the bound file, or null once kvm_gmem_release() ran (guest access → EFAULT).</summary>
    public GmemFile? GmemFile { get; set; }

    /// <summary>slot->gmem.pgoff: the file page that backs <see cref="BaseGfn"/>.</summary>
    public ulong GmemPgoff { get; set; }

    /// <summary>
    /// memslot->dirty_bitmap: one bit per page, set by guest writes (mark_page_dirty_in_slot); null unless the slot
    /// has KVM_MEM_LOG_DIRTY_PAGES (kvm_prepare_memory_region).
    /// </summary>
    public ulong[]? DirtyBitmap { get; set; }

    /// <summary>kvm_dirty_bitmap_bytes(): the bitmap rounded up to whole longs.</summary>
    public ulong DirtyBitmapBytes => (NPages + 63) / 64 * 8;

    /// <summary>
    /// With a dirty ring (kvm->dirty_ring_size): one bit per page of a logging slot, set once a write fault made the
    /// page writable and pushed it to a ring, cleared when KVM_RESET_DIRTY_RINGS write-protects it again
    /// (kvm_arch_mmu_enable_log_dirty_pt_masked). Null without a ring or without KVM_MEM_LOG_DIRTY_PAGES. Read by
    /// <see cref="MarkDirty"/> only: arm64 keeps the state in its stage-2 leaves (Arm64/Stage2Access.cs).
    /// </summary>
    public ulong[]? RingWritable { get; set; }

    /// <summary>kvm_slot_dirty_track_enabled: KVM_MEM_LOG_DIRTY_PAGES.</summary>
    public bool DirtyTrackEnabled => (Flags & KvmConstants.KVM_MEM_LOG_DIRTY_PAGES) != 0;

    /// <summary>
    /// mark_page_dirty_in_slot for a write to <paramref name="gfn"/> by the running vCPU whose ring is
    /// <paramref name="ring"/> (null: the VM has no ring). With a ring the page is pushed to it — once: the write fault
    /// that makes the page writable pushes, later writes hit the writable page until a reset write-protects it —; else
    /// its bit is set in the bitmap (vCPUs race: atomic set_bit_le). The x86 model, called on every guest write (its
    /// write protection is not modelled leaf by leaf); arm64 guest accesses use <see cref="MarkPageDirtyInSlot"/>.
    /// </summary>
    public void MarkDirty(ulong gfn, KvmDirtyRing? ring = null)
    {
        if (!DirtyTrackEnabled) return;
        ulong rel = gfn - BaseGfn;
        if (ring is not null)
        {
            // "if (kvm->dirty_ring_size && vcpu) kvm_dirty_ring_push(vcpu, (as_id << 16) | id, rel_gfn)".
            if (RingWritable is ulong[] writable)
            {
                ulong bit = 1UL << (int)(rel % 64);
                if ((Interlocked.Or(ref writable[rel / 64], bit) & bit) != 0) return;
            }
        }
        MarkPageDirtyInSlot(gfn, ring);
    }

    /// <summary>
    /// kvm_main.c mark_page_dirty_in_slot itself, every call counted: "if (memslot &amp;&amp;
    /// kvm_slot_dirty_track_enabled(memslot)) { … if (kvm-&gt;dirty_ring_size &amp;&amp; vcpu) kvm_dirty_ring_push(vcpu,
    /// slot, rel_gfn); else if (memslot-&gt;dirty_bitmap) set_bit_le(rel_gfn, memslot-&gt;dirty_bitmap); }" — with a
    /// <paramref name="ring"/> (the running vCPU's) a push whether the slot has a bitmap or not. arm64 calls it where
    /// the kernel does (Arm64/Stage2Access.cs: a fault that maps the page writable), so the stage-2 permissions decide
    /// how often a page is pushed; x86 goes through <see cref="MarkDirty"/>.
    /// </summary>
    public void MarkPageDirtyInSlot(ulong gfn, KvmDirtyRing? ring)
    {
        if (!DirtyTrackEnabled) return;
        ulong rel = gfn - BaseGfn;
        if (ring is not null)
        {
            ring.Push(((uint)AsId << 16) | (uint)Id, rel);
            return;
        }
        ulong[]? bitmap = DirtyBitmap;
        if (bitmap is null) return;
        Interlocked.Or(ref bitmap[rel / 64], 1UL << (int)(rel % 64));
    }

    /// <summary>
    /// kvm_arch_mmu_enable_log_dirty_pt_masked(kvm, slot, offset, mask) for a ring reset: the pages offset + i for
    /// every bit i of <paramref name="mask"/> are write-protected again, so their next guest write is pushed again.
    /// Pages past the slot (an offset that wrapped the caller's bound check) are skipped.
    /// </summary>
    public void ReprotectForRing(ulong offset, ulong mask)
    {
        if (RingWritable is not ulong[] writable) return;
        for (int i = 0; i < 64; i++)
        {
            if ((mask & (1UL << i)) == 0) continue;
            ulong page = offset + (ulong)i;
            if (page >= NPages) continue;
            Interlocked.And(ref writable[page / 64], ~(1UL << (int)(page % 64)));
        }
    }

    public ulong EndGfn => BaseGfn + NPages;

    public bool ContainsGfn(ulong gfn) => gfn >= BaseGfn && gfn < EndGfn;
}
