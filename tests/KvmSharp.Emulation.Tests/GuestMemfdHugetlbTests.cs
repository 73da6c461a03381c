// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// guest_memfd HugeTLB (GuestMemfd/GmemHugetlb.cs, two unmerged encodings): the switch is off everywhere, the pool
/// accounting (reservation at creation, allocation on fallocate and guest use, return on punch and release), the
/// split/merge invariants on conversion, the bit-2 conflict with NO_DIRECT_MAP, and O(ranges) state for 1 GiB files.
/// </summary>
public sealed class GuestMemfdHugetlbTests
{
    private const ulong M2 = 2UL << 20;
    private static readonly ulong Ps = (ulong)Environment.SystemPageSize;

    private static EmulatorConfig Config(GuestMemfdHugetlbEncoding enc = GuestMemfdHugetlbEncoding.RfcV2FlagBits, long pages2M = 4, long pages1G = 1) =>
        EmulatorConfig.X86_64(inPlaceConversion: true).WithGuestMemfdHugetlb(enc, pages2M, pages1G) with { GuestMemfdFlagsHiCap = 251 };

    private static HugetlbPool Pool2M(EmulatedKernel k) => GuestMemfdHugetlbInspection.Pool(k, 21)!;

    private static void AssertConsistent(EmulatedKernel k)
    {
        var broken = EmulatorInvariants.Check(k);
        Assert.True(broken.Count == 0, string.Join("; ", broken));
    }

    private static GuestMemfdHugePage Page(EmulatedKernel k, KvmSharp.GuestMemfd gmem, ulong offset)
    {
        Assert.Equal(0, GuestMemfdHugetlbInspection.HugePage(k, gmem.Handle, offset, out var page));
        return page;
    }

    [Fact]
    public void Every_preset_leaves_the_proposal_off()
    {
        EmulatorConfig[] presets =
        [
            EmulatorConfig.LikeThisHost(), EmulatorConfig.LikeThisHost(guestMemfd: false), HostMatching.LikeThisHostAsItIs(),
            EmulatorConfig.X86_64(), EmulatorConfig.X86_64(inPlaceConversion: true), EmulatorConfig.Arm64(),
        ];
        foreach (var config in presets)
        {
            Assert.Equal(GuestMemfdHugetlbEncoding.None, config.GuestMemfdHugetlb);
            Assert.Equal(GuestMemfdHugetlbEncoding.None, config.Proposals.GuestMemfdHugetlb);
        }
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.Default);
        Assert.False(vm.SupportsGuestMemfdHugetlb);
        // Without the proposal the SDK's typed call reports the missing capability.
        var e = Assert.Throws<KvmCapabilityException>(() => vm.CreateHugetlbGuestMemfd(M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("HUGETLB", e.Capability, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(GuestMemfdHugetlbEncoding.RfcV2FlagBits, 0xFC000000L)]
    [InlineData(GuestMemfdHugetlbEncoding.PageOrderField, 0L)]
    public void Flags_and_flags_hi_enumerate_the_encoding(GuestMemfdHugetlbEncoding enc, long hi)
    {
        using var k = new EmulatedKernel(Config(enc));
        using var kvm = Kvm.Open(k);
        Assert.Equal(4L, kvm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS) & 4);
        Assert.Equal(hi, (long)(uint)kvm.CheckExtension(251));
        using var vm = kvm.CreateVm(VmType.SwProtected);
        Assert.True(vm.SupportsGuestMemfdHugetlb);
        Assert.Equal((ulong)hi << 32, (ulong)vm.SupportedGuestMemfdFlags & 0xFFFFFFFF00000000UL);
    }

    [Fact]
    public void No_direct_map_and_hugetlb_cannot_share_bit_2()
    {
        // One meaning per bit: a configuration with both proposals is refused when the kernel is made.
        var config = Config() with { GuestMemfdNoDirectMap = true };
        Assert.Throws<ArgumentException>(() => Emulation.GuestMemfd.GmemHugetlb.Validate(config));
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(config));
    }

