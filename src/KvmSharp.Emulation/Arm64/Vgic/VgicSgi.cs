// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// SGI generation: vgic-mmio-v3.c vgic_v3_dispatch_sgi and vgic_v3_queue_sgi (6.18), reached from sys_regs.c
/// access_gic_sgi when the guest writes ICC_SGI1R_EL1, ICC_ASGI1R_EL1 or ICC_SGI0R_EL1. The register: TargetList
/// [15:0], Aff1 [23:16], INTID [27:24], Aff2 [39:32], IRM [40], Aff3 [55:48] (RS [47:44] is not looked at: only Aff0
/// 0–15 can be named). A vCPU waiting in WFI sees the SGI pending at its next poll (kvm_vcpu_kick in the kernel).
/// </summary>
internal static class VgicSgi
{
    private const int IrmBit = 40;

    /// <summary>
    /// vgic_v3_dispatch_sgi: with IRM set, every vCPU but the caller ("Don't signal the calling VCPU"); otherwise the
    /// vCPUs whose MPIDR is Aff3.Aff2.Aff1 with an Aff0 in the target list (kvm_mpidr_to_vcpu; no such vCPU: nothing).
    /// Caller holds the dist lock.
    /// </summary>
    public static void Dispatch(Kvm kvm, KvmVcpu source, ulong reg, bool allowGroup1)
    {
        int sgi = (int)((reg >> 24) & 0xf);
        if ((reg & (1UL << IrmBit)) != 0)
        {
            foreach (var v in kvm.Vcpus)
            {
                if (!ReferenceEquals(v, source)) Queue(v, sgi, allowGroup1);
            }
            return;
        }
        // SGI_AFFINITY_LEVEL: Aff3 → MPIDR[39:32], Aff2 → [23:16], Aff1 → [15:8].
        ulong mpidr = (((reg >> 48) & 0xff) << 32) | (((reg >> 32) & 0xff) << 16) | (((reg >> 16) & 0xff) << 8);
        uint targets = (uint)(reg & 0xffff);
        for (int aff0 = 0; aff0 < 16; aff0++)
        {
            if ((targets & (1u << aff0)) == 0) continue;
            if (MpidrToVcpu(kvm, mpidr | (uint)aff0) is { } target) Queue(target, sgi, allowGroup1);
        }
    }

    /// <summary>
    /// vgic_v3_queue_sgi: "An access targeting Group0 SGIs can only generate those, while an access targeting Group1
    /// SGIs can generate interrupts of either group" — "if (!irq->group || allow_group1)" the SGI's pending_latch is
    /// set (vgic_queue_irq_unlock); otherwise nothing.
    /// </summary>
    private static void Queue(KvmVcpu target, int sgi, bool allowGroup1)
    {
        var irq = VgicCpu.Of(target).Private[sgi];
        if (!irq.Group || allowGroup1) irq.PendingLatch = true;
    }

    /// <summary>arm.c kvm_mpidr_to_vcpu: the vCPU whose MPIDR_EL1 affinity (MPIDR_HWID_BITMASK) is <paramref name="mpidr"/>.</summary>
    private static KvmVcpu? MpidrToVcpu(Kvm kvm, ulong mpidr) =>
        kvm.Vcpus.FirstOrDefault(v => Arm64PsciPower.MpidrAff(Arm64VcpuState.Of(v).Cpu) == mpidr);
}
