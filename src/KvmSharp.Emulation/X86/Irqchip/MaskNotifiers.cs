// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/ioapic.c (6.18; irq_comm.c before 6.17) kvm_register_irq_mask_notifier / kvm_fire_mask_notifiers: the
/// guest's mask changes of an irqchip pin reach the notifiers registered on the GSI routed to that pin
/// (kvm_irq_map_chip_pin: no route, no notifier). They fire from the guest's own writes only — i8259.c pic_ioport_write
/// OCW1, once for each IMR bit that changed (ICW1's "s-&gt;imr = 0" fires none), and ioapic.c ioapic_write_indirect when
/// a redirection entry's mask bit changed — never from KVM_SET_IRQCHIP (a memcpy of the PIC state; kvm_set_ioapic).
/// The one notifier in the kernel is the PIT's on GSI 0 (i8254.c pit_mask_notifer, while reinject is on).
/// </summary>
internal static class MaskNotifiers
{
    /// <summary>
    /// kvm_fire_mask_notifiers(kvm, <paramref name="irqchip"/>, <paramref name="pin"/>, <paramref name="masked"/>):
    /// PIC pins as 0–15 (slave 8–15) with KVM_IRQCHIP_PIC_MASTER/SLAVE, IOAPIC pins 0–23. Caller holds the kernel lock.
    /// </summary>
    public static void Fire(Kvm kvm, uint irqchip, uint pin, bool masked)
    {
        if (!kvm.Irqchip.Routing.ChipPinGsi.TryGetValue((irqchip, pin), out uint gsi)) return;
        // kvm_pit_set_reinject: "kvm_register_irq_mask_notifier(kvm, 0, &pit->mask_notifier)".
        if (gsi == 0) kvm.Pit?.MaskNotify(masked);
    }
}
