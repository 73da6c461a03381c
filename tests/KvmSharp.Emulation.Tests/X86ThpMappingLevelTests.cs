// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// x86 huge mappings of anonymous host memory (Mmu/MmuMappingLevel.cs ForHostMemoryFault, as 6.18's mmu.c
/// kvm_mmu_max_mapping_level → host_pfn_mapping_level decides it over the THP model of Mm/AnonymousMappings) and the VM
/// statistics pages_4k / pages_2m / pages_1g (KvmMain/BinaryStats/VmPageStats.cs: kvm_update_page_stats per installed
/// and zapped leaf). Faults are made with KVM_PRE_FAULT_MEMORY on the TDP profile and by a 64-bit guest on both
/// presets. Emulator only: this host (kvm_pvm) installs no leaf for such guests (HostDeviations.KvmPvmPageStatsStayZero),
/// so neither the levels nor non-zero counts can be seen there (HugePageStatsCases runs the same rules on both).
/// </summary>
public sealed class X86ThpMappingLevelTests
{
    private const ulong K4 = 0x1000, M2 = 2UL << 20, Base = 1UL << 32;

    private sealed class Setup : IDisposable
    {
        public Setup(EmulatorConfig config)
        {
            Kernel = new EmulatedKernel(config);
            Kvm = Kvm.Open(Kernel);
            Vm = Kvm.CreateVm();
            Vcpu = Vm.CreateVcpu();
        }

        public EmulatedKernel Kernel { get; }
        public Kvm Kvm { get; }
        public Vm Vm { get; }
        public KvmSharp.Vcpu Vcpu { get; }

        public void Dispose()
        {
            Vcpu.Dispose();
            Vm.Dispose();
            Kvm.Dispose();
            Kernel.Dispose();
        }
    }

    /// <summary>6 MiB of anonymous memory; returns the offset of its first 2 MiB-aligned 4 MiB, MADV_HUGEPAGE'd if asked.</summary>
    private static ulong Aligned(EmulatedKernel k, AnonymousMemory memory, bool advise)
    {
        ulong address = (ulong)memory.Address;
        ulong offset = ((address + M2 - 1) & ~(M2 - 1)) - address;
        if (advise) Assert.Equal(0, k.Madvise((nint)(address + offset), 2 * M2, LinuxConstants.MADV_HUGEPAGE));
        return offset;
    }

    private static GuestFaultMapping Mapped(EmulatedKernel k, Vm vm, ulong gpa)
    {
        long r = GuestMappingInspection.LastFault(k, vm.Handle, gpa, out var m);
        Assert.True(r == 0, $"nothing maps 0x{gpa:X} (r={r})");
        return m;
    }

    private static (ulong P4k, ulong P2m, ulong P1g) Pages(Vm vm)
    {
        using var s = vm.OpenStatistics();
        return (s.ReadValue("pages_4k"), s.ReadValue("pages_2m"), s.ReadValue("pages_1g"));
    }

