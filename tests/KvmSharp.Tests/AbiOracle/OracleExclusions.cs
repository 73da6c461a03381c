// SPDX-License-Identifier: MIT
namespace KvmSharp.Tests.AbiOracle;

/// <summary>
/// The Abi members the oracle deliberately does not check, each with why. Anything else the Abi defines must be
/// printed by oracle.c (AbiOracleTests fails otherwise), so a new constant cannot slip in unchecked. Keyed by
/// "Type.Member" as <see cref="AbiValue.Member"/> spells it.
/// </summary>
internal static class OracleExclusions
{
    public static IReadOnlyDictionary<string, string> Reasons { get; } = Build();

    private static Dictionary<string, string> Build()
    {
        var r = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string reason, params string[] members)
        {
            foreach (string m in members) r.Add(m, reason);
        }

        Add("NOT UAPI: Intel GHCI TDG.VP.VMCALL sub-functions and status codes (arch/x86/include/asm/shared/tdx.h, the GHCI specification); kvm.h only carries them through kvm_run.tdx",
            "TdxGhci.TDVMCALL_GET_TD_VM_CALL_INFO", "TdxGhci.TDVMCALL_MAP_GPA", "TdxGhci.TDVMCALL_GET_QUOTE",
            "TdxGhci.TDVMCALL_REPORT_FATAL_ERROR", "TdxGhci.TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT",
            "TdxGhci.EXIT_REASON_CPUID", "TdxGhci.EXIT_REASON_HLT", "TdxGhci.EXIT_REASON_IO_INSTRUCTION",
            "TdxGhci.EXIT_REASON_MSR_READ", "TdxGhci.EXIT_REASON_MSR_WRITE", "TdxGhci.EXIT_REASON_EPT_VIOLATION",
            "TdxGhci.TDVMCALL_STATUS_SUCCESS", "TdxGhci.TDVMCALL_STATUS_RETRY", "TdxGhci.TDVMCALL_STATUS_INVALID_OPERAND",
            "TdxGhci.TDVMCALL_STATUS_ALIGN_ERROR", "TdxGhci.TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED");

        Add("ARM64 ONLY: arch/arm64/include/uapi/asm/kvm.h KVM_COALESCED_MMIO_PAGE_OFFSET (1); the vendored asm/kvm.h is x86's (2, checked)",
            "KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_ARM64");

        // Proposals: numbers from unmerged patch series (UapiProposals chooses them per kernel); upstream has none.
        Add("PROPOSAL: KVM_SET_MEMORY_ATTRIBUTES2, guest_memfd in-place conversion v8 (unmerged)",
            "KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2");
        Add("PROPOSAL: KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, in-place conversion v8 (unmerged; RFCs used other numbers)",
            "KvmCaps.KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES");
        Add("PROPOSAL: GUEST_MEMFD_FLAG_NO_DIRECT_MAP, '[PATCH v12 10/16] KVM: guest_memfd: Add flag to remove from direct map' (unmerged; 1ULL << 2 since v8)",
            "KvmConstants.GUEST_MEMFD_FLAG_NO_DIRECT_MAP");
        Add("PROPOSAL: struct kvm_memory_attributes2, in-place conversion v8 [PATCH v8 14/46] (unmerged)",
            "kvm_memory_attributes2 (size)", "kvm_memory_attributes2.offset", "kvm_memory_attributes2.size",
            "kvm_memory_attributes2.attributes", "kvm_memory_attributes2.flags", "kvm_memory_attributes2.error_offset",
            "kvm_memory_attributes2.reserved");

