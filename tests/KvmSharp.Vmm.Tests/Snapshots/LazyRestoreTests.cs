// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests.Snapshots;

/// <summary>
/// <see cref="SnapshotRestoreMode"/>: on the emulated kernel with guest_memfd write(2) ("[PATCH v7 1/2]") and KVM userfault
/// ("[PATCH v3 00/15] KVM: Introduce KVM Userfault"), a snapshot is restored lazily — its pages marked in the slot's
/// userfault bitmap and each written by write(2) on the guest's first touch or the host's first access — and the guest
/// and the host see exactly what an eager restore gives; without either proposal LazyIfOffered restores eagerly and Lazy
/// refuses.
/// </summary>
public sealed class LazyRestoreTests
{
    private static EmulatorConfig Both => EmulatorConfig.X86_64() with { GuestMemfdWrite = true, KvmUserfault = true };

    private static MicroVmOptions Options(Kvm kvm, SnapshotRestoreMode mode) =>
        GuestRun.Quick with { Kvm = kvm, Memory = GuestMemoryBacking.GuestMemfd, Timeout = TimeSpan.FromSeconds(20), SnapshotRestore = mode };

    [Fact]
    public void A_micro_vm_created_from_a_snapshot_writes_only_the_pages_it_touches_and_sees_what_an_eager_restore_gives()
    {
        using var emulated = new EmulatedKernel(Both);
        var counter = new PwriteCounter(emulated);
        using var kvm = Kvm.Open(counter, proposals: Both.Proposals);
        MicroVmSnapshot snapshot;
        using (var source = CounterGuest.CreateCountedToThree(Options(kvm, SnapshotRestoreMode.Eager)))
            snapshot = source.Snapshot();

        using var eager = MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.Eager));
        Assert.False(eager.LastRestoreWasLazy);
        Assert.False(eager.Memory.IsPopulatingLazily);

        counter.Restart();
        using var lazy = MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.LazyIfOffered));
        Assert.True(lazy.LastRestoreWasLazy);
        Assert.True(lazy.Memory.IsPopulatingLazily);
        Assert.Equal(0, counter.Pages);
        Assert.Equal(4UL, lazy.Call("increment").Value);
        Assert.Equal(Counter.TableEntry(511, CounterGuest.Rounds), lazy.Call("lookup", 511UL).Value);
        long touched = lazy.Memory.LazyPagesPopulated;
        Assert.True(touched > 0 && touched < snapshot.PageCount, $"{touched} of {snapshot.PageCount} snapshot pages written");
        Assert.Equal(touched, counter.Pages);

        Assert.Equal(4UL, eager.Call("increment").Value);
        Assert.Equal(Counter.TableEntry(511, CounterGuest.Rounds), eager.Call("lookup", 511UL).Value);
        // A host read of all memory writes the rest first: both micro-VMs hold the same bytes.
        byte[] a = new byte[eager.Memory.Size], b = new byte[lazy.Memory.Size];
        eager.Memory.Read(0, a);
        lazy.Memory.Read(0, b);
        Assert.Equal(a, b);
        Assert.False(lazy.Memory.IsPopulatingLazily);
        Assert.Equal(snapshot.PageCount, counter.Pages);
    }

    [Fact]
    public void Restore_is_lazy_again_each_time_and_a_snapshot_taken_mid_way_holds_every_page()
    {
        using var emulated = new EmulatedKernel(Both);
        using var kvm = Kvm.Open(emulated, proposals: Both.Proposals);
        using var vm = CounterGuest.CreateCountedToThree(Options(kvm, SnapshotRestoreMode.Lazy));
        MicroVmSnapshot snapshot = vm.Snapshot();
        Assert.False(vm.LastRestoreWasLazy);
        for (int round = 0; round < 3; round++)
        {
            Assert.Equal(4UL, vm.Call("increment").Value);
            vm.Restore(snapshot);
            Assert.True(vm.LastRestoreWasLazy);
            Assert.True(vm.Memory.IsPopulatingLazily);
        }
        Assert.Equal(4UL, vm.Call("increment").Value);
        // Snapshot writes what is still to come before it reads memory: the copy has the table.
        MicroVmSnapshot again = vm.Snapshot();
        Assert.False(vm.Memory.IsPopulatingLazily);
        Assert.Equal(snapshot.PageCount, again.PageCount);
        using var copy = MicroVm.Create(again, Options(kvm, SnapshotRestoreMode.Lazy));
        Assert.Equal(5UL, copy.Call("increment").Value);
        CounterGuest.AssertTableBuilt(copy);
    }

    [Fact]
    public void The_host_reads_snapshot_bytes_before_the_guest_touched_them()
    {
        using var emulated = new EmulatedKernel(Both);
        using var kvm = Kvm.Open(emulated, proposals: Both.Proposals);
        using var source = CounterGuest.CreateCountedToThree(Options(kvm, SnapshotRestoreMode.Eager));
        MicroVmSnapshot snapshot = source.Snapshot();
        byte[] expected = new byte[source.Memory.Size];
        source.Memory.Read(0, expected);
        using var lazy = MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.Lazy));
        Assert.True(lazy.Memory.IsPopulatingLazily);
        // Page by page through the accessors: each populates just its page.
        int page = Environment.SystemPageSize;
        byte[] got = new byte[page];
        for (ulong gpa = 0; gpa < lazy.Memory.Size; gpa += (ulong)page * 97)
        {
            lazy.Memory.Read(gpa, got);
            Assert.Equal(expected.AsSpan((int)gpa, page).ToArray(), got);
        }
        Assert.True(lazy.Memory.IsPopulatingLazily);
        // Handing out the mapping completes the restore (accesses through it are not seen).
        Assert.NotNull(lazy.Memory.Mapping);
        Assert.False(lazy.Memory.IsPopulatingLazily);
        CounterGuest.AssertTableBuilt(lazy);
    }

    [Fact]
    public void Without_kvm_userfault_lazy_if_offered_is_eager_and_lazy_is_refused()
    {
        var writeOnly = EmulatorConfig.X86_64() with { GuestMemfdWrite = true };
        using var emulated = new EmulatedKernel(writeOnly);
        using var kvm = Kvm.Open(emulated, proposals: writeOnly.Proposals);
        using var source = CounterGuest.CreateCountedToThree(Options(kvm, SnapshotRestoreMode.Eager));
        Assert.False(source.Memory.CanRestoreLazily);
        MicroVmSnapshot snapshot = source.Snapshot();
        using var eager = MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.LazyIfOffered));
        Assert.False(eager.LastRestoreWasLazy);
        Assert.Equal(4UL, eager.Call("increment").Value);
        var e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.Lazy)));
        Assert.Equal(SnapshotRefusal.LazyRestoreUnavailable, e.Reason);
    }
}
