// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="MicroVm.CallAsync(string, ulong[])"/> and its overloads: the guest runs on the micro-VM's own vCPU thread
/// (not the caller's, not a thread-pool worker), with the same results as a blocking call, on both kernels; calls queue
/// in order; cancellation and Dispose from other threads end them cleanly.
/// </summary>
public sealed class AsyncCallTests
{
    private static MicroVm CreateLoops(TestKernel k, HostFunctions? functions = null) =>
        MicroVm.Create(Misbehaving.LoopsImage(), k.Options(GuestMemoryBacking.HostMemory) with { Timeout = TimeSpan.FromSeconds(30), HostFunctions = functions });

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task Async_calls_give_what_blocking_calls_give(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Sum.Image(), k.Options(GuestMemoryBacking.HostMemory));
        Assert.Equal(5UL, (await vm.CallAsync("add", 2, 3)).Value);
        Assert.Equal(5UL, (await vm.CallAsync("add", [2, 3])).Value);
        byte[] input = [1, 2, 3, 4];
        CallResult sum = await vm.CallAsync("sum", input);
        Assert.Equal(vm.Call("sum", input).Value, sum.Value);
        CallResult reversed = await vm.CallAsync("reverse", "abc"u8.ToArray());
        Assert.Equal("cba"u8.ToArray(), reversed.Output.ToArray());
        Assert.Equal(GuestOutcome.Exit, (await vm.RunAsync()).Outcome);
        Assert.Throws<MicroVmException>(() => { _ = vm.CallAsync("no_such_function"); }); // thrown at once, nothing queued
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task The_guest_and_its_host_functions_run_on_one_dedicated_thread(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var seen = new List<(int Thread, bool Pool)>();
        var functions = new HostFunctions();
        uint where = functions.Add("where", _ =>
        {
            seen.Add((Environment.CurrentManagedThreadId, Thread.CurrentThread.IsThreadPoolThread));
            return 7;
        });
        using var vm = MicroVm.Create(HostCallProbe.Image(), k.Options(GuestMemoryBacking.HostMemory) with { HostFunctions = functions });
        for (int i = 0; i < 3; i++) Assert.Equal(7UL, (await vm.CallAsync("call", where)).Value);
        Assert.Equal(3, seen.Count);
        Assert.All(seen, s => Assert.False(s.Pool));
        Assert.Single(seen.Select(s => s.Thread).Distinct());
        Assert.NotEqual(Environment.CurrentManagedThreadId, seen[0].Thread);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task Calls_queue_in_order_and_a_token_cancels_the_running_one(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CreateLoops(k);
        using var cts = new CancellationTokenSource();
        Task<CallResult> spinning = vm.CallAsync("spin", cts.Token);
        Task<CallResult> next = vm.CallAsync("add", 40, 2);
        await Task.Delay(100);
        Assert.False(spinning.IsCompleted);
        Assert.False(next.IsCompleted); // queued behind the spinning call
        cts.Cancel();
        Assert.Equal(GuestOutcome.Cancelled, (await spinning.WaitAsync(TimeSpan.FromSeconds(20))).Outcome);
        Assert.Equal(42UL, (await next.WaitAsync(TimeSpan.FromSeconds(20))).Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task Dispose_from_another_thread_stops_the_running_call_and_fails_the_queued_ones(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var vm = CreateLoops(k);
        Task<CallResult> spinning = vm.CallAsync("spin");
        Task<CallResult> queued = vm.CallAsync("add", 1, 2);
        await Task.Delay(100);
        vm.Dispose();
        CallResult stopped = await spinning.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(GuestOutcome.Disposed, stopped.Outcome);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queued.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.True(vm.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => { _ = vm.CallAsync("add", 1, 2); });
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task The_callers_activity_is_the_parent_of_the_calls(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var source = new ActivitySource("KvmSharp.Vmm.Tests." + nameof(AsyncCallTests));
        var stopped = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == Telemetry.MicroVmTelemetry.Name || s.Name == source.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (stopped) stopped.Add(a); },
        };
        ActivitySource.AddActivityListener(listener);
        using var vm = MicroVm.Create(Sum.Image(), k.Options(GuestMemoryBacking.HostMemory));
        using (var parent = source.StartActivity("request")!)
        {
            await vm.CallAsync("add", 1, 1);
            lock (stopped) Assert.Contains(stopped, a => a.Parent == parent && a.OperationName == Telemetry.MicroVmTelemetry.CallActivity);
        }
    }
}
