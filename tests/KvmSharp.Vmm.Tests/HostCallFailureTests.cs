// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Every way a host call can go wrong ends cleanly: a status for the guest where the guest erred (unknown id, bad
/// pointer), a typed outcome where the host erred (a function that throws), and the call's limits still hold.
/// </summary>
public sealed class HostCallFailureTests
{
    [KvmFact]
    public void Unknown_ids_are_a_status_and_the_guest_runs_on()
    {
        var functions = new HostFunctions();
        functions.Add(1, "one", _ => 1);
        using var vm = HostCallGuest.Create(functions);
        foreach (ulong id in new ulong[] { 2, 0xFFFF_FFFF, 0x1_0000_0001, ulong.MaxValue })
        {
            var r = vm.Call("call_status", id);
            Assert.Equal(GuestOutcome.Exit, r.Outcome);
            Assert.Equal((ulong)HostCallStatus.UnknownFunction, r.Value);
        }
        Assert.False(vm.IsFaulted);
        Assert.Equal(1UL, vm.Call("call", 1).Value);
    }

    public static TheoryData<ulong, ulong> BadRanges => new()
    {
        { 0, 8 },                                   // null guard page
        { Layout.NullGuard + Layout.PageSize - 4, 8 }, // ends on the first mapped page, starts on the guard
        { Layout.StackGuard + 0x10, 1 },             // stack guard page
        { Layout.StackBottom - 1, 2 },               // straddles the stack guard's end
        { MicroVmOptions.DefaultMemorySize - 4, 8 }, // runs past the end of memory
        { MicroVmOptions.DefaultMemorySize, 1 },
        { ulong.MaxValue - 3, 8 },                   // address + length overflows
        { Layout.CallData, ulong.MaxValue },
    };

    [KvmTheory]
    [MemberData(nameof(BadRanges))]
    public void Bad_guest_pointers_become_BadPointer_for_the_guest(ulong address, ulong length)
    {
        var functions = new HostFunctions();
        uint read = functions.Add("read", c => (ulong)c.ReadBytes(c.Args[0], c.Args[1]).Length);
        uint write = functions.Add("write", c =>
        {
            c.Write(c.Args[0], new byte[Math.Min(c.Args[1], 64)]);
            return 0;
        });
        bool valid = true;
        uint check = functions.Add("check", c =>
        {
            valid = c.IsValid(c.Args[0], c.Args[1]);
            return 0;
        });
        using var vm = HostCallGuest.Create(functions);
        var r = vm.Call("call_status", read, address, length);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal((ulong)HostCallStatus.BadPointer, r.Value);
        Assert.Null(r.HostFault);
        if (length <= 64)
            Assert.Equal((ulong)HostCallStatus.BadPointer, vm.Call("call_status", write, address, length).Value);
        Assert.Equal((ulong)HostCallStatus.Ok, vm.Call("call_status", check, address, length).Value);
        Assert.False(valid);
        Assert.False(vm.IsFaulted);
        // Resolve checks its name pointer the same way.
        if (length <= HostFunctions.MaxNameLength)
            Assert.Equal((ulong)HostCallStatus.BadPointer, vm.Call("call_status", HostFunctions.ResolveId, address, length).Value);
    }

    [KvmFact]
    public void Good_edges_and_zero_lengths_are_accepted()
    {
        var functions = new HostFunctions();
        uint read = functions.Add("read", c => (ulong)c.ReadBytes(c.Args[0], c.Args[1]).Length);
        using var vm = HostCallGuest.Create(functions);
        Assert.Equal(0UL, vm.Call("call", read, 0, 0).Value);                                 // (NULL, 0)
        Assert.Equal(8UL, vm.Call("call", read, Layout.Gdt, 8).Value);                       // first mapped page
        Assert.Equal(8UL, vm.Call("call", read, vm.Memory.Size - 8, 8).Value);               // last bytes of memory
        Assert.Equal(Layout.StackGuard - Layout.Gdt, vm.Call("call", read, Layout.Gdt, Layout.StackGuard - Layout.Gdt).Value);
        Assert.Equal(HostCallStatus.Ok, HostCallGuest.LastStatus(vm));
    }

