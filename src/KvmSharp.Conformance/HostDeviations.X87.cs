// SPDX-License-Identifier: MIT
// Host deviations in the x87 data instructions (Conformance/Cases/X87ArithmeticCases.cs).
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
    /// <summary>
    /// kvm_pvm (software nested KVM) runs a guest's x87 instructions through KVM's instruction emulator, which has no
    /// x87 arithmetic, loads or stores (emulate.c's escape tables hold only FNINIT, FNSTCW and FNSTSW: em_fninit,
    /// em_fnstcw, em_fnstsw) and not FLDCW either (<see cref="KvmPvmX87ControlFails"/>): the sweep's first guest ends
    /// KVM_RUN with KVM_EXIT_INTERNAL_ERROR, nothing delivered (which instruction it stops on is not asserted). Upstream SVM/VMX intercept no x87
    /// instruction: the CPU runs them. Observed on Linux 6.18 kvm_pvm (EPYC).
    /// </summary>
    public static bool KvmPvmX87ArithmeticFails(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
