// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Generates a random but reproducible sequence of calls, mostly valid with a steady share of invalid ones
/// (unsupported flags, misaligned ranges, closed handles, overlaps). It follows which handles exist from the
/// reference kernel's answers so later calls aim at live objects. Object counts are capped to keep the real
/// kernel's resource use small.
/// </summary>
public sealed partial class OpGenerator
{
    private const int MaxSystems = 2, MaxVms = 3, MaxGmems = 8, MaxMappings = 8;
    /// <summary>Every capability the Abi names, plus numbers around the proposals' and one far beyond.</summary>
    private static readonly int[] s_caps =
    [
        .. typeof(KvmCaps).GetFields().Where(f => f.IsLiteral && f.FieldType == typeof(int)).Select(f => (int)f.GetRawConstantValue()!).Order(),
        245, 246, 248, 249, 1000,
    ];

    private readonly Random _rng;
    private readonly List<int> _systems = [], _vms = [], _gmems = [], _mappings = [], _closed = [];
    private readonly Dictionary<int, ulong> _gmemSize = [];
    private readonly Dictionary<int, ulong> _mappingLength = [];
    private readonly Dictionary<int, ulong> _gmemFlags = [];
    private readonly Dictionary<int, int> _mappingGmem = [];
    private readonly bool _includeReported;
    private int _nextId;

    /// <param name="seed">Same seed, same calls.</param>
    /// <param name="includeReported">Also draw values on which a divergence is already reported (<see cref="ReportedDivergences"/>).</param>
    public OpGenerator(int seed, bool includeReported = false)
    {
        _rng = new Random(seed);
        _x86 = new Random(unchecked(seed * 31 + 0x86));
        _vcpuState = new Random(unchecked(seed * 37 + 0x57A7E));
        _debug = new Random(unchecked(seed * 41 + 0xDB6));
        _clock = new Random(unchecked(seed * 43 + 0xC10C));
        _attr = new Random(unchecked(seed * 47 + 0xA77));
        _numa = new Random(unchecked(seed * 53 + 0x4E0A));
        _irq = new Random(unchecked(seed * 59 + 0x1A7));
        _ioev = new Random(unchecked(seed * 61 + 0x10EF));
        _dev = new Random(unchecked(seed * 67 + 0xDE7));
        _irqc = new Random(unchecked(seed * 71 + 0x1C));
        _ring = new Random(unchecked(seed * 73 + 0xD127));
        _eoi = new Random(unchecked(seed * 79 + 0xE01));
        _irqcGuest = new Random(unchecked(seed * 83 + 0x8259));
        _ivtLdt = new Random(unchecked(seed * 89 + 0x1D7));
        _sigmask = new Random(unchecked(seed * 97 + 0x516));
        _msrFilter = new Random(unchecked(seed * 101 + 0x5F1));
        _coalesced = new Random(unchecked(seed * 103 + 0xC0A));
        _kvmclock = new Random(unchecked(seed * 107 + 0x6C0C));
        _includeReported = includeReported;
    }

    private static ulong Ps => (ulong)Environment.SystemPageSize;

    /// <summary>The next call to make.</summary>
    public FuzzOp Next()
    {
        if (_systems.Count == 0) return new FuzzOp(OpKind.OpenKvm, Result: _nextId++);
        // Build up objects first: a VM and a few guest_memfds make the later calls meaningful.
        if (_vms.Count == 0 && _rng.Next(3) != 0) return new FuzzOp(OpKind.CreateVm, Target: Pick(_systems), A: VmType(), Result: _nextId++);
        // A kernel without guest_memfd (learnt from its answers) gets calls it can get past (OpGenerator.WithoutGuestMemfd.cs).
        if (_noGuestMemfd) return NextWithoutGuestMemfd();
        if (_vms.Count > 0 && _gmems.Count < 2 && _rng.Next(2) == 0) return CreateGmem();
        // A quarter of the calls exercise what was added after the first fuzzer (OpGenerator.Vcpus.cs).
        if (_rng.Next(4) == 0 && NextNewer() is FuzzOp newer) return newer;
        int roll = _rng.Next(100);
        return roll switch
        {
            < 2 when _systems.Count < MaxSystems => new FuzzOp(OpKind.OpenKvm, Result: _nextId++),
            < 6 when _vms.Count < MaxVms => new FuzzOp(OpKind.CreateVm, Target: Pick(_systems), A: VmType(), Result: _nextId++),
            < 11 => new FuzzOp(OpKind.CheckExtension, Target: PickAnyFd(), A: (ulong)s_caps[_rng.Next(s_caps.Length)]),
            < 21 when _vms.Count > 0 && _gmems.Count < MaxGmems => CreateGmem(),
            < 33 when _gmems.Count > 0 => Fallocate(),
            < 46 when _vms.Count > 0 => SetRegion2(),
            < 55 when _gmems.Count > 0 && _mappings.Count < MaxMappings => Mmap(),
            < 78 when _mappings.Count > 0 => Touch(),
            < 80 when _mappings.Count > 0 => new FuzzOp(OpKind.Munmap, Target: Pick(_mappings)),
            < 83 when _vms.Count + _gmems.Count > 0 => new FuzzOp(OpKind.Close, Target: PickClosable()),
            < 88 => new FuzzOp(OpKind.Fstat, Target: PickAnyFd()),
            < 92 when _gmems.Count > 0 => new FuzzOp(OpKind.FileIo, Target: Pick(_gmems), A: Size(16), E: _rng.Next(6)),
            < 96 when _vms.Count > 0 => new FuzzOp(OpKind.SetAttributes, Target: Pick(_vms), A: Gpa(), B: Size(4), C: Attr(), D: Flags()),
            < 100 when _gmems.Count > 0 => new FuzzOp(OpKind.SetAttributes2, Target: Pick(_gmems), A: Size(4), B: Size(4), C: Attr(), D: Flags()),
            _ => new FuzzOp(OpKind.CheckExtension, Target: PickAnyFd(), A: (ulong)_rng.Next(300)),
        };
    }

