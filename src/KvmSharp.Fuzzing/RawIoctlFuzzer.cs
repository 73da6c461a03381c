// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Emulation;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>One problem the raw fuzzer found: an exception out of the emulator or a broken invariant after a call.</summary>
/// <param name="Kind">"exception", "invariant" or "leak".</param>
/// <param name="Input">Index of the input (call) in the run.</param>
/// <param name="Session">Session number (its seed is DifferentialFuzzer.SessionSeed(run seed, session)).</param>
/// <param name="Config">The emulator configuration of the session.</param>
/// <param name="Op">The call that failed.</param>
/// <param name="Detail">The exception or the violated invariants.</param>
/// <param name="Reproducer">The session's calls up to and including this one (replay with the same seed and config).</param>
public sealed record RawFuzzFinding(string Kind, long Input, int Session, string Config, string Op, string Detail, IReadOnlyList<string> Reproducer);

/// <summary>The result of a raw fuzzing run.</summary>
/// <param name="Inputs">Calls made.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Exceptions">Calls that threw out of the emulator.</param>
/// <param name="InvariantViolations">Calls after which <see cref="EmulatorInvariants.Check"/> (or the fd-count model) failed.</param>
/// <param name="Leaks">Sessions that left descriptors, mappings or VMs behind, and host memfds left at the end.</param>
/// <param name="Findings">The first findings, with reproducers.</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="Outcomes">Per call name: successes and failures, to see how deep the inputs reached.</param>
public sealed record RawFuzzReport(long Inputs, int Seed, long Exceptions, long InvariantViolations, long Leaks, IReadOnlyList<RawFuzzFinding> Findings, TimeSpan Elapsed, IReadOnlyDictionary<string, (long Ok, long Failed)> Outcomes)
{
    public bool Clean => Exceptions == 0 && InvariantViolations == 0 && Leaks == 0;
}

/// <summary>
/// Raw-byte fuzzing of the emulated kernel: random and mutated ioctl requests and argument bytes (every request the
/// emulator knows on /dev/kvm, VM, vCPU and guest_memfd fds, the VFS-level requests, unknown and mis-encoded
/// requests; empty, short, exact and long buffers; integer arguments; reserved bits, huge values), plus random file
/// operations (close, read, write, pread, pwrite, lseek, fstat, ftruncate, fallocate, mmap, munmap, madvise) and the
/// emulator's test hooks. The emulator must answer every call with a value or -errno and never throw, and
/// <see cref="EmulatorInvariants.Check"/> must hold after every call. Sessions of <see cref="SessionLength"/> calls
/// run on a fresh kernel with one of <see cref="Configs"/>; each session ends with a teardown check (no emulated fd,
/// mapping or VM left, no host descriptor leaked).
/// </summary>
/// <remarks>
/// Safety: the emulator's memory is real host memory of this process, so a few inputs are shaped before the call
/// and the shaping is part of the generator, not of the emulator: userspace_addr of memory slots always lies in a
/// private PROT_NONE reservation (a guest access through it faults instead of writing into this process), and so do the
/// dirty_bitmap pointers of KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG (or they are NULL or in the kernel half); mmap never
/// gets MAP_FIXED, MAP_POPULATE or MAP_LOCKED; munmap and madvise only target this fuzzer's own mappings (and never
/// MADV_HWPOISON / MADV_SOFT_OFFLINE); host bytes are touched only where the emulator's own fault verdict allows;
/// allocations (fallocate, KVM_PRE_FAULT_MEMORY) are bounded to a few MiB per call; every KVM_RUN is kicked after
/// <see cref="RunBudget"/> like a signal would.
/// </remarks>
public sealed class RawIoctlFuzzer
{
    /// <summary>The emulator configurations sessions rotate through.</summary>
    public static IReadOnlyList<(string Name, Func<EmulatorConfig> Create)> Configs { get; } =
    [
        ("like-this-host", () => EmulatorConfig.LikeThisHost()),
        ("x86_64", () => EmulatorConfig.X86_64()),
        ("x86_64-in-place-v8", () => EmulatorConfig.X86_64(inPlaceConversion: true)),
        ("x86_64-vm-attributes2", () => EmulatorConfig.X86_64() with { VmMemoryAttributes2 = true, GuestMemfdFlagsHiCap = 251, ExtraGuestMemfdFlags = 1UL << 40 }),
        ("arm64", () => EmulatorConfig.Arm64() with { KvmUserfault = true }),
        // The guest_memfd proposals: write(2) of [PATCH v7 1/2] with NO_DIRECT_MAP (v12) and KVM userfault (v3) — the set
        // Firecracker's secret-hiding tree carries — on 6.18, and write(2) with in-place conversion.
        ("x86_64-gmem-write-ndm", () => EmulatorConfig.X86_64() with { GuestMemfdWrite = true, GuestMemfdNoDirectMap = true, KvmUserfault = true }),
        ("x86_64-in-place-v8-gmem-write", () => EmulatorConfig.X86_64(inPlaceConversion: true) with { GuestMemfdWrite = true }),
        // guest_memfd HugeTLB in both proposed encodings, with in-place conversion (split/merge) and FLAGS_HI.
        ("x86_64-in-place-v8-hugetlb-rfc-v2", () => EmulatorConfig.X86_64(inPlaceConversion: true)
            .WithGuestMemfdHugetlb(KvmSharp.Abi.GuestMemfdHugetlbEncoding.RfcV2FlagBits) with { GuestMemfdFlagsHiCap = 251 }),
        ("x86_64-in-place-v8-hugetlb-page-order", () => EmulatorConfig.X86_64(inPlaceConversion: true)
            .WithGuestMemfdHugetlb(KvmSharp.Abi.GuestMemfdHugetlbEncoding.PageOrderField)),
        ("like-this-host-without-guest-memfd", () => EmulatorConfig.LikeThisHost(guestMemfd: false)),
        // Older releases: the same requests reach code paths that are compiled out or answer differently there.
        ("x86_64-6.1", () => EmulatorConfig.X86_64(KernelGeneration.Linux61)),
        ("x86_64-6.8", () => EmulatorConfig.X86_64(KernelGeneration.Linux68)),
        ("x86_64-6.11", () => EmulatorConfig.X86_64(KernelGeneration.Linux611)),
        ("arm64-6.16", () => EmulatorConfig.Arm64(KernelGeneration.Linux616)),
    ];

