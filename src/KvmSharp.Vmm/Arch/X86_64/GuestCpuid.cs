// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Abi;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>What CPUID table a micro-VM's vCPU gets at creation (<see cref="MicroVmOptions.Cpuid"/>).</summary>
public enum CpuidPolicy
{
    /// <summary>
    /// The default: KVM_GET_SUPPORTED_CPUID, normalised for a one-vCPU sandbox as <see cref="GuestCpuid.Normalize"/>
    /// documents (GUEST-ABI.md, "CPUID").
    /// </summary>
    Sandbox,

    /// <summary>KVM_GET_SUPPORTED_CPUID exactly as the kernel reports it (host topology and APIC bits included).</summary>
    Supported,

    /// <summary>
    /// No KVM_SET_CPUID2: every CPUID leaf reads as zero (vendor, maximum leaf, features), as in micro-VMs before
    /// they set a table. Saves one ioctl per micro-VM for guests that never execute CPUID.
    /// </summary>
    None,
}

/// <summary>
/// The CPUID table of a micro-VM's vCPU, derived from the kernel's KVM_GET_SUPPORTED_CPUID the way a minimal VMM
/// (Firecracker, cloud-hypervisor) derives it, and the one place that says what a guest sees (GUEST-ABI.md, "CPUID",
/// repeats it for guest authors). The supported table is asked once per <see cref="Kvm"/> object and kept with it
/// (with its normalised copy), so creating a micro-VM costs one KVM_SET_CPUID2, not a KVM_GET_SUPPORTED_CPUID too.
/// </summary>
public static class GuestCpuid
{
    /// <summary>CPUID.1 ECX.VMX (bit 5): Intel VT-x, offered by KVM when nested virtualization is enabled.</summary>
    public const uint Leaf1EcxVmx = 1u << 5;

    /// <summary>CPUID.80000001 ECX.SVM (bit 2): AMD-V, offered by KVM when nested virtualization is enabled (kvm_amd's default).</summary>
    public const uint ExtLeaf1EcxSvm = 1u << 2;

    /// <summary>CPUID.8000000A: the SVM revision and features, present only with SVM.</summary>
    public const uint SvmFeaturesLeaf = 0x8000_000A;

    /// <summary>CPUID.1 ECX.X2APIC (bit 21).</summary>
    public const uint Leaf1EcxX2Apic = 1u << 21;

    /// <summary>CPUID.1 ECX.TSC_DEADLINE (bit 24).</summary>
    public const uint Leaf1EcxTscDeadline = 1u << 24;

    /// <summary>CPUID.1 ECX.HYPERVISOR (bit 31).</summary>
    public const uint Leaf1EcxHypervisor = 1u << 31;

    /// <summary>CPUID.1 EDX.HTT (bit 28).</summary>
    public const uint Leaf1EdxHtt = 1u << 28;

    /// <summary>CPUID.7.0 EDX: AMX-BF16 (22), AMX-TILE (24), AMX-INT8 (25).</summary>
    public const uint Leaf7EdxAmx = (1u << 22) | (1u << 24) | (1u << 25);

    /// <summary>XCR0 bits of the AMX tile state: XTILECFG (17) and XTILEDATA (18, a dynamic XSAVE feature).</summary>
    public const uint XcrAmx = (1u << 17) | (1u << 18);

    /// <summary>KVM_CPUID_SIGNATURE: EAX = the highest KVM leaf, EBX ECX EDX = "KVMKVMKVM\0\0\0".</summary>
    public const uint KvmSignatureLeaf = 0x4000_0000;

    /// <summary>KVM_CPUID_FEATURES: the paravirtual features (EAX) and hints (EDX).</summary>
    public const uint KvmFeaturesLeaf = 0x4000_0001;

    /// <summary>
    /// The hypervisor timing leaf (VMware's, also offered by QEMU's vmware-cpuid-freq and Xen): EAX = the TSC rate in
    /// kHz, EBX = the local APIC timer rate in kHz (0: the micro-VM has no APIC).
    /// </summary>
    public const uint TimingLeaf = 0x4000_0010;

    private sealed class Tables(CpuidEntry[] supported, bool canEnforcePv)
    {
        private readonly CpuidEntry[] _supported = supported;
        private IReadOnlyList<CpuidEntry>? _sandbox;
        private IReadOnlyList<CpuidEntry>? _sevSandbox;

        public readonly IReadOnlyList<CpuidEntry> Supported = Array.AsReadOnly(supported);
        public readonly bool CanEnforcePv = canEnforcePv;

