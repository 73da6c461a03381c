// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// GUEST_MEMFD_FLAG_NO_DIRECT_MAP of "[PATCH v12 00/16] Direct Map Removal Support for guest_memfd" (Patrick Roy /
/// Nikita Kalyazin, 2026-04-10; unmerged): which VMs may create such files, the creation rules, and what userspace sees
/// of AS_NO_DIRECT_MAP (GUP refused). test_guest_memfd and test_guest_memfd_guest_no_direct_map port the series'
/// guest_memfd_test.c changes ([PATCH v12 14/16]). On a kernel without the series (this host has no guest_memfd at
/// all) every case is skipped by <see cref="KernelRequirement.NoDirectMapGuestMemfd"/> with the reason.
/// </summary>
[ConformanceGroup(Requires = KernelRequirement.NoDirectMapGuestMemfd)]
public static class NoDirectMapRules
{
    private const string Series = "[PATCH v12 00/16] Direct Map Removal Support for guest_memfd";

    private const GuestMemfdFlags Ndm = GuestMemfdFlags.NoDirectMap;

    /// <summary>
    /// [PATCH v12 08/16] x86 kvm_arch_gmem_supports_no_direct_map: can_set_direct_map() (always on x86) and neither
    /// KVM_X86_TDX_VM nor KVM_X86_SNP_VM; arm64 ([v12 09/16]) does not look at the VM type.
    /// </summary>
    private static bool ArchSupports(Kvm kvm, VmType type) =>
        kvm.CheckExtension(KvmCaps.KVM_CAP_VM_TYPES) == 0 || type is not (VmType.Tdx or VmType.Snp);

