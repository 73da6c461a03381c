// SPDX-License-Identifier: MIT
using System.Text;
using KvmSharp.Emulation;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests.Snapshots;

/// <summary>Every refusal is a <see cref="MicroVmSnapshotException"/> with its reason and values, and changes nothing.</summary>
public sealed class SnapshotRefusalTests
{
    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void A_faulted_micro_vm_is_not_snapshotted_but_can_be_restored(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, backing));
        MicroVmSnapshot snapshot = vm.Snapshot();
        Assert.Equal(GuestOutcome.Exception, vm.CallAddress(0).Outcome); // a jump to the unmapped page 0: #PF
        Assert.True(vm.IsFaulted);
        var e = Assert.Throws<MicroVmSnapshotException>(vm.Snapshot);
        Assert.Equal(SnapshotRefusal.Faulted, e.Reason);
        Assert.Contains("faulted", e.Message, StringComparison.Ordinal);
        vm.Restore(snapshot);
        Assert.False(vm.IsFaulted);
        Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
    }

    [KvmFact]
    public void A_disposed_micro_vm_refuses_snapshot_and_restore()
    {
        var vm = CounterGuest.CreateCountedToThree(GuestRun.Quick with { Timeout = TimeSpan.FromSeconds(20) });
        MicroVmSnapshot snapshot = vm.Snapshot();
        vm.Dispose();
        Assert.Equal(SnapshotRefusal.Disposed, Assert.Throws<MicroVmSnapshotException>(vm.Snapshot).Reason);
        Assert.Equal(SnapshotRefusal.Disposed, Assert.Throws<MicroVmSnapshotException>(() => vm.Restore(snapshot)).Reason);
    }

    /// <summary>From a host function of its own call: memory is mid-call, so both are refused and the call ends as HostFunctionFailed.</summary>
    [KvmFact]
    public void A_host_function_cannot_snapshot_or_restore_its_own_micro_vm()
    {
        using var vm = HostCallGuest.Create();
        MicroVmSnapshot snapshot = vm.Snapshot();
        uint snap = vm.HostFunctions.Add("snap", _ =>
        {
            vm.Snapshot();
            return 0;
        });
        uint restore = vm.HostFunctions.Add("restore", _ =>
        {
            vm.Restore(snapshot);
            return 0;
        });
        foreach (uint id in new[] { snap, restore })
        {
            CallResult r = vm.Call("call", id);
            Assert.Equal(GuestOutcome.HostFunctionFailed, r.Outcome);
            var e = Assert.IsType<MicroVmSnapshotException>(r.HostFault!.Exception);
            Assert.Equal(SnapshotRefusal.InCall, e.Reason);
            Assert.Contains("re-enter", e.Message, StringComparison.Ordinal);
        }
        // Both can be done once the call is over.
        vm.Restore(vm.Snapshot());
    }

    /// <summary>
    /// A private page cannot be read by the host (a read would be a SIGBUS): refused, naming the page, until the guest
    /// makes it shared again. Needs a VM type with private memory: the emulator with in-place conversion.
    /// </summary>
    [Fact]
    public void A_micro_vm_with_private_pages_is_not_snapshotted_until_they_are_shared()
    {
        using var k = TestKernel.Emulated(EmulatorConfig.X86_64(inPlaceConversion: true), "emulated x86_64 + in-place conversion");
        var options = CounterGuest.Options(k, GuestMemoryBacking.GuestMemfd) with { VmType = VmType.SwProtected, HostFunctions = Vault.Functions(TextWriter.Null) };
        using var vm = MicroVm.Create(Vault.Image(), options);
        Assert.Equal(0UL, vm.Call("seal", Encoding.ASCII.GetBytes("secret")).Value);
        var e = Assert.Throws<MicroVmSnapshotException>(vm.Snapshot);
        Assert.Equal(SnapshotRefusal.PrivatePages, e.Reason);
        Assert.Contains($"0x{Vault.Page:X}", e.Message, StringComparison.Ordinal);
        Assert.Equal(0UL, vm.Call("unseal").Value);
        MicroVmSnapshot snapshot = vm.Snapshot();
        Assert.Equal(GuestAbi.CallRegion.FeaturePrivateMemory, snapshot.Features);
        Assert.Equal(VmType.SwProtected, snapshot.VmType);

        // The snapshot's guest was offered private memory: a micro-VM that cannot offer it refuses the snapshot (and
        // the one it started to create is closed again); one that can takes it, with the sealed bytes.
        int fdsBefore = k.Emulator!.OpenFdCount;
        var refused = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(snapshot, options with { Memory = GuestMemoryBacking.HostMemory }));
        Assert.Equal(SnapshotRefusal.FeatureMismatch, refused.Reason);
        Assert.Contains("features 0x1", refused.Message, StringComparison.Ordinal);
        Assert.Contains("offers 0x0", refused.Message, StringComparison.Ordinal);
        Assert.Equal(fdsBefore, k.Emulator.OpenFdCount);
        using var copy = MicroVm.Create(snapshot, options);
        Assert.Equal(vm.Call("checksum").Value, copy.Call("checksum").Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Restore_refuses_another_image_or_memory_size_and_changes_nothing(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, backing));
        MicroVmSnapshot otherImage;
        using (var sum = MicroVm.Create(Sum.Image(), CounterGuest.Options(k, backing))) otherImage = sum.Snapshot();
        MicroVmSnapshot otherSize;
        using (var big = MicroVm.Create(Counter.Image(), CounterGuest.Options(k, backing) with { MemorySize = 4 << 20 })) otherSize = big.Snapshot();

        var e = Assert.Throws<MicroVmSnapshotException>(() => vm.Restore(otherImage));
        Assert.Equal(SnapshotRefusal.ImageMismatch, e.Reason);
        Assert.Contains($"entry 0x{otherImage.Image.Entry:X}", e.Message, StringComparison.Ordinal);
        Assert.Contains($"{vm.Image.Exports.Count} exports", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<MicroVmSnapshotException>(() => vm.Restore(otherSize));
        Assert.Equal(SnapshotRefusal.MemorySizeMismatch, e.Reason);
        Assert.Contains("0x400000", e.Message, StringComparison.Ordinal);
        Assert.Contains("0x200000", e.Message, StringComparison.Ordinal);
        // Nothing changed: the counter goes on from 3.
        Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
    }

    /// <summary>An image equal in content (built again, or read back from a file) is the same image.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Restore_takes_a_snapshot_of_an_equal_image_built_separately(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, null));
        using var twin = MicroVm.Create(Counter.Image(), CounterGuest.Options(k, null));
        Assert.NotSame(vm.Image, twin.Image);
        twin.Restore(vm.Snapshot());
        Assert.Equal(4UL, CounterGuest.Increment(twin, 1));
    }
}
