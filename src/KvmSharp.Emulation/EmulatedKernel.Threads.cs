// SPDX-License-Identifier: MIT
// Threads as this kernel knows them: gettid, the vCPU kick (tgkill) and who is inside KVM_RUN.
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation;

public sealed partial class EmulatedKernel
{
    /// <summary>gettid(2) as this kernel knows threads: the managed thread id (stable per thread).</summary>
    public int GetTid() => Environment.CurrentManagedThreadId;

    /// <summary>
    /// tgkill(2) with the vCPU kick signal: a KVM_RUN in progress on thread <paramref name="tid"/> returns EINTR
    /// (checked between instructions). A thread outside KVM_RUN runs the no-op handler: nothing happens.
    /// </summary>
    public long KickThread(int tid)
    {
        _running.Signal(tid);
        return 0;
    }

    /// <summary>The calling thread enters KVM_RUN on <paramref name="vcpu"/> (a kick may now reach it).</summary>
    internal void EnterRun(KvmVcpu vcpu) => _running.Enter(GetTid(), vcpu);

    /// <summary>KVM_RUN returns: a signal that did not stop it is delivered to the no-op handler and forgotten.</summary>
    internal void LeaveRun(KvmVcpu vcpu) => _running.Leave(GetTid(), vcpu);
}
