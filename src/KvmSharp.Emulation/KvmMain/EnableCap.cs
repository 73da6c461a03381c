// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c kvm_vm_ioctl KVM_ENABLE_CAP: copy the struct in, then kvm_vm_ioctl_enable_cap_generic, which
/// hands every cap it does not own to the arch (kvm_vm_ioctl_enable_cap). The generic caps (KVM_CAP_HALT_POLL,
/// the dirty-log ones) are not modeled here, so they reach the arch too and end in its -EINVAL.
/// </summary>
internal static class EnableCap
{
    public static long Ioctl(Kvm kvm, IoctlArg arg)
    {
        // copy_from_user(&cap, argp, sizeof(cap)) → -EFAULT; pad[] is never looked at.
        if (!arg.CopyFromUser(out kvm_enable_cap cap)) return Err.EFAULT;
        return kvm.Arch.EnableCap(kvm, cap);
    }
}
