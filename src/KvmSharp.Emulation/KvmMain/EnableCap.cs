// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c kvm_vm_ioctl KVM_ENABLE_CAP: copy the struct in, then kvm_vm_ioctl_enable_cap_generic, which
/// hands every cap it does not own to the arch (kvm_vm_ioctl_enable_cap). Of the generic caps only
/// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and the dirty ring caps are modeled; the others (KVM_CAP_HALT_POLL) reach the
/// arch and end in its -EINVAL.
/// </summary>
internal static class EnableCap
{
    public static long Ioctl(Kvm kvm, IoctlArg arg)
    {
        // copy_from_user(&cap, argp, sizeof(cap)) → -EFAULT; pad[] is never looked at.
        if (!arg.CopyFromUser(out kvm_enable_cap cap)) return Err.EFAULT;
        if (cap.cap == KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) return DirtyLog.EnableManualProtect(kvm, cap);
        // The dirty ring (KvmMain/DirtyRing.cs): generic caps, never handed to the arch.
        if (cap.cap is KvmCaps.KVM_CAP_DIRTY_LOG_RING or KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL) return DirtyRing.Enable(kvm, cap);
        if (cap.cap == KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP) return DirtyRing.EnableWithBitmap(kvm, cap);
        return kvm.Arch.EnableCap(kvm, cap);
    }
}
