// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Abi.Arm64.KvmArm64VcpuAttrs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// <c>struct kvm_pmu</c> of a vCPU as the attribute API shows it: irq_num (0 until KVM_ARM_VCPU_PMU_V3_IRQ) and
/// created (KVM_ARM_VCPU_PMU_V3_INIT). Neither is cleared by a later KVM_ARM_VCPU_INIT (kvm_reset_vcpu →
/// kvm_pmu_vcpu_reset only stops the counters).
/// </summary>
internal sealed class Arm64VcpuPmu
{
    public int IrqNum { get; set; }

    /// <summary>vcpu->arch.pmu.created.</summary>
    public bool Created { get; set; }

    /// <summary>kvm_vgic_set_owner(vcpu, irq_num, &amp;vcpu->arch.pmu) succeeded at KVM_ARM_VCPU_PMU_V3_INIT.</summary>
    public bool OwnsIrq { get; set; }

    /// <summary>pmu->irq_level: the overflow line's last level (kvm_pmu_update_state, Arm64PmuCounters.UpdateIrq).</summary>
    public bool IrqLevel { get; set; }

    /// <summary>kvm_arm_pmu_irq_initialized: irq_num &gt;= VGIC_NR_SGIS.</summary>
    public bool IrqInitialized => IrqNum >= VgicNrSgis;

    public const int VgicNrSgis = 16;
}

/// <summary>
/// The KVM_ARM_VCPU_PMU_V3_CTRL vCPU attributes (arch/arm64/kvm/pmu-emul.c kvm_arm_pmu_v3_set_attr / get_attr /
/// has_attr, 6.18; Documentation/virt/kvm/devices/vcpu.rst) and kvm_arm_pmu_v3_enable, which the first KVM_RUN of a
/// PMU vCPU calls. The set path runs under kvm->arch.config_lock (here the kernel lock, then the VM's ID-register lock
/// that guards KVM_ARCH_FLAG_HAS_RAN_ONCE and nr_pmu_counters). The vGIC of Vgic/ tells irqchip_in_kernel,
/// vgic_initialized and nr_spis. The emulated host has one PMU, <see cref="HostPmuType"/> [D]; the event
/// filter decides which events the counters count (Arm64PmuCounters).
/// </summary>
internal static class Arm64PmuAttrs
{
    /// <summary>
    /// The perf type of the emulated host's one PMUv3 ("armv8_pmuv3_0", /sys/bus/event_source/devices/*/type; a real
    /// host numbers its PMUs dynamically from PERF_TYPE_MAX) [D: decided here, no host to read it from].
    /// </summary>
    public const int HostPmuType = 8;

    /// <summary>
    /// __kvm_pmu_event_mask(kvm_arm_pmu_get_pmuver_limit()) + 1: the filter covers the host PMU's event space
    /// (PMUv3p1: 16-bit events), whatever PMUVer the VM's ID_AA64DFR0_EL1 shows.
    /// </summary>
    public const int NrEvents = 1 << 16;

    /// <summary>arm_vgic.h irq_is_ppi: VGIC_NR_SGIS &lt;= irq &lt; VGIC_NR_PRIVATE_IRQS.</summary>
    private static bool IsPpi(int irq) => irq >= Arm64VcpuPmu.VgicNrSgis && irq < 32;

    /// <summary>arm_vgic.h irq_is_spi: VGIC_NR_PRIVATE_IRQS &lt;= irq &lt;= VGIC_MAX_SPI (1019).</summary>
    private static bool IsSpi(int irq) => irq >= 32 && irq <= 1019;

    /// <summary>vgic.h vgic_valid_spi: an SPI below nr_spis + VGIC_NR_PRIVATE_IRQS.</summary>
    private static bool ValidSpi(Arm64VmState vm, int irq) => irq >= 32 && irq < vm.Vgic.NrSpis + 32;

