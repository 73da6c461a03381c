// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// What arch/x86/kvm and virt/kvm/irqchip.c keep true of a VM's irqchip (checked by <see cref="EmulatorInvariants"/>):
/// the mode and the chips agree (PIC and IOAPIC exactly with a full irqchip, a local APIC on every vCPU exactly when
/// there is an irqchip), the routing table is one kvm_set_irq_routing accepts (GSI below 4096, pins in range, a GSI at
/// most once per chip, an MSI GSI on nothing else, no chip routes on a split irqchip), irqfds hold live eventfds,
/// each eventfd once, a pending ExtINT exists only on a split irqchip, and the PIC's ports and the IOAPIC's window are
/// on the I/O bus exactly with a full irqchip.
/// </summary>
internal static class IrqchipInvariants
{
    public static void Check(Kvm vm, List<string> errors)
    {
        var chip = vm.Irqchip;
        string what = $"VM type {vm.Type}: irqchip {chip.Mode}";
        if ((chip.Pic is null) == chip.Full || (chip.Ioapic is null) == chip.Full) errors.Add($"{what} has the wrong chips");
        foreach (var v in vm.Vcpus)
        {
            if ((v.Lapic is null) == chip.InKernel) errors.Add($"{what}: vCPU {v.Id} {(v.Lapic is null ? "lacks" : "has")} a local APIC");
            if (v.PendingExternalVector is < -1 or > 255) errors.Add($"{what}: vCPU {v.Id} has pending ExtINT {v.PendingExternalVector}");
            if (v.PendingExternalVector != -1 && chip.Mode != IrqchipMode.Split) errors.Add($"{what}: vCPU {v.Id} has a pending ExtINT");
        }
        if (!chip.InKernel && chip.Routing.Entries.Count != 0) errors.Add($"{what} has routes");
        // kvm_pic_init / kvm_ioapic_init: the PIC's three port ranges and the IOAPIC's window are on the bus exactly
        // with a full irqchip, the window where kvm_ioapic_init put it.
        var ranges = vm.IoBus.Ranges;
        int picRanges = ranges.Count(r => r.Device is I8259Ports && r.Bus == KvmBus.Pio);
        int ioapicRanges = ranges.Count(r => r.Device is IoapicMmio && r.Bus == KvmBus.Mmio && r.Addr == Ioapic.DefaultBaseAddress && r.Length == Ioapic.MemLength);
        if ((picRanges, ioapicRanges) != (chip.Full ? (3, 1) : (0, 0))) errors.Add($"{what}: {picRanges} PIC port and {ioapicRanges} IOAPIC window registrations");
        foreach (var (gsi, routes) in chip.Routing.ByGsi)
        {
            if (gsi >= IrqRouting.MaxIrqRoutes) errors.Add($"{what}: GSI {gsi} is routed");
            if (routes.Any(r => r.Type == KvmConstants.KVM_IRQ_ROUTING_MSI) && routes.Length != 1) errors.Add($"{what}: MSI GSI {gsi} has {routes.Length} routes");
            if (routes.Where(r => r.Type == KvmConstants.KVM_IRQ_ROUTING_IRQCHIP).GroupBy(r => r.Irqchip).Any(g => g.Count() > 1))
                errors.Add($"{what}: GSI {gsi} goes to one chip twice");
            foreach (var r in routes.Where(r => r.Type == KvmConstants.KVM_IRQ_ROUTING_IRQCHIP))
            {
                if (chip.Mode == IrqchipMode.Split) errors.Add($"{what}: GSI {gsi} has a chip route");
                uint limit = r.Irqchip == KvmConstants.KVM_IRQCHIP_IOAPIC ? (uint)Ioapic.NumPins : 16;
                if (r.Pin >= limit) errors.Add($"{what}: GSI {gsi} on chip {r.Irqchip} pin {r.Pin}");
            }
        }
        // arm64 keeps its irqfds here too, allowed by an initialized vGIC (Arm64/Vgic), not by this x86 state.
        bool arm64 = vm.Kernel.Config.Architecture == Architecture.Arm64;
        bool irqfdsAllowed = arm64 ? Arm64.Arm64VmState.Of(vm).Vgic.Initialized : chip.InKernel;
        if (!irqfdsAllowed && chip.IrqFds.Count != 0) errors.Add($"{what} has irqfds");
        foreach (var f in chip.IrqFds)
        {
            if (f.Ctx.Refs <= 0 || f.Resample is { Refs: <= 0 }) errors.Add($"{what}: irqfd on GSI {f.Gsi} holds a freed eventfd context");
            if (f.Resample is not null && !chip.Full && !arm64) errors.Add($"{what}: a resampling irqfd without the full irqchip");
        }
        if (chip.IrqFds.Select(f => f.Ctx).Distinct(ReferenceEqualityComparer.Instance).Count() != chip.IrqFds.Count)
            errors.Add($"{what}: an eventfd drives two irqfds");
    }
}
