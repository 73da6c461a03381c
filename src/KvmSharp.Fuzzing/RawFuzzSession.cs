// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using static KvmSharp.Abi.IoctlEncoding;

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
internal sealed class RawFuzzSession
{
    private const int LogLength = 400;
    private const ulong MaxAllocation = 4UL << 20;

    // include/uapi/asm-generic/ioctls.h, include/uapi/linux/fs.h: what do_vfs_ioctl answers for every file.
    private static readonly uint[] VfsRequests = [0x5450, 0x5451, 0x5452, 0x5421, 0x0002, 0xC020660B, 0xC0045877, 0xC0045878, 0x541B /* FIONREAD */];

    /// <summary>More KVM requests fed raw (some unimplemented, some implemented since this list was made): any errno, never a throw.</summary>
    private static readonly uint[] OtherKvmRequests =
    [
        _IO(KvmIoctls.KVMIO, 0x60) /* KVM_CREATE_IRQCHIP */, _IO(KvmIoctls.KVMIO, 0xc7) /* KVM_RESET_DIRTY_RINGS */,
        _IOW(KvmIoctls.KVMIO, 0x76, 32) /* KVM_IRQFD */, _IOR(KvmIoctls.KVMIO, 0x8c, 416) /* KVM_GET_FPU */,
        _IOW(KvmIoctls.KVMIO, 0xa3, 16) /* KVM_ENABLE_CAP */, _IO(KvmIoctls.KVMIO, 0xd6) /* RFC ATTRIBUTES2 nr */,
        _IOWR(KvmIoctls.KVMIO, 0xd6, 64) /* RFC v4 KVM_SET_MEMORY_ATTRIBUTES2 */, KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR,
    ];

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

    /// <summary>A host mapping this session made and still owns: [Start, Start+Length), from file <see cref="Kind"/>.</summary>
    private sealed record Mapping(nint Start, ulong Length, FdKind Kind, long Offset, bool Anonymous, int Prot);

    // ------------------------------------------------------------------ driver

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

    /// <summary>Per call name (ioctl request name or file operation): how often it succeeded and failed, over all sessions.</summary>
    public Dictionary<string, (long Ok, long Failed)>? Outcomes { get; init; }

    private string Record(string what, long rc)
    {
        if (Outcomes is not null)
        {
            string key = OutcomeKey(what);
            var (ok, failed) = Outcomes.GetValueOrDefault(key);
            Outcomes[key] = rc >= 0 ? (ok + 1, failed) : (ok, failed + 1);
        }
        string line = string.Create(CultureInfo.InvariantCulture, $"{what} = {Describe(rc)}");
        _log.Enqueue(line);
        if (_log.Count > LogLength) _log.Dequeue();
        return line;
    }

    private void Begin(string what) => LastOp = what;

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

    // ------------------------------------------------------------------ descriptors

    private KernelFd Handle(int number)
    {
        if (!_handles.TryGetValue(number, out var fd))
        {
            fd = new KernelFd(_kernel, number);
            _handles[number] = fd;
        }
        return fd;
    }

    private int PickFd(FdKind? want = null)
    {
        int r = _rng.Next(100);
        if (want is FdKind k && r < 80)
        {
            var of = _open.Where(p => p.Value == k).Select(p => p.Key).ToList();
            if (of.Count > 0) return of[_rng.Next(of.Count)];
        }
        if (r < 85 && _open.Count > 0) return _open.Keys.ElementAt(_rng.Next(_open.Count));
        if (r < 90 && _closed.Count > 0) return _closed[_rng.Next(_closed.Count)];
        if (r < 96) return _rng.Next(-2, 48);
        return _rng.Next(2) == 0 ? int.MaxValue - _rng.Next(4) : _rng.Next(int.MinValue, 0);
    }

    private FdKind KindOf(int fd) => _open.TryGetValue(fd, out var k) ? k : FdKind.Other;

    private void Opened(int fd, FdKind kind)
    {
        _open[fd] = kind;
        _closed.Remove(fd);
        _expectedFds++;
    }

    private string Open()
    {
        // Now and then an eventfd, for KVM_IOEVENTFD / KVM_IRQFD to take.
        if (_rng.Next(4) == 0) return EventFd();
        string path = _rng.Next(10) switch
        {
            0 => _rng.Next(2) == 0 ? "/dev/null" : "/dev/kvm2",
            // The PSP's device (present on configurations with an SEV VM type): the SEV launch commands' sev_fd.
            1 => "/dev/sev",
            _ => "/dev/kvm",
        };
        Begin($"open({path})");
        long rc = _kernel.Open(path, LinuxConstants.O_RDWR, out var fd);
        if (rc >= 0)
        {
            fd!.SetHandleAsInvalid(); // the session owns the number; Teardown closes everything
            Opened((int)rc, path == "/dev/sev" ? FdKind.Other : FdKind.System);
        }
        return Record($"open({path})", rc);
    }

    private string Close()
    {
        int fd = PickFd();
        Begin($"close({fd})");
        long rc = _kernel.Close(fd);
        if (rc == 0 && _open.Remove(fd))
        {
            _closed.Add(fd);
            _expectedFds--;
        }
        return Record($"close({fd})", rc);
    }

    // ------------------------------------------------------------------ ioctl

    private string Ioctl()
    {
        var (fd, kind) = PickIoctlTarget();
        uint request = PickRequest(kind);
        // A dirty log exists only on a VM with a logging slot: aim there often enough to get past the slot lookup.
        if ((request == KvmIoctls.KVM_GET_DIRTY_LOG || request == KvmIoctls.KVM_CLEAR_DIRTY_LOG) && _loggingSlots.Count > 0 && _rng.Next(3) != 0)
            (fd, kind) = (_loggingSlots[_rng.Next(_loggingSlots.Count)].Vm, FdKind.Vm);
        bool intForm = _IOC_SIZE(request) == 0 && _IOC_DIR(request) == _IOC_NONE ? _rng.Next(4) != 0 : _rng.Next(6) == 0;
        long rc;
        string what;
        if (intForm)
        {
            ulong value = IntArg(request);
            what = string.Create(CultureInfo.InvariantCulture, $"ioctl({fd} {kind}, {KvmIoctls.NameOf(request)}, 0x{value:X})");
            Begin(what);
            rc = Call(fd, request, value);
        }
        else
        {
            byte[] buffer = Buffer(request, fd);
            what = string.Create(CultureInfo.InvariantCulture, $"ioctl({fd} {kind}, {KvmIoctls.NameOf(request)}, [{buffer.Length}] {Convert.ToHexString(buffer.AsSpan(0, Math.Min(buffer.Length, 48)))})");
            Begin(what);
            rc = Call(fd, request, buffer);
            if (rc == 0) RememberLoggingSlot(fd, request, buffer);
            CountUserfaultSlot(request, buffer, rc);
            CountHugetlbGmem(request, buffer, rc);
            AfterCreateDevice(kind, request, rc, buffer);
        }
        AfterIoctl(fd, kind, request, rc);
        return Record(what, rc);
    }

    private long Call(int fd, uint request, ulong value)
    {
        bool run = request == KvmIoctls.KVM_RUN;
        if (run) _watchdog.Arm(_kernel);
        try
        {
            return _kernel.Ioctl(Handle(fd), request, value);
        }
        finally
        {
            if (run) _watchdog.Disarm();
        }
    }

    private long Call(int fd, uint request, byte[] buffer)
    {
        bool run = request == KvmIoctls.KVM_RUN;
        if (run) _watchdog.Arm(_kernel);
        try
        {
            return _kernel.Ioctl(Handle(fd), request, buffer);
        }
        finally
        {
            if (run) _watchdog.Disarm();
        }
    }

    /// <summary>The descriptor-creating requests: a success installs exactly one new fd of a known kind.</summary>
    private void AfterIoctl(int fd, FdKind kind, uint request, long rc)
    {
        if (rc < 0) return;
        FdKind? created = kind switch
        {
            FdKind.System when request == KvmIoctls.KVM_CREATE_VM => FdKind.Vm,
            FdKind.Vm when request == KvmIoctls.KVM_CREATE_GUEST_MEMFD => FdKind.Gmem,
            FdKind.Vm when request == KvmIoctls.KVM_CREATE_VCPU => FdKind.Vcpu,
            // A binary stats fd: read, pread, lseek … reach it as any other descriptor.
            FdKind.Vm or FdKind.Vcpu when request == KvmIoctls.KVM_GET_STATS_FD => FdKind.Other,
            _ => null,
        };
        if (created is FdKind c) Opened((int)rc, c);
    }

