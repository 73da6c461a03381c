// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="MicroVmOptions.DirectMap"/>: on a kernel that offers GUEST_MEMFD_FLAG_NO_DIRECT_MAP (the emulated kernel
/// with the direct map removal proposal) a micro-VM's guest_memfd leaves the direct map by default and everything the
/// sandbox does still works; elsewhere the default changes nothing and <see cref="DirectMapUse.Remove"/> refuses with
/// the reason.
/// </summary>
public sealed class DirectMapTests
{
    private static TestKernel WithProposal() =>
        TestKernel.Emulated(EmulatorConfig.LikeThisHost() with { GuestMemfdNoDirectMap = true }, "emulated + direct map removal");

    [Fact]
    public void By_default_a_micro_vm_leaves_the_direct_map_where_offered_and_calls_resets_and_snapshots_work()
    {
        using var k = WithProposal();
        using var vm = MicroVm.Create(Sum.Image(), k.Options(GuestMemoryBacking.GuestMemfd));
        Assert.True(vm.Memory.RemovedFromDirectMap);
        Assert.Equal(GuestMemory.RequiredFlags | GuestMemfdFlags.NoDirectMap, vm.Memory.Memfd!.Flags);

        Assert.Equal("dfmem_tseug"u8.ToArray(), vm.Call("reverse", "guest_memfd"u8).Output.ToArray());
        var snapshot = vm.Snapshot();
        vm.Reset();
        Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
        vm.Restore(snapshot);
        using var copy = MicroVm.Create(snapshot, k.Options(GuestMemoryBacking.GuestMemfd));
        Assert.True(copy.Memory.RemovedFromDirectMap);
        Assert.Equal(6UL, copy.Call("sum", new byte[] { 1, 2, 3 }).Value);
    }

    [Fact]
    public void Keep_keeps_the_memory_in_the_direct_map_where_it_is_offered()
    {
        using var k = WithProposal();
        using var vm = MicroVm.Create(Sum.Image(), k.Options(GuestMemoryBacking.GuestMemfd) with { DirectMap = DirectMapUse.Keep });
        Assert.False(vm.Memory.RemovedFromDirectMap);
        Assert.Equal(GuestMemory.RequiredFlags, vm.Memory.Memfd!.Flags);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Without_the_proposal_the_default_changes_nothing_and_Remove_says_why(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        // The best memory the kernel has: guest_memfd on the emulator, host memory on this machine's kernel.
        using (var vm = MicroVm.Create(Sum.Image(), k.Options(null)))
        {
            Assert.False(vm.Memory.RemovedFromDirectMap);
            Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
        }
        var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Sum.Image(), k.Options(null) with { DirectMap = DirectMapUse.Remove }));
        Assert.Contains(k.IsReal && RealKernel.NoGuestMemfdReason is not null ? "host memory" : "NO_DIRECT_MAP", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Remove_refuses_host_memory_even_where_the_flag_is_offered()
    {
        using var k = WithProposal();
        var e = Assert.Throws<MicroVmException>(() =>
            MicroVm.Create(Sum.Image(), k.Options(GuestMemoryBacking.HostMemory) with { DirectMap = DirectMapUse.Remove }));
        Assert.Contains("host memory is always in the kernel's direct map", e.Message, StringComparison.Ordinal);
        Assert.Throws<MicroVmException>(() => MicroVm.Create(Sum.Image(), k.Options(GuestMemoryBacking.GuestMemfd) with { DirectMap = (DirectMapUse)9 }));
    }
}
