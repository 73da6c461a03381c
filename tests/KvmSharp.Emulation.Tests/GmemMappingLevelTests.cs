// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Emulation.Tests.SnpTestSupport;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The level the emulated x86 TDP MMU maps a guest fault at (Mmu/MmuMappingLevel.cs, as 6.18's mmu.c
/// kvm_mmu_hugepage_adjust / kvm_mmu_max_mapping_level / kvm_gmem_max_mapping_level decide it) and what a fault
/// installed (GuestMappingInspection.LastFault): 4K for 6.18's order-0 guest_memfd, 2M/1G for whole HugeTLB folios
/// (the unmerged proposal), 4K when the slot's GFNs and file pages are not aligned alike, smaller where the per-VM
/// attributes are mixed (KVM_LPAGE_MIXED_FLAG), a zap on conversion so the next fault maps smaller, and the VM types'
/// gmem_max_mapping_level (TDX private: 4K; SNP: the RMP entry's size). Faults are made with KVM_PRE_FAULT_MEMORY and,
/// for SNP, by a guest's PVALIDATE. Emulator only: no kernel here has guest_memfd or shows its mapping levels.
/// </summary>
public sealed class GmemMappingLevelTests
{
    private const ulong K4 = 0x1000, M2 = 2UL << 20, G1 = 1UL << 30, Base = 4 * G1;

    /// <summary>6.18 (per-VM attributes) with the guest_memfd HugeTLB proposal's page_order encoding.</summary>
    private static EmulatorConfig Hugetlb618() => EmulatorConfig.X86_64().WithGuestMemfdHugetlb(GuestMemfdHugetlbEncoding.PageOrderField, 4, 1);

    /// <summary>In-place conversion (gmem attributes) with RFC v2's encoding, as GuestMemfdHugetlbTests.</summary>
    private static EmulatorConfig HugetlbInPlace() =>
        EmulatorConfig.X86_64(inPlaceConversion: true).WithGuestMemfdHugetlb(GuestMemfdHugetlbEncoding.RfcV2FlagBits, 4, 1) with { GuestMemfdFlagsHiCap = 251 };

    private static GuestFaultMapping Mapped(EmulatedKernel k, Vm vm, ulong gpa)
    {
        long r = GuestMappingInspection.LastFault(k, vm.Handle, gpa, out var m);
        Assert.True(r == 0, $"nothing maps 0x{gpa:X} (r={r})");
        return m;
    }

    private static void AssertUnmapped(EmulatedKernel k, Vm vm, ulong gpa) =>
        Assert.Equal(-(long)Errno.ENOENT, GuestMappingInspection.LastFault(k, vm.Handle, gpa, out _));

    private static void Private(Vm vm, ulong gpa, ulong size) => vm.SetMemoryAttributes(gpa, size, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);

    private static void Shared(Vm vm, ulong gpa, ulong size) => vm.SetMemoryAttributes(gpa, size, 0);

