// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.KvmMain.BinaryStats;

/// <summary>
/// The x86 VM statistics pages_4k, pages_2m and pages_1g (arch/x86/kvm/x86.c kvm_vm_stats_desc: STATS_DESC_ICOUNTER
/// of kvm-&gt;stat.pages[]), which arch/x86/kvm/mmu/mmu.c kvm_update_page_stats moves by +1 when a leaf SPTE is
/// installed and -1 when one is zapped. Read from the leaves <see cref="MmuMappings"/> holds when the stats file is
/// read (the same numbers as counting each install and zap). Callers hold the kernel lock.
/// <list type="bullet">
/// <item>With TDP (<see cref="EmulatorConfig.TdpEnabled"/>): the TDP MMU's leaves at the level
/// <see cref="MmuMappingLevel.ForFault"/> chose (tdp_mmu.c handle_changed_spte → kvm_update_page_stats).</item>
/// <item>Without TDP (this host's preset: the shadow MMU): all three stay 0, as this host (kvm_pvm, Linux 6.18.44)
/// answers for every guest a VMM can run on it — it emulates each instruction of a guest that is not PVM-aware and
/// installs no leaf (probed 2026-12-06: a 64-bit guest storing to each 4 KiB page of an 8 MiB THP-backed slot left
/// pages_4k = pages_2m = pages_1g = 0 with insn_emulation = 8195; HostDeviations.KvmPvmPageStatsStayZero).
/// Upstream's shadow MMU counts its leaves too (mmu.c mmu_set_spte), capped by the guest's own page size
/// (paging_tmpl.h FNAME(page_fault): fault-&gt;max_level = walker.level): not modelled.</item>
/// </list>
/// </summary>
internal static class VmPageStats
{
    /// <summary>Writes the current counts into <paramref name="stats"/> when it is <paramref name="kvm"/>'s x86 VM stats.</summary>
    public static void Refresh(Kvm kvm, KvmStats stats)
    {
        if (!ReferenceEquals(stats, kvm.Stats)) return;
        var table = stats.Table;
        int[] slots = [table.Slot("pages_4k"), table.Slot("pages_2m"), table.Slot("pages_1g")];
        bool tdp = kvm.Kernel.Config.TdpEnabled;
        for (int i = 0; i < slots.Length; i++)
        {
            if (slots[i] < 0) continue;
            stats.Set(slots[i], tdp ? (ulong)MmuMappings.LeafCount(kvm, MmuMappingLevel.Level4K + i) : 0);
        }
    }
}
