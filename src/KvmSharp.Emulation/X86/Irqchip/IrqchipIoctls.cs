// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// The VM ioctls of the x86 in-kernel irqchip: KVM_CREATE_IRQCHIP, KVM_CAP_SPLIT_IRQCHIP, KVM_IRQ_LINE(_STATUS),
/// KVM_GET/SET_IRQCHIP and KVM_SIGNAL_MSI (KVM_SET_GSI_ROUTING is <see cref="IrqRouting"/>). Errno and order as in
/// Linux 6.18 arch/x86/kvm/x86.c and virt/kvm/kvm_main.c, probed on this host by Conformance/Cases/IrqchipRules.cs.
/// A failed call changes nothing.
/// </summary>
internal static class IrqchipIoctls
{
    /// <summary>MAX_NR_RESERVED_IOAPIC_PINS (arch/x86/include/asm/kvm_host.h) = KVM_MAX_IRQ_ROUTES.</summary>
    public const ulong MaxNrReservedIoapicPins = IrqRouting.MaxIrqRoutes;

    /// <summary>True for the VM requests this class answers (x86 with the irqchip configured).</summary>
    public static bool IsVmRequest(uint request) =>
        request == KvmIoctls.KVM_CREATE_IRQCHIP || request == KvmIoctls.KVM_IRQ_LINE || request == KvmIoctls.KVM_IRQ_LINE_STATUS
        || request == KvmIoctls.KVM_GET_IRQCHIP || request == KvmIoctls.KVM_SET_IRQCHIP || request == KvmIoctls.KVM_SET_GSI_ROUTING
        || request == KvmIoctls.KVM_SIGNAL_MSI;

    public static long VmIoctl(Kvm kvm, uint request, IoctlArg arg)
    {
        if (request == KvmIoctls.KVM_CREATE_IRQCHIP) return Create(kvm);
        if (request == KvmIoctls.KVM_IRQ_LINE || request == KvmIoctls.KVM_IRQ_LINE_STATUS)
            return IrqLine(kvm, arg, status: request == KvmIoctls.KVM_IRQ_LINE_STATUS);
        if (request == KvmIoctls.KVM_GET_IRQCHIP) return GetIrqchip(kvm, arg);
        if (request == KvmIoctls.KVM_SET_IRQCHIP) return SetIrqchip(kvm, arg);
        if (request == KvmIoctls.KVM_SET_GSI_ROUTING) return IrqRouting.SetGsiRoutingIoctl(kvm, arg);
        return SignalMsi(kvm, arg);
    }

    /// <summary>
    /// x86.c kvm_arch_vm_ioctl KVM_CREATE_IRQCHIP: irqchip_in_kernel (full or split) → EEXIST;
    /// kvm-&gt;arch.has_protected_eoi (TDX, vmx/tdx.c tdx_vm_init; 6.18 "Disallow an in-kernel I/O APIC if the VM has
    /// protected EOIs") → ENOTTY; kvm-&gt;created_vcpus → EINVAL; then kvm_pic_init and kvm_ioapic_init, each registering
    /// its in-kernel device on the I/O bus (the PIC's ports 0x20, 0xa0 and 0x4d0; the IOAPIC's MMIO window at
    /// 0xfec00000), and the default routing. The argument is not looked at. The devices stay until the VM goes
    /// (kvm_arch_destroy_vm → kvm_pic_destroy, kvm_ioapic_destroy; IoBus.Destroy).
    /// </summary>
    private static long Create(Kvm kvm)
    {
        var chip = kvm.Irqchip;
        if (chip.InKernel) return Err.EEXIST;
        if (kvm.Type == KvmConstants.KVM_X86_TDX_VM) return Err.ENOTTY;
        if (kvm.Vcpus.Count != 0) return Err.EINVAL;
        // A full I/O bus (NR_IOBUS_DEVS, e.g. 1000 coalesced zones): "r = kvm_pic_init(kvm); if (r) goto
        // create_irqchip_unlock; r = kvm_ioapic_init(kvm); if (r) { kvm_pic_destroy(kvm); goto create_irqchip_unlock; }".
        var pic = new I8259(kvm);
        long r = I8259Ports.Register(kvm, pic);
        if (r != 0) return r;
        var ioapic = new Ioapic(kvm);
        r = IoapicMmio.Register(kvm, ioapic);
        if (r != 0)
        {
            kvm.IoBus.UnregisterAll(KvmBus.Pio, d => d is I8259Ports);
            return r;
        }
        chip.Pic = pic;
        chip.Ioapic = ioapic;
        chip.Routing = IrqRouting.Default();
        chip.Mode = IrqchipMode.Kernel;
        return 0;
    }

