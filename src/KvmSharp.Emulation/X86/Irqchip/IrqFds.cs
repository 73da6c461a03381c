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
/// kvm_set_irq 1 then 0; a resampling irqfd only asserts, for KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID). Resampling irqfds share
/// one resampler per GSI (an ack notifier): the EOI of the GSI's level-triggered IOAPIC vector lowers that source's
/// line and signals every resamplefd (irqfd_resampler_ack); the GSI's last resampling irqfd going lowers it too
/// (irqfd_resampler_shutdown). The kernel injects an MSI route at once and other routes from a work item; here every
/// route is raised before the write(2) or signal returns.
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
        var irqfd = new IrqFd(ctx!, args.gsi, resampleCtx);
        if (resampleCtx is not null)
        {
            // kvm_irqfd_assign: under resampler_lock, the GSI's resampler is found or made (and its ack notifier
            // registered), and the irqfd joins its list — before the EBUSY check below.
            uint gsi = args.gsi;
            var resampler = chip.Resamplers.FirstOrDefault(x => x.Gsi == gsi);
            if (resampler is null)
            {
                resampler = new IrqfdResampler(gsi);
                chip.Resamplers.Add(resampler);
            }
            irqfd.Resampler = resampler;
            resampler.IrqFds.Insert(0, irqfd);
        }
        if (chip.IrqFds.Any(i => ReferenceEquals(i.Ctx, ctx)))
        {
            // "fail: if (irqfd->resampler) irqfd_resampler_shutdown(irqfd);" (a resampler made for it goes again and
            // lowers its line).
            if (irqfd.Resampler is not null) ResamplerShutdown(kvm, irqfd, lowerLine: true);
            resampleCtx?.Put();
            ctx!.Put();
            return Err.EBUSY;
        }
        irqfd.Wakeup = () => Inject(kvm, irqfd);
        chip.IrqFds.Add(irqfd);
        // "events = vfs_poll(f.file, &irqfd->pt); if (events & EPOLLIN) schedule_work(&irqfd->inject);" — a count
        // already there is injected once and left in the eventfd (probed on kvm_pvm).
        if (ctx!.AddIrqfdWakeup(irqfd.Wakeup)) Inject(kvm, irqfd);
        return 0;
    }

    /// <summary>
    /// irqfd_inject: "kvm_set_irq(kvm, KVM_USERSPACE_IRQ_SOURCE_ID, irqfd->gsi, 1, false); kvm_set_irq(…, 0, false)"
    /// without a resampler; with one "kvm_set_irq(kvm, KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, irqfd->resampler->notifier.gsi,
    /// 1, false)" only (kvm_set_irq's answer is dropped). Takes the kernel lock, as KVM_IRQ_LINE's path does; on arm64
    /// the vGIC's routes take it (Arm64/Vgic/VgicIrqfd.cs, irqfd_wakeup's atomic path included).
    /// </summary>
    private static void Inject(Kvm kvm, IrqFd irqfd)
    {
        lock (kvm.Kernel.SyncRoot)
        {
            if (IsArm64(kvm))
            {
                if (kvm.Irqchip.IrqFds.Contains(irqfd)) Arm64.Vgic.VgicIrqfd.InjectIrqfd(kvm, irqfd.Gsi, irqfd.Resampler is not null);
                return;
            }
            if (!kvm.Irqchip.InKernel || !kvm.Irqchip.IrqFds.Contains(irqfd)) return;
            if (irqfd.Resampler is { } resampler)
            {
                _ = IrqRouting.SetIrq(kvm, resampler.Gsi, true, IrqRouting.ResampleIrqSourceId);
                return;
            }
            _ = IrqRouting.SetIrq(kvm, irqfd.Gsi, true);
            _ = IrqRouting.SetIrq(kvm, irqfd.Gsi, false);
        }
    }

    /// <summary>
    /// irqfd_resampler_ack (the GSI's ack notifier, from kvm_notify_acked_irq): "kvm_set_irq(kvm,
    /// KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, resampler->notifier.gsi, 0, false)" once, then irqfd_resampler_notify:
    /// eventfd_signal of every irqfd's resamplefd on the resampler's list. Caller holds the kernel lock.
    /// </summary>
    public static void ResamplerAck(Kvm kvm, IrqfdResampler resampler)
    {
        _ = SetIrq(kvm, resampler.Gsi, false, IrqRouting.ResampleIrqSourceId);
        foreach (var irqfd in resampler.IrqFds.ToList()) irqfd.Resample!.Signal();
    }

    /// <summary>
    /// irqfd_resampler_shutdown: the irqfd leaves its resampler's list; the last one takes the resampler (and its ack
    /// notifier) away and lowers the GSI's line for KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID.
    /// </summary>
    private static void ResamplerShutdown(Kvm kvm, IrqFd irqfd, bool lowerLine)
    {
        var resampler = irqfd.Resampler!;
        resampler.IrqFds.RemoveAll(x => ReferenceEquals(x, irqfd));
        irqfd.Resampler = null;
        if (resampler.IrqFds.Count != 0) return;
        kvm.Irqchip.Resamplers.Remove(resampler);
        if (!lowerLine || !(kvm.Irqchip.InKernel || IsArm64(kvm))) return;
        lock (kvm.Kernel.SyncRoot) _ = SetIrq(kvm, resampler.Gsi, false, IrqRouting.ResampleIrqSourceId);
    }

    private static bool IsArm64(Kvm kvm) => kvm.Kernel.Config.Architecture == Architecture.Arm64;

    /// <summary>kvm_set_irq through the VM's routing: x86's chips, or arm64's vGIC (one line per SPI, no sources).</summary>
    private static int SetIrq(Kvm kvm, uint gsi, bool level, int sourceId) =>
        IsArm64(kvm) ? Arm64.Vgic.VgicIrqfd.SetIrq(kvm, gsi, level) : IrqRouting.SetIrq(kvm, gsi, level, sourceId);

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
            Shutdown(kvm, i, lowerLine: true);
        }
        ctx!.Put();
        return 0;
    }

    /// <summary>
    /// kvm_irqfd_release (VM destruction): every irqfd is shut down (the lines a resampler would lower belong to a VM
    /// nobody can observe any more, so they are left).
    /// </summary>
    public static void Release(Kvm kvm)
    {
        foreach (var i in kvm.Irqchip.IrqFds) Shutdown(kvm, i, lowerLine: false);
        kvm.Irqchip.IrqFds.Clear();
    }

    /// <summary>
    /// irqfd_shutdown: eventfd_ctx_remove_wait_queue; for a resampling irqfd irqfd_resampler_shutdown and
    /// eventfd_ctx_put of its resamplefd; eventfd_ctx_put of the eventfd.
    /// </summary>
    private static void Shutdown(Kvm kvm, IrqFd irqfd, bool lowerLine)
    {
        if (irqfd.Wakeup is { } wakeup) irqfd.Ctx.RemoveIrqfdWakeup(wakeup);
        if (irqfd.Resampler is not null) ResamplerShutdown(kvm, irqfd, lowerLine);
        irqfd.Resample?.Put();
        irqfd.Ctx.Put();
    }
}
