// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c kvm_vm_ioctl KVM_ENABLE_CAP: copy the struct in, then kvm_vm_ioctl_enable_cap_generic, which
/// hands every cap it does not own to the arch (kvm_vm_ioctl_enable_cap). The generic caps: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
/// KVM_CAP_HALT_POLL (KvmMain/HaltPolling.cs) and the dirty ring caps.
/// </summary>
internal static class EnableCap
{
    public static long Ioctl(Kvm kvm, IoctlArg arg)
    {
        // copy_from_user(&cap, argp, sizeof(cap)) → -EFAULT; pad[] is never looked at.
        if (!arg.CopyFromUser(out kvm_enable_cap cap)) return Err.EFAULT;
        if (cap.cap == KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) return DirtyLog.EnableManualProtect(kvm, cap);
        // "case KVM_CAP_HALT_POLL": kvm->max_halt_poll_ns, override_halt_poll_ns.
        if (cap.cap == KvmCaps.KVM_CAP_HALT_POLL) return HaltPolling.EnableCap(kvm, cap);
        // The dirty ring (KvmMain/DirtyRing.cs): generic caps, never handed to the arch.
        if (cap.cap is KvmCaps.KVM_CAP_DIRTY_LOG_RING or KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL) return DirtyRing.Enable(kvm, cap);
        if (cap.cap == KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP) return DirtyRing.EnableWithBitmap(kvm, cap);
        return kvm.Arch.EnableCap(kvm, cap);
    }
}