    [KvmFact]
    public void A_function_may_catch_a_bad_pointer_and_answer_its_own_way()
    {
        var functions = new HostFunctions();
        uint id = functions.Add("lenient", c =>
        {
            try
            {
                return c.Read<ulong>(c.Args[0]);
            }
            catch (GuestPointerException e)
            {
                c.Status = HostCallStatus.FirstApplicationStatus;
                return e.Address;
            }
        });
        using var vm = HostCallGuest.Create(functions);
        Assert.Equal(Layout.StackGuard, vm.Call("call", id, Layout.StackGuard).Value);
        Assert.Equal(HostCallStatus.FirstApplicationStatus, HostCallGuest.LastStatus(vm));
    }

    [KvmFact]
    public void Resolve_refuses_empty_and_overlong_names()
    {
        using var vm = HostCallGuest.Create(new HostFunctions());
        Assert.Equal((ulong)HostCallStatus.BadArgument, vm.Call("call_status", HostFunctions.ResolveId, Layout.CallData, 0).Value);
        Assert.Equal((ulong)HostCallStatus.BadArgument,
            vm.Call("call_status", HostFunctions.ResolveId, Layout.CallData, HostFunctions.MaxNameLength + 1).Value);
    }

    [KvmFact]
    public void A_function_that_throws_ends_the_call_with_the_exception_the_function_and_the_rip()
    {
        var functions = new HostFunctions();
        var boom = new InvalidOperationException("boom");
        uint id = functions.Add("explode", _ => throw boom);
        uint ok = functions.Add("ok", _ => 5);
        using var vm = HostCallGuest.Create(functions);
        var r = vm.Call("call", id, 1, 2);
        Assert.Equal(GuestOutcome.HostFunctionFailed, r.Outcome);
        Assert.Equal(-1, r.Status);
        Assert.Null(r.Value);
        Assert.NotNull(r.HostFault);
        Assert.Same(boom, r.HostFault.Exception);
        Assert.Equal("explode", r.HostFault.FunctionName);
        Assert.Equal(id, r.HostFault.FunctionId);
        Assert.Equal(r.Rip, r.HostFault.Rip);
        // The guest stood at its OUT inside call() (or the next instruction on kvm_pvm).
        Assert.InRange(r.Rip, vm.Image.Resolve("call"), vm.Image.Resolve("call_status") - 1);
        Assert.Contains("explode", r.Detail, StringComparison.Ordinal);
        Assert.Contains("boom", r.Detail, StringComparison.Ordinal);
        Assert.Equal(1, r.HostCalls);
        // Like a timeout: stopped by the host with memory intact, so no reset is needed.
        Assert.False(vm.IsFaulted);
        Assert.Equal(5UL, vm.Call("call", ok).Value);
    }

    [KvmFact]
    public void A_GuestPointerException_the_function_made_up_is_a_failure_not_a_status()
    {
        var functions = new HostFunctions();
        uint id = functions.Add("liar", _ => throw new GuestPointerException(0x1234, 1, "was never asked for"));
        using var vm = HostCallGuest.Create(functions);
        Assert.Equal(GuestOutcome.HostFunctionFailed, vm.Call("call", id).Outcome);
    }

    [KvmFact]
    public void Calling_the_same_vm_from_a_host_function_is_refused()
    {
        MicroVm? self = null;
        Exception? refused = null;
        var functions = new HostFunctions();
        uint reenter = functions.Add("reenter", _ => self!.Call("call", 1).Value ?? 0);
        uint polite = functions.Add("polite", _ =>
        {
            refused = Record.Exception(() => self!.Reset());
            return 9;
        });
        using var vm = HostCallGuest.Create(functions);
        self = vm;
        var r = vm.Call("call", reenter);
        Assert.Equal(GuestOutcome.HostFunctionFailed, r.Outcome);
        var e = Assert.IsType<MicroVmException>(r.HostFault!.Exception);
        Assert.Contains("re-enter", e.Message, StringComparison.Ordinal);
        Assert.Contains("'reenter'", e.Message, StringComparison.Ordinal);

        // Caught by the function: the guest just gets the function's answer.
        Assert.Equal(9UL, vm.Call("call", polite).Value);
        Assert.IsType<MicroVmException>(refused);
        Assert.False(vm.IsFaulted);
    }

