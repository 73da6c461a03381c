// SPDX-License-Identifier: MIT
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Emulation.Tests;

/// <summary>The VMM's 64-bit guests (assembled with Iced) run on the emulated kernel like on the real one.</summary>
public sealed class MicroVmOnEmulatorTests
{
    private static MicroVm Create(Kvm kvm, GuestImage image, int timeoutMs = 20_000) =>
        MicroVm.Create(image, new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromMilliseconds(timeoutMs) });

    [Fact]
    public void Hello_prints_its_greeting_and_exits_zero()
    {
        using var k = new EmulatedKernel();
        using (var kvm = Kvm.Open(k))
        using (var vm = Create(kvm, Hello.Image()))
        {
            var r = vm.Run();
            Assert.Equal(GuestOutcome.Exit, r.Outcome);
            Assert.Equal(0, r.Status);
            Assert.Equal(Hello.Greeting, r.Console);
        }
        Assert.Equal(0, k.OpenFdCount);
        Assert.Equal(0, k.LiveVmCount);
    }

    [Fact]
    public void Sum_fletcher_add_and_reverse_return_their_values()
    {
        using var k = new EmulatedKernel();
        using var kvm = Kvm.Open(k);
        using var vm = Create(kvm, Sum.Image());
        Assert.Equal(5050UL, vm.Call("sum", DemoGuests.SumInput).Value);
        byte[] words = [.. Enumerable.Range(0, 64).Select(i => (byte)(i * 7))];
        Assert.Equal(Sum.Fletcher64(words), vm.Call("fletcher64", words).Value);
        Assert.Equal(42UL, vm.Call("add", 40, 2).Value);
        var rev = vm.Call("reverse", new byte[] { 1, 2, 3 });
        Assert.Equal(new byte[] { 3, 2, 1 }, rev.Output.ToArray());
    }

    [Fact]
    public void Misbehaving_guests_end_in_shutdown_exception_and_timeout()
    {
        using var k = new EmulatedKernel();
        using var kvm = Kvm.Open(k);
        using (var vm = Create(kvm, Misbehaving.TripleFaultImage()))
            Assert.Equal(GuestOutcome.Shutdown, vm.Run().Outcome);
        using (var vm = Create(kvm, Misbehaving.NullWriteImage()))
            Assert.Equal(GuestOutcome.Exception, vm.Run().Outcome);
        using (var vm = Create(kvm, Misbehaving.EndlessLoopImage(), timeoutMs: 200))
            Assert.Equal(GuestOutcome.Timeout, vm.Run().Outcome);
    }
}
