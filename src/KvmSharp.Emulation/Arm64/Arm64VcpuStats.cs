// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain.BinaryStats;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The arm64 vCPU statistics (arch/arm64/kvm/guest.c kvm_vcpu_stats_desc, 6.18), counted where 6.18 counts them:
/// <list type="bullet">
/// <item><c>exits</c>: arm.c kvm_arch_vcpu_ioctl_run "vcpu->stat.exits++" after every return from the guest, before
/// handle_exit — here once per exception the interpreter stops on for KVM: HVC, SMC (HCR_EL2.TSC), WFI, a data abort on
/// MMIO (with or without ISV), a stage-2 abort that fails KVM_RUN, a software step. Exits a CPU takes that the
/// interpreter has no cause for (host interrupts and kicks, trapped system registers completed in the kernel, stage-2
/// faults on first touch) are not counted, so real hardware shows at least as many.</item>
/// <item><c>hvc_exit_stat</c>: handle_exit.c handle_hvc "vcpu->stat.hvc_exit_stat++" (handle_smc counts nothing).</item>
/// <item><c>wfi_exit_stat</c>: handle_exit.c kvm_handle_wfx "vcpu->stat.wfi_exit_stat++" for a trapped WFI (TWI is
/// set: kvm_vcpu_should_clear_twi is false without GICv4 vLPIs/vSGIs). <c>wfe_exit_stat</c> stays 0: TWE is clear while
/// the vCPU thread is its CPU's only task (kvm_vcpu_should_clear_twe: single_task_running()), and the interpreter
/// runs WFE as a hint.</item>
/// <item><c>mmio_exit_kernel</c> / <c>mmio_exit_user</c>: mmio.c io_mem_abort, an ISV abort that kvm_io_bus_read/write
/// took (ioeventfd, vGIC frames) or that exits with KVM_EXIT_MMIO. A NISV abort counts neither.</item>
/// <item><c>signal_exits</c>: kvm_handle_signal_exit (xfer_to_guest_mode_handle_work at the top of the run loop).
/// immediate_exit counts nothing ("if (!vcpu-&gt;wants_to_run) { ret = -EINTR; goto out; }").</item>
/// <item>virt/kvm/kvm_main.c kvm_vcpu_halt / kvm_vcpu_block (kvm_vcpu_wfi: WFI, PSCI CPU_SUSPEND, a SUSPENDED vCPU),
/// counted by KvmMain/HaltPolling.cs: <c>blocking</c> is 1 while the vCPU sleeps; a sleep that waited adds its length
/// to <c>halt_wait_ns</c> and <c>halt_wait_hist</c> (KVM_STATS_LOG_HIST_UPDATE: bucket fls64(ns), at most 31); an
/// interrupt that ends the sleep is kvm_vcpu_wake_up's "++vcpu-&gt;stat.generic.halt_wakeup" (a signal wakes the task
/// directly and counts none); a halt after the first polls for up to vcpu-&gt;halt_poll_ns first
/// (update_halt_poll_stats: halt_attempted_poll, halt_successful_poll, the poll times and histograms).
/// halt_poll_invalid stays 0 (vcpu_valid_wakeup is true outside s390).</item>
/// </list>
/// Only the vCPU's own thread writes these, as on Linux.
/// </summary>
internal static class Arm64VcpuStats
{
    /// <summary>"vcpu->stat.exits++" after the guest stopped for KVM.</summary>
    public static void Exit(KvmVcpu vcpu) => Inc(vcpu, s => s.Exits);

    /// <summary>exits, then handle_hvc's "vcpu->stat.hvc_exit_stat++".</summary>
    public static void HvcExit(KvmVcpu vcpu)
    {
        Exit(vcpu);
        Inc(vcpu, s => s.HvcExitStat);
    }

    /// <summary>exits, then kvm_handle_wfx's "vcpu->stat.wfi_exit_stat++".</summary>
    public static void WfiExit(KvmVcpu vcpu)
    {
        Exit(vcpu);
        Inc(vcpu, s => s.WfiExitStat);
    }

    /// <summary>exits, then io_mem_abort's "vcpu->stat.mmio_exit_kernel++" or "vcpu->stat.mmio_exit_user++".</summary>
    public static void MmioExit(KvmVcpu vcpu, bool inKernel)
    {
        Exit(vcpu);
        Inc(vcpu, inKernel ? s => s.MmioExitKernel : s => s.MmioExitUser);
    }

    /// <summary>kvm_handle_signal_exit: "vcpu->stat.signal_exits++".</summary>
    public static void SignalExit(KvmVcpu vcpu) => Inc(vcpu, s => s.SignalExits);

    private static void Inc(KvmVcpu vcpu, Func<VcpuStatSlots, int> slot) => vcpu.Stats.Increment(slot(vcpu.Stats.Table.Slots));
}
