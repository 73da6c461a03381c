// SPDX-License-Identifier: MIT
using KvmSharp.X86;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c MSR access for KVM_GET_MSRS/KVM_SET_MSRS (host-initiated) and RDMSR/WRMSR (guest-initiated):
/// kvm_get_msr_common / kvm_set_msr_common with the vendor parts (svm_get_msr/svm_set_msr, this host is AMD) for
/// the MSRs in <see cref="MsrIndex"/>, and kvm_do_msr_access around them. ignore_msrs is N (the module default,
/// and this host's /sys/module/kvm/parameters/ignore_msrs). Of the rules that follow the guest's CPUID only the vendor
/// (TSC_AUX) and guest TSC_AUX's RDTSCP/RDPID are modeled; the other feature-dependent ones (EFER.LME/NX) are those of
/// an empty CPUID.
/// </summary>
internal static class MsrRules
{
    /// <summary>KVM_MSR_RET_UNSUPPORTED: the MSR is not handled at all (as opposed to 1, a refused value).</summary>
    private const int Unsupported = MsrFilter.RetUnsupported;

    /// <summary>MSR_K7_HWCR (arch/x86/include/asm/msr-index.h).</summary>
    public const uint K7Hwcr = 0xC001_0015;

    /// <summary>MSR_IA32_TSC_DEADLINE (arch/x86/include/asm/msr-index.h).</summary>
    public const uint TscDeadline = 0x6e0;

    /// <summary>MSR_PLATFORM_INFO.</summary>
    public const uint PlatformInfo = 0xce;

    /// <summary>MSR_PLATFORM_INFO_CPUID_FAULT (bit 31).</summary>
    public const ulong PlatformInfoCpuidFault = 1UL << 31;

    /// <summary>MSR_MISC_FEATURES_ENABLES (Intel's CPUID-faulting control; KVM emulates it on every vendor).</summary>
    public const uint MiscFeaturesEnables = 0x140;

    /// <summary>MSR_MISC_FEATURES_ENABLES_CPUID_FAULT (bit 0), the only bit x86.c lets through.</summary>
    public const ulong MiscFeaturesCpuidFault = 1UL << 0;

    /// <summary>APIC_BASE_MSR … APIC_BASE_MSR + 0xff: the x2APIC registers.</summary>
    private static bool IsX2apicMsr(uint index) => index is >= 0x800 and <= 0x8ff;

    /// <summary>HWCR bit 18, McStatusWrEn: a guest may write non-zero MCi_STATUS values (x86.c can_set_mci_status).</summary>
    public const ulong HwcrMcStatusWrEn = 1UL << 18;

    /// <summary>HWCR bit 24, TscFreqSel.</summary>
    private const ulong HwcrTscFreqSel = 1UL << 24;

    /// <summary>
    /// KVM's paravirtual MSRs (uapi asm/kvm_para.h): MSR_KVM_WALL_CLOCK (0x11), MSR_KVM_SYSTEM_TIME (0x12) and
    /// MSR_KVM_WALL_CLOCK_NEW … MSR_KVM_ASYNC_PF_ACK, MSR_KVM_MIGRATION_CONTROL (0x4b564d00–0x4b564d08).
    /// </summary>
    private static bool IsKvmPvMsr(uint index) => index is 0x11 or 0x12 or (>= 0x4b56_4d00 and <= 0x4b56_4d08);

    /// <summary>EFER bits the host allows (efer_reserved_bits after kvm_enable_efer_bits): SCE, LME, LMA, NX.</summary>
    private const ulong EferValid = X86Consts.EFER_SCE | X86Consts.EFER_LME | X86Consts.EFER_LMA | X86Consts.EFER_NX;

    /// <summary>
    /// x86.c kvm_get_msr_ignored_check → kvm_do_msr_access(MSR_TYPE_R): 0 on success; non-zero when refused. A failed
    /// read leaves <paramref name="data"/> 0 ("Zero the data on read failures"); host-initiated reads of an
    /// advertised but unhandled MSR succeed with 0.
    /// </summary>
    public static int Get(X86Cpu cpu, uint index, bool hostInitiated, out ulong data)
    {
        // A guest RDMSR is a VM exit: vcpu_enter_guest's kvm_lapic_sync_from_vapic runs before the exit is handled.
        if (!hostInitiated) PvEoi.OnGuestMsrExit(cpu);
        int ret = GetCommon(cpu, index, hostInitiated, out data);
        if (ret != 0) data = 0;
        return Fallback(cpu, ret, index, data, hostInitiated);
    }

