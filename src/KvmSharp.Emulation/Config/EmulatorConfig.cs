// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation;

/// <summary>
/// What kernel the <see cref="EmulatedKernel"/> pretends to be: architecture, Kconfig, tree generation, creatable VM
/// types and a few host facts. Immutable; use the presets and <c>with</c> to vary one switch.
/// </summary>
public sealed record EmulatorConfig
{
    /// <summary>The architecture the emulated kernel answers for; x86_64 by default.</summary>
    public Architecture Architecture { get; init; } = Architecture.X86_64;

    /// <summary>
    /// The kernel tree whose uAPI the emulator follows (which ioctls, caps and flags exist); Linux 6.18 by default.
    /// </summary>
    public KernelGeneration Generation { get; init; } = KernelGeneration.Linux618;

    /// <summary>
    /// Module parameter <c>kvm.gmem_in_place_conversion</c> of [PATCH v8 09/46] (read-only, default
    /// !KVM_VM_MEMORY_ATTRIBUTES). Only meaningful with <see cref="KernelGeneration.InPlaceConversionV8"/>.
    /// </summary>
    public bool GmemInPlaceConversion { get; init; }

    /// <summary>
    /// The build switches of the emulated kernel (e.g. CONFIG_KVM_GUEST_MEMFD); must be possible for
    /// <see cref="Generation"/>.
    /// </summary>
    public Kconfig Kconfig { get; init; } = new();

    /// <summary>VM types KVM_CREATE_VM accepts (x86: KVM_X86_*_VM; arm64 knows only 0).</summary>
    public IReadOnlySet<uint> VmTypes { get; init; } = new HashSet<uint> { KvmConstants.KVM_X86_DEFAULT_VM };

    /// <summary>
    /// Number of the proposed KVM_CAP_GUEST_MEMFD_FLAGS_HI (bits 63:32 of the supported flags, seed 000 thread);
    /// null = not allocated, the cap answers 0 like any unknown cap.
    /// </summary>
    public int? GuestMemfdFlagsHiCap { get; init; }

    /// <summary>
    /// guest_memfd flags accepted beyond MMAP|INIT_SHARED, with no behaviour of their own (e.g. a future bit above 31
    /// to exercise KVM_CAP_GUEST_MEMFD_FLAGS_HI). NO_DIRECT_MAP with its behaviour is <see cref="GuestMemfdNoDirectMap"/>;
    /// both at once are refused.
    /// </summary>
    public ulong ExtraGuestMemfdFlags { get; init; }

    /// <summary>
    /// Applies "[PATCH v12 00/16] Direct Map Removal Support for guest_memfd" (unmerged, on 6.18+):
    /// GUEST_MEMFD_FLAG_NO_DIRECT_MAP (1 &lt;&lt; 2) in KVM_CAP_GUEST_MEMFD_FLAGS (always on /dev/kvm; per VM as
    /// kvm_arch_gmem_supports_no_direct_map decides, see <see cref="CanSetDirectMap"/> and <see cref="Arm64Stage2Fwb"/>),
    /// and AS_NO_DIRECT_MAP on such files (GUP refused). Off in every preset; never on in a LikeThisHost preset, which
    /// the differential fuzzer compares with the real kernel.
    /// </summary>
    public bool GuestMemfdNoDirectMap { get; init; }

    /// <summary>
    /// Applies "[PATCH v7 1/2] KVM: guest_memfd: add generic population via write" (Nikita Kalyazin, 2025-11-14,
    /// unmerged): GUEST_MEMFD_FLAG_WRITE in KVM_CAP_GUEST_MEMFD_FLAGS wherever INIT_SHARED is offered, write()/pwrite()
    /// of whole pages on such files, and default_llseek + FMODE_PWRITE on every guest_memfd file. The bit is
    /// 1 &lt;&lt; 3, not v7's 1 &lt;&lt; 2: v7 and the direct map removal series (<see cref="GuestMemfdNoDirectMap"/>) both
    /// claim bit 2, and the one tree that carries both (Firecracker's secret-hiding 6.18 patches, 0060) moved WRITE to
    /// bit 3. Off in every preset; never on in a LikeThisHost preset, which the differential fuzzer compares with the
    /// real kernel.
    /// </summary>
    public bool GuestMemfdWrite { get; init; }

