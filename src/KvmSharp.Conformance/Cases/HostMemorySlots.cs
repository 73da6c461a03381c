// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Memory slots backed by ordinary (anonymous) host memory: KVM_SET_USER_MEMORY_REGION2 with userspace_addr = an
/// owned mapping (virt/kvm/kvm_main.c kvm_set_memory_region, check_memory_region_flags; the guest side through
/// __kvm_faultin_pfn). Probed on this host first (Linux 6.18 kvm_pvm): every expectation below held there as written.
/// </summary>
public static class HostMemorySlots
{
    private const byte ReportPort = 0x10;
    private const ulong DataGpa = 0x12000;
    private const ulong SharedGpa = 0x13000;
    private const ulong ReadOnlyGpa = 0x14000;
    private const ulong MovedGpa = 0x16000;

    [ConformanceCase("virt/kvm/kvm_main.c __gfn_to_hva_many + arch/x86/kvm/mmu/mmu.c __kvm_faultin_pfn: guest accesses reach userspace_addr")]
    public static void guest_and_host_share_anonymous_memory_slots(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ushort data = HostMemoryGuest.Offset(DataGpa);
        ushort shared = HostMemoryGuest.Offset(SharedGpa);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            a.mov(al, __byte_ptr[data]);
            a.@out(ReportPort, al);
            a.mov(__byte_ptr[data + 1], 0xff);
            a.mov(al, __byte_ptr[shared]);
            a.@out(ReportPort, al);
            a.mov(__byte_ptr[shared + 1], 0xee);
            a.hlt();
        });
        using var privateAnon = vm.AllocateMemory((ulong)PageSize);
        using var sharedAnon = vm.AllocateMemory((ulong)PageSize, shared: true);
        privateAnon.Write<byte>(0, 0xaa);
        sharedAnon.Write<byte>(0, 0xbb);
        using var dataSlot = vm.AddMemorySlot(1, DataGpa, privateAnon);
        using var sharedSlot = vm.AddMemorySlot(2, SharedGpa, sharedAnon);
        Assert.Equal((ulong)privateAnon.Address, dataSlot.UserspaceAddress);
        Assert.False(dataSlot.HasGuestMemfd);

        AssertReport(guest.Vcpu.Run(), 0xaa);
        AssertReport(guest.Vcpu.Run(), 0xbb);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        Assert.Equal(0xff, privateAnon.Read<byte>(1));
        Assert.Equal(0xee, sharedAnon.Read<byte>(1));
    }

    [ConformanceCase("arch/x86/kvm/mmu/mmu.c kvm_handle_error_pfn: KVM_PFN_ERR_RO_FAULT -> emulated MMIO (KVM_MEM_READONLY)")]
    public static void a_guest_write_to_a_read_only_slot_exits_as_mmio(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        if (vm.CheckExtension(KvmCaps.KVM_CAP_READONLY_MEM) == 0) Skip("KVM_CAP_READONLY_MEM is 0 on this VM");
        ushort ro = HostMemoryGuest.Offset(ReadOnlyGpa);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            a.mov(__byte_ptr[ro], 0x77);
            a.mov(al, __byte_ptr[ro]);
            a.@out(ReportPort, al);
            a.hlt();
        });
        using var memory = vm.AllocateMemory((ulong)PageSize);
        memory.Write<byte>(0, 0x55);
        using var slot = vm.AddMemorySlot(1, ReadOnlyGpa, memory, MemorySlotFlags.ReadOnly);
        Assert.Equal(MemorySlotFlags.ReadOnly, slot.Flags);

        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"expected KVM_EXIT_MMIO, got {exit.ToString()}");
        Assert.True(exit.MmioIsWrite);
        Assert.Equal(ReadOnlyGpa, exit.MmioAddress);
        Assert.Equal(1, exit.MmioData.Length);
        Assert.Equal(0x77, exit.MmioData[0]);
        // Reads are served from the host memory, which the write never reached.
        AssertReport(guest.Vcpu.Run(), 0x55);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        Assert.Equal(0x55, memory.Read<byte>(0));
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_set_memory_region: gpa, size, userspace_addr alignment; access_ok; slot id -> EINVAL", Requires = KernelRequirement.UserMemory2)]
    public static void misaligned_or_out_of_range_plain_slots_are_einval(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(2 * ps);
        AssertErrno(Errno.EINVAL, () => vm.AddMemorySlot(1, DataGpa + 1, memory, 0, ps).Dispose());   // gpa
        AssertErrno(Errno.EINVAL, () => vm.AddMemorySlot(1, DataGpa, memory, 0, ps - 1).Dispose());   // size
        var ex = AssertErrno(Errno.EINVAL, () => vm.AddMemorySlot(1, DataGpa, memory, 1, ps).Dispose()); // userspace_addr
        Assert.Contains("page-aligned", ex.Message, StringComparison.Ordinal);
        // access_ok(): the range must end at or below TASK_SIZE_MAX (0x7fff_ffff_f000 on x86_64 4-level paging);
        // whether the pages are mapped is not checked.
        var region = new kvm_userspace_memory_region2 { slot = 1, guest_phys_addr = DataGpa, memory_size = ps, userspace_addr = 0x7fff_ffff_f000 };
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region));
        region.userspace_addr = 0x8000_0000_0000;
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region));
        // (u16)slot >= KVM_USER_MEM_SLOTS (KVM_CAP_NR_MEMSLOTS) -> EINVAL; the last id is fine.
        uint slots = (uint)vm.CheckExtension(KvmCaps.KVM_CAP_NR_MEMSLOTS);
        AssertErrno(Errno.EINVAL, () => vm.AddMemorySlot(slots, DataGpa, memory).Dispose());
        using var last = vm.AddMemorySlot(slots - 1, DataGpa, memory);
        Assert.Equal(slots - 1, last.Slot);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_set_memory_region: overlap -> EEXIST; delete; delete of no slot -> EINVAL", Requires = KernelRequirement.UserMemory2)]
    public static void overlapping_plain_slots_are_eexist_and_a_deleted_range_is_free_again(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(4 * ps);
        var first = vm.AddMemorySlot(1, DataGpa, memory, 0, 2 * ps);
        var ex = AssertErrno(Errno.EEXIST, () => vm.AddMemorySlot(2, DataGpa, memory, 2 * ps, ps).Dispose());
        Assert.Equal("KVM_SET_USER_MEMORY_REGION2", ex.Operation);
        Assert.Contains("overlaps another slot", ex.Message, StringComparison.Ordinal);
        AssertErrno(Errno.EEXIST, () => vm.AddMemorySlot(2, DataGpa - ps, memory, 2 * ps, 2 * ps).Dispose()); // partial
        // Two slots may map the same host memory (aliases); only guest-physical ranges must not overlap.
        using (vm.AddMemorySlot(2, DataGpa + 2 * ps, memory, 0, ps)) { }
        first.Dispose();
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(new kvm_userspace_memory_region2 { slot = 1 }));
        using var again = vm.AddMemorySlot(2, DataGpa, memory, 2 * ps, 2 * ps);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_set_memory_region: KVM_MR_MOVE of a plain slot")]
    public static void a_plain_slot_moves_and_the_guest_finds_its_memory_at_the_new_address(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ushort moved = HostMemoryGuest.Offset(MovedGpa);
        ushort old = HostMemoryGuest.Offset(DataGpa);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            a.mov(al, __byte_ptr[moved]);
            a.@out(ReportPort, al);
            a.mov(__byte_ptr[moved + 1], 0xee);
            a.mov(al, __byte_ptr[old]);
            a.hlt();
        });
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(ps);
        using var other = vm.AllocateMemory(ps);
        memory.Write<byte>(0, 0xaa);
        using var slot = vm.AddMemorySlot(1, DataGpa, memory);
        using var neighbour = vm.AddMemorySlot(2, SharedGpa, other);
        AssertErrno(Errno.EEXIST, () => slot.Move(SharedGpa));
        Assert.Equal(DataGpa, slot.GuestPhysicalAddress);
        slot.Move(MovedGpa);
        Assert.Equal(MovedGpa, slot.GuestPhysicalAddress);

        AssertReport(guest.Vcpu.Run(), 0xaa);
        // The old range has no slot any more: a read there is MMIO.
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"expected KVM_EXIT_MMIO, got {exit.ToString()}");
        Assert.False(exit.MmioIsWrite);
        Assert.Equal(DataGpa, exit.MmioAddress);
        Assert.Equal(0xee, memory.Read<byte>(1));
        // (A guest_memfd slot cannot move: BindingRules.guest_memfd_slots_are_immutable_and_can_only_be_deleted.)
    }

    [ConformanceCase("virt/kvm/kvm_main.c check_memory_region_flags + kvm_set_memory_region: flag rules for plain slots", Requires = KernelRequirement.UserMemory2)]
    public static void memory_region_flags_are_validated(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(2 * ps);
        // Unknown bits -> EINVAL, on both ioctls.
        AssertErrno(Errno.EINVAL, () => vm.AddMemorySlot(1, DataGpa, memory, 0, ps, (MemorySlotFlags)(1u << 3)).Dispose());
        AssertErrno(Errno.EINVAL, () => vm.AddMemorySlot(1, DataGpa, memory, 0, ps, (MemorySlotFlags)(1u << 31)).Dispose());
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion(new kvm_userspace_memory_region
        {
            slot = 1, flags = 1u << 3, guest_phys_addr = DataGpa, memory_size = ps, userspace_addr = (ulong)memory.Address,
        }));
        using (var both = vm.AddMemorySlot(1, DataGpa, memory, 0, ps, MemorySlotFlags.ReadOnly | MemorySlotFlags.LogDirtyPages))
            Assert.Equal(MemorySlotFlags.ReadOnly | MemorySlotFlags.LogDirtyPages, both.Flags);

        using var slot = vm.AddMemorySlot(1, DataGpa, memory, 0, ps);
        var region = new kvm_userspace_memory_region2
        {
            slot = 1, guest_phys_addr = DataGpa, memory_size = ps, userspace_addr = (ulong)memory.Address,
        };
        vm.SetUserMemoryRegion2(region); // the same region again: nothing to change
        // An existing slot may toggle dirty logging (KVM_MR_FLAGS_ONLY) ...
        vm.SetUserMemoryRegion2(region with { flags = KvmConstants.KVM_MEM_LOG_DIRTY_PAGES });
        vm.SetUserMemoryRegion2(region);
        // ... but not READONLY, its userspace_addr or its size.
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region with { flags = KvmConstants.KVM_MEM_READONLY }));
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region with { userspace_addr = region.userspace_addr + ps }));
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region with { memory_size = 2 * ps }));
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_set_memory_region + guest_memfd.c kvm_gmem_bind: a gmem slot with userspace_addr on a VM without private memory", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void a_private_capable_slot_on_a_default_vm_serves_the_guest_from_host_memory(CaseContext ctx)
    {
        // A default VM has no private memory (KVM_CAP_MEMORY_ATTRIBUTES = 0): every access is shared and goes
        // through userspace_addr, even though the slot is bound to a guest_memfd (created without MMAP, so the slot
        // is not gmem-only).
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        ushort data = HostMemoryGuest.Offset(DataGpa);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            a.mov(al, __byte_ptr[data]);
            a.@out(ReportPort, al);
            a.mov(__byte_ptr[data + 1], 0xff);
            a.hlt();
        });
        using var shared = vm.AllocateMemory(2 * ps);
        using var gmem = vm.CreateGuestMemfd(2 * ps);
        shared.Write<byte>(0, 0xaa);
        using var slot = vm.AddPrivateMemorySlot(1, DataGpa, 2 * ps, shared, gmem);
        Assert.True(slot.HasGuestMemfd);
        Assert.Same(gmem, slot.Memfd);
        Assert.Same(shared, slot.Memory);

        AssertReport(guest.Vcpu.Run(), 0xaa);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        Assert.Equal(0xff, shared.Read<byte>(1));
        // Private-capable slots are immutable like every guest_memfd slot.
        AssertErrno(Errno.EINVAL, () => slot.Move(0x20000));
    }

    [ConformanceCase("arch/x86/kvm/mmu/mmu.c kvm_handle_error_pfn: KVM_PFN_ERR_FAULT -> kvm_mmu_prepare_memory_fault_exit, -EFAULT", Requires = KernelRequirement.UserMemory2)]
    public static void a_guest_access_to_host_memory_that_cannot_be_faulted_in_exits_memory_fault(CaseContext ctx)
    {
        // The typed API keeps a slot's memory mapped, so this needs a raw PROT_NONE mapping: a valid userspace_addr
        // (access_ok only checks the range) whose pages get_user_pages cannot fault in.
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ushort data = HostMemoryGuest.Offset(DataGpa);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            a.mov(al, __byte_ptr[data]);
            a.@out(ReportPort, al);
            a.hlt();
        });
        Assert.Equal(0, KvmSharp.Memory.MappedRegion.Map(ctx.Kernel, null, (ulong)PageSize, LinuxConstants.PROT_NONE,
            LinuxConstants.MAP_PRIVATE | LinuxConstants.MAP_ANONYMOUS, 0, out var none));
        using (none)
        {
            vm.SetUserMemoryRegion2(new kvm_userspace_memory_region2
            {
                slot = 1, guest_phys_addr = DataGpa, memory_size = (ulong)PageSize, userspace_addr = (ulong)none!.Address,
            });
            var exit = guest.Vcpu.Run();
            if (HostDeviations.KvmPvmUnbackedUserMemoryIsMmio(ctx.Target.IsReal))
            {
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"expected KVM_EXIT_MMIO, got {exit.ToString()}");
                Assert.False(exit.MmioIsWrite);
                Assert.Equal(DataGpa, exit.MmioAddress);
            }
            else
            {
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MEMORY_FAULT, $"expected KVM_EXIT_MEMORY_FAULT, got {exit.ToString()}");
                Assert.Equal(0UL, exit.MemoryFaultFlags); // a shared access
                Assert.Equal(DataGpa, exit.MemoryFaultGpa);
                Assert.Equal((ulong)PageSize, exit.MemoryFaultSize);
            }
            vm.SetUserMemoryRegion2(new kvm_userspace_memory_region2 { slot = 1 });
        }
    }

    internal static void AssertReport(VcpuExit exit, byte value)
    {
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"expected KVM_EXIT_IO, got {exit.ToString()}");
        Assert.True(exit.IoIsOut);
        Assert.Equal(ReportPort, exit.IoPort);
        Assert.Equal(value, exit.IoData[0]);
    }
}
