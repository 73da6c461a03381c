// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// <c>struct kvm_vcpu_arch</c> of an arm64 vCPU: registers, the VCPU_INITIALIZED flag, mp_state and the pending MMIO
/// (vcpu->mmio_needed plus the syndrome KVM keeps in the vCPU's fault info). Attached to the generic
/// <see cref="KvmVcpu"/> without changing it, and collected with it.
/// </summary>
internal sealed class Arm64VcpuState
{
    private static readonly ConditionalWeakTable<KvmVcpu, Arm64VcpuState> States = [];

    private Arm64VcpuState(KvmVcpu vcpu)
    {
        var vm = Arm64VmState.Of(vcpu.Kvm);
        Cpu = new Arm64Cpu { VcpuId = vcpu.Id, IdRegs = vm.IdRegs, Timer = new Arm64Timer(vm.TimerOffsets), PmuVm = vm.Pmu };
        // The vCPU's page cache from the start: stage 2 caches resolved pages in it (Stage2Access, GuestPhysicalMemory.Stage2.cs).
        Interpreter = new A64Interpreter(Cpu, new Stage2Access(vcpu.Kvm) { DirtyRing = vcpu.DirtyRing, PageCache = vcpu.Memory });
        Cpu.CpuInterface = new Vgic.VgicCpuInterface(vcpu);
    }

    public Arm64Cpu Cpu { get; }

    /// <summary>vcpu->guest_debug as KVM_SET_GUEST_DEBUG left it (single-step: Arm64SingleStep; BRK routing, breakpoints and watchpoints: Arm64HostDebug).</summary>
    public uint GuestDebug { get; set; }

    public A64Interpreter Interpreter { get; }

    /// <summary>vcpu->arch.pmu: the KVM_ARM_VCPU_PMU_V3_CTRL state (IRQ, created).</summary>
    public Arm64VcpuPmu Pmu { get; } = new();

    /// <summary>vcpu_get_flag(vcpu, VCPU_INITIALIZED): set by the first successful KVM_ARM_VCPU_INIT.</summary>
    public bool Initialized { get; set; }

    /// <summary>features[0] the vCPU was initialized with (POWER_OFF excluded).</summary>
    public uint Features { get; set; }

    private volatile uint _mpState = Abi.KvmMpState.KVM_MP_STATE_RUNNABLE;

    /// <summary>
    /// vcpu->arch.mp_state: RUNNABLE, STOPPED (POWER_OFF at init, PSCI CPU_OFF / SYSTEM_OFF / SYSTEM_RESET,
    /// KVM_SET_MP_STATE) or SUSPENDED (KVM_SET_MP_STATE: kvm_arm_vcpu_suspend); read by other vCPUs' PSCI calls
    /// (Arm64PsciPower), so volatile.
    /// </summary>
    public uint MpState { get => _mpState; set => _mpState = value; }

    /// <summary>
    /// kvm_arm_vcpu_stopped: mp_state == KVM_MP_STATE_STOPPED. Setting it stops the vCPU or makes it RUNNABLE
    /// (kvm_arm_vcpu_power_off / CPU_ON's "mp_state = RUNNABLE").
    /// </summary>
    public bool Stopped
    {
        get => _mpState == Abi.KvmMpState.KVM_MP_STATE_STOPPED;
        set => _mpState = value ? Abi.KvmMpState.KVM_MP_STATE_STOPPED : Abi.KvmMpState.KVM_MP_STATE_RUNNABLE;
    }

    /// <summary>
    /// vcpu->arch.reset_state with KVM_REQ_VCPU_RESET pending: a PSCI CPU_ON's entry point, applied at the next KVM_RUN.
    /// Set under the kernel lock by another vCPU's thread; read without it (volatile) on every guest entry, so that
    /// the common case — no request — costs no lock (as kvm_request_pending is a plain read of vcpu->requests).
    /// </summary>
    public Arm64ResetState? PendingReset
    {
        get => Volatile.Read(ref _pendingReset);
        set => Volatile.Write(ref _pendingReset, value);
    }

    private Arm64ResetState? _pendingReset;

    /// <summary>
    /// vcpu_has_run_once(vcpu) (arm64 kvm_host.h: vcpu-&gt;pid set): a KVM_RUN got past kvm_arch_vcpu_run_pid_change.
    /// </summary>
    public bool HasRunOnce { get; set; }

    /// <summary>vcpu->arch.timer_cpu.enabled: kvm_timer_enable succeeded at a first KVM_RUN (Arm64TimerAttrs).</summary>
    public bool TimerEnabled { get; set; }

