// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Every reason a call is stopped from outside has its own outcome, on both kernels (the real one with the memory it
/// offers — host memory where it has no guest_memfd —, the emulated one with a guest_memfd): the caller's
/// CancellationToken (<see cref="GuestOutcome.Cancelled"/>), the wall-clock limit (<see cref="GuestOutcome.Timeout"/>),
/// the exit budget (<see cref="GuestOutcome.MaxExits"/>) and a Dispose from another thread
/// (<see cref="GuestOutcome.Disposed"/>), each with the guest's RIP, and none leaves a descriptor or mapping behind.
/// Deterministic: the cancellation and the disposal come from the guest's first host call (a port exit), so the guest
/// is between two instructions of <c>forever</c> when it is stopped, whatever the machine's load; only the runaway
/// guest needs its limit to pass, and nothing asserts how long anything took.
/// </summary>
[Collection(nameof(FdLeakTests))]
public sealed class KickOutcomeTests
{
    /// <summary>A limit the deterministic cases never reach: were a kick lost, they would fail as Timeout, not hang.</summary>
    private static readonly TimeSpan Backstop = TimeSpan.FromSeconds(30);

    /// <summary>The bytes of the host-call probe's <c>forever</c> loop: a stop inside it has its RIP in this range.</summary>
    private const ulong ForeverLength = 0x80;

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_call_cancelled_from_its_first_host_call_is_cancelled_with_its_rip_and_leaves_nothing_behind(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var leaks = new LeakCheck(k);
        using var cts = new CancellationTokenSource();
        var functions = new HostFunctions();
        int calls = 0;
        uint cancel = functions.Add("cancel", _ =>
        {
            calls++;
            cts.Cancel(); // kicks the vCPU (immediate_exit): the guest's next KVM_RUN returns EINTR at once
            return 0;
        });
        uint five = functions.Add("five", _ => 5);
        using (var vm = HostCallGuest.Create(functions, k.Options(null) with { Timeout = Backstop }))
        {
            ulong forever = vm.Image.Resolve("forever");
            CallResult r = vm.Call("forever", cts.Token, cancel);
            Assert.Equal(GuestOutcome.Cancelled, r.Outcome);
            Assert.Contains("CancellationToken", r.Detail, StringComparison.Ordinal);
            Assert.InRange(r.Rip, forever, forever + ForeverLength);
            Assert.Equal(1, calls);
            Assert.Equal(1, r.HostCalls);
            Assert.Equal(2, r.Exits); // the host call's port exit, then the KVM_RUN the kick ended
            Assert.False(vm.IsFaulted);
            Assert.Equal(5UL, vm.Call("call", five).Value); // the next call is not cancelled
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_runaway_guest_is_a_timeout_not_a_cancellation(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var leaks = new LeakCheck(k);
        using var cts = new CancellationTokenSource(); // registered, never cancelled
        using (var vm = MicroVm.Create(Misbehaving.LoopsImage(), k.Options(null) with { Timeout = TimeSpan.FromMilliseconds(50) }))
        {
            ulong spin = vm.Image.Resolve("spin");
            CallResult r = vm.Call("spin", cts.Token);
            Assert.Equal(GuestOutcome.Timeout, r.Outcome);
            Assert.Contains("wall-clock limit", r.Detail, StringComparison.Ordinal);
            Assert.InRange(r.Rip, spin, spin + 8); // inside the two-instruction loop
            Assert.False(cts.IsCancellationRequested);
            Assert.False(vm.IsFaulted);
            Assert.Equal(7UL, vm.Call("add", 3, 4).Value);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void The_exit_budget_is_max_exits_not_a_timeout(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var leaks = new LeakCheck(k);
        var functions = new HostFunctions();
        uint nop = functions.Add("nop", _ => 0);
        using (var vm = HostCallGuest.Create(functions, k.Options(null) with { Timeout = Backstop, MaxExits = 10 }))
        {
            ulong forever = vm.Image.Resolve("forever");
            CallResult r = vm.Call("forever", nop);
            Assert.Equal(GuestOutcome.MaxExits, r.Outcome);
            Assert.Equal(10, r.Exits);
            Assert.Equal(10, r.HostCalls);
            Assert.InRange(r.Rip, forever, forever + ForeverLength);
            Assert.False(vm.IsFaulted);
        }
    }

    /// <summary>
    /// Dispose from another thread while the guest runs (here: while its first host call is being served, the disposing
    /// thread joined before the host function returns) stops the guest as <see cref="GuestOutcome.Disposed"/>, not as a
    /// cancellation, and the call disposes the micro-VM on its way out.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_dispose_from_another_thread_during_a_call_is_disposed_and_leaves_nothing_behind(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var leaks = new LeakCheck(k);
        MicroVm? self = null;
        var functions = new HostFunctions();
        uint dispose = functions.Add("dispose", _ =>
        {
            var other = new Thread(() => self!.Dispose());
            other.Start();
            other.Join(); // Dispose from another thread returns at once: the call disposes when it ends
            Assert.False(self!.IsDisposed);
            return 0;
        });
        var vm = HostCallGuest.Create(functions, k.Options(null) with { Timeout = Backstop });
        self = vm;
        ulong forever = vm.Image.Resolve("forever");
        CallResult r = vm.Call("forever", dispose);
        Assert.Equal(GuestOutcome.Disposed, r.Outcome);
        Assert.Contains("disposed", r.Detail, StringComparison.Ordinal);
        Assert.InRange(r.Rip, forever, forever + ForeverLength);
        Assert.Equal(1, r.HostCalls);
        Assert.True(vm.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => vm.Call("forever", dispose));
    }

    /// <summary>The same for an asynchronous call on the micro-VM's vCPU thread, disposed from the awaiting side.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task An_async_call_disposed_by_its_caller_is_disposed(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var leaks = new LeakCheck(k);
        using var inCall = new ManualResetEventSlim();
        using var disposed = new ManualResetEventSlim();
        var functions = new HostFunctions();
        uint wait = functions.Add("wait", _ =>
        {
            inCall.Set();
            disposed.Wait(Backstop); // the caller disposes meanwhile; the guest stops once this returns
            return 0;
        });
        var vm = HostCallGuest.Create(functions, k.Options(null) with { Timeout = Backstop });
        Task<CallResult> call = vm.CallAsync("forever", wait);
        Assert.True(inCall.Wait(Backstop), "the guest never made its host call");
        vm.Dispose();
        disposed.Set();
        CallResult r = await call.WaitAsync(Backstop);
        Assert.Equal(GuestOutcome.Disposed, r.Outcome);
        Assert.Equal(1, r.HostCalls);
        Assert.True(vm.IsDisposed);
    }

    /// <summary>
    /// What a test's micro-VMs hold when they are gone: the real kernel's descriptors and mappings
    /// (<see cref="KvmFds"/>; exact because this collection runs alone), or the emulated kernel's counts.
    /// </summary>
    private sealed class LeakCheck : IDisposable
    {
        private readonly TestKernel _kernel;
        private readonly HashSet<string> _fds;
        private readonly int _maps;
        private readonly int _emulatedFds;

        public LeakCheck(TestKernel kernel)
        {
            _kernel = kernel;
            _fds = KvmFds.Kvm();
            _maps = KvmFds.KvmMappings();
            _emulatedFds = kernel.Emulator?.OpenFdCount ?? 0;
        }

        public void Dispose()
        {
            var leaked = KvmFds.Kvm().Except(_fds).ToList();
            Assert.True(leaked.Count == 0, "leaked: " + string.Join(", ", leaked));
            Assert.Equal(_maps, KvmFds.KvmMappings());
            if (_kernel.Emulator is { } emulator)
            {
                Assert.Equal(_emulatedFds, emulator.OpenFdCount);
                Assert.Equal(0, emulator.MappingCount);
                Assert.Equal(0, emulator.LiveVmCount);
            }
        }
    }
}