    /// <summary>Calls per session before the kernel is torn down and a fresh one starts.</summary>
    public int SessionLength { get; init; } = 300;

    /// <summary>Findings kept in the report (all are counted).</summary>
    public int MaxFindings { get; init; } = 20;

    /// <summary>How long one KVM_RUN may go before the fuzzer kicks it (IKernel.KickThread).</summary>
    public TimeSpan RunBudget { get; init; } = TimeSpan.FromMilliseconds(2);

    public RawFuzzReport Run(long inputs, int seed, Action<long>? progress = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inputs);
        var clock = Stopwatch.StartNew();
        var findings = new List<RawFuzzFinding>();
        long exceptions = 0, violations = 0, leaks = 0, done = 0;
        var hostFdsBefore = HostFds();
        using var sandbox = UserSandbox.Reserve();
        using var watchdog = new RunWatchdog(RunBudget);
        int session = 0;
        var outcomes = new Dictionary<string, (long Ok, long Failed)>();
        while (done < inputs)
        {
            // A fixed mix, not HashCode.Combine (randomized per process): a seed repeats its calls in any process.
            var rng = new Random(DifferentialFuzzer.SessionSeed(seed, session));
            var (configName, create) = Configs[rng.Next(Configs.Count)];
            int length = (int)Math.Min(SessionLength, inputs - done);
            var kernel = new EmulatedKernel(create());
            var s = new RawFuzzSession(kernel, rng, sandbox, watchdog) { Outcomes = outcomes };
            for (int i = 0; i < length; i++, done++)
            {
                string op;
                try
                {
                    op = s.Step();
                }
#pragma warning disable CA1031 // any exception out of the emulator is the finding this fuzzer exists for
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    exceptions++;
                    Add(new RawFuzzFinding("exception", done, session, configName, s.LastOp, $"{ex.GetType().Name}: {ex.Message} @ {TopFrame(ex)}", s.Log.ToList()));
                    continue;
                }
                var broken = EmulatorInvariants.Check(kernel);
                string? model = s.CheckModel();
                if (broken.Count > 0 || model is not null)
                {
                    violations++;
                    var all = model is null ? broken : broken.Append(model);
                    Add(new RawFuzzFinding("invariant", done, session, configName, op, string.Join("; ", all.Take(4)), s.Log.ToList()));
                    // The session's state is broken: start a fresh kernel so one bug is not counted for every call.
                    done++;
                    break;
                }
                if (progress is not null && (done & 0xffff) == 0) progress(done);
            }
            string? teardown = s.Teardown();
            if (teardown is not null)
            {
                leaks++;
                Add(new RawFuzzFinding("leak", done, session, configName, "teardown", teardown, s.Log.ToList()));
            }
            session++;
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        // The emulator's host descriptors are memfds ("/memfd:[kvm-gmem]", "/memfd:kvm-vcpu"): none may outlive the run.
        var leaked = HostFds().Except(hostFdsBefore).Where(t => t.Contains("/memfd:", StringComparison.Ordinal)).ToList();
        if (leaked.Count > 0)
        {
            leaks++;
            Add(new RawFuzzFinding("leak", done, session, "-", "end of run", $"{leaked.Count} host memfds left open: {string.Join(", ", leaked.Take(8))}", []));
        }
        return new RawFuzzReport(done, seed, exceptions, violations, leaks, findings, clock.Elapsed, outcomes);

