// SPDX-License-Identifier: MIT
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Emulation.Tests;

/// <summary>Guest → host calls on the emulated kernel: the same guests and answers as on the real one (HostCallTests).</summary>
public sealed class HostCallsOnEmulatorTests
{
    private static MicroVm Create(Kvm kvm, GuestImage image, HostFunctions functions, long maxExits = 1_000_000) =>
        MicroVm.Create(image, new MicroVmOptions
        {
            Kvm = kvm,
            Timeout = TimeSpan.FromSeconds(20),
            MaxExits = maxExits,
            HostFunctions = functions,
        });

    private static HostCallStatus LastStatus(MicroVm vm) => (HostCallStatus)vm.Memory.Read<ulong>(HostCallBlock.Address(HostCallBlock.Status));

    [Fact]
    public void Demo_guest_resolves_logs_and_prints_what_the_host_looked_up()
    {
        using var k = new EmulatedKernel();
        var log = new StringWriter();
        using (var kvm = Kvm.Open(k))
        using (var vm = Create(kvm, HostCalling.Image(), HostCalling.Functions(log, seed: 3)))
        {
            var r = vm.Run();
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal(HostCalling.Table["greeting"] + "\n", r.Console);
            Assert.Equal($"[host log] {HostCalling.LogLine}{Environment.NewLine}", log.ToString());
            Assert.Equal(4, r.HostCalls);
            ulong random = (ulong)new Random(3).NextInt64(long.MinValue, long.MaxValue);
            Assert.Equal(1 + (random % 6), vm.Call("roll", 6).Value);
        }
        Assert.Equal(0, k.OpenFdCount);
        Assert.Equal(0, k.LiveVmCount);
    }

    [Fact]
    public void Six_arguments_results_statuses_and_guest_buffers()
    {
        using var k = new EmulatedKernel();
        using var kvm = Kvm.Open(k);
        var functions = new HostFunctions();
        uint mix = functions.Add("mix", c => c.Args[0] + c.Args[1] + c.Args[2] + c.Args[3] + c.Args[4] + (c.Args[5] << 8));
        uint upper = functions.Add("upper", c =>
        {
            c.Write(c.Args[2], System.Text.Encoding.UTF8.GetBytes(c.ReadUtf8(c.Args[0], c.Args[1]).ToUpperInvariant()));
            return c.Args[1];
        });
        using var vm = Create(kvm, HostCallProbe.Image(), functions);
        var input = new byte[7 * 8];
        ulong[] words = [mix, 1, 2, 3, 4, 5, 6];
        for (int i = 0; i < words.Length; i++) BitConverter.TryWriteBytes(input.AsSpan(i * 8), words[i]);
        Assert.Equal(15UL + (6 << 8), vm.Call("call6", input).Value);

        vm.Memory.Write(Layout.CallData, "gmem"u8);
        Assert.Equal(4UL, vm.Call("call", upper, Layout.CallData, 4, Layout.CallData + 0x40).Value);
        var back = new byte[4];
        vm.Memory.Read(Layout.CallData + 0x40, back);
        Assert.Equal("GMEM"u8.ToArray(), back);

        vm.Memory.Write(Layout.CallData, "upper"u8);
        Assert.Equal(upper, vm.Call("call", HostFunctions.ResolveId, Layout.CallData, 5).Value);
        Assert.Equal(10, vm.Call("repeat", mix, 10).HostCalls);
    }

    [Fact]
    public void Failures_are_statuses_or_typed_outcomes()
    {
        using var k = new EmulatedKernel();
        using var kvm = Kvm.Open(k);
        var functions = new HostFunctions();
        uint read = functions.Add("read", c => (ulong)c.ReadBytes(c.Args[0], c.Args[1]).Length);
        uint boom = functions.Add("boom", _ => throw new InvalidOperationException("boom"));
        using var vm = Create(kvm, HostCallProbe.Image(), functions);

        Assert.Equal((ulong)HostCallStatus.UnknownFunction, vm.Call("call_status", 999).Value);
        Assert.Equal((ulong)HostCallStatus.BadPointer, vm.Call("call_status", read, 0, 8).Value);
        Assert.Equal((ulong)HostCallStatus.BadPointer, vm.Call("call_status", read, Layout.StackGuard, 8).Value);
        Assert.Equal((ulong)HostCallStatus.BadPointer, vm.Call("call_status", read, vm.Memory.Size - 4, 8).Value);
        Assert.Equal(8UL, vm.Call("call", read, Layout.Gdt, 8).Value);
        Assert.Equal(HostCallStatus.Ok, LastStatus(vm));

        var r = vm.Call("call", boom);
        Assert.Equal(GuestOutcome.HostFunctionFailed, r.Outcome);
        Assert.Equal("boom", r.HostFault!.FunctionName);
        Assert.Equal("boom", r.HostFault.Exception.Message);
        Assert.InRange(r.Rip, vm.Image.Resolve("call"), vm.Image.Resolve("call_status") - 1);
        Assert.False(vm.IsFaulted);

        // Functions added to a live micro-VM are seen at once; re-entering it from one is refused.
        Exception? refused = null;
        uint reenter = vm.HostFunctions.Add("reenter", _ =>
        {
            refused = Record.Exception(() => vm.Call("call", read, 0, 0));
            return 3;
        });
        Assert.Equal(3UL, vm.Call("call", reenter).Value);
        Assert.IsType<MicroVmException>(refused);
    }

    [Fact]
    public void Host_calls_count_against_MaxExits()
    {
        using var k = new EmulatedKernel();
        using var kvm = Kvm.Open(k);
        var functions = new HostFunctions();
        long calls = 0;
        uint id = functions.Add("tick", _ => (ulong)++calls);
        using var vm = Create(kvm, HostCallProbe.Image(), functions, maxExits: 50);
        var r = vm.Call("forever", id);
        Assert.Equal(GuestOutcome.MaxExits, r.Outcome);
        Assert.Equal(50, r.Exits);
        Assert.InRange(r.HostCalls, 49, 50);
        Assert.Equal(r.HostCalls, calls);
    }
}
