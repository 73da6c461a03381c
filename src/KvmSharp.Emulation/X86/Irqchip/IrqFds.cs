// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Fs;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// virt/kvm/eventfd.c kvm_irqfd_assign / kvm_irqfd_deassign / kvm_irqfd_release with x86's kvm_arch_irqfd_allowed:
/// the VM's list of irqfds. Modelled: who may assign, the eventfd checks, EBUSY, deassignment and the references the
/// list holds, and what a signal does: irqfd_wakeup consumes the eventfd's count and raises the GSI (irqfd_inject:
/// kvm_set_irq 1 then 0; a resampling irqfd only asserts — its EOI-driven de-assert and resample signal are not
/// modelled). The kernel injects an MSI route at once and other routes from a work item; here every route is raised
/// before the write(2) or signal returns.
/// </summary>
internal static class IrqFds
{
    /// <summary>
    /// kvm_irqfd_assign: x86 kvm_arch_irqfd_allowed ("resample ? irqchip_full(kvm) : irqchip_in_kernel(kvm)") → EINVAL;
    /// the fd (EBADF) must be an eventfd (eventfd_ctx_fileget: EINVAL); with RESAMPLE the resample fd too
    /// (eventfd_ctx_fdget); an eventfd already in the list, whatever its GSI → EBUSY. The irqfd keeps both contexts.
    /// </summary>
    public static long Assign(Kvm kvm, in kvm_irqfd args)
    {
        var chip = kvm.Irqchip;
        bool resample = (args.flags & KvmConstants.KVM_IRQFD_FLAG_RESAMPLE) != 0;
        if (!(resample ? chip.Full : chip.InKernel)) return Err.EINVAL;
        return AssignAllowed(kvm, args);
    }

    /// <summary>
    /// kvm_irqfd_assign once the arch allowed it (x86 above; arm64's kvm_arch_irqfd_allowed is the generic "true" once
    /// kvm_arch_intc_initialized saw an initialized vGIC): the eventfd checks, EBUSY, the list entry.
    /// </summary>
    public static long AssignAllowed(Kvm kvm, in kvm_irqfd args)
    {
        var chip = kvm.Irqchip;
        bool resample = (args.flags & KvmConstants.KVM_IRQFD_FLAG_RESAMPLE) != 0;
        long r = EventFdFile.CtxFdget(kvm.Kernel, (int)args.fd, out var ctx);
        if (r != 0) return r;
        EventFdCtx? resampleCtx = null;
        if (resample)
        {
            r = EventFdFile.CtxFdget(kvm.Kernel, (int)args.resamplefd, out resampleCtx);
            if (r != 0)
            {
                ctx!.Put();
                return r;
            }
        }
        if (chip.IrqFds.Any(i => ReferenceEquals(i.Ctx, ctx)))
        {
            resampleCtx?.Put();
            ctx!.Put();
            return Err.EBUSY;
        }
        var irqfd = new IrqFd(ctx!, args.gsi, resampleCtx);
        irqfd.Wakeup = () => Inject(kvm, irqfd);
        chip.IrqFds.Add(irqfd);
        // "events = vfs_poll(f.file, &irqfd->pt); if (events & EPOLLIN) schedule_work(&irqfd->inject);" — a count
        // already there is injected once and left in the eventfd (probed on kvm_pvm).
        if (ctx!.AddIrqfdWakeup(irqfd.Wakeup)) Inject(kvm, irqfd);
        return 0;
    }

    /// <summary>
    /// irqfd_inject: "kvm_set_irq(kvm, KVM_USERSPACE_IRQ_SOURCE_ID, irqfd->gsi, 1, false); kvm_set_irq(…, 0, false)"
    /// without a resampler, only the assertion with one (kvm_set_irq's answer is dropped). Takes the kernel lock, as
    /// KVM_IRQ_LINE's path does; arm64's vGIC raises nothing here (its delivery is not modelled).
    /// </summary>
    private static void Inject(Kvm kvm, IrqFd irqfd)
    {
        lock (kvm.Kernel.SyncRoot)
        {
            if (!kvm.Irqchip.InKernel || !kvm.Irqchip.IrqFds.Contains(irqfd)) return;
            _ = IrqRouting.SetIrq(kvm, irqfd.Gsi, true);
            if (irqfd.Resample is null) _ = IrqRouting.SetIrq(kvm, irqfd.Gsi, false);
        }
    }

    /// <summary>
    /// kvm_irqfd_deassign: eventfd_ctx_fdget (EBADF / EINVAL), then every irqfd with that eventfd and GSI is shut down
    /// (its references put); 0 even when there was none.
    /// </summary>
    public static long Deassign(Kvm kvm, in kvm_irqfd args)
    {
        long r = EventFdFile.CtxFdget(kvm.Kernel, (int)args.fd, out var ctx);
        if (r != 0) return r;
        uint gsi = args.gsi;
        foreach (var i in kvm.Irqchip.IrqFds.Where(i => ReferenceEquals(i.Ctx, ctx) && i.Gsi == gsi).ToList())
        {
            kvm.Irqchip.IrqFds.Remove(i);
            Shutdown(i);
        }
        ctx!.Put();
        return 0;
    }

    /// <summary>kvm_irqfd_release (VM destruction): every irqfd is shut down.</summary>
    public static void Release(Kvm kvm)
    {
        foreach (var i in kvm.Irqchip.IrqFds) Shutdown(i);
        kvm.Irqchip.IrqFds.Clear();
    }

    /// <summary>irqfd_shutdown: eventfd_ctx_put of the eventfd and, for a resampler, its resample eventfd.</summary>
    private static void Shutdown(IrqFd irqfd)
    {
        if (irqfd.Wakeup is { } wakeup) irqfd.Ctx.RemoveIrqfdWakeup(wakeup);
        irqfd.Resample?.Put();
        irqfd.Ctx.Put();
    }
}
