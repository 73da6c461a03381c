// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests.Snapshots;

/// <summary>
/// Snapshot, restore and create-from-snapshot with the counter guest, on each kernel with each backing: what the
/// guest did after the snapshot is gone, what it did before (its init, its three increments) is there.
/// </summary>
public sealed class SnapshotRestoreTests
{
    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Restore_returns_the_counter_to_the_snapshot_every_time(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, backing));
        MicroVmSnapshot snapshot = vm.Snapshot();
        // Host memory adopts the snapshot on the first restore and rewrites only the changed pages on the later ones:
        // several rounds, with host writes (a span, a fill, a page nobody else touched) as well as the guest's.
        for (int round = 0; round < 3; round++)
        {
            Assert.Equal(8UL, CounterGuest.Increment(vm, 5));
            vm.Memory.Fill(0x60000, 0x1000, 0xEE);
            vm.Memory.GetSpan(Counter.Table, 8).Fill(0xFF);
            vm.Restore(snapshot);
            Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
            Assert.Equal(0UL, vm.Memory.Read<ulong>(0x60000));
            CounterGuest.AssertTableBuilt(vm);
            vm.Restore(snapshot);
        }
        Assert.Equal(3UL, vm.Call("get").Value);
    }

    /// <summary>
    /// What a restore costs: a guest_memfd has no dirty log, so every restore writes all the snapshot's pages; host
    /// memory writes them once (adopting the snapshot), then only the pages changed since: a call that increments the
    /// counter changes its globals page, its stack page and the call region.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Restore_rewrites_only_the_pages_changed_since_the_last_restore_in_host_memory(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, backing));
        MicroVmSnapshot snapshot = vm.Snapshot();
        var rewrites = new List<long>();
        for (int round = 0; round < 4; round++)
        {
            Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
            long before = vm.Memory.PagesRewritten;
            vm.Restore(snapshot);
            rewrites.Add(vm.Memory.PagesRewritten - before);
        }
        string seen = $"pages rewritten per restore: {string.Join(", ", rewrites)} of {snapshot.PageCount} stored";
        if (backing == GuestMemoryBacking.GuestMemfd)
        {
            Assert.All(rewrites, n => Assert.Equal(snapshot.PageCount, n));
        }
        else
        {
            Assert.True(rewrites[0] == snapshot.PageCount, seen);
            Assert.All(rewrites.Skip(1), n => Assert.InRange(n, 1, 4));
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Create_from_a_snapshot_continues_where_it_was_taken_without_running_init(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        MicroVmSnapshot snapshot;
        using (var source = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, backing)))
        {
            snapshot = source.Snapshot();
            Assert.Equal(8UL, CounterGuest.Increment(source, 5)); // the source goes on; the snapshot does not
        }
        using var vm = MicroVm.Create(snapshot, CounterGuest.Options(k, backing));
        Assert.Same(snapshot.Image, vm.Image);
        Assert.Equal(backing, vm.Memory.Backing);
        Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
        CounterGuest.AssertTableBuilt(vm);
        // A second micro-VM of the same snapshot is independent of the first.
        using var other = MicroVm.Create(snapshot, CounterGuest.Options(k, backing));
        Assert.Equal(4UL, CounterGuest.Increment(other, 1));
        Assert.Equal(5UL, CounterGuest.Increment(vm, 1));
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void A_snapshot_stores_only_the_pages_that_are_not_zero(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Counter.Image(), CounterGuest.Options(k, backing));
        Assert.Equal(3UL, CounterGuest.Increment(vm, 3));
        MicroVmSnapshot snapshot = vm.Snapshot();
        // GDT, 4 page-table pages, trampoline, the stack's top page, the call region, the image, the globals: about ten
        // of the 512 pages of a 2 MiB micro-VM.
        Assert.InRange(snapshot.PageCount, 8, 16);
        Assert.Equal(snapshot.PageCount * 4096L, snapshot.StoredBytes);
        var stored = new HashSet<ulong>();
        for (int i = 0; i < snapshot.PageCount; i++)
        {
            stored.Add(snapshot.PageAddress(i));
            Assert.True(snapshot.GetPage(i).ContainsAnyExcept((byte)0));
        }
        Assert.Contains(Layout.Gdt, stored);
        Assert.Contains(Counter.Globals, stored);
        var page = new byte[Layout.PageSize];
        for (ulong gpa = 0; gpa < vm.Memory.Size; gpa += Layout.PageSize)
        {
            if (stored.Contains(gpa)) continue;
            vm.Memory.Read(gpa, page);
            Assert.False(page.AsSpan().ContainsAnyExcept((byte)0), $"page 0x{gpa:X} is not zero but was not stored");
        }
        // After init the table's 16 pages are stored too.
        Assert.True(vm.Call("init", CounterGuest.Rounds).IsSuccess);
        Assert.Equal(snapshot.PageCount + Counter.TableEntries * 8 / 4096, vm.Snapshot().PageCount);
    }

    /// <summary>The snapshot of one kernel's micro-VM runs on the other (each in the best memory it offers).</summary>
    [KvmFact]
    public void A_snapshot_taken_on_one_kernel_runs_on_the_other()
    {
        using var real = TestKernel.Real();
        using var emulated = TestKernel.Emulated();
        foreach (var (from, to) in new[] { (real, emulated), (emulated, real) })
        {
            MicroVmSnapshot snapshot;
            using (var source = CounterGuest.CreateCountedToThree(CounterGuest.Options(from, null)))
            {
                snapshot = source.Snapshot();
            }
            // The emulator's TSC runs at 1 GHz, this host's faster: without TSC scaling the slower rate is refused by
            // default (SnapshotTscAuxTests); here the vCPU keeps the rate of the kernel it runs on.
            using var vm = MicroVm.Create(snapshot, CounterGuest.Options(to, null) with { RequireSnapshotTscRate = false });
            Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
            CounterGuest.AssertTableBuilt(vm);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void A_pool_of_a_snapshot_hands_out_micro_vms_at_the_snapshot(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        MicroVmSnapshot snapshot;
        using (var source = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, backing))) snapshot = source.Snapshot();
        using var pool = new MicroVmPool(snapshot, CounterGuest.Options(k, backing), size: 1);
        for (int use = 0; use < 4; use++)
        {
            MicroVm vm = pool.Rent();
            Assert.Equal(0, pool.Idle);
            Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
            Assert.Equal(6UL, CounterGuest.Increment(vm, 2));
            pool.Return(vm);
            Assert.Equal(1, pool.Idle);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Reset_after_a_restore_goes_back_to_the_fresh_image_and_restore_still_works_after_it(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, backing));
        MicroVmSnapshot snapshot = vm.Snapshot();
        for (int round = 0; round < 2; round++)
        {
            vm.Restore(snapshot);
            vm.Reset();
            Assert.Equal(0UL, vm.Call("get").Value);
            Assert.Equal(Counter.NotInitialised, vm.Call("lookup", 1).Value);
            Assert.Equal(1UL, CounterGuest.Increment(vm, 1));
            vm.Reset();
            Assert.Equal(0UL, vm.Call("get").Value);
            vm.Restore(snapshot);
            Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
        }
    }

    /// <summary>Two snapshots of one micro-VM: restoring one after the other puts back exactly each one's memory.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Switching_between_two_snapshots_restores_each_exactly(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Counter.Image(), CounterGuest.Options(k, backing));
        Assert.Equal(2UL, CounterGuest.Increment(vm, 2));
        MicroVmSnapshot early = vm.Snapshot(); // before init: no table
        Assert.True(vm.Call("init", CounterGuest.Rounds).IsSuccess);
        Assert.Equal(3UL, CounterGuest.Increment(vm, 1));
        MicroVmSnapshot late = vm.Snapshot();
        for (int round = 0; round < 3; round++)
        {
            vm.Restore(early);
            // Before any call, memory and vCPU are exactly the snapshot's: a snapshot of it writes the same bytes, up to
            // the TSC, which went on (no less than the snapshot's).
            AssertSameButTsc(early, vm.Snapshot());
            Assert.Equal(Counter.NotInitialised, vm.Call("lookup", 1).Value);
            Assert.Equal(0UL, vm.Memory.Read<ulong>(Counter.Table + 8));
            Assert.Equal(3UL, CounterGuest.Increment(vm, 1));
            vm.Restore(late);
            AssertSameButTsc(late, vm.Snapshot());
            CounterGuest.AssertTableBuilt(vm);
            Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
        }
    }

    /// <summary>
    /// The file bytes of both equal but the TSC and the checksum (the TSC, its rate and the checksum are the last 44; the
    /// rate is the same), and the TSC no less.
    /// </summary>
    private static void AssertSameButTsc(MicroVmSnapshot expected, MicroVmSnapshot actual)
    {
        byte[] e = Bytes(expected), a = Bytes(actual);
        Assert.Equal(e[..^44], a[..^44]);
        Assert.Equal(e[^36..^32], a[^36..^32]);
        Assert.True(actual.Vcpu.Tsc >= expected.Vcpu.Tsc, $"TSC 0x{actual.Vcpu.Tsc:X} after restoring a snapshot of 0x{expected.Vcpu.Tsc:X}");
    }

    private static byte[] Bytes(MicroVmSnapshot snapshot)
    {
        using var stream = new MemoryStream();
        snapshot.WriteTo(stream);
        return stream.ToArray();
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void A_snapshot_reads_no_guest_memfd_hole_and_so_allocates_none(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        // 8 MiB, of which the guest touches only the first 2 MiB: the rest must stay holes.
        var options = CounterGuest.Options(k, backing) with { MemorySize = 8 << 20 };
        using var vm = CounterGuest.CreateCountedToThree(options);
        Skip.If(vm.Memory.Mapping is null, "host memory has no guest_memfd holes (the capture reads it whole)");
        ulong pages = vm.Memory.Size / Layout.PageSize;
        var before = new bool[pages];
        vm.Memory.Mapping!.GetResidentPages(0, vm.Memory.Size, before);
        MicroVmSnapshot snapshot = vm.Snapshot();
        var after = new bool[pages];
        vm.Memory.Mapping.GetResidentPages(0, vm.Memory.Size, after);
        // The capture left every hole a hole. (How many pages were resident to begin with depends on the kernel: the
        // real one allocates a folio per touched page; the emulator's fast 2 MiB backing makes a host-touched page's
        // neighbours read resident too — see EmulatedKernel.Mincore.)
        Assert.Equal(before, after);
        Assert.True(after.Count(r => r) <= (int)pages / 2, $"{after.Count(r => r)} of {pages} pages resident");
        Assert.True(snapshot.PageCount <= after.Count(r => r));
        // And nothing was lost: a micro-VM from the snapshot carries on from it.
        using var copy = MicroVm.Create(snapshot, options);
        Assert.Equal(4UL, CounterGuest.Increment(copy, 1));
    }
}
