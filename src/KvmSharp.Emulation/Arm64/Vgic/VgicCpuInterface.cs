// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// The guest's view of the GICv3 CPU interface system registers of one vCPU once its vGIC is ready: on hardware the
/// ICC_*_EL1 accesses go to the virtual CPU interface (ICH_* state KVM loads), so they complete without a trap. Modelled:
/// ICC_IAR1_EL1 (acknowledge: pending → active, 1023 when nothing is signalled), ICC_EOIR1_EL1 (priority drop, and
/// deactivation with EOImode 0), ICC_HPPIR1_EL1, ICC_RPR_EL1, ICC_PMR_EL1, ICC_IGRPEN1_EL1, ICC_CTLR_EL1 (CBPR,
/// EOImode), ICC_SRE_EL1 (reads 7, writes ignored), ICC_BPR1_EL1 and ICC_DIR_EL1. Group 0 (IAR0/EOIR0/IGRPEN0) and
/// SGI generation are not: they stop the run as unmodelled registers.
/// </summary>
internal sealed class VgicCpuInterface(KvmVcpu vcpu)
{
    private static readonly ushort Iar1 = VgicSysRegs.Enc(3, 0, 12, 12, 0), Eoir1 = VgicSysRegs.Enc(3, 0, 12, 12, 1),
        Hppir1 = VgicSysRegs.Enc(3, 0, 12, 12, 2), Rpr = VgicSysRegs.Enc(3, 0, 12, 11, 3), Dir = VgicSysRegs.Enc(3, 0, 12, 11, 1);

    private bool Active => Arm64VmState.Of(vcpu.Kvm).Vgic.Ready;

    /// <summary>An MRS of an ICC register; false when the encoding is not one (or the vGIC is not running).</summary>
    public bool TryRead(ushort e, out ulong value)
    {
        value = 0;
        if (!Active) return false;
        var kvm = vcpu.Kvm;
        var dist = Arm64VmState.Of(kvm).Vgic;
        var cpu = VgicCpu.Of(vcpu);
        lock (dist)
        {
            if (e == Iar1)
            {
                // Acknowledge: the signalled interrupt becomes active (an edge one stops pending; a level one's
                // latch is consumed, its line stays), and its priority becomes the running priority.
                var irq = VgicDelivery.Signalled(kvm, vcpu);
                if (irq is null)
                {
                    value = 1023; // INTID_SPURIOUS
                    return true;
                }
                irq.PendingLatch = false;
                irq.Active = true;
                cpu.ActiveStack.Add(irq);
                value = (ulong)irq.Intid;
                return true;
            }
            if (e == Hppir1)
            {
                value = (ulong)(VgicDelivery.HighestPending(kvm, vcpu)?.Intid ?? 1023);
                return true;
            }
            if (e == Rpr)
            {
                value = VgicDelivery.RunningPriority(cpu);
                return true;
            }
            if (e == Eoir1 || e == Dir) return false; // write-only: not modelled as reads
            return VgicSysRegs.Get(vcpu, e, out value) == 0;
        }
    }

    /// <summary>An MSR of an ICC register; false when the encoding is not one handled here.</summary>
    public bool TryWrite(ushort e, ulong value)
    {
        if (!Active) return false;
        var kvm = vcpu.Kvm;
        var dist = Arm64VmState.Of(kvm).Vgic;
        var cpu = VgicCpu.Of(vcpu);
        lock (dist)
        {
            if (e == Eoir1)
            {
                // Priority drop of the named interrupt (the innermost active one in a well-behaved guest); with
                // EOImode 0 it is also deactivated.
                int intid = (int)(value & 0xffffff);
                int i = cpu.ActiveStack.FindLastIndex(irq => irq.Intid == intid);
                if (i >= 0)
                {
                    var irq = cpu.ActiveStack[i];
                    cpu.ActiveStack.RemoveAt(i);
                    if (!cpu.EoiMode) irq.Active = false;
                }
                return true;
            }
            if (e == Dir)
            {
                if (VgicMmio.GetIrq(kvm, vcpu, (int)(value & 0xffffff)) is { } irq) irq.Active = false;
                return true;
            }
            // ICC_PMR_EL1 from the guest keeps the implemented priority bits (5: 0xf8).
            if (e == VgicSysRegs.Pmr)
            {
                cpu.Pmr = (uint)(value & 0xf8);
                return true;
            }
            if (e == VgicSysRegs.Sre) return true; // SRE, DFB, DIB are fixed (RAO/WI)
            if (e == VgicSysRegs.Ctlr)
            {
                cpu.Cbpr = (value & 1) != 0;
                cpu.EoiMode = (value & 2) != 0;
                return true;
            }
            if (e == VgicSysRegs.Igrpen1 || e == VgicSysRegs.Bpr1) return VgicSysRegs.Set(vcpu, e, value) == 0;
            return false;
        }
    }
}
