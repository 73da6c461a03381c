// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// A split irqchip's EOI filter (KVM_CAP_SPLIT_IRQCHIP: in-kernel local APICs, the IOAPIC in userspace): which EOIs
/// leave KVM_RUN as KVM_EXIT_IOAPIC_EOI so the userspace IOAPIC can clear a pin's remote IRR.
/// </summary>
internal static class SplitIoapicRoutes
{
    /// <summary>MSI_DATA_TRIGGER_LEVEL (asm/msidef.h, kvm_set_msi_irq: "irq-&gt;trig_mode = !!(msg.data &amp; MSI_DATA_TRIGGER_LEVEL)").</summary>
    private const uint MsiDataTriggerLevel = 1u << 15;

    /// <summary>
    /// x86.c vcpu_scan_ioapic with irqchip_split, at vcpu_enter_guest when KVM_REQ_SCAN_IOAPIC is pending: "if
    /// (!kvm_apic_present(vcpu)) return;" (the bitmap is kept), then bitmap_zero and irq.c kvm_scan_ioapic_routes:
    /// "nr_ioapic_pins = min_t(u32, table-&gt;nr_rt_entries, kvm-&gt;arch.nr_reserved_ioapic_pins)" — every MSI route of
    /// a GSI below the reserved IOAPIC pins (KVM_CAP_SPLIT_IRQCHIP's args[0]) that kvm_set_msi_irq makes
    /// level-triggered ("if (!irq.trig_mode) continue"), then kvm_scan_ioapic_irq: the vector's bit when the vCPU is
    /// the route's destination (kvm_apic_match_dest, no shorthand; dest_id per x86_msi_msg_get_destid, logical by
    /// address bit 2) or the vector is pending in it now (kvm_apic_pending_eoi: IRR or ISR). (The
    /// highest_stale_pending_ioapic_eoi bookkeeping, a rescan after that stale vector's EOI, is not modelled.)
    /// </summary>
    public static void Scan(Vcpu.KvmVcpu vcpu, Lapic apic)
    {
        if (!ApicMap.Present(vcpu)) return;
        var handled = apic.IoapicHandledVectors;
        Array.Clear(handled);
        var chip = vcpu.Kvm.Irqchip;
        bool format = chip.X2apicApiFlags.Format;
        lock (vcpu.Kvm.Kernel.SyncRoot)
        {
            foreach (var e in chip.Routing.Entries)
            {
                if (e.Type != KvmConstants.KVM_IRQ_ROUTING_MSI || e.Gsi >= chip.NrReservedIoapicPins) continue;
                if ((e.Data & MsiDataTriggerLevel) == 0) continue;
                int vector = (byte)e.Data;
                uint dest = ((e.AddressLo >> 12) & 0xff) | (format ? e.AddressHi & 0xffffff00 : 0);
                if (ApicDelivery.MatchesDest(vcpu, dest, logical: (e.AddressLo & (1u << 2)) != 0)
                    || apic.TestVector(Lapic.Irr, vector) || apic.TestVector(Lapic.Isr, vector))
                    handled[vector >> 6] |= 1UL << (vector & 63);
            }
        }
    }

    /// <summary>lapic.c kvm_ioapic_handles_vector: "test_bit(vector, apic-&gt;vcpu-&gt;arch.ioapic_handled_vectors)".</summary>
    public static bool HandlesVector(Lapic apic, int vector) => (apic.IoapicHandledVectors[vector >> 6] & (1UL << (vector & 63))) != 0;

    /// <summary>
    /// lapic.c kvm_lapic_suppress_eoi_broadcast for a split irqchip: SPIV's APIC_SPIV_DIRECTED_EOI counts only with
    /// KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST ("Historically, in split IRQCHIP mode, KVM ignored the suppress EOI
    /// broadcast bit": the quirked default is ioapic_in_kernel, false; DISABLE: false).
    /// </summary>
    public static bool SuppressEoiBroadcast(Vcpu.KvmVcpu vcpu, Lapic apic) =>
        (apic.Get(Lapic.Spiv) & Lapic.SpivDirectedEoi) != 0
        && vcpu.Kvm.Irqchip.X2apicApiFlags.SuppressEoiBroadcast == X2apicApi.SuppressEnabled;
}
