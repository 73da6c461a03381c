// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests.Snapshots;

/// <summary>
/// Snapshots hold no kernel object: taking, restoring, creating from one (also when that is refused half-way) and a
/// pool of one leave no descriptor or mapping behind. Runs alone with the other leak checks.
/// </summary>
[Collection(nameof(FdLeakTests))]
public sealed class SnapshotFdLeakTests
{
    /// <summary>The counter's snapshot as if its guest had been offered private memory, which no default VM offers.</summary>
    private static MicroVmSnapshot WithPrivateMemoryFeature(MicroVmSnapshot snapshot)
    {
        byte[] bytes = SnapshotSamples.Bytes(snapshot);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(32), CallRegion.FeaturePrivateMemory);
        SnapshotSamples.FixChecksum(bytes);
        return SnapshotSamples.Read(bytes);
    }

    private static void UseSnapshots(MicroVmOptions options)
    {
        MicroVmSnapshot snapshot;
        using (var vm = CounterGuest.CreateCountedToThree(options))
        {
            snapshot = vm.Snapshot();
            CounterGuest.Increment(vm, 2);
            vm.Restore(snapshot);
            vm.Restore(snapshot);
        }
        using (var copy = MicroVm.Create(snapshot, options)) Assert.Equal(4UL, CounterGuest.Increment(copy, 1));
        using (var pool = new MicroVmPool(snapshot, options, size: 2))
        {
            MicroVm rented = pool.Rent();
            Assert.Equal(4UL, CounterGuest.Increment(rented, 1));
            pool.Return(rented);
        }
        // Refused after the VM, its memory and (for private memory) the hypercall exit were set up: all closed again.
        var e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(WithPrivateMemoryFeature(snapshot), options));
        Assert.Equal(SnapshotRefusal.FeatureMismatch, e.Reason);
    }

    [KvmTheory]
    [InlineData(GuestMemoryBacking.GuestMemfd)]
    [InlineData(GuestMemoryBacking.HostMemory)]
    public void Snapshots_on_the_real_kernel_leave_no_descriptor_or_mapping_behind(GuestMemoryBacking backing)
    {
        if (backing == GuestMemoryBacking.GuestMemfd) RealKernel.SkipUnlessGuestMemfd();
        var fdsBefore = KvmFds.Kvm();
        int mapsBefore = KvmFds.KvmMappings();
        UseSnapshots(GuestRun.Default with { Memory = backing, Timeout = TimeSpan.FromSeconds(20) });
        var leaked = KvmFds.Kvm().Except(fdsBefore).ToList();
        Assert.True(leaked.Count == 0, "leaked: " + string.Join(", ", leaked));
        Assert.Equal(mapsBefore, KvmFds.KvmMappings());
    }

    [Theory]
    [InlineData(GuestMemoryBacking.GuestMemfd)]
    [InlineData(GuestMemoryBacking.HostMemory)]
    public void Snapshots_on_the_emulated_kernel_leave_nothing_behind(GuestMemoryBacking backing)
    {
        using var k = TestKernel.Emulated();
        int fdsBefore = k.Emulator!.OpenFdCount; // /dev/kvm
        UseSnapshots(CounterGuest.Options(k, backing));
        Assert.Equal(fdsBefore, k.Emulator.OpenFdCount);
        Assert.Equal(0, k.Emulator.MappingCount);
        Assert.Equal(0, k.Emulator.LiveVmCount);
    }
}
