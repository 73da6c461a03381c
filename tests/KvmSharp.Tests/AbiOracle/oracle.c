// SPDX-License-Identifier: MIT
/*
 * The ABI oracle: prints, one "name value" line each (value in decimal), the numbers and layouts that
 * src/KvmSharp.Interop/Abi mirrors, as the C compiler computes them from the vendored upstream uAPI headers
 * (include/README.md says which commit). AbiOracleTests builds it with gcc (x86_64) and compares every line with
 * the C# side, so nothing here is typed by hand: each value comes from a macro, an enum, sizeof or offsetof.
 *
 * Names: a macro or enum constant prints under its own name; "sizeof(S)" and "offsetof(S.f)" for structs;
 * "kvm_run.<exit>_<field>" for the kvm_run offsets, named as the C# KvmRunLayout constants are.
 * Printing something the C# side lacks is fine (it is reported, not failed): that is how numbers another change
 * is about to add (KVM_ENABLE_CAP, the hypercall exit) are ready before their C# side lands.
 *
 * Proposals (UapiProposals, KVM_SET_MEMORY_ATTRIBUTES2, kvm_memory_attributes2, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES,
 * GUEST_MEMFD_FLAG_NO_DIRECT_MAP) are not upstream, so they are skipped here; OracleExclusions.cs lists them.
 */
#include <stddef.h>
#include <stdio.h>
#include <linux/kvm.h>
/* Guards against -I order mistakes: the host's 6.1 linux/kvm.h has no guest_memfd and must not be the one read. */
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#error "linux/kvm.h is not the vendored upstream header (no KVM_CAP_GUEST_MEMFD_FLAGS)"
#endif
/* linux/kvm_para.h + asm/kvm_para.h are not vendored yet (include/README.md says why): printed once they are. */
#if __has_include("include/linux/kvm_para.h")
#include <errno.h> /* KVM_EFAULT and friends are spelled as errno names */
#include "include/linux/kvm_para.h"
#define ORACLE_HAVE_KVM_PARA 1
#endif

#define P(name, expr) printf("%s %llu\n", (name), (unsigned long long)(expr))
#define CONST(x) P(#x, (x))
#define SIZE(s) P("sizeof(" #s ")", sizeof(struct s))
#define OFF(s, f) P("offsetof(" #s "." #f ")", offsetof(struct s, f))
#define RUN(name, member) P("kvm_run." #name, offsetof(struct kvm_run, member))

static void ioctl_encoding(void)
{
	CONST(_IOC_NONE);
	CONST(_IOC_WRITE);
	CONST(_IOC_READ);
	CONST(KVMIO);
	CONST(KVM_API_VERSION);
}

static void ioctls(void)
{
	/* /dev/kvm */
	CONST(KVM_GET_API_VERSION);
	CONST(KVM_CREATE_VM);
	CONST(KVM_CHECK_EXTENSION);
	CONST(KVM_GET_VCPU_MMAP_SIZE);
	CONST(KVM_GET_MSR_INDEX_LIST);
	CONST(KVM_GET_MSR_FEATURE_INDEX_LIST);
	CONST(KVM_X86_GET_MCE_CAP_SUPPORTED);
	/* VM fd */
	CONST(KVM_CREATE_VCPU);
	CONST(KVM_SET_USER_MEMORY_REGION);
	CONST(KVM_SET_TSS_ADDR);
	CONST(KVM_SET_IDENTITY_MAP_ADDR);
	CONST(KVM_GET_DIRTY_LOG);
	CONST(KVM_CLEAR_DIRTY_LOG);
	CONST(KVM_RESET_DIRTY_RINGS);
	CONST(KVM_SET_USER_MEMORY_REGION2);
	CONST(KVM_SET_MEMORY_ATTRIBUTES);
	CONST(KVM_CREATE_GUEST_MEMFD);
	CONST(KVM_IRQFD); CONST(KVM_IOEVENTFD);
	CONST(KVM_MEMORY_ENCRYPT_OP);
	CONST(KVM_MEMORY_ENCRYPT_REG_REGION); CONST(KVM_MEMORY_ENCRYPT_UNREG_REGION);
	/* vCPU fd (KVM_ENABLE_CAP also on a VM fd) */
	CONST(KVM_RUN);
	CONST(KVM_GET_REGS);
	CONST(KVM_SET_REGS);
	CONST(KVM_GET_SREGS);
	CONST(KVM_SET_SREGS);
	CONST(KVM_GET_MSRS);
	CONST(KVM_SET_MSRS);
	CONST(KVM_PRE_FAULT_MEMORY);
	/* x86 CPUID (KVM_GET_SUPPORTED_CPUID / KVM_GET_EMULATED_CPUID on /dev/kvm) */
	CONST(KVM_GET_SUPPORTED_CPUID);
	CONST(KVM_GET_EMULATED_CPUID);
	CONST(KVM_SET_CPUID2);
	CONST(KVM_GET_CPUID2);
	/* x86 vCPU state save/restore (Vcpu.State.cs) */
	CONST(KVM_GET_FPU);
	CONST(KVM_SET_FPU);
	CONST(KVM_GET_XCRS);
	CONST(KVM_SET_XCRS);
	CONST(KVM_GET_XSAVE);
	CONST(KVM_SET_XSAVE);
	CONST(KVM_GET_XSAVE2);
	CONST(KVM_GET_VCPU_EVENTS);
	CONST(KVM_SET_VCPU_EVENTS);
	CONST(KVM_GET_MP_STATE);
	CONST(KVM_SET_MP_STATE);
	CONST(KVM_GET_DEBUGREGS);
	CONST(KVM_SET_DEBUGREGS);
	CONST(KVM_SET_GUEST_DEBUG);
	CONST(KVM_X86_SETUP_MCE);
	CONST(KVM_X86_SET_MCE);
	CONST(KVM_INTERRUPT);
	CONST(KVM_NMI);
	CONST(KVM_GET_CLOCK); CONST(KVM_SET_CLOCK);
	CONST(KVM_GET_TSC_KHZ); CONST(KVM_SET_TSC_KHZ);
	CONST(KVM_SET_DEVICE_ATTR); CONST(KVM_GET_DEVICE_ATTR); CONST(KVM_HAS_DEVICE_ATTR);
	CONST(KVM_CREATE_DEVICE);
	CONST(KVM_ENABLE_CAP);
	CONST(KVM_GET_ONE_REG);
	CONST(KVM_GET_REG_LIST);
	CONST(KVM_SET_ONE_REG);
	/* Proposal, skipped: KVM_SET_MEMORY_ATTRIBUTES2 (guest_memfd in-place conversion, unmerged). */
}

