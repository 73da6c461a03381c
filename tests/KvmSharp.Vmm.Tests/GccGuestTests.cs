// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The ELF loader on a real compiler's output: CGuest/guest.c, written against the guest SDK's kvmsharp_guest.h, built
/// by gcc as a static ET_EXEC at 1 MiB with <see cref="GuestSdk.CompilerArguments"/>.
/// </summary>
public sealed class GccGuestTests
{
    private static readonly Lazy<GccBuild.Result> Built = new(() => GccBuild.Guest("guest.c"));

    [KvmFact]
    public void Gcc_built_guest_runs_and_its_functions_can_be_called()
    {
        // Skipped (not passed) with the reason when gcc cannot build the guest on this machine.
        Skip.If(Built.Value.Output is null, $"the gcc-built guest is not available: {Built.Value.Unavailable}");
        byte[] elf = Built.Value.Output!;
        var image = GuestImage.Load(elf);
        Assert.Equal(GuestImageKind.Elf, image.Kind);
        Assert.Contains("weighted", image.Exports.Keys);

        using var vm = MicroVm.Create(image, GuestRun.Default with { Timeout = TimeSpan.FromSeconds(5) });
        var start = vm.Run();
        Assert.Equal(GuestOutcome.Exit, start.Outcome);
        Assert.Equal(7, start.Status);
        Assert.Equal("hello from gcc\n", start.Console);

        Assert.Equal(1UL, vm.Call("bump").Value);   // .bss started at zero
        Assert.Equal(2UL, vm.Call("bump").Value);   // and keeps its state between calls
        // Input bytes (a byte[]: a collection expression would pass five integer arguments instead).
        byte[] input = [1, 2, 3, 4, 5];
        Assert.Equal(1UL * 1 + 2 * 10 + 3 * 100 + 4 * 1000 + 5 * 1, vm.Call("weighted", input).Value); // .data
        var fib = vm.Call("fib", 20);
        Assert.True(fib.Value == 6765UL, $"fib: {fib}"); // recursion: the stack works
        Assert.Equal(9UL, vm.Call("name_length").Value); // .rodata

        vm.Reset();
        Assert.Equal(1UL, vm.Call("bump").Value);   // a reset VM starts from the image again

        // Host calls from C: resolve "mul" by name, then call it; without it, ~unknown_function.
        Assert.Equal(~(ulong)HostCalls.HostCallStatus.UnknownFunction, vm.Call("ask_host", 6, 7).Value);
        vm.HostFunctions.Add("mul", (a, b) => a * b);
        Assert.Equal(42UL, vm.Call("ask_host", 6, 7).Value);
    }
}
