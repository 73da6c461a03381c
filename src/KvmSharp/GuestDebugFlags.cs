// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// The KVM_GUESTDBG_* control bits of KVM_SET_GUEST_DEBUG (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h).
/// Nothing but the injections takes effect without <see cref="Enable"/>; <see cref="Kvm.SupportedGuestDebugFlags"/>
/// says which bits the kernel knows (KVM_CAP_SET_GUEST_DEBUG2).
/// </summary>
[Flags]
public enum GuestDebugFlags : uint
{
    /// <summary>No host debugging: the vCPU runs as without KVM_SET_GUEST_DEBUG.</summary>
    None = 0,

    /// <summary>KVM_GUESTDBG_ENABLE: host debugging is on; the other bits select what exits.</summary>
    Enable = KvmConstants.KVM_GUESTDBG_ENABLE,

    /// <summary>KVM_GUESTDBG_SINGLESTEP: every completed instruction ends KVM_RUN with KVM_EXIT_DEBUG (#DB, DR6.BS).</summary>
    SingleStep = KvmConstants.KVM_GUESTDBG_SINGLESTEP,

    /// <summary>
    /// KVM_GUESTDBG_USE_SW_BP: a guest INT3 ends KVM_RUN with KVM_EXIT_DEBUG (#BP) instead of reaching the guest
    /// (upstream VMX/SVM and the emulated kernel; this kvm_pvm host does not intercept INT3 at all).
    /// </summary>
    UseSoftwareBreakpoints = KvmConstants.KVM_GUESTDBG_USE_SW_BP,

    /// <summary>
    /// KVM_GUESTDBG_USE_HW_BP: the debug registers passed along (DR0–DR3 addresses, DR7 controls) are the host's
    /// breakpoints; a hit ends KVM_RUN with KVM_EXIT_DEBUG (#DB). The guest keeps seeing its own DR0–DR7.
    /// </summary>
    UseHardwareBreakpoints = KvmConstants.KVM_GUESTDBG_USE_HW_BP,

    /// <summary>KVM_GUESTDBG_INJECT_DB: queue a #DB for the guest (EBUSY while another exception is pending); works without <see cref="Enable"/>.</summary>
    InjectDebugException = KvmConstants.KVM_GUESTDBG_INJECT_DB,

    /// <summary>KVM_GUESTDBG_INJECT_BP: queue a #BP for the guest (EBUSY while another exception is pending); works without <see cref="Enable"/>.</summary>
    InjectBreakpointException = KvmConstants.KVM_GUESTDBG_INJECT_BP,

    /// <summary>KVM_GUESTDBG_BLOCKIRQ: no interrupts are injected while debugging (x86, 5.15+).</summary>
    BlockInterrupts = KvmConstants.KVM_GUESTDBG_BLOCKIRQ,
}