    /// <summary>
    /// Applies "[PATCH v3 00/15] KVM: Introduce KVM Userfault" (James Houghton, 2025-06-18, unmerged; x86 only here):
    /// KVM_CAP_USERFAULT (<see cref="UserfaultCap"/>) answers 1, KVM_MEM_USERFAULT is a valid memslot flag (also on
    /// guest_memfd slots, which may then change flags but still not move), and a vCPU fault on a page whose bit is set
    /// in the slot's userfault_bitmap fails KVM_RUN with EFAULT and a KVM_EXIT_MEMORY_FAULT carrying
    /// KVM_MEMORY_EXIT_FLAG_USERFAULT (KvmMain/Userfault.cs). Off in every preset; never on in a LikeThisHost preset.
    /// </summary>
    public bool KvmUserfault { get; init; }

    /// <summary>
    /// The number KVM_CAP_USERFAULT answers to with <see cref="KvmUserfault"/>: 243 in [PATCH v3 07/15], which
    /// upstream 6.17 gave to KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED (an x86 kernel answers 0 there).
    /// </summary>
    public int UserfaultCap { get; init; } = KvmCaps.KVM_CAP_USERFAULT;

    /// <summary>
    /// x86: the CR4 bits a vCPU may hold follow its guest CPUID, as upstream 6.18 has it (cpuid.c kvm_vcpu_after_set_cpuid
    /// sets vcpu->arch.cr4_guest_rsvd_bits = __cr4_reserved_bits(guest_cpu_cap_has, vcpu), also at vCPU creation, so a
    /// vCPU without KVM_SET_CPUID2 may hold only VME … OSXMMEXCPT): KVM_SET_SREGS refuses the others with EINVAL and a
    /// guest MOV to CR4 with #GP(0) (X86/SregsRules.cs Cr4ReservedBits). On in the upstream presets; off in
    /// <see cref="LikeThisHost"/>, whose kernel (kvm_pvm) accepts the same CR4 bits (0x750FFF) with or without a CPUID
    /// (HostDeviations.KvmPvmKeepsCr4BitsTheGuestCpuidLacks).
    /// </summary>
    public bool X86Cr4ReservedFromGuestCpuid { get; init; } = true;

    /// <summary>
    /// x86: a page fault pushing an event's frame (the stack page not present or read-only; not INT n's) behaves as on kvm_pvm, which
    /// delivers a non-PVM guest's events in software: it loads no CR2, and while an exception's frame is pushed it is
    /// #DF(0) at once (so an IST #PF gate does not help), while an interrupt's frame it is delivered as #PF — then the
    /// double-fault rules as usual (X86/Emulate/X86Emulator.Exceptions.cs DeliverException;
    /// HostDeviations.KvmPvmDoubleFaultFromAFramePushLeavesCr2, observed on Linux 6.18 kvm_pvm). Off in the upstream
    /// presets, where the CPU loads CR2 for the page fault and Table 6-5 of Intel SDM Vol. 3A 6.15 decides the vector
    /// (upstream KVM delivers the first event with its payload, svm_inject_exception → kvm_deliver_exception_payload);
    /// on in <see cref="LikeThisHost"/>.
    /// </summary>
    public bool X86FramePushFaultLeavesCr2 { get; init; }

    /// <summary>
    /// x86: data breakpoints (DR7 RW = 01 write, RW = 11 read or write) are raised, as VMX/SVM hardware raises them
    /// once KVM has loaded the guest's DR0–DR3/DR7 or, under KVM_GUESTDBG_USE_HW_BP, the host's (x86.c kvm_update_dr0123,
    /// kvm_update_dr7): a trap after the accessing instruction (Intel SDM Vol. 3A 18.2.4, 18.3.1.2; a REP string after the
    /// iteration that hit), #DB intercepted — KVM_EXIT_DEBUG while the host debugs (svm.c db_interception, vmx.c
    /// handle_exception_nmi DB_VECTOR), else kvm_queue_exception_p(DB_VECTOR, dr6) to the guest. On in the upstream
    /// presets; off in <see cref="LikeThisHost"/>, whose kernel (kvm_pvm) runs every guest instruction through KVM's
    /// emulator, which checks no data breakpoint (observed on Linux 6.18 kvm_pvm: a write to an armed address runs on,
    /// host and guest; conformance GuestDebug.host_breakpoint_kinds). X86/Emulate/X86Emulator.GuestDebug.cs.
    /// </summary>
    public bool X86DataBreakpoints { get; init; } = true;