    [Fact]
    public void Creation_reserves_the_whole_file_and_release_returns_it()
    {
        using var k = new EmulatedKernel(Config(pages2M: 4));
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        var pool = Pool2M(k);
        Assert.Equal(4, pool.Free);
        var a = vm.CreateHugetlbGuestMemfd(3 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        Assert.Equal(3, pool.Reserved);
        Assert.Equal(0, pool.Allocated);
        // Two more do not fit: ENOMEM, and nothing is reserved by the failed call.
        var e = Assert.Throws<KvmException>(() => vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M));
        Assert.Equal(Errno.ENOMEM, e.Errno);
        Assert.Equal(3, pool.Reserved);
        using var b = vm.CreateHugetlbGuestMemfd(M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        Assert.Equal(0, pool.Free);
        a.Allocate(0, (long)(2 * M2));
        Assert.Equal(2, pool.Allocated);
        AssertConsistent(k);
        a.Dispose();
        Assert.Equal(1, pool.Reserved);
        Assert.Equal(0, pool.Allocated);
        AssertConsistent(k);
    }

    [Fact]
    public void Fallocate_allocates_whole_huge_pages_and_punch_frees_them()
    {
        using var k = new EmulatedKernel(Config());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
        var pool = Pool2M(k);
        Assert.Throws<KvmException>(() => gmem.Allocate(0, (long)Ps));
        Assert.Equal(0, pool.Allocated);
        gmem.Allocate((long)M2, (long)M2);
        Assert.Equal(1, pool.Allocated);
        Assert.False(Page(k, gmem, 0).Allocated);
        // Private by default: the fresh folio stays whole.
        Assert.True(Page(k, gmem, M2 + Ps).Whole);
        gmem.Allocate(0, (long)(2 * M2));
        Assert.Equal(2, pool.Allocated);
        gmem.PunchHole(0, (long)M2);
        Assert.Equal(1, pool.Allocated);
        Assert.False(Page(k, gmem, 0).Allocated);
        AssertConsistent(k);
    }

    [Fact]
    public void Converting_one_page_splits_and_converting_it_back_merges()
    {
        using var k = new EmulatedKernel(Config());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * M2, GuestMemfdFlags.Mmap, GuestMemfdHugePageSize.Size2M);
        gmem.Allocate(0, (long)(2 * M2));
        gmem.MakeShared(M2 - Ps, Ps);
        Assert.False(Page(k, gmem, 0).Whole);
        Assert.True(Page(k, gmem, M2).Whole);
        AssertConsistent(k);
        // Shared across the boundary: both split.
        gmem.MakeShared(M2 - Ps, 2 * Ps);
        Assert.False(Page(k, gmem, M2).Whole);
        gmem.MakePrivate(0, 2 * M2);
        Assert.True(Page(k, gmem, 0).Whole);
        Assert.True(Page(k, gmem, M2).Whole);
        AssertConsistent(k);
        // A fresh folio allocated while part of its range is shared is split at once (__maybe_split_fresh_folio).
        gmem.PunchHole(0, (long)M2);
        gmem.MakeShared(0, Ps);
        gmem.Allocate(0, (long)M2);
        Assert.True(Page(k, gmem, 0).Allocated);
        Assert.False(Page(k, gmem, 0).Whole);
        AssertConsistent(k);
    }

    [Fact]
    public void Page_order_branch_refuses_init_shared_and_order_zero()
    {
        using var k = new EmulatedKernel(Config(GuestMemfdHugetlbEncoding.PageOrderField));
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.Default);
        var e = Assert.Throws<KvmException>(() => vm.CreateHugetlbGuestMemfd(M2, GuestMemfdFlags.InitShared | GuestMemfdFlags.Mmap, GuestMemfdHugePageSize.Size2M));
        Assert.Equal(Errno.EINVAL, e.Errno);
        var args = new kvm_create_guest_memfd { size = M2, flags = GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB };
        Assert.Equal(-(long)Errno.EINVAL, k.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, Raw.Bytes(ref args)));
        using var ok = vm.CreateHugetlbGuestMemfd(M2, GuestMemfdFlags.Mmap, GuestMemfdHugePageSize.Size2M);
        Assert.Equal(1, Pool2M(k).Reserved);
    }

    [Fact]
    public void A_1g_file_keeps_range_state_and_maps_at_1g()
    {
        using var k = new EmulatedKernel(Config(pages1G: 2));
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        const ulong G = 1UL << 30;
        using var gmem = vm.CreateHugetlbGuestMemfd(2 * G, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size1G);
        using var slot = vm.AddGuestMemfdSlot(1, 4 * G, 2 * G, gmem, mapForUserspace: false);
        Assert.Equal(0, GuestMemfdHugetlbInspection.MappingLevel(k, vm.Handle, 5 * G + 0x5000, out var level));
        Assert.Equal(30, level.PageShift);
        // 1000 scattered conversions: the state stays a handful of ranges (no per-4K array).
        for (ulong i = 0; i < 1000; i += 2) gmem.MakeShared(i * 64 * Ps, Ps);
        Assert.Equal(0, GuestMemfdHugetlbInspection.MappingLevel(k, vm.Handle, 4 * G, out level));
        Assert.Equal(12, level.PageShift);
        Assert.Equal(0, GuestMemfdHugetlbInspection.MappingLevel(k, vm.Handle, 5 * G, out level));
        Assert.Equal(30, level.PageShift);
        AssertConsistent(k);
    }
}
