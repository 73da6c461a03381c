// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="SnapshotRestoreMode"/> for arm64 micro-VMs, the outcomes LazyRestoreTests checks on x86-64: on the
/// emulated arm64 kernel with guest_memfd write(2) and KVM userfault (whose bitmap the arm64 stage-2 consults,
/// Stage2Access.cs), a snapshot is restored lazily — each page written on the guest's first touch (a
/// KVM_EXIT_MEMORY_FAULT with KVM_MEMORY_EXIT_FLAG_USERFAULT the run loop serves) or the host's first access — and
/// the guest and the host see exactly what an eager restore gives; pages nobody touches are never written; without
/// KVM userfault LazyIfOffered restores eagerly and Lazy refuses.
/// </summary>
public sealed class Arm64LazyRestoreTests
{
    private static EmulatorConfig Both => EmulatorConfig.Arm64() with { GuestMemfdWrite = true, KvmUserfault = true };

    /// <summary>Four data pages the guest fills, 64 KiB apart, in RAM above the image.</summary>
    private static readonly ulong[] DataPages = [0x18_0000, 0x19_0000, 0x1A_0000, 0x1B_0000];

    private static ulong Marker(int page) => 0xA5A5_0000_0000_0000UL + (ulong)(uint)(page + 1);

    private static MicroVmOptions Options(Kvm kvm, SnapshotRestoreMode mode) =>
        Arm64Kernel.Options(kvm) with { Memory = GuestMemoryBacking.GuestMemfd, SnapshotRestore = mode };

