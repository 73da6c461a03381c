// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>
/// Byte offsets inside the mmap'ed <c>struct kvm_run</c> (x86_64). The exit union starts at 32 on every
/// architecture but s390. The page is decoded in place, never copied.
/// </summary>
public static class KvmRunLayout
{
    public const int request_interrupt_window = 0;
    public const int immediate_exit = 1;
    public const int exit_reason = 8;
    public const int ready_for_interrupt_injection = 12;
    public const int if_flag = 13;
    public const int flags = 14;
    public const int cr8 = 16;
    public const int apic_base = 24;
    public const int exit_union = 32;
    /// <summary><c>__u64 kvm_valid_regs</c>: the register sets KVM stores into <c>s.regs</c> at exit (KVM_CAP_SYNC_REGS).</summary>
    public const int kvm_valid_regs = 288;
    /// <summary><c>__u64 kvm_dirty_regs</c>: the register sets KVM loads from <c>s.regs</c> at entry.</summary>
    public const int kvm_dirty_regs = 296;
    /// <summary>sizeof(struct kvm_run) on x86_64: union (256) + kvm_valid_regs + kvm_dirty_regs + s (2048).</summary>
    public const int size = 2352;

    /// <summary>KVM_EXIT_UNKNOWN / hw: <c>__u64 hardware_exit_reason</c>.</summary>
    public const int hw_hardware_exit_reason = 32;

    /// <summary>KVM_EXIT_FAIL_ENTRY: <c>__u64 hardware_entry_failure_reason; __u32 cpu</c>.</summary>
    public const int fail_entry_hardware_entry_failure_reason = 32;
    public const int fail_entry_cpu = 40;

    /// <summary>KVM_EXIT_IO: <c>__u8 direction; __u8 size; __u16 port; __u32 count; __u64 data_offset</c>.</summary>
    public const int io_direction = 32;
    public const int io_size = 33;
    public const int io_port = 34;
    public const int io_count = 36;
    public const int io_data_offset = 40;

    /// <summary>
    /// KVM_EXIT_DEBUG (x86 <c>struct kvm_debug_exit_arch</c>): <c>__u32 exception; __u32 pad; __u64 pc; __u64 dr6;
    /// __u64 dr7</c>. Paths that do not report DR6/DR7 leave those bytes as they were.
    /// </summary>
    public const int debug_arch_exception = 32;
    public const int debug_arch_pad = 36;
    public const int debug_arch_pc = 40;
    public const int debug_arch_dr6 = 48;
    public const int debug_arch_dr7 = 56;

    /// <summary>KVM_EXIT_MMIO: <c>__u64 phys_addr; __u8 data[8]; __u32 len; __u8 is_write</c>.</summary>
    public const int mmio_phys_addr = 32;
    public const int mmio_data = 40;
    public const int mmio_len = 48;
    public const int mmio_is_write = 52;

    /// <summary>
    /// KVM_EXIT_HYPERCALL: <c>__u64 nr; __u64 args[6]; __u64 ret; union { __u32 longmode; __u64 flags; }</c>.
    /// <c>ret</c> is read back on the next KVM_RUN (x86.c complete_hypercall_exit) and lands in RAX.
    /// </summary>
    public const int hypercall_nr = 32;
    public const int hypercall_args = 40;
    public const int hypercall_ret = 88;
    /// <summary>The pre-5.17 name of the low 32 bits of <see cref="hypercall_flags"/> (same offset).</summary>
    public const int hypercall_longmode = 96;
    public const int hypercall_flags = 96;

    /// <summary>KVM_EXIT_INTERNAL_ERROR: <c>__u32 suberror; __u32 ndata; __u64 data[16]</c>.</summary>
    public const int internal_suberror = 32;
    public const int internal_ndata = 36;
    public const int internal_data = 40;

