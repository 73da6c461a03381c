// SPDX-License-Identifier: MIT
// Threads as this kernel knows them: gettid, the vCPU kick (tgkill) and who is inside KVM_RUN.
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

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

    /// <summary>
    /// The calling thread is about to call KVM_RUN: a kick that reaches it before it is inside is a signal pending at
    /// entry (the run returns EINTR at once) instead of one its handler consumed. Ended by <see cref="EndExpectedRun"/>.
    /// </summary>
    public void ExpectRun() => _running.Expect(GetTid());

    /// <summary>The KVM_RUN announced by <see cref="ExpectRun"/> returned (or was never made).</summary>
    public void EndExpectedRun() => _running.Unexpect(GetTid());

    /// <summary>
    /// vcpu-&gt;sigset of the vCPU behind <paramref name="fd"/> (KVM_SET_SIGNAL_MASK): 1 and the mask when one is set,
    /// 0 when not, -EBADF or -EINVAL (not a vCPU). For a process that applies it around its own KVM_RUN calls.
    /// </summary>
    public long VcpuRunSignalMask(KernelFd fd, out ulong mask)
    {
        mask = 0;
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            if (file is null) return Err.EBADF;
            if (file is not KvmVcpuFile vcpu) return Err.EINVAL;
            if (vcpu.Vcpu.RunSignalMask is not { } set) return 0;
            mask = set.Bits;
            return 1;
        }
    }

    /// <summary>The calling thread enters KVM_RUN on <paramref name="vcpu"/> (a kick may now reach it).</summary>
    internal void EnterRun(KvmVcpu vcpu) => _running.Enter(GetTid(), vcpu);

    /// <summary>KVM_RUN returns: a signal that did not stop it is delivered to the no-op handler and forgotten.</summary>
    internal void LeaveRun(KvmVcpu vcpu) => _running.Leave(GetTid(), vcpu);
}
