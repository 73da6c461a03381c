// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Emulation.Mmu.GuestPageTables;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// A speed-up of the long-mode page walk (instruction fetches and data accesses) that cannot change its result: not a
/// TLB. The emulator has no TLB (every access walks the tables again, X86Emulator.Execute.cs INVLPG), and this keeps
/// that behaviour: a remembered walk is reused only after re-reading every table entry it used from guest memory and
/// finding each one unchanged, so a guest or host write to a page table (with or without INVLPG) is seen at the next
/// access exactly as before. What is skipped is only work whose outcome is fixed by those entries: PageWalk64.Walk is
/// a function of (CR3, linear page, access, CR0.WP, EFER.NXE, the CPUID walk rules, the C-bit) and the entries it
/// reads, and its A/D update writes nothing when every entry already has A set and, for a write, the leaf has D set
/// (paging_tmpl.h update_accessed_dirty_bits). The entries are re-read through
/// <see cref="GuestPhysicalMemory.ReadView"/>s, which are exactly what GuestPhysicalMemory.Read copies from for a
/// cached page while kvm->mmu_invalidate_seq is unchanged; any invalidation (memslot change, punch hole, conversion,
/// munmap) ends their use. Tables outside cached memory (process_vm_readv memory) are never remembered, and a walk is
/// remembered only when its path read the same before and after it (with only its own A/D update in between).
/// 32-bit and PAE paging (X86Emulator.LegacyPaging.cs) walk as before.
/// </summary>
internal sealed partial class X86Emulator
{
    private const int RememberedWalkEntries = 16;

    // Fetches, reads and writes apart, so that code, the data it reads and a read-modify-write do not evict each other.
    private RememberedWalk[]? _fetchWalks, _readWalks, _writeWalks;

    /// <summary>One remembered successful walk: its inputs, the entries it used (A/D as it left them), its result.</summary>
    private sealed class RememberedWalk
    {
        public bool Valid;
        public ulong LinearPage, Cr3, Cbit, GpaPage;
        public PageAccess Access;
        public bool Wp, Nxe;
        public WalkRules Rules;
        public int LeafLevel;
        public long Seq;
        public readonly PathEntry[] Path = new PathEntry[5]; // by level, 4 (PML4) down to LeafLevel
    }

    /// <summary>One entry of a remembered walk's path: the view of its table page, its GPA, its value.</summary>
    private struct PathEntry
    {
        public GuestPhysicalMemory.ReadView View;
        public ulong Address, Entry;
    }

    /// <summary>
    /// TranslateAs in long mode with paging: the remembered walk when every entry it read is unchanged, else
    /// PageWalk64.Walk as always (then remembered when its path is in cached memory and was stable). Returns what
    /// TranslateAs returns: the walk's GPA, with the C-bit for a fetch.
    /// </summary>
    private ulong TranslateLong(ulong linear, PageAccess access, ulong cbit)
    {
        var cache = (access & PageAccess.Fetch) != 0 ? _fetchWalks ??= NewRememberedWalks()
            : (access & PageAccess.Write) != 0 ? _writeWalks ??= NewRememberedWalks()
            : _readWalks ??= NewRememberedWalks();
        if (RememberedStillSame(cache, linear, access, cbit) is { } hit)
            return WithFetchCbit(hit.GpaPage | (linear & 0xfff), access, cbit);
        return WalkAndRemember(cache, linear, access, cbit);
    }

    /// <summary>
    /// The remembered walk of <paramref name="linear"/>'s page in <paramref name="cache"/> when it was made with the
    /// current inputs (CR3, CR0.WP, EFER.NXE, the CPUID walk rules, the access, the C-bit) and every entry it read is
    /// unchanged in guest memory now (<see cref="StillSame"/>); null otherwise. Reads guest memory, changes nothing.
    /// </summary>
    private RememberedWalk? RememberedStillSame(RememberedWalk[] cache, ulong linear, PageAccess access, ulong cbit)
    {
        ref var sregs = ref _cpu.Sregs;
        var e = cache[(int)((linear >> 12) & (RememberedWalkEntries - 1))];
        if (e.Valid && e.LinearPage == linear >> 12 && e.Cr3 == sregs.cr3 && e.Access == access
            && e.Wp == ((sregs.cr0 & X86Consts.CR0_WP) != 0) && e.Nxe == ((sregs.efer & X86Consts.EFER_NX) != 0)
            && e.Cbit == cbit && e.Rules == CurrentWalkRules() && StillSame(e))
            return e;
        return null;
    }

