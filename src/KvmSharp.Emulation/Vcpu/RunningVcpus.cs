// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Vcpu;

/// <summary>
/// Which thread is inside a signal-checking vCPU ioctl (KVM_RUN, KVM_PRE_FAULT_MEMORY) on which vCPU, so
/// IKernel.KickThread(tid) can play the signal: the real kernel notices signal_pending(current) before each guest
/// entry (-EINTR with KVM_EXIT_INTR) and before each page of a pre-fault (virt/kvm/kvm_main.c
/// kvm_vcpu_pre_fault_memory: -EINTR, or the partial progress). A kick to a thread outside such an ioctl is consumed
/// by the no-op handler and forgotten — unless the thread said it is about to enter one (<see cref="Expect"/>): then
/// it is a signal already pending at entry, as for a program whose real signal arrived between its own bookkeeping
/// and the emulated KVM_RUN (`kvmsharp exec`). Its own small lock: a kick must never wait for the kernel-wide lock or
/// a vCPU mutex.
/// </summary>
internal sealed class RunningVcpus
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, KvmVcpu> _byThread = [];
    // Threads about to enter: whether a kick reached them meanwhile.
    private readonly Dictionary<int, bool> _expected = [];

    public void Expect(int tid)
    {
        lock (_gate) _expected[tid] = false;
    }

    public void Unexpect(int tid)
    {
        lock (_gate) _expected.Remove(tid);
    }

    public void Enter(int tid, KvmVcpu vcpu)
    {
        lock (_gate)
        {
            vcpu.SignalPending = _expected.Remove(tid, out bool pending) && pending;
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
                // kvm_sigset_activate: inside KVM_RUN the thread's mask is the vCPU's (KVM_SET_SIGNAL_MASK); the kick
                // signal it blocks stays pending and reaches the handler after the run, which it does not stop.
                if (vcpu.RunSignalMask is { } mask && mask.Blocks(LinuxKernel.KickSignal)) return;
                vcpu.SignalPending = true;
                // signal_wake_up: a vCPU blocked in kvm_vcpu_block wakes and sees signal_pending.
                vcpu.Kick();
            }
            else if (_expected.ContainsKey(tid))
            {
                _expected[tid] = true;
            }
        }
    }
}
