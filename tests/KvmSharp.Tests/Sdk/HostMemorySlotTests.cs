// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// What the SDK adds to plain and private-capable memory slots: its own checks before the kernel's, typed errors that
/// name the request or the missing capability, the slot's hold on its host memory, and no leaked descriptor or mapping.
/// (The kernel's slot rules themselves are conformance cases: HostMemorySlots, PrivateMemorySlots.)
/// </summary>
public class HostMemorySlotTests : KernelTest
{
    private const ulong Gpa = 0x100000;

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_slot_describes_itself_and_moves(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(4 * ps);
        using var slot = vm.AddMemorySlot(3, Gpa, memory, ps, 2 * ps, MemorySlotFlags.LogDirtyPages);
        Assert.Equal(3u, slot.Slot);
        Assert.Equal(Gpa, slot.GuestPhysicalAddress);
        Assert.Equal(2 * ps, slot.Size);
        Assert.Equal((ulong)memory.Address + ps, slot.UserspaceAddress);
        Assert.Equal(MemorySlotFlags.LogDirtyPages, slot.Flags);
        Assert.False(slot.HasGuestMemfd);
        Assert.Null(slot.Memfd);
        Assert.Null(slot.Mapping);
        Assert.Same(memory, slot.Memory);
        slot.Move(2 * Gpa);
        Assert.Equal(2 * Gpa, slot.GuestPhysicalAddress);
        slot.Delete();
        Assert.Throws<ObjectDisposedException>(() => slot.Move(Gpa));
        // The ids and ranges are free again.
        using var again = vm.AddMemorySlot(3, 2 * Gpa, memory);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void The_sdk_refuses_slots_outside_the_memory_or_empty_before_the_kernel_sees_them(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(2 * ps);
        using var existing = vm.AddMemorySlot(1, Gpa, memory, 0, ps);
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.AddMemorySlot(2, 2 * Gpa, memory, ps, 2 * ps));
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.AddMemorySlot(2, 2 * Gpa, memory, 3 * ps, ps));
        // memory_size = 0 would have deleted slot 1.
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.AddMemorySlot(1, Gpa, memory, 0, 0));
        if (kvm.SupportsGuestMemfd)
        {
            using var gmem = vm.CreateGuestMemfd(2 * ps);
            Assert.Throws<ArgumentOutOfRangeException>(() => vm.AddPrivateMemorySlot(2, 2 * Gpa, 4 * ps, memory, gmem));
        }
        // Slot 1 is still there, untouched: a second slot on its range is EEXIST.
        AssertErrno(Errno.EEXIST, () => vm.AddMemorySlot(2, Gpa, memory, ps, ps));
        using var otherKvm = Kvm.Open(new EmulatedKernel());
        using var foreign = AnonymousMemory.Allocate(otherKvm.Kernel, ps);
        var ex = Assert.Throws<ArgumentException>(() => vm.AddMemorySlot(2, 2 * Gpa, foreign));
        Assert.Contains("kernel", ex.Message, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Kernel_errors_name_the_request(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(2 * ps);
        using var slot = vm.AddMemorySlot(1, Gpa, memory, 0, ps);
        var ex = AssertErrno(Errno.EEXIST, () => vm.AddMemorySlot(2, Gpa, memory, ps, ps));
        // Before 6.8 the SDK uses the legacy ioctl (KVM_CAP_USER_MEMORY2 = 0).
        string expected = vm.CheckExtension(KvmSharp.Abi.KvmCaps.KVM_CAP_USER_MEMORY2) != 0 ? "KVM_SET_USER_MEMORY_REGION2" : "KVM_SET_USER_MEMORY_REGION";
        Assert.Equal(expected, ex.Operation);
        Assert.Contains("slot=2", ex.Request, StringComparison.Ordinal);
        Assert.Contains($"gpa=0x{Gpa:X}", ex.Request, StringComparison.Ordinal);
        Assert.Contains("overlaps another slot", ex.Message, StringComparison.Ordinal);
        ex = AssertErrno(Errno.EINVAL, () => vm.AddMemorySlot(2, 2 * Gpa + 1, memory, ps, ps));
        Assert.IsNotType<KvmCapabilityException>(ex);
        Assert.Contains("page-aligned", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_only_on_a_vm_without_read_only_memory_names_the_capability()
    {
        // Emulator only: a TDX VM has protected state, so kvm_arch_has_readonly_mem() is false (this host has no TDX).
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.X86_64()));
        using var vm = kvm.CreateVm(VmType.Tdx);
        using var memory = vm.AllocateMemory((ulong)PageSize);
        var ex = Assert.Throws<KvmCapabilityException>(() => vm.AddMemorySlot(1, Gpa, memory, MemorySlotFlags.ReadOnly));
        Assert.Equal(nameof(KvmCaps.KVM_CAP_READONLY_MEM), ex.Capability);
        Assert.Equal(0, ex.Reported);
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.False(memory.IsDisposed);
        using var writable = vm.AddMemorySlot(1, Gpa, memory);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_slot_keeps_its_memory_mapped_until_it_is_deleted(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var memory = vm.AllocateMemory((ulong)PageSize);
        nint address = memory.Address;
        var slot = vm.AddMemorySlot(1, Gpa, memory);
        memory.Dispose();
        Assert.True(memory.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => memory.Read<byte>(0));
        // Still mapped: the guest may reach it through the slot.
        Assert.True(AnonymousMemoryTests.IsMapped(address));
        Assert.False(memory.Region.IsClosed);
        slot.Dispose();
        AnonymousMemoryTests.AssertUnmapped(memory);
        slot.Dispose(); // idempotent, and releases nothing twice
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_failed_slot_does_not_hold_the_memory(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var memory = vm.AllocateMemory((ulong)PageSize);
        AssertErrno(Errno.EINVAL, () => vm.AddMemorySlot(1, Gpa + 1, memory));
        memory.Dispose();
        AnonymousMemoryTests.AssertUnmapped(memory);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Slots_leave_no_descriptor_or_mapping_behind(string kernel)
    {
        // KernelTest checks the descriptors on Dispose; KVM mappings are counted in /proc/self/maps, and each anonymous
        // memory must have reached its munmap (checked on the handle: the runtime may map anything at a freed address).
        int kvmMappings = KvmFds.KvmMappings();
        var memories = new List<AnonymousMemory>();
        for (int i = 0; i < 8; i++)
        {
            using var kvm = Open(kernel);
            using var vm = kvm.CreateVm();
            ulong ps = (ulong)PageSize;
            using var shared = vm.AllocateMemory(2 * ps, shared: i % 2 == 0);
            memories.Add(shared);
            using var plain = vm.AddMemorySlot(1, Gpa, shared, 0, ps);
            // Unless guest_memfd can be the VM's memory (6.18+), only the plain slot exists to leak.
            if (vm.GuestMemfdUse != GuestMemfdUse.SoleMemory) continue;
            using var gmem = vm.CreateGuestMemfd(2 * ps, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
            using var both = vm.AddPrivateMemorySlot(2, 2 * Gpa, ps, shared, gmem, sharedOffset: ps);
            using var gmemOnly = vm.AddGuestMemfdSlot(3, 4 * Gpa, ps, gmem, offset: ps); // with an SDK-made mapping
        }
        Assert.All(memories, AnonymousMemoryTests.AssertUnmapped);
        Assert.Equal(kvmMappings, KvmFds.KvmMappings());
    }

    [Fact]
    public void Without_user_memory2_plain_slots_use_the_legacy_ioctl()
    {
        // A kernel from before 6.8: KVM_CAP_USER_MEMORY2 = 0 and KVM_SET_USER_MEMORY_REGION2 unknown (ENOTTY).
        var legacyKernel = new RegionCallCounter(Kernels.Create(Kernels.Emulated61));
        using var emulated = (EmulatedKernel)legacyKernel.Inner;
        using var kvm = Kvm.Open(legacyKernel);
        using var vm = kvm.CreateVm();
        using var memory = vm.AllocateMemory((ulong)PageSize);
        using (var slot = vm.AddMemorySlot(1, Gpa, memory))
        {
            slot.Move(2 * Gpa);
            var ex = Assert.ThrowsAny<KvmException>(() => vm.AddMemorySlot(2, 2 * Gpa, memory));
            Assert.Equal("KVM_SET_USER_MEMORY_REGION", ex.Operation);
        }
        Assert.Equal(0, legacyKernel.Region2Calls);
        Assert.Equal(4, legacyKernel.Region1Calls); // add, move, the failed add, delete
    }
}
