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

    /// <summary>kvm-&gt;arch.x2apic_format and x2apic_broadcast_quirk_disabled (KVM_CAP_X2APIC_API, <see cref="X2apicApi"/>).</summary>
    public X2apicApiState X2apicApiFlags { get; } = new();

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

    /// <summary>
    /// kvm->irqfds.resampler_list: one resampler per GSI with resampling irqfds (virt/kvm/eventfd.c); each is also the
    /// GSI's entry in kvm->irq_ack_notifier_list, the only ack notifiers modelled.
    /// </summary>
    public List<IrqfdResampler> Resamplers { get; } = [];

    /// <summary>
    /// The online vCPUs (kvm_for_each_vcpu) as an immutable snapshot, replaced when a vCPU is created: interrupt
    /// delivery from a vCPU thread (an IPI) reads it without the kernel lock, as the kernel walks kvm-&gt;vcpu_array
    /// under RCU.
    /// </summary>
    public Vcpu.KvmVcpu[] Online { get; set; } = [];

    /// <summary>Guards <see cref="_mapMembers"/> (kvm-&gt;arch.apic_map_lock).</summary>
    private readonly Lock _mapLock = new();

    /// <summary>
    /// The vCPUs kvm_recalculate_apic_map last iterated (kvm_for_each_vcpu: the online ones then), null before the
    /// first recalculation (kvm-&gt;arch.apic_map NULL). Every change that marks the map dirty (an APIC ID, LDR or DFR
    /// write, a software-enable toggle, KVM_SET_LAPIC, a hardware-enable toggle, an APIC reset) recalculates at once,
    /// so the map is <see cref="ApicMap.Build"/> over these members with their current registers. The catch (probed on
    /// this host, Conformance IrqchipRules <c>msi_destinations_follow_the_apic_map</c>): kvm_vm_ioctl_create_vcpu
    /// resets the new vCPU's APIC (kvm_lapic_reset → kvm_recalculate_apic_map) before it is online, so a new vCPU is
    /// not in the map until the next recalculation — a message to its ID is delivered to none (0).
    /// </summary>
    private List<Vcpu.KvmVcpu>? _mapMembers;

    /// <summary>
    /// kvm-&gt;arch.x2apic_format as kvm_recalculate_phys_map read it at the last recalculation: KVM_ENABLE_CAP
    /// (KVM_CAP_X2APIC_API) does not mark the map dirty, so a map built without 32-bit IDs (or none, for aliased IDs)
    /// stays until the next recalculation (found by the differential fuzzer on Linux 6.18: two vCPUs with xAPIC ID 3 —
    /// no map — then flags 0xB; an MSI to ID 1 still finds no destination, -1 → EPERM, where a map rebuilt with
    /// x2apic_format would deliver to none, 0).
    /// </summary>
    private bool _mapFormat;

    private void SetMembers(List<Vcpu.KvmVcpu> members)
    {
        _mapMembers = members;
        _mapFormat = members.Count > 0 && members[0].Kvm.Irqchip.X2apicApiFlags.Format;
        foreach (var m in members)
            if (m.Lapic is { } a) a.HwEnabledInMap = ApicMap.Present(m);
        // lapic.c kvm_recalculate_apic_map ends with kvm_make_scan_ioapic_request(kvm): every online vCPU rescans.
        RequestScanIoapic(members);
    }

    /// <summary>kvm_make_scan_ioapic_request: KVM_REQ_SCAN_IOAPIC for every vCPU of <paramref name="vcpus"/>.</summary>
    public static void RequestScanIoapic(IEnumerable<Vcpu.KvmVcpu> vcpus)
    {
        foreach (var v in vcpus)
            if (v.Lapic is { } a) a.ScanIoapicRequested = true;
    }

    /// <summary>kvm_recalculate_apic_map with the vCPUs online now.</summary>
    public void RecalculateApicMap(IEnumerable<Vcpu.KvmVcpu> online)
    {
        lock (_mapLock) SetMembers(online.ToList());
    }

    /// <summary>
    /// rcu_dereference(kvm-&gt;arch.apic_map). A hardware-enable toggle (kvm_lapic_set_base: KVM_SET_SREGS, the APIC base
    /// MSR) recalculates in the kernel; here it is noticed when the map is next used.
    /// </summary>
    public ApicMap? CurrentApicMap(IReadOnlyList<Vcpu.KvmVcpu> online)
    {
        lock (_mapLock)
        {
            foreach (var v in online)
            {
                if (v.Lapic is { } apic && apic.HwEnabledInMap != ApicMap.Present(v))
                {
                    SetMembers(online.ToList());
                    break;
                }
            }
            return _mapMembers is null ? null : ApicMap.Build(_mapMembers, _mapFormat);
        }
    }
}

/// <summary>One assigned irqfd: the eventfd, its GSI and, with KVM_IRQFD_FLAG_RESAMPLE, the resample eventfd.</summary>
internal sealed record IrqFd(EventFdCtx Ctx, uint Gsi, EventFdCtx? Resample)
{
    /// <summary>The wait-queue entry registered on <see cref="Ctx"/> (irqfd_wakeup); null until assigned.</summary>
    public Action? Wakeup { get; set; }

    /// <summary>irqfd->resampler: the GSI's shared resampler, with KVM_IRQFD_FLAG_RESAMPLE.</summary>
    public IrqfdResampler? Resampler { get; set; }
}

/// <summary>
/// struct kvm_kernel_irqfd_resampler (include/linux/kvm_irqfd.h): the resampling irqfds of one GSI (its ack notifier's
/// gsi), de-asserted together on the GSI's EOI (irqfd_resampler_ack).
/// </summary>
internal sealed class IrqfdResampler(uint gsi)
{
    /// <summary>resampler->notifier.gsi.</summary>
    public uint Gsi { get; } = gsi;

    /// <summary>resampler->list: the irqfds sharing it, newest first (list_add_rcu).</summary>
    public List<IrqFd> IrqFds { get; } = [];
}
