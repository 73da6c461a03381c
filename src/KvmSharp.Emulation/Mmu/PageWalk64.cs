// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using static KvmSharp.Emulation.Mmu.GuestPageTables;

namespace KvmSharp.Emulation.Mmu;

/// <summary>What a linear access wants from the page tables (the PFERR_* bits of the error code it would raise).</summary>
[Flags]
internal enum PageAccess
{
    Read = 0,
    /// <summary>PFERR_WRITE_MASK.</summary>
    Write = 1 << 1,
    /// <summary>PFERR_USER_MASK (CPL 3).</summary>
    User = 1 << 2,
    /// <summary>PFERR_FETCH_MASK.</summary>
    Fetch = 1 << 4,
}

/// <summary>The result of a walk: a GPA, a #PF (error code), or a failed guest-physical read of a table.</summary>
internal readonly record struct WalkResult(ulong Gpa, int PageFaultErrorCode = -1, GpaResult TableAccess = default)
{
    public bool IsPageFault => PageFaultErrorCode >= 0;

    public bool TableReadFailed => TableAccess.Status == GpaStatus.MemoryFault;
}

/// <summary>
/// 4-level long-mode paging (arch/x86/kvm/mmu/paging_tmpl.h FNAME(walk_addr_generic), PTTYPE 64): PML4E → PDPTE
/// → PDE (PS: 2 MiB) → PTE (1 GiB pages need CPUID GBPAGES: reserved here). Each table entry is read through the same guest-physical path as any other
/// guest access. Present, writable (with CR0.WP, or always at CPL 3), user and NX checks. A walk that succeeds sets
/// the accessed bit of every entry it used and, for a write, the dirty bit of the leaf (FNAME(update_accessed_dirty_bits),
/// written through the guest-physical path, so a dirty-logged table page is logged as on the real kernel).
/// </summary>
internal static class PageWalk64
{
    /// <summary>
    /// mmu.c __reset_rsvds_bits_mask (PT64_ROOT_4LEVEL): the reserved bits of an entry at <paramref name="level"/>.
    /// Address bits from MAXPHYADDR to 51 everywhere (the C-bit excepted), XD without EFER.NXE; PML4E.PS always;
    /// PDPTE.PS without GBPAGES, and a 1 GiB leaf's bits 29:13 with it; a 2 MiB PDE's bits 20:13; bit 8 of a PML4E
    /// or non-leaf PDPTE for an AMD-compatible guest ("nonleaf_bit8_rsvd"). Observed on this host: each gives #PF with
    /// P|RSVD (0x9 on a read; conformance PageWalkReservedBits).
    /// </summary>
    private static ulong ReservedBits(int level, ulong pte, bool nxe, ulong aboveMaxPhyAddr, in WalkRules rules)
    {
        ulong rsvd = aboveMaxPhyAddr | (nxe ? 0 : NoExecute);
        bool large = (pte & PageSizeBit) != 0;
        ulong nonLeafBit8 = rules.AmdCompatible ? 1UL << 8 : 0;
        return level switch
        {
            4 => rsvd | PageSizeBit | nonLeafBit8,
            3 when !rules.GbPages => rsvd | PageSizeBit | nonLeafBit8,
            3 when large => rsvd | 0x3fff_e000UL,
            3 => rsvd | nonLeafBit8,
            2 when large => rsvd | 0x1f_e000UL,
            _ => rsvd,
        };
    }

    /// <summary>
    /// Walks the tables for <paramref name="linear"/>. For SEV, SEV-ES and SNP guests (<see cref="GuestPhysicalMemory.EncryptionMask"/>
    /// non-zero) the C-bit is not a reserved bit (sev.c sev_vcpu_after_set_cpuid) nor part of any table or frame address;
    /// every table is read and updated as an encrypted access (AMD APM Vol. 2, 15.34.5: guest page tables are always
    /// private), and the GPA returned carries the leaf's C-bit: the access is encrypted exactly when it is set. A CR3
    /// carrying the C-bit (legal in an SEV guest whose CPUID has leaf 0x8000001F: SregsRules.ReservedGpaBits) names the
    /// same PML4, read privately like every table.
    /// </summary>
    public static WalkResult Walk(GuestPhysicalMemory mem, ulong cr3, ulong linear, PageAccess access, bool wp, bool nxe, in WalkRules rules)
    {
        ulong cbit = mem.EncryptionMask;
        ulong table = cr3 & AddressMask & ~cbit;
        // Address bits from MAXPHYADDR to 51 are reserved at every level (the C-bit excepted).
        ulong aboveMaxPhyAddr = AddressMask & ~((1UL << rules.MaxPhyAddr) - 1) & ~cbit;
        bool writable = true, user = true, noExec = false;
        Span<byte> raw = stackalloc byte[8];
        Span<ulong> entryGpa = stackalloc ulong[5];
        Span<ulong> entries = stackalloc ulong[5];
        for (int level = 4; level >= 1; level--)
        {
            int shift = 12 + 9 * (level - 1);
            ulong index = (linear >> shift) & 0x1ff;
            ulong at = (table + index * 8) | cbit;
            var r = mem.Read(at, raw);
            if (r.Status == GpaStatus.MemoryFault) return new WalkResult(0, TableAccess: r);
            // A table with no memory behind it: the walk cannot read it (gfn_to_hva error) → #PF.
            if (r.Status != GpaStatus.Done) return Fault(access, nxe, present: false);
            ulong pte = BinaryPrimitives.ReadUInt64LittleEndian(raw);
            entryGpa[level] = at;
            entries[level] = pte;
            if ((pte & Present) == 0) return Fault(access, nxe, present: false);
            if ((pte & ReservedBits(level, pte, nxe, aboveMaxPhyAddr, rules)) != 0) return new WalkResult(0, PageFaultErrorCode: ErrorBits(access, nxe) | PfPresent | PfReserved);
            writable &= (pte & Writable) != 0;
            user &= (pte & UserBit) != 0;
            noExec |= nxe && (pte & NoExecute) != 0;
            bool leaf = level == 1 || (level <= 3 && (pte & PageSizeBit) != 0);
            if (!leaf)
            {
                table = pte & AddressMask & ~cbit;
                continue;
            }
            // permission_fault(): user access to a supervisor page; write to a read-only page (supervisor writes
            // only with CR0.WP); fetch from an NX page.
            bool isUser = (access & PageAccess.User) != 0;
            if (isUser && !user) return Fault(access, nxe, present: true);
            if ((access & PageAccess.Write) != 0 && !writable && (isUser || wp)) return Fault(access, nxe, present: true);
            if ((access & PageAccess.Fetch) != 0 && noExec) return Fault(access, nxe, present: true);
            UpdateAccessedDirty(mem, entryGpa, entries, topLevel: 4, leafLevel: level, (access & PageAccess.Write) != 0);
            ulong pageMask = (1UL << shift) - 1;
            // The frame keeps the leaf's C-bit (a 2 MiB leaf's bit 51 is above its offset bits too).
            ulong frame = pte & AddressMask & ~pageMask;
            return new WalkResult(frame | (linear & pageMask));
        }
        return Fault(access, nxe, present: false);
    }
}
