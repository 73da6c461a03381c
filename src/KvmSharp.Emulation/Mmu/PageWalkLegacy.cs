// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using static KvmSharp.Emulation.Mmu.GuestPageTables;

namespace KvmSharp.Emulation.Mmu;

/// <summary>
/// Paging outside long mode (arch/x86/kvm/mmu/paging_tmpl.h FNAME(walk_addr_generic) with PTTYPE 32 and PTTYPE
/// PTTYPE_PAE-as-64 at PT32E_ROOT_LEVEL; Intel SDM Vol. 3A 4.3 and 4.4). Same shape as <see cref="PageWalk64"/>: present
/// check, then reserved bits (P|RSVD), permissions on the leaf (U/S, R/W with CR0.WP, NX), then the accessed bit of
/// every entry walked and the dirty bit of a written leaf (FNAME(update_accessed_dirty_bits)). Linear addresses are
/// 32 bits. The PAE walk starts from the four PDPTEs cached at CR3 load time (<see cref="LoadPdptrs"/>), never
/// from memory, and neither checks nor updates them (walker->max_level is the PDE level).
/// </summary>
internal static class PageWalkLegacy
{
    /// <summary>
    /// 32-bit paging (SDM 4.3): CR3[31:12] → PDE (4 bytes) → PTE (4 bytes), or a 4 MiB page when CR4.PSE and PDE.PS
    /// (paging_tmpl.h is_last_gpte: with CR4.PSE clear, bit 7 of a PDE is ignored). No NX bit. Reserved bits
    /// (mmu.c __reset_rsvds_bits_mask, PT32_ROOT_LEVEL): none in 4 KiB entries; in a 4 MiB PDE bits 21:17, since
    /// is_cpuid_PSE36() is always true — KVM models PSE-36, so PDE bits 16:13 are physical address bits 35:32
    /// (paging_tmpl.h pse36_gfn_delta) whatever the CPU's MAXPHYADDR. With EFER.NXE a fetch fault still reports I/D
    /// (the MMU role's efer_nx is set for every paging mode: mmu.c kvm_calc_cpu_role).
    /// </summary>
    public static WalkResult Walk32(GuestPhysicalMemory mem, ulong cr3, ulong linear, PageAccess access, bool wp, bool nxe, bool pse)
    {
        uint lin = (uint)linear;
        Span<byte> raw = stackalloc byte[4];
        Span<ulong> entryGpa = stackalloc ulong[3];
        Span<ulong> entries = stackalloc ulong[3];
        ulong table = cr3 & 0xffff_f000UL;
        bool writable = true, user = true;
        for (int level = 2; level >= 1; level--)
        {
            int shift = level == 2 ? 22 : 12;
            ulong at = table + ((lin >> shift) & 0x3ff) * 4;
            var r = mem.Read(at, raw);
            if (r.Status == GpaStatus.MemoryFault) return new WalkResult(0, TableAccess: r);
            if (r.Status != GpaStatus.Done) return Fault(access, nxe, present: false);
            ulong pte = BinaryPrimitives.ReadUInt32LittleEndian(raw);
            entryGpa[level] = at;
            entries[level] = pte;
            if ((pte & Present) == 0) return Fault(access, nxe, present: false);
            bool large = level == 2 && pse && (pte & PageSizeBit) != 0;
            // mmu.c __reset_rsvds_bits_mask PT32_ROOT_LEVEL: rsvd_bits(17, 21) in a PSE-36 4 MiB PDE, nothing else.
            if (large && (pte & 0x3e_0000UL) != 0) return new WalkResult(0, ErrorBits(access, nxe) | PfPresent | PfReserved);
            writable &= (pte & Writable) != 0;
            user &= (pte & UserBit) != 0;
            if (level == 2 && !large)
            {
                table = pte & 0xffff_f000UL;
                continue;
            }
            if (Denied(access, user, writable, noExec: false, wp)) return Fault(access, nxe, present: true);
            UpdateAccessedDirty(mem, entryGpa, entries, 2, level, (access & PageAccess.Write) != 0, entryBytes: 4);
            if (!large) return new WalkResult((pte & 0xffff_f000UL) | (lin & 0xfffU));
            // paging_tmpl.h gpte_to_gfn_lvl + pse36_gfn_delta: PDE[31:22] and PDE[16:13] as bits 35:32.
            ulong frame = (pte & 0xffc0_0000UL) | (((pte >> 13) & 0xf) << 32);
            return new WalkResult(frame | (lin & 0x3f_ffffU));
        }
        return Fault(access, nxe, present: false);
    }

