// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// KVM_ARM_SET_COUNTER_OFFSET (arch/arm64/kvm/arm.c kvm_arch_vm_ioctl → arch_timer.c kvm_vm_ioctl_set_counter_offset,
/// 6.4+; "KVM: arm64: timers: Allow userspace to set the global counter offset"): one offset for the virtual and the
/// physical counter of every vCPU, after which KVM_SET_ONE_REG of TIMER_CNT / PTIMER_CNT is ignored (Arm64Timer.Set).
/// </summary>
internal static class Arm64CounterOffset
{
    /// <summary>
    /// arch_timer.c kvm_timer_vcpu_init (kvm_arch_vcpu_create, every KVM_CREATE_VCPU): "Synchronize offsets across
    /// timers of a VM if not already provided": unless KVM_ARCH_FLAG_VM_COUNTER_OFFSET is set,
    /// "timer_set_offset(vcpu_vtimer(vcpu), kvm_phys_timer_read()); timer_set_offset(vcpu_ptimer(vcpu), 0)" — the
    /// VM-wide offsets, so each new vCPU restarts the virtual counter of every vCPU near 0 and undoes earlier
    /// TIMER_CNT / PTIMER_CNT writes (the reset KVM_ARM_SET_COUNTER_OFFSET exists to avoid).
    /// </summary>
    public static void VcpuCreated(KvmVcpu vcpu)
    {
        if (vcpu.Kvm.Kernel.Config.Architecture != Architecture.Arm64) return;
        var offsets = Arm64VmState.Of(vcpu.Kvm).TimerOffsets;
        lock (offsets)
        {
            if (offsets.VmCounterOffset) return;
            offsets.Voffset = Arm64Timer.PhysicalCounter();
            offsets.Poffset = 0;
        }
    }

    public static long Ioctl(Kvm kvm, IoctlArg arg)
    {
        // "if (copy_from_user(&offset, argp, sizeof(offset))) return -EFAULT;"
        if (!arg.CopyFromUser(out kvm_arm_counter_offset offset)) return Err.EFAULT;
        // kvm_vm_ioctl_set_counter_offset: "if (offset->reserved) return -EINVAL;"
        if (offset.reserved != 0) return Err.EINVAL;
        lock (kvm.Kernel.SyncRoot)
        {
            // mutex_lock(&kvm->lock); "if (!kvm_trylock_all_vcpus(kvm)) { … } else ret = -EBUSY": a vCPU whose mutex
            // is held (an ioctl in progress, typically KVM_RUN) makes the call fail; having run before does not.
            var locked = new List<KvmVcpu>();
            try
            {
                foreach (var v in kvm.Vcpus)
                {
                    if (!v.Mutex.TryEnter()) return Err.EBUSY;
                    locked.Add(v);
                }
                var offsets = Arm64VmState.Of(kvm).TimerOffsets;
                lock (offsets)
                {
                    // set_bit(KVM_ARCH_FLAG_VM_COUNTER_OFFSET); "the offset applies to both the virtual and physical views".
                    offsets.VmCounterOffset = true;
                    offsets.Voffset = offset.counter_offset;
                    offsets.Poffset = offset.counter_offset;
                }
                return 0;
            }
            finally
            {
                foreach (var v in locked) v.Mutex.Exit();
            }
        }
    }
}
