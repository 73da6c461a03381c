// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>Binding guest_memfd to memory slots (kvm_main.c kvm_set_memory_region, guest_memfd.c kvm_gmem_bind).</summary>
public class MemorySlotTests : KernelTest
{
    private const GuestMemfdFlags Shared = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;
    private const ulong Gpa = 0x100000;

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Overlapping_file_ranges_are_EINVAL_and_disjoint_ones_bind(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(4 * ps, Shared);
        using var first = vm.AddGuestMemfdSlot(1, Gpa, 2 * ps, gmem, offset: 0);
        // Page 1 of the file is already bound to slot 1: kvm_gmem_bind answers EINVAL, not EEXIST.
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(2, 2 * Gpa, 2 * ps, gmem, offset: ps).Dispose());
        using var second = vm.AddGuestMemfdSlot(2, 2 * Gpa, 2 * ps, gmem, offset: 2 * ps);
        Assert.Equal(2 * ps, second.MemfdOffset);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Overlapping_guest_physical_ranges_are_EEXIST(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(4 * ps, Shared);
        using var first = vm.AddGuestMemfdSlot(1, Gpa, 2 * ps, gmem, offset: 0);
        var ex = AssertErrno(Errno.EEXIST, () => vm.AddGuestMemfdSlot(2, Gpa + ps, 2 * ps, gmem, offset: 2 * ps).Dispose());
        Assert.Equal("KVM_SET_USER_MEMORY_REGION2", ex.Operation);
        Assert.Contains("slot=2", ex.Message, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Another_vms_guest_memfd_is_EINVAL(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var other = kvm.CreateVm();
        using var foreign = other.CreateGuestMemfd(2 * (ulong)PageSize, Shared);
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, 2 * (ulong)PageSize, foreign).Dispose());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_closed_or_unknown_descriptor_is_EBADF_and_a_non_guest_memfd_is_EINVAL(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var region = new kvm_userspace_memory_region2
        {
            slot = 1, flags = KvmConstants.KVM_MEM_GUEST_MEMFD, guest_phys_addr = Gpa, memory_size = (ulong)PageSize,
        };
        var gmem = vm.CreateGuestMemfd((ulong)PageSize);
        region.guest_memfd = (uint)gmem.Handle.Number;
        gmem.Dispose();
        AssertErrno(Errno.EBADF, () => vm.SetUserMemoryRegion2(region));
        region.guest_memfd = 0x7fff0000;
        AssertErrno(Errno.EBADF, () => vm.SetUserMemoryRegion2(region));
        region.guest_memfd = (uint)kvm.Handle.Number; // /dev/kvm is not a guest_memfd
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Ranges_beyond_the_file_or_misaligned_are_EINVAL(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(4 * ps, Shared);
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, 4 * ps, gmem, offset: ps).Dispose());   // offset + size > i_size
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, 5 * ps, gmem).Dispose());
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa + 1, ps, gmem).Dispose());              // gpa unaligned
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, ps - 1, gmem).Dispose());              // size unaligned
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, ps, gmem, offset: 1).Dispose());      // offset unaligned
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Dirty_logging_and_read_only_are_not_valid_with_guest_memfd(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(2 * (ulong)PageSize, Shared);
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, (ulong)PageSize, gmem, extraFlags: KvmConstants.KVM_MEM_LOG_DIRTY_PAGES).Dispose());
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, (ulong)PageSize, gmem, extraFlags: KvmConstants.KVM_MEM_READONLY).Dispose());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Guest_memfd_slots_are_immutable_and_can_only_be_deleted(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(4 * ps, Shared);
        var slot = vm.AddGuestMemfdSlot(1, Gpa, ps, gmem);
        // Re-issuing the same slot with KVM_MEM_GUEST_MEMFD is a change to a private memslot: EINVAL.
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, ps, gmem, offset: 2 * ps).Dispose());
        slot.Dispose(); // delete
        // Deleting again: no such slot.
        var region = new kvm_userspace_memory_region2 { slot = 1 };
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region));
        // The range is free again after deletion.
        using var again = vm.AddGuestMemfdSlot(1, Gpa, ps, gmem, offset: 0);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Legacy_region_ioctl_rejects_the_guest_memfd_flag(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var legacy = new kvm_userspace_memory_region
        {
            slot = 1, flags = KvmConstants.KVM_MEM_GUEST_MEMFD, guest_phys_addr = Gpa, memory_size = (ulong)PageSize,
        };
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion(legacy));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void The_file_may_be_closed_while_bound(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var gmem = vm.CreateGuestMemfd(2 * (ulong)PageSize, Shared);
        using var slot = vm.AddGuestMemfdSlot(1, Gpa, 2 * (ulong)PageSize, gmem);
        gmem.Dispose();
        // Binding holds no file reference; the slot can still be deleted cleanly.
        slot.Delete();
    }
}