    /// <summary>kvm_vcpu_has_pmu → vcpu_has_feature: the VM-wide feature set (a not yet initialised vCPU of a PMU VM has it).</summary>
    private static bool HasPmu(Arm64VmState vm) =>
        vm.ConfiguredFeatures is uint f && (f & (1u << KvmSharp.Abi.Arm64.KvmArm64Constants.KVM_ARM_VCPU_PMU_V3)) != 0;

    /// <summary>kvm_arm_pmu_v3_set_attr (guest.c takes config_lock around it).</summary>
    public static long SetAttr(KvmVcpu vcpu, in kvm_device_attr attr)
    {
        var kvm = vcpu.Kvm;
        var vm = Arm64VmState.Of(kvm);
        var pmu = Arm64VcpuState.Of(vcpu).Pmu;
        var config = kvm.Kernel.Config;
        lock (kvm.Kernel.SyncRoot)
        lock (vm.IdRegs)
        {
            if (!HasPmu(vm)) return Err.ENODEV;
            if (pmu.Created) return Err.EBUSY;
            switch (attr.attr)
            {
                case KVM_ARM_VCPU_PMU_V3_IRQ:
                {
                    if (!vm.Vgic.InKernel) return Err.EINVAL;
                    if (!UserMemory.CopyFromUser(config, attr.addr, out int irq)) return Err.EFAULT;
                    // "The PMU overflow interrupt can be a PPI or a valid SPI."
                    if (!(IsPpi(irq) || IsSpi(irq))) return Err.EINVAL;
                    if (!IrqIsValid(kvm, irq)) return Err.EINVAL;
                    if (pmu.IrqInitialized) return Err.EBUSY;
                    pmu.IrqNum = irq;
                    return 0;
                }
                case KVM_ARM_VCPU_PMU_V3_FILTER:
                    return SetFilter(vm, config, attr.addr);
                case KVM_ARM_VCPU_PMU_V3_SET_PMU:
                {
                    if (!UserMemory.CopyFromUser(config, attr.addr, out int pmuId)) return Err.EFAULT;
                    // kvm_arm_pmu_v3_set_pmu: ENXIO unless a host PMU has that perf type; EBUSY once the VM ran (or with
                    // a filter for another PMU: there is only one here); kvm_arm_set_pmu resets nr_pmu_counters.
                    if (pmuId != HostPmuType) return Err.ENXIO;
                    if (vm.HasRanOnce) return Err.EBUSY;
                    vm.Pmu.Counters = Arm64PmuVm.MaxCounters;
                    return 0;
                }
                case KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS:
                {
                    if (!UserMemory.CopyFromUser(config, attr.addr, out uint n)) return Err.EFAULT;
                    // kvm_arm_pmu_v3_set_nr_counters: kvm->arch.arm_pmu is set (the first PMU vCPU's init chose the
                    // default PMU); more than kvm_arm_pmu_get_max_counters → EINVAL. No has-ran-once check upstream.
                    if (n > Arm64PmuVm.MaxCounters) return Err.EINVAL;
                    vm.Pmu.Counters = (int)n;
                    return 0;
                }
                case KVM_ARM_VCPU_PMU_V3_INIT:
                    return Init(vm, pmu, Arm64VcpuState.Of(vcpu).PpiOwners);
            }
            return Err.ENXIO;
        }
    }

    /// <summary>
    /// pmu_irq_is_valid: "For one VM the interrupt type must be same for each vcpu. As a PPI, the interrupt number is
    /// the same for all vcpus, while as an SPI it must be a separate number per vcpu" — this vCPU included, so the same
    /// SPI twice is EINVAL where the same PPI twice reaches the EBUSY check.
    /// </summary>
    private static bool IrqIsValid(KvmMain.Kvm kvm, int irq)
    {
        foreach (var other in kvm.Vcpus)
        {
            var p = Arm64VcpuState.Of(other).Pmu;
            if (!p.IrqInitialized) continue;
            if (IsPpi(irq) ? p.IrqNum != irq : p.IrqNum == irq) return false;
        }
        return true;
    }

