// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.X86;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The MSRs of one vCPU that no other register file holds (struct kvm_vcpu_arch and the VMCB/VMCS save area). EFER,
/// FS_BASE, GS_BASE and APIC_BASE are not here: they live in <see cref="X86Cpu.Sregs"/> (efer, fs.base, gs.base,
/// apic_base), so KVM_GET_SREGS, KVM_GET_MSRS and the interpreter read the same value.
/// </summary>
internal sealed class MsrState
{
    public ulong Star;
    public ulong Lstar;
    public ulong Cstar;
    public ulong SyscallMask;
    public ulong KernelGsBase;
    public ulong SysenterCs;
    public ulong SysenterEsp;
    public ulong SysenterEip;
    public ulong TscAux;

    /// <summary>vcpu->arch.msr_hwcr: MSR_K7_HWCR, 0 at creation (MsrRules.K7Hwcr).</summary>
    public ulong Hwcr;

    /// <summary>
    /// vcpu->arch.microcode_version. Upstream's reset value is vendor code (vmx 0x100000000, svm 0x01000065 under
    /// KVM_X86_QUIRK_STUFF_FEATURE_MSRS); this host's kvm_pvm reads 0, and so does the emulator.
    /// </summary>
    public ulong MicrocodeVersion;

    /// <summary>
    /// vcpu->arch.msr_platform_info: MSR_PLATFORM_INFO_CPUID_FAULT at vCPU creation while
    /// KVM_X86_QUIRK_STUFF_FEATURE_MSRS is on, else 0 (<see cref="Quirks.StuffFeatureMsrs"/>); not touched by a reset.
    /// </summary>
    public ulong PlatformInfo;

    /// <summary>
    /// vcpu->arch.msr_misc_features_enables: MSR_MISC_FEATURES_ENABLES, 0 at creation (kvm_vcpu_reset, init_event =
    /// false); bit 0 (CPUID_FAULT) makes CPUID at CPL &gt; 0 a #GP (cpuid_fault_enabled, kvm_emulate_cpuid).
    /// </summary>
    public ulong MiscFeaturesEnables;

    /// <summary>
    /// The vCPU's VM (vcpu->kvm), for the per-VM MSR state: kvm->arch.guest_can_read_msr_platform_info
    /// (<see cref="KvmMain.Kvm.GuestCanReadMsrPlatformInfo"/>). Set at vCPU creation (<see cref="Quirks.StuffFeatureMsrs"/>);
    /// null only for an X86Cpu built without a VM (unit tests), which reads as the default, true.
    /// </summary>
    public KvmMain.Kvm? Vm;

    /// <summary>x86.h cpuid_fault_enabled: MSR_MISC_FEATURES_ENABLES.CPUID_FAULT.</summary>
    public bool CpuidFaultEnabled => (MiscFeaturesEnables & MsrRules.MiscFeaturesCpuidFault) != 0;

    /// <summary>kvm_vcpu_reset(init_event=false): vcpu->arch.pat = MSR_IA32_CR_PAT_DEFAULT.</summary>
    public ulong Pat = MsrIndex.IA32_CR_PAT_DEFAULT;

    /// <summary>
    /// kvm_vcpu_reset(init_event=false): PEBS_UNAVAIL | BTS_UNAVAIL (set again from
    /// EmulatorConfig.X86MiscEnableAtCreation when the vCPU is made).
    /// </summary>
    public ulong MiscEnable = MsrLists.MiscEnablePmuRo;

    /// <summary>The kernel's KVM_GET_MSR_INDEX_LIST (MsrLists.IndexList of the configuration; set at vCPU creation).</summary>
    public uint[] IndexList = MsrLists.ToSaveAndEmulated;

    /// <summary>The kernel's KVM_GET_MSR_FEATURE_INDEX_LIST (MsrLists.FeatureList).</summary>
    public uint[] FeatureList = MsrLists.FeatureMsrs;

    /// <summary>
    /// vcpu->arch.apic, the in-kernel local APIC (null without an irqchip): the x2APIC MSRs 0x800–0x8ff and
    /// IA32_TSC_DEADLINE are its registers (lapic.c kvm_x2apic_msr_read/write, kvm_get/set_lapic_tscdeadline_msr).
    /// </summary>
    public Irqchip.Lapic? Lapic;

    /// <summary>KVM's paravirtual MSRs other than kvmclock's: async PF, steal time, PV EOI, poll control (X86/KvmPvMsrs.cs).</summary>
    public KvmPvState Pv { get; } = new();

    /// <summary>The machine-check banks and MCG_* MSRs (x86.c get_msr_mce / set_msr_mce, KVM_X86_SETUP_MCE).</summary>
    public MceBanks Mce { get; } = new();

    /// <summary>The MTRRs (mtrr.c).</summary>
    public Mtrrs Mtrr { get; } = new();

    /// <summary>The guest TSC is the host's (Stopwatch ticks) plus this offset (kvm_vcpu_arch.l1_tsc_offset).</summary>
    public long TscOffset;

    public ulong ReadTsc() => SecureTscScale != 0
        // SNP Secure TSC (AMD APM Vol. 2 "Secure TSC"): the CPU computes the guest TSC from the VMSA's GUEST_TSC_SCALE
        // (8.32 fixed point) and GUEST_TSC_OFFSET, which the PSP fixed (Arch/X86/SnpTscInfo.cs); KVM's offset is ignored.
        ? unchecked((ulong)(((UInt128)(ulong)Stopwatch.GetTimestamp() * SecureTscScale) >> 32) + (ulong)SecureTscOffset)
        : unchecked((ulong)(Stopwatch.GetTimestamp() + TscOffset));

    /// <summary>The VMSA's GUEST_TSC_SCALE of an SNP Secure TSC vCPU (8.32 fixed point); 0 without Secure TSC.</summary>
    public ulong SecureTscScale;

    /// <summary>The VMSA's GUEST_TSC_OFFSET of an SNP Secure TSC vCPU.</summary>
    public long SecureTscOffset;

    /// <summary>
    /// x86.c kvm_set_msr_common MSR_IA32_TSC, a guest write: "adj = kvm_compute_l1_tsc_offset(vcpu, data) -
    /// vcpu->arch.l1_tsc_offset; adjust_tsc_offset_guest(vcpu, adj); vcpu->arch.ia32_tsc_adjust_msr += adj".
    /// </summary>
    public void WriteTsc(ulong value)
    {
        // "} else if (!vcpu->arch.guest_tsc_protected) {": an SNP Secure TSC guest's write is dropped (x86.c, 6.16+).
        if (SecureTscScale != 0) return;
        long adj = unchecked(TscOffsetFor(value) - TscOffset);
        TscOffset = unchecked(TscOffset + adj);
        TscAdjust = unchecked(TscAdjust + adj);
    }

    /// <summary>vcpu->arch.ia32_tsc_adjust_msr (MSR_IA32_TSC_ADJUST, an s64): 0 at creation.</summary>
    public long TscAdjust;

    /// <summary>kvm_compute_l1_tsc_offset: the offset that makes the guest TSC read <paramref name="value"/> now.</summary>
    public static long TscOffsetFor(ulong value) => unchecked((long)value - Stopwatch.GetTimestamp());
}
