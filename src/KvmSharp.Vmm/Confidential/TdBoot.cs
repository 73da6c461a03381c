// SPDX-License-Identifier: MIT
using KvmSharp.Memory;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Confidential;

/// <summary>
/// The TDX launch of a <see cref="VmType.Tdx"/> micro-VM (Documentation/virt/kvm/x86/intel-tdx.rst; the flow of
/// src/KvmSharp.Conformance/Guests/TdGuest.cs). A TD's vCPU registers are protected from its creation (tdx.c
/// tdx_vcpu_create; x86.c KVM_GET/SET_REGS and _SREGS are EINVAL), so unlike every other micro-VM the host cannot put
/// it in long mode or point it at a function: the guest boots itself and takes each call from the guest-side
/// dispatcher an SNP micro-VM uses (<see cref="SnpDispatcher"/>).
/// <para><b>Launch.</b> At creation (<see cref="Open"/>, before the vCPU): a split irqchip with 24 IOAPIC pins (a TD has
/// its local APIC in KVM), KVM_TDX_INIT_VM with every configurable CPUID bit and GPAW 48 (so the shared bit is GPA bit
/// 47), and (<see cref="AddBootSlot"/>) a second small guest_memfd slot, <see cref="TdRuntime.BootSlot"/> (the two pages below 4 GiB: the boot
/// page directory and the boot stub); then the vCPU gets the sandbox CPUID with x2APIC set (KVM_TDX_INIT_VCPU refuses
/// a CPUID without it) and KVM_TDX_INIT_VCPU. At the first call (<see cref="Launch"/>), once the host has written the
/// request: the private ranges are made private on the guest_memfd (KVM_SET_MEMORY_ATTRIBUTES2), added and measured in
/// place with KVM_TDX_INIT_MEM_REGION (source 0: the contents the host wrote through the mapping stay; "guest_memfd:
/// In-place conversion support" v8, tdx.c tdx_gmem_post_populate), the boot slot from a copy, and
/// KVM_TDX_FINALIZE_VM. The first KVM_RUN starts the vCPU at the reset vector 0xFFFFFFF0 (32-bit protected mode, paging
/// off): the boot stub (<see cref="TdRuntime"/>) loads the GDT, enables paging and long mode, loads the TD's IDT, unmaps
/// the boot page and enters the dispatcher, which reads the request from the shared call region.</para>
/// <para><b>Shared vs private.</b> The pages the host reads and writes during a call — the call region with the
/// host-call block, the call data and the exception block (<see cref="SealedGuest.SharedRanges"/>) — stay shared and
/// are mapped in the guest's page tables with the shared bit 47 set (<see cref="PageTables.WriteTd"/>); every other
/// page — the VMM's pages (GDT, page tables, trampoline with the dispatcher and the #VE handler, exception handlers,
/// IDT, stacks) and the image — is private, mapped without it, and part of the TD's measurement. The host reads the
/// shared pages through the guest_memfd's own mapping, so a TD micro-VM needs guest_memfd memory with in-place
/// conversion (<see cref="SealedGuest.Unusable"/>; refused with a <see cref="MicroVmException"/> otherwise, as for SNP).
/// The call region's <c>features</c> bit 0 (private memory through KVM_HC_MAP_GPA_RANGE) is clear: a TD's guest asks
/// for conversions with TDG.VP.VMCALL&lt;MapGPA&gt;, which the sandbox does not serve.</para>
/// <para><b>Port I/O.</b> The guest images talk to the host with IN and OUT, which in a TD are a #VE (vector 20): the
/// TD's IDT sends it to the VMM's handler (<see cref="TdRuntime.VeHandler"/>), which asks TDG.VP.VEINFO.GET why and
/// performs the access with TDG.VP.VMCALL&lt;Instruction.IO&gt; (HLT with &lt;Instruction.HLT&gt;), so the VMM sees the
/// same KVM_EXIT_IO as for any micro-VM and the same devices answer.</para>
/// <para><b>Outcomes.</b> As for SNP: a return leaves the vCPU in the dispatcher (the next call resumes it there); an
/// exit status, an exception (reported by the VMM's handlers through the shared exception block), an unknown port, a
/// triple fault (KVM_EXIT_SHUTDOWN), the host's timeout or a cancellation is the micro-VM's last call. HLT does not
/// exit to the VMM in a TD: KVM halts the vCPU until an interrupt that never comes, so a halted TD ends at the
/// timeout. Reset, <see cref="MicroVm.Snapshot"/>, Restore and creation from a snapshot are refused
/// (<see cref="SealedGuest"/>): the host can neither reload the registers nor rewrite the private memory.</para>
/// </summary>
internal sealed class TdBoot : ISealedLaunch
{
    /// <summary>The guest physical address width KVM_TDX_INIT_VM is given.</summary>
    public const int Gpaw = 48;

    /// <summary>GPAW 48: GPA bit 47 is the shared bit (kvm-&gt;arch.gfn_direct_bits).</summary>
    public const ulong SharedBit = 1UL << (Gpaw - 1);

    /// <summary>The memory slot of the boot pages (slot 0 is guest memory).</summary>
    public const uint BootSlotNumber = 1;

