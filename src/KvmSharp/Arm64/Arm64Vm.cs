// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Arm64;

/// <summary>arm64 VM ioctls (arch/arm64/kvm/arm.c kvm_arch_vm_ioctl).</summary>
public static class Arm64Vm
{
    /// <summary>KVM_ARM_PREFERRED_TARGET: the target (and no features) KVM_ARM_VCPU_INIT should be given.</summary>
    public static kvm_vcpu_init PreferredTarget(this Vm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var init = default(kvm_vcpu_init);
        long rc = vm.Kernel.Ioctl(vm.Handle, KvmArm64Ioctls.KVM_ARM_PREFERRED_TARGET, KvmCall.Bytes(ref init));
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_ARM_PREFERRED_TARGET", $"vm type={vm.Type}");
        return init;
    }
}
