// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// Interrupts from a userspace interrupt controller (a VM without KVM_CREATE_IRQCHIP): KVM_INTERRUPT, KVM_NMI and the
/// kvm_run fields a VMM uses to time them (Documentation/virt/kvm/api.rst 4.16, 4.71, 5 "kvm_run";
/// arch/x86/kvm/x86.c kvm_vcpu_ioctl_interrupt, kvm_vcpu_ioctl_nmi, post_kvm_run_save, dm_request_for_irq_injection).
/// The usual loop: when the device model has an interrupt for the vCPU, inject it if
/// <see cref="ReadyForInterruptInjection"/> is set, else set <see cref="RequestInterruptWindow"/> and run until
/// <see cref="Abi.KvmExitReason.KVM_EXIT_IRQ_WINDOW_OPEN"/>.
/// </summary>
public sealed partial class Vcpu
{
    /// <summary>
    /// KVM_INTERRUPT: queues external interrupt <paramref name="vector"/> as injected. The next <see cref="Run"/>
    /// delivers it through the guest's IDT (no error code) before the first instruction, whatever RFLAGS.IF and the
    /// interrupt shadow say — only inject when <see cref="ReadyForInterruptInjection"/> is set. A second call before
    /// the vCPU ran replaces the vector.
    /// </summary>
    /// <exception cref="KvmException">EINVAL on arm64 (no such ioctl); ENXIO with an in-kernel PIC; EEXIST with a
    /// split irqchip and an ExtINT still pending.</exception>
    public void InjectInterrupt(byte vector)
    {
        var irq = new kvm_interrupt { irq = vector };
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_INTERRUPT, KvmCall.Bytes(ref irq));
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_INTERRUPT", $"vcpu={Id} irq=0x{vector:X2}");
    }

    /// <summary>
    /// KVM_NMI: queues a non-maskable interrupt. The next <see cref="Run"/> delivers it through vector 2 unless NMIs are
    /// blocked (an NMI handler still running, an interrupt shadow) or another event goes first; at most two stay
    /// pending (x86.c process_nmi: one while NMIs are masked).
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed (EINVAL on arm64).</exception>
    public void InjectNmi()
    {
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_NMI, 0UL);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_NMI", $"vcpu={Id}");
    }

    /// <summary>
    /// kvm_run.request_interrupt_window (in): while set, <see cref="Run"/> returns with
    /// <see cref="Abi.KvmExitReason.KVM_EXIT_IRQ_WINDOW_OPEN"/> as soon as the guest can take an interrupt (RFLAGS.IF
    /// set, no interrupt shadow, nothing queued). Ignored with an in-kernel PIC. Stays set until cleared.
    /// </summary>
    public bool RequestInterruptWindow
    {
        get => _run.GetSpan(KvmRunLayout.request_interrupt_window, 1)[0] != 0;
        set => _run.GetSpan(KvmRunLayout.request_interrupt_window, 1)[0] = value ? (byte)1 : (byte)0;
    }

    /// <summary>
    /// kvm_run.ready_for_interrupt_injection (out, written when a KVM_RUN returns, even with EINTR): the guest can take
    /// an interrupt now — RFLAGS.IF set, no interrupt shadow, no interrupt or exception queued
    /// (x86.c kvm_vcpu_ready_for_interrupt_injection). Always set with an in-kernel PIC. False before the first run.
    /// </summary>
    public bool ReadyForInterruptInjection => _run.GetSpan(KvmRunLayout.ready_for_interrupt_injection, 1)[0] != 0;

    /// <summary>kvm_run.if_flag (out, written when a KVM_RUN returns): the guest's RFLAGS.IF.</summary>
    public bool InterruptFlag => _run.GetSpan(KvmRunLayout.if_flag, 1)[0] != 0;

    /// <summary>
    /// kvm_run.cr8: without an in-kernel local APIC, the task priority userspace's APIC model gives the vCPU (0–15,
    /// loaded into CR8 when KVM_RUN starts — a value above 15 makes Run fail with EINVAL) and the guest's CR8 when
    /// KVM_RUN returns.
    /// </summary>
    public ulong Cr8
    {
        get => BinaryPrimitives.ReadUInt64LittleEndian(_run.GetSpan(KvmRunLayout.cr8, sizeof(ulong)));
        set => BinaryPrimitives.WriteUInt64LittleEndian(_run.GetSpan(KvmRunLayout.cr8, sizeof(ulong)), value);
    }

    /// <summary>kvm_run.apic_base (out, written when a KVM_RUN returns): the vCPU's IA32_APIC_BASE.</summary>
    public ulong ApicBase => BinaryPrimitives.ReadUInt64LittleEndian(_run.GetSpan(KvmRunLayout.apic_base, sizeof(ulong)));
}
