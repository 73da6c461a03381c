// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// KVM_IRQFD was refused because the VM has no suitable in-kernel irqchip: x86 answers EINVAL (kvm_arch_irqfd_allowed:
/// an irqfd needs <see cref="Vm.CreateIrqchip"/> or <see cref="Vm.EnableSplitIrqchip"/>, a resampling one the full
/// irqchip), arm64 EAGAIN (no vGIC initialized). Create the irqchip before the first vCPU, or use a userspace irqchip
/// with <see cref="Vcpu.InjectInterrupt"/>.
/// </summary>
public sealed class IrqchipRequiredException : KvmException
{
    internal IrqchipRequiredException(int errno, string request)
        : base("KVM_IRQFD", errno, request,
            $"KVM_IRQFD needs an in-kernel irqchip (KVM_CREATE_IRQCHIP, or KVM_CAP_SPLIT_IRQCHIP without resample), which this " +
            $"VM does not have; the kernel answered " +
            $"{ErrnoInfo.NameOf(errno)}: {request}")
    {
    }
}
