// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>What the fuzzer believes a descriptor number is (from the call that created it).</summary>
internal enum FdKind
{
    System,
    Vm,
    Vcpu,
    Gmem,
    EventFd,
    /// <summary>A device fd from KVM_CREATE_DEVICE (kvm-vfio on x86, a vGIC on arm64).</summary>
    Device,
    Other,
}

/// <summary>
/// One fuzzing session on one <see cref="EmulatedKernel"/>: tracks the descriptors and mappings the calls created,
/// generates the next call from them, and keeps a log for reproducers. See <see cref="RawIoctlFuzzer"/>.
/// </summary>
/// <remarks>
/// This file is the session's core: its state, the driver that picks the next kind of call (<see cref="Step"/>), the
/// model and teardown checks, and the bookkeeping of every call (log, outcome counts). The calls themselves live in
/// the other RawFuzzSession.*.cs files: descriptors, ioctls (requests, buffers and the per-area fills), file
/// operations, mappings and the emulator's test hooks. Every random draw goes through <see cref="_rng"/> in a fixed
/// order, so a seed gives the same calls.
/// </remarks>
internal sealed partial class RawFuzzSession
{
    private const int LogLength = 400;
    private const ulong MaxAllocation = 4UL << 20;

    private static readonly int PageSize = Environment.SystemPageSize;
    private static readonly ulong Ps = (ulong)PageSize;

    private readonly EmulatedKernel _kernel;
    private readonly Random _rng;
    private readonly UserSandbox _sandbox;
    private readonly RunWatchdog _watchdog;
    private readonly Dictionary<int, FdKind> _open = [];
    private readonly Dictionary<int, KernelFd> _handles = [];
    private readonly List<int> _closed = [];
    private readonly List<Mapping> _mappings = [];
    private readonly List<GuestMemfdPin> _pins = [];
    /// <summary>(VM fd, slot) of slots created with KVM_MEM_LOG_DIRTY_PAGES: what KVM_GET/CLEAR_DIRTY_LOG aim at.</summary>
    private readonly List<(int Vm, uint Slot)> _loggingSlots = [];
    private readonly Queue<string> _log = new();
    private int _expectedFds;

    public RawFuzzSession(EmulatedKernel kernel, Random rng, UserSandbox sandbox, RunWatchdog watchdog)
    {
        _kernel = kernel;
        _rng = rng;
        _sandbox = sandbox;
        _watchdog = watchdog;
    }

    /// <summary>The most recent calls of this session, oldest first.</summary>
    public IEnumerable<string> Log => _log;

    public string LastOp { get; private set; } = "";

    /// <summary>Per call name (ioctl request name or file operation): how often it succeeded and failed, over all sessions.</summary>
    public Dictionary<string, (long Ok, long Failed)>? Outcomes { get; init; }

    /// <summary>The outcome key of KVM_CREATE_GUEST_MEMFD calls with GUEST_MEMFD_FLAG_HUGETLB (HugeTLB proposal kernels).</summary>
    public const string HugetlbGmemOutcome = "KVM_CREATE_GUEST_MEMFD with GUEST_MEMFD_FLAG_HUGETLB";

    /// <summary>The outcome key of KVM_SET_USER_MEMORY_REGION2 calls with KVM_MEM_USERFAULT.</summary>
    public const string UserfaultSlotOutcome = "KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_USERFAULT";

    /// <summary>Makes one call; returns its description with the result.</summary>
    public string Step()
    {
        int pick = _rng.Next(100);
        string op;
        if (_open.Count == 0 || pick < 3) op = Open();
        else if (pick < 68) op = Ioctl();
        else if (pick < 72) op = Close();
        else if (pick < 80) op = Fallocate();
        else if (pick < 85) op = FileIo();
        else if (pick < 90) op = Mmap();
        else if (pick < 93) op = Munmap();
        else if (pick < 95) op = Madvise();
        else if (pick < 98) op = Touch();
        else op = Hooks();
        return op;
    }

    /// <summary>Checks the session's own model against the kernel: the open descriptor count.</summary>
    public string? CheckModel()
    {
        int count = _kernel.OpenFdCount;
        return count == _expectedFds ? null : $"fd table holds {count} descriptors, the calls opened {_expectedFds} and left them open";
    }

    /// <summary>
    /// Ends the session like exit(2): own mappings unmapped, pins dropped, kernel disposed. Then nothing may be left:
    /// no emulated descriptor, mapping or VM. Returns what leaked, or null.
    /// </summary>
    public string? Teardown()
    {
        foreach (var pin in _pins) pin.Dispose();
        var problems = new List<string>();
        foreach (var m in _mappings)
        {
            long rc = _kernel.Munmap(m.Start, m.Length);
            if (rc < 0) problems.Add($"munmap of the session's own mapping at 0x{m.Start:X} failed: {rc}");
        }
        _mappings.Clear();
        if (_kernel.MappingCount != 0) problems.Add($"{_kernel.MappingCount} emulated mappings left after every mapping was unmapped");
        foreach (var fd in _handles.Values) fd.SetHandleAsInvalid();
        _kernel.Dispose();
        if (_kernel.OpenFdCount != 0) problems.Add($"{_kernel.OpenFdCount} descriptors left after exit");
        if (_kernel.LiveVmCount != 0) problems.Add($"{_kernel.LiveVmCount} VMs alive after every descriptor was closed");
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    /// <summary>Names the call about to be made, for a finding if it throws.</summary>
    private void Begin(string what) => LastOp = what;

    /// <summary>Logs a finished call with its result and counts its outcome; returns the log line.</summary>
    private string Record(string what, long rc)
    {
        if (Outcomes is not null) Tally(Outcomes, OutcomeKey(what), rc);
        string line = string.Create(CultureInfo.InvariantCulture, $"{what} = {Describe(rc)}");
        _log.Enqueue(line);
        if (_log.Count > LogLength) _log.Dequeue();
        return line;
    }

    /// <summary>Counts one success (rc ≥ 0) or failure of the call named <paramref name="key"/>.</summary>
    private static void Tally(Dictionary<string, (long Ok, long Failed)> outcomes, string key, long rc)
    {
        var (ok, failed) = outcomes.GetValueOrDefault(key);
        outcomes[key] = rc >= 0 ? (ok + 1, failed) : (ok, failed + 1);
    }

    private static string OutcomeKey(string what)
    {
        if (what.StartsWith("ioctl(", StringComparison.Ordinal))
        {
            int a = what.IndexOf(", ", StringComparison.Ordinal) + 2;
            int b = what.IndexOf(", ", a, StringComparison.Ordinal);
            string name = b > a ? what[a..b] : "ioctl";
            return "ioctl " + (name.StartsWith("ioctl 0x", StringComparison.Ordinal) ? "(other request)" : name);
        }
        int paren = what.IndexOfAny(['(', ' ']);
        return paren > 0 ? what[..paren] : what;
    }

    private static string Describe(long rc) =>
        rc < 0 && rc >= -4095 ? ErrnoInfo.NameOf((int)-rc) : rc.ToString(CultureInfo.InvariantCulture);
}