    /// <summary>
    /// x86.c kvm_set_msr_ignored_check → kvm_do_msr_access(MSR_TYPE_W) → __kvm_set_msr: 0 on success; non-zero when
    /// refused. Host-initiated writes of 0 to an advertised but unhandled MSR succeed. A host write of IA32_TSC is
    /// <paramref name="synchronizeTsc"/> (kvm_synchronize_tsc, X86/TscSync.cs); guest writes pass null.
    /// </summary>
    public static int Set(X86Cpu cpu, uint index, ulong data, bool hostInitiated, Action<ulong>? synchronizeTsc = null)
    {
        // A guest WRMSR is a VM exit: kvm_lapic_sync_from_vapic runs before the exit is handled (X86/PvEoi.cs).
        if (!hostInitiated) PvEoi.OnGuestMsrExit(cpu);
        return Fallback(cpu, SetCommon(cpu, index, data, hostInitiated, synchronizeTsc), index, data, hostInitiated);
    }

    /// <summary>
    /// x86.c do_set_msr (KVM_SET_MSRS only): "Disallow writes to immutable feature MSRs after KVM_RUN … Allow writes
    /// of the same value": "if (kvm_vcpu_has_run(vcpu) &amp;&amp; kvm_is_immutable_feature_msr(index) &amp;&amp;
    /// (do_get_msr(vcpu, index, &amp;val) || *data != val)) return -EINVAL;" — __msr_io stops there as for any refusal.
    /// Observed on kvm_pvm 6.18: after a KVM_RUN, MSR_PLATFORM_INFO 0xff00 takes 0xff00 again (1 processed) but
    /// refuses 0, 0x80000000 and 0x8000ff00 (0 processed), with MSR_MISC_FEATURES_ENABLES 0.
    /// </summary>
    public static bool HostWriteRefusedAfterRun(X86Cpu cpu, uint index, ulong data) =>
        cpu.Cpuid.HasRun && MsrLists.IsImmutableFeatureMsr(cpu.Msrs.FeatureList, index)
        && (Get(cpu, index, hostInitiated: true, out ulong current) != 0 || current != data);

    /// <summary>
    /// kvm_do_msr_access: "Userspace is allowed to read MSRs, and write '0' to MSRs, that KVM advertises"; otherwise,
    /// ignore_msrs being N, KVM_MSR_RET_UNSUPPORTED goes back as it is — a guest access then exits with
    /// KVM_MSR_EXIT_REASON_UNKNOWN, not INVAL (x86.c kvm_msr_reason, X86/MsrFilter.cs).
    /// </summary>
    private static int Fallback(X86Cpu cpu, int ret, uint index, ulong data, bool hostInitiated)
    {
        if (ret != Unsupported) return ret;
        if (hostInitiated && data == 0 && MsrLists.IsAdvertised(cpu.Msrs.IndexList, cpu.Msrs.FeatureList, index)) return 0;
        return ret;
    }