        /// <summary>
        /// The normalised table, with the TSC rate of the first vCPU asked (KVM_GET_TSC_KHZ: the VM's default rate, the
        /// host's unless a VMM set another with KVM_SET_TSC_KHZ on the VM — the micro-VM never does).
        /// </summary>
        public IReadOnlyList<CpuidEntry> SandboxFor(Vcpu vcpu)
        {
            // An SEV guest keeps leaf 0x8000001F (its C-bit position); every other guest gets it zeroed (Normalize).
            bool sev = IsSevGuest(vcpu.Vm.Type);
            ref IReadOnlyList<CpuidEntry>? slot = ref sev ? ref _sevSandbox : ref _sandbox;
            return Volatile.Read(ref slot) ?? Interlocked.CompareExchange(ref slot, Array.AsReadOnly(Normalize(_supported, TscKhzOf(vcpu), sev)), null) ?? slot!;
        }

        /// <summary>The C-bit position of the supported table's leaf 0x8000001F (EBX[5:0]), or null without one.</summary>
        public int? CbitPosition()
        {
            foreach (CpuidEntry e in _supported)
                if (e.Function == SevLeaf && (e.Ebx & 0x3f) != 0) return (int)(e.Ebx & 0x3f);
            return null;
        }
    }

    /// <summary>
    /// CPUID.8000001F: AMD's memory-encryption leaf (SME/SEV/SEV-ES/SNP support in EAX, the C-bit position in
    /// EBX[5:0]). KVM_GET_SUPPORTED_CPUID reports it on an SEV-capable host (cpuid.c __do_cpuid_func).
    /// </summary>
    public const uint SevLeaf = 0x8000_001F;

    /// <summary>True for the VM types whose guests use the C-bit: SEV, SEV-ES and SEV-SNP.</summary>
    public static bool IsSevGuest(VmType type) => type is VmType.Sev or VmType.SevEs or VmType.Snp;

    /// <summary>
    /// The C-bit position in <paramref name="kvm"/>'s KVM_GET_SUPPORTED_CPUID leaf 0x8000001F EBX[5:0], or null when
    /// the table has no such leaf (a host without SEV). Asked once per <see cref="Kvm"/> object, with the table.
    /// </summary>
    public static int? CbitPosition(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        return TablesOf(kvm).CbitPosition();
    }

    /// <summary>The vCPU's TSC rate (KVM_GET_TSC_KHZ), or 0 when the kernel does not say (no KVM_CAP_GET_TSC_KHZ).</summary>
    internal static uint TscKhzOf(Vcpu vcpu) => HasTscKhz(vcpu.Vm.Kvm) ? vcpu.TscKhz : 0;

    /// <summary>Whether <paramref name="kvm"/>'s kernel reads a vCPU's TSC rate (KVM_CAP_GET_TSC_KHZ), asked once per <see cref="Kvm"/>.</summary>
    internal static bool HasTscKhz(Kvm kvm) => s_hasTscKhz.GetValue(kvm, static k => new StrongBox<bool>(k.CheckExtension(KvmCaps.KVM_CAP_GET_TSC_KHZ) > 0)).Value;

    private static readonly ConditionalWeakTable<Kvm, StrongBox<bool>> s_hasTscKhz = new();

    /// <summary>
    /// <paramref name="table"/> with the timing leaf's TSC rate (0x40000010 EAX) set to <paramref name="tscKhz"/>: the
    /// table of a micro-VM created from a snapshot taken at another rate. A table without the leaf is returned as it is.
    /// </summary>
    public static IReadOnlyList<CpuidEntry>? WithTscKhz(IReadOnlyList<CpuidEntry>? table, uint tscKhz)
    {
        if (table is null) return null;
        int at = -1;
        for (int i = 0; i < table.Count; i++)
            if (table[i].Function == TimingLeaf) at = i;
        if (at < 0 || table[at].Eax == tscKhz) return table;
        CpuidEntry[] copy = [.. table];
        copy[at] = copy[at] with { Eax = tscKhz };
        return copy;
    }

    private static Tables TablesOf(Kvm kvm) => Cache.GetValue(kvm, static k =>
        new Tables([.. k.GetSupportedCpuid()], k.CheckExtension(KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID) > 0));

    private static readonly ConditionalWeakTable<Kvm, Tables> Cache = new();

