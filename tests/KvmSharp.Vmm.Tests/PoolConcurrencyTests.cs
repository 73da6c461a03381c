// SPDX-License-Identifier: MIT
using System.Collections.Concurrent;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// A pool shared by several threads, as a server's request handlers share it: every renter gets a micro-VM no one else
/// holds, every call sees a reset micro-VM, the pool never keeps more than <see cref="MicroVmPool.MaxIdle"/>, and
/// disposing it while returns are in flight leaves nothing behind.
/// </summary>
public sealed class PoolConcurrencyTests
{
    private const int Threads = 4, RentsPerThread = 25;

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Threads_renting_and_returning_at_once_each_get_their_own_reset_micro_vm(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        // No micro-VM made up front: every one the pool ever holds is then one a thread rented (in `created`), so the
        // count of live ones below is exact (a pre-made one that no thread happened to rent would be idle yet unseen).
        using var pool = new MicroVmPool(Sum.Image(), k.Options(GuestMemoryBacking.HostMemory), size: 0) { MaxIdle = 3 };
        var holders = new ConcurrentDictionary<MicroVm, int>();
        var created = new ConcurrentDictionary<MicroVm, bool>();
        var failures = new ConcurrentQueue<string>();
        using var start = new Barrier(Threads);
        var workers = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < RentsPerThread; i++)
            {
                MicroVm vm = pool.Rent();
                created.TryAdd(vm, true);
                if (!holders.TryAdd(vm, t))
                {
                    failures.Enqueue($"thread {t} rented a micro-VM thread {holders[vm]} holds");
                    continue;
                }
                // What the last user left: the reversed bytes after the input, on a page the image does not touch.
                ulong left = vm.Memory.Read<ulong>(Layout.CallData + 8);
                if (left != 0) failures.Enqueue($"thread {t} round {i}: the last user's data 0x{left:X} survived the reset");
                byte[] input = [.. BitConverter.GetBytes((ulong)(t * 1000 + i))];
                CallResult r = vm.Call("reverse", input);
                if (r.Value != 8) failures.Enqueue($"thread {t} round {i}: {r.Outcome} {r.Detail}");
                holders.TryRemove(vm, out _);
                pool.Return(vm);
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        Assert.Empty(failures);
        Assert.InRange(pool.Idle, 1, 3);
        // Every micro-VM the pool does not keep was disposed on its return: only the idle ones still take calls.
        int alive = created.Keys.Count(vm => !IsDisposed(vm));
        Assert.Equal(pool.Idle, alive);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Disposing_the_pool_during_returns_disposes_every_micro_vm(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var pool = new MicroVmPool(Sum.Image(), k.Options(GuestMemoryBacking.HostMemory), size: Threads);
        MicroVm[] rented = [.. Enumerable.Range(0, Threads).Select(_ => pool.Rent())];
        using var start = new Barrier(Threads + 1);
        var returns = rented.Select(vm => new Thread(() =>
        {
            start.SignalAndWait();
            pool.Return(vm);
        })).ToList();
        returns.ForEach(t => t.Start());
        start.SignalAndWait();
        pool.Dispose();
        returns.ForEach(t => t.Join());

        Assert.Equal(0, pool.Idle);
        Assert.All(rented, vm => Assert.True(IsDisposed(vm)));
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
        if (k.Emulator is { } emulator) Assert.Equal(0, emulator.LiveVmCount);
    }

    [Fact]
    public void MaxIdle_cannot_be_negative()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new MicroVmPool(Sum.Image(), GuestRun.Default, size: 0) { MaxIdle = -1 });
    }

    private static bool IsDisposed(MicroVm vm)
    {
        try
        {
            vm.Reset();
            return false;
        }
        catch (ObjectDisposedException)
        {
            return true;
        }
    }
}
