// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Kernel;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// Host single-step of an arm64 micro-VM's vCPU (MicroVmOptions.TraceInstructions), as the arm64 KVM uAPI has it
/// (Documentation/virt/kvm/api.rst 4.59 KVM_SET_GUEST_DEBUG; arch/arm64/include/uapi/asm/kvm.h): the ioctl carries the
/// arm64 struct kvm_guest_debug — control, pad, then kvm_guest_debug_arch's dbg_bcr/bvr/wcr/wvr[16], 520 bytes, so
/// the request number differs from x86's 72-byte one (<see cref="Vcpu.SetGuestDebug"/> encodes x86's) — and a step
/// ends KVM_RUN with KVM_EXIT_DEBUG whose kvm_debug_exit_arch is { __u32 hsr; __u32 hsr_high; __u64 far; }: the ESR,
/// EC 0x32 (ESR_ELx_EC_SOFTSTP_LOW) for a software step. The exit holds no PC: it is read with KVM_GET_ONE_REG.
/// </summary>
internal static class Arm64GuestDebug
{
    /// <summary>arm64 sizeof(struct kvm_guest_debug): control (4), pad (4), four __u64[KVM_ARM_MAX_DBG_REGS = 16].</summary>
    public const int GuestDebugSize = 8 + 4 * 16 * sizeof(ulong);

    /// <summary>KVM_SET_GUEST_DEBUG as arm64 encodes it: _IOW(KVMIO, 0x9b, struct kvm_guest_debug) = 0x4208AE9B.</summary>
    public static readonly uint SetGuestDebugRequest = IoctlEncoding._IOW(KvmIoctls.KVMIO, 0x9b, GuestDebugSize);

    /// <summary>asm/esr.h ESR_ELx_EC_SOFTSTP_LOW: a software step exception from a lower Exception level.</summary>
    public const uint EcSoftStepLow = 0x32;

    /// <summary>KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP.</summary>
    public const uint SingleStepControl = KvmConstants.KVM_GUESTDBG_ENABLE | KvmConstants.KVM_GUESTDBG_SINGLESTEP;

    /// <summary>KVM_SET_GUEST_DEBUG with <paramref name="control"/> and no breakpoint or watchpoint registers.</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public static void SetGuestDebug(Vcpu vcpu, uint control)
    {
        Span<byte> dbg = stackalloc byte[GuestDebugSize];
        dbg.Clear();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(dbg, control);
        long rc = vcpu.Vm.Kernel.Ioctl(vcpu.Handle, SetGuestDebugRequest, dbg);
        if (rc < 0 && rc >= -4095) throw new KvmException("KVM_SET_GUEST_DEBUG", (int)-rc, $"vcpu={vcpu.Id} control=0x{control:X} (arm64)");
    }

    /// <summary>Single-step from the next KVM_RUN on: each instruction ends it with a software step exit.</summary>
    public static void EnableSingleStep(Vcpu vcpu) => SetGuestDebug(vcpu, SingleStepControl);

    /// <summary>Host debugging off (control 0): guest.c also clears DBG_SS_ACTIVE_PENDING.</summary>
    public static void Disable(Vcpu vcpu) => SetGuestDebug(vcpu, 0);

    /// <summary>
    /// The ESR of an arm64 KVM_EXIT_DEBUG: debug.arch.hsr sits where x86's kvm_debug_exit_arch.exception does
    /// (kvm_run offset 32), so <see cref="VcpuExit.DebugException"/> reads it.
    /// </summary>
    public static uint Esr(VcpuExit exit) => exit.DebugException;

    /// <summary>True for a KVM_EXIT_DEBUG whose ESR class is a software step (EC 0x32).</summary>
    public static bool IsSingleStep(VcpuExit exit) =>
        !exit.Interrupted && exit.Reason == KvmExitReason.KVM_EXIT_DEBUG && Esr(exit) >> 26 == EcSoftStepLow;

    /// <summary>The PC the vCPU stopped at (KVM_GET_ONE_REG of the core register PC).</summary>
    public static ulong Pc(Vcpu vcpu) => vcpu.GetPc();
}
