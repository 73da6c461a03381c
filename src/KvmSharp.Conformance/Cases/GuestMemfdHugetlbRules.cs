// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// guest_memfd backed by HugeTLB — two unmerged proposals (Abi/GuestMemfdHugetlb.cs): "[RFC PATCH v2 00/51] 1G page
/// support for guest_memfd" (Ackerley Tng, 2025-05-14: GUEST_MEMFD_FLAG_HUGETLB and log2(size) in flags 63:58) and the
/// 6.18-based branch (page_order in kvm_create_guest_memfd; HUGETLB refused with INIT_SHARED). The creation rules,
/// the FLAGS/FLAGS_HI enumeration, fallocate alignment, pool exhaustion, split/merge on conversion and the mapping
/// level. A kernel that does not list HUGETLB skips them with the reason (this host has no guest_memfd at all);
/// <see cref="hugetlb_flag_refused_without_the_proposal"/> runs on every kernel.
/// </summary>
[ConformanceGroup]
public static class GuestMemfdHugetlbRules
{
    private const string Rfc = "[RFC PATCH v2 00/51] 1G page support for guest_memfd";
    private const string Branch = "the 6.18-based guest_memfd HugeTLB branch (virt/kvm/guest_memfd.c kvm_gmem_create, kvm_gmem_fallocate, kvm_gmem_restructure)";
    private const ulong HugetlbFlag = GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB;
    private const ulong Size2M = 2UL << 20;

