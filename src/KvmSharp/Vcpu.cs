// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>A vCPU (KVM_CREATE_VCPU) with its mmap'ed kvm_run area.</summary>
public sealed partial class Vcpu : IDisposable
{
    private readonly MappedRegion _run;
    // Vm.Kernel is Vm.Kvm.Kernel: two dependent loads (two more objects' cache lines) per ioctl; it never changes.
    private readonly IKernel _kernel;
    private volatile int _runningThread;

    private Vcpu(Vm vm, KernelFd fd, int id, MappedRegion run)
    {
        Vm = vm;
        Handle = fd;
        Id = id;
        _run = run;
        _kernel = vm.Kernel;
    }

    /// <summary>The VM this vCPU belongs to.</summary>
    public Vm Vm { get; }

    /// <summary>The vCPU file descriptor returned by KVM_CREATE_VCPU; pass it to raw kernel calls.</summary>
    public KernelFd Handle { get; }

    /// <summary>The vCPU id given to KVM_CREATE_VCPU.</summary>
    public int Id { get; }

    private IKernel Kernel => _kernel;

    internal static Vcpu Create(Vm vm, KernelFd fd, int id)
    {
        try
        {
            ulong size = (ulong)vm.Kvm.VcpuMmapSize;
            long rc = MappedRegion.Map(vm.Kernel, fd, size, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, 0, out MappedRegion? run);
            KvmCall.Check(rc, "mmap", $"kvm_run of vCPU {id}, length=0x{size:X}");
            var vcpu = new Vcpu(vm, fd, id, run!);
            // The dirty ring (Vcpu.DirtyRing.cs): mapped with the vCPU when its VM enabled one, unmapped on Dispose.
            int ringBytes = vm.DirtyRingBytes;
            if (ringBytes != 0)
            {
                try
                {
                    vcpu._dirtyRing = DirtyRing.Map(vm.Kernel, fd, id, ringBytes);
                }
                catch
                {
                    run!.Dispose();
                    throw;
                }
            }
            return vcpu;
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>KVM_GET_REGS: the general-purpose registers, RIP and RFLAGS (x86).</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public kvm_regs GetRegs()
    {
        var regs = default(kvm_regs);
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_REGS, KvmCall.Bytes(ref regs));
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_GET_REGS", $"vcpu={Id}");
        return regs;
    }

    /// <summary>KVM_SET_REGS: replaces the general-purpose registers, RIP and RFLAGS (x86).</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void SetRegs(kvm_regs regs)
    {
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_REGS, KvmCall.Bytes(ref regs));
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_SET_REGS", $"vcpu={Id} rip=0x{regs.rip:X}");
    }

    /// <summary>KVM_GET_SREGS: the segment, descriptor-table and control registers, EFER and APIC base (x86).</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public kvm_sregs GetSregs() => GetState<kvm_sregs>(KvmIoctls.KVM_GET_SREGS, "KVM_GET_SREGS");

