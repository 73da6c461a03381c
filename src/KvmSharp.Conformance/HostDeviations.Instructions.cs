// SPDX-License-Identifier: MIT
// Host deviations in guest instructions run through this host's KVM instruction emulator.
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
    /// <summary>
    /// kvm_pvm (software nested KVM): a KVM hypercall never reaches __kvm_emulate_hypercall. VMCALL (and VMMCALL) trap
    /// as #UD into KVM's instruction emulator, whose em_hypercall → emulator_fix_hypercall rewrites the instruction to
    /// this host's "native" one — VMCALL, 0f 01 c1, the same bytes — at linear address RIP and restarts it, forever.
    /// KVM_CAP_EXIT_HYPERCALL (0x1000) and KVM_ENABLE_CAP's checks do match upstream. Observed on Linux 6.18
    /// kvm_pvm with KVM_CAP_EXIT_HYPERCALL enabled or not, nr 1, 12 or 0x1234, valid or invalid MAP_GPA_RANGE
    /// arguments alike:
    /// <list type="bullet">
    /// <item>64-bit guest: KVM_RUN returns only when a signal arrives (-EINTR, KVM_EXIT_INTR) with RIP still on the
    /// VMCALL and RAX unchanged; kvm_run.hypercall.ret is never written. A VMMCALL is rewritten in guest memory to
    /// 0f 01 c1 and then loops the same way. (Upstream: no exit and RAX = -KVM_ENOSYS, or KVM_EXIT_HYPERCALL.)</item>
    /// <item>Real mode with CS.base = 0x10000, IP = 0: the rewrite goes to linear address IP (no CS base), i.e. GPA 0,
    /// where there is no memslot: every KVM_RUN ends in KVM_EXIT_MMIO, a 3-byte write of 0f 01 c1 at phys_addr 0,
    /// and RIP stays 0.</item>
    /// </list>
    /// </summary>
    public static bool KvmPvmHypercallLoops(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): MOVBE in a 64-bit guest raises #UD, RIP on the MOVBE, whether the guest's CPUID
    /// table has CPUID.1:ECX.MOVBE[22] set or there is no table. This host runs the guest's instructions through KVM's
    /// emulator, whose em_movbe starts with "if (!ctxt->ops->guest_has_movbe(ctxt)) return emulate_ud(ctxt)" (and
    /// kvm_pvm's KVM_GET_SUPPORTED_CPUID leaf 1 has the bit clear, so the guest capability stays clear). Upstream SVM
    /// on a CPU with MOVBE (both EPYC models here) does not intercept it: the CPU runs it whatever the guest's CPUID
    /// says. Observed on Linux 6.18 kvm_pvm (IntegerInstructions.movbe_loads_and_stores_with_the_bytes_reversed).
    /// </summary>
    public static bool KvmPvmMovbeIsUndefined(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): TZCNT and LZCNT (F3 0F BC / F3 0F BD) in a 64-bit guest run as BSF and BSR: a
    /// zero source sets ZF and leaves the destination as it was, LZCNT gives the index of the highest set bit. This host
    /// runs the guest's instructions through KVM's emulator, whose 0F BC / 0F BD entries (em_bsf_c, em_bsr_c) ignore
    /// the F3 prefix. Upstream SVM does not intercept them: an EPYC (BMI1, ABM) counts zeros. Observed on Linux 6.18
    /// kvm_pvm, no guest CPUID table: tzcnt rbx, 0 → RBX kept, ZF = 1, CF = 0; lzcnt rbx, 1 → 0; lzcnt ebx, 0x80000000
    /// → 31; lzcnt bx, 0 → BX kept, ZF = 1 (IntegerInstructions.tzcnt_and_lzcnt_count_zeros).
    /// </summary>
    public static bool KvmPvmTzcntLzcntRunAsBsfBsr(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): POPCNT and an aligned CMPXCHG16B in a 64-bit guest end KVM_RUN with
    /// KVM_EXIT_INTERNAL_ERROR (suberror 1, emulation failure), RIP on the instruction, nothing delivered. This host
    /// runs the guest's instructions through KVM's emulator, whose opcode tables have no POPCNT (0F B8) and whose
    /// em_cmpxchg8b returns X86EMUL_UNHANDLEABLE for 16 bytes; an unaligned CMPXCHG16B is #GP(0) there as upstream
    /// (the emulator's Aligned16 check comes first). Upstream SVM/VMX intercept neither: the CPU runs them. The other
    /// integer extras (XADD, CMPXCHG, CMPXCHG8B, BSF/BSR, BSWAP, SHLD/SHRD, RCL/RCR, LAHF/SAHF, XLAT) run; MOVBE,
    /// TZCNT and LZCNT deviate on their own (KvmPvmMovbeIsUndefined, KvmPvmTzcntLzcntRunAsBsfBsr). Observed on Linux 6.18 kvm_pvm (IntegerInstructions cases): <c>popcnt rbx, rcx</c> and
    /// <c>cmpxchg16b [0x89030]</c>.
    /// </summary>
    public static bool KvmPvmPopcntAndCmpxchg16bFail(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): INT3 and INT n in a 64-bit guest end KVM_RUN with KVM_EXIT_INTERNAL_ERROR
    /// (suberror 1, emulation failure), RIP on the instruction, whether the gate is present or the vector is beyond
    /// the IDT limit (upstream: delivered through the IDT with RIP past the instruction). Observed on Linux 6.18
    /// kvm_pvm: <c>int3</c> at 0x100001 and <c>int 0x1f</c> / <c>int 0x20</c> at 0x100000 with a present IDT.
    /// </summary>
    public static bool KvmPvmSoftwareInterruptsFail(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): IRET/IRETD in 32-bit protected-mode code ends KVM_RUN with
    /// KVM_EXIT_INTERNAL_ERROR (suberror 1, emulation failure), RIP on the IRET and the frame still on the stack.
    /// Upstream (VMX/SVM) runs it natively: EIP, CS and EFLAGS are popped. Observed on Linux 6.18 kvm_pvm: a flat
    /// 32-bit guest (CS 0x08, entered from real mode by a far jump) executing <c>pushfd; push 8; push eax; iretd</c>,
    /// and an exception handler's <c>iretd</c> after a #UD delivered through a 32-bit trap gate. Delivery through
    /// 32-bit gates itself works there (ProtectedModeExceptions).
    /// </summary>
    public static bool KvmPvmIretIn32BitCodeFails(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) gives a guest neither RDTSCP nor RDPID nor its own TSC_AUX, whatever KVM_SET_CPUID2
    /// says: its kvm_cpu_caps lack both (KVM_GET_SUPPORTED_CPUID has neither 0x80000001 EDX bit 27 nor 7.0 ECX bit 22,
    /// and KVM_GET_EMULATED_CPUID's leaf 7.0 is empty — cpuid.c __do_cpuid_func_emulated emulates RDPID only "if
    /// (kvm_cpu_cap_has(X86_FEATURE_RDTSCP))"), so guest_cpu_cap_has is false for both (kvm_vcpu_after_set_cpuid masks
    /// the guest's CPUID with the caps), although the host CPU has them (/proc/cpuinfo rdtscp, rdpid). Then RDPID is #UD
    /// (emulate.c em_rdpid), a guest RDMSR/WRMSR of TSC_AUX is #GP(0) (x86.c __kvm_get_msr/__kvm_set_msr), and RDTSCP
    /// reaches KVM's instruction emulator, whose group7_rm7 entry "DIP(SrcNone, rdtscp, check_rdtsc)" has no execute
    /// callback: KVM_RUN ends in KVM_EXIT_INTERNAL_ERROR (KVM_INTERNAL_ERROR_EMULATION, instruction bytes 0F 01 F9) with
    /// RIP on the instruction, no exception. The host side works: KVM_GET/SET_MSRS take TSC_AUX
    /// (kvm_is_supported_user_return_msr) though KVM_GET_MSR_INDEX_LIST does not list it. Upstream on SVM hardware
    /// with RDTSCP (EPYC Milan and Genoa have both) keeps them in the caps: with the CPUID bits the guest runs RDTSCP
    /// (ECX = TSC_AUX) and RDPID and reads and writes TSC_AUX; without the RDTSCP bit svm.c
    /// svm_recalc_instruction_intercepts sets INTERCEPT_RDTSCP and SVM_EXIT_RDTSCP is kvm_handle_invalid_op (#UD).
    /// Observed on Linux 6.18 kvm_pvm, EPYC Genoa (C probe, a 64-bit guest, TSC_AUX 0xabcd set with KVM_SET_MSRS, for
    /// no CPUID table, the supported table, and it with RDTSCP, RDPID, both or neither): RDTSCP → internal error, RIP
    /// on it, RCX unchanged; RDPID → #UD; RDMSR/WRMSR TSC_AUX → #GP; KVM_GET_MSRS reads 0xabcd back. The emulator
    /// answers as upstream with the caps of such hardware (Conformance/Cases/TscAuxInstructions.cs).
    /// </summary>
    public static bool KvmPvmWithoutTscAuxInstructions(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): no paging outside long mode. A guest MOV to CR0 that sets PG with EFER.LME clear
    /// is #GP(0) — for 32-bit paging (CR4.PSE) and for PAE paging whose PDPTEs are valid alike; CR0.PG stays clear
    /// (upstream x86.c kvm_set_cr0 accepts it, loading the PDPTEs for PAE: SDM Vol. 3A 4.1.2). Observed on Linux 6.18
    /// kvm_pvm in a 32-bit protected-mode guest entered from real mode (conformance LegacyPaging): the #GP handler
    /// sees error code 0, the faulting EIP at the MOV CR0, CR0 0x60000011 and CR4 0x10 or 0x20; the next access then
    /// goes to its linear address as a GPA (an MMIO exit). (Without an IDT the same MOV ends in KVM_EXIT_SHUTDOWN:
    /// docs/STATUS.md, session 4.) The host side of KVM_SET_SREGS is KvmPvmDropsCr0PgWithoutLongMode; after it, with
    /// CR0 = PG|WP|ET|PE, CR4.PAE, CR3 at a valid PDPT and EFER 0, KVM_RUN returns KVM_EXIT_SHUTDOWN at once, RIP
    /// unchanged (the same KVM_SET_SREGS with PG clear runs the guest); upstream keeps PG and loads the PDPTEs
    /// (__set_sregs_common, update_pdptrs).
    /// </summary>
    public static bool KvmPvmNoPagingOutsideLongMode(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): SYSENTER in 64-bit mode at CPL 0 on this AMD host ends KVM_RUN with
    /// KVM_EXIT_INTERNAL_ERROR (suberror 1, emulation) as upstream, but queues no #UD: KVM_GET_VCPU_EVENTS reports no
    /// exception and the next KVM_RUN fails the same way on the same instruction. Upstream (svm.c ud_interception →
    /// emulate.c em_sysenter: X86EMUL_UNHANDLEABLE in 64-bit mode → x86.c handle_emulation_failure) calls
    /// kvm_queue_exception(vcpu, UD_VECTOR) before the exit, so GET_VCPU_EVENTS reports exception 6 and the next
    /// KVM_RUN delivers #UD. Observed on Linux 6.18 kvm_pvm (SysEnterRules.sysenter_in_64_bit_mode_follows_the_vendor:
    /// "exception injected 0 pending 0 nr 0; second run: KVM_EXIT_INTERNAL_ERROR suberror=1 at RIP 0x100000"). At
    /// CPL 3 the #UD is delivered as upstream. The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmEmulationFailureQueuesNoUd(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) runs LTR and LLDT through KVM's instruction emulator, whose
    /// __load_segment_descriptor treats a TI=1 selector unlike the CPU (SDM Vol. 2A LTR/LLDT: "IF SRC(TI) = 1 THEN
    /// #GP(segment selector)"; upstream SVM/VMX run LTR and LLDT in hardware): for TR it jumps to its exception label
    /// before err_code is set ("TR should be in GDT only") — #GP(0); for LDTR it has no such check and reads the
    /// descriptor from the current LDT (get_descriptor_table_ptr). Observed on Linux 6.18 kvm_pvm (LdtTests):
    /// <c>ltr ax</c> with AX = 0x0C → #GP(0); <c>lldt ax</c> with AX = 0x2C, LDTR as after reset (base 0, limit
    /// 0xFFFF) and the guest's page 0 unmapped → #PF with error code 0.
    /// </summary>
    public static bool KvmPvmLdtSelectorInLtrOrLldt(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): CLWB (66 0F AE /6) in a 64-bit guest ends KVM_RUN with KVM_EXIT_INTERNAL_ERROR
    /// (emulation failure), RIP on the CLWB, nothing delivered, even on a mapped line; CLFLUSH and CLFLUSHOPT run and
    /// fault as a byte load. KVM's emulator decodes no CLWB (emulate.c group15 has em_clflush and em_clflushopt only).
    /// Upstream SVM does not intercept it: an EPYC with CLWB (/proc/cpuinfo: clwb) runs it. Observed on Linux 6.18
    /// kvm_pvm (CacheLineFlushes.clflush_clflushopt_and_clwb_fault_as_a_byte_load).
    /// </summary>
    public static bool KvmPvmClwbFails(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
