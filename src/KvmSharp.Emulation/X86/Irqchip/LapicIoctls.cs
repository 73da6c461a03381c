// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// x86.c kvm_arch_vcpu_ioctl KVM_GET_LAPIC / KVM_SET_LAPIC and the in-kernel-irqchip half of KVM_INTERRUPT
/// (kvm_vcpu_ioctl_interrupt). Probed on this host by Conformance/Cases/IrqchipRules.cs.
/// </summary>
internal static class LapicIoctls
{
    /// <summary>
    /// KVM_GET_LAPIC: "if (!lapic_in_kernel(vcpu)) goto out" with r = -EINVAL; kvm_vcpu_ioctl_get_lapic: "if
    /// (vcpu-&gt;arch.apic-&gt;guest_apic_protected) return -EINVAL" (TDX: tdx_vcpu_create sets it), kvm_apic_get_state;
    /// copy_to_user (EFAULT).
    /// </summary>
    public static long Get(KvmVcpu vcpu, IoctlArg arg)
    {
        if (vcpu.Lapic is not { } apic) return Err.EINVAL;
        if (GuestApicProtected(vcpu)) return Err.EINVAL;
        var s = default(kvm_lapic_state);
        apic.GetState(s.regs, vcpu.Kvm.Irqchip.X2apicApiFlags.Format);
        return arg.CopyToUser(s) ? 0 : Err.EFAULT;
    }

    /// <summary>
    /// KVM_SET_LAPIC: no in-kernel APIC → EINVAL (before the copy); memdup_user (EFAULT); kvm_vcpu_ioctl_set_lapic:
    /// guest_apic_protected → EINVAL, then kvm_apic_set_state (EINVAL only from kvm_apic_state_fixup: an x2APIC-mode
    /// APIC, KVM_CAP_X2APIC_API's 32-bit IDs, and an ID that is not the vCPU's).
    /// </summary>
    public static long Set(KvmVcpu vcpu, IoctlArg arg)
    {
        if (vcpu.Lapic is not { } apic) return Err.EINVAL;
        if (!arg.CopyFromUser(out kvm_lapic_state s)) return Err.EFAULT;
        if (GuestApicProtected(vcpu)) return Err.EINVAL;
        long r = apic.SetState(s.regs, vcpu.Kvm.Irqchip.X2apicApiFlags.Format);
        // kvm_apic_set_state: "if (ioapic_in_kernel(vcpu->kvm)) kvm_rtc_eoi_tracking_restore_one(vcpu)".
        if (r == 0 && vcpu.Kvm.Irqchip.Ioapic is { } ioapic)
            lock (vcpu.Kvm.Kernel.SyncRoot) ioapic.RestoreRtcTracking(vcpu);
        return r;
    }

    /// <summary>vcpu-&gt;arch.apic-&gt;guest_apic_protected: set for every TDX vCPU (vmx/tdx.c tdx_vcpu_create).</summary>
    private static bool GuestApicProtected(KvmVcpu vcpu) => vcpu.Kvm.Type == KvmConstants.KVM_X86_TDX_VM;

    /// <summary>
    /// kvm_vcpu_ioctl_interrupt with an in-kernel irqchip (the vector was already checked against KVM_NR_INTERRUPTS):
    /// "With in-kernel LAPIC, we only use this to inject EXTINT, so fail for in-kernel 8259" → ENXIO with a full
    /// irqchip; with a split one "if (vcpu-&gt;arch.pending_external_vector != -1) return -EEXIST", else the vector
    /// becomes the pending ExtINT. (Its delivery at KVM_RUN, through LINT0, is not modelled: it stays pending.)
    /// </summary>
    public static long Interrupt(KvmVcpu vcpu, VmIrqchip chip, uint vector)
    {
        if (chip.Full) return Err.ENXIO;
        if (vcpu.PendingExternalVector >= 0) return Err.EEXIST;
        vcpu.PendingExternalVector = (int)vector;
        return 0;
    }
}