    /// <summary>
    /// x86: MSR_IA32_MISC_ENABLE of a new vCPU. Upstream kvm_vcpu_reset (init_event = false) sets
    /// MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL | MSR_IA32_MISC_ENABLE_BTS_UNAVAIL = 0x1800, the default; <see cref="LikeThisHost"/>
    /// has kvm_pvm's 0x1 (FAST_STRING; HostDeviations.KvmPvmMiscEnableDiffers, probed on this host: KVM_GET_MSRS 0x1a0
    /// right after KVM_CREATE_VCPU). Only the value at creation: a guest WRMSR still follows upstream's PMU_RO check.
    /// </summary>
    public ulong X86MiscEnableAtCreation { get; init; } = X86.MsrLists.MiscEnablePmuRo;

    /// <summary>
    /// x86: KVM_GET_MSR_INDEX_LIST and KVM_GET_MSR_FEATURE_INDEX_LIST answer this host's lists (kvm_pvm on EPYC Genoa:
    /// 40 and 4 MSRs, X86/MsrLists.cs KvmPvmHost*), the unmodelled ones readable as 0 and writable with 0 by the host
    /// (kvm_do_msr_access). Off: the emulator's reduced lists of the MSRs it models (18 and 3), as in the upstream
    /// presets. On in <see cref="LikeThisHost"/>.
    /// </summary>
    public bool X86MsrListsOfThisHost { get; init; }

    /// <summary>
    /// x86: the in-kernel irqchip exists (KVM_CREATE_IRQCHIP, KVM_CAP_SPLIT_IRQCHIP, KVM_IRQ_LINE, GSI routing,
    /// KVM_SIGNAL_MSI, KVM_GET/SET_LAPIC; X86/Irqchip/). On in every preset, as on every x86 KVM; off gives a kernel
    /// whose VMs can have no irqchip (those ioctls ENOTTY, the caps 0). Ignored on arm64 (its vGIC is not modelled).
    /// </summary>
    public bool X86InKernelIrqchip { get; init; } = true;

    /// <summary>
    /// The host's can_set_direct_map() (include/linux/set_memory.h): true on x86_64; on arm64 only with a page-granular
    /// direct map (rodata_full, the default, debug_pagealloc or KFENCE). Only read with <see cref="GuestMemfdNoDirectMap"/>.
    /// </summary>
    public bool CanSetDirectMap { get; init; } = true;

    /// <summary>
    /// arm64 cpus_have_final_cap(ARM64_HAS_STAGE2_FWB) (FEAT_S2FWB, ARMv8.4): [PATCH v12 09/16] requires it for
    /// NO_DIRECT_MAP. Only read on arm64 with <see cref="GuestMemfdNoDirectMap"/>.
    /// </summary>
    public bool Arm64Stage2Fwb { get; init; } = true;

    /// <summary>KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES: 250 in [PATCH v8 17/46]; unmerged, may change.</summary>
    public int GuestMemfdMemoryAttributesCap { get; init; } = 250;

    /// <summary>
    /// SNP certificate fetching ("SEV-SNP: Add KVM support for SNP certificate fetching", [PATCH v7 0/2], Michael Roth,
    /// 2026-01-09; merged after 6.18): the number of KVM_EXIT_SNP_REQ_CERTS (42 in v7, 43 upstream), with
    /// KVM_SEV_SNP_ENABLE_REQ_CERTS and the KVM_X86_SEV_SNP_REQ_CERTS attribute. Null (every preset): 6.18, which has
    /// none of them and answers extended guest requests with an empty certificate table.
    /// </summary>
    public uint? SnpReqCertsExit { get; init; }