    /// <summary>
    /// KVM_ARM_VCPU_PMU_V3_FILTER: copy_from_user of struct kvm_pmu_event_filter (EFAULT); a range past the event
    /// space or an action other than ALLOW/DENY → EINVAL; EBUSY once the VM ran. The first filter sets the default
    /// (deny all after an ALLOW, allow all after a DENY), then the range is set or cleared.
    /// </summary>
    private static long SetFilter(Arm64VmState vm, EmulatorConfig config, ulong addr)
    {
        if (!UserMemory.CopyFromUser(config, addr, out KvmSharp.Abi.Arm64.kvm_pmu_event_filter filter)) return Err.EFAULT;
        if ((uint)filter.base_event + filter.nevents > NrEvents ||
            (filter.action != KVM_PMU_EVENT_ALLOW && filter.action != KVM_PMU_EVENT_DENY))
            return Err.EINVAL;
        if (vm.HasRanOnce) return Err.EBUSY;
        bool allow = filter.action == KVM_PMU_EVENT_ALLOW;
        if (vm.Pmu.Filter is null)
        {
            vm.Pmu.Filter = new ulong[NrEvents / 64];
            if (!allow) Array.Fill(vm.Pmu.Filter, ulong.MaxValue);
        }
        for (int e = filter.base_event; e < filter.base_event + filter.nevents; e++)
        {
            if (allow) vm.Pmu.Filter[e >> 6] |= 1UL << (e & 63);
            else vm.Pmu.Filter[e >> 6] &= ~(1UL << (e & 63));
        }
        return 0;
    }

    /// <summary>
    /// kvm_arm_pmu_v3_init: with an in-kernel vGIC it must be initialised (ENODEV) and the IRQ set (ENXIO), and
    /// kvm_vgic_set_owner takes the IRQ for the PMU ("SGIs and LPIs cannot be wired up to any device": an SPI beyond
    /// nr_spis is EINVAL; a PPI another owner holds is EEXIST — the timers claim theirs at kvm_timer_enable, which a
    /// first KVM_RUN of a PMU vCPU reaches before failing in kvm_arm_pmu_v3_enable). Then pmu.created; every later set
    /// is EBUSY.
    /// </summary>
    private static long Init(Arm64VmState vm, Arm64VcpuPmu pmu, PpiOwner[] ppiOwners)
    {
        bool owns = false;
        if (vm.Vgic.InKernel)
        {
            if (!vm.Vgic.Initialized) return Err.ENODEV;
            if (!pmu.IrqInitialized) return Err.ENXIO;
            if (!IsPpi(pmu.IrqNum) && !ValidSpi(vm, pmu.IrqNum)) return Err.EINVAL;
            if (IsPpi(pmu.IrqNum))
            {
                if (ppiOwners[pmu.IrqNum] is not (PpiOwner.None or PpiOwner.Pmu)) return Err.EEXIST;
                ppiOwners[pmu.IrqNum] = PpiOwner.Pmu;
            }
            owns = true;
        }
        pmu.OwnsIrq = owns;
        pmu.Created = true;
        return 0;
    }

    /// <summary>
    /// kvm_arm_pmu_v3_get_attr: only the IRQ — EINVAL without an in-kernel irqchip, ENODEV without the PMU, ENXIO
    /// before it is set, then put_user (EFAULT). Any other attribute is ENXIO.
    /// </summary>
    public static long GetAttr(KvmVcpu vcpu, in kvm_device_attr attr)
    {
        if (attr.attr != KVM_ARM_VCPU_PMU_V3_IRQ) return Err.ENXIO;
        var vm = Arm64VmState.Of(vcpu.Kvm);
        var pmu = Arm64VcpuState.Of(vcpu).Pmu;
        int irq;
        lock (vcpu.Kvm.Kernel.SyncRoot)
        {
            if (!vm.Vgic.InKernel) return Err.EINVAL;
            if (!HasPmu(vm)) return Err.ENODEV;
            if (!pmu.IrqInitialized) return Err.ENXIO;
            irq = pmu.IrqNum;
        }
        return UserMemory.CopyToUser(vcpu.Kvm.Kernel.Config, attr.addr, irq) ? 0 : Err.EFAULT;
    }