    /// <summary>
    /// PAE paging (SDM 4.4): PDPTE[linear 31:30] from <paramref name="pdptrs"/> (not present → #PF; paging_tmpl.h
    /// walk_addr_generic "mmu-&gt;get_pdptr"), then 8-byte PDE (PS: 2 MiB) and PTE. Reserved bits (mmu.c
    /// __reset_rsvds_bits_mask, PT32E_ROOT_LEVEL): rsvd_bits(maxphyaddr, 62) in every PDE and PTE, bit 63 without
    /// EFER.NXE (exb_bit_rsvd), bits 20:13 of a 2 MiB PDE. NX (bit 63) with EFER.NXE forbids fetches.
    /// </summary>
    public static WalkResult WalkPae(GuestPhysicalMemory mem, ReadOnlySpan<ulong> pdptrs, ulong linear, PageAccess access, bool wp, bool nxe, int maxPhyAddr)
    {
        uint lin = (uint)linear;
        ulong pdpte = pdptrs[(int)(lin >> 30)];
        if ((pdpte & Present) == 0) return Fault(access, nxe, present: false);
        ulong rsvd = (maxPhyAddr >= 63 ? 0 : ((1UL << 63) - 1) & ~((1UL << maxPhyAddr) - 1)) | (nxe ? 0 : NoExecute);
        Span<byte> raw = stackalloc byte[8];
        Span<ulong> entryGpa = stackalloc ulong[3];
        Span<ulong> entries = stackalloc ulong[3];
        ulong table = pdpte & AddressMask;
        bool writable = true, user = true, noExec = false;
        for (int level = 2; level >= 1; level--)
        {
            int shift = level == 2 ? 21 : 12;
            ulong at = table + ((lin >> shift) & 0x1ff) * 8;
            var r = mem.Read(at, raw);
            if (r.Status == GpaStatus.MemoryFault) return new WalkResult(0, TableAccess: r);
            if (r.Status != GpaStatus.Done) return Fault(access, nxe, present: false);
            ulong pte = BinaryPrimitives.ReadUInt64LittleEndian(raw);
            entryGpa[level] = at;
            entries[level] = pte;
            if ((pte & Present) == 0) return Fault(access, nxe, present: false);
            bool large = level == 2 && (pte & PageSizeBit) != 0;
            ulong reserved = large ? rsvd | 0x1f_e000UL : rsvd;
            if ((pte & reserved) != 0) return new WalkResult(0, ErrorBits(access, nxe) | PfPresent | PfReserved);
            writable &= (pte & Writable) != 0;
            user &= (pte & UserBit) != 0;
            noExec |= nxe && (pte & NoExecute) != 0;
            if (level == 2 && !large)
            {
                table = pte & AddressMask;
                continue;
            }
            if (Denied(access, user, writable, noExec, wp)) return Fault(access, nxe, present: true);
            UpdateAccessedDirty(mem, entryGpa, entries, 2, level, (access & PageAccess.Write) != 0, entryBytes: 8);
            ulong pageMask = (1UL << shift) - 1;
            return new WalkResult((pte & AddressMask & ~pageMask) | (lin & pageMask));
        }
        return Fault(access, nxe, present: false);
    }

    /// <summary>
    /// x86.c load_pdptrs: the four PDPTEs at CR3[31:5] (the read ignores CR3's offset bits 11:5 being in the page:
    /// "cr3 &amp; GENMASK(11, 5)"), refused (false: the MOV to CR0/CR3/CR4 is #GP) when the table cannot be read or a
    /// present PDPTE has a bit of pdptr_rsvd_bits — vcpu->arch.reserved_gpa_bits (MAXPHYADDR to 63) | bits 8:5 | 2:1.
    /// On success the cache is replaced.
    /// </summary>
    public static bool LoadPdptrs(GuestPhysicalMemory mem, ulong cr3, ulong reservedGpaBits, Span<ulong> pdptrs)
    {
        Span<byte> raw = stackalloc byte[32];
        var r = mem.Read((cr3 & 0xffff_ffe0UL), raw);
        if (r.Status != GpaStatus.Done) return false;
        Span<ulong> loaded = stackalloc ulong[4];
        ulong rsvd = reservedGpaBits | 0x1e0UL | 0x6UL;
        for (int i = 0; i < 4; i++)
        {
            loaded[i] = BinaryPrimitives.ReadUInt64LittleEndian(raw[(i * 8)..]);
            if ((loaded[i] & Present) != 0 && (loaded[i] & rsvd) != 0) return false;
        }
        loaded.CopyTo(pdptrs);
        return true;
    }

    /// <summary>permission_fault(): user access to a supervisor page; a write to a read-only page (supervisor writes only with CR0.WP); a fetch from an NX page.</summary>
    private static bool Denied(PageAccess access, bool user, bool writable, bool noExec, bool wp)
    {
        bool isUser = (access & PageAccess.User) != 0;
        if (isUser && !user) return true;
        if ((access & PageAccess.Write) != 0 && !writable && (isUser || wp)) return true;
        return (access & PageAccess.Fetch) != 0 && noExec;
    }
}