    [Fact]
    public void Order_zero_guest_memfd_of_6_18_maps_4k()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateGuestMemfd(2 * M2);
        using var slot = vm.AddGuestMemfdSlot(1, Base, 2 * M2, gmem, mapForUserspace: false);
        Private(vm, Base, 2 * M2);
        using var vcpu = vm.CreateVcpu();
        AssertUnmapped(k, vm, Base + 5 * K4);
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + 5 * K4, K4));
        // kvm_gmem_get_pfn: "*max_order = 0" → kvm_max_level_for_order(0) = PG_LEVEL_4K, though the slot is aligned.
        Assert.Equal(new GuestFaultMapping(Base + 5 * K4, 12, Private: true, GmemOrder: 0), Mapped(k, vm, Base + 5 * K4));
        AssertUnmapped(k, vm, Base + 6 * K4);
    }

    [Fact]
    public void Whole_2m_and_1g_hugetlb_folios_map_2m_and_1g()
    {
        using var k = new EmulatedKernel(HugetlbInPlace());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var g2 = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        using var g1 = vm.CreateHugetlbGuestMemfd(G1, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size1G);
        using var s2 = vm.AddGuestMemfdSlot(1, Base, 2 * M2, g2, mapForUserspace: false);
        using var s1 = vm.AddGuestMemfdSlot(2, 2 * Base, G1, g1, mapForUserspace: false);
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + M2 + 7 * K4, K4));
        Assert.Equal(new GuestFaultMapping(Base + M2, 21, Private: true, GmemOrder: 9), Mapped(k, vm, Base + M2 + 7 * K4));
        Assert.Equal(Base + M2, Mapped(k, vm, Base + 2 * M2 - K4).Gpa); // the same leaf covers the whole 2 MiB
        AssertUnmapped(k, vm, Base);
        Assert.Equal(0UL, vcpu.PreFaultMemory(2 * Base + 0x1234_5000, K4));
        Assert.Equal(new GuestFaultMapping(2 * Base, 30, Private: true, GmemOrder: 18), Mapped(k, vm, 2 * Base + G1 - K4));
    }

    [Fact]
    public void Pre_fault_advances_to_the_end_of_the_huge_leaf()
    {
        using var k = new EmulatedKernel(HugetlbInPlace());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        using var slot = vm.AddGuestMemfdSlot(1, Base, 2 * M2, gmem, mapForUserspace: false);
        using var vcpu = vm.CreateVcpu();
        // kvm_arch_vcpu_pre_fault_memory: "end = (range->gpa & KVM_HPAGE_MASK(level)) + KVM_HPAGE_SIZE(level); return
        // min(range->size, end - range->gpa);" — the whole 4 MiB in two steps, and a range inside one leaf is done.
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + K4, 2 * M2 - K4));
        Assert.Equal(21, Mapped(k, vm, Base).PageShift);
        Assert.Equal(21, Mapped(k, vm, Base + M2).PageShift);
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + 3 * K4, 5 * K4));
    }

    [Fact]
    public void A_slot_whose_gfns_and_file_pages_are_not_aligned_alike_maps_4k()
    {
        using var k = new EmulatedKernel(HugetlbInPlace());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        // GPA Base + 4 KiB holds file page 0: the 2 MiB folio is whole, but no 2 MiB GFN range lands on it aligned, and
        // the slot's head and tail stick out of their 2 MiB pages (kvm_alloc_memslot_metadata's disallow_lpage).
        using var slot = vm.AddGuestMemfdSlot(1, Base + K4, M2, gmem, mapForUserspace: false);
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + 0x10_0000, K4));
        var m = Mapped(k, vm, Base + 0x10_0000);
        Assert.Equal(12, m.PageShift);
        Assert.Equal(0, m.GmemOrder); // kvm_gmem_get_pfn's max_order: the folio cannot back an aligned 2 MiB GFN range
        Assert.Equal(0, GuestMemfdHugetlbInspection.MappingLevel(k, vm.Handle, Base + 0x10_0000, out var predicted));
        Assert.Equal(12, predicted.PageShift);
    }

    [Fact]
    public void Gfns_aligned_to_2m_but_not_1g_inside_a_1g_folio_map_2m()
    {
        using var k = new EmulatedKernel(HugetlbInPlace());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateHugetlbGuestMemfd(G1, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size1G);
        using var slot = vm.AddGuestMemfdSlot(1, Base + 2 * M2, 4 * M2, gmem, offset: M2, mapForUserspace: false);
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + 3 * M2 + K4, K4));
        Assert.Equal(new GuestFaultMapping(Base + 3 * M2, 21, true, 9), Mapped(k, vm, Base + 3 * M2 + K4));
    }

    [Fact]
    public void Mixed_per_vm_attributes_in_a_huge_page_map_it_4k()
    {
        using var k = new EmulatedKernel(Hugetlb618());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        using var slot = vm.AddGuestMemfdSlot(1, Base, 2 * M2, gmem, mapForUserspace: false);
        Private(vm, Base, 2 * M2);
        Shared(vm, Base + M2 + 3 * K4, K4);
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base, K4));
        Assert.Equal(new GuestFaultMapping(Base, 21, true, 9), Mapped(k, vm, Base));
        // The second huge page is mixed (KVM_LPAGE_MIXED_FLAG): its private pages map 4K from a whole folio.
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + M2 + 4 * K4, K4));
        Assert.Equal(new GuestFaultMapping(Base + M2 + 4 * K4, 12, true, 9), Mapped(k, vm, Base + M2 + 4 * K4));
    }

    [Fact]
    public void Converting_a_page_inside_a_huge_leaf_zaps_it_and_the_next_fault_maps_4k_until_it_is_uniform_again()
    {
        using var k = new EmulatedKernel(Hugetlb618());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        using var slot = vm.AddGuestMemfdSlot(1, Base, 2 * M2, gmem, mapForUserspace: false);
        Private(vm, Base, 2 * M2);
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base, 2 * M2));
        Assert.Equal(21, Mapped(k, vm, Base + 9 * K4).PageShift);
        Shared(vm, Base + 9 * K4, K4);
        // kvm_arch_pre_set_memory_attributes → kvm_unmap_gfn_range: the 2 MiB leaf holding the page is gone whole;
        // the other huge page's leaf stays.
        AssertUnmapped(k, vm, Base);
        Assert.Equal(21, Mapped(k, vm, Base + M2).PageShift);
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + 8 * K4, K4));
        Assert.Equal(new GuestFaultMapping(Base + 8 * K4, 12, true, 9), Mapped(k, vm, Base + 8 * K4));
        AssertUnmapped(k, vm, Base + 10 * K4);
        // Back to private: only the converted page's leaf is zapped (none), the 4K leaf beside it stays; the mixed
        // flag clears (hugepage_has_attrs), so the next fault in the range maps 2 MiB, replacing the 4K page table
        // under it (tdp_mmu.c kvm_tdp_mmu_map installs the leaf at goal_level over a non-leaf SPTE).
        Private(vm, Base + 9 * K4, K4);
        Assert.Equal(new GuestFaultMapping(Base + 8 * K4, 12, true, 9), Mapped(k, vm, Base + 8 * K4));
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + 10 * K4, K4));
        Assert.Equal(new GuestFaultMapping(Base, 21, true, 9), Mapped(k, vm, Base + 8 * K4));
    }

    [Fact]
    public void In_place_conversion_splits_the_folio_and_the_next_fault_maps_4k_then_2m_after_the_merge()
    {
        using var k = new EmulatedKernel(HugetlbInPlace());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        using var slot = vm.AddGuestMemfdSlot(1, Base, 2 * M2, gmem, mapForUserspace: false);
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base, 2 * M2));
        gmem.MakeShared(M2 + 5 * K4, K4); // kvm_gmem_invalidate_begin zaps, kvm_gmem_restructure splits the folio
        AssertUnmapped(k, vm, Base + M2);
        Assert.Equal(21, Mapped(k, vm, Base).PageShift);
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + M2, K4));
        Assert.Equal(new GuestFaultMapping(Base + M2, 12, true, 0), Mapped(k, vm, Base + M2)); // max_order = 0
        gmem.MakePrivate(M2 + 5 * K4, K4); // merged again
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base + M2, K4));
        Assert.Equal(new GuestFaultMapping(Base + M2, 21, true, 9), Mapped(k, vm, Base + M2));
    }

    [Fact]
    public void Punching_the_backing_zaps_the_leaf()
    {
        using var k = new EmulatedKernel(HugetlbInPlace());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        using var slot = vm.AddGuestMemfdSlot(1, Base, 2 * M2, gmem, mapForUserspace: false);
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.PreFaultMemory(Base, 2 * M2));
        gmem.PunchHole((long)M2, (long)M2);
        AssertUnmapped(k, vm, Base + M2);
        Assert.Equal(21, Mapped(k, vm, Base).PageShift);
    }

    /// <summary>
    /// gmem_max_mapping_level per VM type, on the same 2 MiB-aligned whole folio: SW_PROTECTED has no hook (2M); a
    /// TD's private memory is 4K (tdx_gmem_max_mapping_level, 6.18); an SNP VM before KVM_SEV_INIT2 is not an SNP
    /// guest, so sev_gmem_max_mapping_level adds nothing (2M). What the fault path would do, through the prediction
    /// (a TD or SNP guest faults only once launched; see the SNP guest tests below).
    /// </summary>
    [Theory]
    [InlineData(VmType.SwProtected, 21)]
    [InlineData(VmType.Tdx, 12)]
    [InlineData(VmType.Snp, 21)]
    public void The_vm_types_gmem_max_mapping_level_limits_private_faults(VmType type, int expectedShift)
    {
        using var k = new EmulatedKernel(HugetlbInPlace());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = kvm.CreateVm(type);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        using var slot = vm.AddGuestMemfdSlot(1, Base, 2 * M2, gmem, mapForUserspace: false);
        Assert.Equal(0, GuestMemfdHugetlbInspection.MappingLevel(k, vm.Handle, Base + M2, out var level));
        Assert.Equal(expectedShift, level.PageShift);
        Assert.Equal(9, level.GmemOrder);
    }

    private const ulong SnpGpa = 0x40_0000, SnpLinear = 0x60_0000;

    /// <summary>
    /// An SNP guest with a 2 MiB HugeTLB guest_memfd bound (gmem-only, userspace_addr 0) at GPA 0x400000, mapped by a
    /// 2 MiB guest PDE at linear 0x600000 with the C-bit, running <paramref name="program"/>.
    /// </summary>
    private static SevEsGuest SnpHugeGuest(Action<Iced.Intel.Assembler> program, List<IDisposable> owned) =>
        SevEsGuest.Create(VmType.Snp, program,
            patchImage: image => BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(0x4000 + 3 * 8), SnpGpa | SevEsGuest.CBit | 0x83),
            snpFinish: launch =>
            {
                var vm = launch.Vm;
                var gmem = vm.CreateHugetlbGuestMemfd(M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
                owned.Add(gmem);
                owned.Add(vm.AddGuestMemfdSlot(1, SnpGpa, M2, gmem, mapForUserspace: false));
                vm.SetMemoryAttributes(SnpGpa, M2, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
                launch.Finish();
            }, config: EmulatorConfig.X86_64().WithGuestMemfdHugetlb(GuestMemfdHugetlbEncoding.PageOrderField));

    [Fact]
    public void An_snp_guests_private_fault_on_a_2m_rmp_entry_maps_2m()
    {
        var owned = new List<IDisposable>();
        try
        {
            using var g = SnpHugeGuest(a =>
            {
                a.mov(rbx, ReportLinear);
                Pvalidate(a, SnpLinear, 1, 1, 0);
                SevEsGuest.Terminate(a, 1);
            }, owned);
            AssertTerminated(g, 1);
            Assert.Equal(0UL, g.ReportQword(0));
            // sev_gmem_prepare made one 2 MiB RMP entry; sev_gmem_max_mapping_level answers its level.
            Assert.Equal(0, GuestMappingInspection.LastFault(g.Kernel, g.Vm.Handle, SnpGpa + 0x1000, out var m));
            Assert.Equal(new GuestFaultMapping(SnpGpa, 21, Private: true, GmemOrder: 9), m);
        }
        finally
        {
            for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        }
    }

    [Fact]
    public void After_a_psmash_an_snp_guests_private_fault_maps_4k()
    {
        var owned = new List<IDisposable>();
        try
        {
            using var g = SnpHugeGuest(a =>
            {
                a.mov(rbx, ReportLinear);
                Pvalidate(a, SnpLinear, 1, 1, 0);
                Pvalidate(a, SnpLinear + 0x1000, 0, 0, 1);  // a 4 KiB rescind: KVM PSMASHes the 2 MiB entry
                Pvalidate(a, SnpLinear + 0x3000, 0, 1, 2);  // faults again: the RMP entry is 4 KiB now
                SevEsGuest.Terminate(a, 3);
            }, owned);
            AssertTerminated(g, 3);
            Assert.Equal(0UL, g.ReportQword(0));
            Assert.Equal(0UL, g.ReportQword(1));
            Assert.Equal(0x100UL, g.ReportQword(2)); // validated already (the PSMASH kept the bit)
            Assert.Equal(0, GuestMappingInspection.LastFault(g.Kernel, g.Vm.Handle, SnpGpa + 0x3000, out var m));
            Assert.Equal(new GuestFaultMapping(SnpGpa + 0x3000, 12, Private: true, GmemOrder: 9), m);
        }
        finally
        {
            for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        }
    }

    [Fact]
    public void Bad_arguments_answer_errnos()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.Default);
        Assert.Equal(-(long)Errno.EINVAL, GuestMappingInspection.LastFault(k, kvm.Handle, 0, out _));
        Assert.Equal(-(long)Errno.ENOENT, GuestMappingInspection.LastFault(k, vm.Handle, 0, out _));
    }
}