static void caps(void)
{
	CONST(KVM_CAP_IRQCHIP);
	CONST(KVM_CAP_ARM_PMU_V3);
	CONST(KVM_CAP_ARM_PTRAUTH_ADDRESS); CONST(KVM_CAP_ARM_PTRAUTH_GENERIC); CONST(KVM_CAP_STEAL_TIME);
	CONST(KVM_CAP_ARM_SVE); CONST(KVM_ARM_VCPU_FINALIZE);
	CONST(KVM_CAP_ARM_SYSTEM_SUSPEND); CONST(KVM_CAP_COUNTER_OFFSET); CONST(KVM_CAP_ARM_WRITABLE_IMP_ID_REGS);
	CONST(KVM_CAP_IRQFD); CONST(KVM_CAP_IOEVENTFD); CONST(KVM_CAP_IRQFD_RESAMPLE);
	CONST(KVM_CAP_IOEVENTFD_NO_LENGTH); CONST(KVM_CAP_IOEVENTFD_ANY_LENGTH);
	CONST(KVM_CAP_HLT);
	CONST(KVM_CAP_USER_MEMORY);
	CONST(KVM_CAP_SET_TSS_ADDR);
	CONST(KVM_CAP_NR_VCPUS);
	CONST(KVM_CAP_NR_MEMSLOTS);
	CONST(KVM_CAP_SET_GUEST_DEBUG);
	CONST(KVM_CAP_SET_GUEST_DEBUG2);
	CONST(KVM_CAP_SYNC_MMU);
	CONST(KVM_CAP_ENABLE_CAP);
	CONST(KVM_CAP_MAX_VCPUS);
	CONST(KVM_CAP_READONLY_MEM);
	CONST(KVM_CAP_ENABLE_CAP_VM);
	CONST(KVM_CAP_CHECK_EXTENSION_VM);
	CONST(KVM_CAP_MULTI_ADDRESS_SPACE);
	CONST(KVM_CAP_MP_STATE);
	CONST(KVM_CAP_VCPU_EVENTS);
	CONST(KVM_CAP_DEBUGREGS);
	CONST(KVM_CAP_XCRS);
	CONST(KVM_CAP_MCE);
	CONST(KVM_CAP_ADJUST_CLOCK); CONST(KVM_CAP_TSC_CONTROL); CONST(KVM_CAP_GET_TSC_KHZ); CONST(KVM_CAP_VCPU_ATTRIBUTES); CONST(KVM_CAP_DEVICE_CTRL); CONST(KVM_CAP_VM_TSC_CONTROL);
	CONST(KVM_CAP_XSAVE);
	CONST(KVM_CAP_XSAVE2);
	CONST(KVM_CAP_EXCEPTION_PAYLOAD);
	CONST(KVM_CAP_IMMEDIATE_EXIT);
	CONST(KVM_CAP_HALT_POLL);
	CONST(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	CONST(KVM_CAP_DIRTY_LOG_RING);
	CONST(KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	CONST(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP);
	CONST(KVM_CAP_ENFORCE_PV_FEATURE_CPUID);
	CONST(KVM_CAP_EXIT_HYPERCALL);
	CONST(KVM_CAP_X86_TRIPLE_FAULT_EVENT);
	CONST(KVM_CAP_USER_MEMORY2);
	CONST(KVM_CAP_MEMORY_FAULT_INFO);
	CONST(KVM_CAP_MEMORY_ATTRIBUTES);
	CONST(KVM_CAP_GUEST_MEMFD);
	CONST(KVM_CAP_VM_TYPES);
	CONST(KVM_CAP_SYNC_REGS);
	CONST(KVM_CAP_PRE_FAULT_MEMORY);
	CONST(KVM_CAP_GUEST_MEMFD_FLAGS);
	/* Proposal, skipped: KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (no upstream number yet). */
}

static void flags_and_enums(void)
{
	/* guest_memfd creation flags; GUEST_MEMFD_FLAG_NO_DIRECT_MAP is a proposal, skipped */
	CONST(KVM_NR_INTERRUPTS);
	CONST(GUEST_MEMFD_FLAG_MMAP);
	CONST(GUEST_MEMFD_FLAG_INIT_SHARED);
	/* memory slot flags */
	/* KVM_IOEVENTFD / KVM_IRQFD flags */
	CONST(KVM_IOEVENTFD_FLAG_DATAMATCH); CONST(KVM_IOEVENTFD_FLAG_PIO); CONST(KVM_IOEVENTFD_FLAG_DEASSIGN);
	CONST(KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY); CONST(KVM_IOEVENTFD_VALID_FLAG_MASK);
	CONST(KVM_IRQFD_FLAG_DEASSIGN); CONST(KVM_IRQFD_FLAG_RESAMPLE);
	CONST(KVM_MEM_LOG_DIRTY_PAGES);
	CONST(KVM_MEM_READONLY);
	CONST(KVM_MEM_GUEST_MEMFD);
	CONST(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
	CONST(KVM_DIRTY_LOG_INITIALLY_SET);
	/* the dirty ring */
	CONST(KVM_DIRTY_GFN_F_DIRTY);
	CONST(KVM_DIRTY_GFN_F_RESET);
	CONST(KVM_DIRTY_GFN_F_MASK);
	CONST(KVM_DIRTY_LOG_PAGE_OFFSET);
	/* memory attributes and KVM_EXIT_MEMORY_FAULT */
	CONST(KVM_MEMORY_ATTRIBUTE_PRIVATE);
	CONST(KVM_MEMORY_EXIT_FLAG_PRIVATE);
	/* x86 VM types */
	CONST(KVM_X86_DEFAULT_VM);
	CONST(KVM_X86_SW_PROTECTED_VM);
	CONST(KVM_X86_SEV_VM);
	CONST(KVM_X86_SEV_ES_VM);
	CONST(KVM_X86_SNP_VM);
	CONST(KVM_X86_TDX_VM);
	/* KVM_EXIT_IO directions, hypercall exit flags */
	CONST(KVM_EXIT_IO_IN);
	CONST(KVM_EXIT_IO_OUT);
	CONST(KVM_EXIT_HYPERCALL_LONG_MODE);
	/* KVM_EXIT_SYSTEM_EVENT types */
	CONST(KVM_SYSTEM_EVENT_SHUTDOWN);
	CONST(KVM_SYSTEM_EVENT_RESET);
	CONST(KVM_SYSTEM_EVENT_CRASH);
	CONST(KVM_SYSTEM_EVENT_WAKEUP);
	CONST(KVM_SYSTEM_EVENT_SUSPEND);
	CONST(KVM_SYSTEM_EVENT_SEV_TERM);
	CONST(KVM_SYSTEM_EVENT_TDX_FATAL);
	/* KVM_GET/SET_ONE_REG id encoding (linux/kvm.h, shared by every architecture) */
	CONST(KVM_REG_ARCH_MASK);
	CONST(KVM_REG_ARM64);
	CONST(KVM_REG_SIZE_SHIFT);
	CONST(KVM_REG_SIZE_MASK);
	CONST(KVM_REG_SIZE_U32);
	CONST(KVM_REG_SIZE_U64);
	CONST(KVM_REG_SIZE_U128);
	CONST(KVM_REG_SIZE_U256);
	CONST(KVM_REG_SIZE_U512);
	CONST(KVM_REG_SIZE_U2048);
}

static void exit_reasons(void)
{
	CONST(KVM_EXIT_UNKNOWN);
	CONST(KVM_EXIT_EXCEPTION);
	CONST(KVM_EXIT_IO);
	CONST(KVM_EXIT_HYPERCALL);
	CONST(KVM_EXIT_DEBUG);
	CONST(KVM_EXIT_HLT);
	CONST(KVM_EXIT_MMIO);
	CONST(KVM_EXIT_IRQ_WINDOW_OPEN);
	CONST(KVM_EXIT_SHUTDOWN);
	CONST(KVM_EXIT_FAIL_ENTRY);
	CONST(KVM_EXIT_INTR);
	CONST(KVM_EXIT_SET_TPR);
	CONST(KVM_EXIT_TPR_ACCESS);
	CONST(KVM_EXIT_NMI);
	CONST(KVM_EXIT_INTERNAL_ERROR);
	CONST(KVM_INTERNAL_ERROR_EMULATION);
	CONST(KVM_INTERNAL_ERROR_SIMUL_EX);
	CONST(KVM_INTERNAL_ERROR_DELIVERY_EV);
	CONST(KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON);
	CONST(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES);
	CONST(KVM_EXIT_SYSTEM_EVENT);
	CONST(KVM_EXIT_IOAPIC_EOI);
	CONST(KVM_EXIT_DIRTY_RING_FULL);
	CONST(KVM_EXIT_AP_RESET_HOLD);
	CONST(KVM_EXIT_ARM_NISV);
	CONST(KVM_CAP_ARM_NISV_TO_USER);
	CONST(KVM_EXIT_MEMORY_FAULT);
	CONST(KVM_EXIT_TDX);
	/* Session 31: what QEMU and signal-masking VMMs use. */
	CONST(KVM_SET_SIGNAL_MASK);
	CONST(KVM_CAP_X86_USER_SPACE_MSR);
	CONST(KVM_CAP_DESTROY_MEMORY_REGION_WORKS); CONST(KVM_CAP_JOIN_MEMORY_REGIONS_WORKS);
	CONST(KVM_CAP_INTERNAL_ERROR_DATA);
	CONST(KVM_CAP_EXT_CPUID); CONST(KVM_CAP_SET_IDENTITY_MAP_ADDR); CONST(KVM_CAP_X86_ROBUST_SINGLESTEP);
	CONST(KVM_CAP_COALESCED_MMIO); CONST(KVM_CAP_COALESCED_PIO); CONST(KVM_CAP_MAX_VCPU_ID);
	CONST(KVM_CAP_X86_MSR_FILTER);
	CONST(KVM_X86_SET_MSR_FILTER);
	CONST(KVM_MSR_EXIT_REASON_INVAL);
	CONST(KVM_MSR_EXIT_REASON_UNKNOWN);
	CONST(KVM_MSR_EXIT_REASON_FILTER);
	CONST(KVM_EXIT_X86_RDMSR);
	CONST(KVM_EXIT_X86_WRMSR);
	CONST(KVM_REGISTER_COALESCED_MMIO);
	CONST(KVM_UNREGISTER_COALESCED_MMIO);
	P("KVM_COALESCED_MMIO_PAGE_OFFSET_X86", KVM_COALESCED_MMIO_PAGE_OFFSET);
	P("RingHeaderSize", sizeof(struct kvm_coalesced_mmio_ring));
	P("EntrySize", sizeof(struct kvm_coalesced_mmio));
	CONST(KVM_MSR_EXIT_REASON_VALID_MASK);
	CONST(KVM_MSR_FILTER_READ); CONST(KVM_MSR_FILTER_WRITE); CONST(KVM_MSR_FILTER_RANGE_VALID_MASK);
	CONST(KVM_MSR_FILTER_DEFAULT_ALLOW); CONST(KVM_MSR_FILTER_DEFAULT_DENY);
	CONST(KVM_MSR_FILTER_MAX_RANGES); CONST(KVM_MSR_FILTER_MAX_BITMAP_SIZE);
	RUN(msr_error, msr.error); RUN(msr_pad, msr.pad); RUN(msr_reason, msr.reason); RUN(msr_index, msr.index);
	RUN(msr_data, msr.data);
	SIZE(kvm_coalesced_mmio);
	OFF(kvm_coalesced_mmio, phys_addr); OFF(kvm_coalesced_mmio, len); OFF(kvm_coalesced_mmio, pio);
	OFF(kvm_coalesced_mmio, data);
	SIZE(kvm_coalesced_mmio_ring);
	OFF(kvm_coalesced_mmio_ring, first); OFF(kvm_coalesced_mmio_ring, last);
	SIZE(kvm_coalesced_mmio_zone);
	OFF(kvm_coalesced_mmio_zone, addr); OFF(kvm_coalesced_mmio_zone, size); OFF(kvm_coalesced_mmio_zone, pio);
	SIZE(kvm_msr_filter);
	OFF(kvm_msr_filter, flags); OFF(kvm_msr_filter, ranges);
	SIZE(kvm_msr_filter_range);
	OFF(kvm_msr_filter_range, flags); OFF(kvm_msr_filter_range, nmsrs); OFF(kvm_msr_filter_range, base);
	OFF(kvm_msr_filter_range, bitmap);
	SIZE(kvm_signal_mask);
	OFF(kvm_signal_mask, len);
	CONST(KVM_GET_SREGS2); CONST(KVM_SET_SREGS2);
	SIZE(kvm_sregs2);
	OFF(kvm_sregs2, cs); OFF(kvm_sregs2, ds); OFF(kvm_sregs2, es); OFF(kvm_sregs2, fs); OFF(kvm_sregs2, gs);
	OFF(kvm_sregs2, ss); OFF(kvm_sregs2, tr); OFF(kvm_sregs2, ldt); OFF(kvm_sregs2, gdt); OFF(kvm_sregs2, idt);
	OFF(kvm_sregs2, cr0); OFF(kvm_sregs2, cr2); OFF(kvm_sregs2, cr3); OFF(kvm_sregs2, cr4); OFF(kvm_sregs2, cr8);
	OFF(kvm_sregs2, efer); OFF(kvm_sregs2, apic_base); OFF(kvm_sregs2, flags); OFF(kvm_sregs2, pdptrs);
	P("kvm_sregs2.KVM_SREGS2_FLAGS_PDPTRS_VALID", KVM_SREGS2_FLAGS_PDPTRS_VALID);
}

static void memory_encrypt(void)
{
	/* enum kvm_tdx_cmd_id, kvm_tdx_cmd.flags */
	CONST(KVM_TDX_CAPABILITIES);
	CONST(KVM_TDX_INIT_VM);
	CONST(KVM_TDX_INIT_VCPU);
	CONST(KVM_TDX_INIT_MEM_REGION);
	CONST(KVM_TDX_FINALIZE_VM);
	CONST(KVM_TDX_GET_CPUID);
	CONST(KVM_TDX_MEASURE_MEMORY_REGION);
	/* enum sev_cmd_id */
	CONST(KVM_SEV_INIT); CONST(KVM_SEV_ES_INIT); CONST(KVM_SEV_LAUNCH_START); CONST(KVM_SEV_LAUNCH_UPDATE_DATA);
	CONST(KVM_SEV_LAUNCH_UPDATE_VMSA); CONST(KVM_SEV_LAUNCH_SECRET); CONST(KVM_SEV_LAUNCH_MEASURE);
	CONST(KVM_SEV_LAUNCH_FINISH); CONST(KVM_SEV_GUEST_STATUS);
	CONST(KVM_SEV_SNP_ID_BLOCK_SIZE); CONST(KVM_SEV_SNP_ID_AUTH_SIZE); CONST(KVM_SEV_SNP_FINISH_DATA_SIZE);
	CONST(KVM_SEV_INIT2);
	CONST(KVM_SEV_SNP_LAUNCH_START);
	CONST(KVM_SEV_SNP_LAUNCH_UPDATE);
	CONST(KVM_SEV_SNP_LAUNCH_FINISH);
	/* kvm_sev_snp_launch_update.type */
	CONST(KVM_SEV_SNP_PAGE_TYPE_NORMAL);
	CONST(KVM_SEV_SNP_PAGE_TYPE_ZERO);
	CONST(KVM_SEV_SNP_PAGE_TYPE_UNMEASURED);
	CONST(KVM_SEV_SNP_PAGE_TYPE_SECRETS);
	CONST(KVM_SEV_SNP_PAGE_TYPE_CPUID);
}

static void hypercalls(void)
{
#ifdef ORACLE_HAVE_KVM_PARA
	CONST(KVM_ENOSYS);
	CONST(KVM_EFAULT);
	CONST(KVM_EINVAL);
	CONST(KVM_E2BIG);
	CONST(KVM_EPERM);
	CONST(KVM_EOPNOTSUPP);
	CONST(KVM_HC_VAPIC_POLL_IRQ);
	CONST(KVM_HC_MMU_OP);
	CONST(KVM_HC_FEATURES);
	CONST(KVM_HC_PPC_MAP_MAGIC_PAGE);
	CONST(KVM_HC_KICK_CPU);
	CONST(KVM_HC_MIPS_GET_CLOCK_FREQ);
	CONST(KVM_HC_MIPS_EXIT_VM);
	CONST(KVM_HC_MIPS_CONSOLE_OUTPUT);
	CONST(KVM_HC_CLOCK_PAIRING);
	CONST(KVM_HC_SEND_IPI);
	CONST(KVM_HC_SCHED_YIELD);
	CONST(KVM_HC_MAP_GPA_RANGE);
	CONST(KVM_MAP_GPA_RANGE_PAGE_SZ_4K);
	CONST(KVM_MAP_GPA_RANGE_PAGE_SZ_2M);
	CONST(KVM_MAP_GPA_RANGE_PAGE_SZ_1G);
	CONST(KVM_MAP_GPA_RANGE_ENCRYPTED);
	CONST(KVM_MAP_GPA_RANGE_DECRYPTED);
#endif
}

static void memslot_structs(void)
{
	SIZE(kvm_ioeventfd);
	OFF(kvm_ioeventfd, datamatch); OFF(kvm_ioeventfd, addr); OFF(kvm_ioeventfd, len); OFF(kvm_ioeventfd, fd);
	OFF(kvm_ioeventfd, flags); OFF(kvm_ioeventfd, pad);
	SIZE(kvm_irqfd);
	OFF(kvm_irqfd, fd); OFF(kvm_irqfd, gsi); OFF(kvm_irqfd, flags); OFF(kvm_irqfd, resamplefd); OFF(kvm_irqfd, pad);
	SIZE(kvm_userspace_memory_region);
	OFF(kvm_userspace_memory_region, slot);
	OFF(kvm_userspace_memory_region, flags);
	OFF(kvm_userspace_memory_region, guest_phys_addr);
	OFF(kvm_userspace_memory_region, memory_size);
	OFF(kvm_userspace_memory_region, userspace_addr);

	SIZE(kvm_userspace_memory_region2);
	OFF(kvm_userspace_memory_region2, slot);
	OFF(kvm_userspace_memory_region2, flags);
	OFF(kvm_userspace_memory_region2, guest_phys_addr);
	OFF(kvm_userspace_memory_region2, memory_size);
	OFF(kvm_userspace_memory_region2, userspace_addr);
	OFF(kvm_userspace_memory_region2, guest_memfd_offset);
	OFF(kvm_userspace_memory_region2, guest_memfd);
	OFF(kvm_userspace_memory_region2, pad1);
	/* pad2: upstream pad2[14] at 48; the KVM Userfault proposal moves it to 56 (OracleExclusions.cs) */

	SIZE(kvm_create_guest_memfd);
	OFF(kvm_create_guest_memfd, size);
	OFF(kvm_create_guest_memfd, flags);
	OFF(kvm_create_guest_memfd, reserved);

	/* kvm_memory_attributes2 is a proposal, skipped */
	SIZE(kvm_memory_attributes);
	OFF(kvm_memory_attributes, address);
	OFF(kvm_memory_attributes, size);
	OFF(kvm_memory_attributes, attributes);
	OFF(kvm_memory_attributes, flags);

	SIZE(kvm_pre_fault_memory);
	OFF(kvm_pre_fault_memory, gpa);
	OFF(kvm_pre_fault_memory, size);
	OFF(kvm_pre_fault_memory, flags);
	OFF(kvm_pre_fault_memory, padding);

	SIZE(kvm_enc_region);
	OFF(kvm_enc_region, addr);
	OFF(kvm_enc_region, size);

	SIZE(kvm_dirty_log);
	OFF(kvm_dirty_log, slot);
	OFF(kvm_dirty_log, padding1);
	OFF(kvm_dirty_log, dirty_bitmap);
	SIZE(kvm_clear_dirty_log);
	OFF(kvm_clear_dirty_log, slot);
	OFF(kvm_clear_dirty_log, num_pages);
	OFF(kvm_clear_dirty_log, first_page);
	OFF(kvm_clear_dirty_log, dirty_bitmap);
	SIZE(kvm_dirty_gfn);
	OFF(kvm_dirty_gfn, flags);
	OFF(kvm_dirty_gfn, slot);
	OFF(kvm_dirty_gfn, offset);
	SIZE(kvm_enable_cap);
	OFF(kvm_enable_cap, cap);
	OFF(kvm_enable_cap, flags);
	OFF(kvm_enable_cap, args);
	OFF(kvm_enable_cap, pad);

	SIZE(kvm_one_reg);
	OFF(kvm_one_reg, id);
	OFF(kvm_one_reg, addr);
}

static void x86_register_structs(void)
{
	SIZE(kvm_regs);
	OFF(kvm_regs, rax); OFF(kvm_regs, rbx); OFF(kvm_regs, rcx); OFF(kvm_regs, rdx);
	OFF(kvm_regs, rsi); OFF(kvm_regs, rdi); OFF(kvm_regs, rsp); OFF(kvm_regs, rbp);
	OFF(kvm_regs, r8);  OFF(kvm_regs, r9);  OFF(kvm_regs, r10); OFF(kvm_regs, r11);
	OFF(kvm_regs, r12); OFF(kvm_regs, r13); OFF(kvm_regs, r14); OFF(kvm_regs, r15);
	OFF(kvm_regs, rip); OFF(kvm_regs, rflags);

	SIZE(kvm_segment);
	OFF(kvm_segment, base); OFF(kvm_segment, limit); OFF(kvm_segment, selector); OFF(kvm_segment, type);
	OFF(kvm_segment, present); OFF(kvm_segment, dpl); OFF(kvm_segment, db); OFF(kvm_segment, s);
	OFF(kvm_segment, l); OFF(kvm_segment, g); OFF(kvm_segment, avl); OFF(kvm_segment, unusable);
	OFF(kvm_segment, padding);

	SIZE(kvm_dtable);
	OFF(kvm_dtable, base); OFF(kvm_dtable, limit); OFF(kvm_dtable, padding);

	SIZE(kvm_sregs);
	OFF(kvm_sregs, cs); OFF(kvm_sregs, ds); OFF(kvm_sregs, es); OFF(kvm_sregs, fs);
	OFF(kvm_sregs, gs); OFF(kvm_sregs, ss); OFF(kvm_sregs, tr); OFF(kvm_sregs, ldt);
	OFF(kvm_sregs, gdt); OFF(kvm_sregs, idt);
	OFF(kvm_sregs, cr0); OFF(kvm_sregs, cr2); OFF(kvm_sregs, cr3); OFF(kvm_sregs, cr4); OFF(kvm_sregs, cr8);
	OFF(kvm_sregs, efer); OFF(kvm_sregs, apic_base); OFF(kvm_sregs, interrupt_bitmap);

	SIZE(kvm_cpuid_entry2);
	OFF(kvm_cpuid_entry2, function); OFF(kvm_cpuid_entry2, index); OFF(kvm_cpuid_entry2, flags);
	OFF(kvm_cpuid_entry2, eax); OFF(kvm_cpuid_entry2, ebx); OFF(kvm_cpuid_entry2, ecx); OFF(kvm_cpuid_entry2, edx);
	OFF(kvm_cpuid_entry2, padding);
	SIZE(kvm_cpuid2);
	OFF(kvm_cpuid2, nent); OFF(kvm_cpuid2, padding); OFF(kvm_cpuid2, entries);
	CONST(KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	CONST(KVM_CPUID_FLAG_STATEFUL_FUNC);
	CONST(KVM_CPUID_FLAG_STATE_READ_NEXT);
}

static void x86_msr_structs(void)
{
	SIZE(kvm_msr_entry);
	OFF(kvm_msr_entry, index); OFF(kvm_msr_entry, reserved); OFF(kvm_msr_entry, data);
	/* kvm_msrs / kvm_msr_list end in flexible arrays: the C# structs are their headers (entries/indices follow). */
	SIZE(kvm_msrs);
	OFF(kvm_msrs, nmsrs); OFF(kvm_msrs, pad);
	SIZE(kvm_msr_list);
	OFF(kvm_msr_list, nmsrs);
}

/* kvm_vcpu_events' anonymous sub-structs are flattened in C#: exception.injected is exception_injected. */
#define OFF_FLAT(s, name, member) P("offsetof(" #s "." #name ")", offsetof(struct s, member))

static void x86_vcpu_state_structs(void)
{
	SIZE(kvm_interrupt);
	OFF(kvm_interrupt, irq);
	SIZE(kvm_x86_mce);
	OFF(kvm_x86_mce, status); OFF(kvm_x86_mce, addr); OFF(kvm_x86_mce, misc); OFF(kvm_x86_mce, mcg_status);
	OFF(kvm_x86_mce, bank); OFF(kvm_x86_mce, pad1); OFF(kvm_x86_mce, pad2);
	SIZE(kvm_fpu);
	OFF(kvm_fpu, fpr); OFF(kvm_fpu, fcw); OFF(kvm_fpu, fsw); OFF(kvm_fpu, ftwx); OFF(kvm_fpu, pad1);
	OFF(kvm_fpu, last_opcode); OFF(kvm_fpu, last_ip); OFF(kvm_fpu, last_dp); OFF(kvm_fpu, xmm);
	OFF(kvm_fpu, mxcsr); OFF(kvm_fpu, pad2);
	SIZE(kvm_xcr);
	OFF(kvm_xcr, xcr); OFF(kvm_xcr, reserved); OFF(kvm_xcr, value);
	SIZE(kvm_xcrs);
	OFF(kvm_xcrs, nr_xcrs); OFF(kvm_xcrs, flags); OFF(kvm_xcrs, xcrs); OFF(kvm_xcrs, padding);
	/* kvm_xsave ends in the flexible __u32 extra[]: not a member of the C# struct (sizeof is 4096 on both sides). */
	SIZE(kvm_xsave);
	OFF(kvm_xsave, region);
	SIZE(kvm_mp_state);
	OFF(kvm_mp_state, mp_state);
	CONST(KVM_MP_STATE_RUNNABLE); CONST(KVM_MP_STATE_UNINITIALIZED); CONST(KVM_MP_STATE_INIT_RECEIVED);
	CONST(KVM_MP_STATE_HALTED); CONST(KVM_MP_STATE_SIPI_RECEIVED); CONST(KVM_MP_STATE_STOPPED);
	CONST(KVM_MP_STATE_CHECK_STOP); CONST(KVM_MP_STATE_OPERATING); CONST(KVM_MP_STATE_LOAD);
	CONST(KVM_MP_STATE_AP_RESET_HOLD); CONST(KVM_MP_STATE_SUSPENDED);
	SIZE(kvm_debugregs);
	OFF(kvm_debugregs, db); OFF(kvm_debugregs, dr6); OFF(kvm_debugregs, dr7); OFF(kvm_debugregs, flags);
	OFF(kvm_debugregs, reserved);
	SIZE(kvm_guest_debug_arch);
	OFF(kvm_guest_debug_arch, debugreg);
	SIZE(kvm_guest_debug);
	OFF(kvm_guest_debug, control); OFF(kvm_guest_debug, pad); OFF(kvm_guest_debug, arch);
	SIZE(kvm_debug_exit_arch);
	OFF(kvm_debug_exit_arch, exception); OFF(kvm_debug_exit_arch, pad); OFF(kvm_debug_exit_arch, pc);
	OFF(kvm_debug_exit_arch, dr6); OFF(kvm_debug_exit_arch, dr7);
	CONST(KVM_GUESTDBG_ENABLE); CONST(KVM_GUESTDBG_SINGLESTEP); CONST(KVM_GUESTDBG_USE_SW_BP);
	CONST(KVM_GUESTDBG_USE_HW_BP); CONST(KVM_GUESTDBG_INJECT_DB); CONST(KVM_GUESTDBG_INJECT_BP);
	CONST(KVM_GUESTDBG_BLOCKIRQ);
	CONST(KVM_CLOCK_TSC_STABLE); CONST(KVM_CLOCK_REALTIME); CONST(KVM_CLOCK_HOST_TSC);
	CONST(KVM_VCPU_TSC_CTRL); CONST(KVM_VCPU_TSC_OFFSET);
	CONST(KVM_X86_GRP_SYSTEM); CONST(KVM_X86_XCOMP_GUEST_SUPP); CONST(KVM_X86_GRP_SEV); CONST(KVM_X86_SEV_VMSA_FEATURES);
	SIZE(kvm_clock_data);
	OFF(kvm_clock_data, clock); OFF(kvm_clock_data, flags); OFF(kvm_clock_data, pad0); OFF(kvm_clock_data, realtime);
	OFF(kvm_clock_data, host_tsc); OFF(kvm_clock_data, pad);
	SIZE(kvm_device_attr);
	SIZE(kvm_create_device);
	OFF(kvm_create_device, type); OFF(kvm_create_device, fd); OFF(kvm_create_device, flags);
	CONST(KVM_CREATE_DEVICE_TEST);
	CONST(KVM_DEV_TYPE_FSL_MPIC_20); CONST(KVM_DEV_TYPE_FSL_MPIC_42); CONST(KVM_DEV_TYPE_XICS); CONST(KVM_DEV_TYPE_VFIO);
	CONST(KVM_DEV_TYPE_ARM_VGIC_V2); CONST(KVM_DEV_TYPE_FLIC); CONST(KVM_DEV_TYPE_ARM_VGIC_V3); CONST(KVM_DEV_TYPE_ARM_VGIC_ITS);
	CONST(KVM_DEV_TYPE_XIVE); CONST(KVM_DEV_TYPE_ARM_PV_TIME); CONST(KVM_DEV_TYPE_RISCV_AIA); CONST(KVM_DEV_TYPE_LOONGARCH_IPI);
	CONST(KVM_DEV_TYPE_LOONGARCH_EIOINTC); CONST(KVM_DEV_TYPE_LOONGARCH_PCHPIC); CONST(KVM_DEV_TYPE_ARM_VGIC_V5);
	CONST(KVM_DEV_TYPE_MAX);
	CONST(KVM_DEV_VFIO_FILE); CONST(KVM_DEV_VFIO_FILE_ADD); CONST(KVM_DEV_VFIO_FILE_DEL); CONST(KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE);
	OFF(kvm_device_attr, flags); OFF(kvm_device_attr, group); OFF(kvm_device_attr, attr); OFF(kvm_device_attr, addr);
	SIZE(kvm_vcpu_events);
	OFF_FLAT(kvm_vcpu_events, exception_injected, exception.injected);
	OFF_FLAT(kvm_vcpu_events, exception_nr, exception.nr);
	OFF_FLAT(kvm_vcpu_events, exception_has_error_code, exception.has_error_code);
	OFF_FLAT(kvm_vcpu_events, exception_pending, exception.pending);
	OFF_FLAT(kvm_vcpu_events, exception_error_code, exception.error_code);
	OFF_FLAT(kvm_vcpu_events, interrupt_injected, interrupt.injected);
	OFF_FLAT(kvm_vcpu_events, interrupt_nr, interrupt.nr);
	OFF_FLAT(kvm_vcpu_events, interrupt_soft, interrupt.soft);
	OFF_FLAT(kvm_vcpu_events, interrupt_shadow, interrupt.shadow);
	OFF_FLAT(kvm_vcpu_events, nmi_injected, nmi.injected);
	OFF_FLAT(kvm_vcpu_events, nmi_pending, nmi.pending);
	OFF_FLAT(kvm_vcpu_events, nmi_masked, nmi.masked);
	OFF_FLAT(kvm_vcpu_events, nmi_pad, nmi.pad);
	OFF(kvm_vcpu_events, sipi_vector); OFF(kvm_vcpu_events, flags);
	OFF_FLAT(kvm_vcpu_events, smi_smm, smi.smm);
	OFF_FLAT(kvm_vcpu_events, smi_pending, smi.pending);
	OFF_FLAT(kvm_vcpu_events, smi_smm_inside_nmi, smi.smm_inside_nmi);
	OFF_FLAT(kvm_vcpu_events, smi_latched_init, smi.latched_init);
	OFF_FLAT(kvm_vcpu_events, triple_fault_pending, triple_fault.pending);
	OFF(kvm_vcpu_events, reserved); OFF(kvm_vcpu_events, exception_has_payload); OFF(kvm_vcpu_events, exception_payload);
	CONST(KVM_VCPUEVENT_VALID_NMI_PENDING); CONST(KVM_VCPUEVENT_VALID_SIPI_VECTOR); CONST(KVM_VCPUEVENT_VALID_SHADOW);
	CONST(KVM_VCPUEVENT_VALID_SMM); CONST(KVM_VCPUEVENT_VALID_PAYLOAD); CONST(KVM_VCPUEVENT_VALID_TRIPLE_FAULT);
	CONST(KVM_X86_SHADOW_INT_MOV_SS); CONST(KVM_X86_SHADOW_INT_STI);
}

static void memory_encrypt_structs(void)
{
	SIZE(kvm_sev_cmd);
	OFF(kvm_sev_cmd, id); OFF(kvm_sev_cmd, pad0); OFF(kvm_sev_cmd, data);
	OFF(kvm_sev_cmd, error); OFF(kvm_sev_cmd, sev_fd);

	SIZE(kvm_sev_snp_launch_update);
	OFF(kvm_sev_snp_launch_update, gfn_start); OFF(kvm_sev_snp_launch_update, uaddr);
	OFF(kvm_sev_snp_launch_update, len); OFF(kvm_sev_snp_launch_update, type);
	OFF(kvm_sev_snp_launch_update, pad0); OFF(kvm_sev_snp_launch_update, flags);
	OFF(kvm_sev_snp_launch_update, pad1); OFF(kvm_sev_snp_launch_update, pad2);

	SIZE(kvm_tdx_cmd);
	OFF(kvm_tdx_cmd, id); OFF(kvm_tdx_cmd, flags); OFF(kvm_tdx_cmd, data); OFF(kvm_tdx_cmd, hw_error);

	SIZE(kvm_sev_init);
	OFF(kvm_sev_init, vmsa_features); OFF(kvm_sev_init, flags); OFF(kvm_sev_init, ghcb_version);
	OFF(kvm_sev_init, pad1); OFF(kvm_sev_init, pad2);
	SIZE(kvm_sev_launch_start);
	OFF(kvm_sev_launch_start, handle); OFF(kvm_sev_launch_start, policy); OFF(kvm_sev_launch_start, dh_uaddr);
	OFF(kvm_sev_launch_start, dh_len); OFF(kvm_sev_launch_start, pad0); OFF(kvm_sev_launch_start, session_uaddr);
	OFF(kvm_sev_launch_start, session_len); OFF(kvm_sev_launch_start, pad1);
	SIZE(kvm_sev_launch_update_data);
	OFF(kvm_sev_launch_update_data, uaddr); OFF(kvm_sev_launch_update_data, len); OFF(kvm_sev_launch_update_data, pad0);
	SIZE(kvm_sev_launch_measure);
	OFF(kvm_sev_launch_measure, uaddr); OFF(kvm_sev_launch_measure, len); OFF(kvm_sev_launch_measure, pad0);
	SIZE(kvm_sev_guest_status);
	OFF(kvm_sev_guest_status, handle); OFF(kvm_sev_guest_status, policy); OFF(kvm_sev_guest_status, state);
	SIZE(kvm_sev_snp_launch_start);
	OFF(kvm_sev_snp_launch_start, policy); OFF(kvm_sev_snp_launch_start, gosvw); OFF(kvm_sev_snp_launch_start, flags);
	OFF(kvm_sev_snp_launch_start, pad0); OFF(kvm_sev_snp_launch_start, pad1);
	SIZE(kvm_sev_snp_launch_finish);
	OFF(kvm_sev_snp_launch_finish, id_block_uaddr); OFF(kvm_sev_snp_launch_finish, id_auth_uaddr);
	OFF(kvm_sev_snp_launch_finish, id_block_en); OFF(kvm_sev_snp_launch_finish, auth_key_en);
	OFF(kvm_sev_snp_launch_finish, vcek_disabled); OFF(kvm_sev_snp_launch_finish, host_data);
	OFF(kvm_sev_snp_launch_finish, pad0); OFF(kvm_sev_snp_launch_finish, flags); OFF(kvm_sev_snp_launch_finish, pad1);
	SIZE(kvm_tdx_capabilities);
	OFF(kvm_tdx_capabilities, supported_attrs); OFF(kvm_tdx_capabilities, supported_xfam);
	OFF(kvm_tdx_capabilities, kernel_tdvmcallinfo_1_r11); OFF(kvm_tdx_capabilities, user_tdvmcallinfo_1_r11);
	OFF(kvm_tdx_capabilities, kernel_tdvmcallinfo_1_r12); OFF(kvm_tdx_capabilities, user_tdvmcallinfo_1_r12);
	OFF(kvm_tdx_capabilities, reserved); OFF(kvm_tdx_capabilities, cpuid);
	SIZE(kvm_tdx_init_vm);
	OFF(kvm_tdx_init_vm, attributes); OFF(kvm_tdx_init_vm, xfam); OFF(kvm_tdx_init_vm, mrconfigid);
	OFF(kvm_tdx_init_vm, mrowner); OFF(kvm_tdx_init_vm, mrownerconfig); OFF(kvm_tdx_init_vm, reserved);
	OFF(kvm_tdx_init_vm, cpuid);

	SIZE(kvm_tdx_init_mem_region);
	OFF(kvm_tdx_init_mem_region, source_addr); OFF(kvm_tdx_init_mem_region, gpa);
	OFF(kvm_tdx_init_mem_region, nr_pages);
}

/* Binary statistics (KVM_GET_STATS_FD): the request, the capability, the flag fields and both structs. */
static void binary_stats(void)
{
	CONST(KVM_GET_STATS_FD);
	CONST(KVM_CAP_BINARY_STATS_FD);
	CONST(KVM_STATS_TYPE_SHIFT); CONST(KVM_STATS_TYPE_MASK); CONST(KVM_STATS_TYPE_CUMULATIVE);
	CONST(KVM_STATS_TYPE_INSTANT); CONST(KVM_STATS_TYPE_PEAK); CONST(KVM_STATS_TYPE_LINEAR_HIST);
	CONST(KVM_STATS_TYPE_LOG_HIST); CONST(KVM_STATS_TYPE_MAX);
	CONST(KVM_STATS_UNIT_SHIFT); CONST(KVM_STATS_UNIT_MASK); CONST(KVM_STATS_UNIT_NONE); CONST(KVM_STATS_UNIT_BYTES);
	CONST(KVM_STATS_UNIT_SECONDS); CONST(KVM_STATS_UNIT_CYCLES); CONST(KVM_STATS_UNIT_BOOLEAN); CONST(KVM_STATS_UNIT_MAX);
	CONST(KVM_STATS_BASE_SHIFT); CONST(KVM_STATS_BASE_MASK); CONST(KVM_STATS_BASE_POW10); CONST(KVM_STATS_BASE_POW2);
	CONST(KVM_STATS_BASE_MAX);
	SIZE(kvm_stats_header);
	OFF(kvm_stats_header, flags); OFF(kvm_stats_header, name_size); OFF(kvm_stats_header, num_desc);
	OFF(kvm_stats_header, id_offset); OFF(kvm_stats_header, desc_offset); OFF(kvm_stats_header, data_offset);
	SIZE(kvm_stats_desc);
	OFF(kvm_stats_desc, flags); OFF(kvm_stats_desc, exponent); OFF(kvm_stats_desc, size);
	OFF(kvm_stats_desc, offset); OFF(kvm_stats_desc, bucket_size);
}

static void kvm_run(void)
{
	RUN(request_interrupt_window, request_interrupt_window);
	RUN(immediate_exit, immediate_exit);
	RUN(exit_reason, exit_reason);
	RUN(ready_for_interrupt_injection, ready_for_interrupt_injection);
	RUN(if_flag, if_flag);
	RUN(flags, flags);
	RUN(cr8, cr8);
	RUN(apic_base, apic_base);
	/* The anonymous exit union: its "char padding[256]" member starts where every exit struct starts. */
	RUN(exit_union, padding);
	RUN(kvm_valid_regs, kvm_valid_regs);
	RUN(kvm_dirty_regs, kvm_dirty_regs);
	RUN(s, s);
	P("kvm_run.size", sizeof(struct kvm_run));

	RUN(hw_hardware_exit_reason, hw.hardware_exit_reason);
	RUN(fail_entry_hardware_entry_failure_reason, fail_entry.hardware_entry_failure_reason);
	RUN(fail_entry_cpu, fail_entry.cpu);
	RUN(io_direction, io.direction);
	RUN(io_size, io.size);
	RUN(io_port, io.port);
	RUN(io_count, io.count);
	RUN(io_data_offset, io.data_offset);
	RUN(mmio_phys_addr, mmio.phys_addr);
	RUN(mmio_data, mmio.data);
	RUN(mmio_len, mmio.len);
	RUN(mmio_is_write, mmio.is_write);
	RUN(hypercall_nr, hypercall.nr);
	RUN(hypercall_args, hypercall.args);
	RUN(hypercall_ret, hypercall.ret);
	RUN(hypercall_longmode, hypercall.longmode);
	RUN(hypercall_flags, hypercall.flags);
	RUN(internal_suberror, internal.suberror);
	RUN(internal_ndata, internal.ndata);
	RUN(internal_data, internal.data);
	RUN(emulation_failure_flags, emulation_failure.flags);
	RUN(emulation_failure_insn_size, emulation_failure.insn_size);
	RUN(emulation_failure_insn_bytes, emulation_failure.insn_bytes);
	RUN(arm_nisv_esr_iss, arm_nisv.esr_iss);
	RUN(arm_nisv_fault_ipa, arm_nisv.fault_ipa);
	RUN(system_event_type, system_event.type);
	RUN(system_event_ndata, system_event.ndata);
	RUN(system_event_flags, system_event.flags);
	RUN(system_event_data, system_event.data);
	RUN(tdx_flags, tdx.flags);
	RUN(tdx_nr, tdx.nr);
	RUN(tdx_unknown_ret, tdx.unknown.ret);
	RUN(tdx_unknown_data, tdx.unknown.data);
	RUN(tdx_get_quote_ret, tdx.get_quote.ret);
	RUN(tdx_get_quote_gpa, tdx.get_quote.gpa);
	RUN(tdx_get_quote_size, tdx.get_quote.size);
	RUN(tdx_get_tdvmcall_info_ret, tdx.get_tdvmcall_info.ret);
	RUN(tdx_get_tdvmcall_info_leaf, tdx.get_tdvmcall_info.leaf);
	RUN(tdx_get_tdvmcall_info_r11, tdx.get_tdvmcall_info.r11);
	RUN(tdx_get_tdvmcall_info_r12, tdx.get_tdvmcall_info.r12);
	RUN(tdx_get_tdvmcall_info_r13, tdx.get_tdvmcall_info.r13);
	RUN(tdx_get_tdvmcall_info_r14, tdx.get_tdvmcall_info.r14);
	RUN(tdx_setup_event_notify_ret, tdx.setup_event_notify.ret);
	RUN(tdx_setup_event_notify_vector, tdx.setup_event_notify.vector);
	RUN(eoi_vector, eoi.vector);
	RUN(memory_fault_flags, memory_fault.flags);
	RUN(memory_fault_gpa, memory_fault.gpa);
	RUN(memory_fault_size, memory_fault.size);
	RUN(debug_arch_exception, debug.arch.exception);
	RUN(debug_arch_pad, debug.arch.pad);
	RUN(debug_arch_pc, debug.arch.pc);
	RUN(debug_arch_dr6, debug.arch.dr6);
	RUN(debug_arch_dr7, debug.arch.dr7);
}

/* The in-kernel irqchip (x86): KVM_CREATE_IRQCHIP and friends, GSI routing, MSIs, the local APIC page. */
static void irqchip(void)
{
	CONST(KVM_CREATE_IRQCHIP); CONST(KVM_IRQ_LINE); CONST(KVM_IRQ_LINE_STATUS);
	CONST(KVM_GET_IRQCHIP); CONST(KVM_SET_IRQCHIP); CONST(KVM_SET_GSI_ROUTING); CONST(KVM_SIGNAL_MSI);
	CONST(KVM_GET_LAPIC); CONST(KVM_SET_LAPIC);
	CONST(KVM_CAP_IRQ_ROUTING); CONST(KVM_CAP_IRQ_INJECT_STATUS); CONST(KVM_CAP_SIGNAL_MSI);
	CONST(KVM_CAP_SPLIT_IRQCHIP); CONST(KVM_CAP_MSI_DEVID); CONST(KVM_CAP_X2APIC_API);
	CONST(KVM_X2APIC_API_USE_32BIT_IDS); CONST(KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK);
	CONST(KVM_IRQCHIP_PIC_MASTER); CONST(KVM_IRQCHIP_PIC_SLAVE); CONST(KVM_IRQCHIP_IOAPIC); CONST(KVM_NR_IRQCHIPS);
	CONST(KVM_IOAPIC_NUM_PINS); CONST(KVM_APIC_REG_SIZE);
	CONST(KVM_IRQ_ROUTING_IRQCHIP); CONST(KVM_IRQ_ROUTING_MSI); CONST(KVM_IRQ_ROUTING_S390_ADAPTER);
	CONST(KVM_IRQ_ROUTING_HV_SINT); CONST(KVM_IRQ_ROUTING_XEN_EVTCHN); CONST(KVM_MSI_VALID_DEVID);
	SIZE(kvm_irqchip);
	OFF(kvm_irqchip, chip_id); OFF(kvm_irqchip, pad); OFF(kvm_irqchip, chip);
	SIZE(kvm_pic_state);
	OFF(kvm_pic_state, last_irr); OFF(kvm_pic_state, irr); OFF(kvm_pic_state, imr); OFF(kvm_pic_state, isr);
	OFF(kvm_pic_state, priority_add); OFF(kvm_pic_state, irq_base); OFF(kvm_pic_state, read_reg_select);
	OFF(kvm_pic_state, poll); OFF(kvm_pic_state, special_mask); OFF(kvm_pic_state, init_state);
	OFF(kvm_pic_state, auto_eoi); OFF(kvm_pic_state, rotate_on_auto_eoi);
	OFF(kvm_pic_state, special_fully_nested_mode); OFF(kvm_pic_state, init4); OFF(kvm_pic_state, elcr);
	OFF(kvm_pic_state, elcr_mask);
	SIZE(kvm_ioapic_state);
	OFF(kvm_ioapic_state, base_address); OFF(kvm_ioapic_state, ioregsel); OFF(kvm_ioapic_state, id);
	OFF(kvm_ioapic_state, irr); OFF(kvm_ioapic_state, pad); OFF(kvm_ioapic_state, redirtbl);
	SIZE(kvm_irq_level);
	OFF(kvm_irq_level, irq); OFF(kvm_irq_level, level);
	SIZE(kvm_msi);
	OFF(kvm_msi, address_lo); OFF(kvm_msi, address_hi); OFF(kvm_msi, data); OFF(kvm_msi, flags);
	OFF(kvm_msi, devid); OFF(kvm_msi, pad);
	SIZE(kvm_lapic_state);
	OFF(kvm_lapic_state, regs);
	SIZE(kvm_irq_routing);
	OFF(kvm_irq_routing, nr); OFF(kvm_irq_routing, flags);
	SIZE(kvm_irq_routing_entry);
	OFF(kvm_irq_routing_entry, gsi); OFF(kvm_irq_routing_entry, type); OFF(kvm_irq_routing_entry, flags);
	OFF(kvm_irq_routing_entry, pad); OFF(kvm_irq_routing_entry, u);
	SIZE(kvm_irq_routing_irqchip);
	OFF(kvm_irq_routing_irqchip, irqchip); OFF(kvm_irq_routing_irqchip, pin);
	SIZE(kvm_irq_routing_msi);
	OFF(kvm_irq_routing_msi, address_lo); OFF(kvm_irq_routing_msi, address_hi); OFF(kvm_irq_routing_msi, data);
	OFF(kvm_irq_routing_msi, devid);
}

/* The in-kernel PIT (x86 i8254): KVM_CREATE_PIT(2), KVM_GET/SET_PIT(2), KVM_REINJECT_CONTROL. */
static void pit(void)
{
	CONST(KVM_CREATE_PIT); CONST(KVM_GET_PIT); CONST(KVM_SET_PIT); CONST(KVM_REINJECT_CONTROL);
	CONST(KVM_CREATE_PIT2); CONST(KVM_GET_PIT2); CONST(KVM_SET_PIT2);
	CONST(KVM_CAP_PIT); CONST(KVM_CAP_REINJECT_CONTROL); CONST(KVM_CAP_PIT2); CONST(KVM_CAP_PIT_STATE2);
	CONST(KVM_PIT_SPEAKER_DUMMY); CONST(KVM_PIT_FLAGS_HPET_LEGACY); CONST(KVM_PIT_FLAGS_SPEAKER_DATA_ON);
	SIZE(kvm_pit_channel_state);
	OFF(kvm_pit_channel_state, count); OFF(kvm_pit_channel_state, latched_count);
	OFF(kvm_pit_channel_state, count_latched); OFF(kvm_pit_channel_state, status_latched);
	OFF(kvm_pit_channel_state, status); OFF(kvm_pit_channel_state, read_state);
	OFF(kvm_pit_channel_state, write_state); OFF(kvm_pit_channel_state, write_latch);
	OFF(kvm_pit_channel_state, rw_mode); OFF(kvm_pit_channel_state, mode); OFF(kvm_pit_channel_state, bcd);
	OFF(kvm_pit_channel_state, gate); OFF(kvm_pit_channel_state, count_load_time);
	SIZE(kvm_pit_state);
	OFF(kvm_pit_state, channels);
	SIZE(kvm_pit_state2);
	OFF(kvm_pit_state2, channels); OFF(kvm_pit_state2, flags); OFF(kvm_pit_state2, reserved);
	SIZE(kvm_pit_config);
	OFF(kvm_pit_config, flags); OFF(kvm_pit_config, pad);
	SIZE(kvm_reinject_control);
	OFF(kvm_reinject_control, pit_reinject); OFF(kvm_reinject_control, reserved);
}

static void x86_quirks(void)
{
	CONST(KVM_CAP_DISABLE_QUIRKS); CONST(KVM_CAP_DISABLE_QUIRKS2); CONST(KVM_CAP_MSR_PLATFORM_INFO);
	CONST(KVM_X86_QUIRK_LINT0_REENABLED); CONST(KVM_X86_QUIRK_CD_NW_CLEARED); CONST(KVM_X86_QUIRK_LAPIC_MMIO_HOLE);
	CONST(KVM_X86_QUIRK_OUT_7E_INC_RIP); CONST(KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT);
	CONST(KVM_X86_QUIRK_FIX_HYPERCALL_INSN); CONST(KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS);
	CONST(KVM_X86_QUIRK_SLOT_ZAP_ALL); CONST(KVM_X86_QUIRK_STUFF_FEATURE_MSRS); CONST(KVM_X86_QUIRK_IGNORE_GUEST_PAT);
}

int main(void)
{
	ioctl_encoding();
	ioctls();
	caps();
	flags_and_enums();
	exit_reasons();
	memory_encrypt();
	hypercalls();
	memslot_structs();
	x86_register_structs();
	x86_msr_structs();
	x86_vcpu_state_structs();
	memory_encrypt_structs();
	kvm_run();
	binary_stats();
	irqchip();
	pit();
	x86_quirks();
	return 0;
}
