// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// KVM_SET_SIGNAL_MASK: the signal mask the calling thread has while it is inside <see cref="Run"/> on this vCPU
    /// (bit n-1 blocks signal n, as in the kernel's sigset_t). A signal the mask leaves unblocked stops the run
    /// (<see cref="VcpuExit.Interrupted"/>); one it blocks stays pending and reaches its handler after the run, which
    /// it does not stop — how a VMM keeps its kick signal blocked outside the guest and lets it stop the guest inside.
    /// <c>null</c> drops the mask: the thread's own mask applies again. The kernel never blocks SIGKILL or SIGSTOP.
    /// The in-process emulated kernel's only signal is its kick (<see cref="IKernel.KickThread"/>, signal
    /// <see cref="LinuxKernel.KickSignal"/>), which the mask blocks or not like the real one.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void SetRunSignalMask(ulong? mask)
    {
        if (mask is not { } bits)
        {
            KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_SIGNAL_MASK, 0UL), "KVM_SET_SIGNAL_MASK", $"vcpu={Id} mask=NULL");
            return;
        }
        // struct kvm_signal_mask: len, then the kernel's 8-byte sigset.
        Span<byte> arg = stackalloc byte[4 + kvm_signal_mask.KernelSigsetSize];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, kvm_signal_mask.KernelSigsetSize);
        BinaryPrimitives.WriteUInt64LittleEndian(arg[4..], bits);
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_SIGNAL_MASK, arg), "KVM_SET_SIGNAL_MASK", $"vcpu={Id} mask=0x{bits:X}");
    }
}
