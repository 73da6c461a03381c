// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The xAPIC MMIO page of an in-kernel local APIC (lapic.c apic_mmio_in_range: hardware-enabled, at apic_base,
/// 4 KiB): accesses there are the kernel's (apic_mmio_read / apic_mmio_write), not KVM_EXIT_MMIO.
/// </summary>
internal sealed partial class X86Emulator
{
    private const ulong ApicBaseEnable = 1UL << 11, ApicBaseX2apic = 1UL << 10;

    /// <summary>vcpu->arch.apic when the VM has an irqchip (set at vCPU creation).</summary>
    public Irqchip.Lapic? InKernelApic { get; set; }

    /// <summary>True when the access at <paramref name="gpa"/> was the in-kernel APIC's (x2APIC mode: not handled).</summary>
    private bool TryApicMmio(ulong gpa, Span<byte> piece, bool write)
    {
        if (InKernelApic is not { } apic) return false;
        ulong apicBase = _cpu.Sregs.apic_base;
        if ((apicBase & ApicBaseEnable) == 0 || (apicBase & ApicBaseX2apic) != 0) return false;
        ulong start = apicBase & ~0xfffUL;
        if (gpa < start || gpa >= start + 0x1000) return false;
        int offset = (int)(gpa - start);
        if (!write)
        {
            apic.MmioRead(offset, piece);
            return true;
        }
        int eoi = apic.MmioWrite(offset, piece);
        // apic_set_eoi → kvm_ioapic_send_eoi for a level-triggered vector: the IOAPIC entries with that vector lose
        // remote IRR (ioapic.c kvm_ioapic_update_eoi_one; re-servicing a still-high line is not modelled).
        if (eoi >= 0 && _kvm.Irqchip.Ioapic is { } ioapic) ioapic.Eoi(eoi);
        return true;
    }
}