    /// <summary>Records the reference kernel's answer so later calls know which handles exist.</summary>
    public void Observe(FuzzOp op, string outcome)
    {
        bool created = outcome == "ok fd" || (op.Kind == OpKind.Mmap && outcome == "ok");
        switch (op.Kind)
        {
            case OpKind.OpenKvm when created: _systems.Add(op.Result); break;
            case OpKind.CreateVm when created: _vms.Add(op.Result); break;
            case OpKind.CreateGmem when created: _gmems.Add(op.Result); _gmemSize[op.Result] = op.A; _gmemFlags[op.Result] = op.B; break;
            case OpKind.CreateGmem when outcome == "ENOTTY": _noGuestMemfd = true; break;
            case OpKind.SetRegion2 when _noGuestMemfd:
                ObservePlainRegion(op, outcome);
                ObserveNewer(op, created);
                break;
            case OpKind.Mmap when created: _mappings.Add(op.Result); _mappingLength[op.Result] = op.A; _mappingGmem[op.Result] = op.Target; break;
            case OpKind.Munmap: _mappings.Remove(op.Target); break;
            case OpKind.Close:
                if (_systems.Remove(op.Target) | _vms.Remove(op.Target) | _gmems.Remove(op.Target) | _vcpus.Remove(op.Target)) _closed.Add(op.Target);
                break;
            default:
                ObserveNewer(op, created);
                break;
        }
    }

    private FuzzOp CreateGmem()
    {
        ulong size = _rng.Next(10) switch
        {
            0 => 0,
            1 => (ulong)_rng.Next(1, (int)Ps),                 // unaligned
            2 => 1UL << 63,                                    // negative as loff_t
            3 => 1UL << 40,                                    // huge, lazily allocated
            _ => Ps * (ulong)_rng.Next(1, 17),
        };
        ulong flags = _rng.Next(8) switch
        {
            0 => 1UL << _rng.Next(64),
            < 4 => (ulong)_rng.Next(4),
            _ => KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED,
        };
        return new FuzzOp(OpKind.CreateGmem, Target: PickMaybeClosed(_vms), A: size, B: flags, Result: _nextId++);
    }

    private FuzzOp Fallocate()
    {
        int mode = _rng.Next(8) switch
        {
            0 => 0,
            1 => LinuxConstants.FALLOC_FL_PUNCH_HOLE,
            2 => _rng.Next(0x80),
            < 5 => LinuxConstants.FALLOC_FL_KEEP_SIZE,
            _ => LinuxConstants.FALLOC_FL_KEEP_SIZE | LinuxConstants.FALLOC_FL_PUNCH_HOLE,
        };
        int gmem = Pick(_gmems);
        ulong size = _gmemSize.GetValueOrDefault(gmem, Ps);
        ulong pages = Math.Max(1, Math.Min(size, 32 * Ps) / Ps);
        ulong offset = _rng.Next(6) == 0 ? (ulong)_rng.NextInt64() : Ps * (ulong)_rng.NextInt64(0, (long)pages + 2) + Misalign();
        ulong len = _rng.Next(8) == 0 ? (ulong)_rng.NextInt64() : Ps * (ulong)_rng.NextInt64(0, (long)pages + 1) + Misalign();
        return new FuzzOp(OpKind.Fallocate, Target: gmem, A: offset, B: len, E: mode);
    }

