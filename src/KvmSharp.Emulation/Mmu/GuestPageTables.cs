// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.Mmu;

/// <summary>
/// What the guest page walks share (<see cref="PageWalk64"/> for 4-level paging, <see cref="PageWalkLegacy"/> for
/// 32-bit and PAE paging): the entry bits every x86 paging mode gives the same place (SDM Vol. 3A 4.3–4.5;
/// arch/x86/kvm/mmu/paging_tmpl.h), the accessed/dirty update and the #PF error code.
/// </summary>
internal static class GuestPageTables
{
    public const ulong Present = 1UL << 0;
    public const ulong Writable = 1UL << 1;
    public const ulong UserBit = 1UL << 2;
    public const ulong AccessedBit = 1UL << 5;
    public const ulong DirtyBit = 1UL << 6;
    public const ulong PageSizeBit = 1UL << 7;
    public const ulong NoExecute = 1UL << 63;

    /// <summary>Bits 51:12 of a 64-bit (long-mode or PAE) entry: the next table or the page frame (PT64_BASE_ADDR_MASK).</summary>
    public const ulong AddressMask = 0x000f_ffff_ffff_f000UL;

    // PFERR_PRESENT_MASK, PFERR_RSVD_MASK.
    public const int PfPresent = 1 << 0;
    public const int PfReserved = 1 << 3;

    /// <summary>
    /// paging_tmpl.h FNAME(update_accessed_dirty_bits): from <paramref name="topLevel"/> down to the leaf, set A where
    /// it is clear, and D on the leaf of a write; each entry is written back with its own width
    /// (<paramref name="entryBytes"/>: 4 for 32-bit paging, 8 otherwise). A table the write cannot reach (MMIO, a
    /// read-only slot) is left as it is.
    /// </summary>
    public static void UpdateAccessedDirty(GuestPhysicalMemory mem, Span<ulong> entryGpa, Span<ulong> entries, int topLevel, int leafLevel, bool write, int entryBytes = 8)
    {
        Span<byte> raw = stackalloc byte[8];
        for (int level = topLevel; level >= leafLevel; level--)
        {
            ulong pte = entries[level];
            ulong updated = pte | AccessedBit;
            if (level == leafLevel && write) updated |= DirtyBit;
            if (updated == pte) continue;
            BinaryPrimitives.WriteUInt64LittleEndian(raw, updated);
            _ = mem.Write(entryGpa[level], raw[..entryBytes]);
        }
    }

    /// <summary>A #PF result: the access's error bits, P when the entry was present.</summary>
    public static WalkResult Fault(PageAccess access, bool nxe, bool present) =>
        new(0, PageFaultErrorCode: ErrorBits(access, nxe) | (present ? PfPresent : 0));

    /// <summary>
    /// paging_tmpl.h walk_addr_generic: I/D is reported only with EFER.NXE (or CR4.SMEP, not modelled). Observed on
    /// this host: a fetch from a not-present page gives 0x0 without NXE and 0x10 with it.
    /// </summary>
    public static int ErrorBits(PageAccess access, bool nxe) => (int)(nxe ? access : access & ~PageAccess.Fetch);
}
