// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>The APIC side of PV EOI (lapic.c apic_sync_pv_eoi_to_guest / apic_sync_pv_eoi_from_guest, X86/PvEoi.cs).</summary>
internal sealed partial class Lapic
{
    /// <summary>apic->irr_pending without APICv: some vector is set in IRR.</summary>
    public bool IrrPending
    {
        get
        {
            using var scope = _lock.EnterScope();
            return HighestVector(Irr) >= 0;
        }
    }

    /// <summary>apic->highest_isr_cache: the vector last moved to ISR while it was the only one there, else -1.</summary>
    public int HighestIsrCache
    {
        get
        {
            using var scope = _lock.EnterScope();
            return _highestIsrCache;
        }
    }

    /// <summary>
    /// lapic.c apic_set_eoi as apic_sync_pv_eoi_from_guest calls it for a guest that cleared its PV EOI bit: the
    /// highest in-service vector is cleared, PPR recomputed and the IOAPIC told (kvm_ioapic_send_eoi) — what a write
    /// of the EOI register does. Returns the vector, or -1 with nothing in service.
    /// </summary>
    public int SetEoi()
    {
        bool dirty = false;
        (uint Low, uint High)? ipi = null;
        int eoi = -1, vector;
        lock (_lock)
        {
            Sync();
            vector = HighestVector(Isr);
            RegWrite(Eoi, 0, ref dirty, ref ipi, ref eoi);
        }
        if (eoi >= 0) IoapicEoi?.Invoke(eoi);
        return vector;
    }
}
