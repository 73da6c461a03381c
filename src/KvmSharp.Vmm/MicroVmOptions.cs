// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm;

/// <summary>The limits and plumbing of one micro-VM.</summary>
public sealed record MicroVmOptions
{
    /// <summary>The default <see cref="MemorySize"/>: 2 MiB, the smallest allowed.</summary>
    public const ulong DefaultMemorySize = 2 * 1024 * 1024;

    /// <summary>Guest memory size: a multiple of 2 MiB in [2 MiB, 1 GiB].</summary>
    public ulong MemorySize { get; init; } = DefaultMemorySize;

    /// <summary>Wall-clock limit of one call; <see cref="Timeout.InfiniteTimeSpan"/> for none.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Whether a snapshot's TSC rate (<see cref="Snapshots.MicroVmSnapshot.TscKhz"/>) must be given to a micro-VM made
    /// from or restored to it (the default): a kernel that refuses the rate (KVM_SET_TSC_KHZ without TSC scaling takes
    /// no rate more than 250 ppm below the host's) refuses the snapshot (<see cref="Snapshots.SnapshotRefusal.TscRateRefused"/>),
    /// as Firecracker refuses such a restore. False: such a snapshot runs at this host's rate, which CPUID 0x40000010
    /// then announces — for guests that read the rate again rather than keep one from before the snapshot.
    /// </summary>
    public bool RequireSnapshotTscRate { get; init; } = true;

    /// <summary>KVM_RUN returns allowed in one call (each console byte is one exit).</summary>
    public long MaxExits { get; init; } = 1_000_000;

    /// <summary>Console bytes kept per call in <see cref="CallResult.Console"/>; more are streamed but not kept.</summary>
    public int ConsoleCapacity { get; init; } = 64 * 1024;

    /// <summary>When set, console output is also written here as the guest produces it (e.g. stdout).</summary>
    public Stream? ConsoleSink { get; init; }

    /// <summary>
    /// Functions the guest may call (GUEST-ABI.md, "Host calls"). Each micro-VM copies the registry when it is
    /// created, so one registry can serve a pool; add per-VM functions to <see cref="MicroVm.HostFunctions"/>.
    /// </summary>
    public HostCalls.HostFunctions? HostFunctions { get; init; }

    /// <summary>An open /dev/kvm to create the VM on (not disposed by the micro-VM); null opens one per micro-VM.</summary>
    public Kvm? Kvm { get; init; }

    /// <summary>
    /// The VM type (KVM_CREATE_VM's argument). A type with private memory (e.g. <see cref="KvmSharp.VmType.SwProtected"/>)
    /// needs a kernel whose guest_memfd offers MMAP|INIT_SHARED for it (in-place conversion); its guest may then make
    /// pages private with KVM_HC_MAP_GPA_RANGE (GUEST-ABI.md, "Private memory"). <see cref="KvmSharp.VmType.Snp"/> and
    /// <see cref="KvmSharp.VmType.Tdx"/> keep everything but the call region, call data and exception block private and
    /// take calls through a guest-side dispatcher (<see cref="MicroVm.IsSealed"/>; GUEST-ABI.md "SEV-SNP micro-VMs",
    /// "TDX micro-VMs"); they need guest_memfd with in-place conversion.
    /// </summary>
    public VmType VmType { get; init; } = VmType.Default;

    /// <summary>
    /// What holds guest memory: guest_memfd (the default; creation fails with a <see cref="MicroVmException"/> that
    /// names the missing capability on a kernel without it), ordinary host memory, or null for the best the kernel
    /// offers for <see cref="VmType"/> (guest_memfd when it can, else host memory; see <see cref="GuestMemory.Backing"/>).
    /// </summary>
    public GuestMemoryBacking? Memory { get; init; } = GuestMemoryBacking.GuestMemfd;

    /// <summary>
    /// Whether guest_memfd memory leaves the host kernel's direct map (<see cref="DirectMapUse"/>; a proposal no shipped
    /// kernel has yet): by default when the VM offers it. <see cref="GuestMemory.RemovedFromDirectMap"/> says what
    /// happened.
    /// </summary>
    public DirectMapUse DirectMap { get; init; } = DirectMapUse.RemoveIfOffered;

    /// <summary>
    /// The CPUID table the vCPU gets (KVM_SET_CPUID2, once at creation; GUEST-ABI.md, "CPUID"): by default the
    /// kernel's supported table normalised for a one-vCPU sandbox (<see cref="GuestCpuid.Normalize"/>), asked once per
    /// <see cref="Kvm"/> object; <see cref="CpuidPolicy.Supported"/> as the kernel reports it; <see cref="CpuidPolicy.None"/>
    /// sets none, so every leaf reads as zero. With <see cref="Kvm"/> = null every micro-VM opens its own /dev/kvm and
    /// so asks KVM_GET_SUPPORTED_CPUID again (≈90 µs on kvm_pvm): give micro-VMs created often one shared
    /// <see cref="Kvm"/>.
    /// </summary>
    public CpuidPolicy Cpuid { get; init; } = CpuidPolicy.Sandbox;