    /// <summary>kvm_get_msr_common and svm_get_msr for the modeled MSRs.</summary>
    private static int GetCommon(X86Cpu cpu, uint index, bool hostInitiated, out ulong data)
    {
        var m = cpu.Msrs;
        data = 0;
        switch (index)
        {
            case MsrIndex.EFER: data = cpu.Sregs.efer; return 0;
            case MsrIndex.FS_BASE: data = cpu.Sregs.fs.@base; return 0;
            case MsrIndex.GS_BASE: data = cpu.Sregs.gs.@base; return 0;
            case MsrIndex.IA32_APICBASE: data = cpu.Sregs.apic_base; return 0;
            case MsrIndex.STAR: data = m.Star; return 0;
            case MsrIndex.LSTAR: data = m.Lstar; return 0;
            case MsrIndex.CSTAR: data = m.Cstar; return 0;
            case MsrIndex.SYSCALL_MASK: data = m.SyscallMask; return 0;
            case MsrIndex.KERNEL_GS_BASE: data = m.KernelGsBase; return 0;
            case MsrIndex.IA32_SYSENTER_CS: data = m.SysenterCs; return 0;
            case MsrIndex.IA32_SYSENTER_ESP: data = m.SysenterEsp; return 0;
            case MsrIndex.IA32_SYSENTER_EIP: data = m.SysenterEip; return 0;
            case MsrIndex.IA32_CR_PAT: data = m.Pat; return 0;
            case MsrIndex.IA32_MISC_ENABLE: data = m.MiscEnable; return 0;
            case MsrIndex.IA32_TSC: data = m.ReadTsc(); return 0;
            // kvm_get_msr_common: "case MSR_IA32_TSC_ADJUST: msr_info->data = (u64)vcpu->arch.ia32_tsc_adjust_msr" —
            // host and guest, whatever CPUID says.
            case MsrIndex.IA32_TSC_ADJUST: data = unchecked((ulong)m.TscAdjust); return 0;
            case MsrIndex.IA32_UCODE_REV: data = m.MicrocodeVersion; return 0;
            // kvm_get_msr_common: "case MSR_K7_HWCR: msr_info->data = vcpu->arch.msr_hwcr;" (host and guest).
            case K7Hwcr: data = m.Hwcr; return 0;
            // kvm_get_msr_common: "case MSR_PLATFORM_INFO: if (!msr_info->host_initiated &&
            // !vcpu->kvm->arch.guest_can_read_msr_platform_info) return 1" — true at VM creation, KVM_ENABLE_CAP of
            // KVM_CAP_MSR_PLATFORM_INFO sets it (observed on kvm_pvm: args[0] 0 → guest RDMSR #GP, host read still works).
            case PlatformInfo:
                if (!hostInitiated && !(m.Vm?.GuestCanReadMsrPlatformInfo ?? true)) return 1;
                data = m.PlatformInfo;
                return 0;
            // kvm_get_msr_common: "case MSR_MISC_FEATURES_ENABLES: msr_info->data = vcpu->arch.msr_misc_features_enables"
            // (host and guest).
            case MiscFeaturesEnables: data = m.MiscFeaturesEnables; return 0;
            // get_msr_mce: "case MSR_IA32_P5_MC_ADDR: case MSR_IA32_P5_MC_TYPE: data = 0" (set_msr_mce has no case).
            case MsrIndex.IA32_P5_MC_ADDR or MsrIndex.IA32_P5_MC_TYPE: return 0;
            // kvm_get_msr_common: "case MSR_IA32_TSC_DEADLINE: msr_info->data = kvm_get_lapic_tscdeadline_msr(vcpu)" —
            // 0 without an in-kernel APIC, hardware-disabled or outside TSC-deadline mode.
            case TscDeadline: data = m.Lapic?.TscDeadlineMsr ?? 0; return 0;
            // "case APIC_BASE_MSR ... APIC_BASE_MSR + 0xff: return kvm_x2apic_msr_read(vcpu, msr_info->index,
            // &msr_info->data)" — 1 without an in-kernel APIC or outside x2APIC mode (host and guest).
            case var _ when IsX2apicMsr(index):
                return m.Lapic is { } readApic ? readApic.X2apicMsrRead(index, out data) : 1;
            // kvm_get_msr_common MSR_KVM_WALL_CLOCK(_NEW) / MSR_KVM_SYSTEM_TIME(_NEW): X86/KvmClockMsrs.cs.
            case var _ when KvmClockMsrs.IsKvmClockMsr(index):
                return KvmClockMsrs.Get(cpu, index, out data);
            // kvm_get_msr_common MSR_KVM_ASYNC_PF_EN … MSR_KVM_ASYNC_PF_ACK: X86/KvmPvMsrs.cs.
            case var _ when KvmPvMsrs.Handles(index):
                return KvmPvMsrs.Get(cpu, index, out data);
            case var _ when IsKvmPvMsr(index):
                return KvmPvMsr();
            // kvm_get_msr_common: MCG_CAP, MCG_CTL, MCG_STATUS and the bank ranges → get_msr_mce (X86/MceBanks.cs).
            case var _ when MceBanks.IsMceMsr(index):
                return m.Mce.Get(index, hostInitiated, out data);
            // kvm_get_msr_common: MSR_MTRRcap, MTRRphysBase_MSR(0) … MSR_MTRRfix4K_F8000, MSR_MTRRdefType →
            // kvm_mtrr_get_msr (X86/Mtrrs.cs).
            case var _ when Mtrrs.IsMtrrMsr(index):
                return m.Mtrr.Get(index, out data);
            case MsrIndex.TSC_AUX:
                // x86.c __kvm_get_msr MSR_TSC_AUX: "if (!kvm_is_supported_user_return_msr(MSR_TSC_AUX)) return 1" (the
                // host CPU has RDTSCP: true here, probed) and "if (!host_initiated && !guest_cpu_cap_has(vcpu,
                // X86_FEATURE_RDTSCP) && !guest_cpu_cap_has(vcpu, X86_FEATURE_RDPID)) return 1" — the guest's CPUID.
                if (!hostInitiated && !cpu.Cpuid.HasRdtscp && !cpu.Cpuid.HasRdpid) return 1;
                data = m.TscAux;
                return 0;
            default:
                return Unsupported;
        }
    }

