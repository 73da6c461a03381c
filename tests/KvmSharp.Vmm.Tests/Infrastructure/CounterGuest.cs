// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>The counter guest (<see cref="Counter"/>) as the snapshot tests use it.</summary>
public static class CounterGuest
{
    /// <summary>
    /// The rounds the tests' init runs. Small: guest code is slow on this project's kvm_pvm hosts (about 1.5 µs per
    /// instruction; init(1) takes ≈20 ms there) and the emulator interprets it.
    /// </summary>
    public const ulong Rounds = 1;

    /// <summary>The options of a counter test on <paramref name="kernel"/>: a limit init cannot reach on a busy host.</summary>
    public static MicroVmOptions Options(TestKernel kernel, GuestMemoryBacking? backing)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return kernel.Options(backing, GuestRun.Quick with { Timeout = TimeSpan.FromSeconds(20) });
    }

    /// <summary>Calls increment <paramref name="times"/> times; returns the counter the last call returned.</summary>
    public static ulong Increment(MicroVm vm, int times)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ulong value = 0;
        for (int i = 0; i < times; i++)
        {
            CallResult r = vm.Call("increment");
            Assert.True(r.IsSuccess, r.ToString());
            value = r.Value!.Value;
        }
        return value;
    }

    /// <summary>A counter micro-VM after init(<see cref="Rounds"/>) and three increments: the state the tests snapshot.</summary>
    public static MicroVm CreateCountedToThree(MicroVmOptions options)
    {
        var vm = MicroVm.Create(Counter.Image(), options);
        try
        {
            CallResult init = vm.Call("init", Rounds);
            Assert.True(init.Value == Counter.TableEntries, init.ToString());
            Assert.Equal(3UL, Increment(vm, 3));
            return vm;
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    /// <summary>True when lookup answers from the table init built (so init ran before the snapshot, not since).</summary>
    public static void AssertTableBuilt(MicroVm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        foreach (int i in new[] { 0, 1, 511, Counter.TableEntries - 1 })
            Assert.Equal(Counter.TableEntry(i, Rounds), vm.Call("lookup", (ulong)i).Value);
    }
}
