// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Vcpu;

/// <summary>
/// The exit counters of vcpu->stat as arch/x86/kvm keeps them, counted where the interpreter ends a stretch of guest
/// execution (KvmMain/BinaryStats/VcpuStatSlots.cs lists what is and is not counted).
/// </summary>
internal static class VcpuStatCounting
{
    /// <summary>
    /// The guest stopped with <paramref name="rc"/> and kvm_run.exit_reason: "++vcpu->stat.exits" after the VM exit
    /// (vcpu_enter_guest), then the exit handler's own counter — svm.c io_interception / vmx.c handle_io
    /// "++vcpu->stat.io_exits", x86.c x86_emulate_instruction "++vcpu->stat.mmio_exits" when mmio_needed, x86.c
    /// __kvm_emulate_halt "++vcpu->stat.halt_exits". A signal noticed between instructions is not a guest exit:
    /// kvm_handle_signal_exit "vcpu->stat.signal_exits++".
    /// </summary>
    public static void GuestStopped(KvmVcpu vcpu, long rc)
    {
        var stats = vcpu.Stats;
        var slots = stats.Table.Slots;
        uint reason = vcpu.Run.ExitReason;
        if (rc == Err.EINTR && reason == (uint)KvmExitReason.KVM_EXIT_INTR)
        {
            stats.Increment(slots.SignalExits);
            return;
        }
        stats.Increment(slots.Exits);
        if (rc != 0) return;
        if (reason == (uint)KvmExitReason.KVM_EXIT_IO) stats.Increment(slots.IoExits);
        else if (reason == (uint)KvmExitReason.KVM_EXIT_MMIO) stats.Increment(slots.MmioExits);
        else if (reason == (uint)KvmExitReason.KVM_EXIT_HLT) stats.Increment(slots.HaltExits);
    }

    /// <summary>kvm_handle_signal_exit before entering the guest: "vcpu->stat.signal_exits++".</summary>
    public static void SignalExit(KvmVcpu vcpu) => vcpu.Stats.Increment(vcpu.Stats.Table.Slots.SignalExits);

    /// <summary>
    /// KVM_EXIT_IRQ_WINDOW_OPEN: enable_irq_window makes the guest exit at the first boundary where it can take an
    /// interrupt (exits, svm.c interrupt_window_interception "++vcpu->stat.irq_window_exits"), then vcpu_run's
    /// dm_request_for_irq_injection branch "++vcpu->stat.request_irq_exits".
    /// </summary>
    public static void InterruptWindowOpen(KvmVcpu vcpu)
    {
        var stats = vcpu.Stats;
        stats.Increment(stats.Table.Slots.Exits);
        stats.Increment(stats.Table.Slots.IrqWindowExits);
        stats.Increment(stats.Table.Slots.RequestIrqExits);
    }
}
