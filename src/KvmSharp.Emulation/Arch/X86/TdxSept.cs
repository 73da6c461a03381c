// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Emulation.KvmMain;

namespace KvmSharp.Emulation.Arch;

/// <summary>The TDX module's view of one private 4 KiB GFN of a TD (its Secure-EPT leaf state).</summary>
internal enum SeptPageState
{
    /// <summary>No S-EPT leaf: a TD access exits with an EPT violation and KVM maps the page (TDH.MEM.PAGE.AUG).</summary>
    Free,

    /// <summary>
    /// Mapped by TDH.MEM.PAGE.AUG (vmx/tdx.c tdx_sept_set_private_spte → tdx_mem_page_aug, once the TD is runnable)
    /// and not yet accepted: the TD's accesses fault until TDG.MEM.PAGE.ACCEPT.
    /// </summary>
    Pending,

    /// <summary>Guest-accessible: added by TDH.MEM.PAGE.ADD (KVM_TDX_INIT_MEM_REGION) or accepted.</summary>
    Mapped,
}

/// <summary>
/// The S-EPT leaf states of a TD's private pages, 4 KiB granular (KVM maps TD private memory at 4 KiB here: the
/// emulator has no huge pages). A zap of a private range (conversion to shared — kvm_vm_set_mem_attributes →
/// kvm_mmu_unmap_gfn_range → tdx_sept_remove_private_spte (TDH.MEM.PAGE.REMOVE) —, a guest_memfd punch hole, memslot
/// deletion) frees the leaves, so a page converted to shared and back is PENDING again after KVM maps it anew.
/// Callers hold the kernel lock.
/// </summary>
internal static class TdxSept
{
    private static readonly ConditionalWeakTable<Kvm, Dictionary<ulong, SeptPageState>> s_pages = [];

    private static Dictionary<ulong, SeptPageState> Pages(Kvm kvm) => s_pages.GetValue(kvm, _ => []);

    public static SeptPageState State(Kvm kvm, ulong gfn) =>
        s_pages.TryGetValue(kvm, out var p) && p.TryGetValue(gfn, out var s) ? s : SeptPageState.Free;

    /// <summary>tdx_gmem_post_populate → TDH.MEM.PAGE.ADD: the page is mapped and needs no ACCEPT.</summary>
    public static void Added(Kvm kvm, ulong gfn)
    {
        if (CocoState.IsTd(kvm)) Pages(kvm)[gfn] = SeptPageState.Mapped;
    }

    /// <summary>
    /// The TD faulted on a private GFN without an S-EPT leaf: tdx_handle_ept_violation → kvm_mmu_page_fault →
    /// tdx_sept_set_private_spte. Once the TD is runnable that is TDH.MEM.PAGE.AUG: PENDING. Returns the new state.
    /// </summary>
    public static SeptPageState Map(Kvm kvm, ulong gfn)
    {
        var pages = Pages(kvm);
        if (pages.TryGetValue(gfn, out var s)) return s;
        pages[gfn] = SeptPageState.Pending;
        return SeptPageState.Pending;
    }

    /// <summary>TDG.MEM.PAGE.ACCEPT's success: PENDING → MAPPED (the module zeroes the page first: init_sept_4k_page).</summary>
    public static void Accept(Kvm kvm, ulong gfn) => Pages(kvm)[gfn] = SeptPageState.Mapped;

    /// <summary>TDH.MEM.PAGE.REMOVE of every leaf in [<paramref name="start"/>, <paramref name="end"/>) (GFNs).</summary>
    public static void Zap(Kvm kvm, ulong start, ulong end)
    {
        if (!CocoState.IsTd(kvm) || !s_pages.TryGetValue(kvm, out var pages) || pages.Count == 0) return;
        if (end - start <= (ulong)pages.Count)
        {
            for (ulong g = start; g < end; g++) pages.Remove(g);
            return;
        }
        foreach (ulong g in pages.Keys.Where(g => g >= start && g < end).ToList()) pages.Remove(g);
    }
}
