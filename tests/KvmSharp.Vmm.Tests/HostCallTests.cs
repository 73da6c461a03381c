// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>Guest → host calls that work: ids fixed or resolved by name, six arguments, results, guest buffers.</summary>
public sealed class HostCallTests
{
    [KvmFact]
    public void Demo_guest_resolves_logs_and_prints_what_the_host_looked_up()
    {
        var demo = DemoGuests.Find("hostcall")!;
        var log = new StringWriter();
        using var vm = MicroVm.Create(demo.Image(), GuestRun.Quick with { HostFunctions = demo.HostFunctions!(log) });
        var r = demo.Invoke(vm);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(HostCalling.Table["greeting"] + "\n", r.Console);
        Assert.Equal($"[host log] {HostCalling.LogLine}{Environment.NewLine}", log.ToString());
        Assert.Equal(4, r.HostCalls); // resolve, resolve, log, lookup
        Assert.Null(r.HostFault);
    }

    [KvmFact]
    public void Demo_guest_without_its_host_functions_exits_with_the_failing_step()
    {
        // The built-in resolve answers UnknownFunction; the guest's first check fails (exit 11), nothing hangs.
        var r = GuestRun.Run(HostCalling.Image());
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(11, r.Status);
    }

    [KvmFact]
    public void Roll_calls_random_by_its_fixed_id()
    {
        using var vm = MicroVm.Create(HostCalling.Image(), GuestRun.Quick with { HostFunctions = HostCalling.Functions(TextWriter.Null, seed: 9) });
        var expected = new Random(9);
        for (int i = 0; i < 10; i++)
        {
            ulong random = (ulong)expected.NextInt64(long.MinValue, long.MaxValue);
            Assert.Equal(1 + (random % 6), vm.Call("roll", 6).Value);
        }
        Assert.Equal(0UL, vm.Call("roll", 0).Value);
    }

    [KvmFact]
    public void Six_arguments_reach_the_function_and_its_result_comes_back()
    {
        var functions = new HostFunctions();
        ulong[]? seen = null;
        string? name = null;
        uint id = functions.Add("mix", c =>
        {
            seen = c.Args.ToArray();
            name = c.FunctionName;
            return c.Args[0] ^ c.Args[5];
        });
        using var vm = HostCallGuest.Create(functions);
        var r = vm.Call("call6", HostCallGuest.Call6Input(id, 1, 2, 3, 4, 5, ulong.MaxValue));
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(1UL ^ ulong.MaxValue, r.Value);
        Assert.Equal([1UL, 2, 3, 4, 5, ulong.MaxValue], seen);
        Assert.Equal("mix", name);
        Assert.Equal(HostCallStatus.Ok, HostCallGuest.LastStatus(vm));
        Assert.Equal(1, r.HostCalls);
    }

    [KvmFact]
    public void Ids_are_fixed_by_the_host_and_resolvable_by_name()
    {
        var functions = new HostFunctions();
        functions.Add(7, "seven", _ => 7);
        Assert.Equal(8u, functions.Add("next", () => 8)); // next free id: one above the highest
        Assert.Equal(9u, functions.Add("add", (a, b) => a + b));
        using var vm = HostCallGuest.Create(functions);
        Assert.Equal(7UL, vm.Call("call", 7).Value);
        Assert.Equal(8UL, vm.Call("call", 8).Value);
        Assert.Equal(42UL, vm.Call("call", 9, 40, 2).Value);

        foreach (var (name, id) in new[] { ("seven", 7UL), ("next", 8UL), ("add", 9UL) })
        {
            vm.Memory.Write(Layout.CallData, System.Text.Encoding.UTF8.GetBytes(name));
            Assert.Equal(id, vm.Call("call", HostFunctions.ResolveId, Layout.CallData, (ulong)name.Length).Value);
            Assert.Equal(HostCallStatus.Ok, HostCallGuest.LastStatus(vm));
        }
        vm.Memory.Write(Layout.CallData, "nope"u8);
        Assert.Equal((ulong)HostCallStatus.UnknownFunction, vm.Call("call_status", HostFunctions.ResolveId, Layout.CallData, 4).Value);
    }