    /// <summary>The unmerged uAPI numbers this configuration answers to, for <c>Kvm.Open(kernel, proposals: …)</c>.</summary>
    public UapiProposals Proposals => UapiProposals.Default with
    {
        SnpReqCertsExit = SnpReqCertsExit ?? UapiProposals.Default.SnpReqCertsExit,
        GuestMemfdFlagsHiCap = GuestMemfdFlagsHiCap,
        GuestMemfdMemoryAttributesCap = GuestMemfdMemoryAttributesCap,
        UserfaultCap = UserfaultCap,
        // A HugeTLB encoding only where bit 2 means HUGETLB (GmemHugetlb.Conflict: NO_DIRECT_MAP claims it too).
        GuestMemfdHugetlb = GuestMemfd.GmemHugetlb.Conflict(this) is null ? GuestMemfdHugetlb : GuestMemfdHugetlbEncoding.None,
    };

    /// <summary>
    /// Seed 002 variant ("Introduce KVM_SET_MEMORY_ATTRIBUTES2", Mar 2026): KVM_SET_MEMORY_ATTRIBUTES2 on the VM fd,
    /// sharing the handler of KVM_SET_MEMORY_ATTRIBUTES and rejecting non-zero reserved words.
    /// </summary>
    public bool VmMemoryAttributes2 { get; init; }

    /// <summary>KVM_CAP_MEMORY_ATTRIBUTES2 of seed 002 (248 there; 245/247 in other RFCs).</summary>
    public int MemoryAttributes2Cap { get; init; } = 248;

    /// <summary>x86 <c>tdp_enabled</c>: KVM_CAP_PRE_FAULT_MEMORY and the largest GPA (arch/x86/kvm/mmu).</summary>
    public bool TdpEnabled { get; init; } = true;

    /// <summary>
    /// Guest physical address bits KVM maps (x86 kvm_mmu_max_gfn(): 52 with shadow paging / host MAXPHYADDR with TDP;
    /// arm64: the VM's IPA size, 40 by default).
    /// </summary>
    public int MaxGpaBits { get; init; } = 52;

    /// <summary>KVM_MAX_VCPUS of the arch (KVM_CAP_MAX_VCPUS).</summary>
    public int MaxVcpus { get; init; } = 1024;

    /// <summary>
    /// Online CPUs (x86.c / arm.c kvm_vm_ioctl_check_extension: KVM_CAP_NR_VCPUS = min(num_online_cpus(),
    /// KVM_MAX_VCPUS)); by default this machine's (<see cref="HostOnlineCpus"/>, not the process's CPU affinity).
    /// </summary>
    public int OnlineCpus { get; init; } = HostOnlineCpus.Count;

    /// <summary>
    /// Highest user address + 1 for access_ok() (x86_64 4-level paging: TASK_SIZE_MAX = 2^47 - 4096; arm64 48-bit
    /// VA: 2^48).
    /// </summary>
    public ulong TaskSizeMax { get; init; } = (1UL << 47) - 4096;

    /// <summary>
    /// Online NUMA nodes with memory (node_states[N_MEMORY] = nodes 0 … NumaNodes-1, all allowed by the cpuset; the
    /// emulated CPUs sit on node 0, so numa_node_id() is 0). 1 by default, like this host
    /// (/sys/devices/system/node/online = 0); at most 64.
    /// </summary>
    public int NumaNodes { get; init; } = 1;

    /// <summary>
    /// MAX_NUMNODES (1 &lt;&lt; CONFIG_NODES_SHIFT): the bits of a user node mask that may be set at all
    /// (mm/mempolicy.c get_nodes). 1024 by default: probed on this host, where a set bit 512 is accepted by mbind and
    /// bit 1024 is EINVAL (CONFIG_NODES_SHIFT=10).
    /// </summary>
    public int MaxNumNodes { get; init; } = 1024;

    /// <summary>Arch capabilities the emulator does not model, answered as given (on /dev/kvm).</summary>
    public IReadOnlyDictionary<int, long> OtherSystemCapabilities { get; init; } = new Dictionary<int, long>();

