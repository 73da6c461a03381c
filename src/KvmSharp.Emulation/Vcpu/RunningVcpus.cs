// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Vcpu;

/// <summary>
/// Which thread is inside a signal-checking vCPU ioctl (KVM_RUN, KVM_PRE_FAULT_MEMORY) on which vCPU, so
/// IKernel.KickThread(tid) can play the signal: the real kernel notices signal_pending(current) before each guest
/// entry (-EINTR with KVM_EXIT_INTR) and before each page of a pre-fault (virt/kvm/kvm_main.c
/// kvm_vcpu_pre_fault_memory: -EINTR, or the partial progress). A kick to a thread outside such an ioctl is consumed
/// by the no-op handler and forgotten. Its own small lock: a kick must never wait for the kernel-wide lock or a vCPU
/// mutex.
/// </summary>
internal sealed class RunningVcpus
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, KvmVcpu> _byThread = [];

    public void Enter(int tid, KvmVcpu vcpu)
    {
        lock (_gate)
        {
            vcpu.SignalPending = false;
            _byThread[tid] = vcpu;
        }
    }

    public void Leave(int tid, KvmVcpu vcpu)
    {
        lock (_gate)
        {
            if (_byThread.TryGetValue(tid, out var current) && current == vcpu) _byThread.Remove(tid);
            vcpu.SignalPending = false;
        }
    }

    public void Signal(int tid)
    {
        lock (_gate)
        {
            if (_byThread.TryGetValue(tid, out var vcpu))
            {
                vcpu.SignalPending = true;
                // signal_wake_up: a vCPU blocked in kvm_vcpu_block wakes and sees signal_pending.
                vcpu.Kick();
            }
        }
    }
}
