// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Emulation.X86;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Vcpu;

/// <summary>
/// A vCPU fd ("kvm-vcpu:N" anon inode, kvm_vcpu_fops: unlocked_ioctl = kvm_vcpu_ioctl, mmap = kvm_vcpu_mmap,
/// llseek = noop_llseek). Its ioctls run outside the kernel-wide lock, under the vCPU's own mutex, so a KVM_RUN can
/// last until it is kicked while other threads keep using the VM.
/// </summary>
internal sealed class KvmVcpuFile : KernelFile
{
    public KvmVcpuFile(KvmVcpu vcpu) => Vcpu = vcpu;

    public KvmVcpu Vcpu { get; }

    private Kvm Kvm => Vcpu.Kvm;

    // The same anon inode as the VM fd (observed: st_dev 16, st_ino 1038, mode 0600).
    public override uint Mode => 0x180;

    public override ulong Device => KvmVmFile.AnonInodeFsDevice;

    public override ulong Inode => KvmVmFile.AnonInodeIno;

    public override bool HasNoopLlseek => true;

    public override int HostBackingFd => Vcpu.Run.MemfdFd;

    /// <summary>
    /// kvm_vcpu_fault: "else if (vmf-&gt;pgoff == KVM_COALESCED_MMIO_PAGE_OFFSET) page =
    /// virt_to_page(vcpu-&gt;kvm-&gt;coalesced_mmio_ring)" — every vCPU of the VM maps the same ring page there (2 on x86,
    /// 1 on arm64), so the VM's ring memfd goes over that page of the vCPU's own (KvmMain/CoalescedMmio.cs).
    /// </summary>
    public override long MapOtherBackings(nint mapped, ulong pgoff, ulong pages, int prot, int flags)
    {
        ulong ring = CoalescedMmio.PageOffset(Kvm.Kernel.Config);
        if (ring < pgoff || ring - pgoff >= pages) return 0;
        long fd = Kvm.CoalescedMmio.RingFd();
        if (Err.IsError(fd)) return fd;
        const int MapType = 0x0f; // MAP_SHARED / MAP_PRIVATE / MAP_SHARED_VALIDATE as the caller asked
        nint at = mapped + (nint)((ring - pgoff) * (ulong)EmulatorConfig.PageSize);
        return HostMemory.Mmap(at, (ulong)EmulatorConfig.PageSize, prot, (flags & MapType) | Kernel.LinuxConstants.MAP_FIXED, (int)fd, 0, out _);
    }

    /// <summary>kvm_vcpu_mmap: no size or offset check (a fault beyond the area is SIGBUS); MAP_PRIVATE is accepted.</summary>
    public override long Mmap(int prot, int flags) => 0;

    /// <summary>
    /// The anon inode's mount is noexec (SB_I_NOEXEC): do_mmap refuses PROT_EXEC with EPERM before kvm_vcpu_mmap —
    /// probed on 6.18 at every offset, inside the dirty ring or not.
    /// </summary>
    public override bool NoExec => true;

    /// <summary>
    /// kvm_vcpu_mmap: "if ((kvm_page_in_dirty_ring(vcpu->kvm, vma->vm_pgoff) || kvm_page_in_dirty_ring(vcpu->kvm,
    /// vma->vm_pgoff + pages - 1)) &amp;&amp; ((vma->vm_flags &amp; VM_EXEC) || !(vma->vm_flags &amp; VM_SHARED)))
    /// return -EINVAL;" — only the first and last page are looked at (probed: MAP_PRIVATE over pages 0..69 with an
    /// 8 KiB ring at 64..65 is accepted; 63..64 and 65 alone are EINVAL; past the ring, 66, is accepted).
    /// </summary>
    public override long Mmap(int prot, int flags, ulong pgoff, ulong pages)
    {
        bool shared = Mm.DoMmap.IsShared(flags);
        bool exec = Mm.AddressSpace.WantsExec(prot);
        if ((PageInDirtyRing(pgoff) || PageInDirtyRing(pgoff + pages - 1)) && (exec || !shared)) return Err.EINVAL;
        return 0;
    }

