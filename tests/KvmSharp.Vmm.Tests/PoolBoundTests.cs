// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="MicroVmPool.MaxRented"/>: a bounded pool makes renters beyond the bound wait — blocking or without a thread
/// — until a return, lets them give up (cancellation) or be told the pool is gone (dispose), and frees a place for
/// every micro-VM it handed out, whatever state it comes back in.
/// </summary>
public sealed class PoolBoundTests
{
    /// <summary>How long a renter that must wait is watched to be still waiting.</summary>
    private static readonly TimeSpan StillWaiting = TimeSpan.FromMilliseconds(150);

    private static readonly GuestImage s_image = Sum.Image();

    private static MicroVmPool Bounded(TestKernel k, int maxRented) =>
        new(s_image, k.Options(GuestMemoryBacking.HostMemory), size: 0) { MaxRented = maxRented };

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task A_renter_beyond_the_bound_waits_for_a_return_and_gets_the_returned_vm(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var pool = Bounded(k, maxRented: 2);
        MicroVm a = pool.Rent(), b = pool.Rent();
        Assert.Equal(2, pool.Rented);
        Assert.Equal(5UL, a.Call("add", 2, 3).Value);

        ValueTask<MicroVm> waiting = pool.RentAsync();
        await Task.Delay(StillWaiting);
        Assert.False(waiting.IsCompleted, "a third renter got a micro-VM from a pool of at most two");

        pool.Return(a);
        MicroVm c = await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Same(a, c); // the returned, reset one: no third micro-VM was made
        Assert.Equal(2, pool.Rented);
        Assert.Equal(7UL, c.Call("add", 3, 4).Value);
        pool.Return(b);
        pool.Return(c);
        Assert.Equal(0, pool.Rented);
        Assert.Equal(2, pool.Idle);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_blocking_renter_gives_up_on_cancellation_without_taking_a_place(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var pool = Bounded(k, maxRented: 1);
        MicroVm only = pool.Rent();
        using var cts = new CancellationTokenSource(StillWaiting);
        Assert.ThrowsAny<OperationCanceledException>(() => pool.Rent(cts.Token));
        Assert.Equal(1, pool.Rented);
        pool.Return(only);
        // The cancelled wait took no place: the next renter does not wait.
        using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        MicroVm again = pool.Rent(quick.Token);
        Assert.Same(only, again);
        pool.Return(again);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task Disposing_the_pool_ends_every_wait_with_ObjectDisposedException(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var pool = Bounded(k, maxRented: 1);
        MicroVm only = pool.Rent();
        ValueTask<MicroVm> asyncWait = pool.RentAsync();
        var blockingWait = Task.Run(() => pool.Rent());
        await Task.Delay(StillWaiting);
        Assert.False(asyncWait.IsCompleted);
        Assert.False(blockingWait.IsCompleted);

        pool.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await asyncWait.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => blockingWait.WaitAsync(TimeSpan.FromSeconds(30)));
        pool.Return(only); // after dispose: disposed, not kept
        Assert.True(only.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Returning_a_faulted_or_disposed_vm_frees_its_place_and_a_stranger_frees_none(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var pool = Bounded(k, maxRented: 1);
        MicroVm first = pool.Rent();
        first.Dispose();
        pool.Return(first);
        Assert.Equal(0, pool.Rented);
        Assert.Equal(0, pool.Idle); // a disposed micro-VM is not kept

        using var patient = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        MicroVm second = pool.Rent(patient.Token);
        // A micro-VM the pool did not hand out is reset and kept (the pool owns it now), but frees no place.
        var stranger = MicroVm.Create(s_image, k.Options(GuestMemoryBacking.HostMemory));
        pool.Return(stranger);
        Assert.Equal(1, pool.Idle);
        Assert.Equal(1, pool.Rented);
        using var cts = new CancellationTokenSource(StillWaiting);
        Assert.ThrowsAny<OperationCanceledException>(() => pool.Rent(cts.Token));
        pool.Return(second);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task Many_concurrent_renters_never_hold_more_than_the_bound(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        const int Bound = 2, Renters = 6, Rounds = 8;
        using var pool = Bounded(k, maxRented: Bound);
        int holding = 0, most = 0;
        var renters = Enumerable.Range(0, Renters).Select(r => Task.Run(async () =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                MicroVm vm = await pool.RentAsync();
                int now = Interlocked.Increment(ref holding);
                InterlockedMax(ref most, now);
                try
                {
                    Assert.Equal((ulong)(r + i), vm.Call("add", (ulong)r, (ulong)i).Value);
                }
                finally
                {
                    Interlocked.Decrement(ref holding);
                    pool.Return(vm);
                }
            }
        })).ToArray();
        await Task.WhenAll(renters).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.InRange(most, 1, Bound);
        Assert.Equal(0, pool.Rented);
        Assert.InRange(pool.Idle, 1, Bound); // never more micro-VMs made than the bound
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen = Volatile.Read(ref target);
        while (value > seen)
        {
            int was = Interlocked.CompareExchange(ref target, value, seen);
            if (was == seen) return;
            seen = was;
        }
    }

    [Fact]
    public void The_bound_must_be_positive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new MicroVmPool(Sum.Image(), GuestRun.Quick, 0) { MaxRented = 0 });
    }
}
