// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance;

/// <summary>
/// Known, named differences between this machine's kernel and upstream. A test that meets one asserts the host's
/// behaviour on the real kernel (so a change on the host is noticed) and the upstream behaviour on the emulator.
/// </summary>
public static class HostDeviations
{
    /// <summary>
    /// kvm_pvm (software nested KVM): a vCPU reaches guest_memfd memory only when the slot's userspace_addr is a
    /// mapping of that gmem. With userspace_addr = 0 (upstream's gmem-only slot, selftest test_guest_memfd_guest)
    /// an instruction fetch from the slot ends in KVM_EXIT_INTERNAL_ERROR (emulation failure) and a data access
    /// exits as KVM_EXIT_MMIO. Observed on Linux 6.18 kvm_pvm:
    /// <list type="bullet">
    /// <item>64-bit guest (test_guest_memfd_guest as upstream: one-page MMAP|INIT_SHARED gmem, slot 1 at GPA 4 GiB,
    /// identity-mapped by a 4 KiB PTE; code, stack and page tables in slot 0, a gmem mapped for userspace): the
    /// first exit is KVM_EXIT_MMIO read, phys_addr 0x100000000, len 1, RIP at the guest's <c>cmp byte [rdi+rcx],
    /// 0xaa</c>. Serving every read from the file, the guest makes 4096 one-byte MMIO reads (0x100000000 ..
    /// 0x100000FFF) and 4096 one-byte MMIO writes of 0xff, then reaches its done port; the file still holds 0xaa
    /// (upstream: no exit until GUEST_DONE, and the host sees 0xff).</item>
    /// <item>Real-mode guest, gmem-only data slot at GPA 0x20000: the first exit is KVM_EXIT_MMIO at 0x20000.</item>
    /// </list>
    /// </summary>
    public static bool KvmPvmGmemNeedsUserspaceMapping(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

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
    /// kvm_pvm (software nested KVM): a guest access to a plain memslot whose userspace_addr the kernel cannot fault
    /// in (a valid, PROT_NONE or unmapped address: access_ok passes, get_user_pages fails) is emulated as MMIO instead
    /// of failing. Upstream x86: __kvm_faultin_pfn → KVM_PFN_ERR_FAULT → kvm_handle_error_pfn →
    /// kvm_mmu_prepare_memory_fault_exit, KVM_RUN returns -EFAULT with KVM_EXIT_MEMORY_FAULT (flags 0, the page's
    /// gpa and size). Observed on Linux 6.18 kvm_pvm, real-mode guest (CS = DS base 0x10000, code in slot 0 of
    /// anonymous memory), slot 1 at GPA 0x12000 of one page:
    /// <list type="bullet">
    /// <item>userspace_addr = a PROT_NONE anonymous mapping: <c>mov al, [0x2000]</c> → KVM_EXIT_MMIO read,
    /// phys_addr 0x12000, len 1; answered with 0, the guest continues; <c>mov byte [0x2001], 0xff</c> →
    /// KVM_EXIT_MMIO write at 0x12001; then HLT.</item>
    /// <item>userspace_addr = anonymous memory that was munmap'ed after the slot was added (and had been used by the
    /// guest before): the same, KVM_EXIT_MMIO read at the slot's GPA, then MMIO write.</item>
    /// </list>
    /// The typed API cannot reach this state (a memory slot keeps its host memory mapped until it is deleted).
    /// </summary>
    public static bool KvmPvmUnbackedUserMemoryIsMmio(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
    /// <summary>
    /// kvm_pvm (software nested KVM): a not-present IDT gate for a benign exception gives #DF with error code 0, not
    /// the #NP the CPU raises (Intel SDM Vol. 3A 6.12.1, 6.13: #NP, error code vector*8 + IDT(2) + EXT(1), delivered
    /// serially after a benign exception — Table 6-5). Observed on Linux 6.18 kvm_pvm (IdtGuest, all 32 gates present
    /// except #UD): UD2 → #DF, error 0, saved RIP at the UD2, RFLAGS image 0x10002. Where the SDM itself asks for #DF
    /// the host agrees: #UD and #NP not present → #DF(0); #PF with the IDT limit below vector 14 → #DF(0), CR2 kept;
    /// #UD, #NP and #DF not present → KVM_EXIT_SHUTDOWN.
    /// </summary>
    public static bool KvmPvmNotPresentGateIsDoubleFault(bool realKernel) =>
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
    /// kvm_pvm (software nested KVM): KVM_GUESTDBG_USE_SW_BP does not intercept INT3. Upstream SVM sets the #BP
    /// intercept (svm_update_exception_bitmap) and bp_interception ends KVM_RUN with KVM_EXIT_DEBUG, exception 3,
    /// pc = CS.base + RIP of the INT3, the INT3 not delivered (VMX: handle_exception_nmi, the same). This host runs the
    /// guest's instructions through KVM's emulator, whose em_int knows nothing of guest debugging. Observed on Linux
    /// 6.18 kvm_pvm with KVM_SET_GUEST_DEBUG(ENABLE | USE_SW_BP) accepted:
    /// <list type="bullet">
    /// <item>64-bit guest, <c>nop; int3</c> at 0x100000 with a present IDT: KVM_EXIT_INTERNAL_ERROR (suberror 1), RIP
    /// on the INT3 (0x100001), nothing delivered — as without guest debugging (KvmPvmSoftwareInterruptsFail).</item>
    /// <item>Real mode (C probe, CS base 0, code at 0x1000, IVT all 0xf4): the INT3 is delivered through the IVT
    /// (CS:IP = f4f4:f4f4) with or without USE_SW_BP; no KVM_EXIT_DEBUG.</item>
    /// </list>
    /// Single-step and USE_HW_BP execute breakpoints do exit with KVM_EXIT_DEBUG here (GuestDebug cases).
    /// </summary>
    public static bool KvmPvmSoftwareBreakpointNotIntercepted(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a HLT executed while single-stepping (KVM_GUESTDBG_SINGLESTEP) ends KVM_RUN with
    /// the step's KVM_EXIT_DEBUG instead of KVM_EXIT_HLT (GuestDebug cases), but the halt is not forgotten: the next
    /// KVM_RUN ends in KVM_EXIT_HLT after at most one more instruction, with RIP on the instruction after that one
    /// rather than past a HLT. Probed on Linux 6.18 kvm_pvm (64-bit guest nop; nop; nop; hlt; nop; hlt; nop; hlt at
    /// +0..+7, single-step four times — pc +1, +2, +3, +4 —, KVM_SET_GUEST_DEBUG(0), KVM_RUN): KVM_EXIT_HLT with RIP +5,
    /// the next KVM_RUN KVM_EXIT_HLT with RIP +6; without the stepped HLT the same run ends at RIP +6, then +8. Found by
    /// the differential fuzzer's host-debugged guests (e.g. a #UD handler's HLT stepped, debugging off, then KVM_EXIT_HLT
    /// on the faulting UD2 without delivering #UD). Upstream (svm.c halt_interception → kvm_emulate_halt) reports
    /// KVM_EXIT_HLT for the stepped HLT itself ("we might be squashing a GUESTDBG_SINGLESTEP-triggered KVM_EXIT_DEBUG")
    /// and nothing is left over. The emulator does neither leftover; the fuzzer stops a guest after a stepped HLT
    /// (Fuzzing/TinyGuestRun.GuestDebug.cs).
    /// </summary>
    public static bool KvmPvmHaltAfterSteppedHlt(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_REGS drops RFLAGS.VM (bit 17); every other bit, reserved ones included,
    /// reads back as written. Upstream keeps it (__set_regs → kvm_set_rflags → vmx_set_rflags / svm_set_rflags store
    /// the value outside vm86 emulation). Observed on Linux 6.18 kvm_pvm by the differential fuzzer (open,
    /// KVM_CREATE_VM, KVM_CREATE_VCPU 1, KVM_SET_REGS rflags 0x43813626751E329E → KVM_GET_REGS 0x43813626751C329E).
    /// The emulator keeps the upstream answer; the fuzzer steers around it (Fuzzing/ReportedDivergences.cs).
    /// </summary>
    public static bool KvmPvmDropsRflagsVm(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_SREGS with CR0.PG|PE outside long mode (EFER.LME clear, i.e. 32-bit
    /// paging) is accepted but CR0 then reads back without PG (0x80000031 → 0x31): this host runs no 32-bit paged
    /// guests. Upstream __set_sregs_common stores CR0 through kvm_x86_ops.set_cr0 as given (kvm_is_valid_cr0 allows
    /// PG with PE). Observed on Linux 6.18 kvm_pvm by the differential fuzzer (vCPU 1, GET/SET/GET_SREGS). The emulator
    /// keeps the upstream answer; the fuzzer steers around it.
    /// </summary>
    public static bool KvmPvmDropsCr0PgWithoutLongMode(bool realKernel) =>
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
    /// kvm_pvm (software nested KVM): KVM_SET_MSRS of MSR_IA32_CR_PAT accepts values kvm_pat_valid refuses (upstream:
    /// x86.c kvm_set_msr_common MSR_IA32_CR_PAT "if (!kvm_pat_valid(data)) return 1", for host writes too). Observed
    /// on Linux 6.18 kvm_pvm: 0x0202020202020202 (type 2), 0x8 (bit 3) and 0x3 (type 3) are each written (1 MSR
    /// processed) and read back as written.
    /// </summary>
    public static bool KvmPvmPatNotValidated(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): MSR_IA32_MISC_ENABLE does not follow x86.c. A new vCPU reads 0x1 (FAST_STRING),
    /// not upstream's PEBS_UNAVAIL | BTS_UNAVAIL = 0x1800 (kvm_vcpu_reset, init_event = false); and a guest WRMSR that
    /// flips BTS_UNAVAIL (bit 11, in MSR_IA32_MISC_ENABLE_PMU_RO_MASK) is not #GP (upstream kvm_set_msr_common: a
    /// guest change of the PMU read-only bits returns 1 → #GP). Observed on Linux 6.18 kvm_pvm: KVM_GET_MSRS right
    /// after KVM_CREATE_VCPU; RDMSR, XOR EAX 0x800, WRMSR in a 64-bit guest delivers nothing.
    /// </summary>
    public static bool KvmPvmMiscEnableDiffers(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_MSRS of MSR_IA32_TSC is accepted (1 processed) but the next read is the
    /// host's TSC again (written 0x1000, read back about 0x29a0_92da_0747); upstream kvm_synchronize_tsc makes reads
    /// continue from the written value. Observed on Linux 6.18 kvm_pvm.
    /// </summary>
    public static bool KvmPvmTscWriteIgnored(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a vCPU's TSC offset is 0 and stays 0 — KVM_GET_DEVICE_ATTR of
    /// KVM_VCPU_TSC_CTRL/KVM_VCPU_TSC_OFFSET reads 0 on every new vCPU (the guest TSC is the host's: KVM_GET_MSRS of
    /// IA32_TSC 0x4a6e_23b9_83e1 beside the host's RDTSC 0x4a6e_23b9_8d8c), and KVM_SET_DEVICE_ATTR of 0x1000_0000_0000
    /// returns 0 but the next GET reads 0 again. Upstream kvm_synchronize_tsc(vcpu, NULL) starts a VM's TSC at 0 and
    /// kvm_arch_tsc_set_attr stores the offset. Observed on Linux 6.18 kvm_pvm. The same holds for the guest's own
    /// adjustments: a guest WRMSR of IA32_TSC_ADJUST = 2^32 (CPUID TSC_ADJUST set) is stored and read back, but the TSC
    /// read by KVM_GET_MSRS around the run advanced 261 121 cycles, not 2^32 (upstream adjust_tsc_offset_guest); a
    /// guest WRMSR of IA32_TSC = 0 leaves the TSC where it was while TSC_ADJUST takes the difference (TscAdjustRules).
    /// </summary>
    public static bool KvmPvmTscOffsetFixed(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_CPUID2 rewrites some leaves of the table it stores (upstream keeps the
    /// given entries and changes only the runtime bits of kvm_update_cpuid_runtime: CPUID.1 EDX.APIC and ECX.OSXSAVE,
    /// CPUID.0xD EBX). Observed on Linux 6.18 kvm_pvm (AMD host), read back with KVM_GET_CPUID2 and with the CPUID
    /// instruction:
    /// <list type="bullet">
    /// <item>CPUID.1: ECX and EDX read back with the host's own bits added (ECX 0x76d81203, EDX 0x178bfbff for
    /// ECX = EDX = 0 given; ECX 0x11 given reads 0x76d81213), and four CPUID.0xD subleaves (0, 1, 2, 9, SIGNIFCANT_INDEX) are
    /// appended to the table: 2 entries given, 6 read back.</item>
    /// <item>CPUID.7.0: EBX/ECX/EDX are replaced (0x11/0x22/0x33 given → 0x219c038b/0x4/0x88000010); CPUID.7.1 reads
    /// back all zero.</item>
    /// <item>CPUID.0xD.0 given alone (EAX 7, EBX 0x240, ECX 0x340): with SIGNIFCANT_INDEX it reads back EAX 0x207 (the Milan
    /// host's supported_xcr0) and ECX 0x988, without the flag EAX 0 and ECX 0; CPUID.0xD.1 keeps EAX and reads ECX 0.
    /// XCR0's rules follow the table as rewritten: after EAX 1 with the flag KVM_SET_XCRS accepts 3, 7 and 0x207 (upstream
    /// only 1), after EAX 7 without it only 1 (upstream 3 and 7 too). Found with the vCPU state fuzz ops, which therefore
    /// set no leaf 0xD (src/KvmSharp.Fuzzing/VcpuStateOps.cs).</item>
    /// </list>
    /// Every other rule probed matches upstream: a table without leaves 1, 7 and 0xD is stored and answered verbatim
    /// (padding included), and after KVM_RUN the table as read back is accepted again while the table as given is not.
    /// </summary>
    public static bool KvmPvmSetCpuidRewritesLeaves(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): the CR4 bits a vCPU's CPUID does not offer stay valid for KVM_SET_SREGS.
    /// Upstream kvm_vcpu_after_set_cpuid sets cr4_guest_rsvd_bits = __cr4_reserved_bits(guest_cpu_cap_has, vcpu) and
    /// kvm_is_valid_cr4 refuses them (EINVAL). Observed on Linux 6.18 kvm_pvm: KVM_SET_CPUID2 of the supported table
    /// with XSAVE, VMX, PCID (leaf 1 ECX), FSGSBASE, SMEP, SMAP (7.0 EBX), UMIP, PKU, SHSTK, LA57 (7.0 ECX), IBT (7.0 EDX)
    /// and LAM (7.1 EAX) cleared reads back leaf 1 ECX 0xf7f83203, 7.0 EBX 0xf1bf03ab, ECX 0x5f46 (no PKU), EDX 0x10
    /// (the host's bits added back, HostDeviations.KvmPvmSetCpuidRewritesLeaves), and KVM_SET_SREGS still takes every
    /// CR4 bit it took before, 0x750FFF: CR4.PKE included although the CPUID held has no PKU (upstream: EINVAL).
    /// The emulator, built like this host, does the same.
    /// </summary>
    public static bool KvmPvmKeepsCr4BitsTheGuestCpuidLacks(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): when userspace moves RIP with KVM_SET_REGS after a 64-bit guest's KVM_EXIT_IO IN,
    /// the next KVM_RUN drops the answer (as upstream's complete_fast_pio_in does when kvm_is_linear_rip fails) but the
    /// guest goes on from the instruction after the IN, not from the RIP userspace set; upstream SVM runs the guest from
    /// the new RIP. Observed on Linux 6.18 kvm_pvm: mov eax, 0x12345666; in al, 0x10; hlt at 0x100000, then an OUT at
    /// 0x100008; answer 0x5a; KVM_SET_REGS RIP = 0x100008; the next KVM_RUN ends in KVM_EXIT_HLT with RIP 0x100008 (past
    /// the HLT at 0x100007) and RAX 0x12345666 (the OUT never runs). The emulator does what upstream does.
    /// </summary>
    public static bool KvmPvmResumesPastADroppedIn(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): KVM_SET_VCPU_EVENTS with KVM_VCPUEVENT_VALID_SHADOW keeps interrupt.shadow as the
    /// byte given, and KVM_GET_VCPU_EVENTS returns it: 3 reads 3, 0xff reads 0xff. Upstream goes through the vendor
    /// set/get_interrupt_shadow: VMX keeps only KVM_X86_SHADOW_INT_STI | MOV_SS (0xff reads 3), SVM one bit (any
    /// non-zero value reads 3). Observed on Linux 6.18 kvm_pvm; the emulator, having no vendor, does as this host.
    /// </summary>
    public static bool KvmPvmInterruptShadowStoredVerbatim(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// This host (Linux 6.18 kvm_pvm, AMD): the fxsave area's sw_reserved bytes (464..511) of every KVM_GET_XSAVE /
    /// KVM_GET_XSAVE2 image read as the one word kvm_caps.supported_xcr0 at 464 and zeros (0x207 on the EPYC Milan
    /// machines, 0xe7 on EPYC Genoa) — a new vCPU, after KVM_SET_XSAVE of any bytes there, with and without
    /// KVM_SET_CPUID2 alike (C probes). Upstream __copy_xstate_to_uabi_buf copies
    /// xstate_fx_sw_bytes there (magic1 FP_XSTATE_MAGIC1 0x46505853, extended_size, xfeatures, xstate_size). The
    /// emulator writes what this host writes (X86/XsaveRules.cs), so the images compare byte for byte.
    /// </summary>
    public static bool KvmPvmXsaveSwReservedBytes(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): every exception a guest instruction raises passes through KVM's exception queue
    /// (kvm_queue_exception_e / kvm_inject_page_fault → kvm_multiple_exception), so KVM_GET_VCPU_EVENTS after the run
    /// reads its vector, has_error_code and error_code, with has_payload and payload 0 (consumed at delivery).
    /// Upstream SVM/VMX only do that for intercepted vectors (e.g. #UD, #PF under shadow paging); a #GP or #DE is
    /// delivered by the CPU and leaves the queue's fields alone. Observed on Linux 6.18 kvm_pvm (IdtGuest, events set
    /// beforehand to nr 5, error_code 0x99, payload 0xdead000): UD2 → nr 6 / 0 / 0; a non-canonical read → nr 13 / 1 /
    /// 0; a write to a not-present page → nr 14 / 1 / 2; #DF raised while delivering an injected event leaves the
    /// injected vector. The emulator, having no intercept set of its own, does as this host
    /// (Emulate/X86Emulator.Events.cs QueueGuestFault).
    /// </summary>
    public static bool KvmPvmGuestExceptionsPassThroughQueue(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a soft interrupt (interrupt.soft) or soft exception (#BP, #OF) queued with
    /// KVM_SET_VCPU_EVENTS is delivered with the RIP it was queued at pushed — nothing is decoded or skipped, and the
    /// instruction there need not be an INT n. Upstream SVM (svm_update_soft_interrupt_rip) decodes the instruction
    /// at RIP with EMULTYPE_SKIP_SOFT_INT and pushes the RIP after it (dropping the event when that fails); upstream
    /// VMX pushes RIP + event_exit_inst_len, 0 for an event userspace queued — what this host does. Observed on Linux
    /// 6.18 kvm_pvm: soft interrupt 0x20 at a NOP and at <c>int 0x21</c>, and an injected #BP at a NOP and at an
    /// INT3: the handler of the queued vector sees RIP 0x100000. The emulator does the same.
    /// </summary>
    public static bool KvmPvmQueuedSoftEventsKeepRip(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): the event queue is looked at when KVM_RUN enters the guest, and no event window
    /// is opened inside the run: a pending NMI blocked at entry (NMIs masked, an interrupt shadow, or an injected
    /// exception delivered first) stays pending until the next KVM_RUN, even after an IRET unmasked NMIs or the
    /// shadow ended. Upstream enable_nmi_window (IRET interception / single-step over the shadow) and the
    /// req_immediate_exit of kvm_check_and_inject_events deliver it as soon as the block ends. Observed on Linux 6.18
    /// kvm_pvm: nmi_pending 2 with an IRETQ-ing handler → one NMI, then HLT with nmi_pending 1, nmi_masked 0; the next
    /// KVM_RUN delivers it at the RIP after the HLT; a pending NMI with shadow STI or MOV_SS, or behind an injected #GP,
    /// the same. Two events queued as injected at once (an NMI or exception and an interrupt; no KVM exit produces
    /// that) differ again: the host delivers the second one at the guest's next HLT without exiting — not modelled.
    /// The emulator evaluates the queue once per KVM_RUN, as this host does. Seen again by the differential fuzzer's
    /// interrupt guests (src/KvmSharp.Fuzzing/TinyGuestRun.Interrupts.cs, which therefore makes no KVM_INTERRUPT while an
    /// exception is queued and no KVM_X86_SET_MCE while an interrupt is): a #MC pending from KVM_X86_SET_MCE plus
    /// KVM_INTERRUPT 5, one KVM_RUN → the host halts in vector 5's handler (both delivered, the second at the #MC
    /// handler's HLT), the emulator in vector 18's with vector 5 still injected. Why: kvm_pvm's pvm.c delivers an event
    /// at injection time (pvm_inject_exception / pvm_inject_irq / pvm_inject_nmi → do_pvm_event, "Always inject ...
    /// directly and consume the event"; pvm_cancel_injection does nothing) and opens no event windows.
    /// </summary>
    public static bool KvmPvmPendingEventsWaitForNextRun(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): an interrupt its in-kernel local APIC delivers to the guest never shows in ISR —
    /// IRR loses the vector, ISR and PPR stay 0 as if it had been EOI'd at once — and the next accepted vector waits
    /// for the next KVM_RUN (<see cref="KvmPvmPendingEventsWaitForNextRun"/>). Upstream kvm_get_apic_interrupt moves the
    /// vector from IRR to ISR (apic_set_isr, __apic_update_ppr), so a lower or equal priority class waits for the
    /// guest's EOI. Observed on Linux 6.18 kvm_pvm (Conformance/Cases/LapicDelivery.cs): APIC 0 software-enabled by
    /// KVM_SET_LAPIC, KVM_SIGNAL_MSI of vectors 0x21 then 0x2E (both answer 1), KVM_RUN with RFLAGS.IF set, the handler
    /// IRETQs without EOI, the guest OUTs: vector 0x2E delivered; KVM_GET_LAPIC then has IRR 0x21 only, ISR empty,
    /// PPR 0 (upstream, the emulator: ISR 0x2E, PPR 0x20); the second KVM_RUN delivers 0x21 at entry (upstream: never
    /// before an EOI); with the guest's EOI written to 0xFEE000B0 (handled in the kernel: no MMIO exit on either) 0x21
    /// still waits for the next KVM_RUN. The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmDeliveredApicVectorNotInService(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): the TSC offset KVM_GET_DEVICE_ATTR(KVM_VCPU_TSC_OFFSET) reports (always 0,
    /// <see cref="KvmPvmTscOffsetFixed"/>) is not the one TSC synchronisation tracks, so writing the offset read back
    /// with KVM_SET_DEVICE_ATTR starts a new generation. Upstream kvm_arch_tsc_get_attr reads l1_tsc_offset, which
    /// kvm_synchronize_tsc set to kvm->arch.last_tsc_offset, and kvm_arch_tsc_set_attr's "matched" is
    /// "last_tsc_khz == virtual_tsc_khz &amp;&amp; last_tsc_offset == offset": the read-back value keeps the vCPUs matched.
    /// Observed on Linux 6.18 kvm_pvm (C probes, KVM_SET_CLOCK to recompute use_master_clock, then KVM_GET_CLOCK's flags):
    /// a new VM with two vCPUs reads flags 0xE; KVM_SET_DEVICE_ATTR of vCPU 0's offset = vCPU 1's read-back 0 → flags 0;
    /// likewise after a host write of IA32_TSC 12345 to vCPU 0, vCPU 1's offset set to 0 → flags 0. Every other rule of
    /// the generations follows upstream here with the values userspace passes (x86.c kvm_synchronize_tsc,
    /// __kvm_synchronize_tsc, kvm_track_tsc_matching): two equal non-zero offsets written to two vCPUs match (0xE);
    /// a host write of 0 joins the current generation, counted once per vCPU (three vCPUs: 0 until the third joins);
    /// a first non-zero host write starts a generation (user_set_tsc), later ones within ±0.9 s of the last write
    /// advanced by the time since join it, ±1.1 s do not; a vCPU whose virtual_tsc_khz differs from last_tsc_khz never
    /// joins; KVM_REQ_MASTERCLOCK_UPDATE is served only by a KVM_RUN of the synchronised vCPU itself, with the 6.7+
    /// condition of kvm_track_tsc_matching (TscSyncRules). The emulator keeps upstream's read-back offset.
    /// </summary>
    public static bool KvmPvmTscOffsetReadBackStartsAGeneration(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): kvm_run.request_interrupt_window opens no interrupt window at once. Upstream's
    /// enable_irq_window (svm_set_vintr / interrupt-window exiting) makes the guest exit at the first instruction
    /// boundary where it can take an interrupt, and vcpu_run then returns KVM_EXIT_IRQ_WINDOW_OPEN — before the first
    /// instruction when RFLAGS.IF is set and nothing blocks. This host exits only at a later exit it handles itself.
    /// Observed on Linux 6.18 kvm_pvm (C probes, real mode, IF = 1, nothing queued): nop; nop; nop; hlt ends in
    /// KVM_EXIT_HLT after the three NOPs (5 runs of 5); a loop "inc cx; jmp" ends in KVM_EXIT_IRQ_WINDOW_OPEN with RIP
    /// on the loop's head and CX = 512 in 15 runs of 20, 0 in 4, 8 in 1 (so sometimes as upstream); "jmp $" ends in it
    /// with RIP on the loop. IF = 0 then STI; NOP; NOP; NOP; HLT: KVM_EXIT_HLT, and the run after it went on past the
    /// HLT. Where the exit comes, ready_for_interrupt_injection and if_flag are 1, as upstream. The emulator exits at
    /// the first interruptible boundary, as upstream. The differential fuzzer asks for the window only in guests that
    /// run with RFLAGS.IF clear up to a final <c>sti; nop; spin: jmp spin</c>, where the late exit looks the same as
    /// upstream's (src/KvmSharp.Fuzzing/TinyGuestRun.Interrupts.cs).
    /// </summary>
    public static bool KvmPvmLateIrqWindowExit(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) emulates real-mode guests instruction by instruction, and every emulated write goes
    /// through kvm_vcpu_write_guest → mark_page_dirty_in_slot: with a dirty ring, each write to a logging slot is
    /// pushed, also to a page already pushed and not yet reset. Upstream (a guest the hardware runs) pushes a page once
    /// — on the write fault that makes it writable — and not again until KVM_RESET_DIRTY_RINGS write-protects it.
    /// Observed on Linux 6.18 kvm_pvm (C probe, real mode, 4 KiB ACQ_REL ring, slot 1 with LOG_DIRTY_PAGES): writes to
    /// pages 0, 2, 1, 2 → entries (1,0) (1,2) (1,1) (1,2); after collecting (not resetting) them, writes to 1, 3 →
    /// (1,1) (1,3); KVM_RESET_DIRTY_RINGS then returns 4 for the 4 collected of them, and a read pushes nothing. The
    /// emulator pushes once per page between resets (DirtyRingRules).
    /// </summary>
    public static bool KvmPvmDirtyRingPushesEveryWrite(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a real-mode guest filling its dirty ring past the soft limit (size - 64 entries)
    /// is not stopped: KVM_REQ_DIRTY_RING_SOFT_FULL is only looked at on the next KVM_RUN. Upstream the next
    /// vcpu_enter_guest after the write fault that reached the limit exits with KVM_EXIT_DIRTY_RING_FULL (x86.c,
    /// kvm_dirty_ring_check_request). Observed on Linux 6.18 kvm_pvm (C probe, 4 KiB ring = 256 entries, soft limit
    /// 192): a loop writing 208 pages ran to its OUT (KVM_EXIT_IO) with 210 entries in the ring; the next two KVM_RUNs
    /// returned KVM_EXIT_DIRTY_RING_FULL without running the guest; after collecting all and a reset (210) the guest
    /// went on. A loop long enough to overrun the ring (the kernel's WARN_ON_ONCE in kvm_dirty_ring_push) was not
    /// tried. The emulator exits after the instruction whose write reached the limit.
    /// </summary>
    public static bool KvmPvmDirtyRingFullExitIsLate(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) never counts the vCPU statistic <c>io_exits</c>, though it lists it: upstream
    /// counts every port I/O intercept (svm.c io_interception, vmx.c handle_io: "++vcpu->stat.io_exits"). Its other
    /// exit counters do count: <c>exits</c> once per exit to userspace, <c>mmio_exits</c>, <c>halt_exits</c>.
    /// Observed on Linux 6.18 kvm_pvm (C probe, real mode): three <c>out dx, al</c> (KVM_EXIT_IO), two writes to
    /// unbacked GPAs (KVM_EXIT_MMIO) and a HLT read back exits=6, io_exits=0, mmio_exits=2, halt_exits=1,
    /// fpu_reload=6 (one per KVM_RUN) — and insn_emulation=11, one per real-mode instruction executed, as kvm_pvm
    /// emulates real mode (upstream counts only the instructions KVM emulates, such as the two MMIO writes). The
    /// emulator counts io_exits as upstream (BinaryStatsRules).
    /// </summary>
    public static bool KvmPvmIoExitsNotCounted(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): the in-kernel IOAPIC sees the EOI of a level-triggered vector when the vector is
    /// delivered to the guest, not when the guest writes the APIC's EOI register — so a resampling irqfd's resampler
    /// (virt/kvm/eventfd.c irqfd_resampler_ack) de-asserts the line and signals its resamplefds at delivery, and the
    /// guest's EOI does nothing (the vector was never in ISR, <see cref="KvmPvmDeliveredApicVectorNotInService"/>).
    /// Upstream the IOAPIC learns of the EOI only from the guest's EOI write (lapic.c apic_set_eoi →
    /// kvm_ioapic_send_eoi → ioapic.c kvm_ioapic_update_eoi_one: kvm_notify_acked_irq, remote IRR cleared, re-delivery
    /// of a line still high). Observed on Linux 6.18 kvm_pvm (Conformance/Cases/IrqfdResample.cs and a probe case):
    /// IOAPIC pin 20 level-triggered to vector 0x40 on APIC 0, a resampling irqfd on GSI 20 signalled → irr 0x100000,
    /// entry 0xC040 (remote IRR), vector 0x40 in IRR and TMR; the KVM_RUN that delivers it (the guest then OUTs before
    /// its EOI) returns with the resamplefd at 1, irr 0, entry 0x8040, ISR empty; the next KVM_RUN, which writes
    /// 0xFEE000B0, leaves the resamplefd at 0 (upstream and the emulator: 0 after the first run with irr 0x100000 and
    /// remote IRR, 1 after the EOI). With KVM_IRQ_LINE holding GSI 20 high as well, each KVM_RUN delivers it once and
    /// signals the resamplefd once (the ack re-services the still-high line into IRR for the next run); upstream and
    /// the emulator deliver it again within the run right after the guest's EOI. The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmLevelEoiAtDelivery(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): an APIC timer that expired while LVTT was masked (or before it was unmasked)
    /// is injected only at the next KVM_RUN, not when the guest's unmasking write returns. Upstream every exit the
    /// kernel handles goes back through vcpu_run's loop, where "if (kvm_cpu_has_pending_timer(vcpu))
    /// kvm_inject_pending_timer_irqs(vcpu)" (x86.c) puts LVTT's vector in IRR and, in TSC-deadline mode, clears
    /// lapic_timer.tscdeadline (lapic.c kvm_apic_inject_pending_timer_irqs). Observed on Linux 6.18 kvm_pvm
    /// (Conformance/Cases/X2Apic.cs tsc_deadline_msr_reads_back_and_clears, a 64-bit guest in x2APIC mode, RFLAGS.IF
    /// clear): LVTT 0x50050 (TSC-deadline, masked), WRMSR IA32_TSC_DEADLINE = 1 (already passed), RDMSR → 1 (as
    /// upstream: masked, not injected); WRMSR LVTT 0x40050 (unmasked), RDMSR IA32_TSC_DEADLINE → 1 (upstream 0) and
    /// KVM_GET_LAPIC shows IRR without 0x50; after the guest's OUT exit and one more KVM_RUN, RDMSR → 0 and IRR has
    /// 0x50. Same family as <see cref="KvmPvmPendingEventsWaitForNextRun"/>. The emulator injects at the next
    /// instruction boundary, as upstream.
    /// </summary>
    public static bool KvmPvmExpiredTimerInjectedAtNextRun(bool realKernel) =>
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
    /// kvm_pvm (software nested KVM): like a level-triggered vector (<see cref="KvmPvmLevelEoiAtDelivery"/>), an
    /// edge-triggered IOAPIC vector the IOAPIC handles — its pin has an ack notifier, so kvm_ioapic_scan_entry puts the
    /// vector in ioapic_handled_vectors — is acknowledged when it is delivered to the guest, not at the guest's EOI.
    /// Upstream the EOI write runs lapic.c apic_set_eoi → kvm_ioapic_send_eoi → ioapic.c kvm_ioapic_update_eoi_one,
    /// whose kvm_notify_acked_irq reaches the GSI's irqfd resampler for an edge EOI too. Observed on Linux 6.18
    /// kvm_pvm (Conformance/Cases/GuestProgrammedIrqchip.cs guest_programmed_ioapic_delivers_an_irq_line): the guest
    /// writes IOAPIC pin 20 edge-triggered to vector 0x40 on APIC 0 through IOREGSEL/IOWIN, a resampling irqfd on GSI
    /// 20 is signalled; the KVM_RUN that delivers 0x40 (the guest OUTs before its xAPIC EOI) returns with the
    /// resamplefd at 1 and irr 0, and the next KVM_RUN, which writes 0xFEE000B0, leaves it at 0 (upstream and the
    /// emulator: 0 after the delivery, 1 after the EOI). The PIC's EOI (OCW2, i8259.c pic_clear_isr) is acknowledged
    /// at the guest's OCW2 on both kernels. The ack at delivery keeps upstream's directed-EOI rule for a level vector:
    /// with SPIV bit 12 (set by KVM_SET_LAPIC) remote IRR stays after the delivery and after the guest's EOI; with
    /// KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST it is already clear after the delivery (GuestProgrammedIrqchip
    /// directed_eoi_leaves_remote_irr_for_the_guest). The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmHandledEdgeEoiAtDelivery(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): MSR_MISC_FEATURES_ENABLES (0x140) takes any value, from the host and the guest,
    /// and MSR_PLATFORM_INFO's host write does not look at it. Upstream x86.c kvm_set_msr_common refuses a 0x140 value
    /// with a bit other than CPUID_FAULT (bit 0), or with CPUID_FAULT while MSR_PLATFORM_INFO lacks
    /// MSR_PLATFORM_INFO_CPUID_FAULT (supports_cpuid_fault), and a host write of MSR_PLATFORM_INFO without
    /// CPUID_FAULT while faulting is on (cpuid_fault_enabled). Observed on Linux 6.18 kvm_pvm (C probe,
    /// /tmp/cpuidfault/probe.c, and Conformance/Cases/CpuidFaulting.cs): KVM_SET_MSRS of 0x140 = 2, 3, 4, 0x80,
    /// 0xffffffff, 1 &lt;&lt; 63 each processed and read back; 0x140 = 1 taken with MSR_PLATFORM_INFO 0 (written by
    /// the host, or with KVM_X86_QUIRK_STUFF_FEATURE_MSRS disabled); MSR_PLATFORM_INFO = 0 taken with 0x140 = 1; a
    /// guest WRMSR of 0x140 = 2, 3 or 4 (real mode and 64-bit ring 0) is no #GP. What the stored bit 0 does is
    /// upstream's: CPUID at CPL 3 is #GP(0), at CPL 0 it runs (CpuidFaulting cpuid_faults_at_cpl_3). Everything else here matches upstream (the read-back,
    /// KVM_CAP_MSR_PLATFORM_INFO, do_set_msr's immutable MSR_PLATFORM_INFO after KVM_RUN). The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmMiscFeaturesEnablesUnchecked(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): with a split irqchip (KVM_CAP_SPLIT_IRQCHIP), the KVM_EXIT_IOAPIC_EOI of a vector
    /// the userspace IOAPIC handles comes from the vector's delivery, not from the guest's EOI — like the in-kernel
    /// IOAPIC's ack (<see cref="KvmPvmLevelEoiAtDelivery"/>): the request is made when the vector is delivered, so the
    /// exit ends the KVM_RUN after the one that delivered it, with RIP wherever the handler stopped before its EOI, and
    /// the guest's EOI write (the vector never in ISR, <see cref="KvmPvmDeliveredApicVectorNotInService"/>) makes none.
    /// Upstream lapic.c apic_set_eoi → kvm_ioapic_send_eoi sets pending_ioapic_eoi and KVM_REQ_IOAPIC_EOI_EXIT at the
    /// guest's EOI write, and the next vcpu_enter_guest exits with RIP after that write. Which vectors exit is
    /// upstream's (irq.c kvm_scan_ioapic_routes; lapic.c kvm_lapic_suppress_eoi_broadcast). Observed on Linux 6.18
    /// kvm_pvm (C probe /tmp/eoiexit/probe.c, real mode, x2APIC; and Conformance/Cases/SplitIrqchipEoi.cs): split
    /// irqchip with 24 reserved pins, MSI routes GSI 5 → vector 0x40 level, GSI 6 → 0x41 edge, GSI 30 → 0x42 level; the
    /// handler OUTs to 0x11, writes MSR 0x80B (EOI) at 0x200E, OUTs to 0x12. KVM_IRQ_LINE on GSI 5: OUT 0x11 (RIP
    /// 0x2002), then KVM_EXIT_IOAPIC_EOI eoi.vector 0x40 with RIP 0x2002 — before the WRMSR ran (upstream and the
    /// emulator: RIP 0x2010, after it) — then OUT 0x12; GSI 6 and GSI 30: no such exit; KVM_SIGNAL_MSI of vector 0x40
    /// edge: the exit too (ioapic_handled_vectors is by vector); after KVM_SET_GSI_ROUTING makes GSI 5 edge: none, and
    /// back to level: again; SPIV's directed-EOI bit: still the exit by default (quirked), none with
    /// KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST. A host EOI (KVM_SET_LAPIC with 0x40 in ISR, KVM_SET_MSRS of 0x80B) is
    /// upstream's: the next KVM_RUN exits with vector 0x40 before the guest runs, also after KVM_SET_GSI_ROUTING made
    /// the route edge without an entry in between (the last scan's bitmap). The emulator does as upstream.
    /// </summary>
    public static bool KvmPvmSplitIrqchipEoiExitAtDelivery(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): after an INIT (kvm_vcpu_reset(init_event = true), here a latched INIT taken by
    /// KVM_GET_MP_STATE) KVM_GET_SREGS reports FS.base and GS.base 0 but KVM_GET_MSRS of MSR_FS_BASE / MSR_GS_BASE still
    /// reads the values from before the INIT, until the next KVM_SET_SREGS. Upstream the MSR and the segment base are
    /// one field (the VMCS/VMCB segment base), reset by the INIT. Observed on Linux 6.18 kvm_pvm (C probe
    /// /tmp/fuzzinit/fs.c): SET_SREGS fs.base 0x7000 → MSR 0x7000; INIT → sregs 0, MSR 0x7000; SET_SREGS → MSR 0.
    /// The emulator does as upstream (Conformance/Cases/InitReset.cs).
    /// </summary>
    public static bool KvmPvmInitKeepsSegmentBaseMsrs(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) does not give a plain 64-bit guest the CPU's ring transitions. Observed on Linux
    /// 6.18 kvm_pvm (PrivilegeTransitions.ring_3_round_trip_through_iretq_syscall_and_sysret; STAR 0x0020_0008_0000_0000,
    /// SFMASK 0x4701, EFER.SCE set): an IRETQ at CPL 0 to CS 0x33 with RFLAGS 0x3203 reaches ring 3 (DS/FS nulled, ES
    /// 0x2b kept) but with IOPL 0 (PUSHFQ reads 0x203); SYSCALL from RFLAGS 0xED7 jumps to LSTAR with RCX = the next
    /// RIP and R11 = 0xED7, but CS and SS still read 0x33 and 0x2b there (PUSHFQ: 0xAD6), and the SYSRETQ in that code
    /// is #GP(0) delivered through TSS.RSP0 with the frame's CS 0x33, SS 0x2b, RFLAGS 0x108D6 — the vCPU stayed at
    /// CPL 3. (Hardware, and the emulator: IOPL 3 after the IRETQ, CS 0x08/SS 0x10 after SYSCALL, SYSRETQ returns to
    /// 0x33/0x2b with RFLAGS = R11 &amp; 0x3C7FD7 | 2.)
    /// </summary>
    public static bool KvmPvmSyscallKeepsUserMode(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) runs RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE in a 64-bit guest whatever the guest's
    /// CR4.FSGSBASE says: with the bit clear they read and write FS.base/GS.base as with it set, where the CPU raises
    /// #UD (SDM Vol. 2B RDFSBASE: "#UD If CR4.FSGSBASE[bit 16] = 0"; VMX and SVM guests run with their own CR4). The
    /// guest's instructions run in host user mode under the host's CR4. Observed on Linux 6.18 kvm_pvm
    /// (PrivilegeTransitions.fs_gs_base_instructions_follow_cr4_fsgsbase: KVM_EXIT_IO after the writes, no #UD). The
    /// emulator does as the CPU.
    /// </summary>
    public static bool KvmPvmFsGsBaseWithoutCr4Bit(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) runs a guest's ring 3 with IOPL 0 whatever the guest's RFLAGS.IOPL: a vCPU started
    /// at CPL 3 (KVM_SET_SREGS CS 0x33/SS 0x2b, DPL 3) with KVM_SET_REGS RFLAGS 0x3202 sees IOPL 0 — the #UD frame's
    /// RFLAGS reads 0x10202, CLI and STI are #GP(0), POPFQ does not change IF, and OUT/IN/OUTS/INS consult the TSS I/O
    /// bitmap (#GP(0) without one). Observed on Linux 6.18 kvm_pvm (PrivilegeChecks.cli_and_sti_at_cpl_3_follow_iopl:
    /// "cli with IOPL 3 … got #GP(0), Rflags 0x10202"; popfq_at_cpl_3_…: 0x44ED7 where IOPL 3 gives 0x47CD7). On
    /// hardware (and in the emulator) IOPL 3 makes them work at CPL 3 (SDM Vol. 2A CLI: "IF CPL ≤ IOPL THEN IF ← 0";
    /// emulate.c emulator_bad_iopl). Same root as <see cref="KvmPvmSyscallKeepsUserMode"/>'s IRETQ losing IOPL.
    /// </summary>
    public static bool KvmPvmUserModeIoplIsZero(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) ignores the guest's CR4.TSD at CPL 3: RDTSC runs (EDX:EAX the TSC, the next
    /// instruction's #UD reached) where the CPU raises #GP(0) (SDM Vol. 2B RDTSC: "#GP(0) If the TSD flag in register
    /// CR4 is set and the CPL is greater than 0"; emulate.c em_rdtsc likewise). The guest's user code runs under the
    /// host's CR4. Observed on Linux 6.18 kvm_pvm (PrivilegeChecks.privileged_instructions_at_cpl_3_are_gp: "rdtsc
    /// with CR4.TSD: #UD at 0x100002"). The emulator does as the CPU.
    /// </summary>
    public static bool KvmPvmIgnoresCr4TsdAtCpl3(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): at CPL 3 in a 64-bit guest, INT n through a DPL-0 gate raises #UD (RIP on the
    /// instruction, delivered through TSS.RSP0 with the CPL-3 frame) and INT3 is delivered as #BP through its DPL-0
    /// gate (RIP past the INT3), both instead of the #GP(vector·8 + 2) of a gate whose DPL is below the CPL (Intel SDM
    /// Vol. 2A INT n, Vol. 3A 6.12.1.1; upstream SVM intercepts neither). At CPL 0 they end in an emulation failure
    /// (<see cref="KvmPvmSoftwareInterruptsFail"/>). Observed on Linux 6.18 kvm_pvm
    /// (RingTransitionFaults.ring_fault_software_interrupts_at_cpl_3_check_the_gate_dpl: <c>int 5</c> and <c>int3</c>
    /// after an IRETQ to CS 0x33, IDT gates DPL 0: vector 6 no error code, RIP on the INT; vector 3, RIP + 1; frame CS
    /// 0x33, SS 0x2b). INTO is #UD on both. A DPL-3 gate changes nothing for INT n: still #UD, RIP on the INT
    /// (UserModeObservations.user_mode_int_through_a_dpl_3_gate_reaches_its_handler: <c>int 0x1f</c> and <c>int 0x80</c>);
    /// INT3 through a DPL-3 interrupt or trap gate is delivered as upstream. The differential fuzzer's KVM_EXIT_SHUTDOWN
    /// at an INT 0x80 through its DPL-3 gate (seed 1, program seed 60707384) is this #UD in an IDT without a #UD gate.
    /// </summary>
    public static bool KvmPvmSoftwareInterruptAtCpl3IsUndefined(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a far RET (48 CB) at CPL 0 to an outer ring reaches KVM's instruction emulator,
    /// whose __load_segment_descriptor (emulate.c, X86_TRANSFER_RET) raises #GP(0) for a null CS and #GP(selector) for a
    /// CS that is not code, then stops at "Outer-privilege level return is not implemented" (rpl &gt; cpl →
    /// X86EMUL_UNHANDLEABLE): KVM_RUN ends in KVM_EXIT_INTERNAL_ERROR (suberror 1), RIP on the RETF, nothing delivered —
    /// for a not-present CS, a null SS, an SS with RPL or DPL ≠ 3, a not-present SS and a non-canonical RIP alike (and,
    /// presumably, for a valid frame). Upstream SVM/VMX do not intercept RETF: the CPU performs the return or raises
    /// #NP/#GP/#SS (SDM Vol. 2A RET "RETURN-TO-OUTER-PRIVILEGE-LEVEL"). Observed on Linux 6.18 kvm_pvm
    /// (RingTransitionFaults.ring_fault_far_return_to_ring_3_faults_on_a_bad_cs_ss_or_rip).
    /// </summary>
    public static bool KvmPvmFarReturnToOuterRingFails(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): an IRETQ at CPL 0 to ring 3 skips two of the CPU's checks (SDM Vol. 2A IRET,
    /// IA-32e mode; AMD APM Vol. 3 IRET): a data segment as the return CS (0x2b, DPL 3 read/write data) is loaded — the
    /// guest then runs on at the return RIP and ends in #DF (frame CS 0x2b, CR2 0x2b) — instead of #GP(0x28) at the
    /// IRETQ; and a non-canonical return RIP (0x8000_0000_0000) is loaded with CS 0x33, the #GP(0) coming from the
    /// fetch at CPL 3 (frame RIP 0x8000_0000_0000, CS 0x33, through TSS.RSP0) instead of at the IRETQ. Its other checks
    /// match the CPU: null CS → #GP(0), CS not present → #NP(0x38), null SS → #GP(0), SS RPL 0 or DPL 0 →
    /// #GP(selector), SS not present → #SS(0x40). Observed on Linux 6.18 kvm_pvm
    /// (RingTransitionFaults.ring_fault_iretq_to_ring_3_faults_on_a_bad_cs_ss_or_rip).
    /// </summary>
    public static bool KvmPvmIretqSkipsCsTypeAndRipChecks(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): exception delivery does not check that the IDT gate's code segment is present. A
    /// #UD at CPL 0 through a gate whose selector names a not-present ring-0 code segment (GDT entry 0x48) reaches the
    /// gate's handler — vector 6, frame RIP on the UD2, CS 0x08 — where the CPU raises #NP(0x48 | EXT) (Intel SDM Vol.
    /// 3A 6.12.1.1, 6.13). Observed on Linux 6.18 kvm_pvm
    /// (RingTransitionFaults.ring_fault_delivery_on_a_bad_rsp0_or_an_absent_handler_segment). The rest of the gate's
    /// code segment is used as upstream: a gate to the DPL-3 segment 0x33 runs the handler at CPL 3 on the user stack
    /// (ring_fault_exception_to_a_ring_3_handler_stays_on_the_user_stack), and a non-canonical TSS.RSP0 is #SS, then
    /// #DF through IST1.
    /// </summary>
    public static bool KvmPvmGateSelectorNotChecked(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): SYSRETD (0F 07, 32-bit operand) at CPL 0 returns as SYSRETQ does — RIP = all of
    /// RCX and CS = STAR[63:48] + 16 | 3, 64-bit code — instead of RIP = ECX and CS = STAR[63:48] | 3 as 32-bit
    /// compatibility-mode code (Intel SDM Vol. 2B SYSRET "IF (operand size is 64-bit) … ELSE (* Return to Compatibility
    /// Mode *) RIP ← ECX"; AMD APM Vol. 3 SYSRET the same). Observed on Linux 6.18 kvm_pvm
    /// (RingTransitionFaults.ring_fault_sysret32_and_sysret_at_cpl_3: STAR 0x0020_0008_0000_0000, RCX =
    /// 0xFFFF_FFFF_0010_0020, R11 = 2): the fetch at 0xFFFF_FFFF_0010_0020 at CPL 3 is a #PF whose delivery ends in
    /// #DF(0) with frame RIP 0xFFFF_FFFF_0010_0020, CS 0x33, SS 0x2b, CR2 the same address (upstream: the UD2 at ECX
    /// runs as 32-bit code, #UD from CS 0x23). SYSRETQ at CPL 3 is #GP(0) as upstream.
    /// </summary>
    public static bool KvmPvmSysret32ReturnsTo64BitCode(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): ring 3 of a 64-bit guest runs in host user mode, and MOV r32, CS / MOV r32, SS
    /// there read the host's Linux user selectors, 0x33 (__USER_CS) and 0x2b (__USER_DS), whatever selectors the guest
    /// loaded (Intel SDM Vol. 2A MOV: the selector in the segment register). Observed on Linux 6.18 kvm_pvm
    /// (UserModeObservations.user_mode_mov_from_cs_and_ss_reads_the_loaded_selectors: after an IRETQ to CS 0x43 / SS
    /// 0x3b, DPL-3 descriptors, the reads are 0x33 and 0x2b; the fuzzer's reductions, seed 1 program seeds 1578424138
    /// and 689362942).
    /// </summary>
    public static bool KvmPvmUserSelectorsReadAsLinux(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): ring 3 of a 64-bit guest runs with IF set whatever RFLAGS image the IRETQ that
    /// entered it loaded, and PUSHFQ there reads IF = 1 (upstream: IRET at CPL 0 restores IF from the image; SDM Vol. 2A
    /// IRET, PUSHF). Observed on Linux 6.18 kvm_pvm (UserModeObservations.user_mode_pushfq_reads_the_if_the_iretq_image_set:
    /// image 0x2, PUSHFQ reads IF = 1; the fuzzer's reduction, seed 1 program seed 60707384).
    /// </summary>
    public static bool KvmPvmUserModeRunsWithIf(bool realKernel) =>
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
    /// kvm_pvm (software nested KVM) runs real mode through KVM's instruction emulator, whose __emulate_int_real has
    /// no IVT limit check ("TODO: Add limit checks"): INT n and real-mode exceptions read the 4-byte entry at
    /// IDTR.base + 4n whatever IDTR.limit says (upstream on AMD/Intel hardware: SDM Vol. 2A INT n REAL-ADDRESS-MODE —
    /// an entry beyond the limit is #GP, escalating to #DF and a shutdown). Observed on Linux 6.18 kvm_pvm (C probe):
    /// <c>int 0x21</c> with IDTR.limit 0, 0x20, 0x37 or 0x86 goes to IVT[0x21]; a #GP (word at DS:0xFFFF) with limit 0
    /// to IVT[13].
    /// </summary>
    public static bool KvmPvmRealModeIgnoresIvtLimit(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a real-mode <c>int n</c> with n ≥ 0x80 never completes — KVM_RUN runs until a
    /// signal (-EINTR, KVM_EXIT_INTR) with IP still on the INT and nothing pushed; 0x00–0x7F are delivered (upstream:
    /// every vector goes through the IVT). Observed on Linux 6.18 kvm_pvm (C probe): <c>int 0x80</c>, <c>int 0x81</c>,
    /// <c>int 0xff</c> spin, <c>int 0x7f</c> reaches IVT[0x7f]; an entry also written at linear 0xFFFFFE00 (a slot at
    /// 4 GiB − 4 KiB, where a sign-extended vector would point) did not help.
    /// </summary>
    public static bool KvmPvmRealModeHighSoftwareInterruptsSpin(bool realKernel) =>
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
    /// kvm_pvm (software nested KVM, shadow MMU) never moves the VM statistics pages_4k, pages_2m and pages_1g: it
    /// emulates every instruction of a guest that is not PVM-aware (its own counter insn_emulation counts each one),
    /// so no leaf SPTE is installed for the guest's memory. Upstream counts each leaf as it is installed or zapped
    /// (mmu.c kvm_update_page_stats from mmu_set_spte / tdp_mmu.c handle_changed_spte); with TDP a 2 MiB-aligned slot
    /// over a PMD-mapped THP maps 2M leaves (host_pfn_mapping_level). Observed on Linux 6.18.44 kvm_pvm (C probe
    /// /tmp/thp/lm.c, 2026-12-06): a 64-bit guest (2M and 4K guest pages alike) storing one byte to each 4 KiB page
    /// of an 8 MiB MAP_PRIVATE slot, 2 MiB-aligned and MADV_HUGEPAGE'd (smaps AnonHugePages: 8192 kB), read back
    /// pages_4k = pages_2m = pages_1g = 0, mmu_cache_miss = 1 and insn_emulation = 8195; the same without
    /// MADV_HUGEPAGE (AnonHugePages 0 kB), with KVM_MEM_LOG_DIRTY_PAGES and with a GPA 4 KiB off the host address
    /// modulo 2 MiB. A real-mode or unpaged protected-mode guest: the same zeros. The emulator's TDP profiles count as
    /// upstream; its shadow-MMU preset (this host's) answers the zeros (KvmMain/BinaryStats/VmPageStats.cs).
    /// </summary>
    public static bool KvmPvmPageStatsStayZero(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a page fault raised while an event's frame is pushed (RSP on an unmapped page)
    /// loads no CR2, and pushing an exception's frame it is #DF(0) at once. The CPU loads CR2 for each page fault it
    /// detects (Intel SDM Vol. 3A 4.7, 6.15 Interrupt 14) and delivers a #PF raised while delivering a benign or
    /// contributory event serially (Table 6-5); upstream KVM delivers the first event with its payload
    /// (svm_inject_exception → kvm_deliver_exception_payload) and merges a second #PF into #DF
    /// (kvm_multiple_exception), so CR2 is on the unmapped stack page. Observed on Linux 6.18 kvm_pvm
    /// (PageWalkAndFrameCases, IdtGuest with 48 halting gates, TSS.IST1 on a mapped stack, CR2 0x12345000 from
    /// KVM_SET_SREGS; 2026-12-07):
    /// <list type="bullet">
    /// <item>MOV RSP, 0x40001000; UD2 (or a #GP store to a non-canonical address): #DF gate on IST1 → one delivery, #DF
    /// error 0, RIP on the faulting instruction, RSP 0x40001000, CR2 0x12345000; #PF gate on IST1 (none for #DF) →
    /// KVM_EXIT_SHUTDOWN, nothing delivered, CR2 0x12345000 (the SDM: #PF error 2 delivered on IST1); no IST →
    /// KVM_EXIT_SHUTDOWN, CR2 0x12345000.</item>
    /// <item>KVM_INTERRUPT 0x21 with RSP 0x40001000: #PF gate on IST1 → #PF error 2, RIP on the interrupted HLT, CR2
    /// 0x12345000; #DF gate on IST1 → #DF(0), CR2 0x12345000; no IST → KVM_EXIT_SHUTDOWN, CR2 0x12345000 — the SDM's
    /// vectors, without CR2.</item>
    /// <item>A store to the unmapped 0x50000000 (CR2 loaded with it) on that stack: #DF on IST1 / KVM_EXIT_SHUTDOWN /
    /// #PF on IST1, CR2 0x50000000 each time, as upstream.</item>
    /// </list>
    /// INT n cannot be tried: it fails on its own (KvmPvmSoftwareInterruptsFail). The emulator models all of this with
    /// EmulatorConfig.X86FramePushFaultLeavesCr2, on in its LikeThisHost preset only (X86/Emulate/X86Emulator.Exceptions.cs).
    /// </summary>
    public static bool KvmPvmDoubleFaultFromAFramePushLeavesCr2(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
