// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// What the SDK adds on top of the kernel's mmap rules: typed faults with their details, refusal before any byte
/// is touched, and messages that say what was asked. (The kernel rules themselves are conformance cases.)
/// </summary>
public class GuestMappingTests : KernelTest
{
    private const GuestMemfdFlags Shared = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Beyond_eof_fault_names_the_first_faulting_offset_and_touches_nothing(string kernel)
    {
        using var kvm = Open(kernel);
        RequireGuestMemfd(kvm);
        using var vm = kvm.CreateVm();
        ulong size = 4 * (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(size, Shared);
        using var map = gmem.Map(4 * size);
        map.Fill(0, size, 0xaa);

        var ex = Assert.Throws<GuestMemoryFaultException>(() => map.Fill(0, 4 * size, 0x55));
        Assert.Equal(GuestMemoryFault.BeyondEndOfFile, ex.Fault);
        Assert.Equal(size, ex.FileOffset);
        Assert.Equal(Errno.EFAULT, ex.Errno);
        Assert.Contains("beyond the file size", ex.Message, StringComparison.Ordinal);
        Assert.Throws<GuestMemoryFaultException>(() => map.Write<byte>(size - 1 + (ulong)PageSize, 1));
        Assert.False(map.CanAccess(size, 1));
        Assert.True(map.CanAccess(size - 1, 1));
        Assert.Equal(-1, map.GetSpan(0, (int)size).IndexOfAnyExcept((byte)0xaa));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_fill_longer_than_one_chunk_that_ends_beyond_eof_writes_nothing(string kernel)
    {
        // Fill works in 1 GiB spans; the whole range is checked before the first one is written.
        using var kvm = Open(kernel);
        RequireGuestMemfd(kvm);
        using var vm = kvm.CreateVm();
        const ulong GiB = 1UL << 30;
        using var gmem = vm.CreateGuestMemfd(GiB, Shared);
        using var map = gmem.Map(GiB + (ulong)PageSize);

        var ex = Assert.Throws<GuestMemoryFaultException>(() => map.Fill(0, GiB + (ulong)PageSize, 0x55));
        Assert.Equal(GuestMemoryFault.BeyondEndOfFile, ex.Fault);
        Assert.Equal(GiB, ex.FileOffset);
        Assert.Equal(0, map.Read<byte>(0));
        Assert.Equal(0, map.Read<byte>(GiB - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => map.Fill(GiB, 2 * (ulong)PageSize, 0x55));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Private_fault_and_out_of_mapping_access_are_different_errors(string kernel)
    {
        using var kvm = Open(kernel);
        RequireGuestMemfd(kvm);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize, GuestMemfdFlags.Mmap);
        using var map = gmem.Map();
        var ex = Assert.Throws<GuestMemoryFaultException>(() => map.Read<byte>(0));
        Assert.Equal(GuestMemoryFault.PrivatePage, ex.Fault);
        Assert.Contains("private page", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => map.Read<byte>(4 * (ulong)PageSize));
        Assert.Throws<ArgumentOutOfRangeException>(() => map.GetSpan(0, -1));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Mmap_errors_say_which_flag_or_mode_is_missing(string kernel)
    {
        using var kvm = Open(kernel);
        RequireGuestMemfd(kvm);
        using var vm = kvm.CreateVm();
        using var plain = vm.CreateGuestMemfd(4 * (ulong)PageSize);
        var ex = AssertErrno(Errno.ENODEV, () => plain.Map().Dispose());
        Assert.Equal("mmap", ex.Operation);
        Assert.Contains("GUEST_MEMFD_FLAG_MMAP", ex.Message, StringComparison.Ordinal);
        using var shared = vm.CreateGuestMemfd(4 * (ulong)PageSize, Shared);
        ex = AssertErrno(Errno.EINVAL, () => shared.Map(shared: false).Dispose());
        Assert.Contains("MAP_SHARED", ex.Message, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Create_errors_carry_the_request_and_what_the_vm_supports(string kernel)
    {
        using var kvm = Open(kernel);
        RequireGuestMemfd(kvm);
        using var vm = kvm.CreateVm();
        var ex = AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd((ulong)PageSize, (GuestMemfdFlags)(1UL << 40)).Dispose());
        Assert.Equal("KVM_CREATE_GUEST_MEMFD", ex.Operation);
        Assert.Equal("EINVAL", ex.ErrnoName);
        Assert.Contains("flags=0x10000000000", ex.Message, StringComparison.Ordinal);
        Assert.Contains("this VM supports flags MMAP|INIT_SHARED", ex.Message, StringComparison.Ordinal);
        ex = AssertErrno(Errno.EINVAL, () => vm.CreateGuestMemfd(4097).Dispose());
        Assert.Contains("size=4097", ex.Message, StringComparison.Ordinal);
    }
}