    /// <summary>kvm_set_msr_common, __kvm_set_msr's canonical checks and svm_set_msr for the modeled MSRs.</summary>
    private static int SetCommon(X86Cpu cpu, uint index, ulong data, bool hostInitiated, Action<ulong>? synchronizeTsc)
    {
        var m = cpu.Msrs;
        switch (index)
        {
            case MsrIndex.EFER:
                return SetEfer(cpu, data, hostInitiated);
            // __kvm_set_msr: FS/GS/KERNEL_GS_BASE, LSTAR, CSTAR "if (is_noncanonical_msr_address(data, vcpu)) return 1"
            // for host and guest writes alike (48-bit: no LA57 here).
            case MsrIndex.FS_BASE:
                if (!IsCanonical(data)) return 1;
                cpu.Sregs.fs.@base = data;
                return 0;
            case MsrIndex.GS_BASE:
                if (!IsCanonical(data)) return 1;
                cpu.Sregs.gs.@base = data;
                return 0;
            case MsrIndex.KERNEL_GS_BASE:
                if (!IsCanonical(data)) return 1;
                m.KernelGsBase = data;
                return 0;
            case MsrIndex.LSTAR:
                if (!IsCanonical(data)) return 1;
                m.Lstar = data;
                return 0;
            case MsrIndex.CSTAR:
                if (!IsCanonical(data)) return 1;
                m.Cstar = data;
                return 0;
            case MsrIndex.STAR: m.Star = data; return 0;
            case MsrIndex.SYSCALL_MASK: m.SyscallMask = data; return 0;
            // svm_set_msr MSR_IA32_SYSENTER_CS: the VMCB save area holds 64 bits (observed: all-ones reads back).
            case MsrIndex.IA32_SYSENTER_CS: m.SysenterCs = data; return 0;
            // __kvm_set_msr: "data = __canonical_address(data, max_host_virt_addr_bits())" — made canonical, never refused.
            case MsrIndex.IA32_SYSENTER_ESP: m.SysenterEsp = Canonicalize(data); return 0;
            case MsrIndex.IA32_SYSENTER_EIP: m.SysenterEip = Canonicalize(data); return 0;
            case MsrIndex.TSC_AUX:
                // __kvm_set_msr MSR_TSC_AUX: guests need CPUID RDTSCP or RDPID, as in __kvm_get_msr above (the caps of
                // hardware with both; kvm_pvm's lack them: HostDeviations.KvmPvmWithoutTscAuxInstructions). Bits 63:32 are refused only for an
                // Intel-compatible guest ("if (guest_cpuid_is_intel_compatible(vcpu) && (data >> 32) != 0) return 1"),
                // which a vCPU without a CPUID table is; with an AMD or Hygon vendor in CPUID.0 they are dropped
                // ("data = (u32)data"). Found by the differential fuzzer (X86StateOps): 0x100000005 after a table with
                // "AuthenticAMD" was refused here, and written as 5 on the kernel.
                if (!hostInitiated && !cpu.Cpuid.HasRdtscp && !cpu.Cpuid.HasRdpid) return 1;
                if ((data >> 32) != 0 && !cpu.Cpuid.IsAmdCompatible) return 1;
                m.TscAux = (uint)data;
                return 0;
            case MsrIndex.IA32_CR_PAT:
                // kvm_set_msr_common MSR_IA32_CR_PAT: "if (!kvm_pat_valid(data)) return 1" (host and guest).
                if (!IsValidPat(data)) return 1;
                m.Pat = data;
                return 0;
            case MsrIndex.IA32_MISC_ENABLE:
                // kvm_set_msr_common MSR_IA32_MISC_ENABLE: a guest cannot change the PMU read-only bits and its EMON
                // writes are ignored; KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT is on by default, so MWAIT is not checked.
                if (!hostInitiated)
                {
                    if (((m.MiscEnable ^ data) & MsrLists.MiscEnablePmuRo) != 0) return 1;
                    data = (data & ~MsrLists.MiscEnableEmon) | (m.MiscEnable & MsrLists.MiscEnableEmon);
                }
                m.MiscEnable = data;
                return 0;
            case MsrIndex.IA32_TSC:
                // kvm_set_msr_common MSR_IA32_TSC: "if (msr_info->host_initiated) kvm_synchronize_tsc(vcpu, &data)" — a
                // TSC generation is joined or started (X86/TscSync.cs); a guest write is adjust_tsc_offset_guest(vcpu,
                // kvm_compute_l1_tsc_offset(vcpu, data) - l1_tsc_offset): its own offset only, no generation.
                if (hostInitiated)
                {
                    if (synchronizeTsc is null) throw new InvalidOperationException("a host write of IA32_TSC needs the vCPU's TSC synchronisation");
                    synchronizeTsc(data);
                }
                else m.WriteTsc(data);
                return 0;
            case MsrIndex.IA32_TSC_ADJUST:
                // kvm_set_msr_common MSR_IA32_TSC_ADJUST: "if (guest_cpu_cap_has(vcpu, X86_FEATURE_TSC_ADJUST)) { if
                // (!msr_info->host_initiated) { adj = data - ia32_tsc_adjust_msr; adjust_tsc_offset_guest(vcpu, adj); …
                // } ia32_tsc_adjust_msr = data; } break;" — without the CPUID bit the write is dropped, not refused
                // (observed: a host write of 1000 reads back 0 before KVM_SET_CPUID2, 1000 after one with the bit).
                if (!cpu.Cpuid.HasTscAdjust) return 0;
                if (!hostInitiated) m.TscOffset = unchecked(m.TscOffset + ((long)data - m.TscAdjust));
                m.TscAdjust = unchecked((long)data);
                return 0;
            case MsrIndex.IA32_P5_MC_ADDR or MsrIndex.IA32_P5_MC_TYPE:
                return 1; // set_msr_mce: default → return 1
            case MsrIndex.IA32_UCODE_REV:
                // kvm_set_msr_common MSR_IA32_UCODE_REV: only the host changes it; a guest write is dropped, not refused.
                if (hostInitiated) m.MicrocodeVersion = data;
                return 0;
            case PlatformInfo:
                // kvm_set_msr_common MSR_PLATFORM_INFO: "if (!msr_info->host_initiated || (!(data &
                // MSR_PLATFORM_INFO_CPUID_FAULT) && cpuid_fault_enabled(vcpu))) return 1" — a guest WRMSR is a #GP, and
                // the host cannot take CPUID_FAULT away while the guest has faulting on. Once the vCPU has run, any
                // change is refused before this (do_set_msr: HostWriteRefusedAfterRun).
                if (!hostInitiated || ((data & PlatformInfoCpuidFault) == 0 && m.CpuidFaultEnabled)) return 1;
                m.PlatformInfo = data;
                return 0;
            case MiscFeaturesEnables:
                // kvm_set_msr_common MSR_MISC_FEATURES_ENABLES: "if (data & ~MSR_MISC_FEATURES_ENABLES_CPUID_FAULT ||
                // (data & MSR_MISC_FEATURES_ENABLES_CPUID_FAULT && !supports_cpuid_fault(vcpu))) return 1" — host and
                // guest alike; supports_cpuid_fault is msr_platform_info's CPUID_FAULT. (x86.c has no RING3MWAIT rule:
                // bit 1 is reserved like the others.)
                if ((data & ~MiscFeaturesCpuidFault) != 0
                    || ((data & MiscFeaturesCpuidFault) != 0 && (m.PlatformInfo & PlatformInfoCpuidFault) == 0))
                    return 1;
                m.MiscFeaturesEnables = data;
                return 0;
            // kvm_set_msr_common MSR_KVM_WALL_CLOCK(_NEW) / MSR_KVM_SYSTEM_TIME(_NEW): X86/KvmClockMsrs.cs.
            case var _ when KvmClockMsrs.IsKvmClockMsr(index):
                return KvmClockMsrs.Set(cpu, index, data, hostInitiated);
            // kvm_set_msr_common MSR_KVM_ASYNC_PF_EN … MSR_KVM_ASYNC_PF_ACK: X86/KvmPvMsrs.cs. (MSR_KVM_ASYNC_PF_INT
            // without an in-kernel APIC is 1 there, before kvm_do_msr_access's fallback could take a host write of 0:
            // probed on this host, KVM_SET_MSRS 0x4b564d06 = 0 without an irqchip processes 0.)
            case var _ when KvmPvMsrs.Handles(index):
                return KvmPvMsrs.Set(cpu, index, data, hostInitiated);
            case var _ when IsKvmPvMsr(index):
                return KvmPvMsr();
            // kvm_set_msr_common MSR_K7_HWCR: "data &= ~(u64)0x40; /* ignore flush filter disable */ data &=
            // ~(u64)0x100; /* ignore ignne emulation enable */ data &= ~(u64)0x8; /* ignore TLB cache disable */ /* Allow
            // McStatusWrEn and TscFreqSel. */ if (data & ~(BIT_ULL(18) | BIT_ULL(24))) return 1; vcpu->arch.msr_hwcr =
            // data;" — host and guest writes alike. Probed on Linux 6.18 kvm_pvm (MceAndMtrrRules): a new vCPU reads 0;
            // 0x1040148 reads back 0x1040000; bits 0, 1, 17, 30, 63 refused; a guest WRMSR of bit 0 is a #GP.
            case K7Hwcr:
                data &= ~(0x40UL | 0x100UL | 0x8UL);
                if ((data & ~(HwcrMcStatusWrEn | HwcrTscFreqSel)) != 0) return 1;
                m.Hwcr = data;
                return 0;
            // kvm_set_msr_common: MCG_CTL, MCG_STATUS and the bank ranges → set_msr_mce; MCG_CAP is no case (only
            // KVM_X86_SETUP_MCE sets it). can_set_mci_status: "if (guest_cpuid_is_amd_compatible(vcpu)) return
            // !!(vcpu->arch.msr_hwcr & BIT_ULL(18)); return false;" — the guest's CPUID vendor (AMD or Hygon), not the
            // host's: a vCPU without KVM_SET_CPUID2 is not AMD-compatible (probed: its MC0_STATUS write #GPs with bit 18 set).
            case var _ when MceBanks.IsMceMsr(index) && index != MsrIndex.IA32_MCG_CAP:
                return m.Mce.Set(index, data, hostInitiated, canSetMciStatus: cpu.Cpuid.IsAmdCompatible && (m.Hwcr & HwcrMcStatusWrEn) != 0);
            // kvm_set_msr_common: MTRRphysBase_MSR(0) … MSR_MTRRfix4K_F8000, MSR_MTRRdefType → kvm_mtrr_set_msr,
            // with the guest's MAXPHYADDR (cpuid_maxphyaddr) for the variable ranges; MTRRcap is no case.
            case var _ when Mtrrs.IsMtrrMsr(index) && index != MsrIndex.MTRRcap:
                return m.Mtrr.Set(index, data, cpu.Cpuid.MaxPhyAddr);
            case MsrIndex.IA32_APICBASE:
                return SetApicBase(cpu, data, hostInitiated);
            // kvm_set_msr_common: "case MSR_IA32_TSC_DEADLINE: kvm_set_lapic_tscdeadline_msr(vcpu, data); break;" —
            // never refused; ignored without a present APIC in TSC-deadline mode.
            case TscDeadline:
                m.Lapic?.SetTscDeadlineMsr(data);
                return 0;
            // "case APIC_BASE_MSR ... APIC_BASE_MSR + 0xff: return kvm_x2apic_msr_write(vcpu, msr, data)".
            case var _ when IsX2apicMsr(index):
                return m.Lapic is { } writeApic ? writeApic.X2apicMsrWrite(index, data) : 1;
            default:
                return Unsupported;
        }
    }

