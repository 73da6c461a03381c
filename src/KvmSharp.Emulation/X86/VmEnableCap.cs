// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c kvm_vm_ioctl_enable_cap, for the caps the emulator models. A failed call changes nothing.
/// Observed on this host (kvm_pvm, 6.18) exactly as below: flags 1 → EINVAL, mask bits outside 0x1000 → EINVAL,
/// unknown cap → EINVAL, args[1..3] ignored, enabling after KVM_CREATE_VCPU allowed.
/// </summary>
internal static class VmEnableCap
{
    public static long Apply(Kvm kvm, in kvm_enable_cap cap)
    {
        // "if (cap->flags) return -EINVAL;" before the switch, for every cap.
        if (cap.flags != 0) return Err.EINVAL;
        switch (cap.cap)
        {
            case KvmCaps.KVM_CAP_EXIT_HYPERCALL:
                // "if (cap->args[0] & ~KVM_EXIT_HYPERCALL_VALID_MASK) r = -EINVAL": no kvm->created_vcpus check, so
                // it may change while vCPUs run; the new mask replaces the old one.
                if ((cap.args[0] & ~KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK) != 0) return Err.EINVAL;
                kvm.HypercallExitEnabled = cap.args[0];
                return 0;
            case KvmCaps.KVM_CAP_EXCEPTION_PAYLOAD:
                // "kvm->arch.exception_payload_enabled = cap->args[0]; r = 0;" — a bool; 0 turns it off again.
                kvm.ExceptionPayloadEnabled = cap.args[0] != 0;
                return 0;
            case KvmCaps.KVM_CAP_X86_TRIPLE_FAULT_EVENT:
                // "kvm->arch.triple_fault_event = cap->args[0]; r = 0;" — a bool: no kvm->created_vcpus check (observed:
                // enabling after KVM_CREATE_VCPU works), any non-zero args[0] turns it on (observed: 0x100), 0 off.
                kvm.TripleFaultEvent = cap.args[0] != 0;
                return 0;
            case KvmCaps.KVM_CAP_MSR_PLATFORM_INFO:
                // "kvm->arch.guest_can_read_msr_platform_info = cap->args[0]; r = 0;" — a bool: no kvm->created_vcpus
                // check, any non-zero args[0] allows the guest's RDMSR (observed: 0x100), 0 forbids it; args[1..3] ignored.
                kvm.GuestCanReadMsrPlatformInfo = cap.args[0] != 0;
                return 0;
            case KvmCaps.KVM_CAP_MAX_VCPU_ID:
                // "if (cap->args[0] > KVM_MAX_VCPU_IDS) break;" (EINVAL); then, under kvm->lock, "if
                // (kvm->arch.bsp_vcpu_id > cap->args[0]) ;" (bsp_vcpu_id is 0 here: no KVM_SET_BOOT_CPU_ID), "else if
                // (kvm->arch.max_vcpu_ids == cap->args[0]) r = 0; else if (!kvm->arch.max_vcpu_ids) { max_vcpu_ids =
                // args[0]; r = 0; }" — once set (or made KVM_MAX_VCPU_IDS by the first KVM_CREATE_VCPU) only the same
                // value is accepted again (probed: 5000 EINVAL, 4 then 4 again 0, then 8 EINVAL and vCPU 4 EINVAL;
                // after a first vCPU, 8 EINVAL and 4096 0).
                if (cap.args[0] > (ulong)kvm.Arch.MaxVcpuIds) return Err.EINVAL;
                if (kvm.X86MaxVcpuIds == cap.args[0]) return 0;
                if (kvm.X86MaxVcpuIds != 0) return Err.EINVAL;
                kvm.X86MaxVcpuIds = cap.args[0];
                return 0;
            case KvmCaps.KVM_CAP_X86_USER_SPACE_MSR:
                return MsrFilter.EnableUserSpaceMsr(kvm, cap);
            case KvmCaps.KVM_CAP_DISABLE_QUIRKS2:
                return Quirks.Disable(kvm, cap, checkSupported: true);
            case KvmCaps.KVM_CAP_DISABLE_QUIRKS:
                return Quirks.Disable(kvm, cap, checkSupported: false);
            case KvmCaps.KVM_CAP_X2APIC_API:
                // KVM_CAP_X2APIC_API: 32-bit APIC IDs and the broadcast quirk (X86/Irqchip/X2apicApi.cs).
                return Irqchip.X2apicApi.Enable(kvm, cap);
            case KvmCaps.KVM_CAP_SPLIT_IRQCHIP when kvm.Kernel.Config.X86InKernelIrqchip:
                // Local APICs in kernel, PIC and IOAPIC in userspace (X86/Irqchip/IrqchipIoctls.EnableSplit).
                return Irqchip.IrqchipIoctls.EnableSplit(kvm, cap);
            default:
                // "default: r = -EINVAL" (the other x86 caps are not modeled).
                return Err.EINVAL;
        }
    }
}