    /// <summary>
    /// The owner of each private interrupt of this vCPU's vGIC (vgic_irq.owner, kvm_vgic_set_owner), for INTIDs
    /// below 32: the timers claim theirs at kvm_timer_enable, a PMU with a PPI at KVM_ARM_VCPU_PMU_V3_INIT.
    /// </summary>
    public PpiOwner[] PpiOwners { get; } = new PpiOwner[32];

    /// <summary>vcpu->arch.steal.base: the PV-time structure's IPA, <see cref="Arm64PvTime.InvalidGpa"/> until set (Arm64PvTime).</summary>
    public ulong StealBase { get; set; } = Arm64PvTime.InvalidGpa;

    /// <summary>vcpu->mmio_needed with the syndrome of the abort that exited.</summary>
    public MmioSyndrome? PendingMmio { get; set; }

    public static Arm64VcpuState Of(KvmVcpu vcpu) => States.GetValue(vcpu, v => new Arm64VcpuState(v));
}

/// <summary>
/// The arm64 part of <c>struct kvm_arch</c> this model needs: the VM-wide vCPU feature set, the vGIC, the ID registers
/// (kvm->arch.id_regs), the timer offsets (kvm->arch.timer_data), the firmware state (psci_version, smccc_feat) and
/// KVM_ARCH_FLAG_HAS_RAN_ONCE.
/// </summary>
internal sealed class Arm64VmState
{
    private static readonly ConditionalWeakTable<Kvm, Arm64VmState> States = [];

    public Arm64VmState() : this(Arm64CpuModel.NeoverseN1) { }

    public Arm64VmState(Arm64CpuModel model) => IdRegs = new Arm64IdRegState(model);

    /// <summary>kvm->arch.vcpu_features once KVM_ARCH_FLAG_VCPU_FEATURES_CONFIGURED is set (null before).</summary>
    public uint? ConfiguredFeatures { get; set; }

    /// <summary>kvm->arch.vgic.</summary>
    public Vgic.VgicDist Vgic { get; } = new();

    public Arm64IdRegState IdRegs { get; }

    public Arm64TimerOffsets TimerOffsets { get; } = new();

    /// <summary>
    /// kvm->arch.timer_data.ppi[], indexed by KVM_ARM_VCPU_TIMER_IRQ_* (VTIMER, PTIMER, HVTIMER, HPTIMER): the timer
    /// PPIs of every vCPU of the VM (kvm_timer_init_vm: default_ppi[]; Arm64TimerAttrs).
    /// </summary>
    public int[] TimerPpis { get; } = [.. Arm64TimerAttrs.DefaultPpis];

    /// <summary>KVM_ARCH_FLAG_TIMER_PPIS_IMMUTABLE: set once some vCPU's timer_irqs_are_valid succeeded.</summary>
    public bool TimerPpisImmutable { get; set; }

    public Arm64FwState Firmware { get; } = new();

    /// <summary>KVM_ARCH_FLAG_SYSTEM_SUSPEND_ENABLED: KVM_ENABLE_CAP(KVM_CAP_ARM_SYSTEM_SUSPEND) succeeded (Psci.cs).</summary>
    public bool SystemSuspendEnabled { get; set; }

    /// <summary>
    /// KVM_ARCH_FLAG_RETURN_NISV_IO_ABORT_TO_USER: KVM_ENABLE_CAP(KVM_CAP_ARM_NISV_TO_USER) succeeded (mmio.c
    /// io_mem_abort exits with KVM_EXIT_ARM_NISV instead of -ENOSYS; Arm64Run.cs).
    /// </summary>
    public bool ReturnNisvIoAbortToUser { get; set; }

    /// <summary>kvm->arch.smccc_filter (Arm64SmcccFilter).</summary>
    public Arm64SmcccFilter SmcccFilter { get; } = new();

    /// <summary>kvm->arch.nr_pmu_counters (and the default PMU) of a VM whose vCPUs have KVM_ARM_VCPU_PMU_V3.</summary>
    public Arm64PmuVm Pmu { get; } = new();

    /// <summary>
    /// kvm_vm_has_ran_once: set by the first KVM_RUN of any vCPU (kvm_arch_vcpu_run_pid_change); from then on ID
    /// registers and firmware bitmaps may only be rewritten with their current values (EBUSY otherwise).
    /// </summary>
    public bool HasRanOnce
    {
        get => IdRegs.HasRanOnce;
        set => IdRegs.HasRanOnce = value;
    }

    public static Arm64VmState Of(Kvm kvm) => States.GetValue(kvm, k => new Arm64VmState(k.Kernel.Config.Arm64Cpu));
}

/// <summary>Who owns a private interrupt of a vCPU (vgic_irq.owner): nobody, one of the EL1 timers, or the PMU.</summary>
internal enum PpiOwner
{
    None,
    VirtualTimer,
    PhysicalTimer,
    Pmu,
}