    /// <summary>Arch capabilities the emulator does not model, answered as given (on a VM fd).</summary>
    public IReadOnlyDictionary<int, long> OtherVmCapabilities { get; init; } = new Dictionary<int, long>();

    /// <summary>
    /// Statistics a kernel build lists after upstream's VM table (KVM_GET_STATS_FD on a VM fd), as cumulative
    /// counters the emulator leaves at 0. Empty for upstream; <see cref="LikeThisHost"/> has kvm_pvm's.
    /// </summary>
    public IReadOnlyList<string> ExtraVmStats { get; init; } = [];

    /// <summary>The same after upstream's vCPU table (KVM_GET_STATS_FD on a vCPU fd).</summary>
    public IReadOnlyList<string> ExtraVcpuStats { get; init; } = [];

    /// <summary>
    /// Applies guest_memfd HugeTLB (unmerged; GuestMemfd/GmemHugetlb.cs): <see cref="GuestMemfdHugetlbEncoding.RfcV2FlagBits"/>
    /// ("[RFC PATCH v2 00/51] 1G page support for guest_memfd": GUEST_MEMFD_FLAG_HUGETLB (1 &lt;&lt; 2) and log2(size) in
    /// flags 63:58, reported through KVM_CAP_GUEST_MEMFD_FLAGS_HI) or <see cref="GuestMemfdHugetlbEncoding.PageOrderField"/>
    /// (the 6.18-based branch: HUGETLB plus a page order in kvm_create_guest_memfd, refused with INIT_SHARED). Pages
    /// come from <see cref="HugetlbPools"/>. None (off) in every preset; never on in a LikeThisHost preset. Bit 2 is
    /// also NO_DIRECT_MAP's: the two proposals cannot be on together.
    /// </summary>
    public GuestMemfdHugetlbEncoding GuestMemfdHugetlb { get; init; }

    /// <summary>
    /// The host's HugeTLB hstates and their nr_hugepages, keyed by page order (9 = 2 MiB, 18 = 1 GiB): a size that is
    /// not a key has no hstate (creation EINVAL); a guest_memfd reserves all its huge pages at creation (ENOMEM when
    /// the pool has too few free). Default: both x86 sizes, 0 pages each. Only read with <see cref="GuestMemfdHugetlb"/>.
    /// </summary>
    public IReadOnlyDictionary<int, long> HugetlbPools { get; init; } = new Dictionary<int, long> { [9] = 0, [18] = 0 };

    /// <summary>
    /// This configuration with guest_memfd HugeTLB in <paramref name="encoding"/> and pools of
    /// <paramref name="pages2M"/> 2 MiB and <paramref name="pages1G"/> 1 GiB pages.
    /// </summary>
    public EmulatorConfig WithGuestMemfdHugetlb(GuestMemfdHugetlbEncoding encoding, long pages2M = 16, long pages1G = 1) => this with
    {
        GuestMemfdHugetlb = encoding,
        HugetlbPools = new Dictionary<int, long> { [21 - PageShift] = pages2M, [30 - PageShift] = pages1G },
    };

    /// <summary>
    /// The host CPU as KVM shows it (x86_64 only): KVM_GET_SUPPORTED_CPUID, kvm_caps.supported_xcr0 and the XSAVE layout.
    /// <see cref="HostMatching.LikeThisHostAsItIs"/> picks the model of the machine running now.
    /// </summary>
    public X86.X86CpuModel X86Cpu { get; init; } = X86.X86CpuModel.EpycMilan;

    /// <summary>
    /// The emulated arm64 host CPU's variable parts (pointer authentication, SVE; arm64 only). The default is the
    /// Neoverse-N1-like host without PAuth or SVE.
    /// </summary>
    public KvmSharp.Emulation.Arm64.Arm64CpuModel Arm64Cpu { get; init; } = KvmSharp.Emulation.Arm64.Arm64CpuModel.NeoverseN1;