        Add("PROPOSAL: KVM Userfault, '[PATCH v3 04/15] KVM: Add common infrastructure for KVM Userfaults' and '[PATCH v3 07/15]' (unmerged)",
            "KvmConstants.KVM_MEM_USERFAULT", "KvmConstants.KVM_MEMORY_EXIT_FLAG_USERFAULT", "KvmCaps.KVM_CAP_USERFAULT",
            "kvm_userspace_memory_region2.userfault_bitmap", "kvm_userspace_memory_region2.pad2");
        Add("PROPOSAL: guest_memfd HugeTLB, '[RFC PATCH v2 00/51] 1G page support for guest_memfd' (GUEST_MEMFD_FLAG_HUGETLB, include/uapi/linux/guestmem.h) and the 6.18-based branch's page_order (unmerged)",
            "GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB", "GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_SHIFT",
            "GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_MASK", "GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_2MB",
            "GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_1GB", "GuestMemfdHugetlbAbi.KVM_CREATE_GUEST_MEMFD_PAGE_ORDER_OFFSET",
            "GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_SIZE_BITS");
        Add("AFTER 6.18: SNP certificate fetching, '[PATCH v7 1/2] KVM: Introduce KVM_EXIT_SNP_REQ_CERTS' and '[PATCH v7 2/2] KVM: SEV: Add KVM_SEV_SNP_ENABLE_REQ_CERTS command' (Michael Roth, 2026-01-09; merged after 6.18, the vendored headers are 6.18; exit 42 in v7, 43 upstream: UapiProposals.SnpReqCertsExit)",
            "KvmExitReason.KVM_EXIT_SNP_REQ_CERTS", "KvmMemoryEncrypt.KVM_SEV_SNP_ENABLE_REQ_CERTS",
            "KvmConstants.KVM_X86_SEV_SNP_REQ_CERTS", "KvmRunLayout.snp_req_certs_gpa", "KvmRunLayout.snp_req_certs_npages",
            "KvmRunLayout.snp_req_certs_ret");
        Add("not a uapi number: which proposed guest_memfd HugeTLB encoding a kernel uses (SDK/emulator switch)",
            "GuestMemfdHugetlbEncoding.None", "GuestMemfdHugetlbEncoding.RfcV2FlagBits", "GuestMemfdHugetlbEncoding.PageOrderField");
        // linux/kvm_para.h + asm/kvm_para.h: no faithful upstream copy was found to vendor (include/README.md). oracle.c
        // prints these as soon as one is added, and Every_exclusion_names_... then asks for these lines to go.
        Add("linux/kvm_para.h / asm/kvm_para.h are not vendored yet (include/README.md)",
            "KvmPara.KVM_ENOSYS", "KvmPara.KVM_EFAULT", "KvmPara.KVM_EINVAL", "KvmPara.KVM_E2BIG", "KvmPara.KVM_EPERM",
            "KvmPara.KVM_EOPNOTSUPP", "KvmPara.KVM_HC_VAPIC_POLL_IRQ", "KvmPara.KVM_HC_MMU_OP", "KvmPara.KVM_HC_FEATURES",
            "KvmPara.KVM_HC_PPC_MAP_MAGIC_PAGE", "KvmPara.KVM_HC_KICK_CPU", "KvmPara.KVM_HC_MIPS_GET_CLOCK_FREQ",
            "KvmPara.KVM_HC_MIPS_EXIT_VM", "KvmPara.KVM_HC_MIPS_CONSOLE_OUTPUT", "KvmPara.KVM_HC_CLOCK_PAIRING",
            "KvmPara.KVM_HC_SEND_IPI", "KvmPara.KVM_HC_SCHED_YIELD", "KvmPara.KVM_HC_MAP_GPA_RANGE",
            "KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_4K", "KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_2M",
            "KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_1G", "KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED",
            "KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED");
        // Not uapi macros at all: no header can be the oracle for them.
        Add("kernel-internal (arch/x86/kvm/x86.h, x86.c), not in any uapi header",
            "KvmPara.KVM_EXIT_HYPERCALL_MBZ", "KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK");
        Add("from Documentation/virt/kvm/x86/hypercalls.rst (bits 3:0 of the attributes), not a uapi macro",
            "KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_MASK");

