// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mm;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation;

/// <summary>
/// The KVM guest_memfd subsystem written in C#, behind the same syscall boundary as the real kernel: it decodes the
/// same binary structs and request numbers and answers with the kernel's errno. One lock serializes every call (the
/// kernel's slots_lock / invalidate_lock / mmap_lock rolled into one). Guest memory is real host memory (memfds).
/// </summary>
public sealed partial class EmulatedKernel : IKernel, IDisposable
{
    private const string DevKvm = "/dev/kvm";

    private readonly FdTable _fds;
    private readonly AddressSpace _mm = new();
    private readonly List<Kvm> _vms = [];
    private readonly Mm.AnonymousMappings _anonymous = new();
    private readonly RunningVcpus _running = new();
    private ulong _nextIno = 0x10000;
    private bool _disposed;

    internal (IReadOnlyList<Kvm> Vms, FdTable Fds, AddressSpace Mm) InvariantView => (_vms, _fds, _mm);

    /// <summary>
    /// Creates an emulated kernel configured by <paramref name="config"/> (default:
    /// <see cref="EmulatorConfig.LikeThisHost"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The configuration is not a kernel that could exist (e.g. VM types or Kconfig
    /// switches its generation or architecture lacks).</exception>
    public EmulatedKernel(EmulatorConfig? config = null)
        : this(config, fdNumbers: null)
    {
    }

    /// <summary>
    /// Creates an emulated kernel whose descriptor numbers come from <paramref name="fdNumbers"/> (null: its own
    /// table, 3, 4, …), for a process that routes its real syscalls on those numbers here.
    /// </summary>
    /// <exception cref="ArgumentException">The configuration is not a kernel that could exist.</exception>
    public EmulatedKernel(EmulatorConfig? config, IFdNumberSource? fdNumbers)
    {
        _fds = new FdTable(fdNumbers);
        Config = config ?? EmulatorConfig.LikeThisHost();
        Validate(Config);
        Arch = KvmArch.For(Config);
        Numa = new Mm.Numa.NumaState(Config);
    }

    /// <summary>The NUMA nodes and the task's NUMA state (interleave cursor, interned policies).</summary>
    internal Mm.Numa.NumaState Numa { get; }

    /// <summary>This process's emulated mappings (for mm/mempolicy.c and mm/migrate.c).</summary>
    internal AddressSpace AddressSpace => _mm;

    /// <summary>The anonymous mappings made through this kernel.</summary>
    internal Mm.AnonymousMappings Anonymous => _anonymous;

    /// <summary>The configuration this kernel was created with.</summary>
    public EmulatorConfig Config { get; }

    /// <summary>The proposal numbers of <see cref="Config"/> (<see cref="EmulatorConfig.Proposals"/>), for Kvm.Open.</summary>
    public UapiProposals Proposals => Config.Proposals;

    /// <summary>Always "emulated".</summary>
    public string Name => "emulated";

    /// <summary>Serializes every call into the emulated kernel.</summary>
    internal Lock SyncRoot { get; } = new();

    internal KvmArch Arch { get; }

    /// <summary>kvm.gmem_in_place_conversion ([PATCH v8 09/46]): guest_memfd tracks private/shared per page.</summary>
    internal bool InPlaceConversion => Config.Generation == KernelGeneration.InPlaceConversionV8 && Config.GmemInPlaceConversion;

    /// <summary>Open emulated descriptors (for leak checks).</summary>
    public int OpenFdCount
    {
        get { lock (SyncRoot) return _fds.Count; }
    }

    /// <summary>VMs not yet destroyed (a VM lives while its fd, a gmem file or a mapping of one is open).</summary>
    public int LiveVmCount
    {
        get { lock (SyncRoot) return _vms.Count; }
    }

    /// <summary>Emulated file mappings still mapped.</summary>
    public int MappingCount
    {
        get { lock (SyncRoot) return _mm.Vmas.Count; }
    }

    /// <summary>
    /// Tears the emulated process down like exit(2): every emulated mapping is unmapped and every descriptor
    /// closed, which releases the files and VMs. Later calls on this kernel fail with EBADF.
    /// </summary>
    public void Dispose()
    {
        lock (SyncRoot)
        {
            if (_disposed) return;
            _mm.Clear();
            _anonymous.Clear();
            foreach (int fd in _fds.Numbers.ToArray()) _ = _fds.Close(fd);
            _disposed = true;
        }
    }
}
