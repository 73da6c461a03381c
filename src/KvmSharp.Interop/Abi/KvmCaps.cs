// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>KVM_CHECK_EXTENSION capability numbers (include/uapi/linux/kvm.h).</summary>
public static class KvmCaps
{
    public const int KVM_CAP_IRQCHIP = 0;
    public const int KVM_CAP_HLT = 1;
    public const int KVM_CAP_USER_MEMORY = 3;
    public const int KVM_CAP_SET_TSS_ADDR = 4;
    public const int KVM_CAP_NR_VCPUS = 9;
    public const int KVM_CAP_NR_MEMSLOTS = 10;
    /// <summary>KVM_SET_GUEST_DEBUG exists (1 on x86 since 5.8, arm64, s390, ppc).</summary>
    public const int KVM_CAP_SET_GUEST_DEBUG = 23;
    /// <summary>KVM_GET_MP_STATE / KVM_SET_MP_STATE.</summary>
    public const int KVM_CAP_MP_STATE = 14;
    public const int KVM_CAP_SYNC_MMU = 16;
    /// <summary>KVM_IRQFD exists (an assignment still needs an in-kernel irqchip).</summary>
    public const int KVM_CAP_IRQFD = 32;
    /// <summary>KVM_IOEVENTFD exists.</summary>
    public const int KVM_CAP_IOEVENTFD = 36;
    /// <summary>KVM_IRQFD_FLAG_RESAMPLE exists.</summary>
    public const int KVM_CAP_IRQFD_RESAMPLE = 82;
    /// <summary>KVM_SET_GSI_ROUTING exists; the value is KVM_MAX_IRQ_ROUTES (4096).</summary>
    public const int KVM_CAP_IRQ_ROUTING = 25;
    /// <summary>KVM_IRQ_LINE_STATUS exists.</summary>
    public const int KVM_CAP_IRQ_INJECT_STATUS = 26;
    /// <summary>
    /// x86: KVM_ENABLE_CAP on the VM with KVM_X2APIC_API_* flags (32-bit x2APIC IDs in KVM_GET/SET_LAPIC and MSI
    /// routes, no broadcast quirk); the answer is the valid flags.
    /// </summary>
    public const int KVM_CAP_X2APIC_API = 129;
    /// <summary>KVM_SIGNAL_MSI exists.</summary>
    public const int KVM_CAP_SIGNAL_MSI = 77;
    /// <summary>x86: KVM_ENABLE_CAP creates a split irqchip (local APICs in kernel, PIC/IOAPIC in userspace); args[0] = reserved IOAPIC pins.</summary>
    public const int KVM_CAP_SPLIT_IRQCHIP = 121;
    /// <summary>KVM_CAP_DISABLE_QUIRKS (x86, VM): KVM_ENABLE_CAP args[0] = KVM_X86_QUIRK_* bits to turn off; unknown bits are dropped.</summary>
    public const int KVM_CAP_DISABLE_QUIRKS = 116;
    /// <summary>KVM_CAP_DISABLE_QUIRKS2 (x86, since 5.19): KVM_CHECK_EXTENSION answers the quirks that can be disabled; enabling an unknown bit is EINVAL.</summary>
    public const int KVM_CAP_DISABLE_QUIRKS2 = 213;
    /// <summary>
    /// KVM_CAP_MSR_PLATFORM_INFO (x86, VM, since 4.19): KVM_ENABLE_CAP args[0] = whether the guest may RDMSR
    /// MSR_PLATFORM_INFO (on by default; when off the guest's read is a #GP, the host's still works).
    /// </summary>
    public const int KVM_CAP_MSR_PLATFORM_INFO = 159;
    /// <summary>MSIs carry a device id (KVM_MSI_VALID_DEVID); arm64 ITS only (x86: 0).</summary>
    public const int KVM_CAP_MSI_DEVID = 131;
    /// <summary>x86: KVM_CREATE_PIT, KVM_GET_PIT, KVM_SET_PIT (the in-kernel i8254).</summary>
    public const int KVM_CAP_PIT = 11;
    /// <summary>x86: KVM_REINJECT_CONTROL.</summary>
    public const int KVM_CAP_REINJECT_CONTROL = 24;
    /// <summary>x86: KVM_CREATE_PIT2.</summary>
    public const int KVM_CAP_PIT2 = 33;
    /// <summary>x86: KVM_GET_PIT2 / KVM_SET_PIT2.</summary>
    public const int KVM_CAP_PIT_STATE2 = 35;
    /// <summary>An MMIO ioeventfd of length 0 (any write at the address) is accepted.</summary>
    public const int KVM_CAP_IOEVENTFD_NO_LENGTH = 100;
    /// <summary>Any length (0 included, PIO too) without DATAMATCH's restriction to 1/2/4/8 beyond "0 has no datamatch".</summary>
    public const int KVM_CAP_IOEVENTFD_ANY_LENGTH = 122;
    /// <summary>x86: KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS.</summary>
    public const int KVM_CAP_VCPU_EVENTS = 41;
    /// <summary>x86: KVM_GET_DEBUGREGS / KVM_SET_DEBUGREGS.</summary>
    public const int KVM_CAP_DEBUGREGS = 50;
    /// <summary>x86: KVM_GET_XSAVE / KVM_SET_XSAVE (1 when the host has XSAVE).</summary>
    public const int KVM_CAP_XSAVE = 55;
    /// <summary>x86: KVM_GET_XCRS / KVM_SET_XCRS.</summary>
    public const int KVM_CAP_XCRS = 56;
    /// <summary>x86: KVM_GET_CLOCK / KVM_SET_CLOCK; the answer is the KVM_CLOCK_* flags KVM_GET_CLOCK can report.</summary>
    public const int KVM_CAP_ADJUST_CLOCK = 39;
    /// <summary>
    /// x86: KVM_X86_GET_MCE_CAP_SUPPORTED and KVM_X86_SETUP_MCE exist; the answer is the most machine-check banks
    /// KVM_X86_SETUP_MCE accepts (KVM_MAX_MCE_BANKS, 32).
    /// </summary>
    public const int KVM_CAP_MCE = 31;
    /// <summary>x86: KVM_SET_TSC_KHZ on a vCPU (the host can scale the guest's TSC rate); 0 without TSC scaling.</summary>
    public const int KVM_CAP_TSC_CONTROL = 60;
    /// <summary>x86: KVM_GET_TSC_KHZ on a vCPU.</summary>
    public const int KVM_CAP_GET_TSC_KHZ = 61;
    public const int KVM_CAP_MAX_VCPUS = 66;
    /// <summary>KVM_SET/GET/HAS_DEVICE_ATTR on a vCPU fd (x86: the KVM_VCPU_TSC_CTRL group).</summary>
    public const int KVM_CAP_VCPU_ATTRIBUTES = 127;
    /// <summary>KVM_CREATE_DEVICE on a VM fd and the device fds' KVM_SET/GET/HAS_DEVICE_ATTR.</summary>
    public const int KVM_CAP_DEVICE_CTRL = 89;
    public const int KVM_CAP_READONLY_MEM = 81;
    public const int KVM_CAP_MULTI_ADDRESS_SPACE = 118;
    /// <summary>
    /// x86: KVM_GET_XSAVE2. The answer is the size in bytes of the XSAVE image KVM_GET_XSAVE2 writes and
    /// KVM_SET_XSAVE reads (at least 4096; larger only once a dynamic feature such as AMX is permitted).
    /// </summary>
    public const int KVM_CAP_XSAVE2 = 208;
    /// <summary>x86: KVM_SET_TSC_KHZ on the VM (the rate of the vCPUs created after it) with TSC scaling; 0 without.</summary>
    public const int KVM_CAP_VM_TSC_CONTROL = 214;
    public const int KVM_CAP_IMMEDIATE_EXIT = 136;
    /// <summary>
    /// KVM_ENABLE_CAP on a VM: args[0] = the longest a halted vCPU of it polls for a wake-up before it sleeps, in ns
    /// (overrides the kvm module's halt_poll_ns); check_extension answers 1.
    /// </summary>
    public const int KVM_CAP_HALT_POLL = 182;
    /// <summary>KVM_GET_STATS_FD on VM and vCPU fds: a read-only file of binary statistics (header, id, descriptors, values).</summary>
    public const int KVM_CAP_BINARY_STATS_FD = 203;
    /// <summary>
    /// The KVM_DIRTY_LOG_* options KVM_ENABLE_CAP accepts (KVM_DIRTY_LOG_MANUAL_CAPS); enabling MANUAL_PROTECT_ENABLE
    /// makes KVM_GET_DIRTY_LOG leave the bitmap set until KVM_CLEAR_DIRTY_LOG.
    /// </summary>
    public const int KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;
    /// <summary>
    /// x86, vCPU-level KVM_ENABLE_CAP (args[0] != 0 turns it on): KVM then honours the paravirtual feature bits of the
    /// vCPU's CPUID leaf KVM_CPUID_FEATURES (0x40000001 EAX) — an MSR or hypercall of a feature not listed there
    /// fails (WRMSR/RDMSR #GP) instead of working regardless. 1 on x86 since 5.10.
    /// </summary>
    public const int KVM_CAP_ENFORCE_PV_FEATURE_CPUID = 190;
    /// <summary>
    /// x86, VM-level KVM_ENABLE_CAP (since 5.10): args[0] is the set of KVM_MSR_EXIT_REASON_* (<see cref="KvmMsrFilter"/>)
    /// for which a guest RDMSR/WRMSR that KVM would fail exits to userspace as KVM_EXIT_X86_RDMSR/WRMSR instead of
    /// injecting #GP. 1 on x86.
    /// </summary>
    public const int KVM_CAP_X86_USER_SPACE_MSR = 188;
    /// <summary>x86 (since 5.10): KVM_X86_SET_MSR_FILTER exists. 1 on x86.</summary>
    public const int KVM_CAP_X86_MSR_FILTER = 189;
    /// <summary>Generic answers of kvm_vm_ioctl_check_extension_generic (1 on every arch), which QEMU requires.</summary>
    public const int KVM_CAP_DESTROY_MEMORY_REGION_WORKS = 21, KVM_CAP_JOIN_MEMORY_REGIONS_WORKS = 30,
        KVM_CAP_INTERNAL_ERROR_DATA = 40, KVM_CAP_ENABLE_CAP_VM = 98, KVM_CAP_CHECK_EXTENSION_VM = 105;
    /// <summary>x86 answers QEMU requires (kvm_arch_required_capabilities): 1 each.</summary>
    public const int KVM_CAP_EXT_CPUID = 7, KVM_CAP_SET_IDENTITY_MAP_ADDR = 37, KVM_CAP_X86_ROBUST_SINGLESTEP = 51;
    /// <summary>KVM_COALESCED_MMIO_PAGE_OFFSET where coalesced MMIO exists; KVM_CAP_COALESCED_PIO: 1.</summary>
    public const int KVM_CAP_COALESCED_MMIO = 15, KVM_CAP_COALESCED_PIO = 162;
    /// <summary>x86 VM-level KVM_ENABLE_CAP: the highest vCPU id + 1 (kvm->arch.max_vcpu_ids).</summary>
    public const int KVM_CAP_MAX_VCPU_ID = 128;
    /// <summary>
    /// The per-vCPU dirty ring with TSO ordering (x86): the largest ring KVM_ENABLE_CAP accepts, in bytes
    /// (KVM_DIRTY_RING_MAX_ENTRIES × sizeof(struct kvm_dirty_gfn) = 1 MiB); 0 where the architecture lacks it.
    /// KVM_ENABLE_CAP args[0] is the ring size in bytes (a power of two, at least a page), before any vCPU exists.
    /// </summary>
    public const int KVM_CAP_DIRTY_LOG_RING = 192;
    /// <summary>
    /// The same ring for weakly ordered hosts: userspace reads an entry's flags with acquire and publishes
    /// KVM_DIRTY_GFN_F_RESET with release ordering. Enabling either cap gives the same ring; only one can be enabled.
    /// </summary>
    public const int KVM_CAP_DIRTY_LOG_RING_ACQ_REL = 223;
    /// <summary>
    /// A dirty bitmap next to the ring for writes without a running vCPU (arm64's vgic/its tables); 0 on x86, where
    /// KVM_ENABLE_CAP of it is EINVAL.
    /// </summary>
    public const int KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP = 225;
    /// <summary>KVM_ENABLE_CAP on an x86 VM: KVM_SET/GET_VCPU_EVENTS keep a pending exception and its payload apart.</summary>
    public const int KVM_CAP_EXCEPTION_PAYLOAD = 164;
    /// <summary>
    /// x86: the mask of hypercalls KVM can forward to userspace as KVM_EXIT_HYPERCALL (KVM_EXIT_HYPERCALL_VALID_MASK,
    /// <c>1 &lt;&lt; KVM_HC_MAP_GPA_RANGE</c>); KVM_ENABLE_CAP on the VM selects which ones do. 0 on arm64.
    /// </summary>
    public const int KVM_CAP_EXIT_HYPERCALL = 201;
    /// <summary>
    /// x86, KVM_ENABLE_CAP on the VM (args[0] != 0 turns it on, 0 off; allowed after vCPUs exist): KVM_GET_VCPU_EVENTS
    /// then reports a pending triple fault (KVM_VCPUEVENT_VALID_TRIPLE_FAULT, triple_fault_pending) and
    /// KVM_SET_VCPU_EVENTS may set or clear it. 1 on x86 since 6.0.
    /// </summary>
    public const int KVM_CAP_X86_TRIPLE_FAULT_EVENT = 218;
    /// <summary>
    /// The KVM_GUESTDBG_* control bits KVM_SET_GUEST_DEBUG supports (x86: KVM_GUESTDBG_VALID_MASK, 0x1f0003 with
    /// BLOCKIRQ; 0 where the kernel predates it).
    /// </summary>
    public const int KVM_CAP_SET_GUEST_DEBUG2 = 195;
    public const int KVM_CAP_USER_MEMORY2 = 231;
    public const int KVM_CAP_MEMORY_FAULT_INFO = 232;
    public const int KVM_CAP_MEMORY_ATTRIBUTES = 233;
    public const int KVM_CAP_GUEST_MEMFD = 234;
    public const int KVM_CAP_VM_TYPES = 235;
    /// <summary>KVM_CAP_SYNC_REGS: the kvm_run sync-register sets KVM_RUN accepts (0 on a VM with protected state).</summary>
    public const int KVM_CAP_SYNC_REGS = 74;
    public const int KVM_CAP_PRE_FAULT_MEMORY = 236;
    /// <summary>Merged in 6.18 (was KVM_CAP_GUEST_MEMFD_MMAP before release). Returns bits 31:0 of the flags.</summary>
    public const int KVM_CAP_GUEST_MEMFD_FLAGS = 244;

