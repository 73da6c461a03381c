// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Abi;

/// <summary>
/// KVM ioctl request numbers, computed as include/uapi/linux/kvm.h does (KVMIO = 0xAE) from the struct sizes in
/// this layer. Do not take numbers from the host's /usr/include: it is Linux 6.1, older than guest_memfd.
/// </summary>
public static class KvmIoctls
{
    public const uint KVMIO = 0xAE;

    // ---- /dev/kvm ----
    public static readonly uint KVM_GET_API_VERSION = _IO(KVMIO, 0x00);
    /// <summary>Argument: the VM type (x86: KVM_X86_*_VM).</summary>
    public static readonly uint KVM_CREATE_VM = _IO(KVMIO, 0x01);
    /// <summary>On /dev/kvm and on a VM fd. Argument: the capability number.</summary>
    public static readonly uint KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03);
    public static readonly uint KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04);
    /// <summary>x86: the CPUID leaves KVM and the host support, as a <see cref="kvm_cpuid2"/> header + entries (E2BIG: too few).</summary>
    public static readonly uint KVM_GET_SUPPORTED_CPUID = _IOWR(KVMIO, 0x05, Size<kvm_cpuid2>());
    /// <summary>x86: the CPUID features KVM emulates in software (same layout as KVM_GET_SUPPORTED_CPUID).</summary>
    public static readonly uint KVM_GET_EMULATED_CPUID = _IOWR(KVMIO, 0x09, Size<kvm_cpuid2>());
    /// <summary>x86: the MSRs KVM_GET_MSRS/KVM_SET_MSRS save and restore (<see cref="kvm_msr_list"/>, E2BIG when short).</summary>
    public static readonly uint KVM_GET_MSR_INDEX_LIST = _IOWR(KVMIO, 0x02, Size<kvm_msr_list>());
    /// <summary>x86: the feature MSRs KVM_GET_MSRS on /dev/kvm reads (<see cref="kvm_msr_list"/>).</summary>
    public static readonly uint KVM_GET_MSR_FEATURE_INDEX_LIST = _IOWR(KVMIO, 0x0a, Size<kvm_msr_list>());
    /// <summary>
    /// x86, available with KVM_CAP_MCE: the IA32_MCG_CAP bits (besides the bank count and MCG_EXT_CNT) KVM_X86_SETUP_MCE
    /// accepts, written as a __u64 (kvm_caps.supported_mce_cap).
    /// </summary>
    public static readonly uint KVM_X86_GET_MCE_CAP_SUPPORTED = _IOR(KVMIO, 0x9d, sizeof(ulong));

    // ---- VM fd ----
    public static readonly uint KVM_CREATE_VCPU = _IO(KVMIO, 0x41);
    public static readonly uint KVM_SET_USER_MEMORY_REGION = _IOW(KVMIO, 0x46, Size<kvm_userspace_memory_region>());
    public static readonly uint KVM_SET_TSS_ADDR = _IO(KVMIO, 0x47);
    public static readonly uint KVM_SET_IDENTITY_MAP_ADDR = _IOW(KVMIO, 0x48, sizeof(ulong));
    /// <summary>Copies (and, without manual protect, clears) a KVM_MEM_LOG_DIRTY_PAGES slot's dirty bitmap.</summary>
    public static readonly uint KVM_GET_DIRTY_LOG = _IOW(KVMIO, 0x42, Size<kvm_dirty_log>());
    /// <summary>Available with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: clears the given bits of a slot's dirty bitmap.</summary>
    public static readonly uint KVM_CLEAR_DIRTY_LOG = _IOWR(KVMIO, 0xc0, Size<kvm_clear_dirty_log>());
    /// <summary>
    /// Available with KVM_CAP_DIRTY_LOG_RING(_ACQ_REL): re-protects the pages of every vCPU's ring entries that
    /// userspace marked KVM_DIRTY_GFN_F_RESET and frees those entries; returns how many (EINVAL without a ring).
    /// </summary>
    public static readonly uint KVM_RESET_DIRTY_RINGS = _IO(KVMIO, 0xc7);
    /// <summary>On a VM fd (and, for vCPU caps, a vCPU fd): enables a capability with <see cref="kvm_enable_cap"/>.</summary>
    public static readonly uint KVM_ENABLE_CAP = _IOW(KVMIO, 0xa3, Size<kvm_enable_cap>());
    /// <summary>Available with KVM_CAP_USER_MEMORY2.</summary>
    public static readonly uint KVM_SET_USER_MEMORY_REGION2 = _IOW(KVMIO, 0x49, Size<kvm_userspace_memory_region2>());
    /// <summary>Available with KVM_CAP_MEMORY_ATTRIBUTES.</summary>
    public static readonly uint KVM_SET_MEMORY_ATTRIBUTES = _IOW(KVMIO, 0xd2, Size<kvm_memory_attributes>());
    /// <summary>x86, available with KVM_CAP_ADJUST_CLOCK: the VM's kvmclock, <see cref="kvm_clock_data"/>.</summary>
    public static readonly uint KVM_GET_CLOCK = _IOR(KVMIO, 0x7c, Size<kvm_clock_data>());
    /// <summary>x86, available with KVM_CAP_ADJUST_CLOCK: sets the VM's kvmclock, <see cref="kvm_clock_data"/>.</summary>
    public static readonly uint KVM_SET_CLOCK = _IOW(KVMIO, 0x7b, Size<kvm_clock_data>());
    /// <summary>
    /// x86 SEV: pins a range of user memory holding guest RAM for the VM's lifetime (<see cref="kvm_enc_region"/>;
    /// arch/x86/kvm/svm/sev.c sev_mem_enc_register_region). ENOTTY on a VM that is not an SEV guest.
    /// </summary>
    public static readonly uint KVM_MEMORY_ENCRYPT_REG_REGION = _IOR(KVMIO, 0xbb, Size<kvm_enc_region>());
    /// <summary>x86 SEV: unpins a range registered with exactly the same addr and size (else EINVAL).</summary>
    public static readonly uint KVM_MEMORY_ENCRYPT_UNREG_REGION = _IOR(KVMIO, 0xbc, Size<kvm_enc_region>());
    /// <summary>Available with KVM_CAP_GUEST_MEMFD.</summary>
    public static readonly uint KVM_CREATE_GUEST_MEMFD = _IOWR(KVMIO, 0xd4, Size<kvm_create_guest_memfd>());
    /// <summary>Available with KVM_CAP_IRQFD: binds an eventfd to a GSI of the in-kernel irqchip (<see cref="kvm_irqfd"/>).</summary>
    public static readonly uint KVM_IRQFD = _IOW(KVMIO, 0x76, Size<kvm_irqfd>());
    // In-kernel irqchip (x86; Documentation/virt/kvm/api.rst 4.24–4.27, 4.52, 4.57, 4.70).
    /// <summary>x86: creates the in-kernel PIC pair, IOAPIC and (per vCPU) local APICs, before any vCPU.</summary>
    public static readonly uint KVM_CREATE_IRQCHIP = _IO(KVMIO, 0x60);
    /// <summary>Sets a GSI's level on the in-kernel irqchip (<see cref="kvm_irq_level"/>).</summary>
    public static readonly uint KVM_IRQ_LINE = _IOW(KVMIO, 0x61, Size<kvm_irq_level>());
    /// <summary>Like KVM_IRQ_LINE, and writes the delivery status back over kvm_irq_level.irq (KVM_CAP_IRQ_INJECT_STATUS).</summary>
    public static readonly uint KVM_IRQ_LINE_STATUS = _IOWR(KVMIO, 0x67, Size<kvm_irq_level>());
    /// <summary>x86: reads one PIC's or the IOAPIC's state (<see cref="kvm_irqchip"/>).</summary>
    public static readonly uint KVM_GET_IRQCHIP = _IOWR(KVMIO, 0x62, Size<kvm_irqchip>());
    /// <summary>x86: writes one PIC's or the IOAPIC's state. (The kernel encodes it _IOR although it only reads.)</summary>
    public static readonly uint KVM_SET_IRQCHIP = _IOR(KVMIO, 0x63, Size<kvm_irqchip>());
    // In-kernel PIT (x86 i8254; Documentation/virt/kvm/api.rst 4.58, 4.59, 4.67, 4.68, 4.74, 4.75).
    /// <summary>x86: creates the in-kernel PIT with the dummy speaker port (KVM_CREATE_PIT2 with KVM_PIT_SPEAKER_DUMMY).</summary>
    public static readonly uint KVM_CREATE_PIT = _IO(KVMIO, 0x64);
    /// <summary>x86: reads the PIT's three channels (<see cref="kvm_pit_state"/>).</summary>
    public static readonly uint KVM_GET_PIT = _IOWR(KVMIO, 0x65, Size<kvm_pit_state>());
    /// <summary>x86: writes the PIT's three channels. (Encoded _IOR although the kernel only reads.)</summary>
    public static readonly uint KVM_SET_PIT = _IOR(KVMIO, 0x66, Size<kvm_pit_state>());
    /// <summary>x86: turns the PIT's tick reinjection on or off (<see cref="kvm_reinject_control"/>, passed by pointer).</summary>
    public static readonly uint KVM_REINJECT_CONTROL = _IO(KVMIO, 0x71);
    /// <summary>x86: creates the in-kernel PIT (<see cref="kvm_pit_config"/>); needs the in-kernel PIC.</summary>
    public static readonly uint KVM_CREATE_PIT2 = _IOW(KVMIO, 0x77, Size<kvm_pit_config>());
    /// <summary>x86: reads the PIT's channels and flags (<see cref="kvm_pit_state2"/>). (Encoded _IOR although it writes.)</summary>
    public static readonly uint KVM_GET_PIT2 = _IOR(KVMIO, 0x9f, Size<kvm_pit_state2>());
    /// <summary>x86: writes the PIT's channels and flags (<see cref="kvm_pit_state2"/>).</summary>
    public static readonly uint KVM_SET_PIT2 = _IOW(KVMIO, 0xa0, Size<kvm_pit_state2>());
    /// <summary>Replaces the GSI routing table: a <see cref="kvm_irq_routing"/> header and its entries.</summary>
    public static readonly uint KVM_SET_GSI_ROUTING = _IOW(KVMIO, 0x6a, Size<kvm_irq_routing>());
    /// <summary>Delivers one MSI (<see cref="kvm_msi"/>); returns how many local APICs accepted it.</summary>
    public static readonly uint KVM_SIGNAL_MSI = _IOW(KVMIO, 0xa5, Size<kvm_msi>());
    /// <summary>x86 vCPU: reads the in-kernel local APIC's register page (<see cref="kvm_lapic_state"/>).</summary>
    public static readonly uint KVM_GET_LAPIC = _IOR(KVMIO, 0x8e, Size<kvm_lapic_state>());
    /// <summary>x86 vCPU: writes the in-kernel local APIC's register page.</summary>
    public static readonly uint KVM_SET_LAPIC = _IOW(KVMIO, 0x8f, Size<kvm_lapic_state>());
    /// <summary>Available with KVM_CAP_IOEVENTFD: turns guest PIO/MMIO writes into eventfd signals (<see cref="kvm_ioeventfd"/>).</summary>
    public static readonly uint KVM_IOEVENTFD = _IOW(KVMIO, 0x79, Size<kvm_ioeventfd>());

    // ---- vCPU fd ----
    public static readonly uint KVM_RUN = _IO(KVMIO, 0x80);
    public static readonly uint KVM_GET_REGS = _IOR(KVMIO, 0x81, Size<kvm_regs>());
    public static readonly uint KVM_SET_REGS = _IOW(KVMIO, 0x82, Size<kvm_regs>());
    public static readonly uint KVM_GET_SREGS = _IOR(KVMIO, 0x83, Size<kvm_sregs>());
    public static readonly uint KVM_SET_SREGS = _IOW(KVMIO, 0x84, Size<kvm_sregs>());
    /// <summary>
    /// The signal mask the vCPU's thread has while inside KVM_RUN (<see cref="kvm_signal_mask"/> + 8 bytes of sigset;
    /// a NULL argument drops it): a VMM blocks its kick signal outside KVM_RUN and lets it stop the guest inside.
    /// </summary>
    public static readonly uint KVM_SET_SIGNAL_MASK = _IOW(KVMIO, 0x8b, Size<kvm_signal_mask>());
    /// <summary>x86 (KVM_CAP_SREGS2): the special registers with the PAE PDPTRs (<see cref="kvm_sregs2"/>).</summary>
    public static readonly uint KVM_GET_SREGS2 = _IOR(KVMIO, 0xcc, Size<kvm_sregs2>());
    public static readonly uint KVM_SET_SREGS2 = _IOW(KVMIO, 0xcd, Size<kvm_sregs2>());
    /// <summary>x86: replaces the vCPU's CPUID table (<see cref="kvm_cpuid2"/> header + entries).</summary>
    public static readonly uint KVM_SET_CPUID2 = _IOW(KVMIO, 0x90, Size<kvm_cpuid2>());
    /// <summary>x86: reads the vCPU's CPUID table (E2BIG when nent is below the table's size).</summary>
    public static readonly uint KVM_GET_CPUID2 = _IOWR(KVMIO, 0x91, Size<kvm_cpuid2>());
    /// <summary>x86 (also /dev/kvm for feature MSRs): <see cref="kvm_msrs"/> + entries; returns how many were read.</summary>
    public static readonly uint KVM_GET_MSRS = _IOWR(KVMIO, 0x88, Size<kvm_msrs>());
    /// <summary>x86: <see cref="kvm_msrs"/> + entries; returns how many were written (stops at the first refused).</summary>
    public static readonly uint KVM_SET_MSRS = _IOW(KVMIO, 0x89, Size<kvm_msrs>());
    /// <summary>x86: the legacy (fxsave) FPU state, <see cref="kvm_fpu"/>.</summary>
    public static readonly uint KVM_GET_FPU = _IOR(KVMIO, 0x8c, Size<kvm_fpu>());
    /// <summary>x86: replaces the legacy (fxsave) FPU state, <see cref="kvm_fpu"/>.</summary>
    public static readonly uint KVM_SET_FPU = _IOW(KVMIO, 0x8d, Size<kvm_fpu>());
    /// <summary>Available with KVM_CAP_XCRS: XCR0, <see cref="kvm_xcrs"/>.</summary>
    public static readonly uint KVM_GET_XCRS = _IOR(KVMIO, 0xa6, Size<kvm_xcrs>());
    /// <summary>Available with KVM_CAP_XCRS: sets XCR0 (the first entry naming it), <see cref="kvm_xcrs"/>.</summary>
    public static readonly uint KVM_SET_XCRS = _IOW(KVMIO, 0xa7, Size<kvm_xcrs>());
    /// <summary>Available with KVM_CAP_XSAVE: the XSAVE image (standard format, 4096 bytes), <see cref="kvm_xsave"/>.</summary>
    public static readonly uint KVM_GET_XSAVE = _IOR(KVMIO, 0xa4, Size<kvm_xsave>());
    /// <summary>
    /// Available with KVM_CAP_XSAVE: replaces the XSAVE image; the kernel reads KVM_CAP_XSAVE2's size (at least 4096
    /// bytes), <see cref="kvm_xsave"/>.
    /// </summary>
    public static readonly uint KVM_SET_XSAVE = _IOW(KVMIO, 0xa5, Size<kvm_xsave>());
    /// <summary>
    /// Available with KVM_CAP_XSAVE2: the XSAVE image into a buffer of KVM_CAP_XSAVE2's size (the number encodes
    /// 4096 whatever that size), <see cref="kvm_xsave"/>.
    /// </summary>
    public static readonly uint KVM_GET_XSAVE2 = _IOR(KVMIO, 0xcf, Size<kvm_xsave>());
    /// <summary>
    /// Available with KVM_CAP_BINARY_STATS_FD, on a VM fd and on a vCPU fd (no argument): a new O_RDONLY, O_CLOEXEC
    /// descriptor of the binary statistics file (<see cref="kvm_stats_header"/>, <see cref="kvm_stats_desc"/>).
    /// </summary>
    public static readonly uint KVM_GET_STATS_FD = _IO(KVMIO, 0xce);
    /// <summary>Available with KVM_CAP_VCPU_EVENTS: pending/injected exception, interrupt, NMI, SMI state.</summary>
    public static readonly uint KVM_GET_VCPU_EVENTS = _IOR(KVMIO, 0x9f, Size<kvm_vcpu_events>());
    /// <summary>Available with KVM_CAP_VCPU_EVENTS.</summary>
    public static readonly uint KVM_SET_VCPU_EVENTS = _IOW(KVMIO, 0xa0, Size<kvm_vcpu_events>());
    /// <summary>Available with KVM_CAP_MP_STATE: a KVM_MP_STATE_* value, <see cref="kvm_mp_state"/>.</summary>
    public static readonly uint KVM_GET_MP_STATE = _IOR(KVMIO, 0x98, Size<kvm_mp_state>());
    /// <summary>Available with KVM_CAP_MP_STATE.</summary>
    public static readonly uint KVM_SET_MP_STATE = _IOW(KVMIO, 0x99, Size<kvm_mp_state>());
    /// <summary>Available with KVM_CAP_DEBUGREGS: DR0-3, DR6, DR7, <see cref="kvm_debugregs"/>.</summary>
    public static readonly uint KVM_GET_DEBUGREGS = _IOR(KVMIO, 0xa1, Size<kvm_debugregs>());
    /// <summary>Available with KVM_CAP_DEBUGREGS.</summary>
    public static readonly uint KVM_SET_DEBUGREGS = _IOW(KVMIO, 0xa2, Size<kvm_debugregs>());
    /// <summary>
    /// Available with KVM_CAP_SET_GUEST_DEBUG: host debugging of the vCPU (single-step, software and hardware
    /// breakpoints reported as KVM_EXIT_DEBUG), <see cref="kvm_guest_debug"/> (x86: 72 bytes).
    /// </summary>
    public static readonly uint KVM_SET_GUEST_DEBUG = _IOW(KVMIO, 0x9b, Size<kvm_guest_debug>());
    /// <summary>x86, available with KVM_CAP_GET_TSC_KHZ: the vCPU's TSC frequency in kHz (the return value).</summary>
    public static readonly uint KVM_GET_TSC_KHZ = _IO(KVMIO, 0xa3);
    /// <summary>x86, available with KVM_CAP_TSC_CONTROL: sets the vCPU's TSC frequency (argument: kHz).</summary>
    public static readonly uint KVM_SET_TSC_KHZ = _IO(KVMIO, 0xa2);
    /// <summary>
    /// On a vCPU with KVM_CAP_VCPU_ATTRIBUTES (also device and VM fds): writes the attribute from
    /// <see cref="kvm_device_attr.addr"/>. ENXIO for a group or attribute the kernel does not have.
    /// </summary>
    public static readonly uint KVM_SET_DEVICE_ATTR = _IOW(KVMIO, 0xe1, Size<kvm_device_attr>());
    /// <summary>Reads the attribute into <see cref="kvm_device_attr.addr"/> (encoded _IOW, as upstream does).</summary>
    public static readonly uint KVM_GET_DEVICE_ATTR = _IOW(KVMIO, 0xe2, Size<kvm_device_attr>());
    /// <summary>0 when the attribute exists, ENXIO when not.</summary>
    public static readonly uint KVM_HAS_DEVICE_ATTR = _IOW(KVMIO, 0xe3, Size<kvm_device_attr>());
    /// <summary>
    /// On a VM fd (KVM_CAP_DEVICE_CTRL): creates an in-kernel device of <see cref="kvm_create_device.type"/> and
    /// writes its descriptor back; ENODEV for a type this kernel does not have.
    /// </summary>
    public static readonly uint KVM_CREATE_DEVICE = _IOWR(KVMIO, 0xe0, Size<kvm_create_device>());
    /// <summary>
    /// x86, available with KVM_CAP_MCE: sets the vCPU's IA32_MCG_CAP from a __u64 (bank count 1..KVM_CAP_MCE's value,
    /// capability bits within KVM_X86_GET_MCE_CAP_SUPPORTED) and enables the banks (MCi_CTL all ones).
    /// </summary>
    public static readonly uint KVM_X86_SETUP_MCE = _IOW(KVMIO, 0x9c, sizeof(ulong));
    /// <summary>
    /// x86, without an in-kernel interrupt controller: queues external interrupt <see cref="kvm_interrupt.irq"/>
    /// (0..KVM_NR_INTERRUPTS-1, else EINVAL) as injected; the next KVM_RUN delivers it whatever RFLAGS.IF says, so
    /// userspace waits for kvm_run.ready_for_interrupt_injection (x86.c kvm_vcpu_ioctl_interrupt).
    /// </summary>
    public static readonly uint KVM_INTERRUPT = _IOW(KVMIO, 0x86, Size<kvm_interrupt>());
    /// <summary>x86: queues a non-maskable interrupt (x86.c kvm_vcpu_ioctl_nmi → kvm_inject_nmi); no argument.</summary>
    public static readonly uint KVM_NMI = _IO(KVMIO, 0x9a);
    /// <summary>
    /// x86, available with KVM_CAP_MCE: injects a machine-check error into one bank of the vCPU,
    /// <see cref="kvm_x86_mce"/> (x86.c kvm_vcpu_ioctl_x86_set_mce).
    /// </summary>
    public static readonly uint KVM_X86_SET_MCE = _IOW(KVMIO, 0x9e, Size<kvm_x86_mce>());
    /// <summary>Available with KVM_CAP_PRE_FAULT_MEMORY.</summary>
    public static readonly uint KVM_PRE_FAULT_MEMORY = _IOWR(KVMIO, 0xd5, Size<kvm_pre_fault_memory>());

    // ---- guest_memfd fd (proposal) ----
    /// <summary>
    /// PROPOSAL, unmerged: "guest_memfd: In-place conversion support" v8 (2026-06-18) makes this a guest_memfd
    /// ioctl. Same nr as KVM_SET_MEMORY_ATTRIBUTES but _IOWR with the 128-byte struct, so the value differs.
    /// The seed 002 variant (March 2026) issues the same request on a VM fd. Another number for another series:
    /// <see cref="UapiProposals.SetMemoryAttributes2Request"/>.
    /// </summary>
    public static readonly uint KVM_SET_MEMORY_ATTRIBUTES2 = _IOWR(KVMIO, 0xd2, Size<kvm_memory_attributes2>());

    /// <summary>The kernel name of a request number, for error messages; hex when unknown.</summary>
    public static string NameOf(uint request)
    {
        if (request == KVM_GET_API_VERSION) return nameof(KVM_GET_API_VERSION);
        if (request == KVM_CREATE_VM) return nameof(KVM_CREATE_VM);
        if (request == KVM_CHECK_EXTENSION) return nameof(KVM_CHECK_EXTENSION);
        if (request == KVM_GET_VCPU_MMAP_SIZE) return nameof(KVM_GET_VCPU_MMAP_SIZE);
        if (request == KVM_GET_MSR_INDEX_LIST) return nameof(KVM_GET_MSR_INDEX_LIST);
        if (request == KVM_GET_MSR_FEATURE_INDEX_LIST) return nameof(KVM_GET_MSR_FEATURE_INDEX_LIST);
        if (request == KVM_GET_MSRS) return nameof(KVM_GET_MSRS);
        if (request == KVM_X86_GET_MCE_CAP_SUPPORTED) return nameof(KVM_X86_GET_MCE_CAP_SUPPORTED);
        if (request == KVM_X86_SETUP_MCE) return nameof(KVM_X86_SETUP_MCE);
        if (request == KVM_X86_SET_MCE) return nameof(KVM_X86_SET_MCE);
        if (request == KVM_INTERRUPT) return nameof(KVM_INTERRUPT);
        if (request == KVM_NMI) return nameof(KVM_NMI);
        if (request == KVM_SET_MSRS) return nameof(KVM_SET_MSRS);
        if (request == KVM_CREATE_VCPU) return nameof(KVM_CREATE_VCPU);
        if (request == KVM_SET_USER_MEMORY_REGION) return nameof(KVM_SET_USER_MEMORY_REGION);
        if (request == KVM_SET_TSS_ADDR) return nameof(KVM_SET_TSS_ADDR);
        if (request == KVM_SET_IDENTITY_MAP_ADDR) return nameof(KVM_SET_IDENTITY_MAP_ADDR);
        if (request == KVM_ENABLE_CAP) return nameof(KVM_ENABLE_CAP);
        if (request == KVM_GET_DIRTY_LOG) return nameof(KVM_GET_DIRTY_LOG);
        if (request == KVM_CLEAR_DIRTY_LOG) return nameof(KVM_CLEAR_DIRTY_LOG);
        if (request == KVM_IOEVENTFD) return nameof(KVM_IOEVENTFD);
        if (request == KVM_IRQFD) return nameof(KVM_IRQFD);
        if (request == KVM_CREATE_IRQCHIP) return nameof(KVM_CREATE_IRQCHIP);
        if (request == KVM_IRQ_LINE) return nameof(KVM_IRQ_LINE);
        if (request == KVM_IRQ_LINE_STATUS) return nameof(KVM_IRQ_LINE_STATUS);
        if (request == KVM_GET_IRQCHIP) return nameof(KVM_GET_IRQCHIP);
        if (request == KVM_SET_IRQCHIP) return nameof(KVM_SET_IRQCHIP);
        if (request == KVM_CREATE_PIT) return nameof(KVM_CREATE_PIT);
        if (request == KVM_GET_PIT) return nameof(KVM_GET_PIT);
        if (request == KVM_SET_PIT) return nameof(KVM_SET_PIT);
        if (request == KVM_REINJECT_CONTROL) return nameof(KVM_REINJECT_CONTROL);
        if (request == KVM_CREATE_PIT2) return nameof(KVM_CREATE_PIT2);
        if (request == KVM_GET_PIT2) return nameof(KVM_GET_PIT2);
        if (request == KVM_SET_PIT2) return nameof(KVM_SET_PIT2);
        if (request == KVM_SET_GSI_ROUTING) return nameof(KVM_SET_GSI_ROUTING);
        if (request == KVM_SIGNAL_MSI) return nameof(KVM_SIGNAL_MSI);
        if (request == KVM_GET_LAPIC) return nameof(KVM_GET_LAPIC);
        if (request == KVM_SET_LAPIC) return nameof(KVM_SET_LAPIC);
        if (request == KVM_RESET_DIRTY_RINGS) return nameof(KVM_RESET_DIRTY_RINGS);
        if (request == KVM_SET_USER_MEMORY_REGION2) return nameof(KVM_SET_USER_MEMORY_REGION2);
        if (request == KVM_SET_MEMORY_ATTRIBUTES) return nameof(KVM_SET_MEMORY_ATTRIBUTES);
        if (request == KVM_SET_MEMORY_ATTRIBUTES2) return nameof(KVM_SET_MEMORY_ATTRIBUTES2);
        if (request == KVM_CREATE_GUEST_MEMFD) return nameof(KVM_CREATE_GUEST_MEMFD);
        if (request == KVM_RUN) return nameof(KVM_RUN);
        if (request == KVM_GET_REGS) return nameof(KVM_GET_REGS);
        if (request == KVM_SET_REGS) return nameof(KVM_SET_REGS);
        if (request == KVM_GET_SREGS) return nameof(KVM_GET_SREGS);
        if (request == KVM_SET_SREGS) return nameof(KVM_SET_SREGS);
        if (request == KVM_SET_SIGNAL_MASK) return nameof(KVM_SET_SIGNAL_MASK);
        if (request == KVM_GET_SREGS2) return nameof(KVM_GET_SREGS2);
        if (request == KVM_SET_SREGS2) return nameof(KVM_SET_SREGS2);
        if (request == KvmMsrFilter.KVM_X86_SET_MSR_FILTER) return nameof(KvmMsrFilter.KVM_X86_SET_MSR_FILTER);
        if (request == KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO) return nameof(KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO);
        if (request == KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO) return nameof(KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO);
        if (request == KVM_PRE_FAULT_MEMORY) return nameof(KVM_PRE_FAULT_MEMORY);
        if (request == KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP) return nameof(KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP);
        if (request == KVM_MEMORY_ENCRYPT_REG_REGION) return nameof(KVM_MEMORY_ENCRYPT_REG_REGION);
        if (request == KVM_MEMORY_ENCRYPT_UNREG_REGION) return nameof(KVM_MEMORY_ENCRYPT_UNREG_REGION);
        if (request == KVM_GET_SUPPORTED_CPUID) return nameof(KVM_GET_SUPPORTED_CPUID);
        if (request == KVM_GET_EMULATED_CPUID) return nameof(KVM_GET_EMULATED_CPUID);
        if (request == KVM_SET_CPUID2) return nameof(KVM_SET_CPUID2);
        if (request == KVM_GET_CPUID2) return nameof(KVM_GET_CPUID2);
        if (request == KVM_GET_FPU) return nameof(KVM_GET_FPU);
        if (request == KVM_SET_FPU) return nameof(KVM_SET_FPU);
        if (request == KVM_GET_XCRS) return nameof(KVM_GET_XCRS);
        if (request == KVM_SET_XCRS) return nameof(KVM_SET_XCRS);
        if (request == KVM_GET_XSAVE) return nameof(KVM_GET_XSAVE);
        if (request == KVM_SET_XSAVE) return nameof(KVM_SET_XSAVE);
        if (request == KVM_GET_XSAVE2) return nameof(KVM_GET_XSAVE2);
        if (request == KVM_GET_STATS_FD) return nameof(KVM_GET_STATS_FD);
        if (request == KVM_GET_VCPU_EVENTS) return nameof(KVM_GET_VCPU_EVENTS);
        if (request == KVM_SET_VCPU_EVENTS) return nameof(KVM_SET_VCPU_EVENTS);
        if (request == KVM_GET_MP_STATE) return nameof(KVM_GET_MP_STATE);
        if (request == KVM_SET_MP_STATE) return nameof(KVM_SET_MP_STATE);
        if (request == KVM_GET_DEBUGREGS) return nameof(KVM_GET_DEBUGREGS);
        if (request == KVM_SET_DEBUGREGS) return nameof(KVM_SET_DEBUGREGS);
        if (request == KVM_SET_GUEST_DEBUG) return nameof(KVM_SET_GUEST_DEBUG);
        if (request == KVM_GET_CLOCK) return nameof(KVM_GET_CLOCK);
        if (request == KVM_SET_CLOCK) return nameof(KVM_SET_CLOCK);
        if (request == KVM_GET_TSC_KHZ) return nameof(KVM_GET_TSC_KHZ);
        if (request == KVM_SET_TSC_KHZ) return nameof(KVM_SET_TSC_KHZ);
        if (request == KVM_SET_DEVICE_ATTR) return nameof(KVM_SET_DEVICE_ATTR);
        if (request == KVM_GET_DEVICE_ATTR) return nameof(KVM_GET_DEVICE_ATTR);
        if (request == KVM_HAS_DEVICE_ATTR) return nameof(KVM_HAS_DEVICE_ATTR);
        if (request == KVM_CREATE_DEVICE) return nameof(KVM_CREATE_DEVICE);
        // The arm64 requests (also the generic KVM_GET/SET_ONE_REG, KVM_GET_REG_LIST numbers).
        if (request == Arm64.KvmArm64Ioctls.KVM_ARM_VCPU_INIT) return nameof(Arm64.KvmArm64Ioctls.KVM_ARM_VCPU_INIT);
        if (request == Arm64.KvmArm64Ioctls.KVM_ARM_PREFERRED_TARGET) return nameof(Arm64.KvmArm64Ioctls.KVM_ARM_PREFERRED_TARGET);
        if (request == Arm64.KvmArm64Ioctls.KVM_GET_ONE_REG) return nameof(Arm64.KvmArm64Ioctls.KVM_GET_ONE_REG);
        if (request == Arm64.KvmArm64Ioctls.KVM_SET_ONE_REG) return nameof(Arm64.KvmArm64Ioctls.KVM_SET_ONE_REG);
        if (request == Arm64.KvmArm64Ioctls.KVM_GET_REG_LIST) return nameof(Arm64.KvmArm64Ioctls.KVM_GET_REG_LIST);
        // arm64's struct kvm_guest_debug is 520 bytes, so its request number is not x86's.
        if (request == Arm64.KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64) return "KVM_SET_GUEST_DEBUG";
        return $"ioctl 0x{request:X8}";
    }

    private static uint Size<T>() where T : unmanaged => (uint)Unsafe.SizeOf<T>();
}
