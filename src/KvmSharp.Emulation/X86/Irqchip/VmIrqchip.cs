// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Fs;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>kvm->arch.irqchip_mode (arch/x86/kvm/irq.h): none, full (KVM_CREATE_IRQCHIP) or split (KVM_CAP_SPLIT_IRQCHIP).</summary>
internal enum IrqchipMode
{
    None,
    Kernel,
    Split,
}

/// <summary>
/// A VM's in-kernel interrupt controllers (x86): the mode, the PIC pair and IOAPIC of a full irqchip, the GSI
/// routing table (virt/kvm/irqchip.c kvm->irq_routing) and the assigned irqfds. The local APICs live on the vCPUs
/// (<see cref="Lapic"/>).
/// </summary>
internal sealed class VmIrqchip
{
    public IrqchipMode Mode { get; set; }

    /// <summary>irqchip_in_kernel: full or split.</summary>
    public bool InKernel => Mode != IrqchipMode.None;

    /// <summary>irqchip_full / pic_in_kernel / ioapic_in_kernel.</summary>
    public bool Full => Mode == IrqchipMode.Kernel;

    /// <summary>kvm->arch.nr_reserved_ioapic_pins (KVM_CAP_SPLIT_IRQCHIP's args[0]).</summary>
    public ulong NrReservedIoapicPins { get; set; }

    /// <summary>kvm->arch.vpic, with a full irqchip.</summary>
    public I8259? Pic { get; set; }

    /// <summary>kvm->arch.vioapic, with a full irqchip.</summary>
    public Ioapic? Ioapic { get; set; }

    /// <summary>kvm->irq_routing: empty from kvm_create_vm (kvm_init_irq_routing) until a table is set.</summary>
    public IrqRoutingTable Routing { get; set; } = IrqRoutingTable.Empty;

    /// <summary>kvm->irqfds.items: the assigned irqfds (virt/kvm/eventfd.c), each holding its eventfd context.</summary>
    public List<IrqFd> IrqFds { get; } = [];
}

/// <summary>One assigned irqfd: the eventfd, its GSI and, with KVM_IRQFD_FLAG_RESAMPLE, the resample eventfd.</summary>
internal sealed record IrqFd(EventFdCtx Ctx, uint Gsi, EventFdCtx? Resample);
