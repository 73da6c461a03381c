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

    /// <summary>The PC the vCPU stopped at (KVM_GET_ONE_REG of the core register PC).</summary>
    public static ulong Pc(Vcpu vcpu) => vcpu.GetPc();
}
