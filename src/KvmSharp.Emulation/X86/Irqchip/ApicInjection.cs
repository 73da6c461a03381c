// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// x86.c kvm_check_and_inject_events for a vCPU with an in-kernel local APIC: when the guest can take an interrupt
/// (kvm_x86_ops.interrupt_allowed: RFLAGS.IF, no shadow, nothing else injected) and kvm_cpu_has_injectable_intr, the
/// vector from kvm_cpu_get_interrupt is queued (kvm_queue_interrupt) for the CPU to deliver. An ExtINT goes first
/// when LINT0 accepts PIC interrupts (kvm_cpu_get_extint: a split irqchip's pending_external_vector, the full irqchip's
/// PIC output through kvm_pic_read_irq).
/// </summary>
internal static class ApicInjection
{
    private const ulong ApicBaseEnable = 1UL << 11;

    /// <summary>lapic.c kvm_apic_accept_pic_intr: the APIC hardware-disabled, or LVT0 unmasked with ExtINT delivery.</summary>
    public static bool AcceptsPicInterrupt(KvmVcpu vcpu, Lapic apic) =>
        (vcpu.Cpu.Sregs.apic_base & ApicBaseEnable) == 0 || (apic.Get(Lapic.Lvt0) & 0x10700) == 0x700;

    /// <summary>
    /// irq.c kvm_cpu_has_extint for a vCPU with an in-kernel APIC: kvm_apic_accept_pic_intr, then a split irqchip's
    /// pending_external_vector or the full irqchip's PIC output (s-&gt;output).
    /// </summary>
    public static bool HasExtint(KvmVcpu vcpu, Lapic apic) =>
        AcceptsPicInterrupt(vcpu, apic) && (vcpu.PendingExternalVector >= 0 || vcpu.Kvm.Irqchip.Pic is { Output: true });

    /// <summary>True when an interrupt was queued as injected (the caller delivers it).</summary>
    public static bool TryQueue(KvmVcpu vcpu)
    {
        if (vcpu.Lapic is not { } apic) return false;
        // KVM_REQ_APF_READY from a guest WRMSR or SPIV write, served by the re-entry after that exit (X86/KvmAsyncPf.cs).
        if (vcpu.Cpu.Msrs.Pv.ApfReadyRequested) KvmAsyncPf.ServeRequest(vcpu);
        // A vector accepted into IRR kicks a running vCPU out of the guest: kvm_lapic_sync_from_vapic then does the EOI
        // a guest signalled by clearing its PV EOI bit, before anything is injected (X86/PvEoi.cs).
        if (vcpu.Cpu.Msrs.Pv.PvEoiPending && apic.IrrPending) PvEoi.SyncFromGuest(vcpu);
        if (!InterruptIoctls.ReadyForInterruptInjection(vcpu.Cpu)) return false;
        int vector = -1;
        bool hwEnabled = (vcpu.Cpu.Sregs.apic_base & ApicBaseEnable) != 0;
        if (vcpu.PendingExternalVector >= 0 && AcceptsPicInterrupt(vcpu, apic))
        {
            vector = vcpu.PendingExternalVector;
            vcpu.PendingExternalVector = -1;
        }
        else if (vcpu.Kvm.Irqchip.Pic is { Output: true } pic && AcceptsPicInterrupt(vcpu, apic))
        {
            // kvm_cpu_get_extint with the full irqchip: kvm_pic_read_irq, the PIC's INTA (under pic_lock).
            lock (vcpu.Kvm.Kernel.SyncRoot) vector = pic.ReadIrq();
        }
        else if (hwEnabled)
        {
            vector = apic.TakeInterrupt();
        }
        if (vector < 0) return false;
        var s = vcpu.Cpu.State;
        s.InterruptInjected = true;
        s.InterruptSoft = false;
        s.InterruptNr = (byte)vector;
        // kvm_check_and_inject_events, then "if (kvm_lapic_enabled(vcpu)) … kvm_lapic_sync_to_vapic(vcpu)".
        PvEoi.SyncToGuest(vcpu);
        return true;
    }
}