    /// <summary>The IOAPIC pins of the split irqchip (KVM_CAP_SPLIT_IRQCHIP), as QEMU gives a TD.</summary>
    public const int IoapicPins = 24;

    /// <summary>CPUID.1:ECX.x2APIC[bit 21]: tdx_vcpu_init (KVM_TDX_INIT_VCPU) is EINVAL without it.</summary>
    private const uint X2Apic = 1u << 21;

    private readonly TdxLaunch _launch;
    private GuestMemfd? _bootMemfd;
    private MemorySlot? _bootSlot;

    private TdBoot(TdxLaunch launch) => _launch = launch;

    /// <inheritdoc/>
    public VmType Type => VmType.Tdx;

    /// <inheritdoc/>
    public string SealedBy => "the TDX module";

    /// <inheritdoc/>
    public bool SetsEntryRegisters => false;

    /// <summary>True once KVM_TDX_FINALIZE_VM ran.</summary>
    public bool Launched { get; private set; }

    /// <summary>
    /// The split irqchip and KVM_TDX_INIT_VM (GPAW 48) on <paramref name="vm"/>, before any vCPU.
    /// </summary>
    public static TdBoot Open(Vm vm, MicroVmOptions options)
    {
        if (options.Cpuid == CpuidPolicy.None)
        {
            throw new MicroVmException(
                "VM type Tdx with CpuidPolicy.None: KVM_TDX_INIT_VCPU needs a CPUID table with x2APIC (a TD's local APIC is " +
                "in x2APIC mode; tdx.c tdx_vcpu_init)");
        }
        if (options.TraceInstructions > 0)
        {
            throw new MicroVmException(
                "VM type Tdx with MicroVmOptions.TraceInstructions: tracing reads the vCPU's registers, which a TD protects " +
                "from the vCPU's creation (KVM_GET_REGS is EINVAL), and single-steps its private code");
        }
        // tdx_vm_init / KVM_TDX_INIT_VM: a TD's interrupt controller is a split irqchip (irqchip_split), set before.
        vm.EnableSplitIrqchip(IoapicPins);
        var launch = new TdxLaunch(vm);
        launch.InitVm(launch.GetCapabilities().CpuidWithGpaw(Gpaw));
        return new TdBoot(launch);
    }

    /// <summary>
    /// Adds the boot slot (<see cref="TdRuntime.BootSlot"/>, slot <see cref="BootSlotNumber"/>): a guest_memfd of
    /// private pages that KVM_TDX_INIT_MEM_REGION fills from a copy at the launch. After the check that the kernel
    /// converts guest_memfd pages in place (<see cref="SealedGuest.Unusable"/>), which making them private needs.
    /// </summary>
    public void AddBootSlot(Vm vm)
    {
        GuestMemfd memfd = vm.CreateGuestMemfd(TdRuntime.BootSlotSize);
        _bootMemfd = memfd;
        _bootSlot = vm.AddGuestMemfdSlot(BootSlotNumber, TdRuntime.BootSlot, TdRuntime.BootSlotSize, memfd);
        // KVM_TDX_INIT_MEM_REGION adds private pages only (kvm_gmem_populate).
        memfd.MakePrivate(0, TdRuntime.BootSlotSize);
    }

    /// <summary>
    /// <paramref name="cpuid"/> (the sandbox table) with x2APIC set: a TD's vCPU runs its local APIC in x2APIC mode
    /// and KVM_TDX_INIT_VCPU refuses a table without it.
    /// </summary>
    public static IReadOnlyList<CpuidEntry> WithX2Apic(IReadOnlyList<CpuidEntry> cpuid) =>
        [.. cpuid.Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | X2Apic } : e)];

    /// <summary>KVM_TDX_INIT_VCPU, after KVM_SET_CPUID2.</summary>
    public void InitVcpu(Vcpu vcpu) => _launch.InitVcpu(vcpu);

    /// <summary>
    /// Makes the private ranges of <paramref name="memory"/> private and adds them in place, adds the boot slot, and
    /// finalizes the TD.
    /// </summary>
    public void Launch(GuestMemory memory, Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (Launched) throw new InvalidOperationException("the TD micro-VM is launched already");
        GuestMemfd memfd = memory.Memfd!;
        foreach (var (start, end) in SealedGuest.PrivateRanges(memory.Size, VmType.Tdx)) memfd.MakePrivate(start, end - start);
        foreach (var (start, end) in SealedGuest.PrivateRanges(memory.Size, VmType.Tdx))
            _launch.InitMemRegion(vcpu, start, source: 0, (end - start) / Layout.PageSize);
        var boot = new PinnedArray<byte>((int)TdRuntime.BootSlotSize, (int)Layout.PageSize);
        TdRuntime.BootSlotBytes.CopyTo(boot.Span);
        _launch.InitMemRegion(vcpu, TdRuntime.BootSlot, (nint)boot.Address, TdRuntime.BootSlotSize / Layout.PageSize);
        GC.KeepAlive(boot);
        _launch.FinalizeVm();
        Launched = true;
    }

    /// <summary>Removes the boot slot and closes its guest_memfd (before the VM is closed).</summary>
    public void Dispose()
    {
        _bootSlot?.Dispose();
        _bootSlot = null;
        _bootMemfd?.Dispose();
        _bootMemfd = null;
    }
}
