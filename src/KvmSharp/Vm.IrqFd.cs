// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// KVM_IRQFD: signalling <paramref name="eventFd"/> raises <paramref name="gsi"/> on the VM's in-kernel irqchip
    /// (with <paramref name="resample"/>: level-triggered, <paramref name="resample"/> signalled on EOI). Works once the
    /// VM has an in-kernel irqchip (<see cref="CreateIrqchip"/>; <see cref="EnableSplitIrqchip"/> without
    /// <paramref name="resample"/>, whose GSIs then need MSI routes, <see cref="SetGsiRouting"/>). Dispose the returned
    /// registration to deassign it.
    /// </summary>
    /// <exception cref="IrqchipRequiredException">The VM has no in-kernel irqchip, or only a split one and
    /// <paramref name="resample"/> was given (x86: EINVAL; arm64: EAGAIN). An EINVAL after an irqchip exists is not this
    /// exception when it cannot be the irqchip (see <see cref="Irqchip"/>).</exception>
    /// <exception cref="KvmException">Any other refusal (EBADF, EBUSY: the eventfd already drives a GSI).</exception>
    public IrqFdRegistration AssignIrqFd(EventFd eventFd, uint gsi, EventFd? resample = null)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        CheckSameKernel(eventFd);
        if (resample is not null) CheckSameKernel(resample);
        var args = new kvm_irqfd { gsi = gsi, flags = resample is null ? 0 : KvmConstants.KVM_IRQFD_FLAG_RESAMPLE };
        long rc;
        using (var lease = eventFd.Handle.Borrow())
        {
            args.fd = (uint)lease.Number;
            if (resample is null)
            {
                rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_IRQFD, KvmCall.Bytes(ref args));
            }
            else
            {
                using var resampleLease = resample.Handle.Borrow();
                args.resamplefd = (uint)resampleLease.Number;
                rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_IRQFD, KvmCall.Bytes(ref args));
            }
        }
        string request = $"assign fd={args.fd} gsi={gsi} flags=0x{args.flags:X}{(resample is null ? "" : $" resamplefd={args.resamplefd}")}";
        // x86 kvm_arch_irqfd_allowed (irqchip_in_kernel / irqchip_full) → EINVAL; arm64 kvm_arch_intc_initialized → EAGAIN.
        // EINVAL is also the answer to a descriptor that is not an eventfd: only call it the irqchip's when it can be.
        bool irqchipMissing = Irqchip == IrqchipMode.None || (resample is not null && Irqchip == IrqchipMode.Split);
        if ((rc == -(long)Errno.EINVAL && irqchipMissing) || rc == -(long)Errno.EAGAIN) throw new IrqchipRequiredException((int)-rc, request);
        KvmCall.Check(rc, "KVM_IRQFD", request);
        return new IrqFdRegistration(this, eventFd, gsi);
    }

    /// <summary>
    /// KVM_IRQFD with KVM_IRQFD_FLAG_DEASSIGN: stops <paramref name="eventFd"/> from raising <paramref name="gsi"/>. The
    /// kernel answers 0 when no such irqfd exists.
    /// </summary>
    /// <exception cref="KvmException">EBADF / EINVAL: the descriptor is not an open eventfd.</exception>
    public void DeassignIrqFd(EventFd eventFd, uint gsi)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        CheckSameKernel(eventFd);
        var args = new kvm_irqfd { gsi = gsi, flags = KvmConstants.KVM_IRQFD_FLAG_DEASSIGN };
        long rc;
        using (var lease = eventFd.Handle.Borrow())
        {
            args.fd = (uint)lease.Number;
            rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_IRQFD, KvmCall.Bytes(ref args));
        }
        KvmCall.Check(rc, "KVM_IRQFD", $"deassign fd={args.fd} gsi={gsi}");
    }

    private void CheckSameKernel(EventFd eventFd)
    {
        if (!ReferenceEquals(eventFd.Kernel, Kernel))
            throw new ArgumentException("the eventfd was created on another kernel than this VM's", nameof(eventFd));
    }
}