    /// <summary>
    /// KVM_INTERNAL_ERROR_EMULATION's overlay of <c>internal</c>: <c>__u32 suberror; __u32 ndata; __u64 flags;
    /// union { struct { __u8 insn_size; __u8 insn_bytes[15]; }; }</c> (ABI, unlike the other suberrors' data).
    /// </summary>
    public const int emulation_failure_flags = 40;
    public const int emulation_failure_insn_size = 48;
    public const int emulation_failure_insn_bytes = 49;

    /// <summary>KVM_EXIT_ARM_NISV (arm64): <c>__u64 esr_iss; __u64 fault_ipa</c>.</summary>
    public const int arm_nisv_esr_iss = 32;
    public const int arm_nisv_fault_ipa = 40;

    /// <summary>KVM_EXIT_SYSTEM_EVENT: <c>__u32 type; __u32 ndata; __u64 data[16]</c>.</summary>
    public const int system_event_type = 32;
    public const int system_event_ndata = 36;
    /// <summary><c>union { __u64 flags; __u64 data[16]; }</c>: flags is data[0].</summary>
    public const int system_event_flags = 40;
    public const int system_event_data = 40;

    /// <summary>
    /// KVM_EXIT_TDX: <c>__u64 flags; __u64 nr; union { struct { __u64 ret; __u64 data[5]; } unknown; struct { __u64 ret;
    /// __u64 gpa; __u64 size; } get_quote; struct { __u64 ret; __u64 leaf; __u64 r11, r12, r13, r14; }
    /// get_tdvmcall_info; struct { __u64 ret; __u64 vector; } setup_event_notify; }</c>. <c>ret</c> (at the same
    /// offset in every member) goes back to the guest's R10 on the next KVM_RUN.
    /// </summary>
    public const int tdx_flags = 32;
    public const int tdx_nr = 40;
    public const int tdx_unknown_ret = 48;
    public const int tdx_unknown_data = 56;
    public const int tdx_get_quote_ret = 48;
    public const int tdx_get_quote_gpa = 56;
    public const int tdx_get_quote_size = 64;
    public const int tdx_get_tdvmcall_info_ret = 48;
    public const int tdx_get_tdvmcall_info_leaf = 56;
    public const int tdx_get_tdvmcall_info_r11 = 64;
    public const int tdx_get_tdvmcall_info_r12 = 72;
    public const int tdx_get_tdvmcall_info_r13 = 80;
    public const int tdx_get_tdvmcall_info_r14 = 88;
    public const int tdx_setup_event_notify_ret = 48;
    public const int tdx_setup_event_notify_vector = 56;

    /// <summary>
    /// KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR: <c>struct { __u8 error; __u8 pad[7]; __u32 reason; __u32 index; __u64
    /// data; } msr</c>. KVM writes error 0, pad 0, reason (one KVM_MSR_EXIT_REASON_*), index and data (the WRMSR value, 0
    /// for RDMSR); userspace leaves error non-zero to have #GP injected, or the RDMSR result in data.
    /// </summary>
    public const int msr_error = 32;
    public const int msr_pad = 33;
    public const int msr_reason = 40;
    public const int msr_index = 44;
    public const int msr_data = 48;

    /// <summary>KVM_EXIT_IOAPIC_EOI: <c>struct { __u8 vector; } eoi</c>.</summary>
    public const int eoi_vector = 32;

    /// <summary>KVM_EXIT_MEMORY_FAULT: <c>__u64 flags; __u64 gpa; __u64 size</c>.</summary>
    public const int memory_fault_flags = 32;
    public const int memory_fault_gpa = 40;
    public const int memory_fault_size = 48;

    /// <summary>
    /// KVM_EXIT_SNP_REQ_CERTS: <c>struct kvm_exit_snp_req_certs { __u64 gpa; __u64 npages; __u64 ret; }</c> ([PATCH v7
    /// 1/2]; v6 had <c>gfn</c>). gpa and npages are the guest's RAX and RBX; ret (0 at exit) is read on the next KVM_RUN,
    /// and npages too when ret is ENOSPC.
    /// </summary>
    public const int snp_req_certs_gpa = 32;
    public const int snp_req_certs_npages = 40;
    public const int snp_req_certs_ret = 48;
}