    /// <summary>KVM_CREATE_DEVICE answers 0 and writes the new descriptor into kvm_create_device.fd (none with TEST).</summary>
    private void AfterCreateDevice(FdKind kind, uint request, long rc, byte[] buffer)
    {
        if (kind != FdKind.Vm || request != KvmIoctls.KVM_CREATE_DEVICE || rc != 0 || buffer.Length < 12) return;
        if ((BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(8)) & KvmDeviceConstants.KVM_CREATE_DEVICE_TEST) != 0) return;
        Opened(BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(4)), FdKind.Device);
    }

    private (int Fd, FdKind Kind) PickIoctlTarget()
    {
        FdKind want = _rng.Next(10) switch
        {
            0 => FdKind.System,
            < 4 => FdKind.Vm,
            < 6 => FdKind.Vcpu,
            < 9 => FdKind.Gmem,
            _ => FdKind.Device,
        };
        int fd = PickFd(want);
        return (fd, KindOf(fd));
    }

    private static uint[] KnownFor(FdKind kind) => kind switch
    {
        FdKind.System => [KvmIoctls.KVM_GET_API_VERSION, KvmIoctls.KVM_CREATE_VM, KvmIoctls.KVM_CHECK_EXTENSION, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE,
            KvmIoctls.KVM_GET_SUPPORTED_CPUID, KvmIoctls.KVM_GET_EMULATED_CPUID,
            KvmIoctls.KVM_GET_MSR_INDEX_LIST, KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST, KvmIoctls.KVM_GET_MSRS],
        FdKind.Vm =>
        [
            KvmIoctls.KVM_CREATE_VCPU, KvmIoctls.KVM_SET_USER_MEMORY_REGION, KvmIoctls.KVM_SET_USER_MEMORY_REGION2,
            KvmIoctls.KVM_SET_USER_MEMORY_REGION2, KvmIoctls.KVM_SET_TSS_ADDR, KvmIoctls.KVM_CHECK_EXTENSION,
            KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2, KvmIoctls.KVM_CREATE_GUEST_MEMFD,
            KvmIoctls.KVM_CREATE_GUEST_MEMFD, KvmIoctls.KVM_ENABLE_CAP, KvmIoctls.KVM_GET_DIRTY_LOG, KvmIoctls.KVM_CLEAR_DIRTY_LOG,
            KvmIoctls.KVM_IOEVENTFD, KvmIoctls.KVM_IOEVENTFD, KvmIoctls.KVM_IRQFD,
            KvmIoctls.KVM_RESET_DIRTY_RINGS, KvmIoctls.KVM_GET_STATS_FD,
            // The in-kernel irqchip (X86/Irqchip/): creation twice, so VMs with one are common.
            KvmIoctls.KVM_CREATE_IRQCHIP, KvmIoctls.KVM_CREATE_IRQCHIP, KvmIoctls.KVM_IRQ_LINE, KvmIoctls.KVM_IRQ_LINE_STATUS,
            KvmIoctls.KVM_GET_IRQCHIP, KvmIoctls.KVM_SET_IRQCHIP, KvmIoctls.KVM_SET_GSI_ROUTING, KvmIoctls.KVM_SIGNAL_MSI,
            KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP,
            KvmIoctls.KVM_CREATE_DEVICE,
        ],
        FdKind.Vcpu =>
        [
            KvmIoctls.KVM_RUN, KvmIoctls.KVM_GET_REGS, KvmIoctls.KVM_SET_REGS, KvmIoctls.KVM_GET_SREGS, KvmIoctls.KVM_SET_SREGS,
            KvmIoctls.KVM_SET_SREGS, KvmIoctls.KVM_PRE_FAULT_MEMORY,
            KvmIoctls.KVM_SET_CPUID2, KvmIoctls.KVM_GET_CPUID2,
            KvmIoctls.KVM_GET_MSRS, KvmIoctls.KVM_SET_MSRS,
            KvmIoctls.KVM_GET_FPU, KvmIoctls.KVM_SET_FPU, KvmIoctls.KVM_GET_XCRS, KvmIoctls.KVM_SET_XCRS,
            KvmIoctls.KVM_GET_VCPU_EVENTS, KvmIoctls.KVM_SET_VCPU_EVENTS, KvmIoctls.KVM_GET_MP_STATE, KvmIoctls.KVM_SET_MP_STATE,
            KvmIoctls.KVM_GET_DEBUGREGS, KvmIoctls.KVM_SET_DEBUGREGS, KvmIoctls.KVM_SET_GUEST_DEBUG, KvmIoctls.KVM_INTERRUPT, KvmIoctls.KVM_NMI, KvmIoctls.KVM_X86_SET_MCE,
            KvmIoctls.KVM_GET_STATS_FD, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP,
            KvmIoctls.KVM_GET_LAPIC, KvmIoctls.KVM_SET_LAPIC,
        ],
        FdKind.Gmem => [KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2],
        FdKind.Device => [KvmIoctls.KVM_SET_DEVICE_ATTR, KvmIoctls.KVM_GET_DEVICE_ATTR, KvmIoctls.KVM_HAS_DEVICE_ATTR],
        _ => [KvmIoctls.KVM_CHECK_EXTENSION],
    };

    private static readonly uint[] AllKnown =
        [.. KnownFor(FdKind.System), .. KnownFor(FdKind.Vm), .. KnownFor(FdKind.Vcpu), .. KnownFor(FdKind.Gmem), .. KnownFor(FdKind.Device)];

    /// <summary>
    /// The arm64 vCPU and VM requests (Arm64/Arm64VcpuIoctls.cs, Arch/Arm64Kvm.cs), drawn only on an arm64 kernel so
    /// the x86 configurations keep their request mix: init, ONE_REG on core and system register ids, the register list.
    /// </summary>
    private static readonly uint[] Arm64VcpuRequests =
    [
        KvmArm64Ioctls.KVM_ARM_VCPU_INIT, KvmArm64Ioctls.KVM_ARM_VCPU_INIT, KvmArm64Ioctls.KVM_GET_ONE_REG,
        KvmArm64Ioctls.KVM_GET_ONE_REG, KvmArm64Ioctls.KVM_SET_ONE_REG, KvmArm64Ioctls.KVM_SET_ONE_REG, KvmArm64Ioctls.KVM_GET_REG_LIST,
    ];

    /// <summary>
    /// How many ids a structured KVM_GET_REG_LIST buffer has room for (the emulator lists 257 — core, firmware, timer,
    /// system, debug and ID registers and the CCSIDR demux ids — or 331 with KVM_ARM_VCPU_PMU_V3's PMU registers).
    /// </summary>
    private const ulong Arm64RegListRoom = 512;

    private static readonly ulong[] s_arm64SysRegIds =
    [
        KvmArm64SysRegs.MPIDR_EL1, KvmArm64SysRegs.SCTLR_EL1, KvmArm64SysRegs.TTBR0_EL1, KvmArm64SysRegs.VBAR_EL1,
        KvmArm64SysRegs.ESR_EL1, KvmArm64SysRegs.TPIDR_EL0,
    ];

    private uint PickRequest(FdKind kind)
    {
        int r = _rng.Next(100);
        if (r < 62 && _kernel.Config.Architecture == KvmSharp.Emulation.Architecture.Arm64)
        {
            if (kind == FdKind.Vcpu && _rng.Next(2) == 0) return Arm64VcpuRequests[_rng.Next(Arm64VcpuRequests.Length)];
            if (kind == FdKind.Vm && _rng.Next(30) == 0) return KvmArm64Ioctls.KVM_ARM_PREFERRED_TARGET;
            // Enough vCPUs for the requests above to find one.
            if (kind == FdKind.Vm && _rng.Next(6) == 0) return KvmIoctls.KVM_CREATE_VCPU;
        }
        if (r < 62)
        {
            var known = KnownFor(kind);
            return known[_rng.Next(known.Length)];
        }
        if (r < 77) return AllKnown[_rng.Next(AllKnown.Length)];
        if (r < 82) return VfsRequests[_rng.Next(VfsRequests.Length)];
        if (r < 86) return OtherKvmRequests[_rng.Next(OtherKvmRequests.Length)];
        uint baseRequest = AllKnown[_rng.Next(AllKnown.Length)];
        return _rng.Next(5) switch
        {
            // Wrong direction bits.
            0 => (baseRequest & 0x3fffffff) | ((uint)_rng.Next(4) << 30),
            // Wrong size field.
            1 => (baseRequest & ~(0x3fffu << 16)) | ((uint)_rng.Next(0x4000) << 16),
            // KVMIO with any nr.
            2 => _IOC((uint)_rng.Next(4), KvmIoctls.KVMIO, (uint)_rng.Next(256), (uint)_rng.Next(0x200)),
            // Another type with a known nr.
            3 => (baseRequest & ~0xff00u) | ((uint)_rng.Next(256) << 8),
            _ => (uint)_rng.NextInt64(0, 1L << 32),
        };
    }

    private ulong IntArg(uint request)
    {
        if (request == KvmIoctls.KVM_CHECK_EXTENSION && _rng.Next(3) != 0)
            return (ulong)_rng.Next(_rng.Next(4) == 0 ? 300 : 260);
        if (request == KvmIoctls.KVM_CREATE_VM && _rng.Next(3) != 0) return (ulong)_rng.Next(8);
        if (request == KvmIoctls.KVM_CREATE_VCPU && _rng.Next(3) != 0) return (ulong)_rng.Next(6);
        if (request == KvmIoctls.KVM_RUN && _rng.Next(4) != 0) return 0;
        return Interesting();
    }

    private ulong Interesting() => _rng.Next(14) switch
    {
        0 => 0,
        1 => 1,
        2 => (ulong)_rng.Next(64),
        3 => ulong.MaxValue,
        4 => 1UL << 63,
        5 => int.MaxValue,
        6 => uint.MaxValue,
        7 => (ulong)_rng.Next(1, 64) << _rng.Next(12, 63),
        8 => (ulong)_rng.NextInt64(),
        9 => ulong.MaxValue - (ulong)_rng.Next(PageSize),
        10 => Ps * (ulong)_rng.Next(0, 64),
        11 => Ps * (ulong)_rng.Next(0, 64) + (ulong)_rng.Next(1, PageSize),
        12 => (ulong)_rng.Next(1, 64) << 32,
        _ => (ulong)_rng.NextInt64() | ((ulong)_rng.Next(2) << 63),
    };

    // ------------------------------------------------------------------ buffers

    private byte[] Buffer(uint request, int fd)
    {
        int natural = NaturalSize(request);
        byte[] full = new byte[Math.Max(natural, 8) + 64];
        bool structured = _rng.Next(5) != 0;
        if (structured) Fill(request, full, fd);
        else _rng.NextBytes(full);
        if (structured && _rng.Next(3) == 0) Mutate(full, natural);
        int length = _rng.Next(10) switch
        {
            0 => 0,
            1 => natural == 0 ? _rng.Next(0, 8) : _rng.Next(0, natural),
            2 => natural + _rng.Next(1, 64),
            _ => natural,
        };
        var buffer = full.AsSpan(0, Math.Min(length, full.Length)).ToArray();
        Shape(request, buffer);
        return buffer;
    }

    private static int NaturalSize(uint request)
    {
        if (request == KvmIoctls.KVM_CREATE_GUEST_MEMFD) return SizeOf<kvm_create_guest_memfd>();
        if (request == KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP) return SizeOf<kvm_sev_cmd>(); // kvm_tdx_cmd: 24 bytes too
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION) return SizeOf<kvm_userspace_memory_region>();
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2) return SizeOf<kvm_userspace_memory_region2>();
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES) return SizeOf<kvm_memory_attributes>();
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2) return SizeOf<kvm_memory_attributes2>();
        if (request == KvmIoctls.KVM_PRE_FAULT_MEMORY) return SizeOf<kvm_pre_fault_memory>();
        if (request == KvmIoctls.KVM_ENABLE_CAP) return SizeOf<kvm_enable_cap>();
        // kvm_irq_routing header + 4 entries (the request encodes only the header).
        if (request == KvmIoctls.KVM_SET_GSI_ROUTING) return SizeOf<kvm_irq_routing>() + (4 * SizeOf<kvm_irq_routing_entry>());
        // Above the 512-byte cap below: kvm_irqchip (520) and kvm_lapic_state (1024).
        if (request == KvmIoctls.KVM_GET_IRQCHIP || request == KvmIoctls.KVM_SET_IRQCHIP) return SizeOf<kvm_irqchip>();
        if (request == KvmIoctls.KVM_GET_LAPIC || request == KvmIoctls.KVM_SET_LAPIC) return SizeOf<kvm_lapic_state>();
        if (request == KvmIoctls.KVM_GET_REGS || request == KvmIoctls.KVM_SET_REGS) return SizeOf<kvm_regs>();
        if (request == KvmIoctls.KVM_GET_SREGS || request == KvmIoctls.KVM_SET_SREGS) return SizeOf<kvm_sregs>();
        // kvm_msrs header + 4 entries; kvm_msr_list header + 64 indices (this host lists 41).
        if (request == KvmIoctls.KVM_GET_MSRS || request == KvmIoctls.KVM_SET_MSRS) return SizeOf<kvm_msrs>() + (4 * SizeOf<kvm_msr_entry>());
        if (request == KvmIoctls.KVM_GET_MSR_INDEX_LIST || request == KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST) return SizeOf<kvm_msr_list>() + (64 * sizeof(uint));
        if (IsCpuidRequest(request)) return SizeOf<kvm_cpuid2>() + (8 * SizeOf<kvm_cpuid_entry2>()); // header + 8 entries
        // kvm_reg_list: n, then room for Arm64RegListRoom ids (the request encodes only n).
        if (request == KvmArm64Ioctls.KVM_GET_REG_LIST) return sizeof(ulong) * (1 + (int)Arm64RegListRoom);
        int encoded = (int)_IOC_SIZE(request);
        return encoded == 0 ? 8 : Math.Min(encoded, 512);
    }

    private static int SizeOf<T>() where T : unmanaged => Unsafe.SizeOf<T>();

    private static bool IsDeviceAttrRequest(uint request) =>
        request == KvmIoctls.KVM_SET_DEVICE_ATTR || request == KvmIoctls.KVM_GET_DEVICE_ATTR || request == KvmIoctls.KVM_HAS_DEVICE_ATTR;

    private static void U64(byte[] b, int at, ulong v)
    {
        if (at + 8 <= b.Length) BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
    }

    private static void U32(byte[] b, int at, uint v)
    {
        if (at + 4 <= b.Length) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);
    }

    private static ulong GetU64(byte[] b, int at) => at + 8 <= b.Length ? BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at)) : 0;

    /// <summary>
    /// The modeled guest_memfd flag proposals of this kernel, sometimes: GUEST_MEMFD_FLAG_WRITE (1 &lt;&lt; 3, [PATCH v7 1/2])
    /// and NO_DIRECT_MAP (1 &lt;&lt; 2, v12), so files that take write(2) exist. No draw on kernels without them.
    /// </summary>
    private ulong ProposalFlags()
    {
        var config = _kernel.Config;
        if (!config.GuestMemfdWrite && !config.GuestMemfdNoDirectMap) return 0;
        ulong flags = 0;
        if (config.GuestMemfdWrite && _rng.Next(2) == 0) flags |= 1UL << 3;
        if (config.GuestMemfdNoDirectMap && _rng.Next(3) == 0) flags |= 1UL << 2;
        return flags;
    }

    /// <summary>
    /// The irqchip requests with likely-valid fields: chip ids 0–2, small GSIs, MSIs to APIC 0–2 with SVR-enabled
    /// register pages, routing tables of up to four irqchip or MSI entries. False for any other request.
    /// </summary>
    private bool FillIrqchip(uint request, byte[] b)
    {
        if (request == KvmIoctls.KVM_GET_IRQCHIP || request == KvmIoctls.KVM_SET_IRQCHIP)
            U32(b, 0, (uint)_rng.Next(4));
        else if (request == KvmIoctls.KVM_IRQ_LINE || request == KvmIoctls.KVM_IRQ_LINE_STATUS)
        {
            U32(b, 0, (uint)_rng.Next(26));
            U32(b, 4, (uint)_rng.Next(2));
        }
        else if (request == KvmIoctls.KVM_SIGNAL_MSI)
        {
            U32(b, 0, 0xfee00000u | ((uint)_rng.Next(3) << 12) | ((uint)_rng.Next(2) << 2));
            // address_hi: x2APIC destination bits 31:8 (KVM_CAP_X2APIC_API's 32-bit IDs), its low byte now and then.
            if (_rng.Next(4) == 0) U32(b, 4, ((uint)_rng.Next(4) << 8) | (_rng.Next(4) == 0 ? (uint)_rng.Next(256) : 0));
            U32(b, 8, (uint)_rng.Next(0x10000));
            U32(b, 12, (uint)_rng.Next(3));
        }
        else if (request == KvmIoctls.KVM_SET_LAPIC)
            U32(b, 0xf0, (uint)_rng.Next(0x200));
        else if (request == KvmIoctls.KVM_SET_GSI_ROUTING)
        {
            int nr = _rng.Next(5);
            U32(b, 0, (uint)nr);
            U32(b, 4, _rng.Next(8) == 0 ? 1u : 0u);
            for (int i = 0; i < nr; i++)
            {
                int at = 8 + 48 * i;
                U32(b, at, (uint)_rng.Next(8));
                U32(b, at + 4, (uint)_rng.Next(1, 4));
                U32(b, at + 8, _rng.Next(8) == 0 ? 1u : 0u);
                U32(b, at + 16, _rng.Next(2) == 0 ? (uint)_rng.Next(4) : 0xfee00000u);
                U32(b, at + 20, (uint)_rng.Next(25));
            }
        }
        else
            return false;
        return true;
    }

    /// <summary>
    /// struct kvm_msrs with 1–4 APIC MSRs (X86/Irqchip/Lapic.cs): IA32_APIC_BASE with enable / EXTD / BSP combinations,
    /// the x2APIC range 0x800–0x8ff and its edges, IA32_TSC_DEADLINE; values small, register-shaped or anything.
    /// </summary>
    private void FillApicMsrs(byte[] b)
    {
        int n = _rng.Next(1, 5);
        U32(b, 0, _rng.Next(8) == 0 ? (uint)Interesting() : (uint)n);
        for (int i = 0; i < n; i++)
        {
            int at = SizeOf<kvm_msrs>() + i * SizeOf<kvm_msr_entry>();
            uint index = _rng.Next(6) switch { 0 => 0x1b, 1 => 0x6e0, 2 => _rng.Next(2) == 0 ? 0x7ffu : 0x900u, _ => 0x800u + (uint)_rng.Next(0x100) };
            U32(b, at, index);
            U64(b, at + 8, index == 0x1b
                ? 0xfee00000UL | ((ulong)(uint)_rng.Next(8) << 8) | (_rng.Next(8) == 0 ? Interesting() & 0x2ff : 0)
                : _rng.Next(3) switch { 0 => Interesting(), 1 => (uint)_rng.Next(0x100) | ((ulong)(uint)_rng.Next(0x10) << 16), _ => (uint)_rng.Next(0x100) });
        }
    }

    /// <summary>A likely-valid struct for the request, so calls get past the first checks.</summary>
    private void Fill(uint request, byte[] b, int fd)
    {
        if (request == KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP)
        {
            FillMemoryEncrypt(b, fd);
            return;
        }
        if (FillIrqchip(request, b)) return;
        if ((request == KvmIoctls.KVM_GET_MSRS || request == KvmIoctls.KVM_SET_MSRS) && KindOf(fd) == FdKind.Vcpu && _rng.Next(2) == 0)
        {
            FillApicMsrs(b);
            return;
        }
        if (request == KvmIoctls.KVM_CREATE_DEVICE)
        {
            U32(b, 0, _rng.Next(4) switch
            {
                0 => (uint)_rng.Next(0, 20),
                1 => (uint)Interesting(),
                _ => _rng.Next(2) == 0 ? KvmDeviceConstants.KVM_DEV_TYPE_VFIO : KvmDeviceConstants.KVM_DEV_TYPE_ARM_VGIC_V3,
            });
            U32(b, 8, _rng.Next(4) switch { 0 => KvmDeviceConstants.KVM_CREATE_DEVICE_TEST, 1 => (uint)Interesting(), _ => 0 });
            return;
        }
        if (IsDeviceAttrRequest(request))
        {
            U32(b, 4, (uint)(_rng.Next(4) == 0 ? Interesting() : (ulong)_rng.Next(0, 10)));
            U64(b, 8, _rng.Next(4) switch { 0 => Interesting(), 1 => (ulong)_rng.Next(0, 8) << 32, _ => (ulong)_rng.Next(0, 8) });
            // The value: a descriptor, an address, a count (the pointer itself is made safe in Shape).
            _sandbox.Write(0, BitConverter.GetBytes(_rng.Next(3) switch { 0 => Interesting(), 1 => (ulong)PickFd(), _ => 0x0800_0000UL }));
            U64(b, 16, _rng.Next(6) == 0 ? Interesting() : (ulong)_sandbox.Start);
            return;
        }
        if (request == KvmArm64Ioctls.KVM_ARM_VCPU_INIT)
        {
            // kvm_vcpu_init: mostly the generic target with PSCI 0.2 and maybe POWER_OFF, so ONE_REG and KVM_RUN get
            // past -ENOEXEC; sometimes unknown targets and feature bits.
            U32(b, 0, _rng.Next(6) == 0 ? (uint)_rng.Next(16) : KvmArm64Constants.KVM_ARM_TARGET_GENERIC_V8);
            U32(b, 4, _rng.Next(4) switch
            {
                0 => (uint)_rng.Next(1 << 10),
                1 => 0,
                _ => (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) | (uint)_rng.Next(2) << KvmArm64Constants.KVM_ARM_VCPU_POWER_OFF,
            });
            return;
        }
        if (request == KvmArm64Ioctls.KVM_GET_REG_LIST)
        {
            // kvm_reg_list.n: mostly room for the whole list (the buffer holds Arm64RegListRoom ids), sometimes short.
            U64(b, 0, _rng.Next(4) == 0 ? (ulong)_rng.Next(0, 100) : Arm64RegListRoom);
            return;
        }
        if (request == KvmArm64Ioctls.KVM_GET_ONE_REG || request == KvmArm64Ioctls.KVM_SET_ONE_REG)
        {
            // kvm_one_reg: an id near a real one (core offsets, the modelled and unmodelled system registers, other
            // coprocessors and sizes), and addr into the sandbox (made safe in Shape whatever the mutation does).
            ulong id = _rng.Next(7) switch
            {
                0 or 1 => KvmArm64Regs.X(_rng.Next(31)),
                2 => s_arm64SysRegIds[_rng.Next(s_arm64SysRegIds.Length)],
                5 => KvmArm64SysRegs.ARM64_SYS_REG(_rng.Next(2, 4), _rng.Next(8), _rng.Next(16), _rng.Next(16), _rng.Next(8)),
                3 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, _rng.Next(16), _rng.Next(8), _rng.Next(8)),
                4 => KvmArm64Regs.KVM_REG_ARM64 | ((ulong)(uint)_rng.Next(8) << KvmArm64Regs.KVM_REG_SIZE_SHIFT) |
                     ((ulong)(uint)_rng.Next(0x20) << KvmArm64Regs.KVM_REG_ARM_COPROC_SHIFT) | (uint)_rng.Next(0x10000),
                _ => Interesting(),
            };
            U64(b, 0, id);
            U64(b, 8, (ulong)_sandbox.Start + (ulong)_rng.Next(0, 64) * 8);
            return;
        }
        if (request == KvmIoctls.KVM_CREATE_GUEST_MEMFD)
        {
            U64(b, 0, _rng.Next(8) switch
            {
                0 => Interesting(),
                1 => 1UL << _rng.Next(30, 63),
                _ => Ps * (ulong)_rng.Next(1, 17),
            });
            U64(b, 8, _rng.Next(6) switch { 0 => Interesting(), 1 => 1UL << _rng.Next(64), _ => (uint)_rng.Next(4) | ProposalFlags() });
            if (_rng.Next(8) == 0) U64(b, 16 + 8 * _rng.Next(6), Interesting());
            // guest_memfd HugeTLB (Emulation/GuestMemfd/GmemHugetlb.cs): HUGETLB with a size field (RFC v2, bits 63:58)
            // or a page_order byte (the 6.18-based branch), on 2 MiB multiples (sometimes one page short), so creations
            // reach the hstate, alignment, INIT_SHARED and pool rules.
            if (_kernel.Config.GuestMemfdHugetlb != GuestMemfdHugetlbEncoding.None && _rng.Next(2) == 0)
            {
                U64(b, 0, (2UL << 20) * (ulong)_rng.Next(1, 5) - (_rng.Next(6) == 0 ? Ps : 0));
                ulong log = _rng.Next(4) switch { 0 => 30, 1 => (ulong)_rng.Next(64), _ => 21 };
                ulong flags = GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB | (uint)_rng.Next(4);
                if (_rng.Next(2) == 0) flags |= log << GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_SHIFT;
                U64(b, 8, _rng.Next(8) == 0 ? flags & ~GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB : flags);
                U64(b, 16, _rng.Next(2) == 0 ? 0 : (ulong)_rng.Next(4) switch { 0 => 18, 1 => (ulong)_rng.Next(256), _ => 9 });
            }
        }
        else if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION || request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2)
        {
            uint slot = (uint)_rng.Next(8);
            if (_rng.Next(8) == 0) slot |= (uint)_rng.Next(3) << 16;
            if (_rng.Next(16) == 0) slot = (uint)_rng.NextInt64(0, 1L << 32);
            U32(b, 0, slot);
            uint flags = _rng.Next(8) switch
            {
                0 => 0,
                1 => (uint)_rng.Next(16),
                2 => 1u << _rng.Next(32),
                3 => KvmConstants.KVM_MEM_READONLY,
                4 or 5 => KvmConstants.KVM_MEM_LOG_DIRTY_PAGES,
                _ => KvmConstants.KVM_MEM_GUEST_MEMFD,
            };
            // KVM_MEM_USERFAULT ([PATCH v3 04/15]) on any of them: EINVAL without the series; with it, a bitmap in the
            // sandbox (random bits: guest accesses exit), NULL, the kernel half or past the sandbox (EINVAL / EFAULT).
            if (_rng.Next(_kernel.Config.KvmUserfault ? 2 : 6) == 0) flags |= KvmConstants.KVM_MEM_USERFAULT;
            U32(b, 4, flags);
            // 0xffff0000: the x86 reset vector (CS base 0xffff0000, RIP 0xfff0) so KVM_RUN executes what the slot holds.
            ulong gpaBase = _rng.Next(5) switch { 0 => 0, 1 => 1UL << 32, 2 => Interesting() & ~(Ps - 1), 3 => 0xffff0000 - 8 * Ps, _ => 0x100000 };
            U64(b, 8, gpaBase + Ps * (ulong)_rng.Next(0, 32));
            U64(b, 16, _rng.Next(8) switch { 0 => 0, 1 => Interesting(), _ => Ps * (ulong)_rng.Next(1, 9) });
            U64(b, 24, _rng.Next(3) == 0 ? 0 : (ulong)_sandbox.Start + Ps * (ulong)_rng.Next(0, 64));
            if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2)
            {
                U64(b, 32, _rng.Next(6) == 0 ? Interesting() : Ps * (ulong)_rng.Next(0, 9));
                var gmems = _open.Where(p => p.Value == FdKind.Gmem).Select(p => p.Key).ToList();
                uint gfd = gmems.Count > 0 && _rng.Next(6) != 0 ? (uint)gmems[_rng.Next(gmems.Count)] : (uint)PickFd();
                U32(b, 40, gfd);
                if (_rng.Next(10) == 0) U32(b, 44, (uint)Interesting());
                if (_rng.Next(10) == 0) U64(b, 48 + 8 * _rng.Next(14), Interesting());
                // userfault_bitmap (offset 48 under [PATCH v3 04/15]), mostly where the flag asks for it.
                if ((flags & KvmConstants.KVM_MEM_USERFAULT) != 0 ? _rng.Next(5) != 0 : _rng.Next(16) == 0) U64(b, 48, BitmapPointer());
            }
        }
        else if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES || request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2)
        {
            bool onGmem = KindOf(fd) == FdKind.Gmem;
            U64(b, 0, _rng.Next(6) == 0 ? Interesting() : (onGmem ? 0UL : 0x100000UL) + Ps * (ulong)_rng.Next(0, 16));
            U64(b, 8, _rng.Next(6) == 0 ? Interesting() : Ps * (ulong)_rng.Next(1, 9));
            U64(b, 16, _rng.Next(4) switch { 0 => 0, 1 => Interesting(), _ => KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE });
            U64(b, 24, _rng.Next(8) == 0 ? Interesting() : 0);
            if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2)
            {
                if (_rng.Next(6) == 0) U64(b, 32, Interesting()); // error_offset (an output)
                if (_rng.Next(8) == 0) U64(b, 40 + 8 * _rng.Next(11), Interesting());
            }
        }
        else if (request == KvmIoctls.KVM_PRE_FAULT_MEMORY)
        {
            U64(b, 0, _rng.Next(6) == 0 ? Interesting() : 0x100000 + Ps * (ulong)_rng.Next(0, 40));
            U64(b, 8, _rng.Next(6) == 0 ? Interesting() : Ps * (ulong)_rng.Next(0, 9));
            U64(b, 16, _rng.Next(8) == 0 ? Interesting() : 0);
            if (_rng.Next(8) == 0) U64(b, 24 + 8 * _rng.Next(5), Interesting());
        }
        else if (request == KvmIoctls.KVM_ENABLE_CAP && b.Length >= 16)
        {
            // Mostly KVM_CAP_EXIT_HYPERCALL with a valid, empty or garbage mask, or KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2
            // with its options; sometimes flags or another cap.
            bool manual = _rng.Next(3) == 0;
            uint cap = (uint)(manual ? KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 : KvmCaps.KVM_CAP_EXIT_HYPERCALL);
            // The dirty ring caps with a size in bytes: valid powers of two from a page to 1 MiB, or anything — drawn
            // only instead of the hypercall cap, so manual protect (which KVM_CLEAR_DIRTY_LOG needs, and a ring makes
            // ENXIO) keeps its share: with the ring drawn over it too, a 200 000-input run sometimes had no successful
            // clear at all (RawIoctlFuzzerTests, seen in a clean-clone CI run).
            int ring = manual ? 7 : _rng.Next(8);
            if (ring < 2) cap = (uint)(ring == 0 ? KvmCaps.KVM_CAP_DIRTY_LOG_RING : KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
            else if (ring == 2) cap = KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP;
            BinaryPrimitives.WriteUInt32LittleEndian(b, _rng.Next(4) == 0 ? (uint)Interesting() : cap);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), _rng.Next(8) == 0 ? (uint)Interesting() : 0);
            U64(b, 8, manual
                ? _rng.Next(4) switch { 0 => (ulong)_rng.Next(4), 1 => Interesting(), _ => KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | (ulong)_rng.Next(2) << 1 }
                : _rng.Next(3) switch { 0 => 0, 1 => Interesting(), _ => KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK });
            if (ring < 3) U64(b, 8, _rng.Next(3) == 0 ? Interesting() : Ps << _rng.Next(0, 10));
            // KVM_CAP_X2APIC_API now and then instead of the hypercall cap: flags 0–15 (4 only on a split irqchip, 4|8
            // EINVAL) or anything (X86/Irqchip/X2apicApi.cs).
            if (!manual && ring >= 3 && _rng.Next(6) == 0)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(b, KvmCaps.KVM_CAP_X2APIC_API);
                U64(b, 8, _rng.Next(4) == 0 ? Interesting() : (ulong)(uint)_rng.Next(16));
            }
        }
        else if (request == KvmIoctls.KVM_IOEVENTFD)
        {
            // struct kvm_ioeventfd: datamatch@0 addr@8 len@16 fd@20 flags@24 — lengths and flags around the valid ones,
            // addresses that repeat (collisions, deassigns) or wrap.
            U64(b, 0, _rng.Next(3) == 0 ? Interesting() : (ulong)_rng.Next(4));
            U64(b, 8, _rng.Next(6) switch { 0 => Interesting(), 1 => ulong.MaxValue - (ulong)_rng.Next(8), 2 => (ulong)_rng.Next(0x10000), _ => 0xd0000000 + 8 * (ulong)_rng.Next(4) });
            U32(b, 16, _rng.Next(8) == 0 ? (uint)Interesting() : (uint)new[] { 0, 1, 2, 3, 4, 8 }[_rng.Next(6)]);
            U32(b, 20, (uint)PickEventFd());
            U32(b, 24, _rng.Next(8) == 0 ? (uint)Interesting() : (uint)_rng.Next(32));
        }
        else if (request == KvmIoctls.KVM_IRQFD)
        {
            // struct kvm_irqfd: fd@0 gsi@4 flags@8 resamplefd@12.
            U32(b, 0, (uint)PickEventFd());
            U32(b, 4, (uint)_rng.Next(32));
            U32(b, 8, _rng.Next(6) == 0 ? (uint)Interesting() : (uint)_rng.Next(4));
            U32(b, 12, (uint)PickEventFd());
        }
        else if (IsDeviceAttrRequest(request) && b.Length >= 24)
        {
            // GET_DEVICE_ATTR writes through kvm_device_attr.addr into this process.
            U64(b, 16, SafeUserPointer(GetU64(b, 16)));
        }
        else if (request == KvmIoctls.KVM_GET_DIRTY_LOG || request == KvmIoctls.KVM_CLEAR_DIRTY_LOG)
        {
            // kvm_dirty_log { slot, padding1, dirty_bitmap } / kvm_clear_dirty_log { slot, num_pages, first_page, dirty_bitmap }.
            bool clear = request == KvmIoctls.KVM_CLEAR_DIRTY_LOG;
            var logging = _loggingSlots.Where(l => l.Vm == fd).ToList();
            uint slot = logging.Count > 0 && _rng.Next(3) != 0 ? logging[_rng.Next(logging.Count)].Slot : (uint)_rng.Next(8);
            if (_rng.Next(8) == 0) slot |= (uint)_rng.Next(4) << 16;
            if (_rng.Next(16) == 0) slot = (uint)Interesting();
            U32(b, 0, slot);
            if (clear)
            {
                U32(b, 4, _rng.Next(6) switch { 0 => (uint)Interesting(), 1 => 0, 2 => 64, _ => (uint)_rng.Next(1, 9) });
                U64(b, 8, _rng.Next(6) switch { 0 => Interesting(), 1 => 64 * (ulong)_rng.Next(1, 4), 2 => (ulong)_rng.Next(1, 64), _ => 0 });
                // The mask a successful clear reads: the sandbox's first page, set to random bits.
                if (_rng.Next(4) == 0)
                {
                    byte[] mask = new byte[64];
                    _rng.NextBytes(mask);
                    _sandbox.Write(0, mask);
                }
            }
            else if (_rng.Next(8) == 0)
            {
                U32(b, 4, (uint)Interesting()); // padding1: not checked
            }
            U64(b, clear ? 16 : 8, BitmapPointer());
        }
        else if (request == KvmIoctls.KVM_SET_REGS || request == KvmIoctls.KVM_SET_SREGS)
        {
            // Start from the vCPU's current state (when the fd is a vCPU) and change a few fields.
            uint get = request == KvmIoctls.KVM_SET_REGS ? KvmIoctls.KVM_GET_REGS : KvmIoctls.KVM_GET_SREGS;
            int size = NaturalSize(request);
            byte[] current = new byte[size];
            if (_kernel.Ioctl(Handle(fd), get, current) == 0) current.CopyTo(b, 0);
            int fields = _rng.Next(1, 4);
            for (int i = 0; i < fields; i++)
            {
                int at = _rng.Next(size / 8) * 8;
                U64(b, at, _rng.Next(3) == 0 ? Interesting() : GetU64(b, at) ^ (1UL << _rng.Next(64)));
            }
        }
        else if (IsCpuidRequest(request))
        {
            // kvm_cpuid2: random entries, nent mostly around what the buffer holds (0 … 9, or anything).
            _rng.NextBytes(b);
            U32(b, 0, _rng.Next(4) == 0 ? (uint)Interesting() : (uint)_rng.Next(10));
        }
        else
        {
            _rng.NextBytes(b);
        }
    }

    /// <summary>The launch sub-command ids: SEV (0–22), SNP (100–102) and TDX (0–5), and a few unknown ones.</summary>
    private static readonly uint[] s_launchIds = [0, 1, 2, 3, 4, 5, 6, 7, 16, 21, 22, 23, 99, 100, 101, 102, 103];

    /// <summary>
    /// KVM_MEMORY_ENCRYPT_OP: a kvm_sev_cmd or kvm_tdx_cmd (same 24 bytes) whose data points at a sandbox page holding a
    /// sub-command struct — zeroed, random, or with plausible sizes (cpuid.nent, SNP page types, page-aligned lengths,
    /// TDX's GPAW entry) — and, for SEV, a sev_fd that is often the session's /dev/sev.
    /// </summary>
    private void FillMemoryEncrypt(byte[] b, int fd)
    {
        uint id = s_launchIds[_rng.Next(s_launchIds.Length)];
        U32(b, 0, id);
        U32(b, 4, _rng.Next(6) == 0 ? (uint)_rng.Next(4) : 0);
        ulong page = (ulong)_rng.Next(1, (int)UserSandbox.WritablePages);
        U64(b, 8, _rng.Next(8) switch { 0 => Interesting(), 1 => 0, _ => (ulong)_sandbox.Start + page * Ps });
        var param = new byte[Ps];
        switch (_rng.Next(4))
        {
            case 0: _rng.NextBytes(param); break;
            case 1: break; // all zero: the defaults (INIT2, policy 0, nent 0)
            default:
                // Plausible fields at the offsets the sub-commands share: lengths, counts, policies, types.
                U64(param, 0, _rng.Next(3) == 0 ? Interesting() : (ulong)_rng.Next(0x100, 0x110)); // gfn / uaddr / attributes
                U64(param, 8, _rng.Next(3) == 0 ? (ulong)_sandbox.Start + Ps * (ulong)_rng.Next(0, 16) : Ps * (ulong)_rng.Next(0, 3));
                U64(param, 16, Ps * (ulong)_rng.Next(0, 4)); // len / nr_pages
                param[24] = (byte)_rng.Next(8); // SNP page type
                U64(param, 0, _rng.Next(4) == 0 ? 1UL << 17 : GetU64(param, 0)); // SNP policy's must-be-one bit
                // kvm_tdx_init_vm.cpuid / kvm_tdx_capabilities.cpuid headers, with a GPAW entry after INIT_VM's.
                U32(param, 256, (uint)_rng.Next(0, 3));
                U32(param, 264, 0x8000_0008);
                U32(param, 264 + 12, (uint)(_rng.Next(2) == 0 ? 48 : 52) << 16);
                U32(param, 2048, (uint)_rng.Next(0, 8));
                break;
        }
        _sandbox.Write(page * Ps, param);
        bool sev = KindOf(fd) == FdKind.Vm && _rng.Next(2) == 0;
        if (sev)
        {
            U32(b, 16, (uint)_rng.Next(3)); // error: ignored on input
            int sevFd = _open.Where(o => o.Value == FdKind.Other).Select(o => o.Key).DefaultIfEmpty(-1).First();
            U32(b, 20, _rng.Next(4) != 0 && sevFd >= 0 ? (uint)sevFd : (uint)PickFd());
        }
        else
        {
            U64(b, 16, _rng.Next(8) == 0 ? (ulong)_rng.Next(1, 4) : 0); // hw_error must be 0
        }
    }

    private static bool IsCpuidRequest(uint request) =>
        request == KvmIoctls.KVM_GET_SUPPORTED_CPUID || request == KvmIoctls.KVM_GET_EMULATED_CPUID ||
        request == KvmIoctls.KVM_SET_CPUID2 || request == KvmIoctls.KVM_GET_CPUID2;

    /// <summary>Random damage: flipped bits, a random word, a run of random bytes.</summary>
    private void Mutate(byte[] b, int natural)
    {
        int span = Math.Max(1, Math.Min(natural, b.Length));
        int n = _rng.Next(1, 4);
        for (int i = 0; i < n; i++)
        {
            switch (_rng.Next(3))
            {
                case 0:
                    b[_rng.Next(span)] ^= (byte)(1 << _rng.Next(8));
                    break;
                case 1:
                    U64(b, _rng.Next(Math.Max(1, span / 8)) * 8, Interesting());
                    break;
                default:
                    int at = _rng.Next(span);
                    _rng.NextBytes(b.AsSpan(at, Math.Min(b.Length - at, _rng.Next(1, 16))));
                    break;
            }
        }
    }

    /// <summary>
    /// Safety shaping after mutation (see <see cref="RawIoctlFuzzer"/> remarks): memory slots point into the
    /// sandbox; pre-fault ranges stay small.
    /// </summary>
    private void Shape(uint request, byte[] b)
    {
        if ((request == KvmIoctls.KVM_SET_USER_MEMORY_REGION || request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2) && b.Length >= 32)
        {
            ulong size = GetU64(b, 16);
            ulong uaddr = GetU64(b, 24);
            bool aligned = (uaddr & (Ps - 1)) == 0 && (size & (Ps - 1)) == 0;
            if (aligned && size <= UserSandbox.Size && uaddr + size <= 1UL << 48)
            {
                // Would pass access_ok: place it inside the sandbox.
                ulong room = UserSandbox.Size - size;
                ulong within = room == 0 ? 0 : (uaddr % room) & ~(Ps - 1);
                U64(b, 24, (ulong)_sandbox.Start + within);
            }
            else if (aligned && size > UserSandbox.Size && uaddr + size >= uaddr && uaddr + size <= 1UL << 48)
            {
                // Too large for the sandbox but acceptable to access_ok: keep the size, make the address fail access_ok.
                U64(b, 24, (1UL << 48) - Ps);
            }
        }
        else if (request == KvmIoctls.KVM_GET_DIRTY_LOG || request == KvmIoctls.KVM_CLEAR_DIRTY_LOG)
        {
            // The kernel copies the bitmap to (GET) or from (CLEAR) this pointer with process_vm_writev/readv, i.e. into
            // this process: whatever the mutation made of it, it must not reach live memory.
            int at = request == KvmIoctls.KVM_CLEAR_DIRTY_LOG ? 16 : 8;
            if (at + 8 <= b.Length) U64(b, at, SafeUserPointer(GetU64(b, at)));
        }
        else if ((request == KvmArm64Ioctls.KVM_GET_ONE_REG || request == KvmArm64Ioctls.KVM_SET_ONE_REG) && b.Length >= 16)
        {
            // KVM_GET_ONE_REG writes KVM_REG_SIZE(id) bytes (up to 16 here; larger sizes are refused) to addr in this
            // process: keep it in the sandbox.
            U64(b, 8, SafeUserPointer(GetU64(b, 8)));
        }
        else if (request == KvmIoctls.KVM_PRE_FAULT_MEMORY && b.Length >= 16)
        {
            ulong size = GetU64(b, 8);
            ulong cap = 64 * Ps;
            if (size > cap) U64(b, 8, (size % cap) | (size & (Ps - 1)));
        }
    }

    /// <summary>
    /// Counts KVM_SET_USER_MEMORY_REGION2 calls that carry KVM_MEM_USERFAULT ([PATCH v3 04/15]) under their own outcome key,
    /// so a test can see the fuzzer gets such slots accepted (and refused) at all.
    /// </summary>
    private void CountUserfaultSlot(uint request, byte[] buffer, long rc)
    {
        if (Outcomes is null || request != KvmIoctls.KVM_SET_USER_MEMORY_REGION2 || buffer.Length < 8) return;
        if ((BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4)) & KvmConstants.KVM_MEM_USERFAULT) == 0) return;
        var (ok, failed) = Outcomes.GetValueOrDefault(UserfaultSlotOutcome);
        Outcomes[UserfaultSlotOutcome] = rc >= 0 ? (ok + 1, failed) : (ok, failed + 1);
    }

    /// <summary>
    /// Counts KVM_CREATE_GUEST_MEMFD calls with GUEST_MEMFD_FLAG_HUGETLB on a kernel with a HugeTLB proposal under their
    /// own outcome key, so a test can see the fuzzer gets such files created (and refused) at all.
    /// </summary>
    private void CountHugetlbGmem(uint request, byte[] buffer, long rc)
    {
        if (Outcomes is null || request != KvmIoctls.KVM_CREATE_GUEST_MEMFD || buffer.Length < 16) return;
        if (_kernel.Config.GuestMemfdHugetlb == GuestMemfdHugetlbEncoding.None) return;
        if ((BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(8)) & GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB) == 0) return;
        var (ok, failed) = Outcomes.GetValueOrDefault(HugetlbGmemOutcome);
        Outcomes[HugetlbGmemOutcome] = rc >= 0 ? (ok + 1, failed) : (ok, failed + 1);
    }

    /// <summary>The outcome key of KVM_CREATE_GUEST_MEMFD calls with GUEST_MEMFD_FLAG_HUGETLB (HugeTLB proposal kernels).</summary>
    public const string HugetlbGmemOutcome = "KVM_CREATE_GUEST_MEMFD with GUEST_MEMFD_FLAG_HUGETLB";

    /// <summary>The outcome key of KVM_SET_USER_MEMORY_REGION2 calls with KVM_MEM_USERFAULT.</summary>
    public const string UserfaultSlotOutcome = "KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_USERFAULT";

    /// <summary>Notes a memory slot that now logs dirty pages (or forgets one deleted or no longer logging).</summary>
    private void RememberLoggingSlot(int fd, uint request, byte[] buffer)
    {
        if ((request != KvmIoctls.KVM_SET_USER_MEMORY_REGION && request != KvmIoctls.KVM_SET_USER_MEMORY_REGION2) || buffer.Length < 32) return;
        uint slot = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
        bool logs = (BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4)) & KvmConstants.KVM_MEM_LOG_DIRTY_PAGES) != 0 && GetU64(buffer, 16) != 0;
        _loggingSlots.Remove((fd, slot));
        if (logs) _loggingSlots.Add((fd, slot));
    }

    /// <summary>
    /// A bitmap pointer: mostly into the sandbox's writable pages, sometimes NULL, the kernel half, the sandbox's
    /// PROT_NONE part or just before the end of its writable pages (a copy that faults part way).
    /// </summary>
    private ulong BitmapPointer()
    {
        ulong start = (ulong)_sandbox.Start, writable = UserSandbox.WritablePages * Ps;
        return _rng.Next(10) switch
        {
            0 => 0,
            1 => 0xFFFF_8000_0000_0000 + Ps * (ulong)_rng.Next(0, 16),
            2 => start + writable + Ps * (ulong)_rng.Next(0, 64),
            3 => start + writable - (ulong)_rng.Next(1, 16),
            4 => Interesting(),
            _ => start + (ulong)_rng.NextInt64(0, (long)(writable - 1024)) / 8 * 8 + (_rng.Next(8) == 0 ? (ulong)_rng.Next(1, 8) : 0),
        };
    }

    /// <summary>
    /// Keeps a user pointer the emulator will write through (or read from) away from this process's live memory:
    /// inside the sandbox, NULL or with bit 63 set (access_ok fails) it stays; anything else is moved into the sandbox
    /// (nearly always its PROT_NONE part: EFAULT). A copy runs forward from the pointer and stops at the first page it
    /// cannot write, so even a large bitmap never gets past the sandbox's PROT_NONE pages.
    /// </summary>
    private ulong SafeUserPointer(ulong pointer)
    {
        ulong start = (ulong)_sandbox.Start;
        if (pointer - start < UserSandbox.Size || pointer == 0 || pointer >= 1UL << 63) return pointer;
        return start + pointer % UserSandbox.Size;
    }

    // ------------------------------------------------------------------ file operations

    private string Fallocate()
    {
        int fd = PickFd(FdKind.Gmem);
        int mode = _rng.Next(8) switch
        {
            0 => _rng.Next(0x100),
            1 => 0,
            2 => LinuxConstants.FALLOC_FL_PUNCH_HOLE,
            < 5 => LinuxConstants.FALLOC_FL_KEEP_SIZE,
            _ => LinuxConstants.FALLOC_FL_KEEP_SIZE | LinuxConstants.FALLOC_FL_PUNCH_HOLE,
        };
        long offset = _rng.Next(5) == 0 ? (long)Interesting() : (long)(Ps * (ulong)_rng.Next(0, 20)) + (_rng.Next(10) == 0 ? 1 : 0);
        long length = _rng.Next(5) == 0 ? (long)Interesting() : (long)(Ps * (ulong)_rng.Next(0, 12)) + (_rng.Next(10) == 0 ? 7 : 0);
        // Bound real allocations: an allocating fallocate on a huge file could take gigabytes of this machine.
        if ((mode & LinuxConstants.FALLOC_FL_PUNCH_HOLE) == 0 && length > (long)MaxAllocation)
            length = (long)((ulong)length % MaxAllocation) | (length & (PageSize - 1));
        string what = string.Create(CultureInfo.InvariantCulture, $"fallocate({fd}, 0x{mode:X}, 0x{offset:X}, 0x{length:X})");
        Begin(what);
        return Record(what, _kernel.Fallocate(Handle(fd), mode, offset, length));
    }

    private string FileIo()
    {
        int fd = PickFd();
        // Whole pages at small page offsets, sometimes: what a guest_memfd write (GmemWrite) accepts, when the kernel has it.
        bool pages = _kernel.Config.GuestMemfdWrite && _rng.Next(3) == 0;
        byte[] buf = pages ? new byte[PageSize * _rng.Next(1, 4)] : new byte[_rng.Next(4) == 0 ? 0 : _rng.Next(1, 128)];
        long offset = pages ? (long)(Ps * (ulong)_rng.Next(0, 20)) : (long)Interesting();
        int which = _rng.Next(7);
        string[] names = ["read", "write", "pread", "pwrite", "lseek", "fstat", "ftruncate"];
        // An eventfd's read of 0 or write past 2^64 - 2 would wait for another thread: FIONBIO first (a fuzzed FIONBIO
        // may have cleared O_NONBLOCK), and mostly the 8 bytes eventfd_read/eventfd_write want.
        if (KindOf(fd) == FdKind.EventFd && which <= 1)
        {
            _ = _kernel.Ioctl(Handle(fd), 0x5421 /* FIONBIO */, BitConverter.GetBytes(1));
            if (_rng.Next(3) != 0) buf = BitConverter.GetBytes(_rng.Next(3) == 0 ? Interesting() : (ulong)_rng.Next(3));
        }
        string what = string.Create(CultureInfo.InvariantCulture, $"{names[which]}({fd}, len={buf.Length}, off=0x{offset:X})");
        Begin(what);
        long rc = which switch
        {
            0 => _kernel.Read(Handle(fd), buf),
            1 => _kernel.Write(Handle(fd), buf),
            2 => _kernel.Pread(Handle(fd), buf, offset),
            3 => _kernel.Pwrite(Handle(fd), buf, offset),
            4 => _kernel.Lseek(Handle(fd), offset, _rng.Next(-1, 6)),
            5 => _kernel.Fstat(Handle(fd), out _),
            _ => _kernel.Ftruncate(Handle(fd), offset),
        };
        return Record(what, rc);
    }

    private string Mmap()
    {
        int fd = PickFd(_rng.Next(4) == 0 ? FdKind.Vcpu : FdKind.Gmem);
        bool anonymous = _rng.Next(20) == 0;
        ulong length = _rng.Next(8) switch
        {
            0 => Interesting(),
            1 => Ps * (ulong)_rng.Next(1, 8) + (ulong)_rng.Next(1, PageSize),
            _ => Ps * (ulong)_rng.Next(1, 33),
        };
        long offset = _rng.Next(6) switch
        {
            0 => (long)Interesting(),
            1 => _rng.Next(1, PageSize),
            < 4 => (long)(Ps * (ulong)_rng.Next(0, 8)),
            // Around the dirty ring's pages (KVM_DIRTY_LOG_PAGE_OFFSET): kvm_vcpu_mmap's MAP_SHARED-only rule.
            4 when _rng.Next(2) == 0 => (long)(Ps * (ulong)(KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET - 1 + _rng.Next(0, 4))),
            _ => 0,
        };
        int prot = _rng.Next(6) == 0 ? _rng.Next(16) : LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE;
        int flags = _rng.Next(6) switch
        {
            0 => _rng.Next(0x200000),
            1 => LinuxConstants.MAP_PRIVATE,
            2 => 0x03, // MAP_SHARED_VALIDATE
            _ => LinuxConstants.MAP_SHARED,
        };
        if (anonymous) flags |= LinuxConstants.MAP_ANONYMOUS;
        // Anonymous memory is the host's, not the emulator's: keep it plain (MAP_HUGETLB would need huge-page munmaps).
        if ((flags & LinuxConstants.MAP_ANONYMOUS) != 0) flags &= ~(0x40000 | (0x3f << 26));
        // Never MAP_FIXED (it would replace memory of this process), MAP_POPULATE or MAP_LOCKED (real allocations).
        flags &= ~(LinuxConstants.MAP_FIXED | LinuxConstants.MAP_POPULATE | 0x2000 | 0x100000 /* MAP_FIXED_NOREPLACE */);
        if ((flags & LinuxConstants.MAP_ANONYMOUS) != 0 && length > (64UL << 20)) length = Ps;
        string what = string.Create(CultureInfo.InvariantCulture, $"mmap(len=0x{length:X}, prot=0x{prot:X}, flags=0x{flags:X}, {fd}, 0x{offset:X})");
        Begin(what);
        long rc = _kernel.Mmap(0, length, prot, flags, fd < 0 && _rng.Next(2) == 0 ? null : Handle(fd), offset, out nint mapped);
        if (rc == 0)
        {
            ulong aligned = (length + Ps - 1) & ~(Ps - 1);
            _mappings.Add(new Mapping(mapped, aligned, KindOf(fd), offset, (flags & LinuxConstants.MAP_ANONYMOUS) != 0, prot));
        }
        return Record(what, rc);
    }

    private string Munmap()
    {
        if (_mappings.Count == 0 || _rng.Next(10) == 0)
        {
            // Rejected before the host sees it: unaligned address or zero length.
            nint bad = _rng.Next(2) == 0 ? (nint)(0x1000_0000 + _rng.Next(1, PageSize)) : 0;
            ulong len = bad == 0 ? 0 : (ulong)_rng.Next(0, 3) * Ps;
            Begin($"munmap(0x{bad:X}, 0x{len:X})");
            if (bad == 0)
            {
                // munmap(NULL, 0): length 0 → EINVAL.
                return Record("munmap(0, 0)", _kernel.Munmap(0, 0));
            }
            return Record($"munmap(0x{bad:X}, 0x{len:X})", _kernel.Munmap(bad, len));
        }
        int index = _rng.Next(_mappings.Count);
        var m = _mappings[index];
        ulong pages = m.Length / Ps;
        ulong first = _rng.Next(2) == 0 ? 0 : (ulong)_rng.NextInt64(0, (long)pages);
        ulong count = _rng.Next(2) == 0 ? pages - first : (ulong)_rng.NextInt64(1, (long)(pages - first) + 1);
        nint start = m.Start + (nint)(first * Ps);
        ulong length = count * Ps - (_rng.Next(4) == 0 ? (ulong)_rng.Next(0, PageSize) : 0);
        string what = string.Create(CultureInfo.InvariantCulture, $"munmap(map{index}+0x{first * Ps:X}, 0x{length:X})");
        Begin(what);
        long rc = _kernel.Munmap(start, length);
        if (rc == 0)
        {
            // Keep only what is still ours (never unmap a range twice: the runtime may reuse it).
            _mappings.RemoveAt(index);
            if (first > 0) _mappings.Add(m with { Length = first * Ps });
            ulong endPage = first + count;
            if (endPage < pages) _mappings.Add(m with { Start = m.Start + (nint)(endPage * Ps), Length = (pages - endPage) * Ps, Offset = m.Offset + (long)(endPage * Ps) });
        }
        return Record(what, rc);
    }

    private string Madvise()
    {
        // Never MADV_HWPOISON/SOFT_OFFLINE (100/101: poisoned pages kill the process), MADV_GUARD_INSTALL (102),
        // MADV_REMOVE or MADV_POPULATE_* (real allocations behind the emulator).
        int[] advice = [0, 1, 2, 4, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 24, 25, 26, 60, 99, 150, 200, -1];
        int a = advice[_rng.Next(advice.Length)];
        if (_mappings.Count == 0 || _rng.Next(10) == 0)
        {
            nint unaligned = (nint)(0x1000_0000 + _rng.Next(1, PageSize));
            string bad = $"madvise(0x{unaligned:X}, 0x1000, {a})";
            Begin(bad);
            return Record(bad, _kernel.Madvise(unaligned, Ps, a));
        }
        int index = _rng.Next(_mappings.Count);
        var m = _mappings[index];
        ulong pages = m.Length / Ps;
        ulong first = (ulong)_rng.NextInt64(0, (long)pages);
        ulong length = (ulong)_rng.NextInt64(1, (long)(pages - first) + 1) * Ps;
        string what = string.Create(CultureInfo.InvariantCulture, $"madvise(map{index}+0x{first * Ps:X}, 0x{length:X}, {a})");
        Begin(what);
        return Record(what, _kernel.Madvise(m.Start + (nint)(first * Ps), length, a));
    }

    /// <summary>A host access through one of this session's mappings, only where the emulator's verdict allows it.</summary>
    private string Touch()
    {
        var candidates = _mappings.Where(m => !m.Anonymous && (m.Kind == FdKind.Gmem || (m.Kind == FdKind.Vcpu && m.Offset == 0))).ToList();
        if (candidates.Count == 0) return Record("touch (no mapping)", 0);
        var m = candidates[_rng.Next(candidates.Count)];
        if (m.Kind == FdKind.Vcpu)
        {
            // kvm_run.immediate_exit of a vCPU's run page (inside its first page, always backed).
            nint at = m.Start + KvmRunLayout.immediate_exit;
            byte v = (byte)_rng.Next(2);
            Begin($"run page immediate_exit = {v}");
            if ((m.Prot & LinuxConstants.PROT_WRITE) != 0 && _kernel.CheckHostAccess(at, 1) is null) Marshal.WriteByte(at, v);
            return Record($"run page immediate_exit = {v}", 0);
        }
        ulong offset = (ulong)_rng.NextInt64(0, (long)m.Length);
        // A run of bytes inside one page (random guest code or data when written).
        int length = (int)Math.Min((ulong)_rng.Next(1, 65), Ps - offset % Ps);
        nint address = m.Start + (nint)offset;
        Begin($"touch 0x{address:X}");
        var verdict = _kernel.CheckHostAccess(address, (ulong)length);
        string what = $"touch map+0x{offset:X} len {length} ({verdict?.ToString() ?? "allowed"})";
        if (verdict is null)
        {
            if (_rng.Next(2) == 0 && (m.Prot & LinuxConstants.PROT_WRITE) != 0)
            {
                byte[] bytes = new byte[length];
                _rng.NextBytes(bytes);
                Marshal.Copy(bytes, 0, address, length);
            }
            else if ((m.Prot & LinuxConstants.PROT_READ) != 0)
            {
                _ = Marshal.ReadByte(address + length - 1);
            }
        }
        return Record(what, 0);
    }

    /// <summary>The emulator's public test hooks with random arguments.</summary>
    /// <summary>eventfd2 with mostly valid flags; the session keeps its eventfds non-blocking before it reads or writes them.</summary>
    private string EventFd()
    {
        uint count = _rng.Next(4) == 0 ? (uint)Interesting() : (uint)_rng.Next(3);
        int flags = _rng.Next(8) == 0 ? (int)Interesting() : _rng.Next(2) * LinuxConstants.EFD_SEMAPHORE | _rng.Next(2) * LinuxConstants.EFD_NONBLOCK;
        string what = string.Create(CultureInfo.InvariantCulture, $"eventfd2({count}, 0x{flags:X})");
        Begin(what);
        long rc = _kernel.EventFd(count, flags, out var fd);
        if (rc >= 0)
        {
            fd!.SetHandleAsInvalid(); // the session owns the number; Teardown closes everything
            Opened((int)rc, FdKind.EventFd);
        }
        return Record(what, rc);
    }

    private int PickEventFd()
    {
        var eventFds = _open.Where(p => p.Value == FdKind.EventFd).Select(p => p.Key).ToList();
        return eventFds.Count > 0 && _rng.Next(5) != 0 ? eventFds[_rng.Next(eventFds.Count)] : PickFd();
    }

    private string Hooks()
    {
        switch (_rng.Next(4))
        {
            case 0:
            {
                int fd = PickFd(FdKind.Gmem);
                ulong offset = _rng.Next(4) == 0 ? Interesting() : Ps * (ulong)_rng.Next(0, 16);
                string what = string.Create(CultureInfo.InvariantCulture, $"PinGuestMemfdPage({fd}, 0x{offset:X})");
                Begin(what);
                long rc = _kernel.PinGuestMemfdPage(Handle(fd), offset, out var pin);
                if (pin is not null) _pins.Add(pin);
                return Record(what, rc);
            }
            case 1:
            {
                if (_pins.Count == 0) return Record("unpin (none)", 0);
                int i = _rng.Next(_pins.Count);
                Begin("unpin");
                _pins[i].Dispose();
                if (_rng.Next(4) != 0) _pins.RemoveAt(i); // else: a second Dispose later must be harmless
                return Record("unpin", 0);
            }
            case 2:
            {
                nint address = _mappings.Count > 0 && _rng.Next(4) != 0 ? _mappings[_rng.Next(_mappings.Count)].Start : (nint)(long)Interesting();
                ulong length = _rng.Next(4) == 0 ? Interesting() : Ps * (ulong)_rng.Next(0, 4);
                Begin($"CheckHostAccess(0x{address:X}, 0x{length:X})");
                // Bound the walk: the verdict is computed page by page.
                if (length > 1UL << 30) length = (ulong)_rng.Next(0, 1 << 20);
                var v = _kernel.CheckHostAccess(address, length);
                return Record($"CheckHostAccess(0x{address:X}, 0x{length:X}) -> {v?.ToString() ?? "ok"}", 0);
            }
            default:
            {
                nint address = _mappings.Count > 0 && _rng.Next(4) != 0 ? _mappings[_rng.Next(_mappings.Count)].Start : (nint)(long)Interesting();
                Begin($"HostMappingZapCount(0x{address:X})");
                return Record($"HostMappingZapCount(0x{address:X})", _kernel.HostMappingZapCount(address));
            }
        }
    }
}