    /// <summary>store(addr, v): [addr] = v; load(addr) → [addr].</summary>
    private static GuestImage Image()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        var start = p.Export("_start");
        var store = p.Export("store");
        var load = p.Export("load");
        a.Bind(start);
        p.ExitWith(0);
        a.Bind(store);
        a.Str(X(1), X(0));
        a.Movz(X(0), 0);
        a.Ret();
        a.Bind(load);
        a.Ldr(X(0), X(0));
        a.Ret();
        return p.Build(start);
    }

    private static ulong Value(MicroVm vm, string function, params ulong[] args)
    {
        CallResult r = vm.Call(function, args);
        Assert.True(r.IsSuccess, r.ToString());
        return r.Value!.Value;
    }

    /// <summary>A micro-VM whose guest stored <see cref="Marker"/> into each data page.</summary>
    private static MicroVm Filled(MicroVmOptions options)
    {
        var vm = MicroVm.Create(Image(), options);
        for (int i = 0; i < DataPages.Length; i++) Value(vm, "store", DataPages[i], Marker(i));
        return vm;
    }

    private static void Run(EmulatorConfig config, Action<Kvm> body)
    {
        using var emulated = new EmulatedKernel(config);
        using (var kvm = Kvm.Open(emulated, proposals: config.Proposals)) body(kvm);
        Assert.Equal(0, emulated.OpenFdCount);
    }

    [Fact]
    public void A_micro_vm_created_from_a_snapshot_writes_only_the_pages_it_touches_and_sees_what_an_eager_restore_gives()
    {
        using var emulated = new EmulatedKernel(Both);
        var counter = new PwriteCounter(emulated);
        using var kvm = Kvm.Open(counter, proposals: Both.Proposals);
        MicroVmSnapshot snapshot;
        using (var source = Filled(Options(kvm, SnapshotRestoreMode.Eager)))
            snapshot = source.Snapshot();

        using var eager = MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.Eager));
        Assert.False(eager.LastRestoreWasLazy);
        Assert.False(eager.Memory.IsPopulatingLazily);

        counter.Restart();
        using var lazy = MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.LazyIfOffered));
        Assert.Equal(GuestArchitecture.Arm64, lazy.Architecture);
        Assert.True(lazy.LastRestoreWasLazy);
        Assert.True(lazy.Memory.IsPopulatingLazily);
        Assert.Equal(0, counter.Pages);
        // The guest touches two of the four data pages (plus code, tables, stack and call region).
        Assert.Equal(Marker(1), Value(lazy, "load", DataPages[1]));
        Assert.Equal(Marker(3), Value(lazy, "load", DataPages[3]));
        long touched = lazy.Memory.LazyPagesPopulated;
        Assert.True(touched > 0 && touched < snapshot.PageCount, $"{touched} of {snapshot.PageCount} snapshot pages written");
        Assert.Equal(touched, counter.Pages);
        // The untouched data pages were never written: still marked, and the touched count did not include them.
        Assert.True(lazy.Memory.IsPopulatingLazily);

        Assert.Equal(Marker(1), Value(eager, "load", DataPages[1]));
        Assert.Equal(Marker(3), Value(eager, "load", DataPages[3]));
        // A host read of all memory writes the rest first: both micro-VMs hold the same bytes.
        byte[] a = new byte[eager.Memory.Size], b = new byte[lazy.Memory.Size];
        eager.Memory.Read(0, a);
        lazy.Memory.Read(0, b);
        Assert.Equal(a, b);
        Assert.False(lazy.Memory.IsPopulatingLazily);
        Assert.Equal(snapshot.PageCount, counter.Pages);
        // And the guest reads the pages the host populated.
        Assert.Equal(Marker(0), Value(lazy, "load", DataPages[0]));
        Assert.Equal(Marker(2), Value(lazy, "load", DataPages[2]));
    }

    [Fact]
    public void Untouched_pages_are_never_written_while_the_guest_runs() => Run(Both, kvm =>
    {
        MicroVmSnapshot snapshot;
        using (var source = Filled(Options(kvm, SnapshotRestoreMode.Eager)))
            snapshot = source.Snapshot();
        using var lazy = MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.Lazy));
        Assert.Equal(Marker(0), Value(lazy, "load", DataPages[0]));
        long afterFirst = lazy.Memory.LazyPagesPopulated;
        // The same page again, and calls that touch no data page: nothing more is written.
        Assert.Equal(Marker(0), Value(lazy, "load", DataPages[0]));
        Assert.Equal(afterFirst, lazy.Memory.LazyPagesPopulated);
        // Each further data page the guest reads costs exactly one page.
        Assert.Equal(Marker(2), Value(lazy, "load", DataPages[2]));
        Assert.Equal(afterFirst + 1, lazy.Memory.LazyPagesPopulated);
        // A store to a page the snapshot holds populates it first: the rest of the page keeps the snapshot's bytes.
        Assert.Equal(0UL, Value(lazy, "store", DataPages[3] + 8, 7));
        Assert.Equal(afterFirst + 2, lazy.Memory.LazyPagesPopulated);
        Assert.Equal(Marker(3), Value(lazy, "load", DataPages[3]));
        Assert.Equal(7UL, Value(lazy, "load", DataPages[3] + 8));
        Assert.Equal(afterFirst + 2, lazy.Memory.LazyPagesPopulated);
        Assert.True(lazy.Memory.IsPopulatingLazily);
    });

    [Fact]
    public void Restore_is_lazy_again_each_time_and_a_snapshot_taken_mid_way_holds_every_page() => Run(Both, kvm =>
    {
        using var vm = Filled(Options(kvm, SnapshotRestoreMode.Lazy));
        MicroVmSnapshot snapshot = vm.Snapshot();
        Assert.False(vm.LastRestoreWasLazy);
        for (int round = 0; round < 3; round++)
        {
            Assert.Equal(Marker(1), Value(vm, "load", DataPages[1]));
            Value(vm, "store", DataPages[1], (ulong)round);
            vm.Restore(snapshot);
            Assert.True(vm.LastRestoreWasLazy);
            Assert.True(vm.Memory.IsPopulatingLazily);
        }
        Assert.Equal(Marker(1), Value(vm, "load", DataPages[1]));
        // Snapshot writes what is still to come before it reads memory: the copy has every page.
        MicroVmSnapshot again = vm.Snapshot();
        Assert.False(vm.Memory.IsPopulatingLazily);
        Assert.Equal(snapshot.PageCount, again.PageCount);
        using var copy = MicroVm.Create(again, Options(kvm, SnapshotRestoreMode.Lazy));
        Assert.True(copy.LastRestoreWasLazy);
        for (int i = 0; i < DataPages.Length; i++) Assert.Equal(Marker(i), Value(copy, "load", DataPages[i]));
    });

    [Fact]
    public void The_host_reads_snapshot_bytes_before_the_guest_touched_them() => Run(Both, kvm =>
    {
        using var source = Filled(Options(kvm, SnapshotRestoreMode.Eager));
        MicroVmSnapshot snapshot = source.Snapshot();
        byte[] expected = new byte[source.Memory.Size];
        source.Memory.Read(0, expected);
        using var lazy = MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.Lazy));
        Assert.True(lazy.Memory.IsPopulatingLazily);
        int page = Environment.SystemPageSize;
        byte[] got = new byte[page];
        foreach (ulong gpa in DataPages)
        {
            lazy.Memory.Read(gpa, got);
            Assert.Equal(expected.AsSpan((int)gpa, page).ToArray(), got);
        }
        Assert.Equal(DataPages.Length, lazy.Memory.LazyPagesPopulated);
        Assert.True(lazy.Memory.IsPopulatingLazily);
        Assert.NotNull(lazy.Memory.Mapping);
        Assert.False(lazy.Memory.IsPopulatingLazily);
        for (int i = 0; i < DataPages.Length; i++) Assert.Equal(Marker(i), Value(lazy, "load", DataPages[i]));
    });

    [Fact]
    public void Without_kvm_userfault_lazy_if_offered_is_eager_and_lazy_is_refused() => Run(EmulatorConfig.Arm64() with { GuestMemfdWrite = true }, kvm =>
    {
        using var source = Filled(Options(kvm, SnapshotRestoreMode.Eager));
        Assert.False(source.Memory.CanRestoreLazily);
        MicroVmSnapshot snapshot = source.Snapshot();
        using (var eager = MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.LazyIfOffered)))
        {
            Assert.False(eager.LastRestoreWasLazy);
            Assert.Equal(Marker(2), Value(eager, "load", DataPages[2]));
        }
        var e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(snapshot, Options(kvm, SnapshotRestoreMode.Lazy)));
        Assert.Equal(SnapshotRefusal.LazyRestoreUnavailable, e.Reason);
        using var vm = Filled(Options(kvm, SnapshotRestoreMode.Lazy));
        var r = Assert.Throws<MicroVmSnapshotException>(() => vm.Restore(snapshot));
        Assert.Equal(SnapshotRefusal.LazyRestoreUnavailable, r.Reason);
    });
}
