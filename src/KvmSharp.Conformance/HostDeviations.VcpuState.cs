// SPDX-License-Identifier: MIT
// Host deviations in vCPU state ioctls: registers, sregs, MSRs, TSC, CPUID, events, XSAVE, INIT.
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_REGS drops RFLAGS.VM (bit 17); every other bit, reserved ones included,
    /// reads back as written. Upstream keeps it (__set_regs → kvm_set_rflags → vmx_set_rflags / svm_set_rflags store
    /// the value outside vm86 emulation). Observed on Linux 6.18 kvm_pvm by the differential fuzzer (open,
    /// KVM_CREATE_VM, KVM_CREATE_VCPU 1, KVM_SET_REGS rflags 0x43813626751E329E → KVM_GET_REGS 0x43813626751C329E).
    /// The emulator keeps the upstream answer; the fuzzer steers around it (Fuzzing/ReportedDivergences.cs).
    /// </summary>
    public static bool KvmPvmDropsRflagsVm(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_SREGS with CR0.PG|PE outside long mode (EFER.LME clear, i.e. 32-bit
    /// paging) is accepted but CR0 then reads back without PG (0x80000031 → 0x31): this host runs no 32-bit paged
    /// guests. Upstream __set_sregs_common stores CR0 through kvm_x86_ops.set_cr0 as given (kvm_is_valid_cr0 allows
    /// PG with PE). Observed on Linux 6.18 kvm_pvm by the differential fuzzer (vCPU 1, GET/SET/GET_SREGS). The emulator
    /// keeps the upstream answer; the fuzzer steers around it.
    /// </summary>
    public static bool KvmPvmDropsCr0PgWithoutLongMode(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_MSRS of MSR_IA32_CR_PAT accepts values kvm_pat_valid refuses (upstream:
    /// x86.c kvm_set_msr_common MSR_IA32_CR_PAT "if (!kvm_pat_valid(data)) return 1", for host writes too). Observed
    /// on Linux 6.18 kvm_pvm: 0x0202020202020202 (type 2), 0x8 (bit 3) and 0x3 (type 3) are each written (1 MSR
    /// processed) and read back as written.
    /// </summary>
    public static bool KvmPvmPatNotValidated(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): MSR_IA32_MISC_ENABLE does not follow x86.c. A new vCPU reads 0x1 (FAST_STRING),
    /// not upstream's PEBS_UNAVAIL | BTS_UNAVAIL = 0x1800 (kvm_vcpu_reset, init_event = false); and a guest WRMSR that
    /// flips BTS_UNAVAIL (bit 11, in MSR_IA32_MISC_ENABLE_PMU_RO_MASK) is not #GP (upstream kvm_set_msr_common: a
    /// guest change of the PMU read-only bits returns 1 → #GP). Observed on Linux 6.18 kvm_pvm: KVM_GET_MSRS right
    /// after KVM_CREATE_VCPU; RDMSR, XOR EAX 0x800, WRMSR in a 64-bit guest delivers nothing.
    /// </summary>
    public static bool KvmPvmMiscEnableDiffers(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_MSRS of MSR_IA32_TSC is accepted (1 processed) but the next read is the
    /// host's TSC again (written 0x1000, read back about 0x29a0_92da_0747); upstream kvm_synchronize_tsc makes reads
    /// continue from the written value. Observed on Linux 6.18 kvm_pvm.
    /// </summary>
    public static bool KvmPvmTscWriteIgnored(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a vCPU's TSC offset is 0 and stays 0 — KVM_GET_DEVICE_ATTR of
    /// KVM_VCPU_TSC_CTRL/KVM_VCPU_TSC_OFFSET reads 0 on every new vCPU (the guest TSC is the host's: KVM_GET_MSRS of
    /// IA32_TSC 0x4a6e_23b9_83e1 beside the host's RDTSC 0x4a6e_23b9_8d8c), and KVM_SET_DEVICE_ATTR of 0x1000_0000_0000
    /// returns 0 but the next GET reads 0 again. Upstream kvm_synchronize_tsc(vcpu, NULL) starts a VM's TSC at 0 and
    /// kvm_arch_tsc_set_attr stores the offset. Observed on Linux 6.18 kvm_pvm. The same holds for the guest's own
    /// adjustments: a guest WRMSR of IA32_TSC_ADJUST = 2^32 (CPUID TSC_ADJUST set) is stored and read back, but the TSC
    /// read by KVM_GET_MSRS around the run advanced 261 121 cycles, not 2^32 (upstream adjust_tsc_offset_guest); a
    /// guest WRMSR of IA32_TSC = 0 leaves the TSC where it was while TSC_ADJUST takes the difference (TscAdjustRules).
    /// </summary>
    public static bool KvmPvmTscOffsetFixed(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): the TSC offset KVM_GET_DEVICE_ATTR(KVM_VCPU_TSC_OFFSET) reports (always 0,
    /// <see cref="KvmPvmTscOffsetFixed"/>) is not the one TSC synchronisation tracks, so writing the offset read back
    /// with KVM_SET_DEVICE_ATTR starts a new generation. Upstream kvm_arch_tsc_get_attr reads l1_tsc_offset, which
    /// kvm_synchronize_tsc set to kvm->arch.last_tsc_offset, and kvm_arch_tsc_set_attr's "matched" is
    /// "last_tsc_khz == virtual_tsc_khz &amp;&amp; last_tsc_offset == offset": the read-back value keeps the vCPUs matched.
    /// Observed on Linux 6.18 kvm_pvm (C probes, KVM_SET_CLOCK to recompute use_master_clock, then KVM_GET_CLOCK's flags):
    /// a new VM with two vCPUs reads flags 0xE; KVM_SET_DEVICE_ATTR of vCPU 0's offset = vCPU 1's read-back 0 → flags 0;
    /// likewise after a host write of IA32_TSC 12345 to vCPU 0, vCPU 1's offset set to 0 → flags 0. Every other rule of
    /// the generations follows upstream here with the values userspace passes (x86.c kvm_synchronize_tsc,
    /// __kvm_synchronize_tsc, kvm_track_tsc_matching): two equal non-zero offsets written to two vCPUs match (0xE);
    /// a host write of 0 joins the current generation, counted once per vCPU (three vCPUs: 0 until the third joins);
    /// a first non-zero host write starts a generation (user_set_tsc), later ones within ±0.9 s of the last write
    /// advanced by the time since join it, ±1.1 s do not; a vCPU whose virtual_tsc_khz differs from last_tsc_khz never
    /// joins; KVM_REQ_MASTERCLOCK_UPDATE is served only by a KVM_RUN of the synchronised vCPU itself, with the 6.7+
    /// condition of kvm_track_tsc_matching (TscSyncRules). The emulator keeps upstream's read-back offset.
    /// </summary>
    public static bool KvmPvmTscOffsetReadBackStartsAGeneration(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): MSR_MISC_FEATURES_ENABLES (0x140) takes any value, from the host and the guest,
    /// and MSR_PLATFORM_INFO's host write does not look at it. Upstream x86.c kvm_set_msr_common refuses a 0x140 value
    /// with a bit other than CPUID_FAULT (bit 0), or with CPUID_FAULT while MSR_PLATFORM_INFO lacks
    /// MSR_PLATFORM_INFO_CPUID_FAULT (supports_cpuid_fault), and a host write of MSR_PLATFORM_INFO without
    /// CPUID_FAULT while faulting is on (cpuid_fault_enabled). Observed on Linux 6.18 kvm_pvm (C probe,
    /// /tmp/cpuidfault/probe.c, and Conformance/Cases/CpuidFaulting.cs): KVM_SET_MSRS of 0x140 = 2, 3, 4, 0x80,
    /// 0xffffffff, 1 &lt;&lt; 63 each processed and read back; 0x140 = 1 taken with MSR_PLATFORM_INFO 0 (written by
    /// the host, or with KVM_X86_QUIRK_STUFF_FEATURE_MSRS disabled); MSR_PLATFORM_INFO = 0 taken with 0x140 = 1; a
    /// guest WRMSR of 0x140 = 2, 3 or 4 (real mode and 64-bit ring 0) is no #GP. What the stored bit 0 does is
    /// upstream's: CPUID at CPL 3 is #GP(0), at CPL 0 it runs (CpuidFaulting cpuid_faults_at_cpl_3). Everything else here matches upstream (the read-back,
    /// KVM_CAP_MSR_PLATFORM_INFO, do_set_msr's immutable MSR_PLATFORM_INFO after KVM_RUN). The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmMiscFeaturesEnablesUnchecked(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_CPUID2 rewrites some leaves of the table it stores (upstream keeps the
    /// given entries and changes only the runtime bits of kvm_update_cpuid_runtime: CPUID.1 EDX.APIC and ECX.OSXSAVE,
    /// CPUID.0xD EBX). Observed on Linux 6.18 kvm_pvm (AMD host), read back with KVM_GET_CPUID2 and with the CPUID
    /// instruction:
    /// <list type="bullet">
    /// <item>CPUID.1: ECX and EDX read back with the host's own bits added (ECX 0x76d81203, EDX 0x178bfbff for
    /// ECX = EDX = 0 given; ECX 0x11 given reads 0x76d81213), and four CPUID.0xD subleaves (0, 1, 2, 9, SIGNIFCANT_INDEX) are
    /// appended to the table: 2 entries given, 6 read back.</item>
    /// <item>CPUID.7.0: EBX/ECX/EDX are replaced (0x11/0x22/0x33 given → 0x219c038b/0x4/0x88000010); CPUID.7.1 reads
    /// back all zero.</item>
    /// <item>CPUID.0xD.0 given alone (EAX 7, EBX 0x240, ECX 0x340): with SIGNIFCANT_INDEX it reads back EAX 0x207 (the Milan
    /// host's supported_xcr0) and ECX 0x988, without the flag EAX 0 and ECX 0; CPUID.0xD.1 keeps EAX and reads ECX 0.
    /// XCR0's rules follow the table as rewritten: after EAX 1 with the flag KVM_SET_XCRS accepts 3, 7 and 0x207 (upstream
    /// only 1), after EAX 7 without it only 1 (upstream 3 and 7 too). Found with the vCPU state fuzz ops, which therefore
    /// set no leaf 0xD (src/KvmSharp.Fuzzing/VcpuStateOps.cs).</item>
    /// </list>
    /// Every other rule probed matches upstream: a table without leaves 1, 7 and 0xD is stored and answered verbatim
    /// (padding included), and after KVM_RUN the table as read back is accepted again while the table as given is not.
    /// </summary>
    public static bool KvmPvmSetCpuidRewritesLeaves(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): the CR4 bits a vCPU's CPUID does not offer stay valid for KVM_SET_SREGS.
    /// Upstream kvm_vcpu_after_set_cpuid sets cr4_guest_rsvd_bits = __cr4_reserved_bits(guest_cpu_cap_has, vcpu) and
    /// kvm_is_valid_cr4 refuses them (EINVAL). Observed on Linux 6.18 kvm_pvm: KVM_SET_CPUID2 of the supported table
    /// with XSAVE, VMX, PCID (leaf 1 ECX), FSGSBASE, SMEP, SMAP (7.0 EBX), UMIP, PKU, SHSTK, LA57 (7.0 ECX), IBT (7.0 EDX)
    /// and LAM (7.1 EAX) cleared reads back leaf 1 ECX 0xf7f83203, 7.0 EBX 0xf1bf03ab, ECX 0x5f46 (no PKU), EDX 0x10
    /// (the host's bits added back, HostDeviations.KvmPvmSetCpuidRewritesLeaves), and KVM_SET_SREGS still takes every
    /// CR4 bit it took before, 0x750FFF: CR4.PKE included although the CPUID held has no PKU (upstream: EINVAL).
    /// The emulator, built like this host, does the same.
    /// </summary>
    public static bool KvmPvmKeepsCr4BitsTheGuestCpuidLacks(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): when userspace moves RIP with KVM_SET_REGS after a 64-bit guest's KVM_EXIT_IO IN,
    /// the next KVM_RUN drops the answer (as upstream's complete_fast_pio_in does when kvm_is_linear_rip fails) but the
    /// guest goes on from the instruction after the IN, not from the RIP userspace set; upstream SVM runs the guest from
    /// the new RIP. Observed on Linux 6.18 kvm_pvm: mov eax, 0x12345666; in al, 0x10; hlt at 0x100000, then an OUT at
    /// 0x100008; answer 0x5a; KVM_SET_REGS RIP = 0x100008; the next KVM_RUN ends in KVM_EXIT_HLT with RIP 0x100008 (past
    /// the HLT at 0x100007) and RAX 0x12345666 (the OUT never runs). The emulator does what upstream does.
    /// </summary>
    public static bool KvmPvmResumesPastADroppedIn(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_VCPU_EVENTS with KVM_VCPUEVENT_VALID_SHADOW keeps interrupt.shadow as the
    /// byte given, and KVM_GET_VCPU_EVENTS returns it: 3 reads 3, 0xff reads 0xff. Upstream goes through the vendor
    /// set/get_interrupt_shadow: VMX keeps only KVM_X86_SHADOW_INT_STI | MOV_SS (0xff reads 3), SVM one bit (any
    /// non-zero value reads 3). Observed on Linux 6.18 kvm_pvm; the emulator, having no vendor, does as this host.
    /// </summary>
    public static bool KvmPvmInterruptShadowStoredVerbatim(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// This host (Linux 6.18 kvm_pvm, AMD): the fxsave area's sw_reserved bytes (464..511) of every KVM_GET_XSAVE /
    /// KVM_GET_XSAVE2 image read as the one word kvm_caps.supported_xcr0 at 464 and zeros (0x207 on the EPYC Milan
    /// machines, 0xe7 on EPYC Genoa) — a new vCPU, after KVM_SET_XSAVE of any bytes there, with and without
    /// KVM_SET_CPUID2 alike (C probes). Upstream __copy_xstate_to_uabi_buf copies
    /// xstate_fx_sw_bytes there (magic1 FP_XSTATE_MAGIC1 0x46505853, extended_size, xfeatures, xstate_size). The
    /// emulator writes what this host writes (X86/XsaveRules.cs), so the images compare byte for byte.
    /// </summary>
    public static bool KvmPvmXsaveSwReservedBytes(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): after an INIT (kvm_vcpu_reset(init_event = true), here a latched INIT taken by
    /// KVM_GET_MP_STATE) KVM_GET_SREGS reports FS.base and GS.base 0 but KVM_GET_MSRS of MSR_FS_BASE / MSR_GS_BASE still
    /// reads the values from before the INIT, until the next KVM_SET_SREGS. Upstream the MSR and the segment base are
    /// one field (the VMCS/VMCB segment base), reset by the INIT. Observed on Linux 6.18 kvm_pvm (C probe
    /// /tmp/fuzzinit/fs.c): SET_SREGS fs.base 0x7000 → MSR 0x7000; INIT → sregs 0, MSR 0x7000; SET_SREGS → MSR 0.
    /// The emulator does as upstream (Conformance/Cases/InitReset.cs).
    /// </summary>
    public static bool KvmPvmInitKeepsSegmentBaseMsrs(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
