// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>One kernel routing entry (struct kvm_kernel_irq_routing_entry): an irqchip pin (PIC pins 0–15 with the
/// slave's at 8–15, IOAPIC 0–23) or an MSI.</summary>
internal sealed record IrqRoute(uint Gsi, uint Type, uint Irqchip, uint Pin, uint AddressLo, uint AddressHi, uint Data);

/// <summary>struct kvm_irq_routing_table: the entries by GSI, and rt-&gt;chip[irqchip][pin].</summary>
internal sealed class IrqRoutingTable
{
    public static readonly IrqRoutingTable Empty = new([]);

    public IrqRoutingTable(IReadOnlyList<IrqRoute> entries)
    {
        Entries = entries;
        ByGsi = entries.GroupBy(e => e.Gsi).ToDictionary(g => g.Key, g => g.ToArray());
        // irqchip.c setup_routing_entry: "if (e->type == KVM_IRQ_ROUTING_IRQCHIP) rt->chip[e->irqchip.irqchip][e->irqchip.pin]
        // = e->gsi;" in table order, so the last GSI routed to a pin wins (kvm_set_irq_routing starts every pin at -1).
        var chipPin = new Dictionary<(uint Irqchip, uint Pin), uint>();
        foreach (var e in entries)
            if (e.Type == KvmConstants.KVM_IRQ_ROUTING_IRQCHIP) chipPin[(e.Irqchip, e.Pin)] = e.Gsi;
        ChipPinGsi = chipPin;
    }

    /// <summary>rt->chip (kvm_irq_map_chip_pin): the GSI routed to an irqchip pin (PIC slave pins as 8–15); absent: -1.</summary>
    public IReadOnlyDictionary<(uint Irqchip, uint Pin), uint> ChipPinGsi { get; }

    public IReadOnlyList<IrqRoute> Entries { get; }

    /// <summary>rt->map[gsi] (kvm_irq_map_gsi).</summary>
    public IReadOnlyDictionary<uint, IrqRoute[]> ByGsi { get; }
}

/// <summary>
/// virt/kvm/irqchip.c (kvm_set_irq_routing, setup_routing_entry, kvm_set_irq, kvm_send_userspace_msi), kvm_main.c's
/// KVM_SET_GSI_ROUTING and arch/x86/kvm/irq.c (kvm_set_routing_entry, the default PIC/IOAPIC routing). Every rule
/// here was probed on this host (Conformance/Cases/IrqchipRules.cs).
/// </summary>
internal static class IrqRouting
{
    /// <summary>KVM_MAX_IRQ_ROUTES (include/linux/kvm_host.h): 4096, also KVM_CAP_IRQ_ROUTING's answer.</summary>
    public const int MaxIrqRoutes = 4096;

    /// <summary>KVM_USERSPACE_IRQ_SOURCE_ID (include/linux/kvm_host.h): KVM_IRQ_LINE's and a plain irqfd's source.</summary>
    public const int UserspaceIrqSourceId = 0;

    /// <summary>KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID (include/linux/kvm_host.h): the one source every resampler shares.</summary>
    public const int ResampleIrqSourceId = 1;

    /// <summary>
    /// irq.c kvm_setup_default_ioapic_and_pic_routing (default_routing[]): GSI 0–15 to IOAPIC pin n and PIC pin n
    /// (ROUTING_ENTRY2), GSI 16–23 to the IOAPIC only (ROUTING_ENTRY1).
    /// </summary>
    public static IrqRoutingTable Default()
    {
        var e = new List<IrqRoute>();
        for (uint gsi = 0; gsi < 24; gsi++)
        {
            e.Add(new IrqRoute(gsi, KvmConstants.KVM_IRQ_ROUTING_IRQCHIP, KvmConstants.KVM_IRQCHIP_IOAPIC, gsi, 0, 0, 0));
            if (gsi < 16)
                e.Add(new IrqRoute(gsi, KvmConstants.KVM_IRQ_ROUTING_IRQCHIP,
                    gsi < 8 ? KvmConstants.KVM_IRQCHIP_PIC_MASTER : KvmConstants.KVM_IRQCHIP_PIC_SLAVE, gsi, 0, 0, 0));
        }
        return new IrqRoutingTable(e);
    }

