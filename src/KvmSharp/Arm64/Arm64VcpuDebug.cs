// SPDX-License-Identifier: MIT

namespace KvmSharp.Arm64;

/// <summary>
/// Host debugging of an arm64 vCPU (Documentation/virt/kvm/api.rst 4.59 KVM_SET_GUEST_DEBUG, arch/arm64/kvm/guest.c
/// kvm_arch_vcpu_ioctl_set_guest_debug): the arm64 <c>struct kvm_guest_debug</c> (520 bytes, request 0x4208AE9B), and
/// KVM_EXIT_DEBUG exits read with <see cref="VcpuExit.Arm64Debug"/>.
/// </summary>
public static class Arm64VcpuDebug
{
    /// <summary>
    /// KVM_SET_GUEST_DEBUG with the arm64 struct. With <see cref="GuestDebugFlags.Enable"/> the selected events end
    /// <see cref="Vcpu.Run"/> with KVM_EXIT_DEBUG (<see cref="VcpuExit.Arm64Debug"/>: EC 0x32 after each instruction
    /// for <see cref="GuestDebugFlags.SingleStep"/>, EC 0x3C at a BRK for UseSoftwareBreakpoints, EC 0x30/0x34 for
    /// the hardware breakpoints/watchpoints with UseHardwareBreakpoints); without it debugging is off.
    /// </summary>
    /// <param name="vcpu">The arm64 vCPU.</param>
    /// <param name="options">The control bits and the hardware breakpoints and watchpoints.</param>
    /// <exception cref="KvmSharp.Kernel.KvmException">EINVAL: a control bit outside ENABLE | SINGLESTEP | USE_SW_BP |
    /// USE_HW (0x30003), e.g. x86's INJECT_DB; EINVAL too on a kernel that is not arm64.</exception>
    public static void SetGuestDebug(this Vcpu vcpu, Arm64GuestDebugOptions options)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ArgumentNullException.ThrowIfNull(options);
        var dbg = options.ToAbi();
        vcpu.SetGuestDebugArm64(ref dbg);
    }

    /// <summary>Single-step from the next <see cref="Vcpu.Run"/> on: each instruction ends it with an EC 0x32 debug exit.</summary>
    /// <param name="vcpu">The arm64 vCPU.</param>
    /// <exception cref="KvmSharp.Kernel.KvmException">The ioctl failed.</exception>
    public static void EnableArm64SingleStep(this Vcpu vcpu) => vcpu.SetGuestDebug(Arm64GuestDebugOptions.SingleStep);

    /// <summary>KVM_SET_GUEST_DEBUG with control 0: host debugging off (guest.c also clears DBG_SS_ACTIVE_PENDING).</summary>
    /// <param name="vcpu">The arm64 vCPU.</param>
    /// <exception cref="KvmSharp.Kernel.KvmException">The ioctl failed.</exception>
    public static void DisableArm64GuestDebug(this Vcpu vcpu) => vcpu.SetGuestDebug(Arm64GuestDebugOptions.Disabled);
}
