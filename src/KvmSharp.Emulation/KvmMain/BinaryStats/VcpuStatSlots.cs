// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.KvmMain.BinaryStats;

/// <summary>
/// Where the counters the emulator keeps lie in a vCPU's values (-1 where the arch's table has none). The emulator
/// counts only what it can count truthfully, each where upstream x86 does:
/// <list type="bullet">
/// <item><c>exits</c>: every time the interpreter stops guest execution for an exit reason (vcpu_enter_guest's
/// <c>++vcpu-&gt;stat.exits</c> after each VM exit), and every HLT (or TDVMCALL&lt;HLT&gt;) the kernel handles itself with
/// an in-kernel LAPIC, the vCPU blocking inside KVM_RUN (X86Emulator.Execute.cs, X86Emulator.Tdcall.cs; observed on
/// Linux 6.18 kvm_pvm: 2 such HLTs count exits 2, HaltPollingRules.every_hlt_counts_a_halt_exit). Other instructions
/// completed in the kernel (CPUID, RDMSR/WRMSR, in-kernel LAPIC MMIO, in-kernel PIC port I/O) add none, as on this
/// host (ExitStatistics.instructions_completed_in_the_kernel_count_no_exit_here); on VMX/SVM each intercepted one is
/// an exit, and host interrupts and EPT violations are too, so real hardware shows at least as many.</item>
/// <item><c>io_exits</c> (svm.c io_interception / vmx.c handle_io), <c>mmio_exits</c> (x86.c x86_emulate_instruction,
/// <c>vcpu-&gt;mmio_needed</c>), <c>halt_exits</c> (x86.c __kvm_emulate_halt), <c>irq_window_exits</c> and
/// <c>request_irq_exits</c> (interrupt_window_interception / vcpu_run's KVM_EXIT_IRQ_WINDOW_OPEN), <c>signal_exits</c>
/// (kvm_handle_signal_exit): one per exit of that kind.</item>
/// <item><c>fpu_reload</c>: one per KVM_RUN that reaches kvm_arch_vcpu_ioctl_run (kvm_put_guest_fpu on its way out,
/// immediate_exit included).</item>
/// <item><c>irq_injections</c> / <c>nmi_injections</c>: svm_inject_irq / svm_inject_nmi, once per delivered
/// KVM_INTERRUPT or NMI.</item>
/// <item>virt/kvm/kvm_main.c kvm_vcpu_halt / kvm_vcpu_block / update_halt_poll_stats / kvm_vcpu_wake_up for a HALTED vCPU
/// with an in-kernel LAPIC (and, blocking only, one waiting for INIT/SIPI): <c>blocking</c>, the halt-polling counters,
/// times and histograms, <c>halt_wait_ns</c> / <c>halt_wait_hist</c> and <c>halt_wakeup</c> (KvmMain/HaltPolling.cs).
/// <c>halt_poll_invalid</c> stays 0 (vcpu_valid_wakeup is true outside s390).</item>
/// </list>
/// Everything else stays 0: page-fault and MMU counters (no SPTEs), TLB flushes,
/// insn_emulation (which instructions KVM emulates depends on the hardware), req_event, preemption, nested state.
/// arm64 vCPUs count what Arm64/Arm64VcpuStats.cs lists (exits by kind, signal exits, the generic halt statistics).
/// </summary>
internal sealed class VcpuStatSlots
{
    public VcpuStatSlots(StatsTable table)
    {
        Exits = table.Slot("exits");
        IoExits = table.Slot("io_exits");
        MmioExits = table.Slot("mmio_exits");
        HaltExits = table.Slot("halt_exits");
        SignalExits = table.Slot("signal_exits");
        IrqWindowExits = table.Slot("irq_window_exits");
        RequestIrqExits = table.Slot("request_irq_exits");
        FpuReload = table.Slot("fpu_reload");
        IrqInjections = table.Slot("irq_injections");
        NmiInjections = table.Slot("nmi_injections");
        HvcExitStat = table.Slot("hvc_exit_stat");
        WfiExitStat = table.Slot("wfi_exit_stat");
        MmioExitUser = table.Slot("mmio_exit_user");
        MmioExitKernel = table.Slot("mmio_exit_kernel");
        HaltWakeup = table.Slot("halt_wakeup");
        HaltWaitNs = table.Slot("halt_wait_ns");
        HaltWaitHist = table.Slot("halt_wait_hist");
        Blocking = table.Slot("blocking");
        HaltSuccessfulPoll = table.Slot("halt_successful_poll");
        HaltAttemptedPoll = table.Slot("halt_attempted_poll");
        HaltPollInvalid = table.Slot("halt_poll_invalid");
        HaltPollSuccessNs = table.Slot("halt_poll_success_ns");
        HaltPollFailNs = table.Slot("halt_poll_fail_ns");
        HaltPollSuccessHist = table.Slot("halt_poll_success_hist");
        HaltPollFailHist = table.Slot("halt_poll_fail_hist");
    }

    public int Exits { get; }
    public int IoExits { get; }
    public int MmioExits { get; }
    public int HaltExits { get; }
    public int SignalExits { get; }
    public int IrqWindowExits { get; }
    public int RequestIrqExits { get; }
    public int FpuReload { get; }
    public int IrqInjections { get; }
    public int NmiInjections { get; }
    public int HvcExitStat { get; }
    public int WfiExitStat { get; }
    public int MmioExitUser { get; }
    public int MmioExitKernel { get; }
    public int HaltWakeup { get; }
    public int HaltWaitNs { get; }

    /// <summary>The first of the HALT_POLL_HIST_COUNT buckets of halt_wait_hist.</summary>
    public int HaltWaitHist { get; }

    public int Blocking { get; }

    public int HaltSuccessfulPoll { get; }
    public int HaltAttemptedPoll { get; }
    public int HaltPollInvalid { get; }
    public int HaltPollSuccessNs { get; }
    public int HaltPollFailNs { get; }

    /// <summary>The first of the HALT_POLL_HIST_COUNT buckets of halt_poll_success_hist.</summary>
    public int HaltPollSuccessHist { get; }

    /// <summary>The first of the HALT_POLL_HIST_COUNT buckets of halt_poll_fail_hist.</summary>
    public int HaltPollFailHist { get; }
}
