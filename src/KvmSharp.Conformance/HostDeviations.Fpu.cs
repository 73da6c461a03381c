// SPDX-License-Identifier: MIT
// Host deviations in the FPU state instructions (Conformance/Cases/FpuControlRules.cs).
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
    /// <summary>
    /// kvm_pvm (software nested KVM) runs FXSAVE/FXRSTOR through KVM's instruction emulator, whose check_fxsr starts
    /// with "if (!ctxt->ops->guest_has_fxsr(ctxt)) return emulate_ud(ctxt)": without a CPUID table (or one without
    /// CPUID.1:EDX.FXSR) FXSAVE64 is #UD, RIP on it, memory untouched; in 32-bit protected mode without an IDT the
    /// same #UD ends in KVM_EXIT_SHUTDOWN. Upstream SVM/VMX intercept neither instruction: the CPU runs them.
    /// Observed on Linux 6.18 kvm_pvm (EPYC): fxsave64/fxsave/fxrstor64 in a 64-bit guest with no KVM_SET_CPUID2.
    /// </summary>
    public static bool KvmPvmFxsaveWithoutFxsrIsUndefined(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): FXSAVE and FXSAVE64 in a 64-bit guest write the whole 512-byte area, bytes
    /// 416..511 as zeros — including 464..511, which the SDM (Vol. 2A FXSAVE) says the processor never writes — and an
    /// operand not 16-byte aligned is written there instead of raising #GP(0) (FXRSTOR64 of one is #GP(0) as upstream); FIP/FDP come out in the 32-bit format
    /// (FXSAVE64 of FIP 0x1122334455667788 writes 0x55667788, FCS 0). Upstream emulate.c em_fxsave zeroes a local
    /// fxregs_state, runs the host's (32-bit format) "fxsave" on it and refuses 64-bit mode (check_fxsr: "if
    /// (ctxt->mode >= X86EMUL_MODE_PROT64) return X86EMUL_UNHANDLEABLE"); kvm_pvm evidently handles 64-bit mode by
    /// writing all 512 bytes of that buffer. In 32-bit protected mode it writes fxstate_size bytes as upstream's emulator
    /// (288 with CR4.OSFXSR, 160 without), which is what FpuControlRules.fxsave_in_protected_mode compares. Observed
    /// on Linux 6.18 kvm_pvm (EPYC) with the supported CPUID table set.
    /// </summary>
    public static bool KvmPvmFxsaveWritesWholeArea(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) runs x87 and SSE control instructions through KVM's instruction emulator, which has
    /// FNINIT, FNSTCW m16 and FNSTSW m16 (emulate.c em_fninit, em_fnstcw, em_fnstsw: the host CPU's instruction on the
    /// guest FPU state, #NM with CR0.TS or CR0.EM) and FXSAVE/FXRSTOR, but neither FLDCW, FNCLEX, FNSTSW AX, FWAIT nor
    /// LDMXCSR: each ends KVM_RUN with KVM_EXIT_INTERNAL_ERROR, RIP on the instruction, nothing delivered (FWAIT also
    /// with CR0.MP|TS set, where the CPU raises #NM). Upstream SVM/VMX intercept none of them. Observed on Linux 6.18
    /// kvm_pvm (EPYC) with and without the supported CPUID table.
    /// </summary>
    public static bool KvmPvmX87ControlFails(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
