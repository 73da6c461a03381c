// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// The guest's view of the GICv3 CPU interface system registers of one vCPU once its vGIC is ready: on hardware the
/// ICC_*_EL1 accesses go to the virtual CPU interface (ICH_* state KVM loads), so they complete without a trap; the SGI
/// generation registers (ICC_SGI1R_EL1, ICC_ASGI1R_EL1, ICC_SGI0R_EL1) trap to KVM (sys_regs.c access_gic_sgi →
/// <see cref="VgicSgi"/>). Modelled: ICC_IAR0_EL1 / ICC_IAR1_EL1 (acknowledge the signalled interrupt of that group:
/// pending → active, 1023 when nothing of the group is signalled), ICC_EOIR0_EL1 / ICC_EOIR1_EL1 (priority drop, and
/// deactivation with EOImode 0), ICC_HPPIR0_EL1 / ICC_HPPIR1_EL1, ICC_RPR_EL1, ICC_PMR_EL1, ICC_IGRPEN0_EL1,
/// ICC_IGRPEN1_EL1, ICC_CTLR_EL1 (CBPR, EOImode), ICC_SRE_EL1 (reads 7, writes ignored), ICC_BPR0_EL1, ICC_BPR1_EL1,
/// ICC_AP0R&lt;n&gt;_EL1 / ICC_AP1R&lt;n&gt;_EL1 (an acknowledge sets the active group priority's bit, its priority drop
/// clears it) and ICC_DIR_EL1. Preemption compares group priorities: the priority masked by the group's binary point
/// (<see cref="VgicDelivery.GroupPriority"/>).
/// </summary>
internal sealed class VgicCpuInterface(KvmVcpu vcpu)
{
    private static readonly ushort Iar0 = VgicSysRegs.Enc(3, 0, 12, 8, 0), Eoir0 = VgicSysRegs.Enc(3, 0, 12, 8, 1),
        Hppir0 = VgicSysRegs.Enc(3, 0, 12, 8, 2), Iar1 = VgicSysRegs.Enc(3, 0, 12, 12, 0), Eoir1 = VgicSysRegs.Enc(3, 0, 12, 12, 1),
        Hppir1 = VgicSysRegs.Enc(3, 0, 12, 12, 2), Rpr = VgicSysRegs.Enc(3, 0, 12, 11, 3), Dir = VgicSysRegs.Enc(3, 0, 12, 11, 1);

    // ICC_SGI1R_EL1 (op2 5), ICC_ASGI1R_EL1 (op2 6), ICC_SGI0R_EL1 (op2 7): S3_0_C12_C11_{5,6,7}.
    private static readonly ushort Sgi1r = VgicSysRegs.Enc(3, 0, 12, 11, 5), Asgi1r = VgicSysRegs.Enc(3, 0, 12, 11, 6),
        Sgi0r = VgicSysRegs.Enc(3, 0, 12, 11, 7);

    private bool Active => Arm64VmState.Of(vcpu.Kvm).Vgic.Ready;

