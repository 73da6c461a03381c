// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd ([PATCH v8], kernel-spec §4) and the cases of the v8
/// guest_memfd_conversions_test, driven through the raw boundary and the typed API.
/// </summary>
public sealed class GmemConversionTests : IDisposable
{
    private static readonly ulong Ps = (ulong)Raw.Page;
    private readonly EmulatedKernel _k = new(EmulatorConfig.X86_64(inPlaceConversion: true));
    private readonly Kernel.KernelFd _sys;
    private readonly Kernel.KernelFd _vm;

    public GmemConversionTests()
    {
        _sys = Raw.OpenKvm(_k);
        _vm = Raw.CreateVm(_k, _sys, KvmConstants.KVM_X86_SW_PROTECTED_VM);
    }

    public void Dispose()
    {
        _vm.Dispose();
        _sys.Dispose();
        Assert.Equal(0, _k.OpenFdCount);
        Assert.Equal(0, _k.LiveVmCount);
        _k.Dispose();
    }

    private Kernel.KernelFd Gmem(ulong pages, bool initShared = false) =>
        Raw.CreateGmem(_k, _vm, pages * Ps, KvmConstants.GUEST_MEMFD_FLAG_MMAP | (initShared ? KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED : 0));

    private nint Map(Kernel.KernelFd g, ulong pages)
    {
        Assert.Equal(0, _k.Mmap(0, pages * Ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint a));
        return a;
    }

    [Fact]
    public void Validation_runs_in_v8_order_and_writes_nothing_back()
    {
        using var g = Gmem(4);
        var a = new kvm_memory_attributes2 { offset = 0, size = Ps, attributes = 0x10, flags = 1, error_offset = 77 };
        a.reserved[0] = 1;
        Assert.Equal(Raw.EINVAL, Raw.Attributes2(_k, g, ref a)); // flags
        a.flags = 0;
        Assert.Equal(Raw.EINVAL, Raw.Attributes2(_k, g, ref a)); // reserved
        a.reserved[0] = 0;
        Assert.Equal(Raw.EINVAL, Raw.Attributes2(_k, g, ref a)); // attributes beyond PRIVATE
        a.attributes = 0;
        a.size = 0;
        Assert.Equal(Raw.EINVAL, Raw.Attributes2(_k, g, ref a)); // size 0
        a.size = Ps + 1;
        Assert.Equal(Raw.EINVAL, Raw.Attributes2(_k, g, ref a)); // unaligned
        a.size = Ps;
        a.offset = 4 * Ps;
        Assert.Equal(Raw.EINVAL, Raw.Attributes2(_k, g, ref a)); // offset >= i_size
        a.offset = 3 * Ps;
        a.size = 2 * Ps;
        Assert.Equal(Raw.EINVAL, Raw.Attributes2(_k, g, ref a)); // past i_size
        Assert.Equal(77UL, a.error_offset);                     // error_offset is not validated, nor written
        a.size = Ps;
        Assert.Equal(0, Raw.Attributes2(_k, g, ref a));
        Assert.Equal(77UL, a.error_offset);
        Assert.Equal(Raw.EFAULT, _k.Ioctl(g, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2, new byte[127]));
    }

    [Fact]
    public void Vm_without_private_memory_cannot_convert()
    {
        using var vm0 = Raw.CreateVm(_k, _sys, KvmConstants.KVM_X86_DEFAULT_VM);
        using var g = Raw.CreateGmem(_k, vm0, Ps, KvmConstants.GUEST_MEMFD_FLAG_MMAP);
        Assert.Equal(Raw.EINVAL, Raw.Convert(_k, g, 0, Ps, toPrivate: false));
    }

