// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Confidential;
using KvmSharp.Vmm.Debugging;
using KvmSharp.Vmm.Devices;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Telemetry;
using Arm64Boot = KvmSharp.Vmm.Arch.Arm64.Arm64Boot;

namespace KvmSharp.Vmm;

/// <summary>
/// A sandbox that runs a freestanding 64-bit guest program: one VM, one vCPU, one block of guest memory, the
/// port-I/O ABI of GUEST-ABI.md. <c>using var vm = MicroVm.Create(image, options); var r = vm.Call("sum", input);</c>
/// Guest memory is one guest_memfd by default (<see cref="GuestMemoryBacking.GuestMemfd"/>; creation fails with a
/// <see cref="MicroVmException"/> naming the missing capability on a kernel without it), or ordinary anonymous host
/// memory (<see cref="GuestMemoryBacking.HostMemory"/>), or the best of the two the kernel offers
/// (<see cref="MicroVmOptions.Memory"/> = null; <see cref="Memory"/>.<see cref="GuestMemory.Backing"/> says which, and
/// <see cref="GuestMemfdUnavailableReason"/> why not guest_memfd). Layout, ABI and outcomes are the same with both;
/// only a guest_memfd can hold private pages.
/// Every guest ending is a <see cref="CallResult"/>. After <see cref="GuestOutcome.Exit"/>, and after the host's own
/// limits (<see cref="GuestOutcome.Timeout"/>: the watchdog kicked the vCPU out of KVM_RUN; <see cref="GuestOutcome.MaxExits"/>)
/// the micro-VM takes the next call as it is; so it does after <see cref="GuestOutcome.HostFunctionFailed"/> (the host
/// stopped the guest at its host call). After any other ending — a CPU exception the VMM's handlers reported
/// (<see cref="GuestOutcome.Exception"/>, with <see cref="CallResult.Exception"/>) included — it is faulted until
/// <see cref="Reset"/> or <see cref="Restore"/>.
/// The guest calls the host through <see cref="HostFunctions"/>; those run on the calling thread, in the middle of the
/// call, and may not call, reset or dispose their own micro-VM (refused, or for Dispose deferred to the call's end).
/// A <see cref="VmType.Snp"/> micro-VM keeps its code, data and page tables private: the first call launches it
/// (SNP_LAUNCH_FINISH seals the vCPU's registers; <see cref="IsSealed"/>), and every call after a clean return goes
/// through the VMM's guest-side dispatch loop (<see cref="Arch.X86_64.SnpDispatcher"/>, docs/sandbox.md). A
/// <see cref="VmType.Tdx"/> micro-VM does the same as a TD (Confidential/TdBoot.cs): its registers are the TDX module's
/// from creation, so it boots itself from the reset vector into the same dispatcher, and its port I/O goes through the
/// VMM's #VE handler; it needs the same guest_memfd with in-place conversion.
/// On an arm64 kernel (<see cref="Architecture"/>; MicroVm.Arm64.cs, Arch/Arm64) the micro-VM runs A64 code at EL1
/// with the MMU on over identity tables (guard pages as on x86-64), the same devices on an MMIO port window, the same calls, limits and outcomes (GUEST-ABI.md,
/// "arm64 micro-VMs"); what it lacks is refused with a <see cref="MicroVmException"/>.
/// Not thread-safe: one call at a time.
/// </summary>
public sealed partial class MicroVm : IDisposable
{
    private readonly Kvm? _ownedKvm;
    private readonly Vm _vm;
    private readonly GuestMemory _memory;
    private readonly Vcpu _vcpu;
    private readonly kvm_sregs _sregs;
    // Null for a TD, whose vCPU state cannot be read (nor reset).
    private readonly VcpuResetState? _atCreation;
    private readonly ulong? _tscOffsetAtCreation;
    // The TSC offset the VMM last set up (creation's, or one raised to a snapshot's TSC), and the largest TSC floor
    // checked at it: at one offset the TSC only grows, so a floor once met needs no KVM_GET_MSRS again.
    private ulong _tscOffsetInUse;
    private ulong _tscFloorMet;
    private readonly Serial16550 _console;
    private readonly HypercallDevice _hypercalls = new();
    private readonly HostCallDevice _hostCalls;
    // Null in a sealed (SNP, TD) micro-VM: the host cannot read its private memory, and an SNP guest batches COM1
    // through its GHCB instead.
    private readonly ConsoleWriteDevice? _consoleWrites;
    private readonly ExceptionDevice _exceptions;
    private readonly Watchdog _watchdog;
    private readonly RunLoop _loop;
    // MicroVmOptions.GdbEndpoint's listener; null without one.
    private readonly GdbServer? _gdb;
    private readonly MemoryConversion? _conversion;
    // VM type Snp: the launch, done at the first call (its registers must be set before SNP_LAUNCH_FINISH).
    private readonly SnpBoot? _snp;
    // VM type Tdx: the launch, done at the first call (after the host wrote the request the boot stub's dispatcher reads).
    private readonly TdBoot? _td;
    // _snp or _td: a micro-VM whose vCPU registers the host cannot set once it runs.
    private readonly ISealedLaunch? _sealed;
    // An arm64 micro-VM's vCPU set-up (MicroVm.Arm64.cs); null on x86-64.
    private readonly Arm64Boot? _arm64;
    private bool _launchTried;
    // VM type Snp or Tdx, once sealed: the vCPU stands in the dispatcher after a clean return (the next call resumes
    // it), or it does not and the micro-VM takes no call any more; how its last call ended, for the refusal.
    private bool _resumable;
    private long _sealedCalls;
    private string _sealedEnding = "";
    private string? _noGuestMemfd;
    private bool _noGuestMemfdKnown;
    private bool _disposed;
    private bool _inCall;
    // A call from its first check to its result, and the thread it runs on; guarded by _callGate with _disposed and
    // _disposeAfterCall, so that Dispose from any thread and the end of a call agree on who disposes.
    private readonly Lock _callGate = new();
    private bool _busy;
    private int _busyThread;
    private bool _disposeAfterCall;

