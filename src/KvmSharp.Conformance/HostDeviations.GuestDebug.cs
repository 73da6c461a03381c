// SPDX-License-Identifier: MIT
// Host deviations in guest debugging (KVM_SET_GUEST_DEBUG: software breakpoints, single-step).
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
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
}