        void Add(RawFuzzFinding f)
        {
            if (findings.Count < MaxFindings) findings.Add(f);
        }
    }

    private static string TopFrame(Exception ex)
    {
        var frame = new StackTrace(ex, fNeedFileInfo: false).GetFrames().FirstOrDefault(f => f.GetMethod()?.DeclaringType?.Namespace?.StartsWith("KvmSharp.Emulation", StringComparison.Ordinal) == true)
            ?? new StackTrace(ex, false).GetFrame(0);
        var m = frame?.GetMethod();
        return m is null ? "?" : $"{m.DeclaringType?.Name}.{m.Name}";
    }

    /// <summary>This process's descriptors as "fd -> target".</summary>
    private static HashSet<string> HostFds()
    {
        var set = new HashSet<string>();
        foreach (string path in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(path).LinkTarget is string target) set.Add($"{Path.GetFileName(path)} -> {target}");
            }
            catch (IOException)
            {
                // the descriptor used to read the directory is gone by now
            }
        }
        return set;
    }
}

/// <summary>
/// A PROT_NONE reservation of this process used as every memory slot's userspace_addr: a guest access through a
/// non-gmem slot reads or writes it with the checked process_vm_* calls and faults (EFAULT) instead of touching
/// live memory. Its first pages are read/write so the success path runs too.
/// </summary>
internal sealed class UserSandbox : IDisposable
{
    public const ulong Size = 1UL << 36; // 64 GiB of address space, no memory
    public const ulong WritablePages = 16;

    private UserSandbox(nint start) => Start = start;

    public nint Start { get; }

    /// <summary>Copies <paramref name="bytes"/> into the writable pages at <paramref name="offset"/>.</summary>
    public void Write(ulong offset, byte[] bytes)
    {
        if (offset + (ulong)bytes.Length > WritablePages * (ulong)Environment.SystemPageSize) throw new ArgumentOutOfRangeException(nameof(offset));
        System.Runtime.InteropServices.Marshal.Copy(bytes, 0, Start + (nint)offset, bytes.Length);
    }

    public static UserSandbox Reserve()
    {
        const int MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
        long rc = HostMemory.Mmap(0, Size, 0, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, out nint start);
        if (rc < 0) throw new InvalidOperationException($"cannot reserve the fuzzer's address-space sandbox: {rc}");
        ulong writable = WritablePages * (ulong)Environment.SystemPageSize;
        // MAP_FIXED over our own reservation only.
        rc = HostMemory.Mmap(start, writable, 0x1 | 0x2, MAP_PRIVATE | MAP_ANONYMOUS | 0x10 /* MAP_FIXED */, -1, 0, out _);
        if (rc < 0)
        {
            _ = HostMemory.Munmap(start, Size);
            throw new InvalidOperationException($"cannot make the sandbox's first pages writable: {rc}");
        }
        return new UserSandbox(start);
    }

    public void Dispose() => _ = HostMemory.Munmap(Start, Size);
}

/// <summary>Kicks the fuzzing thread out of a KVM_RUN that outlives its budget, as a signal would.</summary>
internal sealed class RunWatchdog : IDisposable
{
    private readonly long _budgetTicks;
    private readonly Thread _thread;
    private volatile EmulatedKernel? _kernel;
    private volatile int _tid;
    private long _deadline;
    private volatile bool _stop;

    public RunWatchdog(TimeSpan budget)
    {
        _budgetTicks = (long)(budget.TotalSeconds * Stopwatch.Frequency);
        _thread = new Thread(Loop) { IsBackground = true, Name = "rawfuzz-watchdog" };
        _thread.Start();
    }

    /// <summary>Arms the watchdog for a KVM_RUN about to start on the calling thread.</summary>
    public void Arm(EmulatedKernel kernel)
    {
        Volatile.Write(ref _deadline, Stopwatch.GetTimestamp() + _budgetTicks);
        _tid = kernel.GetTid();
        _kernel = kernel;
    }

    public void Disarm() => _kernel = null;

    private void Loop()
    {
        while (!_stop)
        {
            Thread.Sleep(1);
            var k = _kernel;
            if (k is not null && Stopwatch.GetTimestamp() > Volatile.Read(ref _deadline)) k.KickThread(_tid);
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}