    [ConformanceCase(Series + ", patches 08/16 and 10/16: kvm_gmem_get_supported_flags lists NO_DIRECT_MAP on /dev/kvm (!kvm) and per VM as kvm_arch_gmem_supports_no_direct_map decides",
        Profile = EmulatedProfile.X86NoDirectMap)]
    public static void no_direct_map_capability_per_vm_type(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.True(((ulong)kvm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS) & (ulong)Ndm) != 0, "/dev/kvm must list NO_DIRECT_MAP");
        foreach (var type in VmTypes(kvm))
        {
            using var vm = kvm.CreateVm(type);
            bool listed = vm.SupportedGuestMemfdFlags.HasFlag(Ndm);
            Assert.True(listed == ArchSupports(kvm, type),
                $"VM type {type}: KVM_CAP_GUEST_MEMFD_FLAGS = {vm.SupportedGuestMemfdFlags.ToKernelString()}, NO_DIRECT_MAP expected {ArchSupports(kvm, type)}");
        }
    }

    [ConformanceCase(Series + ", patch 10/16: kvm_gmem_create's flags & ~supported → EINVAL; NO_DIRECT_MAP needs neither MMAP nor INIT_SHARED; a refused creation installs nothing",
        Profile = EmulatedProfile.X86NoDirectMap)]
    public static void no_direct_map_creation_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        int ps = PageSize;
        foreach (var type in VmTypes(kvm))
        {
            using var vm = kvm.CreateVm(type);
            var supported = vm.SupportedGuestMemfdFlags;
            var sets = new List<GuestMemfdFlags> { Ndm, Ndm | GuestMemfdFlags.Mmap, Ndm | GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared };
            foreach (var flags in sets)
            {
                if ((flags & ~Ndm & ~supported) != 0) continue; // another flag of the set is what the VM refuses
                if (supported.HasFlag(Ndm))
                {
                    using var gmem = vm.CreateGuestMemfd((ulong)ps, flags);
                    Assert.Equal(flags, gmem.Flags);
                    continue;
                }
                // No state change: the descriptor a good creation gets next is the one it would have got before.
                int before;
                using (var probe = vm.CreateGuestMemfd((ulong)ps, flags & ~Ndm)) before = probe.Handle.Number;
                AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd((ulong)ps, flags).Dispose());
                using var after = vm.CreateGuestMemfd((ulong)ps, flags & ~Ndm);
                Assert.Equal(before, after.Handle.Number);
            }
        }
    }

    /// <summary>
    /// guest_memfd_test.c test_guest_memfd(vm_type) as [PATCH v12 14/16] extends it: when the VM lists NO_DIRECT_MAP,
    /// __test_guest_memfd runs for NO_DIRECT_MAP, NO_DIRECT_MAP|MMAP and NO_DIRECT_MAP|MMAP|INIT_SHARED (each as far as
    /// the VM supports the other flags). The file behaves as without the flag: sizes, read/write, fallocate and
    /// punch-hole rules, mmap and host faults (the direct map, not the user mapping, is what goes).
    /// </summary>
    [ConformanceCase("tools/testing/selftests/kvm/guest_memfd_test.c test_guest_memfd ([PATCH v12 14/16]: the NO_DIRECT_MAP flag sets of __test_guest_memfd)",
        Profile = EmulatedProfile.X86NoDirectMap)]
    public static void test_guest_memfd(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool ran = false;
        foreach (var type in VmTypes(kvm))
        {
            using var vm = kvm.CreateVm(type);
            var supported = vm.SupportedGuestMemfdFlags;
            if (!supported.HasFlag(Ndm)) continue;
            __test_guest_memfd(ctx, vm, Ndm);
            if (supported.HasFlag(GuestMemfdFlags.Mmap)) __test_guest_memfd(ctx, vm, Ndm | GuestMemfdFlags.Mmap);
            if (supported.HasFlag(GuestMemfdFlags.InitShared)) __test_guest_memfd(ctx, vm, Ndm | GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
            ran = true;
        }
        if (!ran) Skip("no VM type of this kernel lists NO_DIRECT_MAP");
    }

#pragma warning disable CA1707 // upstream's name
    private static void __test_guest_memfd(CaseContext ctx, Vm vm, GuestMemfdFlags flags)
#pragma warning restore CA1707
    {
        var k = ctx.Kernel;
        long ps = PageSize;
        for (ulong size = 1; size < (ulong)ps; size += 511)
            AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd(size, flags).Dispose());
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)ps, flags);
        long total = (long)gmem.Size;
        byte[] buf = new byte[64];
        AssertErrno(Errno.EINVAL, k.Read(gmem.Handle, buf), $"read ({flags.ToKernelString()})");
        AssertErrno(Errno.ESPIPE, k.Pwrite(gmem.Handle, buf, 0), $"pwrite ({flags.ToKernelString()})");
        if (flags.HasFlag(GuestMemfdFlags.Mmap))
        {
            long rc = MappedRegion.Map(k, gmem.Handle, gmem.Size, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0, out var cow);
            cow?.Dispose();
            AssertErrno(Errno.EINVAL, rc, $"mmap(MAP_PRIVATE) ({flags.ToKernelString()})");
            using var mem = gmem.Map();
            if (flags.HasFlag(GuestMemfdFlags.InitShared))
            {
                // test_mmap_supported: host stores and loads through the mapping work without a direct map.
                mem.Fill(0, gmem.Size, 0xaa);
                Assert.Equal(0, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, ps));
                Assert.Equal(0, mem.Read<byte>(0));
                Assert.Equal(0xaa, mem.Read<byte>((ulong)ps));
            }
            else
            {
                // test_fault_private: still SIGBUS (the SDK's typed fault).
                var ex = Assert.Throws<GuestMemoryFaultException>(() => mem.Read<byte>(0));
                Assert.Equal(GuestMemoryFault.PrivatePage, ex.Fault);
            }
        }
        else
        {
            long rc = MappedRegion.Map(k, gmem.Handle, (ulong)ps, PROT_READ | PROT_WRITE, MAP_SHARED, 0, out var region);
            region?.Dispose();
            AssertErrno(Errno.ENODEV, rc, "mmap without GUEST_MEMFD_FLAG_MMAP");
        }
        var st = gmem.Stat();
        Assert.Equal(total, st.Size);
        // test_fallocate / test_invalid_punch_hole, abridged.
        Assert.Equal(0, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE, 0, total));
        AssertErrno(Errno.EINVAL, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE, total, ps), "allocate at total_size");
        Assert.Equal(0, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, total, ps));
        AssertErrno(Errno.EINVAL, k.Fallocate(gmem.Handle, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 1, ps), "PUNCH_HOLE(1, ps)");
    }

    [ConformanceCase("tools/testing/selftests/kvm/guest_memfd_test.c test_guest_memfd_guest ([PATCH v12 14/16]: the default VM must list NO_DIRECT_MAP; the file is MMAP|INIT_SHARED|NO_DIRECT_MAP)",
        Profile = EmulatedProfile.X86NoDirectMap)]
    public static void test_guest_memfd_guest_no_direct_map(CaseContext ctx) => Guests.GuestMemfdGuest.Run(ctx, Ndm);

    [ConformanceCase(Series + ", patch 06/16: GUP's check_vma_flags refuses AS_NO_DIRECT_MAP, which MADV_POPULATE_(READ|WRITE) reports as EINVAL (mm/gup.c FOLL_MADV_POPULATE)",
        Profile = EmulatedProfile.X86NoDirectMap)]
    public static void no_direct_map_madv_populate_is_einval(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong size = 2 * (ulong)PageSize;
        using var plain = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var ndm = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared | Ndm);
        using var plainMem = plain.Map();
        using var ndmMem = ndm.Map();
        foreach (int advice in new[] { MADV_POPULATE_READ, MADV_POPULATE_WRITE })
        {
            Assert.Equal(0, ctx.Kernel.Madvise(plainMem.Address, size, advice));
            AssertErrno(Errno.EINVAL, ctx.Kernel.Madvise(ndmMem.Address, size, advice), $"madvise({advice}) on a NO_DIRECT_MAP mapping");
        }
        // Plain loads and stores are not GUP: they still work.
        ndmMem.Write<byte>(0, 0x5a);
        Assert.Equal(0x5a, ndmMem.Read<byte>(0));
    }

    [ConformanceCase(Series + ", patch 06/16: get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR) looks the page up with GUP (mm/mempolicy.c lookup_node), refused → EFAULT",
        Profile = EmulatedProfile.X86NoDirectMap)]
    public static void no_direct_map_get_mempolicy_node_is_efault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong size = (ulong)PageSize;
        using var plain = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var ndm = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared | Ndm);
        using var plainMem = plain.Map();
        using var ndmMem = ndm.Map();
        ulong mask = 0;
        const ulong NodeOfAddress = Mempolicy.MPOL_F_NODE | Mempolicy.MPOL_F_ADDR;
        Assert.Equal(0, NumaCalls.GetMempolicy(ctx.Kernel, plainMem.Address, NodeOfAddress, out int node, ref mask));
        Assert.True(node >= 0, $"the node of a page of a plain mapping: {node}");
        AssertErrno(Errno.EFAULT, NumaCalls.GetMempolicy(ctx.Kernel, ndmMem.Address, NodeOfAddress, out _, ref mask), "get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR) on a NO_DIRECT_MAP mapping");
    }

    /// <summary>
    /// KVM reaches a plain memslot's memory with GUP (hva_to_pfn): a slot whose userspace_addr is a NO_DIRECT_MAP
    /// mapping cannot be faulted in (KVM_PRE_FAULT_MEMORY → EFAULT), while the same file bound as a guest_memfd slot is
    /// served by kvm_gmem_get_pfn, which zaps the direct map itself ([PATCH v12 10/16]). The v5 cover letter: "guest page
    /// faults cannot be resolved by GUP-ing userspace mappings of guest memory, as GUP is disabled for direct map
    /// removed memory".
    /// </summary>
    [ConformanceCase(Series + ", patches 06/16 and 10/16: a plain memslot over a NO_DIRECT_MAP mapping cannot be faulted (hva_to_pfn's GUP → EFAULT); a guest_memfd slot can",
        Profile = EmulatedProfile.X86NoDirectMap)]
    public static void no_direct_map_userspace_addr_slot_refuses_kvm_faults(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        if (kvm.CheckExtension(KvmCaps.KVM_CAP_PRE_FAULT_MEMORY) == 0) Skip("KVM_CAP_PRE_FAULT_MEMORY = 0 (no TDP): the case faults pages in with KVM_PRE_FAULT_MEMORY");
        using var vm = kvm.CreateVm();
        ulong size = 2 * (ulong)PageSize;
        const ulong PlainGpa = 0x100000, NdmGpa = 0x200000, GmemGpa = 0x300000;
        using var plain = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var ndm = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared | Ndm);
        using var plainMem = plain.Map();
        using var ndmMem = ndm.Map();
        vm.SetUserMemoryRegion(new kvm_userspace_memory_region { slot = 1, guest_phys_addr = PlainGpa, memory_size = size, userspace_addr = (ulong)plainMem.Address });
        vm.SetUserMemoryRegion(new kvm_userspace_memory_region { slot = 2, guest_phys_addr = NdmGpa, memory_size = size, userspace_addr = (ulong)ndmMem.Address });
        using var gmemSlot = vm.AddGuestMemfdSlot(3, GmemGpa, size, ndm, mapForUserspace: false);
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.PreFaultMemory(PlainGpa, size));
        Assert.Equal(0UL, vcpu.PreFaultMemory(GmemGpa, size));
        AssertErrno(Errno.EFAULT, () => vcpu.PreFaultMemory(NdmGpa, size));
    }

    /// <summary>
    /// Port of set_memory_region_test.c test_guest_memfd_mmio ("[PATCH v9 13/13] KVM: selftests: Test guest execution
    /// from direct map removed gmem", kept in v12): the guest's whole memory is a MMAP | NO_DIRECT_MAP guest_memfd
    /// bound with userspace_addr = its mapping; the guest reads an 8-byte value from MEM_REGION_GPA (0xc0000000), which
    /// no memslot backs, so KVM must emulate the load — walk the guest page tables and fetch the instruction from the
    /// direct-map-removed memory through that mapping — and exit with KVM_EXIT_MMIO (vcpu_worker: a read, len 8, at
    /// MEM_REGION_GPA); the guest then reaches GUEST_DONE with the value userspace supplied.
    /// </summary>
    [ConformanceCase("tools/testing/selftests/kvm/set_memory_region_test.c test_guest_memfd_mmio ([PATCH v9 13/13], " + Series + ")",
        Profile = EmulatedProfile.X86NoDirectMap)]
    public static void test_guest_memfd_mmio(CaseContext ctx)
    {
        const ulong MemRegionGpa = 0xc000_0000;
        const ulong MmioValue = 0xbeef_cafe_f00d_0001;
        const byte DonePort = 0x10;
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, GuestMemoryBacking.GuestMemfd, a =>
        {
            a.mov(rax, __qword_ptr[MemRegionGpa]);
            a.@out(DonePort, al);
            a.hlt();
        });
        // VM_MEM_SRC_GUEST_MEMFD_NO_DIRECT_MAP: the sandbox's memory leaves the direct map where the VM offers it.
        Assert.True(guest.Memory.RemovedFromDirectMap, "the guest's memory is not a NO_DIRECT_MAP guest_memfd");
        guest.IdentityMap(MemRegionGpa);

        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"expected KVM_EXIT_MMIO, got {exit.ToString()}");
        Assert.False(exit.MmioIsWrite);
        Assert.Equal(MemRegionGpa, exit.MmioAddress);
        Assert.Equal(8, exit.MmioData.Length);
        BitConverter.TryWriteBytes(exit.MmioData, MmioValue);

        exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == DonePort, $"expected the guest's done port, got {exit.ToString()}");
        Assert.Equal(MmioValue, guest.Vcpu.GetRegs().rax);
    }
}
