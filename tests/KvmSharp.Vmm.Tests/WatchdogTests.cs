// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The watchdog stops a runaway guest with Vcpu.Kick (immediate_exit + a signal to the thread in KVM_RUN), not by
/// destroying guest memory: the micro-VM takes its next call without a reset, and no kick leaks into a later call.
/// </summary>
public sealed class WatchdogTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMilliseconds(100);

    private static byte[] ReadBytes(MicroVm vm, ulong gpa, int length)
    {
        var bytes = new byte[length];
        vm.Memory.Read(gpa, bytes);
        return bytes;
    }

    private static MicroVm Create() => MicroVm.Create(Misbehaving.LoopsImage(), GuestRun.Default with { Timeout = Limit, MaxExits = 100_000 });

    [KvmFact]
    public void A_timed_out_vm_takes_the_next_call_without_a_reset()
    {
        using var vm = Create();
        ulong spin = vm.Image.Resolve("spin");
        byte[] image = ReadBytes(vm, vm.Image.Entry, 64);
        for (int i = 0; i < 3; i++)
        {
            var r = vm.Call("spin");
            Assert.Equal(GuestOutcome.Timeout, r.Outcome);
            Assert.Contains("kicked", r.Detail, StringComparison.Ordinal);
            Assert.InRange(r.Rip, spin, spin + 8); // inside the two-instruction loop, read back with KVM_GET_REGS
            // The timer may fire a fraction of a millisecond early by the Stopwatch's clock.
            Assert.True(r.Elapsed >= Limit - TimeSpan.FromMilliseconds(10), $"run {i} ended after {r.Elapsed}: the guest did not run");
            Assert.True(r.Elapsed < Limit + TimeSpan.FromSeconds(5), $"run {i} stopped only after {r.Elapsed}");
            Assert.False(vm.IsFaulted);
            Assert.False(vm.Vcpu.ImmediateExit); // the run loop cleared it on its way out
            Assert.Equal(image, ReadBytes(vm, vm.Image.Entry, 64)); // memory untouched: nothing was punched

            var next = vm.Call("add", (ulong)i, 40);
            Assert.Equal(GuestOutcome.Exit, next.Outcome);
            Assert.Equal(40UL + (ulong)i, next.Value);
        }
    }

    [KvmFact]
    public void A_kick_left_over_from_an_earlier_call_does_not_stop_the_next()
    {
        using var vm = Create();
        // What a timer that fired after its call's run loop had stopped leaves behind: immediate_exit set while no
        // thread is in KVM_RUN. The next call clears it before arming its own watchdog.
        vm.Vcpu.Kick();
        Assert.True(vm.Vcpu.ImmediateExit);
        var r = vm.Call("count", 1000);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(1000UL, r.Value);
    }

    [KvmFact]
    public void Stray_kick_signals_only_rerun_the_vcpu()
    {
        // The kick signal without the watchdog having fired (e.g. a late signal of an earlier call): KVM_RUN returns
        // EINTR, the run loop runs again, and the call still completes with its value.
        using var vm = MicroVm.Create(Misbehaving.LoopsImage(), GuestRun.Default with { Timeout = TimeSpan.FromSeconds(30), MaxExits = 1_000_000 });
        IKernel kernel = vm.Vcpu.Vm.Kernel;
        int tid = kernel.GetTid();
        using var started = new ManualResetEventSlim();
        using var stop = new CancellationTokenSource();
        long signals = 0;
        Exception? senderFailure = null;
        var sender = new Thread(() =>
        {
            started.Set();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    if (kernel.KickThread(tid) == 0) Interlocked.Increment(ref signals);
                    Thread.Sleep(1);
                }
            }
            catch (Exception e)
            {
                senderFailure = e; // never out of the thread: that would kill the test host
            }
        });
        sender.Start();
        started.Wait();
        long interruptedRuns = 0;
        try
        {
            // count(n) makes one exit (its return); every further KVM_RUN of the call was a rerun after EINTR.
            // Long enough to be inside KVM_RUN when signals arrive: tens of milliseconds on kvm_pvm (about 2 µs per
            // iteration there); repeated in case a fast host finishes a call between two signals.
            for (int i = 0; i < 50 && interruptedRuns == 0; i++)
            {
                var r = vm.Call("count", 30_000);
                Assert.Equal(GuestOutcome.Exit, r.Outcome);
                Assert.Equal(30_000UL, r.Value);
                interruptedRuns += r.Exits - 1;
            }
        }
        finally
        {
            stop.Cancel();
            sender.Join();
        }
        Assert.Null(senderFailure);
        Assert.True(Interlocked.Read(ref signals) > 0);
        Assert.True(interruptedRuns > 0, "no KVM_RUN was interrupted by a signal");
    }

    [KvmFact]
    public void Micro_vms_on_several_threads_each_time_out_at_their_own_limit()
    {
        // One clock thread keeps every deadline; a later, longer limit must not delay an earlier one, nor the reverse.
        var limits = new[] { TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(100) };
        var results = new CallResult[limits.Length];
        var failures = new Exception?[limits.Length];
        var threads = limits.Select((limit, i) => new Thread(() =>
        {
            // An exception escaping a thread would kill the test host: keep it and fail the test with it below.
            try
            {
                using var vm = MicroVm.Create(Misbehaving.LoopsImage(), GuestRun.Default with { Timeout = limit });
                results[i] = vm.Call("spin");
            }
            catch (Exception e)
            {
                failures[i] = e;
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        foreach (var failure in failures)
        {
            if (failure is not null) throw new InvalidOperationException("a micro-VM thread failed", failure);
        }
        for (int i = 0; i < limits.Length; i++)
        {
            Assert.Equal(GuestOutcome.Timeout, results[i].Outcome);
            Assert.True(results[i].Elapsed >= limits[i] - TimeSpan.FromMilliseconds(10), $"vm {i} stopped after {results[i].Elapsed}");
            Assert.True(results[i].Elapsed < limits[i] + TimeSpan.FromSeconds(5), $"vm {i} stopped only after {results[i].Elapsed}");
        }
    }

    [KvmFact]
    public void Max_exits_also_leaves_the_vm_usable()
    {
        using var vm = MicroVm.Create(Misbehaving.ChattyImage(), GuestRun.Default with { Timeout = Timeout.InfiniteTimeSpan, MaxExits = 50 });
        Assert.Equal(GuestOutcome.MaxExits, vm.Run().Outcome);
        Assert.False(vm.IsFaulted);
        Assert.Equal(GuestOutcome.MaxExits, vm.Run().Outcome);
    }
}
