// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// KVM_IRQFD was refused because the VM has no in-kernel irqchip (KVM_CREATE_IRQCHIP, which this SDK does not create):
/// x86 answers EINVAL (kvm_arch_irqfd_allowed), arm64 EAGAIN (no vGIC initialized). Use a userspace irqchip with
/// <see cref="Vcpu.InjectInterrupt"/> instead, or create the irqchip through <see cref="Vm.Handle"/> first.
/// </summary>
public sealed class IrqchipRequiredException : KvmException
{
    internal IrqchipRequiredException(int errno, string request)
        : base("KVM_IRQFD", errno, request,
            $"KVM_IRQFD needs an in-kernel irqchip (KVM_CREATE_IRQCHIP), which this VM does not have; the kernel answered " +
            $"{ErrnoInfo.NameOf(errno)}: {request}")
    {
    }
}
