// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.Irqchip"/>: on a VM made from /dev/kvm handle Target, an irqchip (none, full, or split with pins
/// around the valid ones) and vCPUs before or after it, then calls drawn from seed A — KVM_IRQ_LINE_STATUS,
/// KVM_GET_IRQCHIP, KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI, KVM_GET_LAPIC, CR8 through KVM_SET/GET_SREGS, and a KVM_RUN
/// with immediate_exit for the run page's ready / cr8. Results (errno, status, count, state bytes) are compared.
/// </summary>
public static class IrqchipOps
{
    /// <summary>Calls after the set-up.</summary>
    public const int Calls = 10;

    internal static string Describe(FuzzOp op, string target) => $"irqchip session({target}, seed={op.A})";
}
