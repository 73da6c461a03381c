// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// Interrupts from a userspace irqchip (a VM without KVM_CREATE_IRQCHIP / KVM_CAP_SPLIT_IRQCHIP): KVM_INTERRUPT, KVM_NMI and
/// the interrupt-window rules of KVM_RUN (arch/x86/kvm/x86.c). Probed on Linux 6.18 kvm_pvm with the cases of
/// Conformance/Cases/InterruptInjection.cs; where that host differs the emulator does as upstream
/// (HostDeviations.KvmPvmLateIrqWindowExit).
/// </summary>
internal static class InterruptIoctls
{
    /// <summary>
    /// x86.c kvm_vcpu_ioctl_interrupt: "if (irq->irq &gt;= KVM_NR_INTERRUPTS) return -EINVAL; if
    /// (!irqchip_in_kernel(vcpu-&gt;kvm)) { kvm_queue_interrupt(vcpu, irq-&gt;irq, false); ... return 0; }".
    /// kvm_queue_interrupt (x86.h) marks the interrupt injected — a vector already there is replaced — so the next
    /// entry re-injects it whatever RFLAGS.IF says. With an in-kernel irqchip: ENXIO (full) or the split irqchip's
    /// pending ExtINT (Irqchip/LapicIoctls.Interrupt). kvm_arch_vcpu_ioctl: copy_from_user EFAULT.
    /// </summary>
    public static long Interrupt(Vcpu.KvmVcpu vcpu, IoctlArg arg)
    {
        var cpu = vcpu.Cpu;
        if (!arg.CopyFromUser(out kvm_interrupt irq)) return Err.EFAULT;
        if (irq.irq >= KvmConstants.KVM_NR_INTERRUPTS) return Err.EINVAL;
        if (vcpu.Kvm.Irqchip.InKernel) return Irqchip.LapicIoctls.Interrupt(vcpu, vcpu.Kvm.Irqchip, irq.irq);
        var s = cpu.State;
        s.InterruptInjected = true;
        s.InterruptSoft = false;
        s.InterruptNr = (byte)irq.irq;
        return 0;
    }

    /// <summary>
    /// x86.c kvm_vcpu_ioctl_nmi → kvm_inject_nmi: "atomic_inc(&amp;vcpu-&gt;arch.nmi_queued);
    /// kvm_make_request(KVM_REQ_NMI, vcpu)"; process_nmi folds it into nmi_pending (at most 2, 1 while masked) at the
    /// next KVM_GET_VCPU_EVENTS or entry. The argument is not looked at. Always 0.
    /// </summary>
    public static long Nmi(X86Cpu cpu)
    {
        cpu.State.NmiQueued++;
        return 0;
    }

    /// <summary>
    /// x86.c kvm_vcpu_ready_for_interrupt_injection without an in-kernel irqchip: kvm_arch_interrupt_allowed (svm.c
    /// svm_interrupt_blocked: RFLAGS.IF set and no interrupt shadow) &amp;&amp; kvm_cpu_accept_dm_intr (no injected
    /// interrupt: kvm_cpu_has_extint is interrupt.injected) &amp;&amp; !kvm_event_needs_reinjection (no injected exception,
    /// interrupt or NMI) &amp;&amp; !kvm_is_exception_pending (a pending exception or a KVM_REQ_TRIPLE_FAULT). What post_kvm_run_save writes to
    /// kvm_run.ready_for_interrupt_injection, and what ends a run as KVM_EXIT_IRQ_WINDOW_OPEN when userspace asked.
    /// </summary>
    /// <summary>kvm_vcpu_ready_for_interrupt_injection of a vCPU, with or without its APIC in the kernel.</summary>
    public static bool ReadyForInterruptInjection(KvmVcpu vcpu)
    {
        if (!ReadyForInterruptInjection(vcpu.Cpu)) return false;
        if (vcpu.Lapic is not { } apic) return true;
        // kvm_cpu_accept_dm_intr with the APIC in the kernel: no pending ExtINT (kvm_cpu_has_extint: on a split irqchip
        // pending_external_vector, on the full one the PIC's output, when LINT0 accepts it) and kvm_apic_accept_pic_intr — the APIC hardware-disabled,
        // or LVT0 unmasked with ExtINT delivery (the BSP's reset value; an AP's LVT0 is masked). Found by the
        // differential fuzzer's irqchip stream.
        bool acceptPic = Irqchip.ApicInjection.AcceptsPicInterrupt(vcpu, apic);
        bool hasExtint = Irqchip.ApicInjection.HasExtint(vcpu, apic);
        return !hasExtint && acceptPic;
    }

    public static bool ReadyForInterruptInjection(X86Cpu cpu)
    {
        var s = cpu.State;
        return (cpu.Rflags & X86Consts.RFLAGS_IF) != 0 && s.InterruptShadow == 0
            && !s.InterruptInjected && !s.ExceptionInjected && !s.NmiInjected && !s.ExceptionPending && !s.TripleFaultRequested;
    }
}
