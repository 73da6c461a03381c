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

    /// <summary>mark_page_dirty_in_slot for a write to <paramref name="gfn"/> (vCPUs race: atomic set_bit_le).</summary>
    public void MarkDirty(ulong gfn)
    {
        ulong[]? bitmap = DirtyBitmap;
        if (bitmap is null) return;
        ulong rel = gfn - BaseGfn;
        Interlocked.Or(ref bitmap[rel / 64], 1UL << (int)(rel % 64));
    }

    public ulong EndGfn => BaseGfn + NPages;

    public bool ContainsGfn(ulong gfn) => gfn >= BaseGfn && gfn < EndGfn;
}
