// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Vmm.Tests.GdbTestHost;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Disposing a debugged micro-VM from another thread while its call is stopped in gdb, running under it, stepping or
/// still waiting for gdb: the call ends as <see cref="GuestOutcome.Disposed"/> (or finds the micro-VM disposed), the
/// vCPU and memory are freed only after the run loop left them (MicroVm.Enter's busy gate), and the host survives.
/// </summary>
[Collection(nameof(FdLeakTests))]
public sealed class GdbDisposeTests
{
    /// <summary><c>spin()</c> loops for ever.</summary>
    private static GuestImage SpinImage()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), spin = p.Export("spin");
        p.Place(ref start);
        p.ExitWith(eax);
        p.Place(ref spin);
        a.jmp(spin);
        return p.Build(start);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Dispose_while_stopped_in_gdb_ends_the_call_as_disposed(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var vm = MicroVm.Create(SpinImage(), Debugged(k));
        DebuggedCall session = DebuggedCall.Start(vm, v => v.Call("spin"));
        Assert.StartsWith("T", session.Gdb.Request("?"));
        vm.Dispose();
        CallResult r = session.Finish();
        Assert.Equal(GuestOutcome.Disposed, r.Outcome);
        session.Gdb.Dispose();
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Dispose_while_running_under_gdb_ends_the_call_as_disposed(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var vm = MicroVm.Create(SpinImage(), Debugged(k));
        DebuggedCall session = DebuggedCall.Start(vm, v => v.Call("spin"));
        session.Gdb.Send("c");
        Thread.Sleep(100);
        vm.Dispose();
        CallResult r = session.Finish();
        Assert.Equal(GuestOutcome.Disposed, r.Outcome);
        session.Gdb.Dispose();
    }

    /// <summary>Disposals at random moments of a call waiting for gdb, continued or single-stepped.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Dispose_at_any_moment_of_a_debugged_call_ends_it(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var rnd = new Random(1);
        for (int i = 0; i < 30; i++)
        {
            var vm = MicroVm.Create(SpinImage(), Debugged(k));
            Task<CallResult> call = Task.Run(() => vm.Call("spin"));
            RspClient? gdb = null;
            if (i % 3 != 0)
            {
                gdb = RspClient.Connect(vm.DebuggerEndpoint!);
                gdb.Send(i % 3 == 1 ? "c" : "s");
            }
            Thread.Sleep(rnd.Next(0, 20));
            vm.Dispose();
            try
            {
                Assert.True(call.Wait(TimeSpan.FromSeconds(30)), "the call did not end");
                Assert.Equal(GuestOutcome.Disposed, call.Result.Outcome);
            }
            catch (AggregateException e) when (e.InnerException is ObjectDisposedException)
            {
                // disposed before the call began
            }
            gdb?.Dispose();
        }
    }
}
