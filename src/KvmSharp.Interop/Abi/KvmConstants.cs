// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>Flag bits and enumerations of the KVM uAPI, spelled as in include/uapi/linux/kvm.h.</summary>
public static class KvmConstants
{
    public const int KVM_API_VERSION = 12;

    /// <summary>x86 (asm/kvm.h): interrupt vectors KVM_INTERRUPT accepts, and the bits of kvm_sregs.interrupt_bitmap.</summary>
    public const int KVM_NR_INTERRUPTS = 256;

    // guest_memfd creation flags (kvm_create_guest_memfd.flags)
    public const ulong GUEST_MEMFD_FLAG_MMAP = 1UL << 0;
    public const ulong GUEST_MEMFD_FLAG_INIT_SHARED = 1UL << 1;
    /// <summary>PROPOSAL: "[PATCH v9 07/13] KVM: guest_memfd: Add flag to remove from direct map" (unmerged).</summary>
    public static ulong GUEST_MEMFD_FLAG_NO_DIRECT_MAP { get; set; } = 1UL << 2;

    // memory slot flags (kvm_userspace_memory_region*.flags)
    public const uint KVM_MEM_LOG_DIRTY_PAGES = 1u << 0;
    public const uint KVM_MEM_READONLY = 1u << 1;
    public const uint KVM_MEM_GUEST_MEMFD = 1u << 2;
    /// <summary>
    /// PROPOSAL: "[PATCH v3 04/15] KVM: Add common infrastructure for KVM Userfaults" (James Houghton, 2025-06-18,
    /// unmerged; v1 and v2 used the same bit): vCPU faults on pages whose bit is set in userfault_bitmap exit to
    /// userspace with <see cref="KVM_MEMORY_EXIT_FLAG_USERFAULT"/>. Accepted only where KVM_CAP_USERFAULT is reported.
    /// </summary>
    public const uint KVM_MEM_USERFAULT = 1u << 3;

    // KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 options (kvm_enable_cap.args[0])
    public const ulong KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1UL << 0;
    public const ulong KVM_DIRTY_LOG_INITIALLY_SET = 1UL << 1;

    // The dirty ring (struct kvm_dirty_gfn.flags; the ring's page offset in the vCPU mmap area, x86 asm/kvm.h)
    /// <summary>The entry holds a dirty page KVM pushed; userspace may read slot and offset (acquire).</summary>
    public const uint KVM_DIRTY_GFN_F_DIRTY = 1u << 0;
    /// <summary>Userspace collected the entry (release); KVM_RESET_DIRTY_RINGS frees it and re-protects the page.</summary>
    public const uint KVM_DIRTY_GFN_F_RESET = 1u << 1;
    public const uint KVM_DIRTY_GFN_F_MASK = 0x3;
    /// <summary>The ring of a vCPU is mmap'ed from its fd at this many pages (x86 and arm64: 64).</summary>
    public const int KVM_DIRTY_LOG_PAGE_OFFSET = 64;

    // memory attributes
    public const ulong KVM_MEMORY_ATTRIBUTE_PRIVATE = 1UL << 3;

    /// <summary>
    /// kvm_run.emulation_failure.flags: insn_size and insn_bytes hold the instruction the kernel failed to emulate
    /// (x86.c prepare_emulation_failure_exit).
    /// </summary>
    public const ulong KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES = 1UL << 0;
    public const ulong KVM_MEMORY_EXIT_FLAG_PRIVATE = 1UL << 3;
    /// <summary>
    /// PROPOSAL: "[PATCH v3 04/15] KVM: Add common infrastructure for KVM Userfaults" (unmerged; v1/v2: "KVM: Add
    /// KVM_MEMORY_EXIT_FLAG_USERFAULT", same bit): the memory fault exit was caused by a set bit in the slot's
    /// userfault_bitmap.
    /// </summary>
    public const ulong KVM_MEMORY_EXIT_FLAG_USERFAULT = 1UL << 4;

    // KVM_SET_GUEST_DEBUG control bits (kvm_guest_debug.control): generic (linux/kvm.h) then x86 (asm/kvm.h)
    public const uint KVM_GUESTDBG_ENABLE = 0x00000001;
    public const uint KVM_GUESTDBG_SINGLESTEP = 0x00000002;
    public const uint KVM_GUESTDBG_USE_SW_BP = 0x00010000;
    public const uint KVM_GUESTDBG_USE_HW_BP = 0x00020000;
    public const uint KVM_GUESTDBG_INJECT_DB = 0x00040000;
    public const uint KVM_GUESTDBG_INJECT_BP = 0x00080000;
    public const uint KVM_GUESTDBG_BLOCKIRQ = 0x00100000;