    /// <summary>IA32_MCG_CAP of a micro-VM's vCPU: one machine-check bank, no MCG_CTL, CMCI or LMCE.</summary>
    private const ulong SandboxMcgCap = 1;

    private MicroVm(GuestImage image, MicroVmOptions options, Kvm? ownedKvm, Vm vm, GuestMemory memory, string? noGuestMemfd,
        MemoryConversion? conversion, Vcpu vcpu, kvm_sregs sregs, VcpuResetState? atCreation, ulong? tscOffsetAtCreation, SnpBoot? snp,
        TdBoot? td, Arm64Boot? arm64 = null)
    {
        // First: a listener that cannot bind fails the creation before anything else is owned here (the caller
        // disposes the VM, memory and vCPU).
        _gdb = options.GdbEndpoint is { } endpoint ? new GdbServer(endpoint) : null;
        _arm64 = arm64;
        _snp = snp;
        _td = td;
        _sealed = (ISealedLaunch?)snp ?? td;
        _atCreation = atCreation;
        _tscOffsetAtCreation = tscOffsetAtCreation;
        _tscOffsetInUse = tscOffsetAtCreation ?? 0;
        Image = image;
        Options = options;
        _noGuestMemfd = noGuestMemfd;
        _noGuestMemfdKnown = options.Memory is null;
        _ownedKvm = ownedKvm;
        _vm = vm;
        _memory = memory;
        _vcpu = vcpu;
        _sregs = sregs;
        _console = new Serial16550(options.ConsoleCapacity, options.ConsoleSink);
        var bus = new Bus();
        bus.Insert(_console, Serial16550.Base, Ports.Com1Length);
        bus.Insert(_hypercalls, Ports.HypercallBase, Ports.HypercallLength);
        HostFunctions = options.HostFunctions is null ? new HostFunctions() : new HostFunctions(options.HostFunctions);
        _watchdog = new Watchdog(vcpu);
        _hostCalls = new HostCallDevice(memory, () => HostFunctions, () => _watchdog.Fired);
        bus.Insert(_hostCalls, Ports.HostCall, 1);
        _exceptions = new ExceptionDevice(memory, Architecture);
        bus.Insert(_exceptions, Ports.Exception, 1);
        // Not for SNP, whose #VC handler batches string I/O through the GHCB; a TD prints from the shared console
        // buffer (CallRegion.FeatureConsoleBuffer).
        if (_snp is null)
        {
            _consoleWrites = new ConsoleWriteDevice(memory, _console);
            bus.Insert(_consoleWrites, Ports.ConsoleWrite, 1);
        }
        Bus = bus;
        _conversion = conversion;
        _loop = new RunLoop(vcpu, bus, _hypercalls, _hostCalls, () => _watchdog.Reason)
        {
            Conversion = _conversion,
            Exceptions = _exceptions,
            Memory = memory,
            // arm64 has no port I/O: the same bus answers the MMIO window (Arch/Arm64/Layout.cs).
            PortWindow = arm64 is null ? null : Arch.Arm64.Layout.PortWindow,
            IsArm64 = arm64 is not null,
        };
        Instruments.ActiveChanged(+1);
    }

    /// <summary>
    /// The guest's private/shared conversions (KVM_HC_MAP_GPA_RANGE); null when the VM type has no private memory
    /// on this kernel (<see cref="MicroVmOptions.VmType"/>).
    /// </summary>
    public MemoryConversion? Conversion => _conversion;

    private long Conversions => _conversion is null ? 0 : _conversion.Converted + _conversion.Refused;

    /// <summary>The functions this micro-VM's guest may call (a copy of <see cref="MicroVmOptions.HostFunctions"/>).</summary>
    public HostFunctions HostFunctions { get; }

    /// <summary>The image this micro-VM runs: <c>Call</c> resolves function names in its exports.</summary>
    public GuestImage Image { get; }

    /// <summary>The options this micro-VM was created with; their limits apply to every call.</summary>
    public MicroVmOptions Options { get; }

    /// <summary>
    /// The port-I/O bus (COM1, the hypercall ports, the host-call port, the exception port and, outside SNP and TD
    /// micro-VMs, the console-write port).
    /// </summary>
    public Bus Bus { get; }

    /// <summary>
    /// Guest memory, for a host that wants to read or place data itself (checked accessors only); its
    /// <see cref="GuestMemory.Backing"/> says whether it is a guest_memfd or host memory.
    /// </summary>
    public GuestMemory Memory => _memory;