    [KvmFact]
    public void A_function_reads_a_guest_buffer_and_writes_a_result_buffer()
    {
        var functions = new HostFunctions();
        // upper(in_ptr, len, out_ptr) → len
        uint upper = functions.Add("upper", c =>
        {
            string text = c.ReadUtf8(c.Args[0], c.Args[1]);
            c.Write(c.Args[2], System.Text.Encoding.UTF8.GetBytes(text.ToUpperInvariant()));
            return c.Args[1];
        });
        // sum64(ptr, count) through the zero-copy span
        uint sum = functions.Add("sum64", c =>
        {
            var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(c.GetSpan(c.Args[0], checked((int)c.Args[1] * 8)));
            ulong total = 0;
            foreach (ulong w in words) total += w;
            return total;
        });
        using var vm = HostCallGuest.Create(functions);
        vm.Memory.Write(Layout.CallData, "guest_memfd"u8);
        Assert.Equal(11UL, vm.Call("call", upper, Layout.CallData, 11, Layout.CallData + 0x100).Value);
        var back = new byte[11];
        vm.Memory.Read(Layout.CallData + 0x100, back);
        Assert.Equal("GUEST_MEMFD"u8.ToArray(), back);

        for (ulong i = 0; i < 4; i++) vm.Memory.Write(Layout.CallData + (i * 8), (i + 1) * 1000);
        Assert.Equal(10_000UL, vm.Call("call", sum, Layout.CallData, 4).Value);
    }

    [KvmFact]
    public void A_function_reports_its_own_status_and_the_guest_runs_on()
    {
        var functions = new HostFunctions();
        uint id = functions.Add("picky", c =>
        {
            c.Status = c.Args[0] == 0 ? HostCallStatus.Failed : HostCallStatus.FirstApplicationStatus + 5;
            return 0;
        });
        using var vm = HostCallGuest.Create(functions);
        Assert.Equal((ulong)HostCallStatus.Failed, vm.Call("call_status", id, 0).Value);
        Assert.Equal(0x105UL, vm.Call("call_status", id, 1).Value);
    }

    [KvmFact]
    public void Every_host_call_is_one_exit_and_is_counted()
    {
        var functions = new HostFunctions();
        var args = new List<ulong>();
        uint id = functions.Add("note", c =>
        {
            args.Add(c.Args[0]);
            return c.Args[0] * 2;
        });
        using var vm = HostCallGuest.Create(functions);
        var r = vm.Call("repeat", id, 10);
        Assert.Equal(2UL, r.Value); // the last call had arg0 = 1
        Assert.Equal(10, r.HostCalls);
        Assert.Equal(11, r.Exits); // ten host calls and the return
        Assert.Equal([10UL, 9, 8, 7, 6, 5, 4, 3, 2, 1], args);
        Assert.Equal(0, vm.Call("call", id).HostCalls - 1);
    }

    [KvmFact]
    public void The_block_is_cleared_at_each_call_and_the_region_carries_the_abi_version()
    {
        var functions = new HostFunctions();
        uint id = functions.Add("one", _ => 1);
        using var vm = HostCallGuest.Create(functions);
        Assert.Equal(1UL, vm.Call("call", id, 5).Value);
        Assert.Equal(5UL, vm.Memory.Read<ulong>(HostCallBlock.Address(HostCallBlock.Args)));
        Assert.Equal(1UL, vm.Memory.Read<ulong>(HostCallBlock.Address(HostCallBlock.Result)));
        // _start makes no host call: the block it leaves is the clean one the host wrote before entering.
        Assert.True(vm.Run().IsSuccess);
        Assert.All(new[] { HostCallBlock.Function, HostCallBlock.Args, HostCallBlock.Result, HostCallBlock.Status },
            field => Assert.Equal(0UL, vm.Memory.Read<ulong>(HostCallBlock.Address(field))));
        Assert.Equal(CallRegion.VersionValue, vm.Memory.Read<uint>(CallRegion.Address(CallRegion.Version)));
    }

    [KvmFact]
    public void Functions_added_to_one_vm_are_not_added_to_the_options_registry()
    {
        var shared = new HostFunctions();
        shared.Add(1, "one", _ => 1);
        using var a = HostCallGuest.Create(shared);
        using var b = HostCallGuest.Create(shared);
        a.HostFunctions.Add(2, "two", _ => 2);
        Assert.Equal(2UL, a.Call("call", 2).Value);
        Assert.Equal((ulong)HostCallStatus.UnknownFunction, b.Call("call_status", 2).Value);
        Assert.Equal(1, shared.Count);
        Assert.Equal(1UL, b.Call("call", 1).Value);
    }

    [Fact]
    public void Bad_registrations_are_refused()
    {
        var f = new HostFunctions();
        f.Add(1, "a", _ => 0);
        Assert.Throws<MicroVmException>(() => f.Add(1, "b", _ => 0));                  // id taken
        Assert.Throws<MicroVmException>(() => f.Add(2, "a", _ => 0));                  // name taken
        Assert.Throws<MicroVmException>(() => f.Add(HostFunctions.ResolveId, "r", _ => 0));
        Assert.Throws<MicroVmException>(() => f.Add(3, "", _ => 0));
        Assert.Throws<MicroVmException>(() => f.Add(3, new string('x', HostFunctions.MaxNameLength + 1), _ => 0));
        Assert.Throws<MicroVmException>(() => f.IdOf("missing"));
        Assert.Equal(1u, f.IdOf("a"));
        Assert.Single(f);
    }
}
