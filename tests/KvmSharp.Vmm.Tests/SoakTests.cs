// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// One micro-VM on the emulated kernel takes 1 000 calls of every kind — plain, with input and output, with a host call,
/// asynchronous, cancelled from its host call, stopped by the exit budget, and a reset and a restore every 100 — and
/// holds no more descriptors or mappings after them than after the first round: counts, not times.
/// </summary>
[Collection(nameof(FdLeakTests))]
public sealed class SoakTests
{
    private const int Calls = 1000;

    [Fact]
    public async Task A_thousand_calls_of_every_kind_grow_no_descriptor_or_mapping()
    {
        using var k = TestKernel.Emulated(EmulatorConfig.LikeThisHost() with { GuestMemfdWrite = true }, "emulated with guest_memfd write");
        EmulatedKernel emulator = k.Emulator!;
        var functions = new HostFunctions();
        CancellationTokenSource? cancelling = null;
        uint cancel = functions.Add("cancel", _ =>
        {
            cancelling!.Cancel();
            return 0;
        });
        uint twice = functions.Add("twice", c => c.Args[0] * 2);
        using var vm = HostCallGuest.Create(functions, k.Options(GuestMemoryBacking.GuestMemfd) with { MaxExits = 50 });
        var snapshot = vm.Snapshot();
        (int Fds, int Maps, int KernelObjects)? after = null;
        for (int i = 0; i < Calls; i++)
        {
            CallResult r = (i % 5) switch
            {
                0 => vm.Call("call", twice, (ulong)i),
                1 => vm.Call("call6", HostCallGuest.Call6Input(twice, (ulong)i)),
                2 => await vm.CallAsync("call", twice, (ulong)i),
                3 => vm.Call("forever", Cancel(out cancelling), cancel),
                _ => vm.Call("forever", twice),
            };
            cancelling?.Dispose();
            cancelling = null;
            GuestOutcome expected = (i % 5) switch { 3 => GuestOutcome.Cancelled, 4 => GuestOutcome.MaxExits, _ => GuestOutcome.Exit };
            Assert.True(r.Outcome == expected, $"call {i}: {r}");
            if (expected == GuestOutcome.Exit) Assert.Equal(2UL * (ulong)i, r.Value);
            if (i % 100 == 99) vm.Reset();
            if (i % 100 == 49) vm.Restore(snapshot);
            // After the first round every kind of call has run once (and made whatever it keeps, e.g. the vCPU thread).
            if (i == 99) after = Counts(emulator);
        }
        Assert.Equal(after, Counts(emulator));
        Assert.Equal(3, emulator.OpenFdCount - 1); // /dev/kvm aside: the VM, the vCPU and the guest_memfd
        Assert.Equal(2, emulator.MappingCount);    // the vCPU's kvm_run and the guest_memfd's mapping

        static CancellationToken Cancel(out CancellationTokenSource? source)
        {
            source = new CancellationTokenSource();
            return source.Token;
        }
    }

    private static (int Fds, int Maps, int KernelObjects) Counts(EmulatedKernel emulator) =>
        (emulator.OpenFdCount, emulator.MappingCount, KvmFds.KernelObjects().Count);
}
