// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Emulation.X86.Irqchip;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// GSI routing and irqfd delivery on arm64 (6.18): virt/kvm/irqchip.c (kvm_set_irq_routing, setup_routing_entry,
/// kvm_set_irq, kvm_send_userspace_msi, kvm_notify_acked_irq) with arch/arm64/kvm/vgic/vgic-irqfd.c
/// (kvm_set_routing_entry, vgic_irqfd_set_irq, kvm_set_msi, kvm_arch_set_irq_inatomic,
/// kvm_vgic_setup_default_irq_routing) and virt/kvm/eventfd.c irqfd_wakeup / irqfd_inject. The VM's irqfd list and
/// resamplers are the generic ones (X86/Irqchip/IrqFds.cs, kvm->irqfds); the table lives in <see cref="VgicDist.Routing"/>.
/// An MSI route or KVM_SIGNAL_MSI goes to an ITS (kvm_set_msi → vgic_its_inject_msi, <see cref="VgicIts.InjectMsi"/>;
/// "if (!vgic_has_its(kvm)) return -ENODEV"). An MSI route keeps its flags in <see cref="IrqRoute.Irqchip"/> and its
/// devid in <see cref="IrqRoute.Pin"/> (the kernel's e->msi.flags / e->msi.devid; the irqchip fields are unused by MSI).
/// </summary>
internal static class VgicIrqfd
{
    /// <summary>include/kvm/arm_vgic.h KVM_IRQCHIP_NUM_PINS: (1020 - 32), the SPI pins a route may name.</summary>
    public const uint IrqchipNumPins = 1020 - 32;

    /// <summary>arm64 KVM_NR_IRQCHIPS: 1 (irqchip 0, the vGIC's SPIs).</summary>
    public const uint NrIrqchips = 1;

    /// <summary>
    /// kvm_vgic_setup_default_irq_routing (from vgic_init): GSI i → irqchip 0 pin i (SPI i + 32) for every SPI;
    /// it replaces whatever table userspace set before the vGIC was initialized.
    /// </summary>
    public static IrqRoutingTable DefaultRouting(int nrSpis)
    {
        var e = new IrqRoute[nrSpis];
        for (uint i = 0; i < e.Length; i++) e[i] = new IrqRoute(i, KvmConstants.KVM_IRQ_ROUTING_IRQCHIP, 0, i, 0, 0, 0);
        return new IrqRoutingTable(e);
    }