    // kvm_clock_data.flags (KVM_GET_CLOCK; KVM_SET_CLOCK accepts REALTIME)
    public const uint KVM_CLOCK_TSC_STABLE = 2;
    public const uint KVM_CLOCK_REALTIME = 1u << 2;
    public const uint KVM_CLOCK_HOST_TSC = 1u << 3;

    // x86 vCPU device attributes (asm/kvm.h): the TSC control group and its one attribute
    public const uint KVM_VCPU_TSC_CTRL = 0;
    public const ulong KVM_VCPU_TSC_OFFSET = 0;

    // x86 /dev/kvm device attributes (asm/kvm.h, KVM_GET/HAS_DEVICE_ATTR on /dev/kvm): the XCR0 bits KVM supports
    // (kvm_caps.supported_xcr0), and SEV's supported VMSA features
    public const uint KVM_X86_GRP_SYSTEM = 0;
    public const ulong KVM_X86_XCOMP_GUEST_SUPP = 0;

    // KVM_CAP_X2APIC_API flags (arch/x86/include/uapi/asm/kvm.h).
    public const ulong KVM_X2APIC_API_USE_32BIT_IDS = 1UL << 0;
    public const ulong KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK = 1UL << 1;
    public const uint KVM_X86_GRP_SEV = 1;
    public const ulong KVM_X86_SEV_VMSA_FEATURES = 0;
    /// <summary>
    /// KVM_X86_GRP_SEV attribute: 1 when KVM_SEV_SNP_ENABLE_REQ_CERTS / KVM_EXIT_SNP_REQ_CERTS exist ("KVM: SEV: Add
    /// KVM_SEV_SNP_ENABLE_REQ_CERTS command", [PATCH v7 2/2]; after 6.18).
    /// </summary>
    public const ulong KVM_X86_SEV_SNP_REQ_CERTS = 2;

    // x86 VM types (arch/x86/include/uapi/asm/kvm.h)
    public const uint KVM_X86_DEFAULT_VM = 0;
    public const uint KVM_X86_SW_PROTECTED_VM = 1;
    public const uint KVM_X86_SEV_VM = 2;
    public const uint KVM_X86_SEV_ES_VM = 3;
    public const uint KVM_X86_SNP_VM = 4;
    public const uint KVM_X86_TDX_VM = 5;

    // KVM_EXIT_IO directions
    public const byte KVM_EXIT_IO_IN = 0;
    public const byte KVM_EXIT_IO_OUT = 1;

    // kvm_ioeventfd.flags (1 << kvm_ioeventfd_flag_nr_*); the valid mask also covers nr_fast_mmio (bit 4), which has no flag
    public const uint KVM_IOEVENTFD_FLAG_DATAMATCH = 1u << 0;
    public const uint KVM_IOEVENTFD_FLAG_PIO = 1u << 1;
    public const uint KVM_IOEVENTFD_FLAG_DEASSIGN = 1u << 2;
    public const uint KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY = 1u << 3;
    public const uint KVM_IOEVENTFD_VALID_FLAG_MASK = (1u << 5) - 1;

    // kvm_irqfd.flags
    public const uint KVM_IRQFD_FLAG_DEASSIGN = 1u << 0;
    public const uint KVM_IRQFD_FLAG_RESAMPLE = 1u << 1;
    // In-kernel irqchip (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h).
    public const uint KVM_IRQCHIP_PIC_MASTER = 0;
    public const uint KVM_IRQCHIP_PIC_SLAVE = 1;
    public const uint KVM_IRQCHIP_IOAPIC = 2;
    public const int KVM_NR_IRQCHIPS = 3;
    public const int KVM_IOAPIC_NUM_PINS = 24;
    /// <summary>sizeof(struct kvm_lapic_state).</summary>
    public const int KVM_APIC_REG_SIZE = 0x400;
    public const uint KVM_IRQ_ROUTING_IRQCHIP = 1;
    public const uint KVM_IRQ_ROUTING_MSI = 2;
    public const uint KVM_IRQ_ROUTING_S390_ADAPTER = 3;
    public const uint KVM_IRQ_ROUTING_HV_SINT = 4;
    public const uint KVM_IRQ_ROUTING_XEN_EVTCHN = 5;
    /// <summary>kvm_msi.flags / kvm_irq_routing_entry.flags (MSI): devid is valid.</summary>
    public const uint KVM_MSI_VALID_DEVID = 1u << 0;
    // In-kernel PIT (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h).
    /// <summary>kvm_pit_config.flags: register the dummy speaker port (0x61) with the PIT.</summary>
    public const uint KVM_PIT_SPEAKER_DUMMY = 1;
    /// <summary>kvm_pit_state2.flags: the HPET drives legacy IRQ0, channel 0's timer is off.</summary>
    public const uint KVM_PIT_FLAGS_HPET_LEGACY = 0x00000001;
    /// <summary>kvm_pit_state2.flags: port 0x61 bit 1 (speaker data) was last written as 1.</summary>
    public const uint KVM_PIT_FLAGS_SPEAKER_DATA_ON = 0x00000002;
    /// <summary>KVM_EXIT_SYSTEM_EVENT type: an SEV-ES/SNP guest asked to terminate (GHCB termination request).</summary>
    public const uint KVM_SYSTEM_EVENT_SEV_TERM = 6;
    /// <summary>KVM_EXIT_SYSTEM_EVENT type: a TD's TDG.VP.VMCALL&lt;ReportFatalError&gt;; data[0..15] are its GPRs.</summary>
    public const uint KVM_SYSTEM_EVENT_TDX_FATAL = 7;
}