    /// <summary>The largest <see cref="TraceInstructions"/>: one million instructions (each a KVM_RUN of its own).</summary>
    public const int MaxTraceInstructions = 1_000_000;

    /// <summary>
    /// An instruction trace of every call, for guest authors debugging their code: when above 0, each call
    /// (<see cref="MicroVm.Call(string, ReadOnlySpan{ulong})"/>, <see cref="MicroVm.Run()"/>, <see cref="MicroVm.CallAddress(ulong, ReadOnlySpan{ulong})"/>, and their overloads)
    /// single-steps the vCPU (KVM_SET_GUEST_DEBUG) and records the first this-many instructions it executes, with their
    /// bytes, in <see cref="CallResult.Trace"/>; then stepping is switched off and the call runs on at full speed
    /// (<see cref="GuestTrace.Truncated"/>). Stepping is off again after every call, however it ended, and after
    /// <see cref="MicroVm.Reset"/>/<see cref="MicroVm.Restore"/>. Each stepped instruction is one KVM_RUN (tens of
    /// microseconds instead of nanoseconds: mind <see cref="Timeout"/>); the step exits do not count toward
    /// <see cref="MaxExits"/> or <see cref="CallResult.Exits"/>. 0 (the default) traces nothing; at most
    /// <see cref="MaxTraceInstructions"/>. An arm64 micro-VM is stepped with the arm64 KVM_SET_GUEST_DEBUG and its software
    /// step exits (GUEST-ABI.md, "arm64 micro-VMs").
    /// </summary>
    public int TraceInstructions { get; init; }

    /// <summary>
    /// How a snapshot's pages reach guest memory when a micro-VM is created from it or restored to it
    /// (<see cref="SnapshotRestoreMode"/>): eagerly by default; lazily, page by page on first use, where the kernel
    /// offers guest_memfd write(2) and KVM userfault (both proposals). <see cref="MicroVm.LastRestoreWasLazy"/> says
    /// which was used.
    /// </summary>
    public SnapshotRestoreMode SnapshotRestore { get; init; } = SnapshotRestoreMode.Eager;

    /// <summary>
    /// The guest's instruction set; null (the default) for the one the kernel's VMs run (<see cref="MicroVm.Architecture"/>
    /// says which: x86-64 on an x86 host, arm64 on an arm64 host or the emulated kernel's arm64 profile). Set, it must
    /// be the kernel's (else creation fails with a <see cref="MicroVmException"/>). An arm64 micro-VM
    /// (GUEST-ABI.md, "arm64 micro-VMs") takes the same calls, devices, limits, outcomes and <see cref="MicroVm.Reset"/>;
    /// what it does not have is refused at creation or at the call with a <see cref="MicroVmException"/> saying "not
    /// supported for arm64 micro-VMs": <see cref="VmType"/> other than the default, <see cref="Cpuid"/> other than
    /// <see cref="CpuidPolicy.Sandbox"/>. <see cref="TraceInstructions"/> single-steps an arm64 vCPU with the arm64
    /// KVM_SET_GUEST_DEBUG (software step exits, EC 0x32) and records each PC and instruction word; a lazy
    /// <see cref="SnapshotRestore"/> works as on x86-64 where the kernel offers guest_memfd write(2) and KVM userfault.
    /// </summary>
    public GuestArchitecture? Architecture { get; init; }

    /// <summary>The shortest SVE vector length, 128 bits (one quadword: Arm ARM D19.2.163 ZCR_EL1.LEN = 0).</summary>
    public const int MinSveVectorBits = 128;

    /// <summary>The longest SVE vector length the architecture allows, 2048 bits (ZCR_EL1.LEN = 15; SVE_VQ_MAX 16).</summary>
    public const int MaxSveVectorBits = 2048;

    /// <summary>
    /// An arm64 micro-VM whose vCPU has SVE (GUEST-ABI.md, "arm64 micro-VMs"), with this vector length in bits: null
    /// (the default) for none — an SVE instruction is then UNDEFINED, a <see cref="GuestOutcome.Exception"/> with
    /// ESR_EL1.EC 0 — else a multiple of <see cref="MinSveVectorBits"/> up to <see cref="MaxSveVectorBits"/> that the
    /// kernel's vCPUs offer. The vCPU is initialised with KVM_ARM_VCPU_SVE, its KVM_REG_ARM64_SVE_VLS narrowed to
    /// this length and every shorter one the host implements (the kernel hides none of those: guest.c set_sve_vls),
    /// then KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_SVE) — the order of reset.c and guest.c, before the vCPU first runs —;
    /// each initialisation and <see cref="MicroVm.Reset"/> sets CPACR_EL1.ZEN (and FPEN) so EL1 code may use SVE and
    /// ZCR_EL1.LEN so that it runs at this length. Reset zeroes Z0–Z31, P0–P15 and FFR (KVM_ARM_VCPU_INIT again:
    /// reset.c kvm_vcpu_reset_sve); a snapshot holds them with the other registers, and loads only into a micro-VM with
    /// the same vector lengths. A length the kernel does not offer, a kernel without SVE (KVM_CAP_ARM_SVE) or an
    /// x86-64 micro-VM is refused with a <see cref="MicroVmSveException"/> naming the length asked for.
    /// </summary>
    public int? Arm64SveVectorBits { get; init; }

