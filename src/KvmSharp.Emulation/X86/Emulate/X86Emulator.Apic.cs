// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The xAPIC MMIO page of an in-kernel local APIC (lapic.c apic_mmio_in_range: 4 KiB at apic-&gt;base_address, which
/// __kvm_apic_set_base keeps whatever the enable bits say): accesses there are the kernel's (apic_mmio_read /
/// apic_mmio_write), not KVM_EXIT_MMIO — also with the APIC hardware-disabled or in x2APIC mode, where
/// KVM_X86_QUIRK_LAPIC_MMIO_HOLE (on by default) reads all ones and drops writes; with the quirk disabled such an
/// access is not the APIC's and goes on to the MMIO bus and userspace (Irqchip/Lapic.Registers.cs).
/// </summary>
internal sealed partial class X86Emulator
{
    private Irqchip.Lapic? _inKernelApic;

    /// <summary>
    /// vcpu->arch.apic when the VM has an irqchip (set at vCPU creation): setting it connects the APIC to this vCPU's
    /// state (APIC base, CPUID, TSC; <see cref="Irqchip.Lapic.Attach"/>), to its MSRs (x2APIC and TSC-deadline MSRs,
    /// <see cref="MsrState.Lapic"/>) and an EOI written through an MSR to the in-kernel IOAPIC (kvm_ioapic_send_eoi).
    /// </summary>
    public Irqchip.Lapic? InKernelApic
    {
        get => _inKernelApic;
        set
        {
            _inKernelApic = value;
            _cpu.Msrs.Lapic = value;
            if (value is null) return;
            value.Attach(_cpu, () => Irqchip.X2apicApi.AdvertiseDirectedEoi(_kvm));
            value.IoapicEoi = SendIoapicEoi;
        }
    }

    /// <summary>
    /// True when the access at <paramref name="gpa"/> was the in-kernel APIC's (x86.c vcpu_mmio_read / vcpu_mmio_write:
    /// the APIC's kvm_iodevice first; -EOPNOTSUPP falls through to kvm_io_bus_read/write and then userspace).
    /// </summary>
    private bool TryApicMmio(ulong gpa, Span<byte> piece, bool write)
    {
        if (InKernelApic is not { } apic) return false;
        // "apic->base_address = apic->vcpu->arch.apic_base & MSR_IA32_APICBASE_BASE".
        ulong start = _cpu.Sregs.apic_base & 0xffff_ffff_ffff_f000UL;
        if (gpa < start || gpa >= start + 0x1000) return false;
        int offset = (int)(gpa - start);
        bool hole = Quirks.Has(_kvm, KvmX86Quirks.KVM_X86_QUIRK_LAPIC_MMIO_HOLE);
        if (!write) return apic.MmioRead(offset, piece, hole);
        if (!apic.MmioWrite(offset, piece, hole, out int eoi)) return false;
        if (eoi >= 0) SendIoapicEoi(eoi);
        return true;
    }

    /// <summary>
    /// apic_set_eoi → lapic.c kvm_ioapic_send_eoi with the full irqchip (Irqchip/Ioapic.cs SendEoi: the vCPU's
    /// ioapic_handled_vectors, then kvm_ioapic_update_eoi with TMR's trigger mode). A split irqchip's
    /// KVM_EXIT_IOAPIC_EOI is not modelled.
    /// </summary>
    private void SendIoapicEoi(int vector)
    {
        if (_kvm.Irqchip.Ioapic is { } ioapic) ioapic.SendEoi(_vcpu, vector);
    }
}