        // arm64: the vendored asm/kvm.h is x86's (the oracle is compiled for x86_64). What linux/kvm.h itself defines
        // for arm64 (KVM_REG_*, kvm_one_reg, KVM_GET/SET_ONE_REG, KVM_EXIT_ARM_NISV, KVM_SYSTEM_EVENT_*) is checked.
        Add("arm64 asm/kvm.h (vGIC device attributes) is not vendored",
            "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_ADDR", "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_DIST_REGS",
            "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_CPU_REGS", "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_NR_IRQS",
            "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_CTRL", "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_REDIST_REGS",
            "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS", "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO",
            "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_ITS_REGS", "KvmArm64Vgic.KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ",
            "KvmArm64Vgic.KVM_VGIC_V2_ADDR_TYPE_DIST", "KvmArm64Vgic.KVM_VGIC_V2_ADDR_TYPE_CPU",
            "KvmArm64Vgic.KVM_VGIC_V3_ADDR_TYPE_DIST", "KvmArm64Vgic.KVM_VGIC_V3_ADDR_TYPE_REDIST",
            "KvmArm64Vgic.KVM_VGIC_ITS_ADDR_TYPE", "KvmArm64Vgic.KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION",
            "KvmArm64Vgic.KVM_DEV_ARM_VGIC_CTRL_INIT", "KvmArm64Vgic.KVM_DEV_ARM_ITS_SAVE_TABLES",
            "KvmArm64Vgic.KVM_DEV_ARM_ITS_RESTORE_TABLES", "KvmArm64Vgic.KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES",
            "KvmArm64Vgic.KVM_DEV_ARM_ITS_CTRL_RESET", "KvmArm64Vgic.KVM_VGIC_V3_DIST_SIZE",
            "KvmArm64Vgic.KVM_VGIC_V3_REDIST_SIZE", "KvmArm64Vgic.KVM_VGIC_V3_ITS_SIZE", "KvmArm64Vgic.KVM_VGIC_V3_RDIST_INDEX_MASK",
            "KvmArm64Vgic.KVM_VGIC_V3_RDIST_FLAGS_SHIFT", "KvmArm64Vgic.KVM_VGIC_V3_RDIST_FLAGS_MASK",
            "KvmArm64Vgic.KVM_VGIC_V3_RDIST_BASE_MASK", "KvmArm64Vgic.KVM_VGIC_V3_RDIST_COUNT_SHIFT",
            "KvmArm64Vgic.KVM_VGIC_V3_RDIST_COUNT_MASK", "KvmArm64Vgic.VGIC_NR_PRIVATE_IRQS",
            "KvmArm64Vgic.VGIC_MAX_RESERVED", "KvmArm64Vgic.VGIC_NR_IRQS_LEGACY",
            "KvmArm64Vgic.KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT", "KvmArm64Vgic.KVM_DEV_ARM_VGIC_OFFSET_MASK",
            "KvmArm64Vgic.KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK", "KvmArm64Vgic.KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT",
            "KvmArm64Vgic.KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK", "KvmArm64Vgic.VGIC_LEVEL_INFO_LINE_LEVEL",
            "KvmArm64Vgic.KVM_ARM_IRQ_TYPE_SHIFT", "KvmArm64Vgic.KVM_ARM_IRQ_VCPU_SHIFT", "KvmArm64Vgic.KVM_ARM_IRQ_VCPU2_SHIFT",
            "KvmArm64Vgic.KVM_ARM_IRQ_TYPE_SPI", "KvmArm64Vgic.KVM_ARM_IRQ_TYPE_PPI");
        Add("arm64 asm/kvm.h (struct kvm_vcpu_init) is not vendored",
            "kvm_vcpu_init (size)", "kvm_vcpu_init.target", "kvm_vcpu_init.features",
            "KvmArm64Ioctls.KVM_ARM_PREFERRED_TARGET", "KvmArm64Ioctls.KVM_ARM_VCPU_INIT");
        Add("arm64 asm/kvm.h (SMCCC filter: '#define KVM_ARM_VM_SMCCC_CTRL 0', '#define KVM_ARM_VM_SMCCC_FILTER 0', enum kvm_smccc_filter_action, struct kvm_smccc_filter, '#define KVM_HYPERCALL_EXIT_SMC (1U << 0)', '#define KVM_HYPERCALL_EXIT_16BIT (1U << 1)') is not vendored",
            "KvmArm64Smccc.KVM_ARM_VM_SMCCC_CTRL", "KvmArm64Smccc.KVM_ARM_VM_SMCCC_FILTER",
            "KvmArm64Smccc.KVM_SMCCC_FILTER_HANDLE", "KvmArm64Smccc.KVM_SMCCC_FILTER_DENY",
            "KvmArm64Smccc.KVM_SMCCC_FILTER_FWD_TO_USER", "KvmArm64Smccc.KVM_HYPERCALL_EXIT_SMC",
            "KvmArm64Smccc.KVM_HYPERCALL_EXIT_16BIT", "kvm_smccc_filter (size)", "kvm_smccc_filter.base",
            "kvm_smccc_filter.nr_functions", "kvm_smccc_filter.action", "kvm_smccc_filter.pad");
        Add("arm64 asm/kvm.h (struct kvm_guest_debug_arch's dbg_bcr/bvr/wcr/wvr[KVM_ARM_MAX_DBG_REGS], struct " +
            "kvm_debug_exit_arch { __u32 hsr; __u32 hsr_high; __u64 far; }, KVM_GUESTDBG_USE_HW, " +
            "KVM_DEBUG_ARCH_HSR_HIGH_VALID) is not vendored, so the oracle cannot size arm64's KVM_SET_GUEST_DEBUG; " +
            "Arm64GuestDebugAbiTests checks them",
            "kvm_guest_debug_arch_arm64 (size)", "kvm_guest_debug_arch_arm64.dbg_bcr", "kvm_guest_debug_arch_arm64.dbg_bvr",
            "kvm_guest_debug_arch_arm64.dbg_wcr", "kvm_guest_debug_arch_arm64.dbg_wvr",
            "kvm_guest_debug_arm64 (size)", "kvm_guest_debug_arm64.control", "kvm_guest_debug_arm64.pad",
            "kvm_guest_debug_arm64.arch", "kvm_debug_exit_arch_arm64 (size)", "kvm_debug_exit_arch_arm64.hsr",
            "kvm_debug_exit_arch_arm64.hsr_high", "kvm_debug_exit_arch_arm64.far",
            "KvmArm64GuestDebug.KVM_ARM_MAX_DBG_REGS", "KvmArm64GuestDebug.KVM_GUESTDBG_USE_HW",
            "KvmArm64GuestDebug.KVM_DEBUG_ARCH_HSR_HIGH_VALID", "KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64",
            "KvmArm64GuestDebug.kvm_run_debug_arch_hsr", "KvmArm64GuestDebug.kvm_run_debug_arch_hsr_high",
            "KvmArm64GuestDebug.kvm_run_debug_arch_far");
        Add("arm64 asm/kvm.h (targets, vCPU feature bits) is not vendored",
            "KvmArm64Constants.KVM_ARM_TARGET_GENERIC_V8", "KvmArm64Constants.KVM_ARM_VCPU_POWER_OFF",
            "KvmArm64Constants.KVM_ARM_VCPU_EL1_32BIT", "KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2",
            "KvmArm64Constants.KVM_ARM_VCPU_PMU_V3", "KvmArm64Constants.KVM_ARM_VCPU_SVE",
            "KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_ADDRESS", "KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_GENERIC",
            "KvmArm64Constants.KVM_ARM_VCPU_HAS_EL2", "KvmArm64Constants.KVM_ARM_VCPU_HAS_EL2_E2H0");
        Add("arm64 asm/kvm.h and asm/sve_context.h (KVM_REG_ARM64_SVE ids, slices, VQ range, VLS words) and the ZCR_EL1 / " +
            "ID_AA64ZFR0_EL1 encodings (arch/arm64/tools/sysreg) are not vendored; Arm64SveTests checks the ids",
            "KvmArm64Sve.KVM_REG_ARM64_SVE", "KvmArm64Sve.KVM_REG_ARM64_SVE_ZREG_BASE", "KvmArm64Sve.KVM_REG_ARM64_SVE_PREG_BASE",
            "KvmArm64Sve.KVM_REG_ARM64_SVE_FFR_BASE", "KvmArm64Sve.KVM_ARM64_SVE_NUM_ZREGS", "KvmArm64Sve.KVM_ARM64_SVE_NUM_PREGS",
            "KvmArm64Sve.KVM_ARM64_SVE_MAX_SLICES", "KvmArm64Sve.KVM_ARM64_SVE_VQ_MIN", "KvmArm64Sve.KVM_ARM64_SVE_VQ_MAX",
            "KvmArm64Sve.KVM_ARM64_SVE_VLS_WORDS", "KvmArm64Sve.KVM_REG_ARM64_SVE_VLS", "KvmArm64Sve.ZCR_EL1",
            "KvmArm64Sve.ID_AA64ZFR0_EL1");
        Add("arm64 asm/ptrace.h (PSTATE bits) is not vendored",
            "KvmArm64Constants.PSR_MODE_EL0t", "KvmArm64Constants.PSR_MODE_EL1t", "KvmArm64Constants.PSR_MODE_EL1h",
            "KvmArm64Constants.PSR_F_BIT", "KvmArm64Constants.PSR_I_BIT", "KvmArm64Constants.PSR_A_BIT",
            "KvmArm64Constants.PSR_D_BIT");
        Add("arm64 asm/kvm.h (KVM_REG_ARM_COPROC_*, KVM_REG_ARM_CORE, struct kvm_regs offsets and core-register ids) is not vendored",
            "KvmArm64Regs.KVM_REG_ARM_COPROC_MASK", "KvmArm64Regs.KVM_REG_ARM_COPROC_SHIFT", "KvmArm64Regs.KVM_REG_ARM_CORE",
            "KvmArm64Regs.KvmRegsSize", "KvmArm64Regs.OffsetSp", "KvmArm64Regs.OffsetPc", "KvmArm64Regs.OffsetPstate",
            "KvmArm64Regs.OffsetSpEl1", "KvmArm64Regs.OffsetElrEl1", "KvmArm64Regs.OffsetSpsr", "KvmArm64Regs.OffsetVregs",
            "KvmArm64Regs.OffsetFpsr", "KvmArm64Regs.OffsetFpcr", "KvmArm64Regs.Sp", "KvmArm64Regs.Pc",
            "KvmArm64Regs.Pstate", "KvmArm64Regs.SpEl1", "KvmArm64Regs.ElrEl1", "KvmArm64Regs.SpsrEl1");
        Add("arm64 asm/kvm.h (KVM_REG_ARM64_SYSREG and its op0:op1:CRn:CRm:op2 fields) is not vendored; KvmArm64SysRegsTests checks the ids",
            "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG", "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_OP0_MASK", "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_OP0_SHIFT",
            "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_OP1_MASK", "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_OP1_SHIFT",
            "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_CRN_MASK", "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_CRN_SHIFT",
            "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_CRM_MASK", "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_CRM_SHIFT",
            "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_OP2_MASK", "KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_OP2_SHIFT",
            "KvmArm64SysRegs.MPIDR_EL1", "KvmArm64SysRegs.SCTLR_EL1", "KvmArm64SysRegs.CPACR_EL1", "KvmArm64SysRegs.TTBR0_EL1",
            "KvmArm64SysRegs.TTBR1_EL1", "KvmArm64SysRegs.TCR_EL1", "KvmArm64SysRegs.ESR_EL1", "KvmArm64SysRegs.FAR_EL1",
            "KvmArm64SysRegs.MAIR_EL1", "KvmArm64SysRegs.VBAR_EL1", "KvmArm64SysRegs.TPIDR_EL1", "KvmArm64SysRegs.TPIDR_EL0");
        Add("arm64 asm/kvm.h (KVM_REG_ARM_DEMUX*) and the debug/PMU/cache system-register encodings (arch/arm64/tools/sysreg) " +
            "are not vendored; Arm64DebugPmuCacheRegisterTests checks the ids",
            "KvmArm64CacheRegs.KVM_REG_ARM_DEMUX", "KvmArm64CacheRegs.KVM_REG_ARM_DEMUX_ID_MASK",
            "KvmArm64CacheRegs.KVM_REG_ARM_DEMUX_ID_SHIFT", "KvmArm64CacheRegs.KVM_REG_ARM_DEMUX_ID_CCSIDR",
            "KvmArm64CacheRegs.KVM_REG_ARM_DEMUX_VAL_MASK", "KvmArm64CacheRegs.KVM_REG_ARM_DEMUX_VAL_SHIFT",
            "KvmArm64CacheRegs.CLIDR_EL1", "KvmArm64CacheRegs.CSSELR_EL1",
            "KvmArm64DebugRegs.MDCCINT_EL1", "KvmArm64DebugRegs.MDSCR_EL1", "KvmArm64DebugRegs.OSLSR_EL1",
            "KvmArm64DebugRegs.DBGVCR32_EL2",
            "KvmArm64PmuRegs.PMINTENSET_EL1", "KvmArm64PmuRegs.PMINTENCLR_EL1", "KvmArm64PmuRegs.PMCR_EL0",
            "KvmArm64PmuRegs.PMCNTENSET_EL0", "KvmArm64PmuRegs.PMCNTENCLR_EL0", "KvmArm64PmuRegs.PMOVSCLR_EL0",
            "KvmArm64PmuRegs.PMSWINC_EL0", "KvmArm64PmuRegs.PMSELR_EL0", "KvmArm64PmuRegs.PMCCNTR_EL0",
            "KvmArm64PmuRegs.PMUSERENR_EL0", "KvmArm64PmuRegs.PMOVSSET_EL0", "KvmArm64PmuRegs.PMCCFILTR_EL0");
        Add("arm64 asm/kvm.h (the vCPU device-attribute groups KVM_ARM_VCPU_PMU_V3_CTRL / TIMER_CTRL / PVTIME_CTRL, their " +
            "attributes, struct kvm_pmu_event_filter and KVM_PMU_EVENT_*) is not vendored; Arm64PmuAttributeTests checks the values",
            "KvmArm64VcpuAttrs.KVM_ARM_VCPU_PMU_V3_CTRL", "KvmArm64VcpuAttrs.KVM_ARM_VCPU_PMU_V3_IRQ",
            "KvmArm64VcpuAttrs.KVM_ARM_VCPU_PMU_V3_INIT", "KvmArm64VcpuAttrs.KVM_ARM_VCPU_PMU_V3_FILTER",
            "KvmArm64VcpuAttrs.KVM_ARM_VCPU_PMU_V3_SET_PMU", "KvmArm64VcpuAttrs.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS",
            "KvmArm64VcpuAttrs.KVM_ARM_VCPU_TIMER_CTRL", "KvmArm64VcpuAttrs.KVM_ARM_VCPU_TIMER_IRQ_VTIMER",
            "KvmArm64VcpuAttrs.KVM_ARM_VCPU_TIMER_IRQ_PTIMER", "KvmArm64VcpuAttrs.KVM_ARM_VCPU_TIMER_IRQ_HVTIMER",
            "KvmArm64VcpuAttrs.KVM_ARM_VCPU_TIMER_IRQ_HPTIMER", "KvmArm64VcpuAttrs.KVM_ARM_VCPU_PVTIME_CTRL",
            "KvmArm64VcpuAttrs.KVM_ARM_VCPU_PVTIME_IPA", "KvmArm64VcpuAttrs.KVM_PMU_EVENT_ALLOW",
            "KvmArm64VcpuAttrs.KVM_PMU_EVENT_DENY",
            "kvm_pmu_event_filter (size)", "kvm_pmu_event_filter.base_event", "kvm_pmu_event_filter.nevents",
            "kvm_pmu_event_filter.action", "kvm_pmu_event_filter.pad");
        Add("the pointer-authentication key register encodings (arch/arm64/tools/sysreg) are not vendored; Arm64PtrAuthTests checks the ids",
            "KvmArm64PtrAuth.APIAKEYLO_EL1", "KvmArm64PtrAuth.APIAKEYHI_EL1", "KvmArm64PtrAuth.APIBKEYLO_EL1",
            "KvmArm64PtrAuth.APIBKEYHI_EL1", "KvmArm64PtrAuth.APDAKEYLO_EL1", "KvmArm64PtrAuth.APDAKEYHI_EL1",
            "KvmArm64PtrAuth.APDBKEYLO_EL1", "KvmArm64PtrAuth.APDBKEYHI_EL1", "KvmArm64PtrAuth.APGAKEYLO_EL1",
            "KvmArm64PtrAuth.APGAKEYHI_EL1");
        Add("the DISR_EL1 / AArch32 EL2 shadow register encodings (arch/arm64/tools/sysreg) are not vendored; " +
            "Arm64PmuAttributeTests checks the ids",
            "KvmArm64ShadowRegs.DISR_EL1", "KvmArm64ShadowRegs.DACR32_EL2", "KvmArm64ShadowRegs.IFSR32_EL2",
            "KvmArm64ShadowRegs.FPEXC32_EL2");
        Add("arm64 asm/kvm.h (KVM_REG_ARM_FW, KVM_REG_ARM_FW_FEAT_BMAP, firmware register ids, workaround levels, bitmap bits) and " +
            "include/kvm/arm_psci.h (KVM_ARM_PSCI_*) are not vendored; Arm64FirmwareRegisterTests checks the ids",
            "KvmArm64FwRegs.KVM_REG_ARM_FW", "KvmArm64FwRegs.KVM_REG_ARM_FW_FEAT_BMAP", "KvmArm64FwRegs.KVM_REG_ARM_PSCI_VERSION",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1", "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3", "KvmArm64FwRegs.KVM_REG_ARM_STD_BMAP",
            "KvmArm64FwRegs.KVM_REG_ARM_STD_HYP_BMAP", "KvmArm64FwRegs.KVM_REG_ARM_VENDOR_HYP_BMAP",
            "KvmArm64FwRegs.KVM_REG_ARM_VENDOR_HYP_BMAP_2", "KvmArm64FwRegs.KVM_REG_FEATURE_LEVEL_MASK",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1_NOT_AVAIL",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1_AVAIL",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1_NOT_REQUIRED",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_AVAIL",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_UNKNOWN",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_AVAIL",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_REQUIRED",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_ENABLED",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3_NOT_AVAIL",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3_AVAIL",
            "KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3_NOT_REQUIRED", "KvmArm64FwRegs.KVM_REG_ARM_STD_BIT_TRNG_V1_0",
            "KvmArm64FwRegs.KVM_REG_ARM_STD_HYP_BIT_PV_TIME", "KvmArm64FwRegs.KVM_REG_ARM_VENDOR_HYP_BIT_FUNC_FEAT",
            "KvmArm64FwRegs.KVM_REG_ARM_VENDOR_HYP_BIT_PTP", "KvmArm64FwRegs.KVM_REG_ARM_VENDOR_HYP_BIT_DISCOVER_IMPL_VER",
            "KvmArm64FwRegs.KVM_REG_ARM_VENDOR_HYP_BIT_DISCOVER_IMPL_CPUS", "KvmArm64FwRegs.KVM_ARM_PSCI_0_1",
            "KvmArm64FwRegs.KVM_ARM_PSCI_0_2", "KvmArm64FwRegs.KVM_ARM_PSCI_1_0", "KvmArm64FwRegs.KVM_ARM_PSCI_1_1");
        Add("arm64 asm/kvm.h (KVM_REG_ARM_TIMER_* / KVM_REG_ARM_PTIMER_*) and clocksource/arm_arch_timer.h (ARCH_TIMER_CTRL_*) " +
            "are not vendored; Arm64TimerTests checks the ids",
            "KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CTL", "KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CVAL",
            "KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT", "KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CTL",
            "KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CVAL", "KvmArm64TimerRegs.KVM_REG_ARM_PTIMER_CNT",
            "KvmArm64TimerRegs.ARCH_TIMER_CTRL_ENABLE", "KvmArm64TimerRegs.ARCH_TIMER_CTRL_IT_MASK",
            "KvmArm64TimerRegs.ARCH_TIMER_CTRL_IT_STAT");
        Add("arm64 ID register ids (ARM64_SYS_REG of arch/arm64/tools/sysreg encodings) are not in any x86 header; Arm64IdRegisterTests checks them",
            "KvmArm64IdRegs.MIDR_EL1", "KvmArm64IdRegs.REVIDR_EL1", "KvmArm64IdRegs.ID_PFR0_EL1", "KvmArm64IdRegs.ID_DFR0_EL1",
            "KvmArm64IdRegs.ID_ISAR0_EL1", "KvmArm64IdRegs.MVFR0_EL1", "KvmArm64IdRegs.ID_AA64PFR0_EL1",
            "KvmArm64IdRegs.ID_AA64PFR1_EL1", "KvmArm64IdRegs.ID_AA64PFR2_EL1", "KvmArm64IdRegs.ID_AA64ZFR0_EL1",
            "KvmArm64IdRegs.ID_AA64SMFR0_EL1", "KvmArm64IdRegs.ID_AA64DFR0_EL1", "KvmArm64IdRegs.ID_AA64DFR1_EL1",
            "KvmArm64IdRegs.ID_AA64AFR0_EL1", "KvmArm64IdRegs.ID_AA64ISAR0_EL1", "KvmArm64IdRegs.ID_AA64ISAR1_EL1",
            "KvmArm64IdRegs.ID_AA64ISAR2_EL1", "KvmArm64IdRegs.ID_AA64ISAR3_EL1", "KvmArm64IdRegs.ID_AA64MMFR0_EL1",
            "KvmArm64IdRegs.ID_AA64MMFR1_EL1", "KvmArm64IdRegs.ID_AA64MMFR2_EL1", "KvmArm64IdRegs.ID_AA64MMFR3_EL1",
            "KvmArm64IdRegs.AIDR_EL1", "KvmArm64IdRegs.CTR_EL0");
        Add("struct reg_mask_range and KVM_ARM_FEATURE_ID_RANGE* are in arm64 asm/kvm.h (not vendored), so the oracle cannot size " +
            "KVM_ARM_GET_REG_WRITABLE_MASKS; Arm64IdRegisterTests checks the number",
            "KvmArm64Ioctls.KVM_ARM_GET_REG_WRITABLE_MASKS", "KvmArm64Ioctls.RegMaskRangeSize", "KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE",
            "KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE_SIZE");
        Add("arm64 asm/kvm.h ('struct kvm_arm_counter_offset { __u64 counter_offset; __u64 reserved; }', " +
            "'#define KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2 (1ULL << 0)') is not vendored, so the oracle cannot size " +
            "KVM_ARM_SET_COUNTER_OFFSET ('_IOW(KVMIO, 0xb5, struct kvm_arm_counter_offset)'); Arm64VmmRulesTests checks them",
            "KvmArm64Ioctls.KVM_ARM_SET_COUNTER_OFFSET", "kvm_arm_counter_offset (size)", "kvm_arm_counter_offset.counter_offset",
            "kvm_arm_counter_offset.reserved", "KvmArm64Constants.KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2");
        Add("newer than the vendored headers: a 2025 stable backport (6.12.y, 6.18.y); this machine's KVM_CAP_DISABLE_QUIRKS2 (0x5ff) has the bit",
            "KvmX86Quirks.KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM");
        return r;
    }
}
