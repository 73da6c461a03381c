// SPDX-License-Identifier: MIT
using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
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
public static class RunCommand
{
    /// <summary>Exit code when the guest did not exit by itself (shutdown, timeout, unknown port …).</summary>
    public const int GuestDidNotExit = 125;

    /// <summary>Exit code when SIGINT (Ctrl+C) or SIGTERM stopped the guest: 128 + SIGINT, as a shell reports it.</summary>
    public const int Interrupted = 130;

    /// <summary>The values of --memory.</summary>
    public const string MemoryAuto = "auto", MemoryGuestMemfd = "guest-memfd", MemoryHost = "host";

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
        using var selection = lazyRestore ? UserfaultKernel(kernel)
            : sveBits is not null && kernel is { Kind: KernelKind.Emulated, Arch: Emulation.Architecture.Arm64 } ? SveKernel(kernel, sveBits.Value)
            : KernelChoice.Create(kernel);
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
            if (used == GuestMemoryBacking.HostMemory && asked is null)
            {
                // The micro-VM picked host memory because the kernel has no guest_memfd for this VM type.
                string where = kernel.Kind == KernelKind.Linux ? device : selection.Module;
                string why = vm.GuestMemfdUnavailableReason ?? "no guest_memfd";
                if (backing == MemoryGuestMemfd)
                    throw new UnavailableException($"--memory {MemoryGuestMemfd}: {where}: {why} ({Alternatives(kernel, refusing: true)})");
                error.WriteLine($"{CliApp.CommandName}: {where}: {why}; the guest runs in ordinary host memory ({Alternatives(kernel, refusing: false)})");
                error.Flush();
            }
            if (calls.Count == 0)
            {
                result = demo is not null ? demo.Invoke(vm, cancellationToken) : vm.Run(cancellationToken);
            }
            else
            {
                // Each call in order; one that does not exit ends the run (its outcome is the run's).
                result = calls[0].Invoke(vm, cancellationToken);
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
            }
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