    [KvmFact]
    public void Another_vm_may_be_called_from_a_host_function()
    {
        using var inner = HostCallGuest.Create(new HostFunctions());
        var functions = new HostFunctions();
        uint id = functions.Add("nested", c => inner.Call("call_status", c.Args[0]).Value ?? 99);
        using var outer = HostCallGuest.Create(functions);
        Assert.Equal((ulong)HostCallStatus.UnknownFunction, outer.Call("call", id, 77).Value);
    }

    [KvmFact]
    public void Disposing_the_vm_from_a_host_function_ends_the_call_then_disposes()
    {
        MicroVm? self = null;
        var functions = new HostFunctions();
        uint id = functions.Add("quit", _ =>
        {
            self!.Dispose();
            return 0;
        });
        var vm = HostCallGuest.Create(functions);
        self = vm;
        var r = vm.Call("repeat", id, 5);
        Assert.Equal(GuestOutcome.HostFunctionFailed, r.Outcome);
        Assert.IsType<ObjectDisposedException>(r.HostFault!.Exception);
        Assert.Equal(1, r.HostCalls);
        Assert.Throws<ObjectDisposedException>(() => vm.Call("call", id));
        vm.Dispose(); // again: a no-op
    }

    [KvmFact]
    public void Host_calls_count_against_MaxExits()
    {
        var functions = new HostFunctions();
        long calls = 0;
        uint id = functions.Add("tick", _ => (ulong)++calls);
        using var vm = HostCallGuest.Create(functions, GuestRun.Quick with { MaxExits = 100 });
        var r = vm.Call("forever", id);
        Assert.Equal(GuestOutcome.MaxExits, r.Outcome);
        Assert.Equal(100, r.Exits);
        Assert.InRange(r.HostCalls, 99, 100); // kvm_pvm may need one entry before the first OUT
        Assert.Equal(r.HostCalls, calls);
        Assert.False(vm.IsFaulted);
        Assert.Equal(0UL, vm.Call("call_status", id).Value);
    }

    [KvmFact]
    public void Host_calls_count_against_the_timeout()
    {
        var functions = new HostFunctions();
        uint id = functions.Add("slow", _ =>
        {
            Thread.Sleep(20);
            return 0;
        });
        var limit = TimeSpan.FromMilliseconds(150);
        using var vm = HostCallGuest.Create(functions, GuestRun.Default with { Timeout = limit, MaxExits = 1_000_000 });
        var r = vm.Call("forever", id);
        Assert.Equal(GuestOutcome.Timeout, r.Outcome);
        Assert.True(r.Elapsed >= limit - TimeSpan.FromMilliseconds(10), $"ended after {r.Elapsed}");
        Assert.True(r.Elapsed < limit + TimeSpan.FromSeconds(5), $"ended only after {r.Elapsed}");
        Assert.InRange(r.HostCalls, 2, 20);
        Assert.False(vm.IsFaulted);
        Assert.False(vm.Vcpu.ImmediateExit);
    }

    [KvmFact]
    public void A_long_host_function_sees_TimedOut_and_the_call_ends_as_a_timeout()
    {
        var functions = new HostFunctions();
        int polls = 0;
        uint id = functions.Add("patient", c =>
        {
            while (!c.TimedOut)
            {
                polls++;
                Thread.Sleep(5);
            }
            return 1;
        });
        uint ok = functions.Add("ok", _ => 2);
        using var vm = HostCallGuest.Create(functions, GuestRun.Default with { Timeout = TimeSpan.FromMilliseconds(100) });
        var r = vm.Call("call", id);
        Assert.Equal(GuestOutcome.Timeout, r.Outcome);
        Assert.True(polls > 0);
        Assert.Equal(1, r.HostCalls);
        Assert.Equal(2UL, vm.Call("call", ok).Value);
    }
}