    [Fact]
    public void Mainline_and_disabled_in_place_conversion_answer_ENOTTY()
    {
        foreach (var config in new[] { EmulatorConfig.X86_64(), EmulatorConfig.X86_64() with { Generation = KernelGeneration.InPlaceConversionV8 } })
        {
            using var k = new EmulatedKernel(config);
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys, KvmConstants.KVM_X86_SW_PROTECTED_VM);
            using var g = Raw.CreateGmem(k, vm, Ps, KvmConstants.GUEST_MEMFD_FLAG_MMAP);
            Assert.Equal(Raw.ENOTTY, Raw.Convert(k, g, 0, Ps, toPrivate: false));
        }
    }

    [Fact]
    public void Init_private_then_shared_preserves_content_and_back_to_private_faults_again()
    {
        using var g = Gmem(1);
        nint a = Map(g, 1);
        Assert.Equal(HostAccessFault.PrivatePage, _k.CheckHostAccess(a, 1));
        Assert.Equal(0, Raw.Convert(_k, g, 0, Ps, toPrivate: false));
        Assert.Null(_k.CheckHostAccess(a, Ps));
        Marshal.WriteByte(a, 0, (byte)'A');
        Assert.Equal(0, Raw.Convert(_k, g, 0, Ps, toPrivate: true));
        Assert.Equal(HostAccessFault.PrivatePage, _k.CheckHostAccess(a, 1));
        Assert.Equal(1, _k.HostMappingZapCount(a));
        Assert.Equal(0, Raw.Convert(_k, g, 0, Ps, toPrivate: false));
        Assert.Equal((byte)'A', Marshal.ReadByte(a, 0));
        Assert.Equal(0, _k.Munmap(a, Ps));
    }

    [Fact]
    public void Init_shared_starts_shared_and_equal_ranges_are_a_no_op()
    {
        using var g = Gmem(2, initShared: true);
        nint a = Map(g, 2);
        Assert.Null(_k.CheckHostAccess(a, 2 * Ps));
        Assert.Equal(0, Raw.Convert(_k, g, 0, 2 * Ps, toPrivate: false));
        Assert.Equal(0, _k.HostMappingZapCount(a));
        Assert.Equal(0, Raw.Convert(_k, g, Ps, Ps, toPrivate: true));
        Assert.Null(_k.CheckHostAccess(a, Ps));
        Assert.Equal(HostAccessFault.PrivatePage, _k.CheckHostAccess(a + (nint)Ps, 1));
        Assert.Equal(0, _k.Munmap(a, 2 * Ps));
    }

    [Fact]
    public void Indexing_converts_exactly_the_requested_page()
    {
        using var g = Gmem(4, initShared: true);
        nint a = Map(g, 4);
        for (ulong p = 0; p < 4; p++)
        {
            Assert.Equal(0, Raw.Convert(_k, g, p * Ps, Ps, toPrivate: true));
            for (ulong q = 0; q < 4; q++)
                Assert.Equal(q == p ? HostAccessFault.PrivatePage : null, _k.CheckHostAccess(a + (nint)(q * Ps), 1));
            Assert.Equal(0, Raw.Convert(_k, g, p * Ps, Ps, toPrivate: false));
        }
        Assert.Equal(0, _k.Munmap(a, 4 * Ps));
    }

    [Fact]
    public void Conversion_before_allocation_is_recorded_and_first_access_reads_zero()
    {
        using var g = Gmem(2);
        Assert.Equal(0, Raw.Convert(_k, g, 0, 2 * Ps, toPrivate: false));
        nint a = Map(g, 2);
        Assert.Null(_k.CheckHostAccess(a, 2 * Ps));
        Assert.Equal(0, Marshal.ReadByte(a, (int)Ps + 3));
        Assert.Equal(0, _k.Munmap(a, 2 * Ps));
    }

    [Fact]
    public void Unallocated_folios_convert_and_allocated_ones_keep_their_bytes()
    {
        using var g = Gmem(8, initShared: true);
        nint a = Map(g, 8);
        Marshal.WriteByte(a, 0, (byte)'A');
        Marshal.WriteByte(a, (int)Ps, (byte)'A');
        Assert.Equal(0, Raw.Convert(_k, g, 0, 8 * Ps, toPrivate: true));
        for (ulong p = 0; p < 8; p++) Assert.Equal(0, Raw.Convert(_k, g, p * Ps, Ps, toPrivate: false));
        Assert.Equal((byte)'A', Marshal.ReadByte(a, 0));
        Assert.Equal((byte)'A', Marshal.ReadByte(a, (int)Ps));
        Assert.Equal(0, Marshal.ReadByte(a, 2 * (int)Ps));
        Assert.Equal(0, _k.Munmap(a, 8 * Ps));
    }

    [Fact]
    public void Punch_hole_keeps_attributes_and_resets_content()
    {
        using var g = Gmem(2, initShared: true);
        nint a = Map(g, 2);
        Marshal.WriteByte(a, 0, 7);
        Assert.Equal(0, Raw.Convert(_k, g, Ps, Ps, toPrivate: true));
        Assert.Equal(0, _k.Fallocate(g, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 2 * (long)Ps));
        Assert.Equal(0, Marshal.ReadByte(a, 0));
        Assert.Null(_k.CheckHostAccess(a, 1));
        Assert.Equal(HostAccessFault.PrivatePage, _k.CheckHostAccess(a + (nint)Ps, 1));
        Assert.Equal(0, _k.Munmap(a, 2 * Ps));
    }

    [Fact]
    public void Pinned_page_fails_to_private_with_EAGAIN_at_its_offset_and_changes_nothing()
    {
        using var g = Gmem(4, initShared: true);
        nint a = Map(g, 4);
        Assert.Equal(0, _k.PinGuestMemfdPage(g, 2 * Ps, out var pin));
        using (pin)
        {
            var bulk = new kvm_memory_attributes2 { offset = 0, size = 4 * Ps, attributes = KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE };
            Assert.Equal(Raw.EAGAIN, Raw.Attributes2(_k, g, ref bulk));
            Assert.Equal(2 * Ps, bulk.error_offset);
            Assert.Null(_k.CheckHostAccess(a, 4 * Ps)); // all-or-nothing
            var single = new kvm_memory_attributes2 { offset = 2 * Ps, size = Ps, attributes = KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE };
            Assert.Equal(Raw.EAGAIN, Raw.Attributes2(_k, g, ref single));
            Assert.Equal(2 * Ps, single.error_offset);
            Assert.Equal(0, Raw.Convert(_k, g, 0, Ps, toPrivate: true));
            Assert.Equal(0, Raw.Convert(_k, g, 3 * Ps, Ps, toPrivate: true));
        }
        Assert.Equal(0, Raw.Convert(_k, g, 0, 4 * Ps, toPrivate: true));
        Assert.Equal(HostAccessFault.PrivatePage, _k.CheckHostAccess(a + 2 * (nint)Ps, 1));
        Assert.Equal(0, _k.Munmap(a, 4 * Ps));
    }

    [Fact]
    public void Pins_need_a_shared_page_inside_the_file()
    {
        using var g = Gmem(2);
        Assert.Equal(Raw.EFAULT, _k.PinGuestMemfdPage(g, 0, out _));
        Assert.Equal(0, Raw.Convert(_k, g, 0, Ps, toPrivate: false));
        Assert.Equal(Raw.EFAULT, _k.PinGuestMemfdPage(g, 2 * Ps, out _));
        Assert.Equal(0, _k.PinGuestMemfdPage(g, 0, out var pin));
        pin!.Dispose();
        Assert.Equal(Raw.EINVAL, _k.PinGuestMemfdPage(_vm, 0, out _));
    }

    [Fact]
    public void One_TiB_file_converts_in_microseconds()
    {
        using var g = Raw.CreateGmem(_k, _vm, 1UL << 40, KvmConstants.GUEST_MEMFD_FLAG_MMAP);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(0, Raw.Convert(_k, g, 0, 1UL << 40, toPrivate: false));
        Assert.Equal(0, Raw.Convert(_k, g, 1UL << 39, 1UL << 30, toPrivate: true));
        Assert.Equal(0, Raw.Convert(_k, g, 0, 1UL << 40, toPrivate: true));
        sw.Stop();
        Assert.True(sw.ElapsedMilliseconds < 50, $"took {sw.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Guest_path_follows_gmem_attributes_and_deleting_the_slot_makes_the_gpa_shared()
    {
        using var g = Gmem(2);
        Assert.Equal(0, Raw.Region2(_k, _vm, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, 1UL << 32, 2 * Ps, 0, 0, g.Number));
        var kvm = GuestMemoryPath.VmOf(_k, _vm)!;
        ulong gfn = (1UL << 32) / Ps;
        Assert.True(GuestMemoryPath.MemIsPrivate(kvm, gfn));
        Assert.Equal(0, Raw.Convert(_k, g, 0, Ps, toPrivate: false));
        Assert.False(GuestMemoryPath.MemIsPrivate(kvm, gfn));
        Assert.True(GuestMemoryPath.MemIsPrivate(kvm, gfn + 1));
        Assert.Equal(0, Raw.Region2(_k, _vm, 0, 0, 0, 0));
        Assert.False(GuestMemoryPath.MemIsPrivate(kvm, gfn + 1));
    }

    [Fact]
    public void Typed_api_conversion_updates_the_sdk_view()
    {
        using var kvm = Kvm.Open(_k);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var memfd = vm.CreateGuestMemfd(2 * Ps, GuestMemfdFlags.Mmap);
        using var map = memfd.Map();
        Assert.Throws<GuestMemoryFaultException>(() => map.Read<byte>(0));
        memfd.SetAttributes(0, Ps, 0);
        map.Write<byte>(0, 0x5a);
        Assert.Equal(0x5a, map.Read<byte>(0));
        Assert.Null(_k.CheckHostAccess(map.Address, 1));
        var ex = Assert.Throws<MemoryAttributesException>(() => memfd.SetAttributes(0, 3 * Ps, 0));
        Assert.Equal(Kernel.Errno.EINVAL, ex.Errno);
    }
}
