// SPDX-License-Identifier: MIT
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp run &lt;image|snapshot|demo&gt; [--call name:args]… [--save-snapshot FILE] [--mem 2M] [--timeout 1s]
/// [--json] [--memory auto|guest-memfd|host] [--kernel linux|emulated] [--vm-type …] [--in-place-conversion]</c>: runs a
/// guest in a micro-VM, on the real kernel or the emulated one; with --call, exported functions in order instead of
/// the entry; --save-snapshot keeps the micro-VM's memory after a run that exited, and a snapshot file runs from it. Guest memory is a guest_memfd when the kernel offers one for the VM type, otherwise ordinary
/// host memory with one line on stderr saying why (<c>--memory auto</c>); <c>--memory guest-memfd</c> refuses such a
/// kernel (exit code 1), <c>--memory host</c> always takes host memory.
/// The guest's console goes to stdout as it is produced, then one outcome line; the process exits with the guest's
/// status. <c>--json</c> prints one object instead:
/// <c>{"outcome":"exit","status":0,"result":5050,"console":"…","rip":…,"memory":"guest_memfd"}</c>; a CPU exception
/// adds <c>"vector"</c> and, where the exception has them, <c>"error_code"</c> and <c>"cr2"</c>.
/// <c>--trace-instructions N</c> single-steps each call and prints the first N instructions it executed after its
/// outcome, one line each (RIP and Intel-syntax disassembly); in <c>--json</c> a <c>"trace"</c> array of
/// <c>{"rip","bytes","text"}</c> and <c>"trace_truncated"</c>. A run stopped from outside says why: <c>timeout</c>
/// (--timeout), <c>cancelled</c> (SIGINT/SIGTERM, exit code 130), <c>max_exits</c> (<c>--max-exits N</c>). A snapshot
/// file runs with <c>--lazy-restore</c> (pages written on first touch; <c>--kernel emulated</c> only) and
/// <c>--host-tsc-rate</c> (this kernel's TSC rate when it refuses the snapshot's). <c>--sve BITS</c> gives an arm64
/// micro-VM's vCPU SVE at that vector length. <c>--gdb HOST:PORT</c> says "waiting for gdb on HOST:PORT" on stderr and
/// every call waits there for gdb (<c>target remote HOST:PORT</c>) before its first instruction.
/// </summary>
/// <remarks>
/// This file holds the exit codes, the --memory values and the run itself (<see cref="Run"/>: kernel, micro-VM, calls,
/// snapshot, the refusals); the option definitions are in RunCommand.Options.cs, the kernel selection in
/// RunCommand.Kernels.cs, the output forms in RunCommand.Output.cs, the option value parsers in RunCommand.Parsing.cs and
/// the image and snapshot files in RunCommand.Files.cs.
/// </remarks>
public static partial class RunCommand
{
    /// <summary>Exit code when the guest did not exit by itself (shutdown, timeout, unknown port …).</summary>
    public const int GuestDidNotExit = 125;

    /// <summary>Exit code when SIGINT (Ctrl+C) or SIGTERM stopped the guest: 128 + SIGINT, as a shell reports it.</summary>
    public const int Interrupted = 130;

    /// <summary>The values of --memory.</summary>
    public const string MemoryAuto = "auto", MemoryGuestMemfd = "guest-memfd", MemoryHost = "host";

