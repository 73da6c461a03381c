// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// A 64-bit guest as the selftests' vm_create_with_one_vcpu() builds one, from the micro-VM's pieces: slot 0 is 2 MiB
/// at GPA 0 (<see cref="GuestMemory"/>): a MMAP|INIT_SHARED guest_memfd mapped for userspace when the kernel offers
/// one, else ordinary host memory (<see cref="GuestMemory.BestBacking"/>: these guests test the CPU and KVM_RUN, not
/// guest_memfd, so they run on a kernel built without it too), with the Vmm's GDT and identity page tables (<see cref="Gdt"/>, <see cref="PageTables"/>); the vCPU starts straight in
/// long mode (<see cref="LongMode"/>) at <see cref="CodeGpa"/>. <see cref="IdentityMap"/> adds 4 KiB page-table
/// entries for pages outside slot 0 (upstream's virt_map(vm, gpa, gpa, n)). Code is assembled with Iced.
/// </summary>
public sealed class LongModeGuest : IDisposable
{
    /// <summary>Where the code is loaded and the vCPU starts.</summary>
    public const ulong CodeGpa = Layout.ImageBase;

    public const ulong MemorySize = Layout.MinMemorySize;

    /// <summary>Page-table pages added by <see cref="IdentityMap"/> come from the call-data area, unused here.</summary>
    private const ulong ExtraTablesStart = Layout.CallData;

    private ulong _nextTable = ExtraTablesStart;

    private LongModeGuest(Vm vm, GuestMemory memory, Vcpu vcpu)
    {
        Vm = vm;
        Memory = memory;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }

    /// <summary>Slot 0: code, stack, GDT and page tables; <see cref="GuestMemory.HostAddress"/> is its userspace_addr.</summary>
    public GuestMemory Memory { get; }

    public Vcpu Vcpu { get; }

    /// <summary>
    /// Creates the VM and vCPU; the vCPU enters <paramref name="program"/> with the SysV argument registers set from
    /// <paramref name="args"/> (upstream's vcpu_args_set).
    /// </summary>
    public static LongModeGuest Create(Kvm kvm, Action<Assembler> program, params ulong[] args) => Create(kvm, backing: null, program, args);

    /// <summary>
    /// <see cref="Create(Kvm, Action{Assembler}, ulong[])"/> with slot 0 held by <paramref name="backing"/> (null: the
    /// best the kernel offers).
    /// </summary>
    public static LongModeGuest Create(Kvm kvm, GuestMemoryBacking? backing, Action<Assembler> program, params ulong[] args) =>
        Create(kvm, VmType.Default, backing, program, args);

    /// <summary>The same, on a VM of <paramref name="vmType"/> (e.g. KVM_X86_SW_PROTECTED_VM, upstream's vm_shape).</summary>
    public static LongModeGuest Create(Kvm kvm, VmType vmType, GuestMemoryBacking? backing, Action<Assembler> program, params ulong[] args) =>
        Create(kvm, vmType, backing, prepareVm: null, program, args);

    /// <summary>
    /// The same, with <paramref name="prepareVm"/> run on the new VM before its vCPU exists (e.g. KVM_CREATE_IRQCHIP).
    /// </summary>
    public static LongModeGuest Create(Kvm kvm, VmType vmType, GuestMemoryBacking? backing, Action<Vm>? prepareVm, Action<Assembler> program, params ulong[] args)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        ArgumentNullException.ThrowIfNull(program);
        var vm = kvm.CreateVm(vmType);
        GuestMemory? memory = null;
        try
        {
            prepareVm?.Invoke(vm);
            memory = GuestMemory.Create(vm, MemorySize, backing ?? GuestMemory.BestBacking(vm));
            Gdt.Write(memory);
            PageTables.Write(memory);
            memory.Write(CodeGpa, Assemble(program));
            var vcpu = vm.CreateVcpu(0);
            var sregs = vcpu.GetSregs();
            LongMode.Apply(ref sregs);
            vcpu.SetSregs(sregs);
            vcpu.SetRegs(LongMode.EntryRegs(CodeGpa, Layout.StackTop - 8, args));
            return new LongModeGuest(vm, memory, vcpu);
        }
        catch
        {
            memory?.Dispose();
            vm.Dispose();
            throw;
        }
    }

    public static byte[] Assemble(Action<Assembler> program)
    {
        ArgumentNullException.ThrowIfNull(program);
        var asm = new Assembler(64);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), CodeGpa);
        return stream.ToArray();
    }

    /// <summary>
    /// Identity-maps the 4 KiB page at <paramref name="gpa"/> (virt_map): walks PML4 → PDPT → PD → PT from
    /// <see cref="Layout.Pml4"/>, adding the missing tables, and writes the page's PTE.
    /// </summary>
    public void IdentityMap(ulong gpa)
    {
        if (gpa % Layout.PageSize != 0) throw new ArgumentException($"GPA 0x{gpa:X} is not page aligned", nameof(gpa));
        ulong table = Layout.Pml4;
        for (int shift = 39; shift > 12; shift -= 9)
        {
            ulong entryGpa = table + ((gpa >> shift) & 511) * sizeof(ulong);
            ulong entry = Memory.Read<ulong>(entryGpa);
            if ((entry & PageTables.LargePage) != 0)
                throw new InvalidOperationException($"GPA 0x{gpa:X} is already mapped by a large page (entry at 0x{entryGpa:X})");
            if ((entry & PageTables.Present) == 0)
            {
                if (_nextTable >= Layout.CallDataEnd) throw new InvalidOperationException("no room left for page tables");
                entry = _nextTable | PageTables.Present | PageTables.Writable;
                Memory.Fill(_nextTable, Layout.PageSize, 0);
                Memory.Write(entryGpa, entry);
                _nextTable += Layout.PageSize;
            }
            table = entry & 0x000F_FFFF_FFFF_F000;
        }
        Memory.Write(table + ((gpa >> 12) & 511) * sizeof(ulong), gpa | PageTables.Present | PageTables.Writable);
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        Memory.Dispose();
        Vm.Dispose();
    }
}
