// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using Iced.Intel;
using KvmSharp.Emulation.Arch;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// CPUID, RDMSR and WRMSR in a TD as the TDX module virtualizes them (intel/tdx-module
/// src/td_dispatcher/vm_exits/td_cpuid.c td_cpuid_exit, td_msr_access.c td_rdmsr_exit / td_wrmsr_exit and the MSR
/// table include/auto_gen/msr_config_lookup.c): what the module answers itself, what it turns into a #VE for the
/// guest's handler (exit reason 10, 31 or 32, qualification 0, GLA/GPA 0, the instruction's length — tdx_inject_ve
/// copies the VM-exit instruction length), which a Linux guest serves with TDG.VP.VMCALL&lt;Instruction.CPUID/RDMSR/WRMSR&gt;
/// (arch/x86/coco/tdx/tdx.c handle_cpuid, read_msr, write_msr; KVM's side is Arch/X86/TdVmcall.cs), and #GP. The TD's
/// CPUID controls TDCS TD_CTLS.REDUCE_VE, ENUM_TOPOLOGY and VIRT_CPUID2 are what the guest wrote with TDG.VM.WR
/// (X86Emulator.TdxVmRdWr.cs, Arch/X86/TdxMetadata.cs); CPUID_SUPERVISOR/USER_VE (TDG.VP.CPUIDVE.SET) are not
/// modelled (clear). The MSR rules are those of the module's older table (<see cref="s_tdMsrs"/>) for a TD without
/// REDUCE_VE; with REDUCE_VE the MSRs that table leaves to a #VE follow the 2.x table (<see cref="s_tdReducedVeMsrs"/>),
/// and ENUM_TOPOLOGY makes RDMSR of the x2APIC ID the module's own. In both cases the 2.x GP_OR_VE_BY_&lt;feature&gt;
/// MSRs (<see cref="s_tdFeatureMsrs"/>) and the CPUID(1)/(7,0) feature bits follow the same TDCS.CPUID_FLAGS
/// (<see cref="TdxCpuidFlags"/>: REDUCE_VE and FEATURE_PARAVIRT_CTLS), so CPUID and the MSRs agree; the same flags
/// decide REDUCE_VE's CR4.MCE rule (<see cref="TdRefusesCr4Mce"/>). Not modelled: IA32_TME_* as GP_OR_VE_BY_TME (see
/// <see cref="s_tdReducedVeMsrs"/>), and write_guest_cr4's #VE for a MOV to CR4 that changes CR4.MCE in a TD without
/// REDUCE_VE (such a write simply takes effect here).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>arch/x86/include/uapi/asm/vmx.h EXIT_REASON_CPUID, EXIT_REASON_MSR_READ, EXIT_REASON_MSR_WRITE.</summary>
    private const uint ExitReasonCpuid = 10, ExitReasonMsrRead = 31, ExitReasonMsrWrite = 32;

    /// <summary>CPUID.1:ECX.OSXSAVE (27), CPUID.(7,0):ECX.OSPKE (4), CPUID.80000001H:EDX.SYSCALL (11).</summary>
    private const uint CpuidOsxsave = 1u << 27, CpuidOspke = 1u << 4, CpuidSyscall = 1u << 11;

    private const ulong Cr4Pke = 1UL << 22, Cr4Mce = 1UL << 6;

    /// <summary>
    /// intel/tdx-module src/common/helpers/helpers.c write_guest_cr4 (main at 1666adc; reached from td_other_exits.c
    /// td_cr_access_exit for a MOV to CR4 the CR4 guest/host mask traps): with TDCS TD_CTLS.REDUCE_VE set and
    /// CPUID_FLAGS.mce_not_supported ("MCE is virtualized as not supported"), a write that changes the virtual CR4.MCE
    /// (the CR4 read shadow) from 0 to 1 is #GP(0); a write with CR4.MCE already 1 is accepted "for backward
    /// compatibility", and so is clearing it. mce_not_supported is <see cref="TdxCpuidFlags.Mce"/> clear: under
    /// REDUCE_VE unless FEATURE_PARAVIRT_CTLS.MCA is set and the configured CPUID(1).EDX.MCE is 1.
    /// </summary>
    private bool TdRefusesCr4Mce(ulong cr4)
    {
        if ((cr4 & Cr4Mce) == 0 || (_cpu.Sregs.cr4 & Cr4Mce) != 0 || !CocoState.IsTd(_kvm)) return false;
        var td = CocoState.Tdx(_kvm);
        return (TdxMetadata.Controls(td).TdCtls & TdxMetadata.TdCtlsReduceVe) != 0 && !TdxCpuidFlags.Of(td).Mce;
    }

    /// <summary>
    /// CPUID in a TD; false when the vCPU is not a TD's (the instruction then runs as in a normal VM). td_cpuid_exit
    /// (intel/tdx-module td_cpuid.c), with the TD's TD_CTLS (<see cref="TdCpuidFaults"/>, <see cref="TdReducedVeCpuid"/>):
    /// <list type="number">
    /// <item>leaves 0x40000000–0x4FFFFFFF: "always inject a #VE" (Linux handle_cpuid then asks the VMM: "Only allow
    /// VMM to control range reserved for hypervisor communication");</item>
    /// <item>a leaf above its range's maximum (the TD's leaf 0 / 0x80000000 EAX) reads the last base leaf;</item>
    /// <item>a leaf/subleaf outside the module's CPUID table (get_cpuid_lookup_entry: CPUID_LOOKUP_IDX_NA) is a #VE (all 0 with REDUCE_VE) —
    /// here the table is the TD's configured CPUID, <see cref="TdxModule.TdCpuid"/> (what KVM_TDX_GET_CPUID answers),
    /// limited to 0x80000008 in the extended range, the last leaf of the TDX module ABI's CPUID virtualization table;</item>
    /// <item>the "faulting or fixed" leaves are a #VE without REDUCE_VE: 0x2 (VIRT_CPUID2), 0x6, 0x9, 0xC, 0xF, 0x10,
    /// 0x16, 0x17, 0x1B, 0x80000002–0x80000005; 0xB and 0x1F without ENUM_TOPOLOGY;</item>
    /// <item>else the configured value, with the dynamic bits: CPUID.1 EBX[31:24] = VCPU_INDEX (the x2APIC ID with ENUM_TOPOLOGY) and OSXSAVE = CR4.OSXSAVE,
    /// CPUID.(7,0) OSPKE = CR4.PKE, CPUID.(0xD,0/1) EBX = the XSAVE area size for the current XCR0 (read from the CPU),
    /// CPUID.80000001 EDX.SYSCALL = 64-bit mode. The module writes the four registers whole (upper halves 0).</item>
    /// </list>
    /// The mutable CPUID(1) / CPUID(7,0) bits come from TDCS.CPUID_FLAGS (<see cref="TdxCpuidFlags"/>, td_cpuid_exit's
    /// "Mutable Cases"): DCA, TSC_DEADLINE, EST, TM2, MCE, MCA, MTRR, ACPI, RDT_A, RDT_M, TME, PCONFIG and
    /// IA32_CORE_CAPABILITIES — under REDUCE_VE cleared unless FEATURE_PARAVIRT_CTLS keeps them; without it the
    /// configured value, except MCE/MCA/MTRR/CORE_CAPABILITIES, which then always read 1. The TSX bits' IA32_TSX_CTRL
    /// clearing is not modelled (TSX is never configured: the model's CPU has none).
    /// </summary>
    private bool TdCpuid(in Instruction i)
    {
        if (!CocoState.IsTd(_kvm)) return false;
        uint leaf = (uint)_cpu.Gpr[X86Cpu.RAX], subleaf = (uint)_cpu.Gpr[X86Cpu.RCX];
        if (leaf is >= 0x4000_0000 and <= 0x4fff_ffff) throw TdCpuidVe(i);
        var table = TdxModule.TdCpuid(CocoState.Tdx(_kvm)).ToArray();
        uint lastBase = TdxModule.Find(table, 0, 0)?.eax ?? 0;
        uint lastExt = TdxModule.Find(table, 0x8000_0000, 0)?.eax ?? 0;
        if (leaf > lastExt || (leaf > lastBase && leaf < 0x8000_0000)) leaf = lastBase;
        ulong ctls = TdxMetadata.Controls(CocoState.Tdx(_kvm)).TdCtls; // X86Emulator.TdxVmRdWr.cs writes it
        var flags = TdxCpuidFlags.Of(CocoState.Tdx(_kvm));
        if (leaf > 0x8000_0008 || TdxModule.Find(table, leaf, subleaf) is not { } e)
        {
            if ((ctls & TdxMetadata.TdCtlsReduceVe) == 0) throw TdCpuidVe(i);
            e = TdReducedVeCpuid(leaf, subleaf);
            leaf = 0; // "Don't do the regular special handling, since it relies on the lookup tables"
        }
        else if (TdCpuidFaults(leaf, ctls, flags)) throw TdCpuidVe(i);
        switch (leaf)
        {
            case 0x1:
                (e.ecx, e.edx) = flags.ApplyLeaf1(e.ecx, e.edx);
                uint apicId = (ctls & TdxMetadata.TdCtlsEnumTopology) != 0 ? (uint)_vcpu.Id : (uint)TdxVcpuIndex.Index(_vcpu);
                e.ebx = (e.ebx & 0x00ff_ffff) | ((uint)(byte)apicId << 24);
                e.ecx = (_cpu.Sregs.cr4 & (1UL << 18)) != 0 ? e.ecx | CpuidOsxsave : e.ecx & ~CpuidOsxsave;
                break;
            case 0x7 when subleaf == 0:
                (e.ebx, e.ecx, e.edx) = flags.ApplyLeaf7(e.ebx, e.ecx, e.edx);
                e.ecx = (_cpu.Sregs.cr4 & Cr4Pke) != 0 ? e.ecx | CpuidOspke : e.ecx & ~CpuidOspke;
                break;
            case 0xd when subleaf <= 1:
                e.ebx = _cpu.Model.XstateSize(_cpu.State.Xcr0, compacted: subleaf == 1);
                break;
            case 0x8000_0001:
                e.edx = _cpu.Bitness == 64 ? e.edx | CpuidSyscall : e.edx & ~CpuidSyscall;
                break;
            case 0xb or 0x1f:
                e.edx = (uint)_vcpu.Id; // ENUM_TOPOLOGY: "EDX dynamically reflects x2APIC ID"
                break;
        }
        _cpu.Gpr[X86Cpu.RAX] = e.eax;
        _cpu.Gpr[X86Cpu.RBX] = e.ebx;
        _cpu.Gpr[X86Cpu.RCX] = e.ecx;
        _cpu.Gpr[X86Cpu.RDX] = e.edx;
        return true;
    }

    private GuestFault TdCpuidVe(in Instruction i) => InjectVe(ExitReasonCpuid, 0, 0, 0, (uint)i.Length);

    /// <summary>
    /// td_cpuid_exit's "FAULTING_OR_FIXED" leaves: 0x2 is a #VE without TD_CTLS.VIRT_CPUID2; 0x6, 0xC, 0x16, 0x17 and
    /// 0x80000002–0x80000005 without REDUCE_VE; 0x9, 0xF, 0x10 and 0x1B without REDUCE_VE or when CPUID_FLAGS says
    /// DCA, RDT_M, RDT_A or PCONFIG is supported (<see cref="TdxCpuidFlags"/>: under REDUCE_VE only with the feature's
    /// FEATURE_PARAVIRT_CTLS bit); 0xB and 0x1F without ENUM_TOPOLOGY. (REDUCE_VE turns on ENUM_TOPOLOGY and
    /// VIRT_CPUID2 when written: TdxMetadata.TryWriteTdCtls.)
    /// </summary>
    private static bool TdCpuidFaults(uint leaf, ulong ctls, TdxCpuidFlags flags)
    {
        bool reduceVe = (ctls & TdxMetadata.TdCtlsReduceVe) != 0;
        return leaf switch
        {
            0x2 => (ctls & TdxMetadata.TdCtlsVirtCpuid2) == 0,
            0x6 or 0xc or 0x16 or 0x17 or (>= 0x8000_0002 and <= 0x8000_0005) => !reduceVe,
            0x9 => !reduceVe || flags.Dca,
            0xf => !reduceVe || flags.RdtM,
            0x10 => !reduceVe || flags.RdtA,
            0x1b => !reduceVe || flags.Pconfig,
            0xb or 0x1f => (ctls & TdxMetadata.TdCtlsEnumTopology) == 0,
            _ => false,
        };
    }

    /// <summary>
    /// td_cpuid_exit with REDUCE_VE for a leaf/subleaf outside the lookup table: all 0 instead of a #VE, except 0xB
    /// and 0x1F, whose ECX[7:0] is the subleaf and EDX the x2APIC ID (KVM's tdh_vp_init passes the vCPU ID). The
    /// module's CPUID(4) from native values with REDUCE_VE is not modelled (the configured values stay).
    /// </summary>
    private Abi.kvm_cpuid_entry2 TdReducedVeCpuid(uint leaf, uint subleaf)
    {
        var e = new Abi.kvm_cpuid_entry2 { function = leaf, index = subleaf };
        if (leaf is 0xb or 0x1f)
        {
            e.ecx = subleaf & 0xff;
            e.edx = (uint)_vcpu.Id;
        }
        return e;
    }

    /// <summary>What the TDX module does with one direction of an MSR (msr_config_lookup.c: bitmap bit and action).</summary>
    private enum TdMsr : byte
    {
        /// <summary>Not in the table (or action VE / GP_OR_VE without REDUCE_VE): #VE.</summary>
        Ve,
        /// <summary>MSR bitmap bit fixed 0: no exit, the CPU executes it on the TD's own MSR state.</summary>
        Native,
        /// <summary>Action GP (or a DYN_* bit whose feature the TD lacks, with action GP): #GP(0).</summary>
        Gp,
        /// <summary>The module handles it itself (action OTHER): see <see cref="TdModuleMsr"/>.</summary>
        Module,
    }

    /// <summary>
    /// intel/tdx-module include/auto_gen/msr_config_lookup.c, by address: (first, last, read, write). The DYN_* entries
    /// (PERFMON, XFAM PT/CET/LBR/ULI, TSX, UMWAIT, PKS, XFD, PERF_METRICS) exit with action GP here: the TD has none of
    /// those features (KVM_SUPPORTED_TD_ATTRS lacks PERFMON; the supported XFAM is x87/SSE/AVX/PKRU). MSRs in the
    /// bitmap ranges that the table leaves out are #VE ("To save space all MSR's with Fixed-1 RD+WR exit which result
    /// in #VE aren't stored in the lookup table"): IA32_APIC_BASE, FEATURE_CONTROL, MTRRs, MCA, and the x2APIC
    /// registers APICv does not virtualize (ID, version, LDR, SVR, ESR, ICR, LVTs, timer) — what KVM's
    /// tdx_has_emulated_msr expects through TDG.VP.VMCALL.
    /// </summary>
    private static readonly (uint First, uint Last, TdMsr Read, TdMsr Write)[] s_tdMsrs =
    [
        (0x10, 0x10, TdMsr.Native, TdMsr.Ve),                // IA32_TIME_STAMP_COUNTER
        (0x48, 0x49, TdMsr.Native, TdMsr.Native),            // IA32_SPEC_CTRL, IA32_PRED_CMD
        (0x87, 0x87, TdMsr.Ve, TdMsr.Ve),                    // IA32_MKTME_PARTITIONING (GP_OR_VE)
        (0x8c, 0x8f, TdMsr.Gp, TdMsr.Gp),                    // IA32_SGXLEPUBKEYHASHx
        (0x98, 0x9b, TdMsr.Gp, TdMsr.Gp),                    // WBINVDP, WBNOINVDP, INTR_PENDING, SMM_MONITOR_CTL
        (0x9e, 0x9e, TdMsr.Gp, TdMsr.Gp),                    // IA32_SMBASE
        (0xbc, 0xbc, TdMsr.Native, TdMsr.Ve),                // IA32_MISC_PACKAGE_CTLS
        (0xbd, 0xbd, TdMsr.Module, TdMsr.Native),            // IA32_XAPIC_DISABLE_STATUS
        (0xc1, 0xc8, TdMsr.Gp, TdMsr.Gp),                    // IA32_PMCx (DYN_PERFMON)
        (0xe1, 0xe1, TdMsr.Gp, TdMsr.Gp),                    // IA32_UMWAIT_CONTROL (DYN_UMWAIT)
        (0x10a, 0x10a, TdMsr.Module, TdMsr.Native),          // IA32_ARCH_CAPABILITIES
        (0x10b, 0x10b, TdMsr.Native, TdMsr.Native),          // IA32_FLUSH_CMD
        (0x122, 0x122, TdMsr.Gp, TdMsr.Gp),                  // IA32_TSX_CTRL (DYN_TSX)
        (0x174, 0x176, TdMsr.Native, TdMsr.Native),          // IA32_SYSENTER_CS/ESP/EIP
        (0x186, 0x18d, TdMsr.Gp, TdMsr.Gp),                  // IA32_PERFEVTSELx (PERFMON off: wrmsr_ia32_perfevtsel #GP)
        (0x195, 0x195, TdMsr.Gp, TdMsr.Gp),                  // IA32_OVERCLOCKING_STATUS
        (0x1a0, 0x1a0, TdMsr.Module, TdMsr.Ve),              // IA32_MISC_ENABLE (write: td_wrmsr_exit, no REDUCE_VE: #VE)
        (0x1a6, 0x1a7, TdMsr.Gp, TdMsr.Gp),                  // MSR_OFFCORE_RSPx
        (0x1c4, 0x1c5, TdMsr.Gp, TdMsr.Gp),                  // IA32_XFD, IA32_XFD_ERR (DYN_XFD)
        (0x1d9, 0x1d9, TdMsr.Module, TdMsr.Module),          // IA32_DEBUGCTL
        (0x1f8, 0x1fa, TdMsr.Ve, TdMsr.Ve),                  // DCA caps (GP_OR_VE)
        (0x276, 0x276, TdMsr.Gp, TdMsr.Gp),                  // MSR_SLAM_ENABLE
        (0x277, 0x277, TdMsr.Native, TdMsr.Native),          // IA32_PAT
        (0x309, 0x310, TdMsr.Gp, TdMsr.Gp),                  // IA32_FIXED_CTRx
        (0x329, 0x329, TdMsr.Gp, TdMsr.Gp),                  // IA32_PERF_METRICS
        (0x345, 0x345, TdMsr.Module, TdMsr.Gp),              // IA32_PERF_CAPABILITIES
        (0x38d, 0x392, TdMsr.Gp, TdMsr.Gp),                  // FIXED_CTR_CTRL, PERF_GLOBAL_*
        (0x3f1, 0x3f2, TdMsr.Gp, TdMsr.Gp),                  // IA32_PEBS_ENABLE, MSR_PEBS_MATRIX_VECT
        (0x3f6, 0x3f7, TdMsr.Gp, TdMsr.Gp),                  // MSR_PEBS_LD_LATENCY, MSR_PEBS_FRONTEND
        (0x480, 0x480, TdMsr.Module, TdMsr.Gp),              // IA32_VMX_BASIC
        (0x481, 0x484, TdMsr.Ve, TdMsr.Gp),                  // IA32_VMX_PINBASED/PROCBASED/EXIT/ENTRY_CTLS
        (0x485, 0x489, TdMsr.Module, TdMsr.Gp),              // IA32_VMX_MISC, CR0/CR4_FIXED0/1
        (0x48a, 0x48a, TdMsr.Ve, TdMsr.Gp),                  // IA32_VMX_VMCS_ENUM
        (0x48b, 0x492, TdMsr.Module, TdMsr.Gp),              // IA32_VMX_PROCBASED_CTLS2 … PROCBASED_CTLS3
        (0x4c1, 0x4c8, TdMsr.Gp, TdMsr.Gp),                  // IA32_A_PMCx
        (0x500, 0x500, TdMsr.Gp, TdMsr.Gp),                  // IA32_SGX_SVN_STATUS
        (0x560, 0x561, TdMsr.Gp, TdMsr.Gp),                  // IA32_RTIT_OUTPUT_* (DYN_XFAM_PT)
        (0x570, 0x572, TdMsr.Gp, TdMsr.Gp),                  // IA32_RTIT_CTL, STATUS, CR3_MATCH
        (0x580, 0x587, TdMsr.Gp, TdMsr.Gp),                  // IA32_RTIT_ADDRx_A/B
        (0x600, 0x600, TdMsr.Native, TdMsr.Native),          // IA32_DS_AREA
        (0x6a0, 0x6a0, TdMsr.Gp, TdMsr.Gp),                  // IA32_U_CET (DYN_XFAM_CET)
        (0x6a2, 0x6a2, TdMsr.Gp, TdMsr.Gp),                  // IA32_S_CET
        (0x6a4, 0x6a8, TdMsr.Gp, TdMsr.Gp),                  // IA32_PLx_SSP, INTERRUPT_SSP_TABLE_ADDR
        (0x6e0, 0x6e0, TdMsr.Ve, TdMsr.Ve),                  // IA32_TSC_DEADLINE (GP_OR_VE_BY_TSC_DEADLINE)
        (0x6e1, 0x6e1, TdMsr.Gp, TdMsr.Gp),                  // IA32_PKRS (DYN_PKS)
        (0x800, 0x801, TdMsr.Gp, TdMsr.Gp),                  // reserved x2APIC
        (0x804, 0x807, TdMsr.Gp, TdMsr.Gp),                  // reserved x2APIC
        (0x808, 0x80c, TdMsr.Native, TdMsr.Native),          // x2APIC TPR, 0x809, PPR, EOI, 0x80C (APICv)
        (0x80e, 0x80e, TdMsr.Native, TdMsr.Native),          // reserved x2APIC, bitmap 0
        (0x810, 0x827, TdMsr.Native, TdMsr.Native),          // x2APIC ISRx, TMRx, IRRx (APICv)
        (0x829, 0x82e, TdMsr.Gp, TdMsr.Gp),                  // reserved x2APIC
        (0x831, 0x831, TdMsr.Gp, TdMsr.Gp),                  // reserved x2APIC
        (0x83f, 0x83f, TdMsr.Native, TdMsr.Native),          // x2APIC SELF_IPI (APICv)
        (0x840, 0x8ff, TdMsr.Gp, TdMsr.Gp),                  // reserved x2APIC
        (0x981, 0x984, TdMsr.Ve, TdMsr.Ve),                  // IA32_TME_* (GP_OR_VE)
        (0x985, 0x98a, TdMsr.Gp, TdMsr.Gp),                  // IA32_UINTR_* (DYN_XFAM_ULI)
        (0xc80, 0xc80, TdMsr.Native, TdMsr.Ve),              // IA32_DEBUG_INTERFACE
        (0xd90, 0xd90, TdMsr.Gp, TdMsr.Gp),                  // IA32_BNDCFGS
        (0xd93, 0xd93, TdMsr.Gp, TdMsr.Gp),                  // IA32_PASID
        (0xda0, 0xda0, TdMsr.Native, TdMsr.Module),          // IA32_XSS
        (0x1200, 0x12ff, TdMsr.Gp, TdMsr.Gp),                // IA32_LBR_INFO (DYN_XFAM_LBR)
        (0x14ce, 0x14cf, TdMsr.Gp, TdMsr.Gp),                // IA32_LBR_CTL, IA32_LBR_DEPTH
        (0x1500, 0x16ff, TdMsr.Gp, TdMsr.Gp),                // IA32_LBR_x_FROM_IP, IA32_LBR_x_TO_IP
        (0x1b01, 0x1b01, TdMsr.Native, TdMsr.Native),        // IA32_UARCH_MISC_CTL
        (0xc000_0080, 0xc000_0080, TdMsr.Native, TdMsr.Module), // IA32_EFER
        (0xc000_0081, 0xc000_0082, TdMsr.Native, TdMsr.Native), // IA32_STAR, IA32_LSTAR
        (0xc000_0084, 0xc000_0084, TdMsr.Native, TdMsr.Native), // IA32_FMASK
        (0xc000_0100, 0xc000_0103, TdMsr.Native, TdMsr.Native), // FS/GS/KERNEL_GS_BASE, IA32_TSC_AUX
    ];

    /// <summary>
    /// intel/tdx-module include/auto_gen_2_0/msr_config_lookup.c (with td_rdmsr_exit / td_wrmsr_exit's special cases)
    /// for the MSRs <see cref="s_tdMsrs"/> leaves to a #VE, as a TD with TD_CTLS.REDUCE_VE sees them: only the rows
    /// whose answer is not #GP. rd_wr_msr_generic_case with REDUCE_VE: an MSR missing from the table, action
    /// GP_OR_VE_BY_REDUCED_VE, GP_OR_VE or an unhandled OTHER is #GP; the GP_OR_VE_BY_&lt;feature&gt; actions are
    /// <see cref="s_tdFeatureMsrs"/> (a #VE only while CPUID_FLAGS has the feature, which under REDUCE_VE needs its
    /// FEATURE_PARAVIRT_CTLS bit), except TME's (IA32_TME_*, 0x981–0x984: that part of the table was not read, so
    /// they stay #GP under REDUCE_VE, which is right while TME is not configured — the model's CPU has none). The VMX capability MSRs the module does not
    /// virtualize (PINBASED/PROCBASED/EXIT/ENTRY_CTLS, VMCS_ENUM) read as #GP (td_rdmsr_exit). The x2APIC registers
    /// APICv does not virtualize stay as the 2.x table defines them: #VE (KVM emulates them through
    /// TDG.VP.VMCALL), #GP for writes of the read-only ones (ID, version, LDR, current count) and the reserved 0x83B–0x83D.
    /// Native here marks a direction whose bitmap bit is 0 (the old table's rule applies first).
    /// </summary>
    private static readonly (uint First, uint Last, TdMsr Read, TdMsr Write)[] s_tdReducedVeMsrs =
    [
        (0x0, 0x1, TdMsr.Ve, TdMsr.Ve),                      // IA32_P5_MC_ADDR, IA32_P5_MC_TYPE
        (0x6, 0x6, TdMsr.Ve, TdMsr.Ve),                      // IA32_MONITOR_FILTER_SIZE
        (0x10, 0x10, TdMsr.Native, TdMsr.Ve),                // IA32_TIME_STAMP_COUNTER
        (0x17, 0x17, TdMsr.Ve, TdMsr.Gp),                    // IA32_PLATFORM_ID (write GP_OR_VE_BY_REDUCED_VE)
        (0x1b, 0x1b, TdMsr.Ve, TdMsr.Ve),                    // IA32_APIC_BASE
        (0x34, 0x34, TdMsr.Module, TdMsr.Module),            // MSR_SMI_COUNT: the TDVPS copy
        (0x3a, 0x3a, TdMsr.Module, TdMsr.Gp),                // IA32_FEATURE_CONTROL: reads 1 (locked)
        (0x4e, 0x4e, TdMsr.Module, TdMsr.Gp),                // IA32_PPIN_CTL: reads 1 (locked)
        (0x79, 0x79, TdMsr.Gp, TdMsr.Module),                // IA32_BIOS_UPDT_TRIG: write ignored
        (0x8b, 0x8b, TdMsr.Module, TdMsr.Module),            // IA32_BIOS_SIGN_ID: reads 0xFFFFFFFF, write ignored
        (0xbc, 0xbc, TdMsr.Native, TdMsr.Ve),                // IA32_MISC_PACKAGE_CTLS
        (0xce, 0xce, TdMsr.Module, TdMsr.Gp),                // MSR_PLATFORM_INFO: reads 0
        (0x140, 0x140, TdMsr.Module, TdMsr.Module),          // MSR_FEATURE_ENABLES: reads 0, only 0 written
        (0x1a0, 0x1a0, TdMsr.Module, TdMsr.Module),          // IA32_MISC_ENABLE: write wrmsr_ia32_misc_enable
        (0x802, 0x802, TdMsr.Module, TdMsr.Gp),              // IA32_X2APIC_APICID (read: ENUM_TOPOLOGY, on with REDUCE_VE)
        (0x803, 0x803, TdMsr.Ve, TdMsr.Gp),                  // IA32_X2APIC_VERSION
        (0x80d, 0x80d, TdMsr.Ve, TdMsr.Gp),                  // IA32_X2APIC_LDR
        (0x80f, 0x80f, TdMsr.Ve, TdMsr.Ve),                  // IA32_X2APIC_SIVR
        (0x828, 0x828, TdMsr.Ve, TdMsr.Ve),                  // IA32_X2APIC_ESR
        (0x82f, 0x830, TdMsr.Ve, TdMsr.Ve),                  // IA32_X2APIC_LVT_CMCI, ICR
        (0x832, 0x838, TdMsr.Ve, TdMsr.Ve),                  // IA32_X2APIC_LVT_TIMER … LVT_ERROR, INIT_COUNT
        (0x839, 0x839, TdMsr.Ve, TdMsr.Gp),                  // IA32_X2APIC_CUR_COUNT
        (0x83a, 0x83a, TdMsr.Ve, TdMsr.Ve),                  // IA32_X2APIC_LVT_HWP
        (0x83e, 0x83e, TdMsr.Ve, TdMsr.Ve),                  // IA32_X2APIC_DIV_CONF
        (0xc000_0083, 0xc000_0083, TdMsr.Ve, TdMsr.Ve),      // IA32_CSTAR
    ];

    /// <summary>The CPUID_FLAGS feature a GP_OR_VE_BY_&lt;feature&gt; action tests (td_msr_access.c rd_wr_msr_generic_case).</summary>
    private enum TdFeature : byte
    {
        /// <summary>Not such an action for this direction (the other tables decide).</summary>
        None,
        Mca,
        Mtrr,
        Est,
        Acpi,
        Tm2,
        Dca,
        TscDeadline,
        CoreCapabilities,
        Pconfig,
        RdtA,
        RdtM,
    }

    /// <summary>
    /// The rows of intel/tdx-module include/auto_gen_2_0/msr_config_lookup.c (1666adc) whose read or write action is
    /// GP_OR_VE_BY_&lt;feature&gt;, by address: (first, last, read feature, write feature). rd_wr_msr_generic_case
    /// answers them #GP when CPUID_FLAGS lacks the feature and #VE (VE_INFO_CONFIG_PARAVIRT) when it has it — the
    /// same flags td_cpuid_exit reports in CPUID (<see cref="TdxCpuidFlags"/>), so the MSRs and CPUID agree with and
    /// without REDUCE_VE. A direction marked None has action GP there (MTRRCAP, MCG_CAP and CORE_CAPABILITIES writes).
    /// </summary>
    private static readonly (uint First, uint Last, TdFeature Read, TdFeature Write)[] s_tdFeatureMsrs =
    [
        (0x33, 0x33, TdFeature.CoreCapabilities, TdFeature.CoreCapabilities), // MSR_MEMORY_CTRL
        (0x87, 0x87, TdFeature.Pconfig, TdFeature.Pconfig),                   // IA32_MKTME_PARTITIONING
        (0xcf, 0xcf, TdFeature.CoreCapabilities, TdFeature.None),             // IA32_CORE_CAPABILITIES
        (0xed, 0xf0, TdFeature.CoreCapabilities, TdFeature.CoreCapabilities), // MSR_RAR_CONTROL … MSR_RAR_INFO
        (0xfe, 0xfe, TdFeature.Mtrr, TdFeature.None),                         // IA32_MTRRCAP
        (0x179, 0x179, TdFeature.Mca, TdFeature.None),                        // IA32_MCG_CAP
        (0x17a, 0x17b, TdFeature.Mca, TdFeature.Mca),                         // IA32_MCG_STATUS, IA32_MCG_CTL
        (0x198, 0x199, TdFeature.Est, TdFeature.Est),                         // IA32_PERF_STATUS, IA32_PERF_CTL
        (0x19a, 0x19c, TdFeature.Acpi, TdFeature.Acpi),                       // IA32_CLOCK_MODULATION, THERM_INTERRUPT/STATUS
        (0x19d, 0x19d, TdFeature.Tm2, TdFeature.Tm2),                         // MSR_THERM2_CTL
        (0x1f2, 0x1f3, TdFeature.Mtrr, TdFeature.Mtrr),                       // IA32_SMRR_PHYSBASE/MASK
        (0x1f6, 0x1f7, TdFeature.Mtrr, TdFeature.Mtrr),                       // IA32_SMRR2_PHYSBASE/MASK
        (0x1f8, 0x1fa, TdFeature.Dca, TdFeature.Dca),                         // IA32_PLATFORM_DCA_CAP, CPU_DCA_CAP, DCA_0_CAP
        (0x200, 0x213, TdFeature.Mtrr, TdFeature.Mtrr),                       // IA32_MTRR_PHYSBASE0 … PHYSMASK9
        (0x250, 0x250, TdFeature.Mtrr, TdFeature.Mtrr),                       // IA32_MTRR_FIX64K_00000
        (0x258, 0x259, TdFeature.Mtrr, TdFeature.Mtrr),                       // IA32_MTRR_FIX16K_*
        (0x268, 0x26f, TdFeature.Mtrr, TdFeature.Mtrr),                       // IA32_MTRR_FIX4K_*
        (0x280, 0x29f, TdFeature.Mca, TdFeature.Mca),                         // IA32_MCx_CTL2
        (0x2a0, 0x2a7, TdFeature.Mtrr, TdFeature.Mtrr),                       // IA32_PRMRR_BASEx
        (0x2c0, 0x2c1, TdFeature.Mtrr, TdFeature.Mtrr),                       // IA32_FUSARR_BASE/MASK
        (0x2ff, 0x2ff, TdFeature.Mtrr, TdFeature.Mtrr),                       // IA32_MTRR_DEF_TYPE
        (0x400, 0x473, TdFeature.Mca, TdFeature.Mca),                         // IA32_MC0_CTL … IA32_MC28_MISC
        (0x4d0, 0x4d0, TdFeature.Mca, TdFeature.Mca),                         // IA32_MCG_EXT_CTL
        (0x6e0, 0x6e0, TdFeature.TscDeadline, TdFeature.TscDeadline),         // IA32_TSC_DEADLINE
        (0xc81, 0xc82, TdFeature.RdtA, TdFeature.RdtA),                       // IA32_L3_QOS_CFG, IA32_L2_QOS_CFG
        (0xc8d, 0xc8f, TdFeature.RdtM, TdFeature.RdtM),                       // IA32_QM_EVTSEL, IA32_QM_CTR, IA32_PQR_ASSOC
        (0xc90, 0xd8f, TdFeature.RdtA, TdFeature.RdtA),                       // IA32_L3/L2_QOS_MASK_x, L2_QOS_Ext_BW_Thrtl_x
    ];

    private static bool Has(TdxCpuidFlags f, TdFeature feature) => feature switch
    {
        TdFeature.Mca => f.Mca,
        TdFeature.Mtrr => f.Mtrr,
        TdFeature.Est => f.Est,
        TdFeature.Acpi => f.Acpi,
        TdFeature.Tm2 => f.Tm2,
        TdFeature.Dca => f.Dca,
        TdFeature.TscDeadline => f.TscDeadline,
        TdFeature.CoreCapabilities => f.CoreCapabilities,
        TdFeature.Pconfig => f.Pconfig,
        TdFeature.RdtA => f.RdtA,
        TdFeature.RdtM => f.RdtM,
        _ => false,
    };

    private const uint MsrX2ApicId = 0x802;

    /// <summary>
    /// The TDX module's rule for RDMSR/WRMSR of <paramref name="msr"/> in a TD with TD_CTLS <paramref name="ctls"/>.
    /// rd_wr_msr_generic_checks: an MSR outside the MSR bitmap's ranges (0–0x1FFF, 0xC0000000–0xC0001FFF) is a #VE
    /// whatever the controls (VE_INFO_NON_CONFIG_PARAVIRT); else <see cref="s_tdMsrs"/>, and a #VE for an MSR the table
    /// leaves out (rd_wr_msr_generic_case). WRMSR of the VMX capability MSRs is #GP (td_wrmsr_exit). td_rdmsr_exit
    /// answers RDMSR of IA32_X2APIC_APICID itself with ENUM_TOPOLOGY. An MSR the old table leaves to a #VE whose 2.x
    /// action is GP_OR_VE_BY_&lt;feature&gt; (<see cref="s_tdFeatureMsrs"/>) is a #VE while <paramref name="flags"/> has
    /// the feature and #GP otherwise, with or without REDUCE_VE (without it the flags are the configured CPUID bits, and
    /// MCA/MTRR/CORE_CAPABILITIES always on). With REDUCE_VE any other MSR the old table leaves to a #VE follows
    /// <see cref="s_tdReducedVeMsrs"/>, #GP where that has no row.
    /// </summary>
    private static TdMsr TdMsrRule(uint msr, bool write, ulong ctls, TdxCpuidFlags flags)
    {
        if (msr is not (<= 0x1fff or (>= 0xc000_0000 and <= 0xc000_1fff))) return TdMsr.Ve;
        if (msr == MsrX2ApicId && !write && (ctls & TdxMetadata.TdCtlsEnumTopology) != 0) return TdMsr.Module;
        var rule = Lookup(s_tdMsrs, msr, write) ?? TdMsr.Ve;
        if (rule == TdMsr.Ve && FeatureOf(msr, write) is { } feature and not TdFeature.None)
            return Has(flags, feature) ? TdMsr.Ve : TdMsr.Gp;
        if (rule != TdMsr.Ve || (ctls & TdxMetadata.TdCtlsReduceVe) == 0) return rule;
        return Lookup(s_tdReducedVeMsrs, msr, write) ?? TdMsr.Gp;
    }

    private static TdFeature? FeatureOf(uint msr, bool write)
    {
        foreach (var (first, last, read, wr) in s_tdFeatureMsrs)
        {
            if (msr < first) break;
            if (msr <= last) return write ? wr : read;
        }
        return null;
    }

    private static TdMsr? Lookup((uint First, uint Last, TdMsr Read, TdMsr Write)[] table, uint msr, bool write)
    {
        foreach (var (first, last, read, wr) in table)
        {
            if (msr < first) break;
            if (msr <= last) return write ? wr : read;
        }
        return null;
    }

    /// <summary>
    /// RDMSR/WRMSR in a TD; false when the vCPU is not a TD's. The CPU's CPL check comes first (#GP(0) at CPL &gt; 0,
    /// before any VM exit); then <see cref="TdMsrRule"/>: a #VE with exit reason 31 (RDMSR) or 32 (WRMSR), #GP(0), the
    /// access on the TD's own MSR state (<see cref="ModelSpecificRegister"/>, which #GPs what the CPU refuses), or the
    /// module's own handling.
    /// </summary>
    private bool TdModelSpecificRegister(in Instruction i)
    {
        if (!CocoState.IsTd(_kvm)) return false;
        RequireCpl0();
        uint msr = (uint)_cpu.Gpr[X86Cpu.RCX];
        bool write = i.Mnemonic == Mnemonic.Wrmsr;
        var td = CocoState.Tdx(_kvm);
        ulong ctls = TdxMetadata.Controls(td).TdCtls; // X86Emulator.TdxVmRdWr.cs writes it
        switch (TdMsrRule(msr, write, ctls, TdxCpuidFlags.Of(td)))
        {
            case TdMsr.Ve:
                throw InjectVe(write ? ExitReasonMsrWrite : ExitReasonMsrRead, 0, 0, 0, (uint)i.Length);
            case TdMsr.Gp:
                throw new GuestFault(GP_VECTOR, 0);
            case TdMsr.Native:
                ModelSpecificRegister(i); // X86Emulator.UserSpaceMsr.cs
                break;
            default:
                TdModuleMsr(i, msr, write);
                break;
        }
        return true;
    }

    /// <summary>
    /// The MSRs td_msr_access.c handles itself (action OTHER):
    /// <list type="bullet">
    /// <item>WRMSR IA32_EFER (wrmsr_ia32_efer): LMA keeps its value, only SCE may change; any other change is a #VE.</item>
    /// <item>WRMSR IA32_XSS (wrmsr_ia32_xss): a bit outside the supported XSS and XFAM is #GP — the TD's XFAM has no
    /// supervisor state here, so only 0 is written.</item>
    /// <item>RDMSR IA32_PERF_CAPABILITIES (rdmsr_ia32_perf_capabilities): 0 without ATTRIBUTES.PERFMON.</item>
    /// <item>RDMSR IA32_X2APIC_APICID with ENUM_TOPOLOGY: EDX 0, EAX the vCPU's x2APIC ID (TDCS.X2APIC_IDS, which KVM's
    /// tdh_vp_init sets to the vCPU ID).</item>
    /// <item>With REDUCE_VE (td_rdmsr_exit / td_wrmsr_exit): MSR_SMI_COUNT reads and writes a per-vCPU copy (TDVPS,
    /// initially 0), IA32_FEATURE_CONTROL and IA32_PPIN_CTL read 1, IA32_BIOS_SIGN_ID reads 0xFFFFFFFF, MSR_PLATFORM_INFO
    /// and MSR_FEATURE_ENABLES read 0, WRMSR of IA32_BIOS_UPDT_TRIG and IA32_BIOS_SIGN_ID is ignored, WRMSR of
    /// MSR_FEATURE_ENABLES other than 0 is #GP, and WRMSR IA32_MISC_ENABLE is <see cref="TdWriteMiscEnable"/>.</item>
    /// <item>IA32_DEBUGCTL (rdmsr_ia32_debugctl: bit 13 reads 0; wrmsr_ia32_debugctl: reserved bits #GP, bit 13
    /// kept), IA32_MISC_ENABLE, IA32_ARCH_CAPABILITIES, IA32_XAPIC_DISABLE_STATUS and the VMX capability MSRs read the
    /// module's virtual values, which the model takes from the vCPU's MSR state (<see cref="ModelSpecificRegister"/>:
    /// #GP where that has none) — an approximation, not the module's computed values.</item>
    /// </list>
    /// </summary>
    private void TdModuleMsr(in Instruction i, uint msr, bool write)
    {
        ulong value = (_cpu.Gpr[X86Cpu.RDX] << 32) | (uint)_cpu.Gpr[X86Cpu.RAX];
        switch (msr)
        {
            case 0xc000_0080 when write:
            {
                ulong old = _cpu.Sregs.efer;
                ulong next = (value & ~EFER_LMA) | (old & EFER_LMA);
                if ((next & ~EFER_SCE) != (old & ~EFER_SCE))
                    throw InjectVe(ExitReasonMsrWrite, 0, 0, 0, (uint)i.Length);
                _cpu.Sregs.efer = next;
                return;
            }
            case 0xda0 when write:
                if (value != 0) throw new GuestFault(GP_VECTOR, 0);
                ModelSpecificRegister(i);
                return;
            case 0x345:
                TdRdmsrResult(0);
                return;
            case MsrX2ApicId:
                TdRdmsrResult((uint)_vcpu.Id);
                return;
            case 0x34:
                var smiCount = s_tdSmiCount.GetValue(_cpu, _ => new StrongBox<ulong>());
                if (write) smiCount.Value = value;
                else TdRdmsrResult(smiCount.Value);
                return;
            case 0x3a or 0x4e:
                TdRdmsrResult(1);
                return;
            case 0x8b or 0x79:
                if (!write) TdRdmsrResult(0xffff_ffff);
                return;
            case 0xce:
                TdRdmsrResult(0);
                return;
            case 0x140:
                if (write && value != 0) throw new GuestFault(GP_VECTOR, 0);
                if (!write) TdRdmsrResult(0);
                return;
            case 0x1a0 when write:
                TdWriteMiscEnable(i, value);
                return;
            default:
                ModelSpecificRegister(i);
                if (msr == 0x1d9 && !write) _cpu.Gpr[X86Cpu.RAX] &= ~(1UL << 13);
                return;
        }
    }

    /// <summary>MSR_SMI_COUNT's TDVPS copy per vCPU (td_rdmsr_exit / td_wrmsr_exit with REDUCE_VE).</summary>
    private static readonly ConditionalWeakTable<X86Cpu, StrongBox<ulong>> s_tdSmiCount = [];

    /// <summary>rdmsr_set_value_in_tdvps: EDX:EAX = the value, upper halves 0.</summary>
    private void TdRdmsrResult(ulong value)
    {
        _cpu.Gpr[X86Cpu.RAX] = (uint)value;
        _cpu.Gpr[X86Cpu.RDX] = value >> 32;
    }

    /// <summary>wrmsr_ia32_misc_enable: bits outside 0x00C51889 ("GP_ON_NON_0_MASK").</summary>
    private const ulong MiscEnableGpOnNon0 = 0xFFFF_FFFF_FF3A_E776;

    /// <summary>
    /// wrmsr_ia32_misc_enable (td_wrmsr_exit with REDUCE_VE): a bit of GP_ON_NON_0_MASK set is #GP; PERFMON_AVAILABLE
    /// (7), BTS_UNAVAILABLE (11) and PEBS_UNAVAILABLE (12) keep the TD's values; EST (16) without the EST CPUID flag
    /// is #GP (<see cref="TdxCpuidFlags.Est"/>: under REDUCE_VE it needs FEATURE_PARAVIRT_CTLS.EST); a
    /// change of ENABLE_MONITOR_FSM (18) or LIMIT_CPUID_MAXVAL (22) set is a #VE (VE_INFO_UNSUPPORTED_FEATURE); xTPR
    /// message disable (23) without CPUID.1:ECX.xTPR (14) is #GP; else the TD's value (TDVPS, not the hardware) changes.
    /// </summary>
    private void TdWriteMiscEnable(in Instruction i, ulong value)
    {
        const ulong KeepMask = (1UL << 7) | (1UL << 11) | (1UL << 12);
        const ulong Est = 1UL << 16, MonitorFsm = 1UL << 18, LimitCpuid = 1UL << 22, XtprDisable = 1UL << 23;
        if ((value & MiscEnableGpOnNon0) != 0 || ((value & Est) != 0 && !TdxCpuidFlags.Of(CocoState.Tdx(_kvm)).Est))
            throw new GuestFault(GP_VECTOR, 0);
        ulong old = _cpu.Msrs.MiscEnable;
        value = (value & ~KeepMask) | (old & KeepMask);
        if (((value ^ old) & MonitorFsm) != 0 || (value & LimitCpuid) != 0)
            throw InjectVe(ExitReasonMsrWrite, 0, 0, 0, (uint)i.Length);
        var f1 = TdxModule.Find(TdxModule.TdCpuid(CocoState.Tdx(_kvm)).ToArray(), 1, 0);
        if ((value & XtprDisable) != 0 && ((f1?.ecx ?? 0) & (1u << 14)) == 0) throw new GuestFault(GP_VECTOR, 0);
        _cpu.Msrs.MiscEnable = value;
    }
}
