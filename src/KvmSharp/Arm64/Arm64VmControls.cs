// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Kernel;

namespace KvmSharp.Arm64;

/// <summary>
/// arm64 VM-wide controls a VMM sets before (or, for the counter offset, between) runs: PSCI SYSTEM_SUSPEND exits
/// (KVM_CAP_ARM_SYSTEM_SUSPEND), the guest counter offset (KVM_CAP_COUNTER_OFFSET / KVM_ARM_SET_COUNTER_OFFSET) and
/// writable implementation ID registers (KVM_CAP_ARM_WRITABLE_IMP_ID_REGS); Documentation/virt/kvm/api.rst.
/// </summary>
public static class Arm64VmControls
{
    /// <summary>KVM_CHECK_EXTENSION(KVM_CAP_ARM_SYSTEM_SUSPEND) on the VM: PSCI SYSTEM_SUSPEND exits can be enabled.</summary>
    public static bool SupportsSystemSuspend(this Vm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        return vm.CheckExtension(KvmArm64Constants.KVM_CAP_ARM_SYSTEM_SUSPEND) > 0;
    }

    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_ARM_SYSTEM_SUSPEND): PSCI_FEATURES then reports SYSTEM_SUSPEND, and the guest's
    /// SYSTEM_SUSPEND call ends KVM_RUN with KVM_EXIT_SYSTEM_EVENT of type KVM_SYSTEM_EVENT_SUSPEND, the vCPU's
    /// registers untouched (x1 = entry point, x2 = context id). The VMM implements the suspend, typically by making the
    /// vCPU <c>KVM_MP_STATE_SUSPENDED</c> and running it until it wakes.
    /// </summary>
    /// <exception cref="KvmException">EINVAL on kernels without the capability.</exception>
    public static void EnableSystemSuspend(this Vm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        vm.EnableCapability(KvmArm64Constants.KVM_CAP_ARM_SYSTEM_SUSPEND);
    }

    /// <summary>KVM_CHECK_EXTENSION(KVM_CAP_COUNTER_OFFSET) on the VM: <see cref="SetCounterOffset"/> is available.</summary>
    public static bool SupportsCounterOffset(this Vm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        return vm.CheckExtension(KvmArm64CounterOffset.KVM_CAP_COUNTER_OFFSET) > 0;
    }

    /// <summary>
    /// KVM_ARM_SET_COUNTER_OFFSET: every vCPU's virtual and physical counter (CNTVCT_EL0, CNTPCT_EL0) read the host
    /// counter minus <paramref name="offset"/>. Once used, KVM_SET_ONE_REG of the counter registers
    /// (KVM_REG_ARM_TIMER_CNT / KVM_REG_ARM_PTIMER_CNT) is ignored for the rest of the VM's life.
    /// </summary>
    /// <exception cref="KvmException">EBUSY while a vCPU of the VM is inside an ioctl (KVM_RUN), EINVAL on kernels
    /// without KVM_CAP_COUNTER_OFFSET.</exception>
    public static void SetCounterOffset(this Vm vm, ulong offset)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var arg = new kvm_arm_counter_offset { counter_offset = offset };
        long rc = vm.Kernel.Ioctl(vm.Handle, KvmArm64Ioctls.KVM_ARM_SET_COUNTER_OFFSET, KvmCall.Bytes(ref arg));
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_ARM_SET_COUNTER_OFFSET", $"counter_offset=0x{offset:X}");
    }

    /// <summary>KVM_CHECK_EXTENSION(KVM_CAP_ARM_WRITABLE_IMP_ID_REGS) on the VM (Linux 6.15+).</summary>
    public static bool SupportsWritableImplementationIdRegisters(this Vm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        return vm.CheckExtension(KvmArm64IdRegs.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS) > 0;
    }

    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_ARM_WRITABLE_IMP_ID_REGS): MIDR_EL1, REVIDR_EL1 and AIDR_EL1 become writable through
    /// KVM_SET_ONE_REG (VM-wide values, within each register's writable mask) until a vCPU of the VM has run, after
    /// which a different value is EBUSY. Must be called before the first vCPU is created.
    /// </summary>
    /// <exception cref="KvmException">EINVAL once a vCPU exists or on kernels without the capability.</exception>
    public static void EnableWritableImplementationIdRegisters(this Vm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        vm.EnableCapability(KvmArm64IdRegs.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS);
    }
}
