// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>Binding guest_memfd to memory slots (kernel-spec.md §2.6; kvm_main.c kvm_set_memory_region, guest_memfd.c kvm_gmem_bind).</summary>
public static class BindingRules
{
    private const GuestMemfdFlags Shared = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;
    private const ulong Gpa = 0x100000;

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_bind: a file range bound to another slot -> EINVAL", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void overlapping_file_ranges_are_einval_and_disjoint_ones_bind(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(4 * ps, Shared);
        using var first = vm.AddGuestMemfdSlot(1, Gpa, 2 * ps, gmem, offset: 0);
        // Page 1 of the file is already bound to slot 1: kvm_gmem_bind answers EINVAL, not EEXIST.
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(2, 2 * Gpa, 2 * ps, gmem, offset: ps).Dispose());
        using var second = vm.AddGuestMemfdSlot(2, 2 * Gpa, 2 * ps, gmem, offset: 2 * ps);
        Assert.Equal(2 * ps, second.MemfdOffset);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_set_memory_region: GPA overlap with another slot -> EEXIST", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void overlapping_guest_physical_ranges_are_eexist(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(4 * ps, Shared);
        using var first = vm.AddGuestMemfdSlot(1, Gpa, 2 * ps, gmem, offset: 0);
        var ex = AssertErrno(Errno.EEXIST, () => vm.AddGuestMemfdSlot(2, Gpa + ps, 2 * ps, gmem, offset: 2 * ps).Dispose());
        Assert.Equal("KVM_SET_USER_MEMORY_REGION2", ex.Operation);
        Assert.Contains("slot=2", ex.Message, StringComparison.Ordinal);
    }

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_bind: gmem of another VM -> EINVAL", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void another_vms_guest_memfd_is_einval(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var other = kvm.CreateVm();
        using var foreign = other.CreateGuestMemfd(2 * (ulong)PageSize, Shared);
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, 2 * (ulong)PageSize, foreign).Dispose());
    }

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_bind: fget fails -> EBADF; not a gmem file -> EINVAL", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void a_closed_or_unknown_descriptor_is_ebadf_and_a_non_guest_memfd_is_einval(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
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

    [ConformanceCase("virt/kvm/kvm_main.c kvm_set_memory_region + guest_memfd.c kvm_gmem_bind: alignment and offset+size > i_size -> EINVAL", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void ranges_beyond_the_file_or_misaligned_are_einval(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(4 * ps, Shared);
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, 4 * ps, gmem, offset: ps).Dispose());   // offset + size > i_size
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, 5 * ps, gmem).Dispose());
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa + 1, ps, gmem).Dispose());              // gpa unaligned
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, ps - 1, gmem).Dispose());              // size unaligned
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, ps, gmem, offset: 1).Dispose());      // offset unaligned
    }

    [ConformanceCase("virt/kvm/kvm_main.c check_memory_region_flags: LOG_DIRTY_PAGES/READONLY with GUEST_MEMFD -> EINVAL", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void dirty_logging_and_read_only_are_not_valid_with_guest_memfd(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(2 * (ulong)PageSize, Shared);
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, (ulong)PageSize, gmem, extraFlags: KvmConstants.KVM_MEM_LOG_DIRTY_PAGES).Dispose());
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, (ulong)PageSize, gmem, extraFlags: KvmConstants.KVM_MEM_READONLY).Dispose());
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_set_memory_region: private memslots are immutable (no re-add, no KVM_MR_MOVE); delete of no slot -> EINVAL", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void guest_memfd_slots_are_immutable_and_can_only_be_deleted(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var gmem = vm.CreateGuestMemfd(4 * ps, Shared);
        var slot = vm.AddGuestMemfdSlot(1, Gpa, ps, gmem);
        // Re-issuing the same slot with KVM_MEM_GUEST_MEMFD is a change to a private memslot: EINVAL.
        AssertErrno(Errno.EINVAL, () => vm.AddGuestMemfdSlot(1, Gpa, ps, gmem, offset: 2 * ps).Dispose());
        // So is moving it (KVM_MR_MOVE).
        AssertErrno(Errno.EINVAL, () => slot.Move(2 * Gpa));
        Assert.Equal(Gpa, slot.GuestPhysicalAddress);
        slot.Dispose(); // delete
        // Deleting again: no such slot.
        var region = new kvm_userspace_memory_region2 { slot = 1 };
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region));
        // The range is free again after deletion.
        using var again = vm.AddGuestMemfdSlot(1, Gpa, ps, gmem, offset: 0);
    }

    [ConformanceCase("virt/kvm/kvm_main.c KVM_SET_USER_MEMORY_REGION: only LOG_DIRTY_PAGES|READONLY valid")]
    public static void legacy_region_ioctl_rejects_the_guest_memfd_flag(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var legacy = new kvm_userspace_memory_region
        {
            slot = 1, flags = KvmConstants.KVM_MEM_GUEST_MEMFD, guest_phys_addr = Gpa, memory_size = (ulong)PageSize,
        };
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion(legacy));
    }

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_bind: binding takes no file reference", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void the_file_may_be_closed_while_bound(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var gmem = vm.CreateGuestMemfd(2 * (ulong)PageSize, Shared);
        using var slot = vm.AddGuestMemfdSlot(1, Gpa, 2 * (ulong)PageSize, gmem);
        gmem.Dispose();
        // Binding holds no file reference; the slot can still be deleted cleanly.
        slot.Delete();
    }
}