    /// <summary>
    /// kvm_vm_ioctl KVM_SET_GSI_ROUTING: copy the header (EFAULT); !kvm_arch_can_set_irq_routing (x86:
    /// irqchip_in_kernel) → EINVAL; nr &gt; KVM_MAX_IRQ_ROUTES → EINVAL; flags → EINVAL; copy nr entries (EFAULT);
    /// kvm_set_irq_routing. A failure leaves the old table.
    /// </summary>
    public static long SetGsiRoutingIoctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_irq_routing routing)) return Err.EFAULT;
        if (!kvm.Irqchip.InKernel) return Err.EINVAL;
        if (routing.nr > MaxIrqRoutes) return Err.EINVAL;
        if (routing.flags != 0) return Err.EINVAL;
        int headerSize = System.Runtime.CompilerServices.Unsafe.SizeOf<kvm_irq_routing>();
        int entrySize = System.Runtime.CompilerServices.Unsafe.SizeOf<kvm_irq_routing_entry>();
        long bytes = headerSize + (long)routing.nr * entrySize;
        if (!arg.IsPointer || arg.Buffer.Length < bytes) return Err.EFAULT;
        var entries = new kvm_irq_routing_entry[routing.nr];
        for (int i = 0; i < entries.Length; i++)
            entries[i] = System.Runtime.InteropServices.MemoryMarshal.Read<kvm_irq_routing_entry>(arg.Buffer[(headerSize + i * entrySize)..]);
        return SetIrqRouting(kvm, entries);
    }

    /// <summary>
    /// irqchip.c kvm_set_irq_routing: any gsi ≥ KVM_MAX_IRQ_ROUTES → EINVAL before anything; then entry by entry: an MSI
    /// may only carry KVM_MSI_VALID_DEVID in flags, the other types no flags (EINVAL); setup_routing_entry; the new
    /// table replaces the old one only when every entry passed. The entries' pad is never looked at.
    /// </summary>
    private static long SetIrqRouting(Kvm kvm, kvm_irq_routing_entry[] ue)
    {
        foreach (var u in ue)
            if (u.gsi >= MaxIrqRoutes) return Err.EINVAL;
        var table = new List<IrqRoute>(ue.Length);
        foreach (var u in ue)
        {
            uint allowed = u.type == KvmConstants.KVM_IRQ_ROUTING_MSI ? KvmConstants.KVM_MSI_VALID_DEVID : 0;
            if ((u.flags & ~allowed) != 0) return Err.EINVAL;
            long r = SetupRoutingEntry(kvm, table, u, out var route);
            if (r != 0) return r;
            table.Add(route!);
        }
        kvm.Irqchip.Routing = new IrqRoutingTable(table);
        // irq.c kvm_arch_irq_routing_update: "if (irqchip_split(kvm)) kvm_make_scan_ioapic_request(kvm)".
        if (kvm.Irqchip.Mode == IrqchipMode.Split) VmIrqchip.RequestScanIoapic(kvm.Irqchip.Online);
        return 0;
    }

    /// <summary>
    /// irqchip.c setup_routing_entry: "Do not allow GSI to be mapped to the same irqchip more than once. Allow only one
    /// to one mapping between GSI and non-irqchip routing" → EINVAL; then the arch's kvm_set_routing_entry.
    /// </summary>
    private static long SetupRoutingEntry(Kvm kvm, List<IrqRoute> table, in kvm_irq_routing_entry ue, out IrqRoute? route)
    {
        route = null;
        foreach (var ei in table)
        {
            if (ei.Gsi != ue.gsi) continue;
            if (ei.Type != KvmConstants.KVM_IRQ_ROUTING_IRQCHIP || ue.type != KvmConstants.KVM_IRQ_ROUTING_IRQCHIP
                || ue.u[0] == ei.Irqchip)
                return Err.EINVAL;
        }
        return SetRoutingEntry(kvm, ue, out route);
    }

    /// <summary>
    /// x86 irq.c kvm_set_routing_entry. IRQCHIP: EINVAL with a split irqchip; PIC master/slave pin ≥ 8, IOAPIC pin ≥ 24
    /// or another chip → EINVAL (the slave's pins become 8–15). MSI: kvm_msi_route_invalid — with KVM_CAP_X2APIC_API's
    /// x2apic_format, address_hi bits 7:0 set → EINVAL (<see cref="X2apicApi"/>). HV_SINT (CONFIG_KVM_HYPERV) and XEN_EVTCHN
    /// (CONFIG_KVM_XEN) are not modelled, so like every other type they are EINVAL — as on this host (probed).
    /// </summary>
    private static long SetRoutingEntry(Kvm kvm, in kvm_irq_routing_entry ue, out IrqRoute? route)
    {
        route = null;
        switch (ue.type)
        {
            case KvmConstants.KVM_IRQ_ROUTING_IRQCHIP:
            {
                if (kvm.Irqchip.Mode == IrqchipMode.Split) return Err.EINVAL;
                uint chip = ue.u[0], pin = ue.u[1];
                switch (chip)
                {
                    case KvmConstants.KVM_IRQCHIP_PIC_MASTER or KvmConstants.KVM_IRQCHIP_PIC_SLAVE:
                        if (pin >= 8) return Err.EINVAL;
                        if (chip == KvmConstants.KVM_IRQCHIP_PIC_SLAVE) pin += 8;
                        break;
                    case KvmConstants.KVM_IRQCHIP_IOAPIC:
                        if (pin >= Ioapic.NumPins) return Err.EINVAL;
                        break;
                    default:
                        return Err.EINVAL;
                }
                route = new IrqRoute(ue.gsi, ue.type, chip, pin, 0, 0, 0);
                return 0;
            }
            case KvmConstants.KVM_IRQ_ROUTING_MSI:
                // struct kvm_irq_routing_msi: address_lo, address_hi, data.
                if (kvm.Irqchip.X2apicApiFlags.Format && (ue.u[1] & 0xff) != 0) return Err.EINVAL;
                route = new IrqRoute(ue.gsi, ue.type, 0, 0, ue.u[0], ue.u[1], ue.u[2]);
                return 0;
            default:
                return Err.EINVAL;
        }
    }

    /// <summary>
    /// irqchip.c kvm_set_irq: every route of the GSI is set; "if (r &lt; 0) continue; ret = r + ((ret &lt; 0) ? 0 : ret)"
    /// — -1 when no route took it (no route at all included), else the sum of the non-negative answers. The chips keep
    /// one level per <paramref name="sourceId"/> and OR them (__kvm_irq_line_state).
    /// </summary>
    public static int SetIrq(Kvm kvm, uint gsi, bool level, int sourceId = UserspaceIrqSourceId, bool lineStatus = false)
    {
        int ret = -1;
        if (!kvm.Irqchip.Routing.ByGsi.TryGetValue(gsi, out var routes)) return ret;
        foreach (var e in routes)
        {
            int r = SetRoute(kvm, e, level, sourceId, lineStatus);
            if (r < 0) continue;
            ret = r + (ret < 0 ? 0 : ret);
        }
        return ret;
    }

    /// <summary>The entry's set callback: kvm_pic_set_irq, kvm_ioapic_set_irq or kvm_set_msi.</summary>
    private static int SetRoute(Kvm kvm, IrqRoute e, bool level, int sourceId, bool lineStatus)
    {
        var chip = kvm.Irqchip;
        if (e.Type == KvmConstants.KVM_IRQ_ROUTING_MSI)
            return ApicDelivery.SetMsi(kvm, e.AddressLo, e.AddressHi, e.Data, level);
        // kvm_pic_set_irq / kvm_ioapic_set_irq: "if (!pic) return -1" / "if (!ioapic) return -1" (never reached: a
        // split irqchip has no irqchip routes).
        if (e.Irqchip == KvmConstants.KVM_IRQCHIP_IOAPIC)
            return chip.Ioapic is { } ioapic ? ioapic.SetIrq((int)e.Pin, sourceId, level, lineStatus) : -1;
        return chip.Pic is { } pic ? pic.SetIrq((int)e.Pin, sourceId, level) : -1;
    }

    /// <summary>
    /// irqchip.c kvm_notify_acked_irq: the GSI routed to the pin (kvm_irq_map_chip_pin; none: nothing) and every ack
    /// notifier registered for that GSI (kvm_notify_acked_gsi). The notifiers modelled are the irqfd resamplers and the PIT's.
    /// Caller holds the kernel lock.
    /// </summary>
    public static void NotifyAckedIrq(Kvm kvm, uint irqchip, uint pin)
    {
        if (!kvm.Irqchip.Routing.ChipPinGsi.TryGetValue((irqchip, pin), out uint gsi)) return;
        foreach (var resampler in kvm.Irqchip.Resamplers.Where(r => r.Gsi == gsi).ToList()) IrqFds.ResamplerAck(kvm, resampler);
        // i8254.c kvm_pit_ack_irq: the PIT's notifier on GSI 0 (registered while reinject is on; AckIrq checks).
        if (gsi == 0) kvm.Pit?.AckIrq();
    }
}
