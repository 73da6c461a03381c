// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// PV EOI (arch/x86/kvm/lapic.c): MSR_KVM_PV_EOI_EN names a guest byte whose bit 0 (KVM_PV_EOI_ENABLED) KVM sets at
/// an entry right after injecting an interrupt that needs no IOAPIC EOI (apic_sync_pv_eoi_to_guest); a guest that
/// clears the bit instead of writing the EOI register has its EOI done by KVM at the next VM exit
/// (apic_sync_pv_eoi_from_guest), and a bit still set at that exit is cleared by KVM (the guest then EOIs normally).
/// <para>
/// The interpreter has no VM exits of its own: the exit side runs where KVM certainly exits — the end of KVM_RUN, a
/// guest RDMSR/WRMSR, a HLT that blocks, and the kick of a new interrupt accepted into IRR (ApicInjection.TryQueue).
/// An exit KVM takes elsewhere (an in-kernel PIO or MMIO access, a host interrupt) leaves the EOI for one of those.
/// </para>
/// </summary>
internal static class PvEoi
{
    /// <summary>KVM_PV_EOI_ENABLED (KVM_PV_EOI_BIT 0 of the guest's byte).</summary>
    private const byte Enabled = 1;

    /// <summary>
    /// kvm_lapic_set_pv_eoi(vcpu, data, sizeof(u8)): "if (!IS_ALIGNED(addr, 4)) return 1;" (addr = data without
    /// KVM_MSR_ENABLED); with KVM_MSR_ENABLED the byte must map (kvm_gfn_to_hva_cache_init, else the error and the MSR
    /// keeps its old value); then "vcpu->arch.pv_eoi.msr_val = data". No in-kernel APIC is needed to take the value.
    /// </summary>
    public static int SetMsr(X86Cpu cpu, ulong data)
    {
        ulong addr = data & ~KvmPvMsrs.MsrEnabled;
        if ((addr & 3) != 0) return 1;
        if ((data & KvmPvMsrs.MsrEnabled) != 0 && !KvmGuestMemory.HvaCacheInit(cpu.Msrs.Vm, addr, 1)) return 1;
        cpu.Msrs.Pv.PvEoi = data;
        return 0;
    }

    private static bool IsEnabled(KvmPvState pv) => (pv.PvEoi & KvmPvMsrs.MsrEnabled) != 0;

    /// <summary>
    /// vcpu_enter_guest after kvm_check_and_inject_events, "if (kvm_lapic_enabled(vcpu)) … kvm_lapic_sync_to_vapic(vcpu)"
    /// → apic_sync_pv_eoi_to_guest: nothing when PV EOI is off, "apic-&gt;irr_pending" (IRR set: could be nested),
    /// "apic-&gt;highest_isr_cache == -1" (not exactly one vector in service) or "kvm_ioapic_handles_vector(apic,
    /// apic-&gt;highest_isr_cache)" (the IOAPIC needs the EOI); else pv_eoi_set_pending: the byte is written as
    /// KVM_PV_EOI_ENABLED and, if that worked, KVM_APIC_PV_EOI_PENDING is set.
    /// </summary>
    public static void SyncToGuest(KvmVcpu vcpu)
    {
        var pv = vcpu.Cpu.Msrs.Pv;
        if (!IsEnabled(pv) || vcpu.Lapic is not { } apic) return;
        if ((vcpu.Cpu.Sregs.apic_base & Irqchip.Lapic.BaseEnable) == 0 || !apic.SoftwareEnabled) return;
        int isr = apic.HighestIsrCache;
        if (apic.IrrPending || isr < 0 || IoapicHandles(vcpu, apic, isr)) return;
        Span<byte> b = [Enabled];
        if (KvmGuestMemory.Access(vcpu, pv.PvEoi & ~KvmPvMsrs.MsrEnabled, b, write: true)) pv.PvEoiPending = true;
    }

    /// <summary>
    /// vcpu_enter_guest after the exit: "if (unlikely(vcpu-&gt;arch.apic_attention)) kvm_lapic_sync_from_vapic(vcpu)" →
    /// apic_sync_pv_eoi_from_guest with KVM_APIC_PV_EOI_PENDING: pv_eoi_test_and_clr_pending reads the byte (a failed
    /// read or write returns false with the pending bit kept), clears a set bit back to 0 and drops the pending bit;
    /// "if (pv_eoi_test_and_clr_pending(vcpu)) return; vector = apic_set_eoi(apic);" — the guest cleared it, so KVM EOIs.
    /// </summary>
    public static void SyncFromGuest(KvmVcpu vcpu)
    {
        var pv = vcpu.Cpu.Msrs.Pv;
        if (!pv.PvEoiPending || !IsEnabled(pv) || vcpu.Lapic is not { } apic) return;
        ulong gpa = pv.PvEoi & ~KvmPvMsrs.MsrEnabled;
        Span<byte> b = [0];
        bool stillSet = false;
        if (KvmGuestMemory.Access(vcpu, gpa, b, write: false))
        {
            stillSet = (b[0] & Enabled) != 0;
            b[0] = 0;
            if (!stillSet || KvmGuestMemory.Access(vcpu, gpa, b, write: true)) pv.PvEoiPending = false;
            else stillSet = false;
        }
        if (!stillSet) apic.SetEoi();
    }

    /// <summary>A guest MSR access is a VM exit: the pending PV EOI is looked at first.</summary>
    public static void OnGuestMsrExit(X86Cpu cpu)
    {
        if (cpu.Msrs.Pv.PvEoiPending && KvmGuestMemory.Owner(cpu) is { } vcpu) SyncFromGuest(vcpu);
    }

    /// <summary>lapic.c kvm_ioapic_handles_vector: vcpu-&gt;arch.ioapic_handled_vectors, full or split irqchip.</summary>
    private static bool IoapicHandles(KvmVcpu vcpu, Irqchip.Lapic apic, int vector) =>
        vcpu.Kvm.Irqchip.Ioapic is { } ioapic
            ? ioapic.HandlesVectorOf(vcpu, vector)
            : vcpu.Kvm.Irqchip.Mode == Irqchip.IrqchipMode.Split && Irqchip.SplitIoapicRoutes.HandlesVector(apic, vector);
}