    private FuzzOp SetRegion2()
    {
        ulong flags = _rng.Next(8) switch
        {
            0 => 0,
            1 => KvmConstants.KVM_MEM_GUEST_MEMFD | KvmConstants.KVM_MEM_LOG_DIRTY_PAGES,
            2 => KvmConstants.KVM_MEM_GUEST_MEMFD | KvmConstants.KVM_MEM_READONLY,
            3 => (ulong)_rng.Next(16),
            _ => KvmConstants.KVM_MEM_GUEST_MEMFD,
        };
        int gmem = _gmems.Count > 0 && _rng.Next(8) != 0 ? Pick(_gmems) : PickMaybeClosed(_gmems);
        ulong size = _rng.Next(6) == 0 ? 0 : Ps * (ulong)_rng.Next(1, 9) + Misalign();
        ulong offset = Ps * (ulong)_rng.Next(0, 9) + Misalign();
        return new FuzzOp(OpKind.SetRegion2, Target: Pick(_vms), Other: gmem, A: Gpa(), B: size, C: offset, D: flags, E: _rng.Next(4));
    }

    private FuzzOp Mmap()
    {
        int gmem = Pick(_gmems);
        ulong size = Math.Min(_gmemSize.GetValueOrDefault(gmem, Ps), 16 * Ps);
        ulong length = Ps * (ulong)_rng.Next(1, (int)(2 * size / Ps) + 1);
        ulong offset = _rng.Next(4) == 0 ? Ps * (ulong)_rng.Next(0, 4) : 0;
        // Odd shapes: a length that is not a page multiple (rounded up by mmap), 0, an unaligned or huge offset.
        switch (_rng.Next(12))
        {
            case 0: length = length - Ps + (ulong)_rng.Next(1, (int)Ps); break;
            case 1: length = 0; break;
            case 2: offset = (ulong)_rng.Next(1, (int)Ps); break;
            case 3: offset = size + Ps * (ulong)_rng.Next(0, 3); break;
            case 4: offset = 1UL << 62; break;
        }
        return new FuzzOp(OpKind.Mmap, Target: gmem, A: length, B: offset, E: _rng.Next(8) == 0 ? 1 : 0, Result: _nextId++);
    }

    private FuzzOp Touch()
    {
        int mapping = Pick(_mappings);
        ulong length = _mappingLength.GetValueOrDefault(mapping, Ps);
        ulong at = _rng.Next(16) == 0 ? length + (ulong)_rng.Next((int)Ps) : (ulong)_rng.NextInt64(0, (long)length);
        return new(OpKind.Touch, Target: mapping, A: at, B: (ulong)_rng.Next(256), C: (ulong)_rng.Next(2));
    }

    private ulong VmType() => _rng.Next(6) == 0 ? (ulong)_rng.Next(1, 8) : 0;

    private ulong Gpa() => 0x100000 + Ps * (ulong)_rng.Next(0, 32) + Misalign();

    private ulong Size(int maxPages) => Ps * (ulong)_rng.Next(0, maxPages + 1) + Misalign();

    private ulong Misalign() => _rng.Next(10) == 0 ? (ulong)_rng.Next(1, (int)Ps) : 0;

    private ulong Attr() => _rng.Next(4) switch { 0 => 0, 1 => (ulong)_rng.NextInt64(), _ => KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE };

    private ulong Flags() => _rng.Next(6) == 0 ? (ulong)_rng.Next(1, 4) : 0;

    private int Pick(List<int> ids) => ids[_rng.Next(ids.Count)];

    private int PickMaybeClosed(List<int> ids) =>
        _closed.Count > 0 && (ids.Count == 0 || _rng.Next(10) == 0) ? Pick(_closed) : ids.Count > 0 ? Pick(ids) : -1;

    private int PickAnyFd()
    {
        var all = _systems.Concat(_vms).Concat(_gmems).Concat(_vcpus).ToList();
        return all.Count == 0 || _rng.Next(20) == 0 ? (_closed.Count > 0 ? Pick(_closed) : -1) : all[_rng.Next(all.Count)];
    }

    private int PickClosable()
    {
        // Systems are closed rarely so the run keeps going.
        var pool = _rng.Next(10) == 0 ? _systems.Concat(_vms).Concat(_gmems).Concat(_vcpus).ToList() : _vms.Concat(_gmems).Concat(_vcpus).ToList();
        return pool[_rng.Next(pool.Count)];
    }
}
