// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Fs;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/eventfd.c: KVM_IOEVENTFD (kvm_ioeventfd and its assign/deassign halves, per bus) and KVM_IRQFD (the x86
/// irqfd list is X86/Irqchip/IrqFds.cs). Every rule was probed on Linux 6.18 kvm_pvm.
/// </summary>
internal static class Eventfd
{
    /// <summary>kvm_vm_ioctl KVM_IOEVENTFD: copy_from_user (EFAULT), then kvm_ioeventfd.</summary>
    public static long IoEventFdIoctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_ioeventfd args)) return Err.EFAULT;
        // kvm_ioeventfd: "if (args->flags & KVM_IOEVENTFD_FLAG_DEASSIGN) return kvm_deassign_ioeventfd(kvm, args)".
        return (args.flags & KvmConstants.KVM_IOEVENTFD_FLAG_DEASSIGN) != 0 ? Deassign(kvm, args) : Assign(kvm, args);
    }

    /// <summary>ioeventfd_bus_from_flags: PIO first, then VIRTIO_CCW_NOTIFY (a bus nothing writes to on x86), else MMIO.</summary>
    private static KvmBus BusFromFlags(uint flags) =>
        (flags & KvmConstants.KVM_IOEVENTFD_FLAG_PIO) != 0 ? KvmBus.Pio
        : (flags & KvmConstants.KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY) != 0 ? KvmBus.VirtioCcwNotify
        : KvmBus.Mmio;

    /// <summary>kvm_assign_ioeventfd: the argument checks in order, then one registration (two for a length-0 MMIO one).</summary>
    private static long Assign(Kvm kvm, in kvm_ioeventfd args)
    {
        var bus = BusFromFlags(args.flags);
        // "must be natural-word sized, or 0 to ignore length".
        if (args.len is not (0 or 1 or 2 or 4 or 8)) return Err.EINVAL;
        // "check for range overflow": addr + len < addr.
        if (args.addr + args.len < args.addr) return Err.EINVAL;
        // "check for extra flags that we don't understand" (the mask includes bit 4, nr_fast_mmio, which means nothing).
        if ((args.flags & ~KvmConstants.KVM_IOEVENTFD_VALID_FLAG_MASK) != 0) return Err.EINVAL;
        // "ioeventfd with no length can't be combined with DATAMATCH" (PIO with length 0 is fine since ANY_LENGTH).
        if (args.len == 0 && (args.flags & KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH) != 0) return Err.EINVAL;
        long r = AssignIdx(kvm, bus, args);
        if (r != 0) return r;
        // "When length is ignored, MMIO is also put on a separate bus, for faster lookups." Its collision check cannot
        // fail once the MMIO one passed (every fast-bus entry has an MMIO twin), but a failure would undo the first.
        if (args.len == 0 && bus == KvmBus.Mmio)
        {
            r = AssignIdx(kvm, KvmBus.FastMmio, args);
            if (r < 0) _ = DeassignIdx(kvm, bus, args);
        }
        return r;
    }

    /// <summary>
    /// kvm_assign_ioeventfd_idx: eventfd_ctx_fdget (EBADF; not an eventfd: EINVAL), then under slots_lock the
    /// collision check (EEXIST) and kvm_io_bus_register_dev (ENOSPC). The registration keeps its context reference.
    /// </summary>
    private static long AssignIdx(Kvm kvm, KvmBus bus, in kvm_ioeventfd args)
    {
        long r = EventFdFile.CtxFdget(kvm.Kernel, args.fd, out var ctx);
        if (r != 0) return r;
        bool datamatch = (args.flags & KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH) != 0;
        var p = new IoEventFd(bus, args.addr, (int)args.len, ctx!, datamatch ? args.datamatch : 0, Wildcard: !datamatch);
        if (kvm.IoBus.IoEventFds.Any(p.CollidesWith))
        {
            ctx!.Put();
            return Err.EEXIST;
        }
        // kvm_io_bus_register_dev's ENOSPC (IoBus.Add) → unlock_fail: the context reference goes.
        r = kvm.IoBus.Add(p);
        if (r != 0) ctx!.Put();
        return r;
    }

    /// <summary>
    /// kvm_deassign_ioeventfd: neither the flags nor the length are checked (probed: DEASSIGN with an unknown flag bit
    /// removes the match); the length-0 MMIO twin on the fast bus goes too, and only the first bus's answer counts.
    /// </summary>
    private static long Deassign(Kvm kvm, in kvm_ioeventfd args)
    {
        var bus = BusFromFlags(args.flags);
        long r = DeassignIdx(kvm, bus, args);
        if (args.len == 0 && bus == KvmBus.Mmio) _ = DeassignIdx(kvm, KvmBus.FastMmio, args);
        return r;
    }

    /// <summary>
    /// kvm_deassign_ioeventfd_idx: eventfd_ctx_fdget first; the first registration with the same bus, context, address,
    /// length and wildcard (and datamatch unless wildcard) is unregistered and its reference put; none: ENOENT.
    /// </summary>
    private static long DeassignIdx(Kvm kvm, KvmBus bus, in kvm_ioeventfd args)
    {
        long r = EventFdFile.CtxFdget(kvm.Kernel, args.fd, out var ctx);
        if (r != 0) return r;
        bool wildcard = (args.flags & KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH) == 0;
        r = Err.ENOENT;
        foreach (var p in kvm.IoBus.IoEventFds)
        {
            if (p.Bus != bus || !ReferenceEquals(p.Ctx, ctx) || p.Addr != args.addr || p.Length != (int)args.len || p.Wildcard != wildcard)
                continue;
            if (!p.Wildcard && p.Datamatch != args.datamatch) continue;
            kvm.IoBus.Remove(p);
            p.Ctx.Put();
            r = 0;
            break;
        }
        ctx!.Put();
        return r;
    }

    /// <summary>
    /// kvm_vm_ioctl KVM_IRQFD: copy_from_user (EFAULT), then kvm_irqfd: "flags &amp; ~(DEASSIGN | RESAMPLE)" → EINVAL;
    /// kvm_irqfd_deassign and kvm_irqfd_assign (X86/Irqchip/IrqFds.cs); on arm64 kvm_arch_intc_initialized
    /// (vgic_initialized) refuses assignments with EAGAIN until the VM's GICv3 is initialized.
    /// </summary>
    public static long IrqFdIoctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_irqfd args)) return Err.EFAULT;
        if ((args.flags & ~(KvmConstants.KVM_IRQFD_FLAG_DEASSIGN | KvmConstants.KVM_IRQFD_FLAG_RESAMPLE)) != 0) return Err.EINVAL;
        if ((args.flags & KvmConstants.KVM_IRQFD_FLAG_DEASSIGN) != 0) return X86.Irqchip.IrqFds.Deassign(kvm, args);
        // arm64: kvm_arch_intc_initialized is vgic_initialized (Arm64/Vgic) → EAGAIN until KVM_DEV_ARM_VGIC_CTRL_INIT.
        if (kvm.Kernel.Config.Architecture == Architecture.Arm64)
            return Arm64.Arm64VmState.Of(kvm).Vgic.Initialized ? X86.Irqchip.IrqFds.AssignAllowed(kvm, args) : Err.EAGAIN;
        return X86.Irqchip.IrqFds.Assign(kvm, args);
    }
}
