// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.Irqchip"/>: on a VM made from /dev/kvm handle Target, an irqchip (none, full, or split with pins
/// around the valid ones) and vCPUs before or after it, then calls drawn from seed A — KVM_IRQ_LINE_STATUS,
/// KVM_GET_IRQCHIP, KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI (every delivery mode, the redirect hint, addresses outside
/// the APIC window), KVM_GET_LAPIC, CR8 through KVM_SET/GET_SREGS, KVM_SET/GET_VCPU_EVENTS (the latched INIT),
/// KVM_SET/GET_MP_STATE with the registers (INIT and SIPI taken by kvm_apic_accept_events), and a KVM_RUN with
/// immediate_exit for the run page's ready / cr8. Results (errno, status, count, state bytes) are compared. A KVM_RUN
/// without immediate_exit is never drawn: a vCPU that is not runnable (HALTED, UNINITIALIZED, INIT_RECEIVED) would
/// wait in the real kernel until a signal. Since session 13 also the x2APIC calls of KernelSession.X2apic.cs (an x2APIC
/// prologue on half the sessions with an irqchip; KVM_CAP_X2APIC_API, IA32_APIC_BASE, the x2APIC MSRs, IA32_TSC_DEADLINE,
/// KVM_GET/SET_LAPIC round trips, MSIs with address_hi, resampling irqfds and their resamplefd counts). Since session 15
/// also the PIT calls of KernelSession.Pit.cs on half the sessions (KVM_CREATE_PIT(2), KVM_GET/SET_PIT(2),
/// KVM_REINJECT_CONTROL), and, with E = <see cref="GuestProgrammed"/>, a guest that programs the PICs, the IOAPIC and
/// the PIT itself (TinyGuestRun.Irqchip.cs) instead of a session.
/// </summary>
public static class IrqchipOps
{
    /// <summary>Calls after the set-up.</summary>
    public const int Calls = 14;

    /// <summary>
    /// E of an <see cref="OpKind.Irqchip"/> op that runs a guest programming the PICs, the IOAPIC and the PIT itself
    /// instead of a session (TinyGuestRun.Irqchip.cs), on a fresh VM with the full irqchip.
    /// </summary>
    public const int GuestProgrammed = 1;

    internal static string Describe(FuzzOp op, string target) =>
        op.E == GuestProgrammed ? $"guest run({target}, programs PIC/IOAPIC/PIT, seed={op.A})" : $"irqchip session({target}, seed={op.A})";
}