    /// <summary>
    /// kvm_vm_ioctl KVM_SET_GSI_ROUTING: copy the header (EFAULT); kvm_arch_can_set_irq_routing (arm64 keeps the
    /// generic "return true": no vGIC needed); nr &gt; KVM_MAX_IRQ_ROUTES → EINVAL; flags → EINVAL; copy nr entries
    /// (EFAULT); kvm_set_irq_routing. A failure leaves the old table.
    /// </summary>
    public static long SetGsiRoutingIoctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_irq_routing routing)) return Err.EFAULT;
        if (routing.nr > IrqRouting.MaxIrqRoutes) return Err.EINVAL;
        if (routing.flags != 0) return Err.EINVAL;
        int headerSize = Unsafe.SizeOf<kvm_irq_routing>(), entrySize = Unsafe.SizeOf<kvm_irq_routing_entry>();
        long bytes = headerSize + (long)routing.nr * entrySize;
        if (!arg.IsPointer || arg.Buffer.Length < bytes) return Err.EFAULT;
        var ue = new kvm_irq_routing_entry[routing.nr];
        for (int i = 0; i < ue.Length; i++) ue[i] = MemoryMarshal.Read<kvm_irq_routing_entry>(arg.Buffer[(headerSize + i * entrySize)..]);
        return SetIrqRouting(kvm, ue);
    }

    /// <summary>
    /// kvm_set_irq_routing: any gsi ≥ KVM_MAX_IRQ_ROUTES → EINVAL first; then per entry: flags (an MSI may carry
    /// KVM_MSI_VALID_DEVID only, other types none: EINVAL), setup_routing_entry ("Do not allow GSI to be mapped to the
    /// same irqchip more than once. Allow only one to one mapping between GSI and non-irqchip routing": EINVAL) and
    /// the arm64 kvm_set_routing_entry: IRQCHIP with pin ≥ KVM_IRQCHIP_NUM_PINS or irqchip ≥ KVM_NR_IRQCHIPS → EINVAL,
    /// MSI always accepted, any other type EINVAL. The table replaces the old one only when every entry passed.
    /// </summary>
    private static long SetIrqRouting(Kvm kvm, kvm_irq_routing_entry[] ue)
    {
        foreach (var u in ue)
        {
            if (u.gsi >= IrqRouting.MaxIrqRoutes) return Err.EINVAL;
        }
        var table = new List<IrqRoute>(ue.Length);
        foreach (var u in ue)
        {
            uint allowed = u.type == KvmConstants.KVM_IRQ_ROUTING_MSI ? KvmConstants.KVM_MSI_VALID_DEVID : 0;
            if ((u.flags & ~allowed) != 0) return Err.EINVAL;
            foreach (var ei in table)
            {
                if (ei.Gsi != u.gsi) continue;
                if (ei.Type != KvmConstants.KVM_IRQ_ROUTING_IRQCHIP || u.type != KvmConstants.KVM_IRQ_ROUTING_IRQCHIP || u.u[0] == ei.Irqchip)
                    return Err.EINVAL;
            }
            switch (u.type)
            {
                case KvmConstants.KVM_IRQ_ROUTING_IRQCHIP:
                    if (u.u[1] >= IrqchipNumPins || u.u[0] >= NrIrqchips) return Err.EINVAL;
                    table.Add(new IrqRoute(u.gsi, u.type, u.u[0], u.u[1], 0, 0, 0));
                    break;
                case KvmConstants.KVM_IRQ_ROUTING_MSI:
                    // struct kvm_irq_routing_msi: address_lo, address_hi, data, devid; "e->msi.flags = ue->flags".
                    table.Add(new IrqRoute(u.gsi, u.type, u.flags, u.u[3], u.u[0], u.u[1], u.u[2]));
                    break;
                default:
                    return Err.EINVAL;
            }
        }
        Arm64VmState.Of(kvm).Vgic.Routing = new IrqRoutingTable(table);
        return 0;
    }

    /// <summary>
    /// kvm_set_irq on arm64: every route of the GSI is set (vgic_irqfd_set_irq: an SPI beyond nr_spis → -EINVAL, else
    /// kvm_vgic_inject_irq; kvm_set_msi: -ENODEV without an ITS); -1 when no route took it, else the sum of the
    /// non-negative answers. The vGIC keeps one line per SPI, whatever the source.
    /// </summary>
    public static int SetIrq(Kvm kvm, uint gsi, bool level)
    {
        int ret = -1;
        if (!Arm64VmState.Of(kvm).Vgic.Routing.ByGsi.TryGetValue(gsi, out var routes)) return ret;
        foreach (var e in routes)
        {
            int r = SetRoute(kvm, e, level);
            if (r < 0) continue;
            ret = r + (ret < 0 ? 0 : ret);
        }
        return ret;
    }

    private static int SetRoute(Kvm kvm, IrqRoute e, bool level)
    {
        // kvm_set_msi: "if (!vgic_has_its(kvm)) return -ENODEV; if (!level) return -1;" then vgic_its_inject_msi.
        if (e.Type == KvmConstants.KVM_IRQ_ROUTING_MSI)
        {
            if (Arm64VmState.Of(kvm).Vgic.Its.Count == 0) return (int)Err.ENODEV;
            if (!level) return -1;
            return (int)VgicIts.InjectMsi(kvm, ((ulong)e.AddressHi << 32) | e.AddressLo, e.Data, e.Irqchip, e.Pin);
        }
        // vgic_irqfd_set_irq: "spi_id = e->irqchip.pin + VGIC_NR_PRIVATE_IRQS; if (!vgic_valid_spi(kvm, spi_id))
        // return -EINVAL".
        int spi = (int)e.Pin + 32;
        if (spi >= Arm64VmState.Of(kvm).Vgic.NrSpis + 32) return (int)Err.EINVAL;
        return (int)VgicDelivery.Inject(kvm, null, spi, level, PpiOwner.None);
    }

    /// <summary>
    /// An irqfd's eventfd was signalled (irqfd_wakeup): irqfd_update keeps the GSI's route in irqfd->irq_entry only
    /// when it has exactly one; kvm_arch_set_irq_inatomic injects an IRQCHIP one at once with level 1 ("Injecting SPIs
    /// is always possible in atomic context as long as the damn vgic is initialized") — an edge SPI latches, a level
    /// SPI's line stays high until lowered. Anything else (no route, an MSI without an ITS) is -EWOULDBLOCK →
    /// irqfd_inject: kvm_set_irq 1 then 0, or 1 only for a resampling irqfd. Caller holds the kernel lock.
    /// </summary>
    public static void InjectIrqfd(Kvm kvm, uint gsi, bool resample)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        if (dist.Routing.ByGsi.TryGetValue(gsi, out var routes) && routes.Length == 1
            && routes[0].Type == KvmConstants.KVM_IRQ_ROUTING_IRQCHIP && dist.Initialized)
        {
            _ = SetRoute(kvm, routes[0], level: true);
            return;
        }
        _ = SetIrq(kvm, gsi, true);
        if (!resample) _ = SetIrq(kvm, gsi, false);
    }

    /// <summary>
    /// kvm_notify_acked_irq(kvm, 0, intid - 32) from vgic_v3_fold_lr_state when the guest deactivates a level SPI: the
    /// GSI routed to that pin (kvm_irq_map_chip_pin; none: nothing) and its irqfd resampler (irqfd_resampler_ack:
    /// the line goes low for KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, then every resamplefd is signalled). Takes the kernel lock.
    /// </summary>
    public static void NotifyAckedSpi(Kvm kvm, int intid)
    {
        lock (kvm.Kernel.SyncRoot)
        {
            var routing = Arm64VmState.Of(kvm).Vgic.Routing;
            if (!routing.ChipPinGsi.TryGetValue((0, (uint)(intid - 32)), out uint gsi)) return;
            foreach (var resampler in kvm.Irqchip.Resamplers.Where(r => r.Gsi == gsi).ToList()) IrqFds.ResamplerAck(kvm, resampler);
        }
    }

    /// <summary>
    /// kvm_main.c KVM_SIGNAL_MSI: copy_from_user (EFAULT); kvm_send_userspace_msi: "!kvm_arch_irqchip_in_kernel(kvm) ||
    /// (msi->flags &amp; ~KVM_MSI_VALID_DEVID)" → EINVAL; then kvm_set_msi (ENODEV without an ITS) →
    /// vgic_its_inject_msi: 1 delivered, 0 blocked by the ITS mappings, or -errno.
    /// </summary>
    public static long SignalMsiIoctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_msi msi)) return Err.EFAULT;
        if (!Arm64VmState.Of(kvm).Vgic.InKernel || (msi.flags & ~KvmConstants.KVM_MSI_VALID_DEVID) != 0) return Err.EINVAL;
        if (Arm64VmState.Of(kvm).Vgic.Its.Count == 0) return Err.ENODEV;
        return VgicIts.InjectMsi(kvm, ((ulong)msi.address_hi << 32) | msi.address_lo, msi.data, msi.flags, msi.devid);
    }
}
