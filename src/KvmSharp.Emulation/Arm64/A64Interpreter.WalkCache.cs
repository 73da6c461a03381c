// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// A speed-up of the stage-1 walk (<see cref="A64Stage1"/>) that cannot change its result: not a TLB (the emulator has
/// none, A64Interpreter.Mmu.cs: a descriptor rewritten without TLBI is seen by the next access, and this keeps that).
/// As X86Emulator.WalkReuse.cs: A64Stage1.Translate is a function of its inputs — the VA, the access, EL0 or EL1,
/// PSTATE.PAN's effect, TCR_EL1, the selected TTBRn_EL1 (ASID included), SCTLR_EL1 (WXN), MAIR_EL1,
/// ID_AA64MMFR0_EL1 — and of the descriptors it reads, in order. A successful walk is remembered with those inputs and
/// its descriptors' IPAs and values (and its result, the leaf's GP bit included); it is reused only when every input is equal and every descriptor, read again
/// through stage 2 now, in the same order, is the value it used. So the walk would read exactly the same addresses and
/// values and decide the same: what is skipped is only the decoding of TCR_EL1 and the descriptors, and the permission
/// computation. A re-read that does not complete at stage 2 is the walk's own stage-2 fault at that descriptor (the
/// walk, reading the same earlier descriptors with the same values, reads that one next): S1Status.WalkStage2 at its
/// level, as the walk returns it. Faulting walks are not remembered. AT (A64Interpreter.Mmu.cs AddressTranslate)
/// walks as before. When every descriptor's page is in the vCPU's stage-2 page cache, the walk also keeps read views of
/// them (GuestPhysicalMemory.Stage2.cs) and re-reads through those while they are current: the same bytes
/// Stage2Access.Access would copy from those cached pages in that epoch, without the lookup (x86's walk reuse does the
/// same); otherwise it re-reads through Access.
/// </summary>
internal sealed partial class A64Interpreter
{
    private const int RememberedWalkEntries = 16;

    private static readonly int Ttbr0SysRegIndex = Arm64SysRegs.Index("TTBR0_EL1"), Ttbr1SysRegIndex = Arm64SysRegs.Index("TTBR1_EL1"),
        MairSysRegIndex = Arm64SysRegs.Index("MAIR_EL1"), Mmfr0Index = Arm64IdRegs.IndexOf("ID_AA64MMFR0_EL1");

    // Fetches, reads and writes apart, so that code, the data it reads and a read-modify-write do not evict each other.
    private RememberedWalk[]? _fetchWalks, _readWalks, _writeWalks;

    // The re-read descriptor.
    private readonly byte[] _descriptor = new byte[8];

    /// <summary>One remembered successful walk: its inputs, the descriptors it read, its result (the page's IPA, leaf level, attributes).</summary>
    private sealed class RememberedWalk
    {
        public bool Valid, El0, Pan;
        public ulong VaPage, Tcr, Ttbr, Sctlr, Mair, Mmfr0;
        public S1Path Path;
        public ulong IpaPage;
        public int Level;
        public byte Attr;
        public uint Sh;
        public bool Guarded;

        // Bumped at every walk into this entry: the fetch page (A64Interpreter.FetchCache.cs) relies on a walk it saw.
        public long Version;

        // Read views of the descriptors' pages (one per level, as S1Quads), valid together (one epoch) when HasViews.
        public bool HasViews;
        public readonly GuestPhysicalMemory.ReadView[] Views = new GuestPhysicalMemory.ReadView[4];
    }

    /// <summary>
    /// A64Stage1.Translate of <paramref name="va"/>: the remembered walk when its inputs are equal and every descriptor
    /// it read is read again unchanged, else the walk (then remembered when it succeeded).
    /// </summary>
    private S1Result TranslateStage1(ulong va, S1Access access, bool el0, bool pan)
    {
        ulong tcr = cpu.SysRegs[TcrSysRegIndex];
        ulong ttbr = cpu.SysRegs[((va >> 55) & 1) != 0 ? Ttbr1SysRegIndex : Ttbr0SysRegIndex];
        ulong sctlr = cpu.SctlrEl1, mair = cpu.SysRegs[MairSysRegIndex], mmfr0 = Arm64IdRegs.Read(cpu.IdRegs, Mmfr0Index);
        var cache = access == S1Access.Fetch ? _fetchWalks ??= NewRememberedWalks()
            : access == S1Access.Write ? _writeWalks ??= NewRememberedWalks()
            : _readWalks ??= NewRememberedWalks();
        var e = cache[(int)((va >> 12) & (RememberedWalkEntries - 1))];
        if (e.Valid && e.VaPage == va >> 12 && e.El0 == el0 && e.Pan == pan && e.Tcr == tcr && e.Ttbr == ttbr
            && e.Sctlr == sctlr && e.Mair == mair && e.Mmfr0 == mmfr0)
        {
            if (e.HasViews && memory.PageCache is { } pages && pages.IsStage2Current(e.Views[0]))
            {
                if (DescriptorsUnchanged(e)) return new(S1Status.Ok, e.IpaPage | (va & 0xfff), Level: e.Level, Attr: e.Attr, Sh: e.Sh, Guarded: e.Guarded);
                return Walk(e, va, access, el0, pan, tcr, ttbr, sctlr, mair, mmfr0);
            }
            Span<byte> raw = _descriptor;
            bool same = true;
            for (int i = 0; i < e.Path.Count; i++)
            {
                ulong at = e.Path.Ipa[i];
                var r = memory.Access(at, raw, write: false, fetch: false);
                if (r.Status != Stage2Status.Done) return new(S1Status.WalkStage2, Walk: r, WalkIpa: at, Level: e.Path.StartLevel + i);
                if (BitConverter.ToUInt64(raw) != e.Path.Desc[i])
                {
                    same = false;
                    break;
                }
            }
            if (same)
            {
                // Re-read through Access, which cached the pages again: views of this epoch for the next reuse.
                e.HasViews = TakeViews(e);
                return new(S1Status.Ok, e.IpaPage | (va & 0xfff), Level: e.Level, Attr: e.Attr, Sh: e.Sh, Guarded: e.Guarded);
            }
        }
        return Walk(e, va, access, el0, pan, tcr, ttbr, sctlr, mair, mmfr0);
    }