    /// <summary>
    /// PROPOSAL: "guest_memfd: In-place conversion support" v8 uses 250; earlier RFCs used 246/248/249 and another
    /// series also claims 250. A kernel that uses another number is described by <see cref="UapiProposals"/>.
    /// (KVM_CAP_GUEST_MEMFD_FLAGS_HI has no number at all: see <see cref="UapiProposals.GuestMemfdFlagsHiCap"/>.)
    /// </summary>
    public const int KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES = 250;

    /// <summary>
    /// PROPOSAL: "[PATCH v3 07/15] KVM: Enable and advertise support for KVM userfault exits" (unmerged) allocates 243,
    /// which upstream gave to KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED in 6.17 — a rebased series needs another number,
    /// so a kernel says which through <see cref="UapiProposals.UserfaultCap"/>. On x86 6.18 the number answers 0.
    /// </summary>
    public const int KVM_CAP_USERFAULT = 243;

    /// <summary>The kernel name of a capability number (null when unknown to this layer).</summary>
    public static string? NameOf(int cap) => cap switch
    {
        KVM_CAP_IRQCHIP => nameof(KVM_CAP_IRQCHIP),
        KVM_CAP_DEVICE_CTRL => nameof(KVM_CAP_DEVICE_CTRL),
        KVM_CAP_IRQFD => nameof(KVM_CAP_IRQFD),
        KVM_CAP_IOEVENTFD => nameof(KVM_CAP_IOEVENTFD),
        KVM_CAP_IRQFD_RESAMPLE => nameof(KVM_CAP_IRQFD_RESAMPLE),
        KVM_CAP_IRQ_ROUTING => nameof(KVM_CAP_IRQ_ROUTING),
        KVM_CAP_IRQ_INJECT_STATUS => nameof(KVM_CAP_IRQ_INJECT_STATUS),
        KVM_CAP_SIGNAL_MSI => nameof(KVM_CAP_SIGNAL_MSI),
        KVM_CAP_SPLIT_IRQCHIP => nameof(KVM_CAP_SPLIT_IRQCHIP),
        KVM_CAP_DISABLE_QUIRKS => nameof(KVM_CAP_DISABLE_QUIRKS),
        KVM_CAP_DISABLE_QUIRKS2 => nameof(KVM_CAP_DISABLE_QUIRKS2),
        KVM_CAP_MSR_PLATFORM_INFO => nameof(KVM_CAP_MSR_PLATFORM_INFO),
        KVM_CAP_PIT => nameof(KVM_CAP_PIT),
        KVM_CAP_REINJECT_CONTROL => nameof(KVM_CAP_REINJECT_CONTROL),
        KVM_CAP_PIT2 => nameof(KVM_CAP_PIT2),
        KVM_CAP_PIT_STATE2 => nameof(KVM_CAP_PIT_STATE2),
        KVM_CAP_X2APIC_API => nameof(KVM_CAP_X2APIC_API),
        KVM_CAP_MSI_DEVID => nameof(KVM_CAP_MSI_DEVID),
        KVM_CAP_IOEVENTFD_NO_LENGTH => nameof(KVM_CAP_IOEVENTFD_NO_LENGTH),
        KVM_CAP_IOEVENTFD_ANY_LENGTH => nameof(KVM_CAP_IOEVENTFD_ANY_LENGTH),
        KVM_CAP_HLT => nameof(KVM_CAP_HLT),
        KVM_CAP_USER_MEMORY => nameof(KVM_CAP_USER_MEMORY),
        KVM_CAP_SET_TSS_ADDR => nameof(KVM_CAP_SET_TSS_ADDR),
        KVM_CAP_NR_VCPUS => nameof(KVM_CAP_NR_VCPUS),
        KVM_CAP_NR_MEMSLOTS => nameof(KVM_CAP_NR_MEMSLOTS),
        KVM_CAP_SET_GUEST_DEBUG => nameof(KVM_CAP_SET_GUEST_DEBUG),
        KVM_CAP_ADJUST_CLOCK => nameof(KVM_CAP_ADJUST_CLOCK),
        KVM_CAP_MCE => nameof(KVM_CAP_MCE),
        KVM_CAP_TSC_CONTROL => nameof(KVM_CAP_TSC_CONTROL),
        KVM_CAP_VM_TSC_CONTROL => nameof(KVM_CAP_VM_TSC_CONTROL),
        KVM_CAP_GET_TSC_KHZ => nameof(KVM_CAP_GET_TSC_KHZ),
        KVM_CAP_VCPU_ATTRIBUTES => nameof(KVM_CAP_VCPU_ATTRIBUTES),
        KVM_CAP_SET_GUEST_DEBUG2 => nameof(KVM_CAP_SET_GUEST_DEBUG2),
        KVM_CAP_MP_STATE => nameof(KVM_CAP_MP_STATE),
        KVM_CAP_SYNC_MMU => nameof(KVM_CAP_SYNC_MMU),
        KVM_CAP_VCPU_EVENTS => nameof(KVM_CAP_VCPU_EVENTS),
        KVM_CAP_DEBUGREGS => nameof(KVM_CAP_DEBUGREGS),
        KVM_CAP_XSAVE => nameof(KVM_CAP_XSAVE),
        KVM_CAP_XCRS => nameof(KVM_CAP_XCRS),
        KVM_CAP_XSAVE2 => nameof(KVM_CAP_XSAVE2),
        KVM_CAP_BINARY_STATS_FD => nameof(KVM_CAP_BINARY_STATS_FD),
        KVM_CAP_MAX_VCPUS => nameof(KVM_CAP_MAX_VCPUS),
        KVM_CAP_READONLY_MEM => nameof(KVM_CAP_READONLY_MEM),
        KVM_CAP_MULTI_ADDRESS_SPACE => nameof(KVM_CAP_MULTI_ADDRESS_SPACE),
        KVM_CAP_IMMEDIATE_EXIT => nameof(KVM_CAP_IMMEDIATE_EXIT),
        KVM_CAP_HALT_POLL => nameof(KVM_CAP_HALT_POLL),
        KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 => nameof(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2),
        KVM_CAP_ENFORCE_PV_FEATURE_CPUID => nameof(KVM_CAP_ENFORCE_PV_FEATURE_CPUID),
        KVM_CAP_X86_USER_SPACE_MSR => nameof(KVM_CAP_X86_USER_SPACE_MSR),
        KVM_CAP_X86_MSR_FILTER => nameof(KVM_CAP_X86_MSR_FILTER),
        KVM_CAP_DIRTY_LOG_RING => nameof(KVM_CAP_DIRTY_LOG_RING),
        KVM_CAP_DIRTY_LOG_RING_ACQ_REL => nameof(KVM_CAP_DIRTY_LOG_RING_ACQ_REL),
        KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP => nameof(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP),
        KVM_CAP_EXCEPTION_PAYLOAD => nameof(KVM_CAP_EXCEPTION_PAYLOAD),
        KVM_CAP_EXIT_HYPERCALL => nameof(KVM_CAP_EXIT_HYPERCALL),
        KVM_CAP_X86_TRIPLE_FAULT_EVENT => nameof(KVM_CAP_X86_TRIPLE_FAULT_EVENT),
        KVM_CAP_USER_MEMORY2 => nameof(KVM_CAP_USER_MEMORY2),
        KVM_CAP_MEMORY_FAULT_INFO => nameof(KVM_CAP_MEMORY_FAULT_INFO),
        KVM_CAP_MEMORY_ATTRIBUTES => nameof(KVM_CAP_MEMORY_ATTRIBUTES),
        KVM_CAP_GUEST_MEMFD => nameof(KVM_CAP_GUEST_MEMFD),
        KVM_CAP_VM_TYPES => nameof(KVM_CAP_VM_TYPES),
        KVM_CAP_SYNC_REGS => nameof(KVM_CAP_SYNC_REGS),
        KVM_CAP_PRE_FAULT_MEMORY => nameof(KVM_CAP_PRE_FAULT_MEMORY),
        KVM_CAP_GUEST_MEMFD_FLAGS => nameof(KVM_CAP_GUEST_MEMFD_FLAGS),
        KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES => nameof(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES),
        _ => null,
    };
}
