// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>The ELF loader on a real compiler's output: CGuest/guest.c built by gcc as a static ET_EXEC at 1 MiB.</summary>
public sealed class GccGuestTests
{
    private static readonly Lazy<(byte[]? Elf, string? Why)> Built = new(Build);

    [KvmFact]
    public void Gcc_built_guest_runs_and_its_functions_can_be_called()
    {
        // Skipped (not passed) with the reason when gcc cannot build the guest on this machine.
        Skip.If(Built.Value.Elf is null, $"the gcc-built guest is not available: {Built.Value.Why}");
        byte[] elf = Built.Value.Elf!;
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
        Assert.Equal(1UL * 1 + 2 * 10 + 3 * 100 + 4 * 1000 + 5 * 1, vm.Call("weighted", [1, 2, 3, 4, 5]).Value); // .data
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

    private static (byte[]?, string?) Build()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "CGuest", "guest.c");
        string dir = Directory.CreateTempSubdirectory("kvmsharp-cguest").FullName;
        string output = Path.Combine(dir, "guest.elf");
        try
        {
            var psi = new ProcessStartInfo("gcc")
            {
                ArgumentList =
                {
                    "-O2", "-ffreestanding", "-nostdlib", "-static", "-fno-pie", "-no-pie", "-fno-stack-protector",
                    "-mno-red-zone", "-fcf-protection=none", "-fno-asynchronous-unwind-tables",
                    // Load at ImageBase (1 MiB), segments packed at 4 KiB so the image fits a 2 MiB micro-VM.
                    "-Wl,-Ttext-segment=0x100000", "-Wl,-z,max-page-size=0x1000", "-Wl,--build-id=none", "-Wl,-z,noexecstack",
                    "-o", output, source,
                },
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            using var gcc = Process.Start(psi)!;
            string errors = gcc.StandardError.ReadToEnd();
            gcc.WaitForExit();
            if (gcc.ExitCode != 0) throw new InvalidOperationException($"gcc failed ({gcc.ExitCode}): {errors}");
            return (File.ReadAllBytes(output), null);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (null, $"gcc is not installed ({e.Message})");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
