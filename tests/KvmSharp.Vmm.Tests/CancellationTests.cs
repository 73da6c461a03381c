// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// A caller's CancellationToken stops its guest the way the watchdog does (immediate_exit and a signal to the thread
/// in KVM_RUN), from any thread, on both kernels: the call ends as <see cref="GuestOutcome.Cancelled"/> with the
/// guest's RIP, the micro-VM takes its next call without a reset, and no cancellation reaches another call.
/// </summary>
public sealed class CancellationTests
{
    /// <summary>A limit far beyond the tests' cancellations: a cancellation that does not work fails as a timeout, not a hang.</summary>
    private static readonly TimeSpan Backstop = TimeSpan.FromSeconds(30);

    private static MicroVm CreateLoops(TestKernel kernel) =>
        MicroVm.Create(Misbehaving.LoopsImage(), kernel.Options(GuestMemoryBacking.HostMemory) with { Timeout = Backstop });

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Cancelling_from_another_thread_stops_an_endless_guest_and_the_vm_takes_the_next_call(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CreateLoops(k);
        ulong spin = vm.Image.Resolve("spin");
        for (int i = 0; i < 3; i++)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
            var r = vm.Call("spin", cts.Token);
            Assert.Equal(GuestOutcome.Cancelled, r.Outcome);
            Assert.Contains("CancellationToken", r.Detail, StringComparison.Ordinal);
            Assert.InRange(r.Rip, spin, spin + 8); // inside the two-instruction loop
            Assert.True(r.Elapsed >= TimeSpan.FromMilliseconds(40), $"call {i} ended after {r.Elapsed}: the guest did not run");
            Assert.False(vm.IsFaulted);
            Assert.False(vm.Vcpu.ImmediateExit);
            Assert.Equal(40UL + (ulong)i, vm.Call("add", (ulong)i, 40).Value);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_token_cancelled_before_the_call_stops_it_before_the_guest_runs(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CreateLoops(k);
        var r = vm.Call("count", new CancellationToken(canceled: true), 1000);
        Assert.Equal(GuestOutcome.Cancelled, r.Outcome);
        Assert.Equal(vm.Image.Resolve("count"), r.Rip); // not one instruction ran
        Assert.Null(r.Value);
        Assert.Equal(1000UL, vm.Call("count", CancellationToken.None, 1000).Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_cancellation_after_its_call_ended_reaches_no_later_call(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CreateLoops(k);
        using var cts = new CancellationTokenSource();
        Assert.Equal(5UL, vm.Call("add", cts.Token, 2, 3).Value);
        cts.Cancel(); // nobody is in the call any more
        Assert.False(vm.Vcpu.ImmediateExit);
        var next = vm.Call("count", 100_000);
        Assert.Equal(GuestOutcome.Exit, next.Outcome);
        Assert.Equal(100_000UL, next.Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void With_a_token_that_is_never_cancelled_the_limit_still_ends_the_call_as_a_timeout(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Misbehaving.LoopsImage(),
            k.Options(GuestMemoryBacking.HostMemory) with { Timeout = TimeSpan.FromMilliseconds(100) });
        using var cts = new CancellationTokenSource();
        var r = vm.Call("spin", cts.Token);
        Assert.Equal(GuestOutcome.Timeout, r.Outcome);
        Assert.False(cts.IsCancellationRequested);
    }

    /// <summary>The watchdog cannot stop managed code: a host function sees <see cref="HostCallContext.TimedOut"/>.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_host_function_sees_the_cancellation_and_the_call_ends_as_cancelled(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var cts = new CancellationTokenSource();
        var functions = new HostFunctions();
        int polls = 0;
        uint id = functions.Add("patient", c =>
        {
            cts.CancelAfter(20);
            while (!c.TimedOut)
            {
                polls++;
                Thread.Sleep(2);
            }
            return 1;
        });
        uint ok = functions.Add("ok", _ => 2);
        using var vm = HostCallGuest.Create(functions, k.Options(GuestMemoryBacking.HostMemory) with { Timeout = Backstop });
        var r = vm.Call("call", cts.Token, id);
        Assert.Equal(GuestOutcome.Cancelled, r.Outcome);
        Assert.True(polls > 0);
        Assert.Equal(1, r.HostCalls);
        Assert.Equal(2UL, vm.Call("call", ok).Value);
    }
}