/// <summary><c>kvm_run.exit_reason</c> values.</summary>
public enum KvmExitReason : uint
{
    KVM_EXIT_UNKNOWN = 0,
    KVM_EXIT_EXCEPTION = 1,
    KVM_EXIT_IO = 2,
    KVM_EXIT_HYPERCALL = 3,
    KVM_EXIT_DEBUG = 4,
    KVM_EXIT_HLT = 5,
    KVM_EXIT_MMIO = 6,
    KVM_EXIT_IRQ_WINDOW_OPEN = 7,
    KVM_EXIT_SHUTDOWN = 8,
    KVM_EXIT_FAIL_ENTRY = 9,
    KVM_EXIT_INTR = 10,
    KVM_EXIT_SET_TPR = 11,
    KVM_EXIT_TPR_ACCESS = 12,
    KVM_EXIT_NMI = 16,
    KVM_EXIT_INTERNAL_ERROR = 17,
    KVM_EXIT_SYSTEM_EVENT = 24,
    /// <summary>A split irqchip's vCPU EOI'd a vector the userspace IOAPIC routes level-triggered: <c>kvm_run.eoi.vector</c>.</summary>
    KVM_EXIT_IOAPIC_EOI = 26,
    /// <summary>A guest RDMSR KVM did not complete went to userspace (KVM_CAP_X86_USER_SPACE_MSR): <c>kvm_run.msr</c>.</summary>
    KVM_EXIT_X86_RDMSR = 29,
    /// <summary>A guest WRMSR KVM did not complete went to userspace (KVM_CAP_X86_USER_SPACE_MSR): <c>kvm_run.msr</c>.</summary>
    KVM_EXIT_X86_WRMSR = 30,
    KVM_EXIT_DIRTY_RING_FULL = 31,
    /// <summary>An SEV-ES guest's AP reset hold (GHCB) on a vCPU without an in-kernel local APIC.</summary>
    KVM_EXIT_AP_RESET_HOLD = 32,
    KVM_EXIT_MEMORY_FAULT = 39,
    /// <summary>A TD's TDG.VP.VMCALL that KVM hands to userspace (GetQuote, GetTdVmCallInfo leaf 1, SetupEventNotifyInterrupt): <c>kvm_run.tdx</c>.</summary>
    KVM_EXIT_TDX = 40,
    /// <summary>
    /// An SNP guest's extended guest request (MSG_REPORT_REQ) asks userspace for the endorsement key's certificates:
    /// <c>kvm_run.snp_req_certs</c>. "KVM: Introduce KVM_EXIT_SNP_REQ_CERTS for SNP certificate-fetching" ([PATCH v7
    /// 1/2], Michael Roth, 2026-01-09: 42; mainline after 6.18 numbers it 43, KVM_EXIT_ARM_LDST64B having taken 42).
    /// Not in 6.18; the number a kernel uses is <see cref="UapiProposals.SnpReqCertsExit"/>.
    /// </summary>
    KVM_EXIT_SNP_REQ_CERTS = 43,
}

/// <summary>kvm_run.internal.suberror of a KVM_EXIT_INTERNAL_ERROR (include/uapi/linux/kvm.h).</summary>
public enum KvmInternalError : uint
{
    /// <summary>The kernel could not emulate an instruction; <c>kvm_run.emulation_failure</c> may carry its bytes.</summary>
    KVM_INTERNAL_ERROR_EMULATION = 1,
    /// <summary>An exception was raised while another was being delivered in a way the kernel cannot handle.</summary>
    KVM_INTERNAL_ERROR_SIMUL_EX = 2,
    /// <summary>An event was being delivered (IDT vectoring) when the exit that failed happened.</summary>
    KVM_INTERNAL_ERROR_DELIVERY_EV = 3,
    /// <summary>The hardware exited for a reason the kernel does not handle.</summary>
    KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4,
}
