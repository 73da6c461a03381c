// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Abi.Arm64.KvmArm64VcpuAttrs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The KVM_ARM_VCPU_TIMER_CTRL vCPU attributes (arch/arm64/kvm/arch_timer.c kvm_arm_timer_set_attr / get_attr /
/// has_attr, 6.18) and kvm_timer_enable at a vCPU's first KVM_RUN. The PPIs are per VM (kvm->arch.timer_data.ppi[])
/// though set through any vCPU. Set: no in-kernel vGIC → EINVAL; get_user → EFAULT; not a PPI → EINVAL; once
/// KVM_ARCH_FLAG_TIMER_PPIS_IMMUTABLE → EBUSY; unknown attribute → ENXIO (after the PPI check). No uniqueness check at
/// set time ("The verdict will be given on first vcpu run, for each vcpu"): timer_irqs_are_valid claims each timer's
/// PPI with kvm_vgic_set_owner and fails the run with EINVAL when two timers share one or the PMU holds it.
/// Documentation/virt/kvm/devices/vcpu.rst lists only EINVAL (invalid number) and EBUSY ("One or more VCPUs has already
/// run") and says a set "configures all VCPUs created at that time"; the code wins: EBUSY only once a first run's
/// verdict succeeded (a run that failed it freezes nothing), ENXIO/EFAULT as above, and the value is the VM's, so
/// vCPUs created later use it too. All four attributes exist without nested virtualization
/// (has_attr and get_attr know HVTIMER/HPTIMER on any VM); only nr_timers() = 2 of them are claimed at the first run.
/// </summary>
internal static class Arm64TimerAttrs
{
    /// <summary>arch_timer.c default_ppi[] by attribute: VTIMER 27, PTIMER 30, HVTIMER 28, HPTIMER 26.</summary>
    public static readonly int[] DefaultPpis = [27, 30, 28, 26];

    /// <summary>arm_vgic.h irq_is_ppi: VGIC_NR_SGIS (16) &lt;= irq &lt; VGIC_NR_PRIVATE_IRQS (32).</summary>
    private static bool IsPpi(int irq) => irq >= 16 && irq < 32;

    /// <summary>kvm_arm_timer_set_attr.</summary>
    public static long SetAttr(KvmVcpu vcpu, in kvm_device_attr attr)
    {
        var kvm = vcpu.Kvm;
        var vm = Arm64VmState.Of(kvm);
        lock (kvm.Kernel.SyncRoot)
        {
            if (!vm.Vgic.InKernel) return Err.EINVAL;
        }
        if (!UserMemory.CopyFromUser(kvm.Kernel.Config, attr.addr, out int irq)) return Err.EFAULT;
        if (!IsPpi(irq)) return Err.EINVAL;
        // mutex_lock(&vcpu->kvm->arch.config_lock).
        lock (kvm.Kernel.SyncRoot)
        {
            if (vm.TimerPpisImmutable) return Err.EBUSY;
            if (attr.attr > KVM_ARM_VCPU_TIMER_IRQ_HPTIMER) return Err.ENXIO;
            vm.TimerPpis[attr.attr] = irq;
            return 0;
        }
    }

    /// <summary>kvm_arm_timer_get_attr: timer_irq(timer) of any of the four timers (no vGIC needed), put_user → EFAULT.</summary>
    public static long GetAttr(KvmVcpu vcpu, in kvm_device_attr attr)
    {
        if (attr.attr > KVM_ARM_VCPU_TIMER_IRQ_HPTIMER) return Err.ENXIO;
        var vm = Arm64VmState.Of(vcpu.Kvm);
        int irq;
        lock (vcpu.Kvm.Kernel.SyncRoot) irq = vm.TimerPpis[attr.attr];
        return UserMemory.CopyToUser(vcpu.Kvm.Kernel.Config, attr.addr, irq) ? 0 : Err.EFAULT;
    }

    /// <summary>kvm_arm_timer_has_attr: the four timer attributes, else ENXIO.</summary>
    public static long HasAttr(in kvm_device_attr attr) => attr.attr <= KVM_ARM_VCPU_TIMER_IRQ_HPTIMER ? 0 : Err.ENXIO;

    /// <summary>
    /// kvm_timer_enable at the first KVM_RUN (after kvm_vgic_map_resources, before kvm_arm_pmu_v3_enable): once
    /// enabled, nothing more; without a vGIC just enabled; with one, timer_irqs_are_valid under config_lock — for
    /// TIMER_PTIMER then TIMER_VTIMER (nr_timers without NV), kvm_vgic_set_owner(vcpu, ppi, ctx) (EEXIST when another
    /// owner holds the PPI: stop), then "valid = hweight32(ppis) == nr_timers(vcpu)", which also catches one PPI for
    /// both timers; valid sets KVM_ARCH_FLAG_TIMER_PPIS_IMMUTABLE, invalid fails the run with EINVAL. An owner taken
    /// before the failure stays taken, as upstream.
    /// </summary>
    public static long Enable(KvmVcpu vcpu)
    {
        var state = Arm64VcpuState.Of(vcpu);
        var vm = Arm64VmState.Of(vcpu.Kvm);
        lock (vcpu.Kvm.Kernel.SyncRoot)
        {
            if (state.TimerEnabled) return 0;
            if (vm.Vgic.InKernel)
            {
                uint ppis = 0;
                (int Ppi, PpiOwner Owner)[] timers =
                [
                    (vm.TimerPpis[KVM_ARM_VCPU_TIMER_IRQ_PTIMER], PpiOwner.PhysicalTimer),
                    (vm.TimerPpis[KVM_ARM_VCPU_TIMER_IRQ_VTIMER], PpiOwner.VirtualTimer),
                ];
                foreach (var (ppi, owner) in timers)
                {
                    var current = state.PpiOwners[ppi];
                    if (current != PpiOwner.None && current != owner) break;
                    state.PpiOwners[ppi] = owner;
                    ppis |= 1u << ppi;
                }
                if (System.Numerics.BitOperations.PopCount(ppis) != timers.Length) return Err.EINVAL;
                vm.TimerPpisImmutable = true;
            }
            state.TimerEnabled = true;
            return 0;
        }
    }
}
