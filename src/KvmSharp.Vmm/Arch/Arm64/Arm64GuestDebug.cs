// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// Host single-step of an arm64 micro-VM's vCPU (MicroVmOptions.TraceInstructions), through the SDK's arm64
/// KVM_SET_GUEST_DEBUG (<see cref="Arm64VcpuDebug.SetGuestDebug"/>: the arm64 struct kvm_guest_debug, 520 bytes,
/// request 0x4208AE9B; Documentation/virt/kvm/api.rst 4.59). A step ends KVM_RUN with KVM_EXIT_DEBUG whose
/// kvm_debug_exit_arch (<see cref="VcpuExit.Arm64Debug"/>) holds the ESR, EC 0x32 (ESR_ELx_EC_SOFTSTP_LOW) for a
/// software step. The exit holds no PC: it is read with KVM_GET_ONE_REG.
/// </summary>
internal static class Arm64GuestDebug
{
    /// <summary>arm64 sizeof(struct kvm_guest_debug): control (4), pad (4), four __u64[KVM_ARM_MAX_DBG_REGS = 16].</summary>
    public const int GuestDebugSize = 8 + 4 * KvmArm64GuestDebug.KVM_ARM_MAX_DBG_REGS * sizeof(ulong);

    /// <summary>KVM_SET_GUEST_DEBUG as arm64 encodes it: _IOW(KVMIO, 0x9b, struct kvm_guest_debug) = 0x4208AE9B.</summary>
    public static readonly uint SetGuestDebugRequest = KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64;

    /// <summary>asm/esr.h ESR_ELx_EC_SOFTSTP_LOW: a software step exception from a lower Exception level.</summary>
    public const uint EcSoftStepLow = Arm64DebugExit.SoftwareStepClass;

    /// <summary>KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP.</summary>
    public const uint SingleStepControl = KvmConstants.KVM_GUESTDBG_ENABLE | KvmConstants.KVM_GUESTDBG_SINGLESTEP;

    /// <summary>KVM_SET_GUEST_DEBUG with <paramref name="control"/> and no breakpoint or watchpoint registers.</summary>
    /// <exception cref="Kernel.KvmException">The ioctl failed.</exception>
    public static void SetGuestDebug(Vcpu vcpu, uint control) =>
        vcpu.SetGuestDebug(control switch
        {
            SingleStepControl => Arm64GuestDebugOptions.SingleStep,
            0 => Arm64GuestDebugOptions.Disabled,
            _ => new Arm64GuestDebugOptions { Flags = (GuestDebugFlags)control },
        });

    /// <summary>Single-step from the next KVM_RUN on: each instruction ends it with a software step exit.</summary>
    public static void EnableSingleStep(Vcpu vcpu) => SetGuestDebug(vcpu, SingleStepControl);

    /// <summary>Host debugging off (control 0): guest.c also clears DBG_SS_ACTIVE_PENDING.</summary>
    public static void Disable(Vcpu vcpu) => SetGuestDebug(vcpu, 0);

    /// <summary>The ESR of an arm64 KVM_EXIT_DEBUG (debug.arch.hsr, and hsr_high when the kernel marks it valid).</summary>
    public static ulong Esr(VcpuExit exit) => exit.Arm64Debug.Esr;

    /// <summary>True for a KVM_EXIT_DEBUG whose ESR class is a software step (EC 0x32).</summary>
    public static bool IsSingleStep(VcpuExit exit) => exit.IsArm64SoftwareStep;

    /// <summary>
    /// True for a KVM_EXIT_DEBUG of a guest BRK (EC 0x3C): with any host debugging on (vcpu->guest_debug non-zero)
    /// arm64 KVM routes every software debug exception to EL2 (debug.c kvm_arm_setup_mdcr_el2 sets MDCR_EL2.TDE) and
    /// handle_exit.c kvm_handle_guest_debug hands the BRK to userspace, PC still on it — whether the VMM put it there
    /// or not. The micro-VM's VMM sets no breakpoints: every BRK is the guest's.
    /// </summary>
    public static bool IsGuestBrk(VcpuExit exit) =>
        exit.Reason == KvmExitReason.KVM_EXIT_DEBUG && exit.Arm64Debug.IsBrk;

    /// <summary>
    /// Gives a BRK that exited to the host (<see cref="IsGuestBrk"/>) back to the guest as the exception it would have
    /// taken without host debugging, as QEMU's kvm_arm_handle_debug does for a BRK that is not its own (it sets the
    /// syndrome and runs arm_cpu_do_interrupt): Arm ARM AArch64.TakeException to EL1 — ESR_EL1 = the exit's ESR (EC
    /// 0x3C, IL, the immediate), ELR_EL1 = the BRK, SPSR_EL1 = PSTATE, PSTATE = EL1h with D, A, I, F masked, NZCV kept,
    /// PAN set when the CPU has it and SCTLR_EL1.SPAN is 0, PC = VBAR_EL1 + 0x200 from EL1h (0x0 from EL1t, 0x400 from
    /// EL0). Returns that PC. FAR_EL1 is left alone (a BRK sets none).
    /// </summary>
    /// <exception cref="Kernel.KvmException">A KVM_GET/SET_ONE_REG failed.</exception>
    public static ulong ReflectBrk(Vcpu vcpu, VcpuExit exit)
    {
        ulong pstate = vcpu.GetPstate(), pc = vcpu.GetPc();
        ulong offset = (pstate & PstateModeMask) == PstateEl0 ? 0x400UL : (pstate & PstateSpSel) != 0 ? 0x200UL : 0UL;
        ulong target = vcpu.GetOneReg(KvmArm64SysRegs.VBAR_EL1) + offset;
        bool hasPan = ((vcpu.GetOneReg(IdAa64Mmfr1El1) >> 20) & 0xF) != 0;
        ulong pan = !hasPan ? 0 : (vcpu.GetOneReg(KvmArm64SysRegs.SCTLR_EL1) & SctlrSpan) == 0 ? PstatePan : pstate & PstatePan;
        vcpu.SetOneReg(KvmArm64SysRegs.ESR_EL1, exit.Arm64Debug.Esr);
        vcpu.SetOneReg(KvmArm64Regs.ElrEl1, pc);
        vcpu.SetOneReg(KvmArm64Regs.SpsrEl1, pstate);
        vcpu.SetOneReg(KvmArm64Regs.Pstate, (pstate & PstateNzcv) | PstateDaif | PstateEl1h | pan);
        vcpu.SetPc(target);
        return target;
    }

    // PSTATE as KVM's core register holds it (SPSR layout): NZCV 31:28, PAN 22, D A I F 9:6, M[3:0] with M[0] = SPSel.
    private const ulong PstateNzcv = 0xF000_0000, PstatePan = 1UL << 22, PstateDaif = 0x3C0, PstateEl1h = 0x5,
        PstateModeMask = 0xF, PstateEl0 = 0x0, PstateSpSel = 0x1;

    /// <summary>SCTLR_EL1.SPAN (bit 23): 0 = PSTATE.PAN is set on an exception to EL1.</summary>
    private const ulong SctlrSpan = 1UL << 23;

    /// <summary>ID_AA64MMFR1_EL1 (op0 3, op1 0, CRn 0, CRm 7, op2 1); bits 23:20 PAN.</summary>
    private static readonly ulong IdAa64Mmfr1El1 = KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 0, 7, 1);

    /// <summary>The PC the vCPU stopped at (KVM_GET_ONE_REG of the core register PC).</summary>
    public static ulong Pc(Vcpu vcpu) => vcpu.GetPc();
}