    /// <summary>
    /// A gdb stub (the GDB remote serial protocol over TCP; docs/sandbox.md, "Debugging a guest with gdb"): the
    /// micro-VM listens on this endpoint from its creation (<see cref="MicroVm.DebuggerEndpoint"/> is the bound one, a
    /// port of 0 resolved) and every call stops before its first instruction until gdb connects
    /// (<c>target remote HOST:PORT</c>) and resumes it; registers, memory (guest-physical), single steps and up to four
    /// breakpoints (the host's debug registers) are gdb's, the call's end is its exit (<c>W</c>) or its signal
    /// (<c>X</c>). The wall-clock limit (<see cref="Timeout"/>) counts only the time the guest runs, not the time it
    /// waits for gdb or stands stopped in it; a cancellation or disposal still ends the call. A lost connection or
    /// gdb's <c>detach</c> lets the call run on undebugged; <c>kill</c> ends it as <see cref="GuestOutcome.Cancelled"/>.
    /// gdb's interrupt (Ctrl-C) stops a running guest. An arm64 micro-VM's call stops at the trampoline that enters the
    /// function. Null (the default): none. Not for <see cref="VmType.Snp"/> or <see cref="VmType.Tdx"/> micro-VMs (their
    /// registers are sealed) nor together with <see cref="TraceInstructions"/>: refused with a <see cref="MicroVmException"/>.
    /// </summary>
    public System.Net.IPEndPoint? GdbEndpoint { get; init; }

    /// <summary>The refusal of an option an arm64 micro-VM does not have, or null when every option is usable.</summary>
    internal string? Arm64Refusal()
    {
        string? what = VmType != VmType.Default ? $"VmType {VmType}"
            : Cpuid != CpuidPolicy.Sandbox ? $"Cpuid {Cpuid} (arm64 has no CPUID)"
            : null;
        return what is null ? null : $"MicroVmOptions.{what}: not supported for arm64 micro-VMs";
    }

    internal void Validate()
    {
        if (Architecture is { } arch && !Enum.IsDefined(arch))
            throw new MicroVmException($"MicroVmOptions.Architecture: {arch} is not a GuestArchitecture");
        if (TraceInstructions is < 0 or > MaxTraceInstructions)
            throw new MicroVmException($"MicroVmOptions.TraceInstructions must be in [0 (off), {MaxTraceInstructions}], not {TraceInstructions}");
        if (Layout.CheckMemorySize(MemorySize) is string problem) throw new MicroVmException($"MicroVmOptions.MemorySize: {problem}");
        if (Timeout <= TimeSpan.Zero && Timeout != System.Threading.Timeout.InfiniteTimeSpan)
            throw new MicroVmException($"MicroVmOptions.Timeout must be positive or infinite, not {Timeout}");
        if (MaxExits <= 0) throw new MicroVmException($"MicroVmOptions.MaxExits must be positive, not {MaxExits}");
        if (!Enum.IsDefined(Cpuid)) throw new MicroVmException($"MicroVmOptions.Cpuid: {Cpuid} is not a CpuidPolicy");
        if (!Enum.IsDefined(SnapshotRestore)) throw new MicroVmException($"MicroVmOptions.SnapshotRestore: {SnapshotRestore} is not a SnapshotRestoreMode");
        if (!Enum.IsDefined(DirectMap)) throw new MicroVmException($"MicroVmOptions.DirectMap: {DirectMap} is not a DirectMapUse");
        if (GdbEndpoint is not null && TraceInstructions > 0)
            throw new MicroVmException("MicroVmOptions.GdbEndpoint and TraceInstructions: a call is either traced or debugged, not both");
        if (GdbEndpoint is not null && VmType is VmType.Snp or VmType.Tdx)
            throw new MicroVmException($"MicroVmOptions.GdbEndpoint: a {VmType} micro-VM's registers are sealed; it cannot be debugged");
        if (ConsoleCapacity < 0) throw new MicroVmException($"MicroVmOptions.ConsoleCapacity must not be negative, not {ConsoleCapacity}");
        if (Arm64SveVectorBits is int bits && (bits is < MinSveVectorBits or > MaxSveVectorBits || bits % MinSveVectorBits != 0))
        {
            throw new MicroVmSveException(bits, [],
                $"MicroVmOptions.Arm64SveVectorBits: {bits} bits is not an SVE vector length (a multiple of {MinSveVectorBits} in [{MinSveVectorBits}, {MaxSveVectorBits}]: Arm ARM ZCR_EL1.LEN)");
        }
    }
}