    /// <summary>
    /// MSR_KVM_MIGRATION_CONTROL (0x4b564d08): no case in kvm_get_msr_common / kvm_set_msr_common — the guest's
    /// KVM_FEATURE_MIGRATION_CONTROL is for userspace to serve (an MSR filter or KVM_CAP_X86_USER_SPACE_MSR exit), and
    /// KVM does not advertise the MSR, so host accesses are refused too.
    /// </summary>
    private static int KvmPvMsr() => Unsupported;

    /// <summary>
    /// lapic.c kvm_apic_set_base (x86.c kvm_set_msr_common MSR_IA32_APICBASE; no irqchip needed): an unchanged value is
    /// taken; reserved bits — the GPA bits from the guest's MAXPHYADDR, 0x2ff, and X2APIC_ENABLE unless the guest's
    /// CPUID has x2APIC — or EXTD without ENABLE (LAPIC_MODE_INVALID) → 1; a guest may not go from x2APIC to xAPIC mode
    /// or from disabled straight to x2APIC (the host may). Then __kvm_apic_set_base (the APIC's ID/LDR follow,
    /// <see cref="Irqchip.Lapic.ApicBaseChanged"/>) and kvm_recalculate_apic_map.
    /// </summary>
    private static int SetApicBase(X86Cpu cpu, ulong value, bool hostInitiated)
    {
        if (cpu.Sregs.apic_base == value) return 0;
        if (ApicBaseRefused(cpu, value, hostInitiated)) return 1;
        cpu.Sregs.apic_base = value;
        cpu.Msrs.Lapic?.ApicBaseChanged();
        return 0;
    }

