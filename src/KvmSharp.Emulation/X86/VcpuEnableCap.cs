// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl KVM_ENABLE_CAP → kvm_vcpu_ioctl_enable_cap. Of its caps only
/// KVM_CAP_ENFORCE_PV_FEATURE_CPUID is modeled; the Hyper-V ones (SYNIC, SYNIC2, ENLIGHTENED_VMCS, DIRECT_TLBFLUSH,
/// HYPERV_ENFORCE_CPUID) end in -EINVAL here, as every other number does. Observed on this host (kvm_pvm, 6.18):
/// flags 1 → EINVAL, args[0] = 2 and 0 accepted, a VM-level cap (EXIT_HYPERCALL, MANUAL_DIRTY_LOG_PROTECT2) → EINVAL,
/// an unknown cap → EINVAL.
/// </summary>
internal static class VcpuEnableCap
{
    public static long Ioctl(KvmVcpu vcpu, IoctlArg arg)
    {
        // "if (copy_from_user(&cap, argp, sizeof(cap))) goto out" (r = -EFAULT).
        if (!arg.CopyFromUser(out kvm_enable_cap cap)) return Err.EFAULT;
        // "if (cap->flags) return -EINVAL;"
        if (cap.flags != 0) return Err.EINVAL;
        switch (cap.cap)
        {
            case KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID:
                // "vcpu->arch.pv_cpuid.enforce = cap->args[0]; return 0;" — a bool: any non-zero value turns it on;
                // allowed at any time (before or after KVM_SET_CPUID2 and KVM_RUN), and 0 turns it off again.
                vcpu.Cpu.Cpuid.PvEnforce = cap.args[0] != 0;
                return 0;
            default:
                return Err.EINVAL;
        }
    }
}