    /// <summary>kvm_arm_pmu_v3_has_attr: IRQ, INIT, FILTER, SET_PMU and SET_NR_COUNTERS with the PMU feature; else ENXIO.</summary>
    public static long HasAttr(KvmVcpu vcpu, in kvm_device_attr attr)
    {
        if (attr.attr > KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS) return Err.ENXIO;
        var vm = Arm64VmState.Of(vcpu.Kvm);
        lock (vcpu.Kvm.Kernel.SyncRoot) return HasPmu(vm) ? 0 : Err.ENXIO;
    }

    /// <summary>
    /// The first KVM_RUN of a PMU vCPU (kvm_arch_vcpu_run_pid_change, after kvm_vgic_map_resources and
    /// kvm_timer_enable, Arm64TimerAttrs.Enable): kvm_arm_pmu_v3_enable: not created → EINVAL;
    /// with a vGIC the IRQ must be a PPI or a valid SPI (a PMU initialised before the vGIC existed has none: EINVAL);
    /// without one, no IRQ may be set.
    /// </summary>
    public static long Enable(KvmVcpu vcpu)
    {
        var vm = Arm64VmState.Of(vcpu.Kvm);
        var pmu = Arm64VcpuState.Of(vcpu).Pmu;
        lock (vcpu.Kvm.Kernel.SyncRoot)
        {
            if (!HasPmu(vm)) return 0;
            if (!pmu.Created) return Err.EINVAL;
            if (vm.Vgic.InKernel)
            {
                if (!IsPpi(pmu.IrqNum) && !ValidSpi(vm, pmu.IrqNum)) return Err.EINVAL;
            }
            else if (pmu.IrqInitialized)
            {
                return Err.EINVAL;
            }
            return 0;
        }
    }
}

/// <summary>
/// KVM_SET/GET/HAS_DEVICE_ATTR on an arm64 vCPU (arm.c kvm_arch_vcpu_ioctl: copy_from_user of struct kvm_device_attr,
/// EFAULT; no KVM_ARM_VCPU_INIT needed → guest.c kvm_arm_vcpu_arch_{set,get,has}_attr, by group):
/// KVM_ARM_VCPU_PMU_V3_CTRL (<see cref="Arm64PmuAttrs"/>, set under config_lock), KVM_ARM_VCPU_TIMER_CTRL
/// (<see cref="Arm64TimerAttrs"/>), KVM_ARM_VCPU_PVTIME_CTRL (<see cref="Arm64PvTime"/>); any other group → ENXIO.
/// </summary>
internal static class Arm64VcpuAttrs
{
    public static bool IsRequest(uint request) =>
        request == KvmIoctls.KVM_SET_DEVICE_ATTR || request == KvmIoctls.KVM_GET_DEVICE_ATTR || request == KvmIoctls.KVM_HAS_DEVICE_ATTR;

    public static long Ioctl(KvmVcpu vcpu, uint request, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_device_attr attr)) return Err.EFAULT;
        bool set = request == KvmIoctls.KVM_SET_DEVICE_ATTR, get = request == KvmIoctls.KVM_GET_DEVICE_ATTR;
        return attr.group switch
        {
            KVM_ARM_VCPU_PMU_V3_CTRL => set ? Arm64PmuAttrs.SetAttr(vcpu, attr) : get ? Arm64PmuAttrs.GetAttr(vcpu, attr) : Arm64PmuAttrs.HasAttr(vcpu, attr),
            KVM_ARM_VCPU_TIMER_CTRL => set ? Arm64TimerAttrs.SetAttr(vcpu, attr) : get ? Arm64TimerAttrs.GetAttr(vcpu, attr) : Arm64TimerAttrs.HasAttr(attr),
            KVM_ARM_VCPU_PVTIME_CTRL => set ? Arm64PvTime.SetAttr(vcpu, attr) : get ? Arm64PvTime.GetAttr(vcpu, attr) : Arm64PvTime.HasAttr(attr),
            _ => Err.ENXIO,
        };
    }
}