    /// <summary>
    /// TranslateStage1's first case alone: the remembered walk for <paramref name="va"/> when its inputs are equal and
    /// its views are current and every descriptor reads unchanged through them — the answer it would return
    /// (S1Status.Ok with the remembered page, Attr and GP bit) without building an S1Result. False: nothing was done
    /// (no walk, no descriptor read through Stage2Access, no entry changed); TranslateStage1 then decides as always.
    /// </summary>
    private bool TryReuseWalk(ulong va, S1Access access, bool el0, bool pan, out ulong ipa, out byte attr, out bool guarded)
    {
        var cache = access == S1Access.Fetch ? _fetchWalks : access == S1Access.Write ? _writeWalks : _readWalks;
        if (cache is not null)
        {
            var e = cache[(int)((va >> 12) & (RememberedWalkEntries - 1))];
            var regs = cpu.SysRegs;
            if (e.Valid && e.VaPage == va >> 12 && e.El0 == el0 && e.Pan == pan && e.HasViews && e.Tcr == regs[TcrSysRegIndex]
                && e.Ttbr == regs[((va >> 55) & 1) != 0 ? Ttbr1SysRegIndex : Ttbr0SysRegIndex] && e.Sctlr == cpu.SctlrEl1
                && e.Mair == regs[MairSysRegIndex] && e.Mmfr0 == Arm64IdRegs.Read(cpu.IdRegs, Mmfr0Index)
                && memory.PageCache is { } pages && pages.IsStage2Current(e.Views[0]) && DescriptorsUnchanged(e))
            {
                ipa = e.IpaPage | (va & 0xfff);
                attr = e.Attr;
                guarded = e.Guarded;
                return true;
            }
        }
        ipa = 0;
        attr = 0;
        guarded = false;
        return false;
    }

    /// <summary>The walk itself, remembered in <paramref name="e"/> with views of its descriptors' pages when it succeeded.</summary>
    private S1Result Walk(RememberedWalk e, ulong va, S1Access access, bool el0, bool pan, ulong tcr, ulong ttbr, ulong sctlr, ulong mair, ulong mmfr0)
    {
        e.Valid = false;
        e.Version++;
        var result = A64Stage1.Translate(cpu, memory, va, access, el0, pan, ref e.Path);
        if (result.Status == S1Status.Ok)
        {
            (e.VaPage, e.El0, e.Pan, e.Tcr, e.Ttbr, e.Sctlr, e.Mair, e.Mmfr0) = (va >> 12, el0, pan, tcr, ttbr, sctlr, mair, mmfr0);
            (e.IpaPage, e.Level, e.Attr, e.Sh, e.Guarded) = (result.Ipa & ~0xfffUL, result.Level, result.Attr, result.Sh, result.Guarded);
            e.Valid = true;
            e.HasViews = TakeViews(e);
        }
        return result;
    }

    /// <summary>
    /// Views of every descriptor's page, all of one epoch, each reading the value the walk used — or false (the walk is
    /// then re-read through Stage2Access.Access).
    /// </summary>
    private bool TakeViews(RememberedWalk e)
    {
        if (memory.PageCache is not { } pages) return false;
        for (int i = 0; i < e.Path.Count; i++)
        {
            if (!pages.TryGetStage2ReadView(e.Path.Ipa[i], out e.Views[i]) || e.Views[i].Seq != e.Views[0].Seq
                || GuestPhysicalMemory.ReadUInt64(e.Views[i], e.Path.Ipa[i]) != e.Path.Desc[i])
                return false;
        }
        return true;
    }

    /// <summary>Every descriptor, read through its current view, is the value the remembered walk used.</summary>
    private static bool DescriptorsUnchanged(RememberedWalk e)
    {
        for (int i = 0; i < e.Path.Count; i++)
        {
            if (GuestPhysicalMemory.ReadUInt64(e.Views[i], e.Path.Ipa[i]) != e.Path.Desc[i]) return false;
        }
        return true;
    }

    private static RememberedWalk[] NewRememberedWalks()
    {
        var a = new RememberedWalk[RememberedWalkEntries];
        for (int k = 0; k < a.Length; k++) a[k] = new RememberedWalk();
        return a;
    }
}
