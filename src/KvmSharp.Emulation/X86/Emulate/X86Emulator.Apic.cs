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
    /// apic_set_eoi → lapic.c kvm_ioapic_send_eoi. With the full irqchip: Irqchip/Ioapic.cs SendEoi (the vCPU's
    /// ioapic_handled_vectors, then kvm_ioapic_update_eoi with TMR's trigger mode). With a split irqchip: "if
    /// (!kvm_ioapic_handles_vector(apic, vector)) return;" (the bitmap of the last scan, Irqchip/SplitIoapicRoutes.cs), "if
    /// (kvm_lapic_suppress_eoi_broadcast(apic)) return;", then "vcpu-&gt;arch.pending_ioapic_eoi = vector;
    /// kvm_make_request(KVM_REQ_IOAPIC_EOI_EXIT, vcpu)" — the exit comes at the next vcpu_enter_guest, after the
    /// EOI's instruction (<see cref="TakeIoapicEoiExit"/>).
    /// </summary>
    private void SendIoapicEoi(int vector)
    {
        if (_kvm.Irqchip.Ioapic is { } ioapic)
        {
            ioapic.SendEoi(_vcpu, vector);
            return;
        }
        if (_kvm.Irqchip.Mode != Irqchip.IrqchipMode.Split || _vcpu.Lapic is not { } apic) return;
        if (!Irqchip.SplitIoapicRoutes.HandlesVector(apic, vector)) return;
        if (Irqchip.SplitIoapicRoutes.SuppressEoiBroadcast(_vcpu, apic)) return;
        _pendingIoapicEoi = vector;
    }

    /// <summary>
    /// vcpu_enter_guest: "if (kvm_check_request(KVM_REQ_SCAN_IOAPIC, vcpu)) vcpu_scan_ioapic(vcpu);" — right after the
    /// KVM_REQ_IOAPIC_EOI_EXIT check. Only a split irqchip's scan is kept (<see cref="Irqchip.SplitIoapicRoutes.Scan"/>);
    /// the in-kernel IOAPIC evaluates its filter at the EOI (Irqchip/Ioapic.cs HandlesVector).
    /// </summary>
    public void ScanIoapicIfRequested()
    {
        if (_vcpu.Lapic is not { ScanIoapicRequested: true } apic) return;
        apic.ScanIoapicRequested = false;
        if (_kvm.Irqchip.Mode == Irqchip.IrqchipMode.Split) Irqchip.SplitIoapicRoutes.Scan(_vcpu, apic);
    }

    /// <summary>vcpu-&gt;arch.pending_ioapic_eoi with KVM_REQ_IOAPIC_EOI_EXIT made; -1 when no request is pending.</summary>
    private int _pendingIoapicEoi = -1;

    /// <summary>
    /// x86.c vcpu_enter_guest: "if (kvm_check_request(KVM_REQ_IOAPIC_EOI_EXIT, vcpu)) { … if
    /// (test_bit(vcpu-&gt;arch.pending_ioapic_eoi, vcpu-&gt;arch.ioapic_handled_vectors)) { vcpu-&gt;run-&gt;exit_reason =
    /// KVM_EXIT_IOAPIC_EOI; vcpu-&gt;run-&gt;eoi.vector = vcpu-&gt;arch.pending_ioapic_eoi; r = 0; goto out; } }" — true
    /// when the request was pending and the exit is set (the request is consumed either way; the vector was in
    /// ioapic_handled_vectors at the EOI).
    /// </summary>
    public bool TakeIoapicEoiExit()
    {
        int vector = _pendingIoapicEoi;
        if (vector < 0) return false;
        _pendingIoapicEoi = -1;
        _vcpu.Run.SetIoapicEoi((byte)vector);
        return true;
    }
}