    [Fact]
    public void An_aligned_thp_slot_maps_2m_leaves_counted_in_pages_2m_until_the_slot_goes()
    {
        using var s = new Setup(EmulatorConfig.X86_64());
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = Aligned(s.Kernel, memory, advise: true);
        var slot = s.Vm.AddMemorySlot(1, Base, memory, offset, 2 * M2);
        Assert.Equal((0UL, 0UL, 0UL), Pages(s.Vm));
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + M2 + 3 * K4, K4));
        // host_pfn_mapping_level: a PMD-mapped THP → PG_LEVEL_2M; lpage_info allows it (aligned alike, inside the slot).
        Assert.Equal(new GuestFaultMapping(Base + M2, 21, Private: false, GmemOrder: 0), Mapped(s.Kernel, s.Vm, Base + M2 + 3 * K4));
        Assert.Equal(Base + M2, Mapped(s.Kernel, s.Vm, Base + 2 * M2 - K4).Gpa);
        Assert.Equal((0UL, 1UL, 0UL), Pages(s.Vm));
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + 2 * M2 - K4, K4)); // already mapped by that leaf: no new one
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + 7 * K4, K4));
        Assert.Equal((0UL, 2UL, 0UL), Pages(s.Vm));
        // Deleting the slot zaps every leaf (kvm_mmu_zap_all_fast under KVM_X86_QUIRK_SLOT_ZAP_ALL), each -1.
        slot.Dispose();
        Assert.Equal((0UL, 0UL, 0UL), Pages(s.Vm));
    }

    [Fact]
    public void Memory_without_madv_hugepage_maps_4k_as_before()
    {
        using var s = new Setup(EmulatorConfig.X86_64());
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = Aligned(s.Kernel, memory, advise: false);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset, 2 * M2);
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + M2 + 3 * K4, K4));
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + M2 + 4 * K4, K4));
        // THP "madvise" mode: no VM_HUGEPAGE, no PMD-sized folio → host_pfn_mapping_level is PG_LEVEL_4K.
        Assert.Equal(new GuestFaultMapping(Base + M2 + 3 * K4, 12, Private: false, GmemOrder: 0), Mapped(s.Kernel, s.Vm, Base + M2 + 3 * K4));
        Assert.Equal((2UL, 0UL, 0UL), Pages(s.Vm));
    }

    [Fact]
    public void Madv_nohugepage_over_part_of_the_block_maps_4k()
    {
        using var s = new Setup(EmulatorConfig.X86_64());
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = Aligned(s.Kernel, memory, advise: true);
        // MADV_NOHUGEPAGE (15) clears VM_HUGEPAGE over one page of the second block (hugepage_madvise).
        Assert.Equal(0, s.Kernel.Madvise(memory.Address + (nint)(offset + M2), K4, 15));
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset, 2 * M2);
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + 3 * K4, K4));
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + M2 + 3 * K4, K4));
        Assert.Equal(21, Mapped(s.Kernel, s.Vm, Base + 3 * K4).PageShift);
        Assert.Equal(12, Mapped(s.Kernel, s.Vm, Base + M2 + 3 * K4).PageShift);
        Assert.Equal((1UL, 1UL, 0UL), Pages(s.Vm));
    }

    [Fact]
    public void Shared_anonymous_memory_is_shmem_and_maps_4k()
    {
        using var s = new Setup(EmulatorConfig.X86_64());
        using var memory = s.Vm.AllocateMemory(6 * M2, shared: true);
        ulong offset = Aligned(s.Kernel, memory, advise: true);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset, 2 * M2);
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + 3 * K4, K4));
        // MAP_SHARED|MAP_ANONYMOUS is shmem: its THP follows shmem_enabled ("never" on this host), not MADV_HUGEPAGE.
        Assert.Equal(12, Mapped(s.Kernel, s.Vm, Base + 3 * K4).PageShift);
    }

    [Fact]
    public void A_gpa_off_the_host_address_modulo_2m_maps_4k()
    {
        using var s = new Setup(EmulatorConfig.X86_64());
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = Aligned(s.Kernel, memory, advise: true);
        // userspace_addr ≡ 4 KiB, GPA ≡ 0 (mod 2 MiB): kvm_alloc_memslot_metadata sets disallow_lpage on every entry.
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset + K4, 2 * M2);
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + M2 + 3 * K4, K4));
        Assert.Equal(12, Mapped(s.Kernel, s.Vm, Base + M2 + 3 * K4).PageShift);
        Assert.Equal((1UL, 0UL, 0UL), Pages(s.Vm));
    }

    [Fact]
    public void Dirty_logging_maps_4k_and_after_it_stops_the_next_fault_maps_2m()
    {
        using var s = new Setup(EmulatorConfig.X86_64());
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = Aligned(s.Kernel, memory, advise: true);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset, 2 * M2, MemorySlotFlags.LogDirtyPages);
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + 3 * K4, K4));
        // kvm_mmu_hugepage_adjust: "if (kvm_slot_dirty_track_enabled(slot)) return;" → goal_level stays 4K.
        Assert.Equal(12, Mapped(s.Kernel, s.Vm, Base + 3 * K4).PageShift);
        Assert.Equal((1UL, 0UL, 0UL), Pages(s.Vm));
        // With logging off (KVM_MR_FLAGS_ONLY) a new fault maps 2M again. (Upstream also recovers the 4K leaves of
        // the slot in place, kvm_mmu_slot_apply_flags → kvm_mmu_recover_huge_pages: not modelled, so pages_4k is
        // not asserted here.)
        slot.SetDirtyLogging(false);
        Assert.Equal(0UL, s.Vcpu.PreFaultMemory(Base + M2 + 3 * K4, K4));
        Assert.Equal(21, Mapped(s.Kernel, s.Vm, Base + M2 + 3 * K4).PageShift);
        Assert.Equal(1UL, Pages(s.Vm).P2m);
    }

    /// <summary>A 64-bit guest stores to every 4 KiB page of a 4 MiB THP-advised slot at 1 GiB; returns the VM's page counts.</summary>
    private static (ulong P4k, ulong P2m, ulong P1g, GuestFaultMapping Leaf) GuestStores(EmulatorConfig config)
    {
        const ulong data = 0x4000_0000, size = 2 * M2;
        using var k = new EmulatedKernel(config);
        using var kvm = Kvm.Open(k);
        using var g = LongModeGuest.Create(kvm, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, (int)(size / K4));
            a.Label(ref loop);
            a.mov(__byte_ptr[rdi], 1);
            a.add(rdi, (int)K4);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        }, data);
        for (ulong p = 0; p < size; p += K4) g.IdentityMap(data + p);
        using var memory = g.Vm.AllocateMemory(size + 2 * M2);
        ulong offset = Aligned(k, memory, advise: true);
        using var slot = g.Vm.AddMemorySlot(1, data, memory, offset, size);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        var (p4k, p2m, p1g) = Pages(g.Vm);
        return (p4k, p2m, p1g, Mapped(k, g.Vm, data + M2 + 5 * K4));
    }

    [Fact]
    public void A_guest_on_the_tdp_profile_maps_the_thp_slot_with_2m_leaves()
    {
        var (p4k, p2m, p1g, leaf) = GuestStores(EmulatorConfig.X86_64());
        Assert.Equal(new GuestFaultMapping(0x4000_0000 + M2, 21, Private: false, GmemOrder: 0), leaf);
        Assert.Equal(2UL, p2m);
        Assert.Equal(0UL, p1g);
        // Slot 0's pages the guest touched: code, stack, GDT and page tables (the walk), all 4K.
        Assert.InRange(p4k, 1UL, 64UL);
    }

    [Fact]
    public void This_hosts_shadow_mmu_preset_answers_zero_page_counts()
    {
        // kvm_pvm installs no leaf for such a guest (HostDeviations.KvmPvmPageStatsStayZero): all three stay 0. The
        // emulator's shadow MMU maps 4K (FNAME(page_fault) caps at the guest's level: 4 KiB PTEs here).
        var (p4k, p2m, p1g, leaf) = GuestStores(EmulatorConfig.LikeThisHost());
        Assert.Equal((0UL, 0UL, 0UL), (p4k, p2m, p1g));
        Assert.Equal(12, leaf.PageShift);
    }
}