    /// <summary>
    /// Runs <paramref name="target"/>; <paramref name="backing"/> is a --memory value. Notes (the fallback to host
    /// memory) go to <paramref name="error"/>. With <paramref name="stats"/> the vCPU's non-zero statistics follow the
    /// outcome (a "vcpu_stats" object in --json). <paramref name="traceInstructions"/> above 0 traces each call
    /// (<see cref="MicroVmOptions.TraceInstructions"/>). Cancelling <paramref name="cancellationToken"/> stops the
    /// guest: the run prints the outcome <c>cancelled</c> and returns <see cref="Interrupted"/>. The other ways a run is
    /// stopped from outside have outcomes of their own: <c>timeout</c> (the --timeout limit), <c>max_exits</c>
    /// (<paramref name="maxExits"/>, the exit budget; null: the sandbox's default); both return <see cref="GuestDidNotExit"/>.
    /// A snapshot <paramref name="target"/> is restored eagerly, or with <paramref name="lazyRestore"/> page by page on
    /// first touch (<see cref="SnapshotRestoreMode.Lazy"/>, on the emulated kernel's X86Userfault profile: the proposals
    /// it needs exist nowhere else); the JSON then says <c>"restore":"lazy"</c> and how many pages were written
    /// (<c>"lazy_pages_populated"</c>). <paramref name="hostTscRate"/>: a snapshot's TSC rate this kernel refuses is
    /// replaced by its own (<see cref="MicroVmOptions.RequireSnapshotTscRate"/> false) instead of refusing the snapshot.
    /// <paramref name="sveBits"/> (--sve) gives an arm64 micro-VM's vCPU SVE at that vector length
    /// (<see cref="MicroVmOptions.Arm64SveVectorBits"/>); on --kernel emulated --arch arm64 the emulated host is then
    /// <see cref="Emulation.Arm64.Arm64CpuModel.NeoverseV2"/> (SVE2) for 128 bits and
    /// <see cref="Emulation.Arm64.Arm64CpuModel.NeoverseV1"/> (SVE) otherwise (the default arm64 preset's N1-like host has no SVE). A
    /// length the kernel does not offer, or an x86-64 micro-VM, is refused (exit code 2, naming the length).
    /// <paramref name="gdb"/> (--gdb HOST:PORT) listens there for gdb (<see cref="MicroVmOptions.GdbEndpoint"/>), says
    /// "waiting for gdb on HOST:PORT" on <paramref name="error"/> (the port resolved when 0 was asked for), and every
    /// call waits for gdb before its first instruction.
    /// </summary>
    public static int Run(string target, string memory, string timeout, bool json, TextWriter output,
        KernelRequest? kernel = null, VmType vmType = VmType.Default, string device = Kvm.DefaultPath,
        string backing = MemoryAuto, TextWriter? error = null, IReadOnlyList<GuestCallSpec>? calls = null, string? saveSnapshot = null,
        int traceInstructions = 0, CancellationToken cancellationToken = default, bool stats = false, long? maxExits = null,
        bool lazyRestore = false, bool hostTscRate = false, int? sveBits = null, string? gdb = null)
    {
        System.Net.IPEndPoint? gdbEndpoint = gdb is null ? null : ParseEndpoint(gdb);
        if (maxExits is <= 0) throw new UsageException($"--max-exits: {maxExits} is not a positive number of exits");
        calls ??= [];
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(output);
        error ??= TextWriter.Null;
        GuestMemoryBacking? asked = backing switch
        {
            MemoryAuto or MemoryGuestMemfd => null, // guest-memfd: decided below, with the kernel's reason if it cannot
            MemoryHost => GuestMemoryBacking.HostMemory,
            _ => throw new UsageException($"--memory: '{backing}' is not one of {MemoryAuto}, {MemoryGuestMemfd}, {MemoryHost}"),
        };
        ulong memorySize = ParseSize(memory);
        TimeSpan limit = ParseDuration(timeout);
        // --arch arm64 (emulated kernel): the arm64 micro-VM and its A64 demos (GUEST-ABI.md, "arm64 micro-VMs").
        GuestArchitecture? arch = kernel?.Arch switch
        {
            null => null,
            Emulation.Architecture.Arm64 => GuestArchitecture.Arm64,
            _ => GuestArchitecture.X86_64,
        };
        DemoGuest? demo = DemoGuests.Find(target, arch ?? GuestArchitecture.X86_64);
        MicroVmSnapshot? snapshot = demo is null ? LoadSnapshot(target) : null;
        GuestImage image = demo is not null ? demo.Image() : snapshot?.Image ?? LoadFile(target);
        kernel ??= new KernelRequest(KernelKind.Linux);
        // An SNP or TD micro-VM launches the pages the host wrote through the guest_memfd mapping in place: on the
        // emulated kernel that is the v8 series' in-place conversion (Confidential/SealedGuest.cs).
        if (kernel is { Kind: KernelKind.Emulated, Arch: not null, InPlaceConversion: false } && vmType is VmType.Snp or VmType.Tdx)
            throw new UsageException($"run: a {vmType} micro-VM needs guest_memfd with in-place conversion; add --in-place-conversion");
        if (lazyRestore) CheckLazyRestore(kernel, snapshot is not null);
        using var selection = SelectKernel(kernel, lazyRestore, sveBits);
        using var kvm = Kvm.Open(selection.Kernel, device, selection.Proposals);

        using var sink = json ? null : new TextWriterStream(output);
        // A demo that calls host functions gets them here; their log lines share stdout with the console (not with
        // --json, whose stdout is one JSON object).
        var options = new MicroVmOptions
        {
            MemorySize = memorySize,
            Timeout = limit,
            ConsoleSink = sink,
            HostFunctions = demo?.HostFunctions?.Invoke(json ? TextWriter.Null : output),
            Kvm = kvm,
            VmType = vmType,
            Memory = asked,
            TraceInstructions = traceInstructions,
            Architecture = arch,
            Arm64SveVectorBits = sveBits,
            GdbEndpoint = gdbEndpoint,
        };
        if (maxExits is long budget) options = options with { MaxExits = budget };
        if (lazyRestore) options = options with { SnapshotRestore = SnapshotRestoreMode.Lazy };
        if (hostTscRate) options = options with { RequireSnapshotTscRate = false };
        string? restore = null;
        long lazyPages = 0;
        bool created = false;
        CallResult result;
        GuestMemoryBacking used;
        bool noDirectMap;
        List<(string Name, ulong Value)>? vcpuStats = null;
        (bool BtiGuarded, bool PacSigned)? branchProtection = null;
        try
        {
            // A snapshot keeps its memory size and VM type (MicroVm.Create(snapshot) takes them from it).
            using var vm = snapshot is null ? MicroVm.Create(image, options) : MicroVm.Create(snapshot, options);
            created = true;
            if (vm.DebuggerEndpoint is { } listening)
            {
                error.WriteLine($"waiting for gdb on {listening}");
                error.Flush();
            }
            used = vm.Memory.Backing;
            noDirectMap = vm.Memory.RemovedFromDirectMap;
            if (vm.Architecture == GuestArchitecture.Arm64) branchProtection = (vm.BranchTargetsGuarded, vm.ReturnAddressesSigned);
            if (used == GuestMemoryBacking.HostMemory && asked is null)
                HostMemoryFallback(vm, kernel, kernel.Kind == KernelKind.Linux ? device : selection.Module, backing, error);
            result = InvokeCalls(vm, demo, calls, json, output, cancellationToken);
            // --stats: the vCPU's counters once the run is over, the non-zero ones in file order.
            if (stats) vcpuStats = ReadVcpuStats(vm);
            if (snapshot is not null)
            {
                restore = vm.LastRestoreWasLazy ? "lazy" : "eager";
                lazyPages = vm.Memory.LazyPagesPopulated;
            }
            if (saveSnapshot is not null && result.Outcome == GuestOutcome.Exit)
            {
                SaveSnapshot(vm, saveSnapshot);
            }
            else if (saveSnapshot is not null)
            {
                // A guest stopped from outside may be half-way through an update: nothing worth starting from.
                error.WriteLine($"{CliApp.CommandName}: --save-snapshot: the run ended in {result.Outcome.Name()}, not exit: no snapshot written");
            }
        }
        catch (MicroVmSnapshotException e) when (!created)
        {
            // The snapshot file could not be loaded here (its TSC rate, an MSR this kernel refuses, --lazy-restore …).
            string hint = e.Reason switch
            {
                SnapshotRefusal.TscRateRefused => " (--host-tsc-rate runs it at this kernel's rate)",
                SnapshotRefusal.ArchitectureMismatch when snapshot?.Architecture == GuestArchitecture.Arm64 => " (an arm64 snapshot runs with --kernel emulated --arch arm64)",
                _ => "",
            };
            throw new UnavailableException($"{target}: {e.Message}{hint}");
        }
        catch (MicroVmSnapshotException e)
        {
            throw new UnavailableException($"--save-snapshot: {e.Message}");
        }
        catch (MicroVmException e)
        {
            // The emulated kernel "like this host" offers the VM types this host offers; the full x86_64 preset has all.
            string hint = kernel is { Kind: KernelKind.Emulated, Arch: null } && vmType != VmType.Default
                && e.Message.Contains("KVM_CAP_VM_TYPES", StringComparison.Ordinal)
                ? " (--arch x86_64 emulates a host that offers every x86 VM type)" : "";
            throw new UsageException(e.Message + hint);
        }
        sink?.Flush();

        if (json) WriteJson(output, result, used, noDirectMap, vcpuStats, restore, lazyPages, branchProtection);
        else WriteText(output, result, restore, lazyPages, vcpuStats);
        return ExitCode(result);
    }