    /// <summary>
    /// KVM_SET_SREGS: replaces the segment, descriptor-table and control registers, EFER and APIC base (x86).
    /// </summary>
    /// <exception cref="KvmException">The kernel refused the state (e.g. EINVAL for an inconsistent
    /// CR0/CR4/EFER).</exception>
    public void SetSregs(kvm_sregs sregs) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_SREGS, KvmCall.Bytes(ref sregs)), "KVM_SET_SREGS",
            $"vcpu={Id} cr0=0x{sregs.cr0:X} cr4=0x{sregs.cr4:X} efer=0x{sregs.efer:X}");

    /// <summary>kvm_run.immediate_exit: when set, the next KVM_RUN returns EINTR at once (to stop a runaway guest).</summary>
    public bool ImmediateExit
    {
        get => _run.GetSpan(KvmRunLayout.immediate_exit, 1)[0] != 0;
        set => _run.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = value ? (byte)1 : (byte)0;
    }

    /// <summary>
    /// kvm_run.hypercall.ret: after a KVM_EXIT_HYPERCALL, the value the guest finds in RAX once the next
    /// <see cref="Run"/> completes the hypercall (0 = success, <c>-KvmPara.KVM_E*</c> = failure; only the low 32 bits
    /// outside 64-bit mode). Same field as <see cref="VcpuExit.HypercallReturn"/>, usable after the exit went out of scope.
    /// </summary>
    public long HypercallReturn
    {
        get => System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(_run.GetSpan(KvmRunLayout.hypercall_ret, sizeof(long)));
        set => System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(_run.GetSpan(KvmRunLayout.hypercall_ret, sizeof(long)), value);
    }

    /// <summary>
    /// KVM_RUN once. Returns the exit decoded in place over the kvm_run page (valid until the next Run). A run
    /// interrupted by a signal or immediate_exit (EINTR) returns <see cref="VcpuExit.Interrupted"/> = true. A
    /// KVM_EXIT_MEMORY_FAULT comes back from the kernel as -EFAULT (or -EHWPOISON) with the exit filled in
    /// (Documentation/virt/kvm/api.rst, KVM_CAP_MEMORY_FAULT_INFO): it is returned as an exit, not thrown. Other
    /// failures throw.
    /// </summary>
    public VcpuExit Run()
    {
        _runningThread = Kernel.GetTid();
        long rc;
        try
        {
            rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_RUN, 0UL);
        }
        finally
        {
            _runningThread = 0;
        }
        // The whole mapping, not just struct kvm_run: port I/O data lives at data_offset, usually the next page.
        Span<byte> page = _run.GetSpan(0, (int)_run.Length);
        if (!KvmCall.IsError(rc)) return new VcpuExit(page, interrupted: false, Vm.Kvm.Proposals.SnpReqCertsExit);
        if (rc == -(long)Errno.EINTR) return new VcpuExit(page, interrupted: true);
        var exit = new VcpuExit(page, interrupted: false);
        if ((rc == -(long)Errno.EFAULT || rc == -(long)Errno.EHWPOISON) && exit.Reason == KvmExitReason.KVM_EXIT_MEMORY_FAULT)
            return exit;
        KvmCall.ThrowKvm(rc, "KVM_RUN", $"vcpu={Id}");
        return default;
    }

    /// <summary>
    /// Stops this vCPU from any thread: sets immediate_exit, then interrupts the thread inside <see cref="Run"/>
    /// (if any), so that Run returns <see cref="VcpuExit.Interrupted"/> now or at its next call. The caller clears
    /// <see cref="ImmediateExit"/> before running the vCPU again.
    /// </summary>
    public void Kick()
    {
        ImmediateExit = true;
        // Store immediate_exit, then load _runningThread; Run stores _runningThread, then the kernel loads
        // immediate_exit (after taking the vCPU mutex, a full barrier). Without a full barrier here the store could
        // be ordered after the load (x86 store buffer): Kick would see no thread while Run's KVM_RUN still saw
        // immediate_exit = 0, and the vCPU would not stop.
        Interlocked.MemoryBarrier();
        int thread = _runningThread;
        if (thread != 0) Kernel.KickThread(thread);
    }

    /// <summary>
    /// KVM_PRE_FAULT_MEMORY over [gpa, gpa+size). Returns the bytes that were not mapped (0 when all were);
    /// the kernel stops early on a signal.
    /// </summary>
    public ulong PreFaultMemory(ulong guestPhysicalAddress, ulong size)
    {
        var args = new kvm_pre_fault_memory { gpa = guestPhysicalAddress, size = size };
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_PRE_FAULT_MEMORY, KvmCall.Bytes(ref args));
        if (KvmCall.IsError(rc))
        {
            string request = $"vcpu={Id} gpa=0x{guestPhysicalAddress:X} size=0x{size:X}";
            long cap = Vm.CheckExtension(KvmCaps.KVM_CAP_PRE_FAULT_MEMORY);
            if (cap == 0)
                throw new KvmCapabilityException("KVM_PRE_FAULT_MEMORY", (int)-rc, request, nameof(KvmCaps.KVM_CAP_PRE_FAULT_MEMORY), cap);
            KvmCall.ThrowKvm(rc, "KVM_PRE_FAULT_MEMORY", request);
        }
        return args.size;
    }

    /// <summary>
    /// Unmaps the kvm_run area and closes the vCPU descriptor; any <see cref="VcpuExit"/> from it is then invalid.
    /// </summary>
    public void Dispose()
    {
        _dirtyRing?.Dispose();
        _run.Dispose();
        Handle.Dispose();
    }
}
