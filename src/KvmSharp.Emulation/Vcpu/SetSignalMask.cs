// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Vcpu;

/// <summary>A kernel sigset_t: bit n-1 stands for signal n (include/linux/signal.h sigmask).</summary>
internal sealed record KvmSigset(ulong Bits)
{
    public bool Blocks(int signal) => signal is >= 1 and <= 64 && (Bits & (1UL << (signal - 1))) != 0;
}

/// <summary>
/// KVM_SET_SIGNAL_MASK on a vCPU fd: virt/kvm/kvm_main.c kvm_vcpu_ioctl (its generic switch, before the arch's
/// ioctls: the same on x86_64 and arm64) and kvm_vcpu_ioctl_set_sigmask.
/// </summary>
internal static class SetSignalMask
{
    private const int SIGKILL = 9, SIGSTOP = 19;

    public static long Ioctl(KvmVcpu vcpu, IoctlArg arg)
    {
        // "p = NULL; if (argp) { ... }": a NULL argument drops the mask (sigset_active = 0). An empty buffer is a
        // pointer to nothing readable, not NULL.
        if (!arg.IsPointer && arg.Value == 0)
        {
            vcpu.RunSignalMask = null;
            return 0;
        }
        if (!arg.CopyFromUser(out kvm_signal_mask header)) return Err.EFAULT;
        if (header.len != kvm_signal_mask.KernelSigsetSize) return Err.EINVAL;
        // copy_from_user(&sigset, sigmask_arg->sigset, sizeof(sigset)): the 8 bytes after the header.
        if (arg.Buffer.Length < 4 + kvm_signal_mask.KernelSigsetSize) return Err.EFAULT;
        ulong bits = BinaryPrimitives.ReadUInt64LittleEndian(arg.Buffer[4..]);
        // kvm_vcpu_ioctl_set_sigmask: "sigdelsetmask(sigset, sigmask(SIGKILL)|sigmask(SIGSTOP))".
        vcpu.RunSignalMask = new KvmSigset(bits & ~((1UL << (SIGKILL - 1)) | (1UL << (SIGSTOP - 1))));
        return 0;
    }
}