    /// <summary>
    /// The run's calls: the demo's or image's entry, or each --call in order until one does not exit (its outcome is the
    /// run's). In the text form each earlier call's outcome and trace are printed as it returns, and the last call's
    /// name comes before the run's outcome line.
    /// </summary>
    private static CallResult InvokeCalls(MicroVm vm, DemoGuest? demo, IReadOnlyList<GuestCallSpec> calls, bool json, TextWriter output,
        CancellationToken cancellationToken)
    {
        if (calls.Count == 0) return demo is not null ? demo.Invoke(vm, cancellationToken) : vm.Run(cancellationToken);
        // Each call in order; one that does not exit ends the run (its outcome is the run's).
        CallResult result = calls[0].Invoke(vm, cancellationToken);
        for (int i = 1; i < calls.Count && result.Outcome == GuestOutcome.Exit; i++)
        {
            if (!json)
            {
                output.WriteLine($"{calls[i - 1]}: {Describe(result)}");
                WriteTrace(output, result.Trace);
            }
            result = calls[i].Invoke(vm, cancellationToken);
        }
        if (!json && calls.Count > 1) output.Write($"{calls[^1]}: ");
        return result;
    }

    /// <summary>
    /// The micro-VM picked host memory because the kernel (<paramref name="where"/>: the device or the emulated kernel)
    /// has no guest_memfd for this VM type: --memory guest-memfd refuses the run, --memory auto says why on
    /// <paramref name="error"/> and runs on.
    /// </summary>
    private static void HostMemoryFallback(MicroVm vm, KernelRequest kernel, string where, string backing, TextWriter error)
    {
        string why = vm.GuestMemfdUnavailableReason ?? "no guest_memfd";
        if (backing == MemoryGuestMemfd)
            throw new UnavailableException($"--memory {MemoryGuestMemfd}: {where}: {why} ({Alternatives(kernel, refusing: true)})");
        error.WriteLine($"{CliApp.CommandName}: {where}: {why}; the guest runs in ordinary host memory ({Alternatives(kernel, refusing: false)})");
        error.Flush();
    }

    /// <summary>The process exit code of a run: the guest's status, <see cref="Interrupted"/> or <see cref="GuestDidNotExit"/>.</summary>
    private static int ExitCode(CallResult result) => result.Outcome switch
    {
        GuestOutcome.Exit => result.Status,
        GuestOutcome.Cancelled => Interrupted,
        _ => GuestDidNotExit,
    };
}