    /// <summary>
    /// An access the architecture makes UNDEFINED (taken to EL1 with EC 0): reading a write-only register (EOIR0/1,
    /// DIR, and the SGI registers KVM traps — sys_regs.c access_gic_sgi "if (!p->is_write) return
    /// read_from_write_only(vcpu, p, r)", which injects an UNDEF) or writing a read-only one (IAR0/1, HPPIR0/1, RPR).
    /// </summary>
    public bool IsUndefined(ushort e, bool write)
    {
        if (!Active) return false;
        return write
            ? e == Iar0 || e == Iar1 || e == Hppir0 || e == Hppir1 || e == Rpr
            : e == Eoir0 || e == Eoir1 || e == Dir || e == Sgi1r || e == Asgi1r || e == Sgi0r;
    }

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
            if (e == Iar0 || e == Iar1)
            {
                value = Acknowledge(kvm, cpu, group1: e == Iar1);
                return true;
            }
            if (e == Hppir0 || e == Hppir1)
            {
                // ICC_HPPIR<g>_EL1: the highest-priority pending interrupt if it is of group g, else 1023.
                var irq = VgicDelivery.HighestPending(kvm, vcpu);
                value = (ulong)(irq is not null && irq.Group == (e == Hppir1) ? irq.Intid : 1023);
                return true;
            }
            if (e == Rpr)
            {
                value = VgicDelivery.RunningPriority(cpu);
                return true;
            }
            return VgicSysRegs.Has(e) && VgicSysRegs.Get(vcpu, e, out value) == 0;
        }
    }

    /// <summary>
    /// Acknowledge (ICC_IAR0/1_EL1): the signalled interrupt, when it is of the register's group, becomes active (an
    /// edge one stops pending; a level one's latch is consumed, its line stays), its priority becomes the running
    /// priority and its bit is set in the group's active-priority register; otherwise 1023 (INTID_SPURIOUS).
    /// </summary>
    private ulong Acknowledge(Kvm kvm, VgicCpu cpu, bool group1)
    {
        var irq = VgicDelivery.Signalled(kvm, vcpu);
        if (irq is null || irq.Group != group1) return 1023;
        irq.PendingLatch = false;
        irq.Active = true;
        cpu.ActiveStack.Add(irq);
        SetActivePriority(cpu, irq, on: true);
        return (ulong)irq.Intid;
    }

    /// <summary>
    /// ICH_AP0R&lt;n&gt;_EL2 / ICH_AP1R&lt;n&gt;_EL2 (seen by the guest and by KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS): bit
    /// (group priority &gt;&gt; (8 - PRIbits)) of the interrupt's group (hyp/vgic-v3-sr.c __vgic_v3_set_active_priority:
    /// "pre = __vgic_v3_pri_to_pre(pri, vmcr, grp); ap = pre &gt;&gt; __vgic_v3_bpr_min()"). The priority drop clears it
    /// unless another active interrupt of the group holds the same group priority.
    /// </summary>
    private static void SetActivePriority(VgicCpu cpu, VgicIrq irq, bool on)
    {
        uint pre = VgicDelivery.GroupPriority(cpu, irq.Priority, irq.Group);
        int bit = (int)(pre >> (8 - cpu.NumPriBits));
        var ap = irq.Group ? cpu.Ap1r : cpu.Ap0r;
        if (bit / 32 >= ap.Length) return;
        uint mask = 1u << (bit % 32);
        if (on) ap[bit / 32] |= mask;
        else if (!cpu.ActiveStack.Any(i => i.Group == irq.Group && VgicDelivery.GroupPriority(cpu, i.Priority, i.Group) == pre))
            ap[bit / 32] &= ~mask;
    }

    /// <summary>An MSR of an ICC register; false when the encoding is not one handled here.</summary>
    public bool TryWrite(ushort e, ulong value)
    {
        if (!Active) return false;
        var kvm = vcpu.Kvm;
        var dist = Arm64VmState.Of(kvm).Vgic;
        var cpu = VgicCpu.Of(vcpu);
        VgicIrq? deactivated = null;
        bool handled;
        lock (dist)
        {
            handled = Write(kvm, cpu, e, value, ref deactivated);
        }
        // vgic-v3.c vgic_v3_fold_lr_state: a level SPI's list register carries ICH_LR_EOI (vgic_v3_populate_lr), so its
        // deactivation calls kvm_notify_acked_irq(kvm, 0, intid - VGIC_NR_PRIVATE_IRQS) — outside the dist lock here,
        // as the irqfd resamplers it reaches take the kernel lock.
        if (deactivated is { Edge: false, Intid: >= 32 } spi) VgicIrqfd.NotifyAckedSpi(kvm, spi.Intid);
        return handled;
    }

    private bool Write(Kvm kvm, VgicCpu cpu, ushort e, ulong value, ref VgicIrq? deactivated)
    {
        if (e == Eoir0 || e == Eoir1)
        {
            // Priority drop of the named interrupt of the register's group (the innermost active one in a
            // well-behaved guest); with EOImode 0 it is also deactivated.
            int intid = (int)(value & 0xffffff);
            bool group1 = e == Eoir1;
            int i = cpu.ActiveStack.FindLastIndex(irq => irq.Intid == intid && irq.Group == group1);
            if (i >= 0)
            {
                var irq = cpu.ActiveStack[i];
                cpu.ActiveStack.RemoveAt(i);
                SetActivePriority(cpu, irq, on: false);
                if (!cpu.EoiMode && irq.Active)
                {
                    irq.Active = false;
                    deactivated = irq;
                }
            }
            return true;
        }
        if (e == Dir)
        {
            if (VgicMmio.GetIrq(kvm, vcpu, (int)(value & 0xffffff)) is { Active: true } irq)
            {
                irq.Active = false;
                deactivated = irq;
            }
            return true;
        }
        if (e == Sgi1r || e == Asgi1r || e == Sgi0r)
        {
            // access_gic_sgi: "a ICC_SGI0R_EL1 access generates Group0 SGIs only, while ICC_SGI1R_EL1 can generate
            // either group … ICC_ASGI1R_EL1 is effectively equivalent to ICC_SGI0R_EL1".
            VgicSgi.Dispatch(kvm, vcpu, value, allowGroup1: e == Sgi1r);
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
        // IGRPEN0/1, BPR0/1 and the implemented AP0R<n>/AP1R<n> (an AP index beyond vgic_v3_max_apr_idx is not one).
        return VgicSysRegs.Has(e) && VgicSysRegs.Set(vcpu, e, value) == 0;
    }
}