        if (json)
        {
            WriteJson(output, result, used, noDirectMap, vcpuStats, restore, lazyPages);
        }
        else
        {
            if (result.Console.Length > 0 && !result.Console.EndsWith('\n')) output.WriteLine();
            output.WriteLine(Describe(result));
            WriteTrace(output, result.Trace);
            if (restore == "lazy") output.WriteLine($"restore: lazy, {lazyPages} page{(lazyPages == 1 ? "" : "s")} written on first touch");
            if (vcpuStats is not null)
            {
                output.WriteLine("vcpu stats:" + (vcpuStats.Count == 0 ? " all 0" : ""));
                foreach (var (name, value) in vcpuStats) output.WriteLine($"  {name} {value}");
            }
        }
        return result.Outcome switch
        {
            GuestOutcome.Exit => result.Status,
            GuestOutcome.Cancelled => Interrupted,
            _ => GuestDidNotExit,
        };
    }

    /// <summary>
    /// The micro-VM vCPU's statistics whose first value is not 0 (histograms by their first bucket alone), in file order;
    /// a kernel without KVM_CAP_BINARY_STATS_FD is an UnavailableException naming it.
    /// </summary>
    private static List<(string Name, ulong Value)> ReadVcpuStats(MicroVm vm)
    {
        try
        {
            using var stats = vm.OpenVcpuStatistics();
            var snapshot = stats.Read();
            return [.. stats.Descriptors.Where(d => snapshot[d] != 0).Select(d => (d.Name, snapshot[d]))];
        }
        catch (KvmCapabilityException e)
        {
            throw new UnavailableException($"--stats: {e.Message}");
        }
    }

    /// <summary>--lazy-restore needs a snapshot file and the emulated kernel, whose X86Userfault profile it uses whole.</summary>
    private static void CheckLazyRestore(KernelRequest kernel, bool fromSnapshot)
    {
        if (!fromSnapshot) throw new UsageException("--lazy-restore restores a snapshot: give a snapshot file (--save-snapshot writes one)");
        if (kernel.Kind != KernelKind.Emulated)
        {
            throw new UsageException("--lazy-restore needs KVM userfault and guest_memfd write(2), unmerged proposals no Linux kernel offers: " +
                                     "use --kernel emulated");
        }
        if (kernel.InPlaceConversion || kernel.Generation is not null)
            throw new UsageException("--lazy-restore runs on the emulator's X86Userfault profile (6.18, x86_64): it does not combine with --in-place-conversion or --kernel-version");
    }

    /// <summary>
    /// The emulated kernel of the conformance profile X86Userfault: x86_64 6.18 with guest_memfd write v7, direct map
    /// removal v12 and KVM userfault v3 — what Firecracker's lazy guest_memfd snapshot restore needs.
    /// </summary>
    private static KernelSelection UserfaultKernel(KernelRequest kernel)
    {
        EmulatorConfig config = Conformance.EmulatedKernels.X86Userfault();
        var selection = new KernelSelection(new EmulatedKernel(config),
            "emulated (x86_64, 6.18 + guest_memfd write v7 + direct map removal v12 + KVM userfault v3)", Release: null, config.Proposals);
        if (kernel.Trace is not TextWriter trace) return selection;
        var lines = TextWriter.Synchronized(trace);
        return selection with { Kernel = new Kernel.Tracing.TracingKernel(selection.Kernel, call => lines.WriteLine(call), ownsInner: true) };
    }

    /// <summary>
    /// --sve on --kernel emulated --arch arm64: the request's arm64 preset with a host CPU that has SVE
    /// (Emulation/Arm64/Arm64CpuModel.cs): the one --arm64-cpu names, which must have SVE; else for 128 bits the Neoverse
    /// V2-like one, whose SVE2 runs code built for Armv9, and otherwise the Neoverse V1-like one (vector lengths of 128
    /// and 256 bits, no SVE2). Traced like KernelChoice's kernels.
    /// </summary>
    private static KernelSelection SveKernel(KernelRequest kernel, int sveBits)
    {
        if (kernel.Arm64Cpu is { HasSve: false } plain)
            throw new UsageException($"run: --sve {sveBits} needs an arm64 CPU with SVE; --arm64-cpu {plain.Name} has none (neoverse-v1 and neoverse-v2 have it)");
        var (config, description) = KernelChoice.EmulatedConfig(kernel with { Arm64Cpu = null });
        var cpu = kernel.Arm64Cpu ?? (sveBits == 128 ? Emulation.Arm64.Arm64CpuModel.NeoverseV2 : Emulation.Arm64.Arm64CpuModel.NeoverseV1);
        config = config with { Arm64Cpu = cpu };
        string host = cpu.HasSve2 ? $"{cpu.Name} host with SVE2" : $"{cpu.Name} host with SVE";
        var selection = new KernelSelection(new EmulatedKernel(config), $"emulated ({description}, {host})", Release: null, config.Proposals);
        if (kernel.Trace is not TextWriter trace) return selection;
        var lines = TextWriter.Synchronized(trace);
        return selection with { Kernel = new Kernel.Tracing.TracingKernel(selection.Kernel, call => lines.WriteLine(call), ownsInner: true) };
    }

    /// <summary>What else the user can ask for when the kernel has no guest_memfd for the VM.</summary>
    private static string Alternatives(KernelRequest kernel, bool refusing)
    {
        string other = refusing
            ? $"--memory {MemoryAuto} or --memory {MemoryHost} runs the guest in ordinary host memory"
            : $"--memory {MemoryGuestMemfd} refuses";
        // The emulated kernel like this host is built like it (without guest_memfd here); the full x86_64 preset has it.
        string? elsewhere = kernel switch
        {
            { Kind: KernelKind.Linux } => "--kernel emulated --arch x86_64 gives guest_memfd",
            // Before 6.18 guest_memfd cannot be mapped: no kernel of that release backs a micro-VM with it alone.
            { Kind: KernelKind.Emulated, Generation: KernelGeneration g } when !g.HasGmemMmap() =>
                "a guest_memfd-only micro-VM needs Linux 6.18 or later (GUEST_MEMFD_FLAG_MMAP)",
            { Kind: KernelKind.Emulated, Arch: null, InPlaceConversion: false } => "--arch x86_64 gives guest_memfd",
            _ => null,
        };
        return elsewhere is null ? other : $"{other}; {elsewhere}";
    }

    /// <summary>The --json name of a backing: "guest_memfd" or "host".</summary>
    public static string MemoryName(GuestMemoryBacking backing) => backing switch
    {
        GuestMemoryBacking.GuestMemfd => "guest_memfd",
        GuestMemoryBacking.HostMemory => "host",
        _ => backing.ToString(),
    };

    /// <summary>"exit status 0, result 5050 (rip 0x6012, 3 exits, 0.21 ms)".</summary>
    public static string Describe(CallResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder(result.Outcome.Name());
        if (result.Outcome == GuestOutcome.Exit) text.Append(CultureInfo.InvariantCulture, $" status {result.Status}");
        if (result.Value is ulong value) text.Append(CultureInfo.InvariantCulture, $", result {value}");
        if (result.Outcome != GuestOutcome.Exit) text.Append(": ").Append(result.Detail);
        text.Append(CultureInfo.InvariantCulture, $" (rip 0x{result.Rip:X}, {result.Exits} exits, {result.Elapsed.TotalMilliseconds:F2} ms)");
        return text.ToString();
    }

    /// <summary>
    /// --gdb's HOST:PORT: an IP address (IPv6 in brackets) or a host name, and a port (0: any free one).
    /// </summary>
    public static System.Net.IPEndPoint ParseEndpoint(string text)
    {
        if (System.Net.IPEndPoint.TryParse(text, out System.Net.IPEndPoint? endpoint) && text.Contains(':', StringComparison.Ordinal))
            return endpoint;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ushort port))
            throw new UsageException($"--gdb: '{text}' is not HOST:PORT (e.g. 127.0.0.1:1234)");
        string host = text[..colon];
        System.Net.IPAddress[] addresses;
        try
        {
            addresses = System.Net.Dns.GetHostAddresses(host);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new UsageException($"--gdb: cannot resolve '{host}': {e.Message}");
        }
        System.Net.IPAddress address = addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            ?? addresses.FirstOrDefault() ?? throw new UsageException($"--gdb: '{host}' has no address");
        return new System.Net.IPEndPoint(address, port);
    }

    /// <summary>
    /// The instruction trace of a call, one line per instruction ("0x100000  mov eax,1"), and a last line when the limit
    /// cut it short; nothing without a trace.
    /// </summary>
    public static void WriteTrace(TextWriter output, GuestTrace? trace)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (trace is null) return;
        foreach (TracedInstruction instruction in trace.Instructions)
        {
            output.Write(instruction.ToString());
            output.WriteLine(instruction.RaisedException ? "  ; raised an exception" : "");
        }
        if (trace.Truncated)
            output.WriteLine($"(trace limit {trace.Limit} reached: single-stepping switched off, the rest of the call ran untraced)");
    }

    /// <summary>
    /// The run's JSON object; <paramref name="noDirectMap"/>: the guest_memfd left the kernel's direct map
    /// (<c>"direct_map":"removed"</c>, a proposal only the emulated kernel has; else <c>"kept"</c>). A run from a snapshot
    /// adds <paramref name="restore"/> (<c>"restore":"eager"</c> or <c>"lazy"</c>) and <paramref name="lazyPagesPopulated"/>.
    /// </summary>
    public static void WriteJson(TextWriter output, CallResult result, GuestMemoryBacking memory, bool noDirectMap = false,
        IReadOnlyList<(string Name, ulong Value)>? vcpuStats = null, string? restore = null, long lazyPagesPopulated = 0)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(result);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("outcome", result.Outcome.Name());
            w.WriteNumber("status", result.Status);
            if (result.Value is ulong value) w.WriteNumber("result", value);
            else w.WriteNull("result");
            w.WriteString("console", result.Console);
            w.WriteNumber("rip", result.Rip);
            w.WriteNumber("exits", result.Exits);
            w.WriteNumber("elapsed_us", Math.Round(result.Elapsed.TotalMicroseconds, 1));
            w.WriteString("detail", result.Detail);
            if (result.Port is ushort port) w.WriteNumber("port", port);
            if (result.Exception is { } exception)
            {
                // Only what the exception has: no error code for #DE or #UD, CR2 for #PF alone.
                w.WriteNumber("vector", exception.Vector);
                if (exception.ErrorCode is ulong errorCode) w.WriteNumber("error_code", errorCode);
                if (exception.Cr2 is ulong cr2) w.WriteNumber("cr2", cr2);
            }
            w.WriteNumber("host_calls", result.HostCalls);
            w.WriteNumber("conversions", result.Conversions);
            w.WriteString("memory", MemoryName(memory));
            w.WriteString("direct_map", noDirectMap ? "removed" : "kept");
            if (restore is not null)
            {
                // A run from a snapshot: how it was restored, and the pages a lazy restore wrote on first touch.
                w.WriteString("restore", restore);
                w.WriteNumber("lazy_pages_populated", lazyPagesPopulated);
            }
            if (result.Trace is { } trace)
            {
                w.WriteStartArray("trace");
                foreach (TracedInstruction instruction in trace.Instructions)
                {
                    w.WriteStartObject();
                    w.WriteNumber("rip", instruction.Rip);
                    w.WriteString("bytes", Convert.ToHexStringLower(instruction.Bytes.Span));
                    w.WriteString("text", instruction.Disassembly);
                    if (instruction.RaisedException) w.WriteBoolean("raised_exception", true);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteBoolean("trace_truncated", trace.Truncated);
            }
            if (vcpuStats is not null)
            {
                // --stats: the non-zero first values of the vCPU's statistics, by name.
                w.WriteStartObject("vcpu_stats");
                foreach (var (name, count) in vcpuStats) w.WriteNumber(name, count);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    /// <summary>Bytes with an optional K/M/G suffix (binary units; "2M", "2MiB", "4096K", "2097152").</summary>
    public static ulong ParseSize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToUpperInvariant();
        if (t.EndsWith("IB", StringComparison.Ordinal)) t = t[..^2];
        else if (t.EndsWith('B')) t = t[..^1];
        ulong unit = t.Length > 0 ? t[^1] switch { 'K' => 1UL << 10, 'M' => 1UL << 20, 'G' => 1UL << 30, _ => 1 } : 1;
        if (unit != 1) t = t[..^1];
        if (!ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n > ulong.MaxValue / unit)
            throw new UsageException($"--mem: '{text}' is not a size (e.g. 2M, 64M, 1G)");
        return n * unit;
    }

    /// <summary>"500ms", "1s", "2m", "1.5s", or "none" for no limit.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToLowerInvariant();
        if (t is "none" or "infinite") return Timeout.InfiniteTimeSpan;
        (string number, double scale) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 1e-3)
            : t.EndsWith('s') ? (t[..^1], 1) : t.EndsWith('m') ? (t[..^1], 60) : (t, 1);
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) || value <= 0 || value * scale > 86_400)
            throw new UsageException($"--timeout: '{text}' is not a positive duration (e.g. 500ms, 1s, 2m, none)");
        return TimeSpan.FromSeconds(value * scale);
    }

    /// <summary>The snapshot in file <paramref name="path"/>, or null when the file is not one (by its magic).</summary>
    private static MicroVmSnapshot? LoadSnapshot(string path)
    {
        if (!File.Exists(path)) return null;
        using var file = File.OpenRead(path);
        Span<byte> header = stackalloc byte[8];
        if (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length || !MicroVmSnapshot.HasSnapshotMagic(header))
            return null;
        file.Position = 0;
        try
        {
            return MicroVmSnapshot.ReadFrom(file);
        }
        catch (MicroVmSnapshotFormatException e)
        {
            throw new UsageException($"{path}: {e.Message}");
        }
    }

    private static void SaveSnapshot(MicroVm vm, string path)
    {
        MicroVmSnapshot snapshot = vm.Snapshot();
        try
        {
            // Written beside, then renamed: a failed write never leaves half a snapshot under the name.
            string temporary = path + ".tmp";
            using (var file = File.Create(temporary)) snapshot.WriteTo(file);
            File.Move(temporary, path, overwrite: true);
        }
        catch (IOException e)
        {
            throw new UnavailableException($"--save-snapshot {path}: {e.Message}");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new UnavailableException($"--save-snapshot {path}: {e.Message}");
        }
    }

    private static GuestImage LoadFile(string path)
    {
        if (!File.Exists(path))
            throw new UsageException($"'{path}' is neither a file nor a demo ({string.Join(", ", DemoGuests.All.Select(d => d.Name))})");
        try
        {
            return GuestImage.FromFile(path);
        }
        catch (GuestImageException e)
        {
            throw new UsageException($"{path}: {e.Message}");
        }
    }

    /// <summary>Console bytes from the guest, decoded as UTF-8 and written to a TextWriter as they arrive.</summary>
    private sealed class TextWriterStream(TextWriter writer) : Stream
    {
        private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
        private readonly char[] _chars = new char[8];

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            foreach (byte b in buffer)
            {
                int n = _decoder.GetChars([b], _chars, flush: false);
                if (n > 0) writer.Write(_chars, 0, n);
                if (b == (byte)'\n') writer.Flush();
            }
        }

        public override void WriteByte(byte value) => Write([value]);

        public override void Flush() => writer.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