    /// <summary>
    /// The table <paramref name="policy"/> gives <paramref name="vcpu"/>, or null for <see cref="CpuidPolicy.None"/>.
    /// The first call per <see cref="Kvm"/> object asks KVM_GET_SUPPORTED_CPUID (and, for
    /// <see cref="CpuidPolicy.Sandbox"/>, the vCPU's TSC rate); later ones return the kept (read-only) tables.
    /// </summary>
    public static IReadOnlyList<CpuidEntry>? For(Vcpu vcpu, CpuidPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        if (policy == CpuidPolicy.None) return null;
        Tables tables = TablesOf(vcpu.Vm.Kvm);
        return policy == CpuidPolicy.Supported ? tables.Supported : tables.SandboxFor(vcpu);
    }

    /// <summary>
    /// Whether a vCPU given <paramref name="policy"/>'s table gets KVM_CAP_ENFORCE_PV_FEATURE_CPUID: for
    /// <see cref="CpuidPolicy.Sandbox"/> (leaf 0x40000001 all zero), when <paramref name="kvm"/> offers the cap (x86
    /// since 5.10). KVM does not otherwise hold the guest to that leaf: without enforcement a guest may still WRMSR
    /// kvmclock, steal time or async PF and KVM keeps writing at the address it chose, across
    /// <see cref="MicroVm.Reset"/> (which resets only the MSRs a snapshot carries, not these). With it those RDMSR/WRMSRs are a #GP, and the PV
    /// hypercalls PV_UNHALT/SEND_IPI/SCHED_YIELD answer -KVM_ENOSYS (KVM_HC_MAP_GPA_RANGE is not a PV feature and is
    /// unaffected). The cap check is asked once per <see cref="Kvm"/> object, with the supported table.
    /// </summary>
    public static bool EnforcesPvFeatures(Kvm kvm, CpuidPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        return policy == CpuidPolicy.Sandbox && TablesOf(kvm).CanEnforcePv;
    }