    /// <summary>
    /// The refusals of lapic.c kvm_apic_set_base for a changed value (also what KVM_SET_SREGS's __set_sregs_common
    /// needs, host_initiated): reserved bits — the GPA bits from the guest's MAXPHYADDR, 0x2ff, and X2APIC_ENABLE
    /// unless the guest's CPUID has x2APIC — or LAPIC_MODE_INVALID (EXTD without ENABLE); for the guest also x2APIC →
    /// xAPIC and disabled → x2APIC.
    /// </summary>
    internal static bool ApicBaseRefused(X86Cpu cpu, ulong value, bool hostInitiated)
    {
        const ulong Enable = Irqchip.Lapic.BaseEnable, X2apic = Irqchip.Lapic.BaseX2apic;
        int maxPhyAddr = cpu.Cpuid.MaxPhyAddr;
        ulong reserved = (maxPhyAddr >= 64 ? 0 : ulong.MaxValue << maxPhyAddr) | 0x2ff | (Irqchip.Lapic.GuestHasX2apic(cpu) ? 0 : X2apic);
        if ((value & reserved) != 0 || (value & (Enable | X2apic)) == X2apic) return true;
        if (hostInitiated) return false;
        ulong oldMode = cpu.Sregs.apic_base & (Enable | X2apic), newMode = value & (Enable | X2apic);
        return (oldMode == (Enable | X2apic) && newMode == Enable) || (oldMode == 0 && newMode == (Enable | X2apic));
    }