    /// <summary>
    /// Why this micro-VM's kernel cannot give guest_memfd memory to its VM type (KVM_CAP_GUEST_MEMFD and
    /// KVM_CAP_GUEST_MEMFD_FLAGS, as <see cref="GuestMemory.GuestMemfdUnavailableReason"/> reads them), or null when it
    /// can. With <see cref="MicroVmOptions.Memory"/> = null this is why <see cref="Memory"/> is host memory. (Asked
    /// when the micro-VM chose its memory, else on first use: a micro-VM created with an explicit backing pays nothing.)
    /// </summary>
    public string? GuestMemfdUnavailableReason
    {
        get
        {
            if (!_noGuestMemfdKnown)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                _noGuestMemfd = GuestMemory.GuestMemfdUnavailableReason(_vm);
                _noGuestMemfdKnown = true;
            }
            return _noGuestMemfd;
        }
    }

    /// <summary>
    /// The endpoint the gdb stub listens on (<see cref="MicroVmOptions.GdbEndpoint"/> with its port resolved), or null
    /// without one. Every call waits there for gdb before its first instruction.
    /// </summary>
    public System.Net.IPEndPoint? DebuggerEndpoint => _gdb?.Endpoint;

    /// <summary>The vCPU, for tests and the benchmarks' probe (e.g. to load a deliberately invalid state).</summary>
    internal Vcpu Vcpu => _vcpu;

    /// <summary>
    /// True after a call ended in anything but <see cref="GuestOutcome.Exit"/>, <see cref="GuestOutcome.Timeout"/>,
    /// <see cref="GuestOutcome.Cancelled"/>, <see cref="GuestOutcome.MaxExits"/> or <see cref="GuestOutcome.HostFunctionFailed"/> (a vCPU stopped by the host
    /// between two instructions, with its memory intact); <see cref="Reset"/> and <see cref="Restore"/> clear it. A
    /// sealed SNP micro-VM (<see cref="IsSealed"/>) is faulted after any ending but a return, for good: its vCPU cannot
    /// be moved back to the dispatcher, and Reset and Restore are refused.
    /// </summary>
    public bool IsFaulted { get; private set; }

    /// <summary>
    /// How the image was last loaded into guest memory — at creation, or by the last full <see cref="Reset"/> —:
    /// <see cref="ImageLoadMethod.GuestMemfdWrite"/> (pwrite on the guest_memfd) where it was created with
    /// GUEST_MEMFD_FLAG_WRITE (<see cref="GuestMemory.PopulatesByWrite"/>), else <see cref="ImageLoadMethod.MappingCopy"/>;
    /// null for a micro-VM created from a snapshot and not reset since (the snapshot's pages hold the image).
    /// </summary>
    public ImageLoadMethod? LastImageLoad { get; private set; }

    /// <summary>True once <see cref="Dispose"/> released the micro-VM (a pool drops such a micro-VM on return).</summary>
    public bool IsDisposed => _disposed;

    /// <summary>Creates the VM, its memory and vCPU, writes the boot state and loads <paramref name="image"/>.</summary>
    public static MicroVm Create(GuestImage image, MicroVmOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        long start = Stopwatch.GetTimestamp();
        MicroVm vm = CreateCore(image, options ?? new MicroVmOptions(), snapshot: null);
        Instruments.Created(start, fromSnapshot: false);
        return vm;
    }

    /// <summary>Creates the VM; its memory gets the boot state and the image, or the pages of <paramref name="snapshot"/>.</summary>
    private static MicroVm CreateCore(GuestImage image, MicroVmOptions options, MicroVmSnapshot? snapshot)
    {
        options.Validate();
        image.CheckFits(options.MemorySize);

        Kvm? owned = options.Kvm is null ? Kvm.Open() : null;
        Kvm kvm = options.Kvm ?? owned!;
        Vm? vm = null;
        GuestMemory? memory = null;
        Vcpu? vcpu = null;
        SnpBoot? snp = null;
        TdBoot? td = null;
        bool lazy = false;
        try
        {
            if (options.VmType is VmType.Snp or VmType.Tdx && snapshot is not null)
                throw new MicroVmSnapshotException(SnapshotRefusal.ProtectedGuest, SealedGuest.CreateFromSnapshotRefusal(options.VmType));
            if (options.Architecture == GuestArchitecture.Arm64) CheckArm64(options, snapshot);
            vm = CreateVm(kvm, options.VmType);
            GuestArchitecture architecture = ArchitectureOf(kvm, vm, options);
            snapshot?.CheckArchitecture(architecture);
            image.CheckArchitecture(architecture);
            if (architecture == GuestArchitecture.Arm64)
            {
                CheckArm64(options, snapshot);
                return CreateArm64(image, options, owned, vm, snapshot);
            }
            // SNP: KVM_SEV_INIT2 before any vCPU (sev.c sev_guest_init refuses once vCPUs exist: kvm->created_vcpus).
            if (options.VmType == VmType.Snp) snp = SnpBoot.Open(vm, options);
            // TDX: the split irqchip and KVM_TDX_INIT_VM before any vCPU (tdx.c tdx_td_init: EBUSY once vCPUs exist).
            // A TD's vCPU state is protected from its creation (tdx.c tdx_vcpu_create; x86.c KVM_GET/SET_SREGS,
            // KVM_SET_REGS … EINVAL): it boots itself from the reset vector (Confidential/TdBoot.cs).
            if (options.VmType == VmType.Tdx) td = TdBoot.Open(vm, options);
            // Left open, the memory is the best the kernel offers; the reason is kept (else asked on first use).
            string? noGuestMemfd = options.Memory is null ? GuestMemory.GuestMemfdUnavailableReason(vm) : null;
            GuestMemoryBacking backing = options.Memory
                ?? (noGuestMemfd is null ? GuestMemoryBacking.GuestMemfd : GuestMemoryBacking.HostMemory);
            memory = GuestMemory.Create(vm, options.MemorySize, backing, options.DirectMap, guestMemfdChecked: options.Memory is null);
            if ((snp is not null || td is not null) && SealedGuest.Unusable(memory, options.VmType) is string unusable)
                throw new MicroVmException(unusable);
            td?.AddBootSlot(vm);
            // A TD's guest would ask for conversions with TDG.VP.VMCALL<MapGPA>, not the VMCALL of GUEST-ABI.md: no
            // private-memory feature (Confidential/TdBoot.cs).
            MemoryConversion? conversion = td is null ? PrivateMemory.Enable(vm, memory) : null;
            ImageLoadMethod? imageLoad = null;
            if (snapshot is null)
            {
                WriteBootState(memory, snp, td);
                imageLoad = image.WriteToFresh(memory);
            }
            else
            {
                // The boot state and the image are among the snapshot's pages; fresh memory is zero elsewhere.
                snapshot.CheckFits(image, memory.Size, FeaturesOf(conversion), architecture);
                lazy = RestoresLazily(options.SnapshotRestore, memory);
                if (lazy) memory.RestoreLazily(snapshot.Pages);
                else memory.WritePages(snapshot.Pages);
            }
            vcpu = vm.CreateVcpu(0);
            IReadOnlyList<CpuidEntry>? cpuid = GuestCpuid.For(vcpu, options.Cpuid);
            if (td is not null)
            {
                // KVM_SET_CPUID2 with x2APIC, then KVM_TDX_INIT_VCPU; nothing of the vCPU's state can be set or read.
                vcpu.SetCpuid(TdBoot.WithX2Apic(cpuid!));
                td.InitVcpu(vcpu);
                return new MicroVm(image, options, owned, vm, memory, noGuestMemfd, conversion, vcpu, default, null, null, null, td)
                {
                    LastImageLoad = imageLoad,
                };
            }
            // A snapshot's TSC rate before the CPUID that announces it (and before the TSC is loaded).
            if (snapshot is not null && snapshot.TscKhz != 0) cpuid = GiveTscRate(vcpu, snapshot.TscKhz, cpuid, options.RequireSnapshotTscRate);
            // Before the first KVM_RUN, the only time KVM takes a new table; asked once per Kvm (GuestCpuid).
            if (cpuid is not null) vcpu.SetCpuid(cpuid);
            // No paravirtual feature is announced: make KVM hold the guest to that (its PV MSRs #GP).
            if (GuestCpuid.EnforcesPvFeatures(kvm, options.Cpuid)) vcpu.EnableCapability(KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1);
            // One machine-check bank, no extras, instead of a new vCPU's 32 (x86.c kvm_arch_vcpu_create: KVM_MAX_MCE_BANKS):
            // a guest can write the banks' MSRs, so Reset restores them — 4 instead of 128. Before the reset state is
            // read: SETUP_MCE sets MC0_CTL to all ones.
            vcpu.SetupMce(SandboxMcgCap);
            kvm_sregs sregs = vcpu.GetSregs();
            LongMode.Apply(ref sregs);
            LongMode.ApplyExceptionTables(ref sregs);
            // An SNP guest's CR3 carries the C-bit, as its PTEs do: KVM takes it once the vCPU's CPUID has leaf
            // 0x8000001F (svm.c svm_vcpu_after_set_cpuid clears the bit from reserved_gpa_bits; GuestCpuid keeps the leaf).
            if (snp is not null) sregs.cr3 |= snp.Cbit;
            vcpu.SetSregs(sregs);
            // Before the first KVM_RUN, what Reset writes back (read from the first vCPU of this Kvm and policy).
            VcpuResetState atCreation = VcpuResetState.AtCreation(kvm, options.Cpuid, vcpu);
            ulong? tscOffset = atCreation.HasTscOffset ? vcpu.GetTscOffset() : null;
            return new MicroVm(image, options, owned, vm, memory, noGuestMemfd, conversion, vcpu, sregs, atCreation, tscOffset, snp, null)
            {
                LastRestoreWasLazy = lazy,
                LastImageLoad = imageLoad,
            };
        }
        catch
        {
            vcpu?.Dispose();
            memory?.Dispose();
            snp?.Dispose();
            td?.Dispose();
            vm?.Dispose();
            owned?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// KVM_CREATE_VM of <paramref name="type"/>. It answers a bare EINVAL for a type the kernel lacks
    /// (x86.c kvm_arch_init_vm: !kvm_is_vm_type_supported); only then is KVM_CAP_VM_TYPES asked, to name the set — not
    /// on every create, where it would be one more ioctl on the path a create + call + teardown is timed on. Kernels
    /// before KVM_CAP_VM_TYPES (6.8) answer 0 and know only the default type.
    /// </summary>
    private static Vm CreateVm(Kvm kvm, VmType type)
    {
        try
        {
            return kvm.CreateVm(type);
        }
        catch (KvmException e) when (e.Errno == Errno.EINVAL)
        {
            IReadOnlyList<VmType> types = kvm.SupportedVmTypes;
            if (types.Contains(type) || (types.Count == 0 && type == VmType.Default)) throw;
            throw new MicroVmException(
                $"VM type {type} is not offered by this kernel (KVM_CAP_VM_TYPES: {(types.Count == 0 ? "none" : string.Join(", ", types))})");
        }
    }

    /// <summary>Runs the image's entry point with no arguments.</summary>
    public CallResult Run() => Enter(null, Image.Entry, [], ReadOnlySpan<byte>.Empty, withInput: false, CancellationToken.None);

    /// <summary>
    /// Runs the image's entry point with no arguments; cancelling <paramref name="cancellationToken"/> (from any thread)
    /// stops the guest and ends the call as <see cref="GuestOutcome.Cancelled"/>.
    /// </summary>
    public CallResult Run(CancellationToken cancellationToken) =>
        Enter(null, Image.Entry, [], ReadOnlySpan<byte>.Empty, withInput: false, cancellationToken);

    /// <summary>
    /// Calls export <paramref name="name"/> with up to six integer arguments (SysV registers and CallRegion.args). A
    /// collection expression (<c>vm.Call("add", [2, 3])</c>) binds here, not to the byte-input overload.
    /// </summary>
    // C# prefers ReadOnlySpan<byte> for [2, 3] (byte converts to ulong, so its span is the "better" target): without
    // the priority, integer arguments written as a collection would reach the guest as two input bytes.
    [OverloadResolutionPriority(1)]
    public CallResult Call(string name, params ReadOnlySpan<ulong> args) =>
        Enter(name, Image.Resolve(name), args, ReadOnlySpan<byte>.Empty, withInput: false, CancellationToken.None);

    /// <summary>
    /// Calls export <paramref name="name"/> with up to six integer arguments; cancelling
    /// <paramref name="cancellationToken"/> (from any thread) stops the guest and ends the call as
    /// <see cref="GuestOutcome.Cancelled"/>. The token comes before the arguments so that they stay a params list
    /// (<c>vm.Call("add", token, 2, 3)</c>).
    /// </summary>
    [OverloadResolutionPriority(1)]
    public CallResult Call(string name, CancellationToken cancellationToken, params ReadOnlySpan<ulong> args) =>
        Enter(name, Image.Resolve(name), args, ReadOnlySpan<byte>.Empty, withInput: false, cancellationToken);

    /// <summary>
    /// Copies <paramref name="input"/> into the call data area and calls <paramref name="name"/>(input_ptr, input_len).
    /// Takes byte arrays, spans and UTF-8 literals (<c>"abc"u8</c>); a collection expression goes to the integer
    /// overload.
    /// </summary>
    public CallResult Call(string name, ReadOnlySpan<byte> input) =>
        Enter(name, Image.Resolve(name), [], input, withInput: true, CancellationToken.None);

    /// <summary>
    /// Copies <paramref name="input"/> into the call data area and calls <paramref name="name"/>(input_ptr, input_len);
    /// cancelling <paramref name="cancellationToken"/> (from any thread) stops the guest and ends the call as
    /// <see cref="GuestOutcome.Cancelled"/>.
    /// </summary>
    public CallResult Call(string name, ReadOnlySpan<byte> input, CancellationToken cancellationToken) =>
        Enter(name, Image.Resolve(name), [], input, withInput: true, cancellationToken);

    /// <summary>Calls the function at guest address <paramref name="entry"/> (for images without a symbol table).</summary>
    public CallResult CallAddress(ulong entry, params ReadOnlySpan<ulong> args) =>
        Enter(null, entry, args, ReadOnlySpan<byte>.Empty, withInput: false, CancellationToken.None);

    /// <summary>
    /// Calls the function at guest address <paramref name="entry"/>; cancelling <paramref name="cancellationToken"/>
    /// (from any thread) stops the guest and ends the call as <see cref="GuestOutcome.Cancelled"/>.
    /// </summary>
    public CallResult CallAddress(ulong entry, CancellationToken cancellationToken, params ReadOnlySpan<ulong> args) =>
        Enter(null, entry, args, ReadOnlySpan<byte>.Empty, withInput: false, cancellationToken);

    /// <summary>
    /// Puts the TSC offset (KVM_VCPU_TSC_OFFSET) back where the VMM had it, when the kernel has the attribute: undoes a
    /// guest's WRMSR to IA32_TSC, which moves the offset (x86.c adjust_tsc_offset_guest) and no MSR write of the host
    /// undoes. <paramref name="floor"/> 0 (Reset): the offset read at creation. A snapshot's TSC (Restore, Create from
    /// a snapshot): the offset in use — creation's if a guest moved it — raised, if need be, so that the guest reads no
    /// less than the snapshot's TSC (a new VM's TSC starts at 0 upstream; a time the guest stored before the snapshot
    /// must not lie in its future). A write only when the offset changes: it is a TSC synchronisation
    /// (__kvm_synchronize_tsc requests a clock update that the next KVM_RUN pays for: +10 % per pooled use measured
    /// here when written every time), a read is a plain ioctl.
    /// </summary>
    private void RestoreTscOffset(ulong floor = 0)
    {
        if (_tscOffsetAtCreation is not { } creation) return;
        ulong current = _vcpu.GetTscOffset();
        ulong target = floor == 0 || current != _tscOffsetInUse ? creation : current;
        if (floor != 0 && (target != _tscOffsetInUse || floor > _tscFloorMet))
        {
            // The guest's TSC at `target`, from a reading at `current` (u64 arithmetic, as the kernel's offsets).
            ulong atTarget = unchecked(_vcpu.GetMsr(X86Msr.Tsc) - current + target);
            if (atTarget < floor) target = unchecked(target + (floor - atTarget));
        }
        if (target != current)
        {
            _vcpu.SetTscOffset(target);
            // A kernel may ignore the write (kvm_pvm keeps 0): remember what it holds, so the next call does not retry.
            target = _vcpu.GetTscOffset();
        }
        if (target != _tscOffsetInUse) _tscFloorMet = 0;
        _tscOffsetInUse = target;
        if (floor > _tscFloorMet) _tscFloorMet = floor;
    }

    /// <summary>
    /// Returns the micro-VM to its freshly created state without creating anything, so nothing of the last user
    /// survives in guest memory or in the vCPU: reloads the long-mode registers, every MSR the kernel lists (SYSENTER_*,
    /// PAT, STAR/LSTAR/CSTAR/SFMASK, KERNEL_GS_BASE, MISC_ENABLE …) and the MTRRs and machine-check banks it does not
    /// list but lets a guest write, the x87/SSE/AVX registers with MXCSR,
    /// XCR0, the debug registers and the event state (nothing queued) with their values at creation
    /// (<see cref="Arch.X86_64.VcpuResetState"/>), and the TSC offset (a guest that wrote IA32_TSC moved it; the
    /// clock goes on from where it would be had no guest written it). This is what a pool does
    /// between uses. A
    /// guest_memfd frees every page (<see cref="GuestMemory.Discard"/>: fallocate PUNCH_HOLE, after making private pages
    /// shared again) and the boot state and the image are written again. Host memory does the same (MADV_DONTNEED) the
    /// first time, then keeps a copy of the boot state and image pages and has its slot log the guest's writes; each
    /// later reset rewrites exactly the pages changed since (the guest's from the dirty log, the host's through the
    /// <see cref="GuestMemory"/> accessors): boot state and image pages get their saved bytes back, every other changed
    /// page is zeroed, and all stay populated, so the next call does not fault them in again. A micro-VM that is never
    /// reset pays nothing for this (no dirty logging, no copy). After a <see cref="Restore"/> (whose snapshot then holds
    /// that place) the next reset is a full one again. A micro-VM created from a snapshot resets to its image's fresh
    /// state, not to the snapshot: <see cref="Restore"/> does that.
    /// </summary>
    public void Reset()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ThrowIfInCall(nameof(Reset));
        ThrowIfLaunched(nameof(Reset));
        long start = Stopwatch.GetTimestamp();
        if (_memory.HasPristine)
        {
            _memory.RestorePristine();
        }
        else
        {
            _memory.Discard();
            if (_arm64 is not null) Arm64Boot.WriteBootState(_memory, _arm64.GuardsBranchTargets(Image) ? Image.Segments : null);
            else WriteBootState(_memory, _snp, _td);
            LastImageLoad = Image.WriteToFresh(_memory);
            // Host memory keeps what the host just wrote (the guest has not run since the discard) and logs the
            // guest's writes from now on: the next resets restore only the pages changed.
            if (_memory.CanRestorePristine) _memory.SavePristine();
        }
        // arm64: KVM_ARM_VCPU_INIT again resets every register, then VBAR_EL1, CPACR_EL1 and the MMU registers (the
        // translation tables were rewritten with the boot state above).
        if (_arm64 is not null)
        {
            _arm64.InitVcpu(_vcpu);
        }
        // A TD not launched yet has run nothing: its vCPU is as KVM_TDX_INIT_VCPU left it (and cannot be set).
        else if (_td is null)
        {
            _vcpu.SetSregs(_sregs);
            _atCreation!.Load(_vcpu);
            RestoreTscOffset();
        }
        _loop.EnsureSteppingOff();
        _vcpu.ImmediateExit = false;
        IsFaulted = false;
        Instruments.ResetDone(start, toSnapshot: false);
    }

    /// <summary>
    /// One call, from the first check to its result: marked busy under <see cref="_callGate"/> so that a Dispose from
    /// another thread (an asynchronous call runs on the vCPU thread) never frees the vCPU or memory under it, but stops
    /// the guest and leaves the disposal to the call's end.
    /// </summary>
    private CallResult Enter(string? function, ulong entry, ReadOnlySpan<ulong> args, ReadOnlySpan<byte> input, bool withInput, CancellationToken cancellationToken)
    {
        lock (_callGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_busy)
            {
                // Re-entry from this call's own thread (a host function, a telemetry listener), or a second caller.
                throw new MicroVmException(_busyThread == Environment.CurrentManagedThreadId
                    ? InCallMessage(nameof(Call))
                    : "MicroVm.Call while a call of this micro-VM runs on another thread: one call at a time (CallAsync queues them)");
            }
            _busy = true;
            _busyThread = Environment.CurrentManagedThreadId;
        }
        bool disposeNow;
        try
        {
            return EnterCore(function, entry, args, input, withInput, cancellationToken);
        }
        finally
        {
            lock (_callGate)
            {
                _busy = false;
                disposeNow = _disposeAfterCall;
            }
            if (disposeNow) Dispose();
        }
    }

    private CallResult EnterCore(string? function, ulong entry, ReadOnlySpan<ulong> args, ReadOnlySpan<byte> input, bool withInput, CancellationToken cancellationToken)
    {
        if (_sealed is not null) CheckSealedCall(_sealed, entry);
        if (IsFaulted) throw new MicroVmException("the micro-VM's last call did not end normally; call Reset() or Restore() before calling it again");
        if (args.Length > CallRegion.MaxArgs) throw new MicroVmException($"at most {CallRegion.MaxArgs} arguments, not {args.Length}");
        ulong capacity = Layout.CallDataEnd - Layout.CallData;
        if ((ulong)input.Length > capacity) throw new MicroVmException($"the input of {input.Length} bytes exceeds the {capacity}-byte call data area");

        Span<ulong> registers = stackalloc ulong[CallRegion.MaxArgs];
        int count = args.Length;
        args.CopyTo(registers);
        if (withInput)
        {
            _memory.Write(Layout.CallData, input);
            registers[0] = Layout.CallData;
            registers[1] = (ulong)input.Length;
            count = 2;
        }
        WriteCallHeader(entry, registers[..count], withInput ? (ulong)input.Length : 0, withInput);
        if (_arm64 is not null)
        {
            // The A64 trampoline loads the arguments from the call region and BLRs to the entry.
            Arm64Boot.EnterCall(_vcpu, _loop.LastExitWasMmio);
        }
        else if (_sealed is null)
        {
            // The return address: a plain RET from the function lands on the trampoline.
            ulong rsp = Layout.StackTop - sizeof(ulong);
            _memory.Write(rsp, Layout.Trampoline);
            _vcpu.SetRegs(LongMode.EntryRegs(entry, rsp, registers[..count]));
        }
        else
        {
            StartSealedCall(_sealed);
        }

        _console.Clear();
        _hypercalls.Clear();
        _hostCalls.Clear();
        _consoleWrites?.Clear();
        _exceptions.Clear();
        // Before Arm, never after: a kick of this call can only come after Arm, so this clear cannot lose it, and a
        // late kick of the previous call (its deadline passed as its run loop was stopping) is wiped here (Watchdog).
        _vcpu.ImmediateExit = false;
        // Before the clock starts: the builder decodes the IDT's gates (Iced's first use in a process took 55–187 ms
        // under load, most of a short call's timeout, leaving a traced call almost no time to run).
        // arm64: the call starts at the trampoline, which loads the arguments and BLRs to the entry (Arm64Boot.EnterCall).
        GuestTraceBuilder? trace = Options.TraceInstructions <= 0 ? null
            : _arm64 is not null ? GuestTraceBuilder.ForArm64(_memory, Options.TraceInstructions, Arch.Arm64.Layout.Trampoline)
            : new GuestTraceBuilder(_memory, Options.TraceInstructions, entry);
        long conversionsBefore = Conversions;
        Activity? activity = Instruments.StartCall(function, entry);
        long start = Stopwatch.GetTimestamp();
        _watchdog.Arm(Options.Timeout);
        RunStop stop;
        long exits;
        _inCall = true;
        // After Arm (a token cancelled already kicks at once: the first KVM_RUN returns EINTR before the guest runs),
        // unregistered before Disarm (Dispose waits for a callback in progress), so no cancellation reaches a later call.
        // CancellationToken.None registers nothing.
        CancellationTokenRegistration registration = cancellationToken.UnsafeRegister(static dog => ((Watchdog)dog!).Cancel(), _watchdog);
        // A Dispose from another thread between the start of this call and Arm found nothing to kick: kick now.
        if (Volatile.Read(ref _disposeAfterCall)) _watchdog.Abort();
        try
        {
            // With a gdb stub the call waits for gdb here, the clock paused (Debugging/GdbStub.cs).
            IGuestDebugger? debugger = _gdb is null ? null
                : new GdbStub(_gdb, _vcpu, _arm64 is null ? new X86_64GdbTarget(_vcpu) : new Arm64GdbTarget(_vcpu), _memory,
                    () => _watchdog.Reason, _watchdog.Pause, _watchdog.Resume);
            stop = _loop.Run(Options.MaxExits, trace, debugger, out exits);
        }
        catch (Exception e)
        {
            Instruments.FailCall(activity, e);
            throw;
        }
        finally
        {
            registration.Dispose();
            _watchdog.Disarm();
            _inCall = false;
        }
        TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
        // One CallResult per call: the conversion count goes in with the rest (a `with` copy would allocate a second).
        CallResult result = Finish(stop, exits, elapsed, Conversions - conversionsBefore, trace?.Build());
        Instruments.CallEnded(result);
        Instruments.StopCall(activity, result);
        return result;
    }

    /// <summary>
    /// True for a <see cref="VmType.Snp"/> or <see cref="VmType.Tdx"/> micro-VM once its first call launched it
    /// (SNP_LAUNCH_FINISH sealed its vCPU registers; KVM_TDX_FINALIZE_VM fixed a TD's private memory, whose registers
    /// were the TDX module's from the start): <see cref="Reset"/>, <see cref="Snapshot"/> and <see cref="Restore"/> are
    /// refused with a <see cref="MicroVmException"/> from then on (snapshots are refused for these VM types even
    /// before). It still takes calls — the host writes each request into the shared call region and resumes the vCPU,
    /// which the VMM's dispatch loop (<see cref="Arch.X86_64.SnpDispatcher"/>) enters the function from — as long as
    /// every call returned (RET to the trampoline). A call that ended any other way (an exception, an exit status, a
    /// shutdown, a timeout, a cancellation …) leaves the vCPU where no request can reach it: the micro-VM is
    /// <see cref="IsFaulted"/> for good and refuses further calls (docs/sandbox.md, "SEV-SNP"; Confidential/TdBoot.cs).
    /// </summary>
    public bool IsSealed => _launchTried;

    private void ThrowIfLaunched(string what)
    {
        if (!_launchTried) return;
        throw new MicroVmException(SealedGuest.ResetRefusal(_sealed!, what));
    }

    /// <summary>
    /// Before anything of an SNP or TD call is written: a sealed micro-VM takes a call only while its vCPU waits in the
    /// dispatcher (its last call returned), and the dispatcher enters only the image area.
    /// </summary>
    private void CheckSealedCall(ISealedLaunch launch, ulong entry)
    {
        if (_launchTried && !_resumable) throw new MicroVmException(SealedGuest.CallRefusal(launch, _sealedCalls, _sealedEnding));
        if (!SnpDispatcher.Accepts(entry, _memory.Size)) throw new MicroVmException(SealedGuest.EntryRefusal(launch, entry, _memory.Size));
    }

    /// <summary>
    /// The request is in the call region: the first call launches (and seals) the micro-VM — an SNP vCPU pointed at the
    /// runtime's start first (it registers its GHCB and enters the dispatcher: Arch/X86_64/SnpRuntime), a TD's starts at its reset vector and boots into it —; a later one has nothing to set — the
    /// next KVM_RUN completes the last call's OUT to the return port and the vCPU falls into the dispatcher, which reads
    /// the request.
    /// </summary>
    private void StartSealedCall(ISealedLaunch launch)
    {
        _sealedCalls++;
        _resumable = false;
        _sealedEnding = "did not end (the host failed during it)";
        if (_launchTried) return;
        if (launch.SetsEntryRegisters) _vcpu.SetRegs(LongMode.EntryRegs(SnpRuntime.Start, Layout.StackTop - sizeof(ulong), []));
        // A failed launch leaves the VM half-launched, so it counts as launched too.
        _launchTried = true;
        _sealedEnding = "failed to launch";
        launch.Launch(_memory, _vcpu);
    }

    /// <summary>An SNP or TD call ended: only a return leaves the vCPU in the dispatcher; anything else ends the micro-VM.</summary>
    private void EndSealedCall(RunStop stop, bool returned)
    {
        bool inDispatcher = returned && _memory.IsAttached
            && SnpDispatcher.ReturnedHere(_memory.Read<ulong>(CallRegion.Address(CallRegion.Entry)));
        _resumable = inDispatcher;
        if (inDispatcher) return;
        IsFaulted = true;
        _sealedEnding = returned
            ? "returned by an OUT to the return port from the guest's own code, not through the trampoline"
            : stop.Outcome == GuestOutcome.Exit
                ? $"exited ({stop.Detail}) instead of returning"
                : $"ended as {stop.Outcome} ({stop.Detail})";
    }

    /// <summary>The VMM's pages for this micro-VM's VM type (an SNP's with the C-bit, a TD's with its runtime).</summary>
    private static void WriteBootState(GuestMemory memory, SnpBoot? snp, TdBoot? td)
    {
        if (td is not null) BootMemory.WriteTd(memory, TdBoot.SharedBit);
        else BootMemory.Write(memory, snp?.Cbit ?? 0);
    }

    private void ThrowIfInCall(string what)
    {
        if (_inCall) throw new MicroVmException(InCallMessage(what));
    }

    private string InCallMessage(string what)
    {
        string from = _hostCalls.Running is string name ? $" (from host function '{name}')" : "";
        return $"MicroVm.{what} while a call of this micro-VM is running{from}: a host function cannot re-enter its own micro-VM";
    }

    private void WriteCallHeader(ulong entry, ReadOnlySpan<ulong> args, ulong inputLength, bool withInput)
    {
        Span<byte> header = _memory.GetSpan(Layout.CallRegion, CallRegion.HeaderSize);
        header[(int)CallRegion.Entry..].Clear();
        Write(header, CallRegion.Entry, entry);
        Write(header, CallRegion.ArgCount, (ulong)args.Length);
        for (int i = 0; i < args.Length; i++) Write(header, CallRegion.Args + (ulong)(i * sizeof(ulong)), args[i]);
        Write(header, CallRegion.InputPtr, withInput ? Layout.CallData : 0);
        Write(header, CallRegion.InputLen, inputLength);
        // A TD's memory is private: its console writes go through the shared console buffer.
        Write(header, CallRegion.Features, CallFeatures | (_td is not null ? CallRegion.FeatureConsoleBuffer : 0));
        Write(header, CallRegion.MemorySize, _memory.Size);
        _memory.GetSpan(HostCallBlock.Base, HostCallBlock.Size).Clear();

        static void Write(Span<byte> header, ulong field, ulong value) =>
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(header[(int)field..], value);
    }

    private CallResult Finish(RunStop stop, long exits, TimeSpan elapsed, long conversions, GuestTrace? trace)
    {
        GuestException? exception = stop.Outcome == GuestOutcome.Exception ? _exceptions.Raised : null;
        // After an exception the vCPU stands in the VMM's handler; the frame has where the guest was.
        // An SNP or TD vCPU's registers are sealed (KVM_GET_REGS is EINVAL): its RIP is not known (0).
        // An arm64 vCPU's PC is a one-reg (there is no KVM_GET_REGS on arm64).
        ulong rip = exception?.Rip ?? (_sealed is not null ? 0 : _arm64 is not null ? _vcpu.GetPc() : _vcpu.GetRegs().rip);
        bool exited = stop.Outcome == GuestOutcome.Exit;
        IsFaulted = stop.Outcome is not (GuestOutcome.Exit or GuestOutcome.Timeout or GuestOutcome.Cancelled or GuestOutcome.Disposed
            or GuestOutcome.MaxExits or GuestOutcome.HostFunctionFailed);
        bool returned = exited && _hypercalls.Request == GuestRequest.Return;
        if (_sealed is not null) EndSealedCall(stop, returned);
        string detail = stop.Detail;
        ReadOnlyMemory<byte> output = default;
        if (exited && _memory.IsAttached)
        {
            ulong outPtr = _memory.Read<ulong>(CallRegion.Address(CallRegion.OutputPtr));
            ulong outLen = _memory.Read<ulong>(CallRegion.Address(CallRegion.OutputLen));
            if (outLen > 0)
            {
                if (outPtr >= Layout.CallData && outPtr <= Layout.CallDataEnd && outLen <= Layout.CallDataEnd - outPtr)
                {
                    var bytes = new byte[outLen];
                    _memory.Read(outPtr, bytes);
                    output = bytes;
                }
                else
                {
                    detail += $"; output [0x{outPtr:X}, +0x{outLen:X}) ignored: outside the call data area";
                }
            }
        }
        return new CallResult
        {
            Outcome = stop.Outcome,
            Status = exited ? (returned ? 0 : (int)_hypercalls.Status) : -1,
            Value = returned ? _memory.Read<ulong>(CallRegion.Address(CallRegion.Result)) : null,
            Rip = rip,
            Console = _console.Text,
            ConsoleTruncated = _console.Truncated,
            Output = output,
            Exits = exits,
            Elapsed = elapsed,
            Detail = detail,
            Port = stop.Port,
            HostCalls = _hostCalls.Calls,
            HostFault = _hostCalls.Fault is { } fault ? fault with { Rip = rip } : null,
            Conversions = conversions,
            Exception = exception,
            Trace = trace,
        };
    }

    /// <summary>
    /// Releases the watchdog, vCPU thread, vCPU, guest memory, VM and the /dev/kvm it opened itself (not
    /// <see cref="MicroVmOptions.Kvm"/>). Called from a host function during this micro-VM's call, it ends the call as
    /// <see cref="GuestOutcome.HostFunctionFailed"/> and disposes once the call is over; called from another thread
    /// while a call runs, it stops the guest (the call ends as <see cref="GuestOutcome.Disposed"/>) and
    /// the call disposes on its way out. Calls still queued on the vCPU thread fail with ObjectDisposedException.
    /// </summary>
    public void Dispose()
    {
        lock (_callGate)
        {
            if (_disposed) return;
            if (_busy)
            {
                // The run loop and the devices still use the vCPU and memory: the call disposes on its way out.
                _disposeAfterCall = true;
                if (_busyThread != Environment.CurrentManagedThreadId) _watchdog.Abort();
                else if (_inCall) _hostCalls.Abort(new ObjectDisposedException(nameof(MicroVm), "the micro-VM was disposed by a host function during its call"));
                return;
            }
            _disposed = true;
        }
        // Queued asynchronous calls run first and find the micro-VM disposed (not joined from the vCPU thread itself).
        StopVcpuThread();
        Instruments.ActiveChanged(-1);
        _watchdog.Dispose();
        _gdb?.Dispose();
        _vcpu.Dispose();
        _memory.Dispose();
        _sealed?.Dispose();
        _vm.Dispose();
        _ownedKvm?.Dispose();
    }
}