    /// <summary>
    /// The kvm module's halt-polling parameters (<see cref="HaltPollParameters"/>; KvmMain/HaltPolling.cs); null: the
    /// architecture's 6.18 defaults. <see cref="LikeThisHost"/> reads this machine's /sys/module/kvm/parameters.
    /// </summary>
    public HaltPollParameters? HaltPoll { get; init; }

    /// <summary>The host page size: guest_memfd pages are backed 1:1 by host pages.</summary>
    public static int PageSize => Environment.SystemPageSize;

    /// <summary>log2 of <see cref="PageSize"/> (PAGE_SHIFT).</summary>
    public static int PageShift => System.Numerics.BitOperations.Log2((uint)PageSize);

    /// <summary>
    /// This project's machines (Linux 6.18.44 mainline, kvm_pvm): x86_64, VM types {DEFAULT} only, no TDP (no
    /// KVM_CAP_PRE_FAULT_MEMORY), no SMM (one address space), no generic memory attributes
    /// (KVM_CAP_MEMORY_ATTRIBUTES = 0), other caps as read from /dev/kvm. Two builds have been seen: with
    /// CONFIG_KVM_GUEST_MEMFD (KVM_CAP_GUEST_MEMFD_FLAGS = 0x3; Nov 2026) and without it (KVM_CAP_GUEST_MEMFD = 0,
    /// KVM_CREATE_GUEST_MEMFD ENOTTY; Dec 2026), identical in every other capability; and two CPUs
    /// (<see cref="X86.X86CpuModel.EpycMilan"/>, <see cref="X86.X86CpuModel.EpycGenoa"/>): the CPU is always the
    /// machine's own (<see cref="HostMatching.HostCpuOrDefault"/>).
    /// <see cref="HostMatching.LikeThisHostAsItIs"/> picks the one the machine running now is. An earlier
    /// <paramref name="generation"/> gives the same machine on an older kernel (what a VMM meets on a host that was
    /// not upgraded): without TDP there is no KVM_X86_SW_PROTECTED_VM, so before 6.18 it can have no guest_memfd.
    /// </summary>
    public static EmulatorConfig LikeThisHost(bool guestMemfd = true, KernelGeneration generation = KernelGeneration.Linux618) => new()
    {
        Architecture = Architecture.X86_64,
        Generation = generation,
        Kconfig = new Kconfig { KVM_GUEST_MEMFD = guestMemfd },
        VmTypes = new HashSet<uint> { KvmConstants.KVM_X86_DEFAULT_VM },
        TdpEnabled = false,
        MaxGpaBits = 52,
        MaxVcpus = 1024,
        // The CPU of the machine running now when it is one of the known kvm_pvm machines, else Milan.
        X86Cpu = HostMatching.HostCpuOrDefault,
        OtherSystemCapabilities = HostCapabilitySnapshot.System,
        OtherVmCapabilities = HostCapabilitySnapshot.Vm,
        // kvm_pvm's statistics after upstream 6.18's tables, read from this host's stats files (HostStatsSnapshot).
        ExtraVmStats = HostStatsSnapshot.Vm,
        ExtraVcpuStats = HostStatsSnapshot.Vcpu,
        // kvm_pvm keeps CR4 bits the guest CPUID lacks (HostDeviations.KvmPvmKeepsCr4BitsTheGuestCpuidLacks).
        X86Cr4ReservedFromGuestCpuid = false,
        // The kvm module's halt_poll_ns* as this machine has them (200000, 2, 10000, 2 seen; x86's defaults without kvm).
        HaltPoll = HaltPollParameters.Host,
        // kvm_pvm's frame-push page fault (HostDeviations.KvmPvmDoubleFaultFromAFramePushLeavesCr2).
        X86FramePushFaultLeavesCr2 = true,
        // kvm_pvm's emulator checks no data breakpoint (X86DataBreakpoints).
        X86DataBreakpoints = false,
        // kvm_pvm's MISC_ENABLE of a new vCPU (FAST_STRING, HostDeviations.KvmPvmMiscEnableDiffers).
        X86MiscEnableAtCreation = 1,
        // KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST as probed on this host (X86/MsrLists.cs).
        X86MsrListsOfThisHost = true,
    };

