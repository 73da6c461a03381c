// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.SignalMask"/> draws: KVM_SET_SIGNAL_MASK (virt/kvm/kvm_main.c kvm_vcpu_ioctl) with a struct
/// kvm_signal_mask of any len and any sigset, a NULL argument, or a kernel-half pointer; on vCPUs mostly, now and then
/// on other handles (ENOTTY / EINVAL / EBADF). The argument is always 4 + 8 bytes long, so both kernels read the same.
/// </summary>
internal static class SignalMaskOps
{
    public const int Struct = 0, Null = 1, KernelPointer = 2;

    public static ulong Len(Random rng) => rng.Next(6) switch
    {
        < 3 => (ulong)kvm_signal_mask.KernelSigsetSize,
        3 => (ulong)rng.Next(17),
        4 => 128,
        _ => (uint)rng.Next(),
    };

    public static string Apply(IKernel kernel, KernelFd fd, FuzzOp op, Func<long, string> describe)
    {
        if (op.E == Null) return describe(kernel.Ioctl(fd, KvmIoctls.KVM_SET_SIGNAL_MASK, 0UL));
        if (op.E == KernelPointer) return describe(kernel.Ioctl(fd, KvmIoctls.KVM_SET_SIGNAL_MASK, 0xFFFF_8000_0000_0000UL));
        Span<byte> arg = stackalloc byte[4 + kvm_signal_mask.KernelSigsetSize];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, (uint)op.B);
        BinaryPrimitives.WriteUInt64LittleEndian(arg[4..], op.A);
        return describe(kernel.Ioctl(fd, KvmIoctls.KVM_SET_SIGNAL_MASK, arg));
    }

    internal static string Describe(FuzzOp op, string target) => op.E switch
    {
        Null => $"KVM_SET_SIGNAL_MASK({target}, NULL)",
        KernelPointer => $"KVM_SET_SIGNAL_MASK({target}, kernel pointer)",
        _ => $"KVM_SET_SIGNAL_MASK({target}, len={(uint)op.B}, sigset=0x{op.A:X})",
    };
}