    /// <summary>TranslateLong without a usable remembered walk: PageWalk64.Walk, remembered when its path allows.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong WalkAndRemember(RememberedWalk[] cache, ulong linear, PageAccess access, ulong cbit)
    {
        ulong cr3 = _cpu.Sregs.cr3;
        bool wp = (_cpu.Sregs.cr0 & X86Consts.CR0_WP) != 0, nxe = (_cpu.Sregs.efer & X86Consts.EFER_NX) != 0;
        var rules = CurrentWalkRules();
        var e = cache[(int)((linear >> 12) & (RememberedWalkEntries - 1))];
        e.Valid = false;
        Span<ulong> before = stackalloc ulong[5];
        bool stableBefore = ReadPath(cr3, linear, cbit, before, null, out int leafBefore);
        var w = PageWalk64.Walk(_mem, cr3, linear, access, wp, nxe, rules);
        if (w.TableReadFailed) throw new MemoryFaultStop(w.TableAccess);
        if (w.IsPageFault) throw new GuestFault(X86Consts.PF_VECTOR, w.PageFaultErrorCode, linear);
        Span<ulong> after = stackalloc ulong[5];
        if (stableBefore && ReadPath(cr3, linear, cbit, after, e.Path, out int leaf) && leaf == leafBefore
            && SamePathAsWalked(e, before, leaf, (access & PageAccess.Write) != 0))
        {
            e.LinearPage = linear >> 12;
            e.Cr3 = cr3;
            e.Cbit = cbit;
            e.Access = access;
            e.Wp = wp;
            e.Nxe = nxe;
            e.Rules = rules;
            e.LeafLevel = leaf;
            e.Seq = e.Path[4].View.Seq;
            e.GpaPage = w.Gpa & ~0xfffUL;
            e.Valid = true;
        }
        return WithFetchCbit(w.Gpa, access, cbit);
    }

    private static ulong WithFetchCbit(ulong gpa, PageAccess access, ulong cbit) =>
        (access & PageAccess.Fetch) != 0 ? gpa | cbit : gpa;

    private static RememberedWalk[] NewRememberedWalks()
    {
        var a = new RememberedWalk[RememberedWalkEntries];
        for (int k = 0; k < a.Length; k++) a[k] = new RememberedWalk();
        return a;
    }

    /// <summary>
    /// The walk's path re-read after it succeeded equals the one read before it with only the walk's own update added
    /// (A on every entry, D on the leaf of a write), all in one invalidation epoch: the walk used exactly these entries,
    /// and a walk of them writes nothing.
    /// </summary>
    private static bool SamePathAsWalked(RememberedWalk e, Span<ulong> before, int leaf, bool write)
    {
        for (int level = 4; level >= leaf; level--)
        {
            ulong walked = before[level] | AccessedBit | (write && level == leaf ? DirtyBit : 0);
            if (e.Path[level].Entry != walked) return false;
            if (e.Path[level].View.Seq != e.Path[4].View.Seq) return false;
        }
        return true;
    }

    /// <summary>Every entry of the remembered walk, read again from guest memory now, is the one it used.</summary>
    private bool StillSame(RememberedWalk e)
    {
        var path = e.Path;
        ref readonly var top = ref path[4];
        if (!_mem.IsCurrent(top.View) || top.View.Seq != e.Seq) return false;
        for (int level = 4; level >= e.LeafLevel; level--)
        {
            ref readonly var p = ref path[level];
            if (GuestPhysicalMemory.ReadUInt64(p.View, p.Address) != p.Entry) return false;
        }
        return true;
    }

    /// <summary>
    /// The entries PageWalk64.Walk reads for <paramref name="linear"/> (same addresses: the table from CR3 or the entry
    /// above, C-bit stripped, read with the C-bit), through read views; false when a table page is not cached or an
    /// entry is not present (the walk alone decides those cases).
    /// </summary>
    private bool ReadPath(ulong cr3, ulong linear, ulong cbit, Span<ulong> entries, PathEntry[]? path, out int leafLevel)
    {
        leafLevel = 0;
        ulong table = cr3 & AddressMask & ~cbit;
        for (int level = 4; level >= 1; level--)
        {
            int shift = 12 + 9 * (level - 1);
            ulong at = (table + ((linear >> shift) & 0x1ff) * 8) | cbit;
            if (!_mem.TryGetReadView(at, out var view)) return false;
            ulong pte = GuestPhysicalMemory.ReadUInt64(view, at);
            entries[level] = pte;
            if (path is not null) path[level] = new PathEntry { View = view, Address = at, Entry = pte };
            if ((pte & Present) == 0) return false;
            if (level == 1 || (level <= 3 && (pte & PageSizeBit) != 0))
            {
                leafLevel = level;
                return true;
            }
            table = pte & AddressMask & ~cbit;
        }
        return false;
    }
}
