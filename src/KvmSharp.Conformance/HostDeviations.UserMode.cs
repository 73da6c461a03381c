// SPDX-License-Identifier: MIT
// Host deviations at ring 3 (host user mode, the host's CR4) and in ring transitions (SYSCALL/SYSRET, IRETQ, far RET).
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
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
}