    /// <summary>kvm_page_in_dirty_ring: KVM_DIRTY_LOG_PAGE_OFFSET ≤ pgoff &lt; that + dirty_ring_size / PAGE_SIZE.</summary>
    private bool PageInDirtyRing(ulong pgoff) =>
        pgoff >= KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET &&
        pgoff < KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET + (ulong)(Kvm.DirtyRingSize / EmulatorConfig.PageSize);

    /// <summary>kvm_vcpu_ioctl; the caller holds a file reference but not the kernel lock.</summary>
    public long VcpuIoctl(uint request, IoctlArg arg)
    {
        // "if (vcpu->kvm->mm != current->mm || vcpu->kvm->vm_dead) return -EIO;" first.
        if (Kvm.VmDead) return Err.EIO;
        // if (unlikely(_IOC_TYPE(ioctl) != KVMIO)) return -EINVAL;
        if (((request >> 8) & 0xff) != KvmIoctls.KVMIO) return Err.EINVAL;
        lock (Vcpu.Mutex)
        {
            // kvm_vcpu_ioctl's generic switch, before kvm_arch_vcpu_ioctl on every arch.
            if (request == KvmIoctls.KVM_GET_STATS_FD) return KvmMain.BinaryStats.GetStatsFd.VcpuIoctl(Vcpu);
            if (request == KvmIoctls.KVM_SET_SIGNAL_MASK) return SetSignalMask.Ioctl(Vcpu, arg);
            if (Kvm.Kernel.Config.Architecture != Architecture.X86_64) return Arm64.Arm64VcpuIoctls.Ioctl(Vcpu, request, arg);
            if (request == KvmIoctls.KVM_RUN)
                return arg.Value != 0 ? Err.EINVAL : RunWithGuestFpu();
            // has_protected_state && guest_state_protected / fpstate_is_confidential: the register-state ioctls of a
            // TDX vCPU are EINVAL (X86/ProtectedState.cs), before anything else is touched.
            if (ProtectedState.Refuse(Vcpu, request, arg) is long refused) return refused;
            // KVM_REQ_EVENT: these requests make it (kvm_set_rflags, __set_sregs, kvm_vcpu_ioctl_x86_set_vcpu_events,
            // kvm_arch_vcpu_ioctl_set_mpstate, kvm_queue_exception, kvm_vcpu_ioctl_interrupt, process_nmi). Only a
            // KVM_RUN that fails after injecting looks at it (X86Emulator.InjectThenCancel); taken whatever the answer.
            if (request == KvmIoctls.KVM_SET_REGS || request == KvmIoctls.KVM_SET_SREGS || request == KvmIoctls.KVM_SET_VCPU_EVENTS
                || request == KvmIoctls.KVM_SET_MP_STATE || request == KvmIoctls.KVM_SET_GUEST_DEBUG || request == KvmIoctls.KVM_X86_SET_MCE
                || request == KvmIoctls.KVM_INTERRUPT || request == KvmIoctls.KVM_NMI)
                Vcpu.Cpu.State.EventRequested = true;
            if (request == KvmIoctls.KVM_GET_REGS)
                return arg.CopyToUser(Vcpu.Cpu.GetRegs()) ? 0 : Err.EFAULT;
            if (request == KvmIoctls.KVM_SET_REGS)
            {
                if (!arg.CopyFromUser(out kvm_regs regs)) return Err.EFAULT;
                Vcpu.Cpu.SetRegs(regs);
                // x86.c __set_regs: vcpu->arch.exception.pending = false — a queued (not yet injected) exception, e.g.
                // one from KVM_SET_GUEST_DEBUG's INJECT_DB/BP, is dropped with the old register state (found by the
                // fuzzer: the host then reads injected=0 pending=0 and takes the next injection without EBUSY).
                Vcpu.Cpu.State.ExceptionPending = false;
                return 0;
            }
            if (request == KvmIoctls.KVM_GET_SREGS)
            {
                // __get_sregs_common: "sregs->cr8 = kvm_get_cr8(vcpu)" — the local APIC's TPR when it is in the kernel.
                var sregs = VcpuStateRules.WithInjectedInterrupt(Vcpu.Cpu, Vcpu.Cpu.Sregs);
                if (Vcpu.Lapic is { } apic) sregs.cr8 = apic.Cr8;
                return arg.CopyToUser(sregs) ? 0 : Err.EFAULT;
            }
            if (request == KvmIoctls.KVM_SET_SREGS)
            {
                if (!arg.CopyFromUser(out kvm_sregs sregs)) return Err.EFAULT;
                long r = SregsRules.Set(Vcpu.Cpu, Vcpu.Kvm, sregs);
                // __set_sregs_common(update_pdptrs): "if (is_pae_paging(vcpu)) load_pdptrs(...)", its failure ignored.
                if (r == 0 && Vcpu.Cpu.Paging && !Vcpu.Cpu.LongModeActive && (Vcpu.Cpu.Sregs.cr4 & X86.X86Consts.CR4_PAE) != 0)
                    _ = Mmu.PageWalkLegacy.LoadPdptrs(Vcpu.Memory, Vcpu.Cpu.Sregs.cr3, SregsRules.ReservedGpaBits(Vcpu.Cpu, Vcpu.Kvm), Vcpu.Cpu.Pdptrs);
                // kvm_set_cr8: with the APIC in the kernel the value goes to its TPR (kvm_lapic_set_tpr); a value with
                // reserved bits is refused there too. Found by the differential fuzzer's irqchip stream.
                if (r == 0 && Vcpu.Lapic is { } apic && (sregs.cr8 & ~0xFUL) == 0) apic.SetCr8(sregs.cr8);
                // __set_sregs_common: "Older userspace won't unhalt the vcpu on reset": the BSP (kvm_vcpu_is_bsp) at
                // RIP 0xfff0 with CS 0xf000 / 0xffff0000 outside protected mode becomes RUNNABLE (kvm_set_mp_state,
                // which also clears pv_unhalted). Found by the differential fuzzer's irqchip stream.
                var cs = Vcpu.Cpu.Sregs.cs;
                if (r == 0 && (Vcpu.Cpu.Sregs.apic_base & (1UL << 8)) != 0 && Vcpu.Cpu.Rip == 0xfff0 && cs.selector == 0xf000
                    && cs.@base == 0xffff0000 && (Vcpu.Cpu.Sregs.cr0 & 1) == 0)
                {
                    Vcpu.Cpu.State.MpState = KvmMpState.KVM_MP_STATE_RUNNABLE;
                    Vcpu.Cpu.State.PvUnhalted = false;
                }
                return r;
            }
            if (request == KvmIoctls.KVM_GET_MSRS)
                return MsrIo.GetMsrs(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_SET_MSRS)
                return MsrIo.SetMsrs(Vcpu.Cpu, Vcpu.SynchronizeTsc, arg);
            if (request == KvmIoctls.KVM_SET_CPUID2)
                return CpuidIoctls.SetCpuid2(Vcpu, arg);
            if (request == KvmIoctls.KVM_GET_CPUID2)
                return CpuidIoctls.GetCpuid2(Vcpu, arg);
            if (request == KvmIoctls.KVM_GET_FPU) return VcpuStateRules.GetFpu(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_SET_FPU) return VcpuStateRules.SetFpu(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_GET_XSAVE || request == KvmIoctls.KVM_GET_XSAVE2) return XsaveRules.Get(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_SET_XSAVE) return XsaveRules.Set(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_GET_XCRS) return VcpuStateRules.GetXcrs(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_SET_XCRS) return VcpuStateRules.SetXcrs(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_GET_VCPU_EVENTS) return VcpuStateRules.GetEvents(Vcpu.Cpu, arg, Kvm.ExceptionPayloadEnabled, Kvm.TripleFaultEvent);
            if (request == KvmIoctls.KVM_SET_VCPU_EVENTS) return VcpuStateRules.SetEvents(Vcpu.Cpu, arg, Kvm.ExceptionPayloadEnabled, Kvm.TripleFaultEvent);
            if (request == KvmIoctls.KVM_GET_MP_STATE) return VcpuStateRules.GetMpState(Vcpu, arg);
            if (request == KvmIoctls.KVM_SET_MP_STATE) return VcpuStateRules.SetMpState(Vcpu, arg);
            if (request == KvmIoctls.KVM_GET_DEBUGREGS) return VcpuStateRules.GetDebugRegs(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_SET_DEBUGREGS) return VcpuStateRules.SetDebugRegs(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_SET_GUEST_DEBUG) return Vcpu.Emulator.SetGuestDebug(arg);
            if (request == KvmIoctls.KVM_X86_SETUP_MCE) return Vcpu.Cpu.Msrs.Mce.SetupIoctl(arg);
            if (request == KvmIoctls.KVM_X86_SET_MCE) return Vcpu.Cpu.Msrs.Mce.SetMceIoctl(Vcpu.Cpu, arg);
            if (request == KvmIoctls.KVM_INTERRUPT) return InterruptIoctls.Interrupt(Vcpu, arg);
            if (request == KvmIoctls.KVM_GET_LAPIC) return X86.Irqchip.LapicIoctls.Get(Vcpu, arg);
            if (request == KvmIoctls.KVM_SET_LAPIC) return X86.Irqchip.LapicIoctls.Set(Vcpu, arg);
            if (request == KvmIoctls.KVM_NMI) return InterruptIoctls.Nmi(Vcpu.Cpu);
            if (Sregs2.IsRequest(request)) return Sregs2.Ioctl(Vcpu, request, arg);
            if (VapicIoctls.IsRequest(request)) return VapicIoctls.Ioctl(Vcpu, request, arg);
            if (TscAttributes.IsRequest(request)) return TscAttributes.Ioctl(Kvm, Vcpu, request, arg);
            if (KvmClock.IsVcpuRequest(request)) return Kvm.Clock.VcpuIoctl(Kvm, Vcpu.Id, request, arg.Value);
            if (request == KvmIoctls.KVM_ENABLE_CAP)
                return VcpuEnableCap.Ioctl(Vcpu, arg);
            if (request == KvmIoctls.KVM_PRE_FAULT_MEMORY && Kvm.Kernel.Config.Generation.HasPreFaultMemory())
                return PreFaultMemory.Ioctl(Vcpu, arg);
            if (request == KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP)
                return Arch.MemoryEncryptOp.VcpuIoctl(Vcpu, arg);
            // kvm_arch_vcpu_ioctl: default r = -EINVAL.
            return Err.EINVAL;
        }
    }

    /// <summary>
    /// kvm_arch_vcpu_ioctl_run: kvm_load_guest_fpu before anything else and kvm_put_guest_fpu on the way out, whatever
    /// the run's result (the XSAVE image's init components, <see cref="XsaveRules.BeforeRun"/>).
    /// </summary>
    private long RunWithGuestFpu()
    {
        XsaveRules.BeforeRun(Vcpu.Cpu);
        try
        {
            return VcpuRun.Run(Vcpu);
        }
        finally
        {
            XsaveRules.AfterRun(Vcpu.Cpu);
            // kvm_put_guest_fpu: "++vcpu->stat.fpu_reload" on every way out of kvm_arch_vcpu_ioctl_run.
            Vcpu.Stats.Increment(Vcpu.Stats.Table.Slots.FpuReload);
        }
    }

    /// <summary>kvm_vcpu_release: kvm_put_kvm (the vCPU itself is freed with the VM).</summary>
    protected override void OnRelease() => Kvm.Put();
}
