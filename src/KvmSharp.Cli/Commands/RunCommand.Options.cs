// SPDX-License-Identifier: MIT
using System.CommandLine;
using System.Runtime.InteropServices;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// The <c>run</c> command's arguments and options (<see cref="Create"/>): the image, --call, --save-snapshot, --mem,
/// --timeout, --json, --memory, --trace-instructions, --stats, --max-exits, --lazy-restore, --host-tsc-rate, --sve,
/// --gdb and the kernel options, and the action that binds them to <see cref="Run"/> with SIGINT/SIGTERM cancelling
/// the guest.
/// </summary>
public static partial class RunCommand
{
    /// <summary>The <c>run</c> command: its argument, options and action.</summary>
    public static Command Create()
    {
        var target = new Argument<string>("image")
        {
            Description = "An ELF64 ET_EXEC or flat binary file, a snapshot file (--save-snapshot), or a built-in demo: " +
                          string.Join(", ", DemoGuests.All.Select(d => d.Name)),
        };
        var calls = new Option<string[]>("--call")
        {
            Description = "Call an exported function instead of the demo's or image's entry: name or name:arg,arg (repeatable, in order)",
            AllowMultipleArgumentsPerToken = false,
        };
        var saveSnapshot = new Option<string?>("--save-snapshot")
        {
            Description = "After the run, write a snapshot of the micro-VM to this file; `kvmsharp run FILE` starts from it",
        };
        var mem = new Option<string>("--mem") { Description = "Guest memory size (a multiple of 2M, up to 1G)", DefaultValueFactory = _ => "2M" };
        var timeout = new Option<string>("--timeout") { Description = "Wall-clock limit: 500ms, 1s, 2m, or none", DefaultValueFactory = _ => "1s" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object with the outcome and the console" };
        var backing = new Option<string>("--memory")
        {
            Description = "What holds guest memory: auto (a guest_memfd when the kernel offers one for the VM type, else host memory), guest-memfd, or host",
            DefaultValueFactory = _ => MemoryAuto,
        };
        backing.AcceptOnlyFromAmong(MemoryAuto, MemoryGuestMemfd, MemoryHost);
        var traceInstructions = new Option<int>("--trace-instructions")
        {
            Description = $"Single-step each call and print the first N instructions it executes (RIP and disassembly; " +
                          $"1..{MicroVmOptions.MaxTraceInstructions}, 0 = off); the rest of the call runs at full speed",
        };
        var maxExits = new Option<long?>("--max-exits")
        {
            Description = "The exit budget of each call: a guest that causes more KVM_RUN exits ends as max_exits (default: the sandbox's, 1000000)",
        };
        var lazyRestore = new Option<bool>("--lazy-restore")
        {
            Description = "Restore a snapshot file lazily: each page is written (write(2)) when the guest first touches it " +
                          "(KVM userfault and guest_memfd write, unmerged proposals: --kernel emulated only, with its X86Userfault profile)",
        };
        var hostTscRate = new Option<bool>("--host-tsc-rate")
        {
            Description = "Run a snapshot at this kernel's TSC rate when it cannot take the snapshot's (without TSC scaling a " +
                          "slower rate is refused); CPUID 0x40000010 then announces this kernel's rate",
        };
        var stats = new Option<bool>("--stats")
        {
            Description = "After the run, print the vCPU's non-zero binary statistics (KVM_GET_STATS_FD: exits by kind, halts, injections)",
        };
        var sve = new Option<int?>("--sve")
        {
            Description = "arm64: give the vCPU SVE with this vector length in bits (128, 256 …: MicroVmOptions.Arm64SveVectorBits); " +
                          "with --kernel emulated --arch arm64 the emulated host is Neoverse V2-like for 128 (SVE2, as Graviton4) and " +
                          "V1-like otherwise (SVE up to 256 bits, as Graviton3)",
        };
        var gdb = new Option<string?>("--gdb")
        {
            Description = "Debug the guest with gdb: listen on HOST:PORT (GDB remote protocol; `target remote HOST:PORT`); " +
                          "each call waits for gdb before its first instruction (MicroVmOptions.GdbEndpoint)",
        };
        var kernelOptions = new KernelOptions();
        var command = new Command("run", "Run a guest program in a micro-VM (guest_memfd memory when the kernel offers it)");
        command.Arguments.Add(target);
        command.Options.Add(mem);
        command.Options.Add(timeout);
        command.Options.Add(json);
        command.Options.Add(backing);
        command.Options.Add(calls);
        command.Options.Add(saveSnapshot);
        command.Options.Add(traceInstructions);
        command.Options.Add(stats);
        command.Options.Add(maxExits);
        command.Options.Add(lazyRestore);
        command.Options.Add(hostTscRate);
        command.Options.Add(sve);
        command.Options.Add(gdb);
        kernelOptions.AddTo(command);
        command.SetAction(result =>
        {
            // Ctrl+C or SIGTERM stops the guest (GuestOutcome.Cancelled) and the run still prints its outcome, instead
            // of the process dying with the guest's console half-written.
            using var interrupt = new CancellationTokenSource();
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            return Run(
            result.GetValue(target)!,
            result.GetValue(mem)!,
            result.GetValue(timeout)!,
            result.GetValue(json),
            result.InvocationConfiguration.Output,
            kernelOptions.ReadKernel(result),
            kernelOptions.ReadVmType(result),
            kernelOptions.ReadDevice(result),
            result.GetValue(backing)!,
            result.InvocationConfiguration.Error,
            [.. (result.GetValue(calls) ?? []).Select(GuestCallSpec.Parse)],
            result.GetValue(saveSnapshot),
            result.GetValue(traceInstructions),
            interrupt.Token,
            result.GetValue(stats),
            result.GetValue(maxExits),
            result.GetValue(lazyRestore),
            result.GetValue(hostTscRate),
            result.GetValue(sve),
            result.GetValue(gdb));

            void Stop(PosixSignalContext context)
            {
                context.Cancel = true; // the run ends by itself once its guest stops
                interrupt.Cancel();
            }
        });
        return command;
    }
}
