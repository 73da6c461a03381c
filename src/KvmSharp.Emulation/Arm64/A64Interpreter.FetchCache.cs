// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The fetch page: a speed-up of Step's fetch (Translate, then Stage2Access.Access) that cannot change its result, not
/// an instruction cache (the emulator has none: code rewritten by the guest or the host is fetched as rewritten by the
/// next fetch, as before — what is kept is a read view of the page, never instruction bytes).
/// After a fetch completed, the page it read is remembered when the vCPU's stage-2 page cache holds it
/// (GuestPhysicalMemory.Stage2.cs, a read view of that epoch) and, with the stage-1 MMU on, when the walk that translated
/// it is the fetch walk remembered with views (A64Interpreter.WalkCache.cs). A later fetch from the same VA page reads
/// the 4 bytes through that view, without Translate and without Access, only when everything either would decide from
/// is unchanged:
/// <list type="bullet">
/// <item>stage 2: the view is current (<see cref="GuestPhysicalMemory.IsStage2Current"/>: kvm->mmu_invalidate_seq is
/// the epoch it was taken in, so no punch hole, memslot deletion or move, gmem release, dirty logging or userfault
/// turned on, munmap happened since, and the page cache was not emptied or disposed): Stage2Access.Access would copy
/// from that same cached page (its IPA limit checks depend only on the IPA and the VM's fixed IPA size, and passed);
/// pages the stage-2 cache never holds (a KVM_MEM_USERFAULT slot, process_vm_readv memory) are never remembered;</item>
/// <item>stage 1 with the MMU off at the remembered fetch: SCTLR_EL1.M is still 0 (the VA is the IPA);</item>
/// <item>stage 1 with the MMU on: the remembered walk was not redone since (<see cref="RememberedWalk.Version"/>), its
/// inputs equal the current ones as TranslateStage1 compares them (EL0, TCR_EL1, the TTBRn_EL1 the VA selects,
/// SCTLR_EL1 — so M and WXN —, MAIR_EL1, ID_AA64MMFR0_EL1; PAN never applies to a fetch), its views are of the same
/// epoch, and every descriptor it read reads the same now — exactly the reuse test of TranslateStage1, so a
/// descriptor rewritten without TLBI, a new TTBR0_EL1 or an SCTLR_EL1 write is seen by the next fetch. TLBI needs no
/// action: there is no TLB, and the descriptors are re-read at every fetch.</item>
/// </list>
/// The page's guarded state (FEAT_BTI, the leaf's GP bit: A64Interpreter.Bti.cs) is remembered with it: it is part of
/// the remembered walk's result, so the same checks keep it current.
/// Anything else (another page, an exception level change, a fault) takes the full path, which remembers again.
/// </summary>
internal sealed partial class A64Interpreter
{
    // The remembered fetch page: VA page (ulong.MaxValue: none), its IPA page, the view of the stage-2 cached page, and
    // the fetch walk (null: the MMU was off) with its version.
    private ulong _fetchVaPage = ulong.MaxValue, _fetchIpaPage;
    private bool _fetchGuarded;
    private GuestPhysicalMemory.ReadView _fetchView;
    private RememberedWalk? _fetchWalk;
    private long _fetchWalkVersion;

    /// <summary>
    /// The instruction at <paramref name="pc"/> (4-byte aligned) read through the remembered fetch page, when the
    /// translation and the stage-2 access would read exactly that (class comment); false: take the full path.
    /// </summary>
    private bool TryFetchRemembered(ulong pc, out uint insn, out bool guarded)
    {
        insn = 0;
        guarded = false;
        if (pc >> 12 != _fetchVaPage || memory.PageCache is not { } pages || !pages.IsStage2Current(_fetchView)) return false;
        if (_fetchWalk is not { } e)
        {
            if (MmuOn) return false;
        }
        else if (e.Version != _fetchWalkVersion || !e.Valid || !e.HasViews || e.Views[0].Seq != _fetchView.Seq
            || e.Sctlr != cpu.SctlrEl1 || e.El0 != cpu.AtEl0 || e.Tcr != cpu.SysRegs[TcrSysRegIndex]
            || e.Ttbr != cpu.SysRegs[((pc >> 55) & 1) != 0 ? Ttbr1SysRegIndex : Ttbr0SysRegIndex]
            || e.Mair != cpu.SysRegs[MairSysRegIndex] || e.Mmfr0 != Arm64IdRegs.Read(cpu.IdRegs, Mmfr0Index)
            || !DescriptorsUnchanged(e))
        {
            return false;
        }
        ulong ipa = _fetchIpaPage | (pc & 0xfff);
        insn = BinaryPrimitives.ReadUInt32LittleEndian(_fetchView.Span(ipa & ((ulong)EmulatorConfig.PageSize - 1), 4));
        // The GP bit of the walk the page was remembered with (unchanged, as checked above); false with the MMU off.
        guarded = _fetchGuarded;
        return true;
    }

    /// <summary>
    /// Remembers the page of the fetch that just completed at <paramref name="pc"/> (IPA <paramref name="ipa"/>), when
    /// the stage-2 cache holds it and (MMU on) the fetch walk for it is remembered with views of the same epoch;
    /// otherwise forgets the remembered page.
    /// </summary>
    private void RememberFetch(ulong pc, ulong ipa, bool guarded)
    {
        _fetchVaPage = ulong.MaxValue;
        if (memory.PageCache is not { } pages || !pages.TryGetStage2ReadView(ipa, out var view)) return;
        RememberedWalk? walk = null;
        if (MmuOn)
        {
            // TranslateStage1 just left the walk for pc in its slot, with the current inputs.
            if (_fetchWalks is not { } walks) return;
            walk = walks[(int)((pc >> 12) & (RememberedWalkEntries - 1))];
            if (!walk.Valid || walk.VaPage != pc >> 12 || walk.IpaPage != (ipa & ~0xfffUL) || !walk.HasViews
                || walk.Views[0].Seq != view.Seq)
                return;
            _fetchWalkVersion = walk.Version;
        }
        (_fetchView, _fetchWalk, _fetchIpaPage, _fetchVaPage, _fetchGuarded) = (view, walk, ipa & ~0xfffUL, pc >> 12, guarded);
    }
}
