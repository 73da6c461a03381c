// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The x86 VM statistics pages_4k / pages_2m / pages_1g (arch/x86/kvm/x86.c kvm_vm_stats_desc; mmu.c
/// kvm_update_page_stats, +1 per installed leaf SPTE, -1 per zapped one) after a 64-bit guest stores one byte to each
/// 4 KiB page of a 4 MiB MAP_PRIVATE anonymous slot. With TDP (upstream; the emulator's x86 profile) the mapping
/// level is kvm_mmu_hugepage_adjust's: 2M where the host backs the slot with a PMD-mapped THP (host_pfn_mapping_level;
/// this host runs THP in "madvise" mode, so MADV_HUGEPAGE before the first touch) and the GPA and host address agree
/// modulo 2 MiB (lpage_info disallow_lpage, x86.c kvm_alloc_memslot_metadata), 4K on a dirty-logged slot
/// ("if (kvm_slot_dirty_track_enabled(slot)) return;"). This host (kvm_pvm) installs no leaf for such a guest:
/// <see cref="HostDeviations.KvmPvmPageStatsStayZero"/>.
/// </summary>
public static class HugePageStatsCases
{
    private const ulong M2 = 2UL << 20, K4 = 0x1000, Data = 0x4000_0000, Size = 2 * M2;

    private const int Pages = (int)(Size / K4);

    private enum Slot { Advised, NotAdvised, DirtyLogged, Misaligned }

    private readonly record struct PageStats(ulong P4k, ulong P2m, ulong P1g);

    private static PageStats Read(Vm vm)
    {
        using var s = vm.OpenStatistics();
        return new PageStats(s.ReadValue("pages_4k"), s.ReadValue("pages_2m"), s.ReadValue("pages_1g"));
    }

    /// <summary>
    /// Runs the storing guest over a slot made as <paramref name="kind"/> says; returns the stats after the run and
    /// after the slot was deleted.
    /// </summary>
    private static (PageStats Run, PageStats Deleted) StoreToEveryPage(CaseContext ctx, Kvm kvm, Slot kind)
    {
        using var g = LongModeGuest.Create(kvm, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, Pages);
            a.Label(ref loop);
            a.mov(__byte_ptr[rdi], 1);
            a.add(rdi, (int)K4);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        }, Data);
        for (ulong p = 0; p < Size; p += K4) g.IdentityMap(Data + p);
        using var memory = g.Vm.AllocateMemory(Size + 2 * M2);
        ulong address = (ulong)memory.Address;
        ulong aligned = ((address + M2 - 1) & ~(M2 - 1)) - address;
        // THP "madvise" mode: VM_HUGEPAGE before the first touch lets the fault allocate PMD-sized folios.
        if (kind != Slot.NotAdvised) Assert.Equal(0, ctx.Kernel.Madvise((nint)(address + aligned), Size, LinuxConstants.MADV_HUGEPAGE));
        ulong offset = kind == Slot.Misaligned ? aligned + K4 : aligned;
        var flags = kind == Slot.DirtyLogged ? MemorySlotFlags.LogDirtyPages : MemorySlotFlags.None;
        var slot = g.Vm.AddMemorySlot(1, Data, memory, offset, Size, flags);
        Assert.Equal(0UL, Read(g.Vm).P2m); // nothing is mapped at 2M before the guest runs
        var exit = g.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        Assert.Equal((byte)1, memory.Read<byte>(offset + Size - K4));
        var run = Read(g.Vm);
        slot.Dispose();
        return (run, Read(g.Vm));
    }

    [ConformanceCase("arch/x86/kvm/mmu/mmu.c kvm_update_page_stats / kvm_mmu_hugepage_adjust / host_pfn_mapping_level: a 2 MiB-aligned slot over MADV_HUGEPAGE'd anonymous memory maps 2M leaves (pages_2m 2 for 4 MiB), without MADV_HUGEPAGE, with a GPA off the host address modulo 2 MiB (lpage_info disallow_lpage) or with KVM_MEM_LOG_DIRTY_PAGES 4K leaves (pages_4k at least 1024, pages_2m 0); deleting the slot zaps them (pages_2m 0). kvm_pvm: all 0 (KvmPvmPageStatsStayZero)", Profile = EmulatedProfile.X86)]
    public static void thp_backed_slots_map_2m_leaves_unless_unadvised_misaligned_or_dirty_logged(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool kvmPvm = HostDeviations.KvmPvmPageStatsStayZero(ctx.Target.IsReal);
        // tdp_enabled: KVM_CAP_PRE_FAULT_MEMORY (x86.c: "case KVM_CAP_PRE_FAULT_MEMORY: r = tdp_enabled;", since 6.10).
        // 0 means no TDP or a release before 6.10 (which counts TDP leaves all the same): such a kernel may answer
        // like kvm_pvm (no leaf at all: the emulator's preset of this host) or with the TDP MMU's counts, checked below.
        bool saysTdp = kvm.CheckExtension(KvmCaps.KVM_CAP_PRE_FAULT_MEMORY) > 0;
        foreach (var kind in Enum.GetValues<Slot>())
        {
            var (run, deleted) = StoreToEveryPage(ctx, kvm, kind);
            if (kvmPvm || (!saysTdp && run == default && deleted == default))
            {
                // kvm_pvm emulates the guest and installs no leaf (the emulator's shadow-MMU preset answers the same:
                // X86ThpMappingLevelTests).
                Assert.Equal(new PageStats(0, 0, 0), run);
                Assert.Equal(new PageStats(0, 0, 0), deleted);
                continue;
            }
            if (kind == Slot.Advised)
            {
                // Two 2M leaves cover slot 1; the 4K leaves are slot 0's code, stack, GDT and page-table pages.
                Assert.Equal(2UL, run.P2m);
                Assert.True(run.P4k < Pages, $"{kind}: pages_4k {run.P4k}");
            }
            else
            {
                Assert.Equal(0UL, run.P2m);
                Assert.True(run.P4k >= Pages, $"{kind}: pages_4k {run.P4k} < {Pages}");
            }
            Assert.Equal(0UL, run.P1g);
            // kvm_arch_flush_shadow_memslot: the default VM's KVM_X86_QUIRK_SLOT_ZAP_ALL zaps every leaf
            // (kvm_mmu_zap_all_fast → kvm_tdp_mmu_zap_invalidated_roots), each -1.
            Assert.Equal(new PageStats(0, 0, 0), deleted);
        }
    }
}