    /// <summary>
    /// x86.c kvm_vm_ioctl_enable_cap KVM_CAP_SPLIT_IRQCHIP: args[0] &gt; MAX_NR_RESERVED_IOAPIC_PINS → EINVAL; an irqchip
    /// (either kind) or any created vCPU → EEXIST (probed: EEXIST after KVM_CREATE_VCPU, and 25 pins accepted). The
    /// routing stays as it is (empty).
    /// </summary>
    public static long EnableSplit(Kvm kvm, in kvm_enable_cap cap)
    {
        var chip = kvm.Irqchip;
        if (cap.args[0] > MaxNrReservedIoapicPins) return Err.EINVAL;
        if (chip.InKernel || kvm.Vcpus.Count != 0) return Err.EEXIST;
        chip.Mode = IrqchipMode.Split;
        chip.NrReservedIoapicPins = cap.args[0];
        return 0;
    }

    /// <summary>
    /// kvm_main.c KVM_IRQ_LINE(_STATUS): copy_from_user (EFAULT); x86.c kvm_vm_ioctl_irq_line: !irqchip_in_kernel →
    /// ENXIO, else "irq_event-&gt;status = kvm_set_irq(…, irq_event-&gt;irq, irq_event-&gt;level, line_status)" (any
    /// non-zero level is high: __kvm_irq_line_state's "!!"); _STATUS copies the struct back (EFAULT). 0 otherwise,
    /// whatever the status (-1 for a GSI without routes).
    /// </summary>
    private static long IrqLine(Kvm kvm, IoctlArg arg, bool status)
    {
        if (!arg.CopyFromUser(out kvm_irq_level ev)) return Err.EFAULT;
        if (!kvm.Irqchip.InKernel) return Err.ENXIO;
        ev.irq = unchecked((uint)IrqRouting.SetIrq(kvm, ev.irq, ev.level != 0, lineStatus: status));
        if (status && !arg.CopyToUser(ev)) return Err.EFAULT;
        return 0;
    }

    /// <summary>
    /// x86.c KVM_GET_IRQCHIP: memdup_user (EFAULT); !irqchip_full → ENXIO; kvm_vm_ioctl_get_irqchip: chip_id 0/1 copy
    /// that PIC's 16 bytes, 2 the IOAPIC's 216 (kvm_get_ioapic), anything else EINVAL; the struct goes back whole, so
    /// the union's bytes past the chip's state and pad are the caller's own (probed).
    /// </summary>
    private static long GetIrqchip(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_irqchip c)) return Err.EFAULT;
        var chip = kvm.Irqchip;
        if (!chip.Full) return Err.ENXIO;
        Span<byte> state = c.chip;
        switch (c.chip_id)
        {
            case KvmConstants.KVM_IRQCHIP_PIC_MASTER or KvmConstants.KVM_IRQCHIP_PIC_SLAVE:
                chip.Pic!.Pics[c.chip_id].CopyTo(state);
                break;
            case KvmConstants.KVM_IRQCHIP_IOAPIC:
                chip.Ioapic!.Write(state);
                break;
            default:
                return Err.EINVAL;
        }
        return arg.CopyToUser(c) ? 0 : Err.EFAULT;
    }

    /// <summary>
    /// x86.c KVM_SET_IRQCHIP: memdup_user (EFAULT); !irqchip_full → ENXIO; kvm_vm_ioctl_set_irqchip: a PIC's 16 bytes
    /// are copied in as they are, the IOAPIC through kvm_set_ioapic; another chip_id → EINVAL; "kvm_pic_update_irq(pic)"
    /// afterwards either way (a pending slave request raises master pin 2). Neither path fires the mask notifiers: an IMR
    /// or redirection-entry mask changed here leaves the PIT's pending ticks as they are (probed: a PIC unmasked by
    /// KVM_SET_IRQCHIP delivers every tick that piled up, one unmasked by the guest's OCW1 only the latched one).
    /// </summary>
    private static long SetIrqchip(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_irqchip c)) return Err.EFAULT;
        var chip = kvm.Irqchip;
        if (!chip.Full) return Err.ENXIO;
        ReadOnlySpan<byte> state = c.chip;
        long r = 0;
        switch (c.chip_id)
        {
            case KvmConstants.KVM_IRQCHIP_PIC_MASTER or KvmConstants.KVM_IRQCHIP_PIC_SLAVE:
                state[..16].CopyTo(chip.Pic!.Pics[c.chip_id]);
                break;
            case KvmConstants.KVM_IRQCHIP_IOAPIC:
                chip.Ioapic!.Read(state, kvm);
                break;
            default:
                r = Err.EINVAL;
                break;
        }
        chip.Pic!.UpdateIrq();
        return r;
    }

    /// <summary>
    /// kvm_main.c KVM_SIGNAL_MSI: copy_from_user (EFAULT); irqchip.c kvm_send_userspace_msi: no irqchip in kernel, or
    /// flags beyond KVM_MSI_VALID_DEVID → EINVAL (pad and devid are not looked at on x86); then kvm_set_msi's answer is
    /// the return value as it is — -1 (read as EPERM) when no local APIC could take it, else the number that accepted.
    /// </summary>
    private static long SignalMsi(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_msi msi)) return Err.EFAULT;
        if (!kvm.Irqchip.InKernel || (msi.flags & ~KvmConstants.KVM_MSI_VALID_DEVID) != 0) return Err.EINVAL;
        return ApicDelivery.SetMsi(kvm, msi.address_lo, msi.address_hi, msi.data, level: true);
    }
}