    /// <summary>
    /// A full-featured x86_64 host: all six VM types (SW_PROTECTED, SEV, SEV-ES, SNP, TDX configured), TDP, SMM,
    /// generic memory attributes; with <paramref name="inPlaceConversion"/> the v8 in-place conversion tree with
    /// <c>gmem_in_place_conversion=1</c>.
    /// </summary>
    public static EmulatorConfig X86_64(bool inPlaceConversion = false) => inPlaceConversion
        ? X86_64(KernelGeneration.InPlaceConversionV8) with { GmemInPlaceConversion = true }
        : X86_64(KernelGeneration.Linux618);

    /// <summary>
    /// A full-featured x86_64 host of <paramref name="generation"/>: every VM type that release knows, configured
    /// (KVM_SW_PROTECTED_VM, KVM_AMD_SEV from 6.10, KVM_INTEL_TDX from 6.16), with what they select in that release
    /// (guest_memfd and generic memory attributes from 6.8, the arch gmem hooks from 6.11), TDP and SMM.
    /// <c>gmem_in_place_conversion</c> stays off (set it with <c>with</c> on <see cref="KernelGeneration.InPlaceConversionV8"/>).
    /// </summary>
    public static EmulatorConfig X86_64(KernelGeneration generation)
    {
        bool gmem = generation.HasGuestMemfd();
        bool hooks = generation.HasGmemPopulate();
        uint top = generation.MaxX86VmType();
        return new EmulatorConfig
        {
            Architecture = Architecture.X86_64,
            Generation = generation,
            Kconfig = new Kconfig
            {
                KVM_GUEST_MEMFD = gmem,
                KVM_GENERIC_MEMORY_ATTRIBUTES = gmem,
                KVM_SW_PROTECTED_VM = gmem,
                HAVE_KVM_ARCH_GMEM_PREPARE = hooks,
                HAVE_KVM_ARCH_GMEM_INVALIDATE = hooks,
                HAVE_KVM_ARCH_GMEM_POPULATE = hooks,
                KVM_SMM = true,
            },
            VmTypes = AllX86VmTypes.Where(t => t <= top).ToHashSet(),
            TdpEnabled = true,
            MaxGpaBits = 52,
            MaxVcpus = 4096,
            OtherSystemCapabilities = CommonX86Capabilities,
            OtherVmCapabilities = CommonX86Capabilities,
        };
    }

    /// <summary>An arm64 host (mainline 6.18): default VM type only, no memory attributes, 40-bit IPA.</summary>
    public static EmulatorConfig Arm64() => Arm64(KernelGeneration.Linux618);

    /// <summary>
    /// An arm64 host of <paramref name="generation"/>: default VM type only, no memory attributes, 40-bit IPA;
    /// guest_memfd from 6.18 on.
    /// </summary>
    public static EmulatorConfig Arm64(KernelGeneration generation) => new()
    {
        Architecture = Architecture.Arm64,
        Generation = generation,
        Kconfig = new Kconfig { KVM_GUEST_MEMFD = generation.HasGmemMmap() },
        VmTypes = new HashSet<uint> { 0 },
        TdpEnabled = true,
        MaxGpaBits = 40,
        MaxVcpus = 512,
        TaskSizeMax = 1UL << 48,
        OtherSystemCapabilities = CommonArm64Capabilities,
        OtherVmCapabilities = CommonArm64Capabilities,
    };

    private static readonly uint[] AllX86VmTypes =
    [
        KvmConstants.KVM_X86_DEFAULT_VM, KvmConstants.KVM_X86_SW_PROTECTED_VM, KvmConstants.KVM_X86_SEV_VM,
        KvmConstants.KVM_X86_SEV_ES_VM, KvmConstants.KVM_X86_SNP_VM, KvmConstants.KVM_X86_TDX_VM,
    ];

