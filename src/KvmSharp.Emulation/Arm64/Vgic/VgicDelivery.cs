// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// Interrupt delivery through the vGIC: KVM_IRQ_LINE (arm.c kvm_vm_ioctl_irq_line → vgic.c kvm_vgic_inject_irq), the
/// timers' PPIs (arch_timer.c kvm_timer_update_irq), and the choice of the interrupt a vCPU is signalled — the
/// highest-priority pending, enabled, inactive interrupt routed to it in a group its CPU interface enables
/// (ICC_IGRPEN0_EL1 / ICC_IGRPEN1_EL1), while GICD_CTLR.EnableGrp1 is set (KVM has one dist->enabled for both groups:
/// vgic-mmio-v3.c vgic_mmio_write_v3_misc keeps only GICD_CTLR_ENABLE_SS_G1) and its priority is below ICC_PMR_EL1
/// and the running priority (the GICv3 virtual CPU interface the list registers feed in hardware; vgic-v3.c
/// vgic_v3_populate_lr copies irq->group into ICH_LR_GROUP). A Group 0 interrupt is signalled as a virtual FIQ, a
/// Group 1 one as a virtual IRQ (GICv3 with ICC_SRE_EL1.SRE = 1, which KVM fixes). Callers hold nothing, the
/// <see cref="VgicDist"/> lock is taken here.
/// </summary>
internal static class VgicDelivery
{
    // arm64 uapi asm/kvm.h: KVM_ARM_IRQ_{VCPU2,TYPE,VCPU,NUM}_{SHIFT,MASK} and the types.
    private const int TypeShift = 24, Vcpu2Shift = 28, VcpuShift = 16;
    private const uint TypeCpu = 0, TypeSpi = 1, TypePpi = 2;

    /// <summary>
    /// kvm_vm_ioctl_irq_line: irq = vcpu2[31:28] type[27:24] vcpu[23:16] num[15:0]. CPU lines need a VM without an
    /// in-kernel irqchip (ENXIO here: the emulator has no userspace-irqchip lines — EINVAL then, as for an unknown
    /// type); PPIs name an existing vCPU (EINVAL) and an INTID in 16..31 (EINVAL); SPIs an INTID ≥ 32 (EINVAL); both
    /// need the vGIC (ENXIO). kvm_main.c copies the structure back unchanged for KVM_IRQ_LINE_STATUS.
    /// </summary>
    public static long IrqLine(Kvm kvm, IoctlArg arg, bool status)
    {
        if (!arg.CopyFromUser(out kvm_irq_level line)) return Err.EFAULT;
        uint irq = line.irq;
        uint type = (irq >> TypeShift) & 0xf;
        int vcpuId = (int)(((irq >> VcpuShift) & 0xff) + ((irq >> Vcpu2Shift) & 0xf) * 256);
        int num = (int)(irq & 0xffff);
        bool level = line.level != 0;
        var dist = Arm64VmState.Of(kvm).Vgic;
        long r;
        switch (type)
        {
            case TypeCpu:
                // "if (irqchip_in_kernel(kvm)) return -ENXIO"; vcpu_interrupt_line (a VM without a vGIC) is not modelled.
                r = dist.InKernel ? Err.ENXIO : Err.EINVAL;
                break;
            case TypePpi:
            {
                if (!dist.InKernel) return Err.ENXIO;
                var vcpu = kvm.Vcpus.FirstOrDefault(v => v.Id == vcpuId);
                if (vcpu is null) return Err.EINVAL;
                if (num < 16 || num >= 32) return Err.EINVAL;
                r = Inject(kvm, vcpu, num, level, PpiOwner.None);
                break;
            }
            case TypeSpi:
                if (!dist.InKernel) return Err.ENXIO;
                if (num < 32) return Err.EINVAL;
                r = Inject(kvm, null, num, level, PpiOwner.None);
                break;
            default:
                return Err.EINVAL;
        }
        if (r == 0 && status && !arg.CopyToUser(line)) return Err.EFAULT;
        return r;
    }

