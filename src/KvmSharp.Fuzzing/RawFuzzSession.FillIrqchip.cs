// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Argument buffers for the in-kernel irqchip (X86/Irqchip/): chip state, IRQ lines, MSIs, the local APIC page, GSI
/// routing tables, and kvm_msrs carrying APIC MSRs (IA32_APIC_BASE, the x2APIC range, IA32_TSC_DEADLINE).
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>
    /// The irqchip requests with likely-valid fields: chip ids 0–2, small GSIs, MSIs to APIC 0–2 with SVR-enabled
    /// register pages, routing tables of up to four irqchip or MSI entries, APIC MSRs on half the MSR requests to a
    /// vCPU. False for any other request (and the other half of those MSR requests).
    /// </summary>
    private bool FillIrqchip(uint request, byte[] b, int fd)
    {
        if (request == KvmIoctls.KVM_GET_IRQCHIP || request == KvmIoctls.KVM_SET_IRQCHIP)
            U32(b, 0, (uint)_rng.Next(4));
        else if (request == KvmIoctls.KVM_IRQ_LINE || request == KvmIoctls.KVM_IRQ_LINE_STATUS)
        {
            U32(b, 0, (uint)_rng.Next(26));
            U32(b, 4, (uint)_rng.Next(2));
        }
        else if (request == KvmIoctls.KVM_SIGNAL_MSI)
        {
            U32(b, 0, 0xfee00000u | ((uint)_rng.Next(3) << 12) | ((uint)_rng.Next(2) << 2));
            // address_hi: x2APIC destination bits 31:8 (KVM_CAP_X2APIC_API's 32-bit IDs), its low byte now and then.
            if (_rng.Next(4) == 0) U32(b, 4, ((uint)_rng.Next(4) << 8) | (_rng.Next(4) == 0 ? (uint)_rng.Next(256) : 0));
            U32(b, 8, (uint)_rng.Next(0x10000));
            U32(b, 12, (uint)_rng.Next(3));
        }
        else if (request == KvmIoctls.KVM_SET_LAPIC)
            U32(b, 0xf0, (uint)_rng.Next(0x200));
        else if (request == KvmIoctls.KVM_SET_GSI_ROUTING)
        {
            int nr = _rng.Next(5);
            U32(b, 0, (uint)nr);
            U32(b, 4, _rng.Next(8) == 0 ? 1u : 0u);
            for (int i = 0; i < nr; i++)
            {
                int at = 8 + 48 * i;
                U32(b, at, (uint)_rng.Next(8));
                U32(b, at + 4, (uint)_rng.Next(1, 4));
                U32(b, at + 8, _rng.Next(8) == 0 ? 1u : 0u);
                U32(b, at + 16, _rng.Next(2) == 0 ? (uint)_rng.Next(4) : 0xfee00000u);
                U32(b, at + 20, (uint)_rng.Next(25));
            }
        }
        // Half the MSR requests on a vCPU carry APIC MSRs; the others get random bytes.
        else if ((request == KvmIoctls.KVM_GET_MSRS || request == KvmIoctls.KVM_SET_MSRS) && KindOf(fd) == FdKind.Vcpu && _rng.Next(2) == 0)
            FillApicMsrs(b);
        else
            return false;
        return true;
    }

    /// <summary>
    /// struct kvm_msrs with 1–4 APIC MSRs (X86/Irqchip/Lapic.cs): IA32_APIC_BASE with enable / EXTD / BSP combinations,
    /// the x2APIC range 0x800–0x8ff and its edges, IA32_TSC_DEADLINE; values small, register-shaped or anything.
    /// </summary>
    private void FillApicMsrs(byte[] b)
    {
        int n = _rng.Next(1, 5);
        U32(b, 0, _rng.Next(8) == 0 ? (uint)Interesting() : (uint)n);
        for (int i = 0; i < n; i++)
        {
            int at = SizeOf<kvm_msrs>() + i * SizeOf<kvm_msr_entry>();
            uint index = _rng.Next(6) switch { 0 => 0x1b, 1 => 0x6e0, 2 => _rng.Next(2) == 0 ? 0x7ffu : 0x900u, _ => 0x800u + (uint)_rng.Next(0x100) };
            U32(b, at, index);
            U64(b, at + 8, index == 0x1b
                ? 0xfee00000UL | ((ulong)(uint)_rng.Next(8) << 8) | (_rng.Next(8) == 0 ? Interesting() & 0x2ff : 0)
                : _rng.Next(3) switch { 0 => Interesting(), 1 => (uint)_rng.Next(0x100) | ((ulong)(uint)_rng.Next(0x10) << 16), _ => (uint)_rng.Next(0x100) });
        }
    }
}