    // A few generic answers every x86 KVM gives (arch/x86/kvm/x86.c kvm_vm_ioctl_check_extension).
    private static readonly Dictionary<int, long> CommonX86Capabilities = new()
    {
        [KvmCaps.KVM_CAP_IRQCHIP] = 1,
        [KvmCaps.KVM_CAP_HLT] = 1,
        [KvmCaps.KVM_CAP_SET_TSS_ADDR] = 1,
        [KvmCaps.KVM_CAP_SYNC_MMU] = 1,
        [KvmCaps.KVM_CAP_IMMEDIATE_EXIT] = 1,
        // The vCPU state ioctls of VcpuStateRules (this host: 1 each).
        [KvmCaps.KVM_CAP_MP_STATE] = 1,
        [KvmCaps.KVM_CAP_VCPU_EVENTS] = 1,
        [KvmCaps.KVM_CAP_DEBUGREGS] = 1,
        [KvmCaps.KVM_CAP_XCRS] = 1,
        // KVM_SET_GUEST_DEBUG (X86Emulator.GuestDebug.cs): x86.c "case KVM_CAP_SET_GUEST_DEBUG: r = 1" and
        // "case KVM_CAP_SET_GUEST_DEBUG2: return KVM_GUESTDBG_VALID_MASK" (ENABLE | SINGLESTEP | USE_SW_BP | USE_HW_BP |
        // INJECT_DB | INJECT_BP | BLOCKIRQ; this host: 1 and 0x1f0003).
        [KvmCaps.KVM_CAP_SET_GUEST_DEBUG] = 1,
        [KvmCaps.KVM_CAP_SET_GUEST_DEBUG2] = 0x1f0003,
        // x86.c kvm_vm_ioctl_check_extension "r = 1" for KVM_CAP_EXT_CPUID (7; KVM_SET_CPUID2 exists),
        // KVM_CAP_SET_IDENTITY_MAP_ADDR (37; the ioctl is X86Kvm's) and KVM_CAP_X86_ROBUST_SINGLESTEP (51). QEMU's
        // target/i386/kvm/kvm.c kvm_arch_required_capabilities lists all three.
        [KvmCaps.KVM_CAP_EXT_CPUID] = 1,
        [KvmCaps.KVM_CAP_SET_IDENTITY_MAP_ADDR] = 1,
        [KvmCaps.KVM_CAP_X86_ROBUST_SINGLESTEP] = 1,
        // kvm_main.c kvm_vm_ioctl_check_extension_generic (CONFIG_KVM_MMIO): KVM_CAP_COALESCED_MMIO (15) answers
        // KVM_COALESCED_MMIO_PAGE_OFFSET, KVM_CAP_COALESCED_PIO (162) 1 (KvmMain/CoalescedMmio.cs; this host: 2 and 1).
        [KvmCaps.KVM_CAP_COALESCED_MMIO] = KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_X86,
        [KvmCaps.KVM_CAP_COALESCED_PIO] = 1,
    };

    // arch/arm64/kvm/arm.c kvm_vm_ioctl_check_extension [D].
    private static readonly Dictionary<int, long> CommonArm64Capabilities = new()
    {
        [KvmCaps.KVM_CAP_SYNC_MMU] = 1,
        [KvmCaps.KVM_CAP_IMMEDIATE_EXIT] = 1,
        // arm.c: KVM_CAP_SET_GUEST_DEBUG r = 1; KVM_CAP_SET_GUEST_DEBUG2 → arm64's KVM_GUESTDBG_VALID_MASK (ENABLE |
        // SINGLESTEP | USE_SW_BP | USE_HW). Arm64VcpuIoctls checks the bits; the interpreter does not debug.
        [KvmCaps.KVM_CAP_SET_GUEST_DEBUG] = 1,
        [KvmCaps.KVM_CAP_SET_GUEST_DEBUG2] = KvmSharp.Emulation.Arm64.Arm64VcpuIoctls.GuestDebugValidMask,
        // kvm_main.c kvm_vm_ioctl_check_extension_generic: KVM_CAP_COALESCED_MMIO → KVM_COALESCED_MMIO_PAGE_OFFSET (1 on
        // arm64), KVM_CAP_COALESCED_PIO → 1.
        [KvmCaps.KVM_CAP_COALESCED_MMIO] = KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_ARM64,
        [KvmCaps.KVM_CAP_COALESCED_PIO] = 1,
    };
}