    /// <summary>
    /// kvm_vgic_inject_irq: vgic_lazy_init (a GICv3 is never initialized implicitly: EBUSY), EINVAL for a private
    /// INTID without a vCPU or an INTID beyond nr_irqs; vgic_validate_injection drops (0) an injection by another owner
    /// than the interrupt's (the timers own their PPIs) and one that changes nothing; then a level interrupt takes
    /// the line, an edge one latches pending.
    /// </summary>
    public static long Inject(Kvm kvm, KvmVcpu? vcpu, int intid, bool level, PpiOwner owner)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        lock (dist)
        {
            if (!dist.Initialized) return Err.EBUSY;
            if (vcpu is null && intid < 32) return Err.EINVAL;
            var irq = VgicMmio.GetIrq(kvm, vcpu, intid);
            if (irq is null) return Err.EINVAL;
            var irqOwner = intid < 32 && vcpu is not null ? Arm64VcpuState.Of(vcpu).PpiOwners[intid] : PpiOwner.None;
            if (irqOwner != owner) return 0;
            if (!irq.Edge)
            {
                if (irq.LineLevel == level) return 0;
                irq.LineLevel = level;
            }
            else if (level) irq.PendingLatch = true;
        }
        return 0;
    }

    /// <summary>
    /// kvm_timer_update_irq for the virtual and physical EL1 timers: the PPI's line follows kvm_timer_should_fire
    /// (ENABLE set, IMASK clear, the counter at or past CVAL), injected as the timer (the PPI's owner).
    /// </summary>
    public static void UpdateTimers(KvmVcpu vcpu, Arm64Cpu cpu)
    {
        var vm = Arm64VmState.Of(vcpu.Kvm);
        if (!vm.Vgic.Initialized || !Arm64VcpuState.Of(vcpu).TimerEnabled) return;
        Fire(vcpu, cpu.Timer, cpu.Timer.Virtual, vm.TimerPpis[0], PpiOwner.VirtualTimer);
        Fire(vcpu, cpu.Timer, cpu.Timer.Physical, vm.TimerPpis[1], PpiOwner.PhysicalTimer);
    }

    private static void Fire(KvmVcpu vcpu, Arm64Timer timer, Arm64TimerContext t, int ppi, PpiOwner owner)
    {
        ulong ctl = timer.ReadCtl(t);
        // ARCH_TIMER_CTRL_ENABLE (0), _IT_MASK (1), _IT_STAT (2).
        bool fire = (ctl & 1) != 0 && (ctl & 2) == 0 && (ctl & 4) != 0;
        _ = Inject(vcpu.Kvm, vcpu, ppi, fire, owner);
    }

    /// <summary>The interrupts that can reach <paramref name="vcpu"/>: its private ones, the SPIs routed to it
    /// (irq->target_vcpu = kvm_mpidr_to_vcpu(irq->mpidr)) and the LPIs targeting it (VgicLpi).</summary>
    private static IEnumerable<VgicIrq> Routed(Kvm kvm, KvmVcpu vcpu)
    {
        foreach (var irq in VgicCpu.Of(vcpu).Private) yield return irq;
        ulong aff = Arm64SysRegs.Mpidr(vcpu.Id) & 0xffffff;
        foreach (var irq in Arm64VmState.Of(kvm).Vgic.Spis)
            if (irq.Mpidr == aff) yield return irq;
        // LPIs (vgic_target_oracle: irq->target_vcpu), while the redistributor has LPIs enabled (disabling them
        // flushes its queued LPIs: vgic_flush_pending_lpis).
        if (!VgicCpu.Of(vcpu).LpisEnabled) yield break;
        foreach (var (irq, _) in Arm64VmState.Of(kvm).Vgic.Lpis.Values)
            if (ReferenceEquals(irq.TargetVcpu, vcpu)) yield return irq;
    }

    /// <summary>
    /// The highest-priority (lowest value, then lowest INTID) pending, enabled, inactive interrupt for
    /// <paramref name="vcpu"/> in a group its CPU interface enables (GICv3 HighestPriorityVirtualInterrupt skips a list
    /// register whose group's ICH_VMCR_EL2.VENG0/VENG1 is clear), with the distributor enabled. ICC_HPPIR0_EL1 /
    /// ICC_HPPIR1_EL1 show it when it is of their group (1023 otherwise). Caller holds the dist lock.
    /// </summary>
    public static VgicIrq? HighestPending(Kvm kvm, KvmVcpu vcpu)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        var cpu = VgicCpu.Of(vcpu);
        if (!dist.Initialized || !dist.Enabled || !(cpu.Grpen0 || cpu.Grpen1)) return null;
        VgicIrq? best = null;
        foreach (var irq in Routed(kvm, vcpu))
        {
            if (!irq.Pending || !irq.Enabled || irq.Active || !(irq.Group ? cpu.Grpen1 : cpu.Grpen0)) continue;
            if (best is null || irq.Priority < best.Priority) best = irq;
        }
        return best;
    }

    /// <summary>
    /// The group (preemption) priority of <paramref name="priority"/>: hyp/vgic-v3-sr.c __vgic_v3_pri_to_pre —
    /// "pri &amp; (GENMASK(7, 0) &lt;&lt; bpr)" with bpr = BPR0 + 1 for Group 0 and, for Group 1, BPR1 or (ICC_CTLR_EL1.CBPR,
    /// __vgic_v3_get_bpr1) BPR0 + 1 capped at 7.
    /// </summary>
    public static uint GroupPriority(VgicCpu cpu, uint priority, bool group1)
    {
        int bpr = !group1 ? (int)(cpu.Bpr0 & 7) + 1 : cpu.Cbpr ? (int)Math.Min((cpu.Bpr0 & 7) + 1, 7) : (int)(cpu.Bpr1 & 7);
        return priority & (0xffu << bpr) & 0xff;
    }

    /// <summary>
    /// The running priority: the group priority of the innermost acknowledged, not yet EOIed interrupt (0xff: idle) —
    /// the highest active priority the active-priority registers record (__vgic_v3_get_highest_active_priority).
    /// </summary>
    public static uint RunningPriority(VgicCpu cpu) =>
        cpu.ActiveStack.Count == 0 ? 0xffu : cpu.ActiveStack.Min(i => GroupPriority(cpu, i.Priority, i.Group));

    /// <summary>
    /// The interrupt the CPU interface signals: <see cref="HighestPending"/> with its priority below PMR and its group
    /// priority below the running priority (hyp/vgic-v3-sr.c __vgic_v3_read_iar: "if (lr_prio &gt;= pmr) goto
    /// spurious; … if (__vgic_v3_pri_to_pre(lr_prio, vmcr, grp) &gt;= __vgic_v3_get_highest_active_priority()) goto
    /// spurious" — the binary point decides preemption).
    /// </summary>
    public static VgicIrq? Signalled(Kvm kvm, KvmVcpu vcpu)
    {
        var cpu = VgicCpu.Of(vcpu);
        var irq = HighestPending(kvm, vcpu);
        return irq is not null && irq.Priority < (cpu.Pmr & 0xff) &&
               GroupPriority(cpu, irq.Priority, irq.Group) < RunningPriority(cpu) ? irq : null;
    }

    /// <summary>kvm_arch_vcpu_runnable's vgic part (kvm_vgic_vcpu_pending_irq): an interrupt is signalled.</summary>
    public static bool Pending(KvmVcpu vcpu, Arm64Cpu cpu) => Line(vcpu, cpu) != VgicLine.None;

    /// <summary>
    /// Which exception line the virtual CPU interface drives for <paramref name="vcpu"/>: vFIQ for a signalled Group 0
    /// interrupt, vIRQ for a Group 1 one (GICv3: "Group 0 interrupts are always signalled as FIQs" once system
    /// registers are enabled; KVM's vgic_sre is SRE | DFB | DIB), none when nothing is signalled.
    /// </summary>
    public static VgicLine Line(KvmVcpu vcpu, Arm64Cpu cpu)
    {
        var dist = Arm64VmState.Of(vcpu.Kvm).Vgic;
        if (!dist.Ready) return VgicLine.None;
        UpdateTimers(vcpu, cpu);
        lock (dist)
        {
            var irq = Signalled(vcpu.Kvm, vcpu);
            return irq is null ? VgicLine.None : irq.Group ? VgicLine.Irq : VgicLine.Fiq;
        }
    }
}

/// <summary>The exception line a vCPU's virtual GIC CPU interface asserts.</summary>
internal enum VgicLine
{
    None,
    Irq,
    Fiq,
}
