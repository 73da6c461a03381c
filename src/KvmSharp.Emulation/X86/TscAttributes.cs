// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// x86 vCPU device attributes (KVM_CAP_VCPU_ATTRIBUTES, since 5.16): arch/x86/kvm/x86.c kvm_vcpu_ioctl_device_attr
/// and kvm_arch_tsc_has/get/set_attr. The one group is KVM_VCPU_TSC_CTRL, with the one attribute
/// KVM_VCPU_TSC_OFFSET: the vCPU's l1_tsc_offset, which a guest's WRMSR to IA32_TSC also moves — so a VMM that
/// resets a vCPU for a new user restores the TSC through it (a host write of IA32_TSC would be a new synchronisation).
/// </summary>
internal static class TscAttributes
{
    public static bool IsRequest(uint request) =>
        request == KvmIoctls.KVM_HAS_DEVICE_ATTR || request == KvmIoctls.KVM_GET_DEVICE_ATTR || request == KvmIoctls.KVM_SET_DEVICE_ATTR;

    public static long Ioctl(KvmMain.Kvm kvm, Vcpu.KvmVcpu vcpu, uint request, IoctlArg arg)
    {
        var cpu = vcpu.Cpu;
        // if (copy_from_user(&attr, argp, sizeof(attr))) return -EFAULT; attr.flags is not looked at.
        if (!arg.CopyFromUser(out kvm_device_attr attr)) return Err.EFAULT;
        // if (attr.group != KVM_VCPU_TSC_CTRL) return -ENXIO; then each handler: default → -ENXIO.
        if (attr.group != KvmConstants.KVM_VCPU_TSC_CTRL || attr.attr != KvmConstants.KVM_VCPU_TSC_OFFSET) return Err.ENXIO;
        if (request == KvmIoctls.KVM_HAS_DEVICE_ATTR) return 0;
        if (request == KvmIoctls.KVM_GET_DEVICE_ATTR)
        {
            // kvm_arch_tsc_get_attr: put_user(vcpu->arch.l1_tsc_offset, uaddr) → -EFAULT.
            return UserMemory.CopyToUser(kvm.Kernel.Config, attr.addr, unchecked((ulong)cpu.Msrs.TscOffset)) ? 0 : Err.EFAULT;
        }
        // kvm_arch_tsc_set_attr: get_user(offset, uaddr) → -EFAULT, then __kvm_synchronize_tsc(vcpu, offset, …): the
        // guest TSC continues from host TSC + offset, in the current generation only when the offset is the last one
        // synchronised (X86/TscSync.cs). Any value is taken (the offset is a u64; no range check).
        if (!UserMemory.CopyFromUser(kvm.Kernel.Config, attr.addr, out ulong offset)) return Err.EFAULT;
        kvm.Clock.SetTscOffset(vcpu.Id, cpu.Msrs, offset);
        return 0;
    }
}