    // KVM_CREATE_GUEST_MEMFD with raw bytes: the fd (closed at once) or -errno.
    private static long RawCreate(IKernel k, Vm vm, ulong size, ulong flags, byte pageOrder = 0)
    {
        var args = new kvm_create_guest_memfd { size = size, flags = flags };
        args.reserved[0] = pageOrder;
        long rc = k.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, Raw(ref args));
        if (rc >= 0) _ = k.Close((int)rc);
        return rc;
    }

    // The request for huge pages of 2^log bytes in the kernel's encoding.
    private static (ulong Flags, byte Order) Encode(GuestMemfdHugetlbEncoding enc, int log) => enc == GuestMemfdHugetlbEncoding.PageOrderField
        ? (HugetlbFlag, (byte)(log - 12))
        : (HugetlbFlag | ((ulong)log << GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_SHIFT), (byte)0);

    // The kernel's HugeTLB encoding, or a skip naming why there is none.
    private static GuestMemfdHugetlbEncoding RequireHugetlb(Kvm kvm, Vm vm)
    {
        if (!vm.SupportsGuestMemfdHugetlb)
            Skip($"the kernel does not offer guest_memfd HugeTLB (KVM_CAP_GUEST_MEMFD_FLAGS = {vm.SupportedGuestMemfdFlags.ToKernelString()}, proposal encoding {kvm.Proposals.GuestMemfdHugetlb})");
        return kvm.Proposals.GuestMemfdHugetlb;
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl (KVM_CREATE_GUEST_MEMFD compiled out → ENOTTY) / kvm_gmem_create (flags & ~supported → EINVAL): " +
                     "a kernel without the HugeTLB proposal refuses GUEST_MEMFD_FLAG_HUGETLB in both encodings; the SDK names the missing capability")]
    public static void hugetlb_flag_refused_without_the_proposal(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.Default);
        if (vm.SupportsGuestMemfdHugetlb) Skip("this kernel offers guest_memfd HugeTLB (the other cases check it)");
        // Probed on this host (kvm_pvm 6.18 without CONFIG_KVM_GUEST_MEMFD): ENOTTY for both encodings and plain 4K.
        // With guest_memfd but without the proposal, bit 2 is not in the supported set: EINVAL.
        Errno expected = kvm.SupportsGuestMemfd ? Errno.EINVAL : Errno.ENOTTY;
        if (kvm.SupportsGuestMemfd && ((ulong)vm.SupportedGuestMemfdFlags & HugetlbFlag) != 0)
            Skip("bit 2 is NO_DIRECT_MAP on this kernel: the RFC's HUGETLB bit is accepted with another meaning");
        var k = ctx.Kernel;
        AssertErrno(expected, RawCreate(k, vm, Size2M, HugetlbFlag | GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_2MB), "RFC v2 HUGETLB|2MB");
        AssertErrno(expected, RawCreate(k, vm, 1UL << 30, HugetlbFlag | GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_1GB), "RFC v2 HUGETLB|1GB");
        AssertErrno(expected, RawCreate(k, vm, Size2M, HugetlbFlag, pageOrder: 9), "branch HUGETLB page_order=9");
        foreach (var enc in new[] { GuestMemfdHugetlbEncoding.RfcV2FlagBits, GuestMemfdHugetlbEncoding.PageOrderField })
        {
            var e = Assert.Throws<KvmCapabilityException>(() => vm.CreateHugetlbGuestMemfd(Size2M, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M, enc).Dispose());
            Assert.Equal(expected, e.Errno);
        }
    }

    [ConformanceCase(Rfc + " / " + Branch + ": KVM_CAP_GUEST_MEMFD_FLAGS lists HUGETLB (bit 2); bits 63:58 (the RFC's size field) only through KVM_CAP_GUEST_MEMFD_FLAGS_HI (seed 000)",
        Profile = EmulatedProfile.X86HugetlbRfcV2, Requires = KernelRequirement.GuestMemfd)]
    public static void hugetlb_flags_enumeration(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.Default);
        var enc = RequireHugetlb(kvm, vm);
        long lo = vm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS);
        Assert.True(((ulong)(uint)lo & HugetlbFlag) != 0, $"FLAGS = 0x{lo:X}");
        if (kvm.Proposals.GuestMemfdFlagsHiCap is not int hiCap) { Skip("KVM_CAP_GUEST_MEMFD_FLAGS_HI has no number on this kernel"); return; }
        ulong hi = (ulong)(uint)vm.CheckExtension(hiCap);
        ulong sizeBitsHi = GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_SIZE_BITS >> 32;
        Assert.Equal(enc == GuestMemfdHugetlbEncoding.RfcV2FlagBits ? sizeBitsHi : 0, hi & sizeBitsHi);
        Assert.Equal(((ulong)(uint)lo) | (hi << 32), (ulong)vm.SupportedGuestMemfdFlags);
        Assert.Equal((ulong)(uint)kvm.CheckExtension(hiCap), hi);
    }

    [ConformanceCase(Rfc + " guestmem_hugetlb_setup / " + Branch + " kvm_gmem_create: unknown size → EINVAL, size not a huge-page multiple → EINVAL, " +
                     "size bits or page_order without HUGETLB → EINVAL, INIT_SHARED refused by the branch only; a refused creation installs nothing",
        Profile = EmulatedProfile.X86HugetlbRfcV2, Requires = KernelRequirement.GuestMemfd)]
    public static void hugetlb_creation_rules(CaseContext ctx) => CreationRules(ctx);

    [ConformanceCase(Branch + " kvm_gmem_create: the same rules with page_order (0 with HUGETLB → EINVAL; INIT_SHARED with HUGETLB → EINVAL)",
        Profile = EmulatedProfile.X86HugetlbPageOrder, Requires = KernelRequirement.GuestMemfd)]
    public static void hugetlb_creation_rules_page_order(CaseContext ctx) => CreationRules(ctx);

    private static void CreationRules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.Default);
        var enc = RequireHugetlb(kvm, vm);
        var k = ctx.Kernel;
        var (f2m, o2m) = Encode(enc, 21);
        int before;
        using (var probe = vm.CreateGuestMemfd((ulong)PageSize)) before = probe.Handle.Number;
        // Not a multiple of the huge page.
        AssertErrno(Errno.EINVAL, RawCreate(k, vm, Size2M - (ulong)PageSize, f2m, o2m), "2M HugeTLB of 2M - 4K");
        AssertErrno(Errno.EINVAL, RawCreate(k, vm, Size2M + (ulong)PageSize, f2m, o2m), "2M HugeTLB of 2M + 4K");
        // A size the host has no hstate for (4 MiB: log 22 / order 10).
        var (f4m, o4m) = Encode(enc, 22);
        AssertErrno(Errno.EINVAL, RawCreate(k, vm, 4UL << 20, f4m, o4m), "4M HugeTLB");
        if (enc == GuestMemfdHugetlbEncoding.RfcV2FlagBits)
        {
            // The size field is valid only with HUGETLB ([RFC v2] kvm_gmem_create's valid_flags).
            AssertErrno(Errno.EINVAL, RawCreate(k, vm, Size2M, GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_2MB), "2MB size bits without HUGETLB");
            // INIT_SHARED is allowed: shared parts are split to 4K.
            Assert.True(RawCreate(k, vm, Size2M, f2m | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED) >= 0, "RFC v2 HUGETLB|INIT_SHARED");
        }
        else
        {
            AssertErrno(Errno.EINVAL, RawCreate(k, vm, Size2M, 0, pageOrder: 9), "page_order without HUGETLB");
            AssertErrno(Errno.EINVAL, RawCreate(k, vm, Size2M, HugetlbFlag, pageOrder: 0), "HUGETLB with page_order 0");
            AssertErrno(Errno.EINVAL, RawCreate(k, vm, Size2M, HugetlbFlag | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED, pageOrder: 9), "HUGETLB|INIT_SHARED");
        }
        using (var after = vm.CreateGuestMemfd((ulong)PageSize)) Assert.Equal(before, after.Handle.Number);
        // A good one, with MMAP too; the SDK's typed call encodes the same.
        Assert.True(RawCreate(k, vm, 2 * Size2M, f2m | KvmConstants.GUEST_MEMFD_FLAG_MMAP, o2m) >= 0, "HUGETLB|MMAP 4M");
        using var gmem = vm.CreateHugetlbGuestMemfd(Size2M, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        Assert.Equal(GuestMemfdHugePageSize.Size2M, gmem.HugePageSize);
        // st_blksize = 1 << i_blkbits, the huge page size (guestmem_hugetlb_setup / the branch's kvm_gmem_create).
        Assert.Equal((long)Size2M, gmem.Stat().BlockSize);
    }

    [ConformanceCase(Branch + " kvm_gmem_fallocate: offset and len must be aligned to PAGE_SIZE << page_order (EINVAL), for allocation and punch-hole",
        Profile = EmulatedProfile.X86HugetlbRfcV2, Requires = KernelRequirement.GuestMemfd)]
    public static void hugetlb_fallocate_alignment(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.Default);
        _ = RequireHugetlb(kvm, vm);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * Size2M, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        long ps = PageSize, h = (long)Size2M;
        AssertErrno(Errno.EINVAL, () => gmem.Allocate(0, ps));
        AssertErrno(Errno.EINVAL, () => gmem.Allocate(ps, h));
        AssertErrno(Errno.EINVAL, () => gmem.PunchHole(0, ps));
        AssertErrno(Errno.EINVAL, () => gmem.PunchHole(h / 2, h));
        gmem.Allocate(0, h);
        gmem.Allocate(0, 2 * h);
        gmem.PunchHole(h, h);
        // Beyond i_size → EINVAL (kvm_gmem_allocate), aligned or not.
        AssertErrno(Errno.EINVAL, () => gmem.Allocate(2 * h, h));
    }

    [ConformanceCase(Rfc + " / " + Branch + " gmem_hugetlb_setup: hugepage_new_subpool(h, hpages, hpages) reserves every huge page at creation → ENOMEM when the pool " +
                     "has too few free; closing a file returns its reservation",
        Profile = EmulatedProfile.X86HugetlbRfcV2, Requires = KernelRequirement.GuestMemfd)]
    public static void hugetlb_pool_exhaustion(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.Default);
        _ = RequireHugetlb(kvm, vm);
        var files = new List<GuestMemfd>();
        try
        {
            KvmException? refused = null;
            for (int i = 0; i < 4096 && refused is null; i++)
            {
                try
                {
                    files.Add(vm.CreateHugetlbGuestMemfd(Size2M, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M));
                }
                catch (KvmException e)
                {
                    refused = e;
                }
            }
            Assert.NotNull(refused);
            Assert.Equal(Errno.ENOMEM, refused!.Errno);
            if (files.Count == 0) Skip("the host's 2 MiB pool is empty");
            files[^1].Dispose();
            files.RemoveAt(files.Count - 1);
            files.Add(vm.CreateHugetlbGuestMemfd(Size2M, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M));
            AssertErrno(Errno.ENOMEM, () => vm.CreateHugetlbGuestMemfd(Size2M, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M).Dispose());
        }
        finally
        {
            foreach (var f in files) f.Dispose();
        }
    }

    [ConformanceCase(Branch + " kvm_gmem_restructure / __maybe_split_fresh_folio / kvm_gmem_mapping_order: converting one 4K page of a private huge page to shared " +
                     "splits it (the guest maps 4K), converting it back merges it (2M); page attributes stay per 4K",
        Profile = EmulatedProfile.X86HugetlbRfcV2, Requires = KernelRequirement.GuestMemfd)]
    public static void hugetlb_split_merge_on_conversion(CaseContext ctx)
    {
        if (ctx.Kernel is not EmulatedKernel ek) { Skip("folio structure is observable only in the emulator (no uAPI reports it)"); return; }
        using var kvm = ctx.OpenKvm();
        if (!kvm.SupportedVmTypes.Contains(VmType.SwProtected)) Skip("no KVM_X86_SW_PROTECTED_VM: no private memory to convert");
        using var vm = kvm.CreateVm(VmType.SwProtected);
        _ = RequireHugetlb(kvm, vm);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * Size2M, GuestMemfdFlags.Mmap, GuestMemfdHugePageSize.Size2M);
        using var slot = vm.AddGuestMemfdSlot(1, 1UL << 32, 2 * Size2M, gmem, mapForUserspace: false);
        gmem.Allocate(0, (long)(2 * Size2M));
        void Expect(ulong offset, bool whole, int levelShift)
        {
            Assert.Equal(0, GuestMemfdHugetlbInspection.HugePage(ek, gmem.Handle, offset, out var page));
            Assert.True(page.Allocated && page.Whole == whole, $"huge page at 0x{offset:X}: {page}, expected whole={whole}");
            Assert.Equal(0, GuestMemfdHugetlbInspection.MappingLevel(ek, vm.Handle, (1UL << 32) + offset, out var level));
            Assert.Equal(levelShift, level.PageShift);
        }
        Expect(0, whole: true, 21);
        Expect(Size2M, whole: true, 21);
        gmem.MakeShared(Size2M + 5 * (ulong)PageSize, (ulong)PageSize);
        Expect(0, whole: true, 21);
        Expect(Size2M, whole: false, 12);
        Assert.True(gmem.IsShared(Size2M + 5 * (ulong)PageSize, (ulong)PageSize));
        Assert.False(gmem.IsShared(Size2M + 4 * (ulong)PageSize, (ulong)PageSize));
        gmem.MakePrivate(Size2M + 5 * (ulong)PageSize, (ulong)PageSize);
        Expect(Size2M, whole: true, 21);
        Assert.Empty(EmulatorInvariants.Check(ek));
    }

    [ConformanceCase("arch/x86/kvm/mmu/mmu.c kvm_mmu_max_mapping_level with " + Branch + " kvm_gmem_mapping_order: the largest of 4K/2M/1G inside the slot, " +
                     "aligned alike in gpa and file offset, and not above the folio",
        Profile = EmulatedProfile.X86HugetlbRfcV2, Requires = KernelRequirement.GuestMemfd)]
    public static void hugetlb_mapping_level(CaseContext ctx)
    {
        if (ctx.Kernel is not EmulatedKernel ek) { Skip("the MMU's mapping level is observable only in the emulator"); return; }
        using var kvm = ctx.OpenKvm();
        if (!kvm.SupportedVmTypes.Contains(VmType.SwProtected)) Skip("no KVM_X86_SW_PROTECTED_VM");
        using var vm = kvm.CreateVm(VmType.SwProtected);
        _ = RequireHugetlb(kvm, vm);
        const ulong G = 1UL << 30;
        using var gmem = vm.CreateHugetlbGuestMemfd(G, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size1G);
        // Slot 1: the whole 1 GiB at a 1 GiB-aligned gpa → 1G.
        using (var s = vm.AddGuestMemfdSlot(1, 4 * G, G, gmem, mapForUserspace: false))
        {
            Assert.Equal(0, GuestMemfdHugetlbInspection.MappingLevel(ek, vm.Handle, 4 * G + 0x123000, out var l));
            Assert.Equal(30, l.PageShift);
            Assert.Equal(30 - 12, l.GmemOrder);
        }
        // Slot 2: file offset 2M bound at gpa ≡ 2M (mod 1G)? No: at 8G + 4M — congruent mod 2M, not mod 1G → 2M.
        using (var s = vm.AddGuestMemfdSlot(2, 8 * G + 4 * Size2M, 4 * Size2M, gmem, offset: Size2M, mapForUserspace: false))
        {
            Assert.Equal(0, GuestMemfdHugetlbInspection.MappingLevel(ek, vm.Handle, 8 * G + 5 * Size2M, out var l));
            Assert.Equal(21, l.PageShift);
        }
        // Slot 3: congruent only mod 4K → 4K.
        using (var s = vm.AddGuestMemfdSlot(3, 16 * G + (ulong)PageSize, Size2M, gmem, offset: 0, mapForUserspace: false))
        {
            Assert.Equal(0, GuestMemfdHugetlbInspection.MappingLevel(ek, vm.Handle, 16 * G + Size2M / 2, out var l));
            Assert.Equal(12, l.PageShift);
        }
    }
}