    /// <summary>
    /// The sandbox's normalisation of a supported table, for vCPU 0 of a one-vCPU VM without an in-kernel interrupt
    /// controller. Leaves are kept in the kernel's order; everything not named here is as supported:
    /// <list type="bullet">
    /// <item>Leaves 0 and 0x80000000: kept (vendor string, highest basic / extended leaf: the host's).</item>
    /// <item>Leaf 1 EBX: initial APIC id 0, one logical processor (bits 31:16); the CLFLUSH line size and brand index
    /// as supported. EDX: HTT cleared (one logical processor). ECX: HYPERVISOR set (the guest runs under a
    /// hypervisor); X2APIC and TSC_DEADLINE cleared: the micro-VM creates no in-kernel interrupt controller, so there
    /// is no local APIC behind the x2APIC MSRs or its timer. EDX.APIC and ECX.OSXSAVE are left alone: KVM owns them
    /// (kvm_update_cpuid_runtime sets APIC from the APIC base MSR, enabled at reset even without an in-kernel APIC,
    /// and OSXSAVE from CR4), so APIC reads set although no APIC answers at 0xFEE00000.</item>
    /// <item>No nested virtualization: CPUID.1 ECX.VMX and CPUID.80000001 ECX.SVM cleared, leaf 0x8000000A left out.
    /// KVM offers them when the host enables nested virtualization (kvm_amd does by default); a sandboxed guest has no
    /// use for a hypervisor of its own, and with the bits clear KVM refuses EFER.SVME and VMXON (#GP / #UD), keeping
    /// the guest away from KVM's nested-virtualization code, its largest attack surface.</item>
    /// <item>Leaves 0xB and 0x1F (x2APIC topology): EDX, the x2APIC id, is 0.</item>
    /// <item>AMX cleared: CPUID.7.0 EDX AMX-BF16/TILE/INT8, XCR0 bits 17-18 in CPUID.0xD.0 EAX, and the 0xD subleaves
    /// 17 and 18. XTILEDATA is a dynamic XSAVE feature: KVM_SET_CPUID2 refuses it (EPERM) unless the process asked
    /// arch_prctl(ARCH_REQ_XCOMP_GUEST_PERM), and the sandbox's call ABI saves no tile state.</item>
    /// <item>Leaf 0x40000000 (KVM_CPUID_SIGNATURE): kept, "KVMKVMKVM\0\0\0", with EAX = 0x40000010 when the TSC rate is
    /// known (else as supported, 0x40000001).</item>
    /// <item>Leaf 0x8000001F (<see cref="SevLeaf"/>, memory encryption): all zero unless <paramref name="sevGuest"/>, as
    /// QEMU does (target/i386/cpu.c cpu_x86_cpuid: the leaf is zeroed unless sev_enabled()). Only an SEV, SEV-ES or
    /// SNP guest can use the C-bit it names; for any other guest bit 51 of a PTE or CR3 is a reserved address bit.
    /// An SEV guest keeps it as supported: svm.c svm_vcpu_after_set_cpuid spares the C-bit it names in the reserved
    /// GPA bits, so CR3 may carry the C-bit.</item>
    /// <item>Leaf 0x40000010 (<see cref="TimingLeaf"/>), added when <paramref name="tscKhz"/> is not 0: EAX = the TSC
    /// rate in kHz, EBX ECX EDX = 0. The sandbox's guests have no clock but the TSC; this turns its ticks into time.</item>
    /// <item>Leaf 0x40000001 (KVM_CPUID_FEATURES): all zero: no paravirtual feature is announced. kvmclock, steal
    /// time, async page faults and PV EOI have KVM write guest memory at an address the guest sets in an MSR, which
    /// neither <see cref="MicroVm.Reset"/> nor a snapshot restore clears (they reset memory, registers and the
    /// SYSCALL/SYSENTER/PAT/KERNEL_GS_BASE MSRs, not these),
    /// and the interrupt-based ones need a local APIC.</item>
    /// </list>
    /// </summary>
    /// <param name="supported">KVM_GET_SUPPORTED_CPUID's table.</param>
    /// <param name="tscKhz">The guest's TSC rate in kHz (KVM_GET_TSC_KHZ), or 0 for no timing leaf.</param>
    /// <param name="sevGuest">True for an SEV, SEV-ES or SNP guest (<see cref="IsSevGuest"/>): leaf 0x8000001F is kept.</param>
    public static CpuidEntry[] Normalize(IReadOnlyList<CpuidEntry> supported, uint tscKhz = 0, bool sevGuest = false)
    {
        ArgumentNullException.ThrowIfNull(supported);
        var result = new List<CpuidEntry>(supported.Count);
        foreach (CpuidEntry e in supported)
        {
            switch (e.Function)
            {
                case 0x1:
                    result.Add(e with
                    {
                        Ebx = (e.Ebx & 0x0000_FFFF) | (1u << 16),
                        Ecx = (e.Ecx | Leaf1EcxHypervisor) & ~(Leaf1EcxX2Apic | Leaf1EcxTscDeadline | Leaf1EcxVmx),
                        Edx = e.Edx & ~Leaf1EdxHtt,
                    });
                    break;
                case 0x8000_0001:
                    result.Add(e with { Ecx = e.Ecx & ~ExtLeaf1EcxSvm });
                    break;
                case SvmFeaturesLeaf:
                    break;
                case SevLeaf when !sevGuest:
                    result.Add(e with { Eax = 0, Ebx = 0, Ecx = 0, Edx = 0 });
                    break;
                case 0x7 when e.Index == 0:
                    result.Add(e with { Edx = e.Edx & ~Leaf7EdxAmx });
                    break;
                case 0xB or 0x1F:
                    result.Add(e with { Edx = 0 });
                    break;
                case 0xD when e.Index == 0:
                    result.Add(e with { Eax = e.Eax & ~XcrAmx });
                    break;
                case 0xD when e.Index is 17 or 18:
                    break;
                case KvmSignatureLeaf when tscKhz != 0:
                    result.Add(e with { Eax = Math.Max(e.Eax, TimingLeaf) });
                    break;
                case KvmFeaturesLeaf:
                    result.Add(e with { Eax = 0, Ebx = 0, Ecx = 0, Edx = 0 });
                    // The timing leaf follows the KVM leaves (a supported table has none of its own).
                    if (tscKhz != 0) result.Add(CpuidEntry.Leaf(TimingLeaf, tscKhz, 0, 0, 0));
                    break;
                case TimingLeaf when tscKhz != 0:
                    break;
                default:
                    result.Add(e);
                    break;
            }
        }
        // A table without KVM_CPUID_FEATURES still gets the timing leaf, after the rest (reachable through the signature).
        if (tscKhz != 0 && !result.Exists(e => e.Function == TimingLeaf) && result.Exists(e => e.Function == KvmSignatureLeaf))
            result.Add(CpuidEntry.Leaf(TimingLeaf, tscKhz, 0, 0, 0));
        return [.. result];
    }
}
