// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Memory;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>mmap of guest_memfd and host faults (kvm_gmem_mmap, kvm_gmem_fault_user_mapping).</summary>
public class GuestMappingTests : KernelTest
{
    private const GuestMemfdFlags Shared = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Mapped_memory_is_read_write_and_a_punched_page_reads_back_zero(string kernel)
    {
        // test_mmap_supported
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong total = 4 * (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(total, Shared);
        using var map = gmem.Map();
        map.Fill(0, total, 0xaa);
        Assert.All(map.GetSpan(0, (int)total).ToArray(), b => Assert.Equal(0xaa, b));

        gmem.PunchHole(0, PageSize);
        Assert.All(map.GetSpan(0, PageSize).ToArray(), b => Assert.Equal(0, b));
        Assert.All(map.GetSpan((ulong)PageSize, (int)total - PageSize).ToArray(), b => Assert.Equal(0xaa, b));

        map.Fill(0, total, 0xaa);
        Assert.All(map.GetSpan(0, (int)total).ToArray(), b => Assert.Equal(0xaa, b));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Two_mappings_of_one_file_see_the_same_bytes(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(2 * (ulong)PageSize, Shared);
        using var a = gmem.Map();
        using var b = gmem.Map((ulong)PageSize, offset: (ulong)PageSize);
        a.Write<ulong>((ulong)PageSize + 8, 0x1122334455667788);
        Assert.Equal(0x1122334455667788UL, b.Read<ulong>(8));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Access_beyond_the_file_size_is_a_typed_fault_and_the_process_survives(string kernel)
    {
        // test_fault_overflow: map 4x the file; bytes past the size would raise SIGBUS.
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong size = 4 * (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(size, Shared);
        using var map = gmem.Map(4 * size);
        map.Fill(0, size, 0xaa);

        var ex = Assert.Throws<GuestMemoryFaultException>(() => map.Fill(0, 4 * size, 0x55));
        Assert.Equal(GuestMemoryFault.BeyondEndOfFile, ex.Fault);
        Assert.Equal(size, ex.FileOffset);
        ex = Assert.Throws<GuestMemoryFaultException>(() => map.Read<byte>(size));
        Assert.Equal(GuestMemoryFault.BeyondEndOfFile, ex.Fault);
        Assert.Throws<GuestMemoryFaultException>(() => map.Write<byte>(size - 1 + (ulong)PageSize, 1));
        Assert.False(map.CanAccess(size, 1));
        Assert.True(map.CanAccess(size - 1, 1));

        // Nothing was touched by the refused Fill: the first `size` bytes still hold 0xaa.
        Assert.All(map.GetSpan(0, (int)size).ToArray(), b => Assert.Equal(0xaa, b));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_private_file_maps_but_every_access_is_a_typed_fault(string kernel)
    {
        // test_fault_private: MMAP without INIT_SHARED; the first access would raise SIGBUS.
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize, GuestMemfdFlags.Mmap);
        using var map = gmem.Map();
        var ex = Assert.Throws<GuestMemoryFaultException>(() => map.Read<byte>(0));
        Assert.Equal(GuestMemoryFault.PrivatePage, ex.Fault);
        Assert.Throws<GuestMemoryFaultException>(() => map.Write<byte>(3 * (ulong)PageSize, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => map.Read<byte>(4 * (ulong)PageSize));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Mmap_without_the_mmap_flag_is_ENODEV(string kernel)
    {
        // test_mmap_not_supported: one page and the whole file.
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize);
        var ex = AssertErrno(Errno.ENODEV, () => gmem.Map((ulong)PageSize).Dispose());
        Assert.Contains("GUEST_MEMFD_FLAG_MMAP", ex.Message, StringComparison.Ordinal);
        AssertErrno(Errno.ENODEV, () => gmem.Map().Dispose());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Private_copy_on_write_mapping_is_EINVAL(string kernel)
    {
        // test_mmap_cow
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize, Shared);
        AssertErrno(Errno.EINVAL, () => gmem.Map(shared: false).Dispose());
        long rc = MappedRegion.Map(kvm.Kernel, gmem.Handle, (ulong)PageSize, LinuxConstants.PROT_READ, LinuxConstants.MAP_PRIVATE, 0, out var region);
        Assert.Equal(-(long)Errno.EINVAL, rc);
        Assert.Null(region);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Mapping_outlives_the_file_descriptor(string kernel)
    {
        // The mapping holds its own file reference: closing the fd leaves the memory usable.
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var gmem = vm.CreateGuestMemfd((ulong)PageSize, Shared);
        using var map = gmem.Map();
        map.Write<uint>(0, 0xfeedface);
        gmem.Dispose();
        Assert.Equal(0xfeedfaceu, map.Read<uint>(0));
    }
}
