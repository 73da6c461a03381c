// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// What the SDK adds to the dirty ring: the vCPU-owned mapping, harvesting in order across calls and around the ring,
/// refusals with their values. (The kernel's rules, with guests, are the DirtyRingRules conformance cases.)
/// </summary>
public class DirtyRingTests : KernelTest
{
    private const ulong DataGpa = 0x20000;
    private const int RingBytes = 4096;

    private static ulong Ps => (ulong)PageSize;

    private static Kvm OpenWithRing(string kernel)
    {
        var kvm = Open(kernel);
        if (kvm.CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL) == 0)
        {
            kvm.Dispose();
            Skip.If(true, $"{kernel} has no dirty ring (KVM_CAP_DIRTY_LOG_RING_ACQ_REL = 0)");
        }
        return kvm;
    }

    /// <summary>A real-mode guest writing one byte to each of <paramref name="pages"/> pages from DataGpa, then OUT 0x10.</summary>
    private static HostMemoryGuest PageWriter(Vm vm, int pages) => HostMemoryGuest.Create(vm, a =>
    {
        var loop = a.CreateLabel();
        a.mov(ax, (ushort)(DataGpa >> 4));
        a.mov(cx, (ushort)pages);
        a.Label(ref loop);
        a.mov(ds, ax);
        a.mov(__byte_ptr[0], 1);
        a.add(ax, (ushort)(Ps >> 4));
        a.loop(loop);
        a.@out(0x10, al);
        a.hlt();
    });

    private static void RunFromStart(HostMemoryGuest guest)
    {
        guest.Vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, exit.ToString());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Harvest_into_a_short_span_goes_on_where_it_stopped(string kernel)
    {
        using var kvm = OpenWithRing(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableDirtyRing(RingBytes);
        using var guest = PageWriter(vm, 5);
        using var memory = vm.AllocateMemory(8 * Ps);
        using var slot = vm.AddMemorySlot(1, DataGpa, memory, MemorySlotFlags.LogDirtyPages);
        RunFromStart(guest);
        var ring = guest.Vcpu.DirtyRing;
        Assert.Equal(0, guest.Vcpu.Id);
        Assert.Equal(0, ring.VcpuId);
        Assert.Equal(5, ring.Pending);
        Span<DirtyRingEntry> two = stackalloc DirtyRingEntry[2];
        Assert.Equal(2, ring.Harvest(two));
        Assert.Equal([new DirtyRingEntry(1, 0), new DirtyRingEntry(1, 1)], two.ToArray());
        Assert.Equal(2u, ring.HarvestIndex);
        Assert.Equal(3, ring.Pending);
        Assert.Equal(0, ring.Harvest([]));
        var rest = ring.HarvestAll();
        Assert.Equal([2UL, 3UL, 4UL], rest.Select(e => e.Offset));
        Assert.All(rest, e => Assert.Equal((1, 0), (e.SlotId, e.AddressSpace)));
        Assert.Equal(DataGpa + 4 * Ps, rest[^1].GuestPhysicalAddress(slot.GuestPhysicalAddress));
        Assert.Equal(5, vm.ResetDirtyRings());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Harvesting_follows_the_ring_around_its_end(string kernel)
    {
        // 256 entries; three rounds of 100 pages with a reset after each: entries 256..299 land in slots 0..43 again.
        using var kvm = OpenWithRing(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableDirtyRing(RingBytes);
        using var guest = PageWriter(vm, 100);
        using var memory = vm.AllocateMemory(100 * Ps);
        using var slot = vm.AddMemorySlot(1, DataGpa, memory, MemorySlotFlags.LogDirtyPages);
        var ring = guest.Vcpu.DirtyRing;
        Assert.Equal(256, ring.EntryCount);
        for (int round = 0; round < 3; round++)
        {
            RunFromStart(guest);
            var entries = ring.HarvestAll();
            Assert.Equal(Enumerable.Range(0, 100).Select(p => new DirtyRingEntry(1, (ulong)p)), entries);
            Assert.Equal(100, vm.ResetDirtyRings());
        }
        Assert.Equal(300u, ring.HarvestIndex);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void The_vcpu_owns_and_unmaps_its_ring(string kernel)
    {
        using var kvm = OpenWithRing(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableDirtyRing(2 * RingBytes, DirtyRingOrdering.TotalStoreOrder);
        int mappingsBefore = (kvm.Kernel as EmulatedKernel)?.MappingCount ?? 0;
        var vcpu = vm.CreateVcpu();
        var ring = vcpu.DirtyRing;
        Assert.Same(ring, vcpu.DirtyRing);
        Assert.Equal(512, ring.EntryCount);
        if (kvm.Kernel is EmulatedKernel emulated) Assert.Equal(mappingsBefore + 2, emulated.MappingCount); // kvm_run and the ring
        vcpu.Dispose();
        if (kvm.Kernel is EmulatedKernel after) Assert.Equal(mappingsBefore, after.MappingCount);
        Assert.Throws<ObjectDisposedException>(() => ring.HarvestAll());
        Assert.Throws<ObjectDisposedException>(() => ring.Pending);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void EnableDirtyRing_refusals_carry_the_operation_errno_and_values(string kernel)
    {
        using var kvm = OpenWithRing(kernel);
        using var vm = kvm.CreateVm();
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.EnableDirtyRing(-4096));
        var tooBig = AssertErrno(Errno.E2BIG, () => vm.EnableDirtyRing(2 << 20));
        Assert.Equal("KVM_ENABLE_CAP", tooBig.Operation);
        Assert.Contains("size=0x200000", tooBig.Request, StringComparison.Ordinal);
        Assert.Contains("larger than KVM_CAP_DIRTY_LOG_RING_ACQ_REL = 0x100000", tooBig.Message, StringComparison.Ordinal);
        vm.EnableDirtyRing(RingBytes);
        var twice = AssertErrno(Errno.EINVAL, () => vm.EnableDirtyRing(RingBytes));
        Assert.Contains("ring_enabled=0x1000", twice.Request, StringComparison.Ordinal);
        Assert.Contains("once", twice.Message, StringComparison.Ordinal);
        Assert.Equal(RingBytes, vm.DirtyRingBytes);
    }

    [Fact]
    public void Without_the_capability_EnableDirtyRing_is_a_capability_exception()
    {
        // An arm64 kernel has KVM_CAP_DIRTY_LOG_RING (the TSO ring) = 0: only the ACQ_REL one exists there.
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        Assert.Equal(0, vm.CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING));
        var ex = Assert.Throws<KvmCapabilityException>(() => vm.EnableDirtyRing(RingBytes, DirtyRingOrdering.TotalStoreOrder));
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal("KVM_CAP_DIRTY_LOG_RING", ex.Capability);
        // The default picks the capability the kernel has.
        vm.EnableDirtyRing(RingBytes);
        Assert.Equal(RingBytes, vm.DirtyRingBytes);
    }
}