    /// <summary>
    /// x86.c set_efer: reserved bits → 1; a guest write must also pass __kvm_valid_efer (LME/LMA need CPUID LM, NX
    /// needs CPUID NX: an empty CPUID allows SCE only) and cannot toggle LME while paging; LMA is never written.
    /// </summary>
    private static int SetEfer(X86Cpu cpu, ulong efer, bool hostInitiated)
    {
        if ((efer & ~EferValid) != 0) return 1;
        if (!hostInitiated)
        {
            // __kvm_valid_efer: "if (efer & (EFER_LME | EFER_LMA) && !guest_cpu_cap_has(vcpu, X86_FEATURE_LM)) return
            // false; if (efer & EFER_NX && !guest_cpu_cap_has(vcpu, X86_FEATURE_NX)) return false;"
            if ((efer & (X86Consts.EFER_LME | X86Consts.EFER_LMA)) != 0 && !cpu.Cpuid.HasLongMode) return 1;
            if ((efer & X86Consts.EFER_NX) != 0 && !cpu.Cpuid.HasNx) return 1;
            if (cpu.Paging && ((cpu.Sregs.efer ^ efer) & X86Consts.EFER_LME) != 0) return 1;
        }
        efer &= ~X86Consts.EFER_LMA;
        efer |= cpu.Sregs.efer & X86Consts.EFER_LMA;
        cpu.Sregs.efer = efer;
        return 0;
    }

    /// <summary>x86.h kvm_pat_valid: no bits outside 0-2 of each byte; memory types 2 and 3 are reserved.</summary>
    public static bool IsValidPat(ulong data)
    {
        if ((data & 0xF8F8_F8F8_F8F8_F8F8) != 0) return false;
        return (data | ((data & 0x0202_0202_0202_0202) << 1)) == data;
    }

    private static bool IsCanonical(ulong v) => Canonicalize(v) == v;

    private static ulong Canonicalize(ulong v) => (ulong)((long)(v << 16) >> 16);
}
