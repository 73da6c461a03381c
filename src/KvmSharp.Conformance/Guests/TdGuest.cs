// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Memory;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// A TD launched as a VMM launches one (Documentation/virt/kvm/x86/intel-tdx.rst: a split irqchip, KVM_TDX_INIT_VM
/// with GPAW 48, private guest_memfd slots, KVM_TDX_INIT_VCPU, KVM_TDX_INIT_MEM_REGION of the measured image,
/// KVM_TDX_FINALIZE_VM) whose image boots itself, as a TD's firmware does: the vCPU starts where the TDX module leaves
/// it (32-bit protected mode, paging off, RIP 0xFFFFFFF0), and a stub in the top page (<see cref="Boot"/>) loads a GDT,
/// enables PAE paging over identity page tables (the first and the last 2 MiB of the 4 GiB) and jumps to the 64-bit
/// program at <see cref="Code"/> with RSP = <see cref="Size"/>. KVM cannot set a TD's registers, so nothing else can.
/// The program talks to the host with TDCALL: <see cref="Report"/> writes a register to <see cref="ReportGpa"/> with
/// TDG.VP.VMCALL(#VE.RequestMMIO), which reaches the VMM as an 8-byte KVM_EXIT_MMIO (<see cref="RunToReport"/>).
/// </summary>
public sealed class TdGuest : IDisposable
{
    /// <summary>The low slot: page tables, the program, the stack below <see cref="Size"/>.</summary>
    public const ulong Size = 0x1_0000;
    public const ulong Pml4 = 0x1000, Pdpt = 0x2000, PdLow = 0x3000, PdHigh = 0x4000, Code = 0x5000;

    /// <summary>The high slot: the last 64 KiB below 4 GiB, the boot stub in its last page.</summary>
    public const ulong Boot = 0xffff_0000, BootPage = 0xffff_f000, ResetVector = 0xffff_fff0;

    /// <summary>GPAW 48: bit 47 is the shared bit (kvm-&gt;arch.gfn_direct_bits).</summary>
    public const ulong SharedBit = 1UL << 47;

    /// <summary>Where <see cref="Report"/> writes (the MMIO exit's address: the shared bit cleared).</summary>
    public const ulong ReportGpa = 0xfeed_0000;

    /// <summary>RCX for TDG.VP.VMCALL: R10–R15 exposed (bits 10–15), as a Linux TD's TDVMCALLs do at least.</summary>
    public const ulong ExposeR10ToR15 = 0xfc00;

    /// <summary>Where <see cref="InstallHandler"/> builds the IDT (256 16-byte gates: one page of the low slot).</summary>
    public const ulong Idt = 0xc000;

    /// <summary>Where <see cref="InstallHandler"/> keeps the IDTR image (limit, base) for LIDT.</summary>
    public const ulong IdtrImage = 0xbff0;

    /// <summary>
    /// The first private page of the high slot that KVM_TDX_INIT_MEM_REGION did not add (the high slot's first 15 pages
    /// are private but not added; the identity map covers them): KVM maps such a page PENDING (TDH.MEM.PAGE.AUG) and
    /// the TD must TDG.MEM.PAGE.ACCEPT it before using it.
    /// </summary>
    public const ulong UnacceptedPage = Boot;

    /// <summary>arch/x86/include/asm/shared/tdx.h TDG_VP_INFO, TDG_VP_VEINFO_GET, TDG_MEM_PAGE_ACCEPT.</summary>
    public const int TdgVpInfo = 1, TdgVpVeinfoGet = 3, TdgMemPageAccept = 6;

    /// <summary>TDX_TD_ATTR_SEPT_VE_DISABLE (TD ATTRIBUTES bit 28).</summary>
    public const ulong AttrSeptVeDisable = 1UL << 28;

    private const ulong Page = 0x1000;
    private const ushort Code64Selector = 0x08, DataSelector = 0x10;

    private readonly OwnedResources _owned;

    private TdGuest(OwnedResources owned, Vm vm, Vcpu vcpu)
    {
        _owned = owned;
        Vm = vm;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }

    public Vcpu Vcpu { get; }

    /// <summary>
    /// Creates, launches and finalizes the TD. <paramref name="prepareVm"/> runs before KVM_TDX_INIT_VM (e.g.
    /// KVM_CAP_EXIT_HYPERCALL); <paramref name="enableApic"/> makes the program start by software-enabling its x2APIC
    /// (TDG.VP.VMCALL&lt;Instruction.WRMSR&gt; 0x80F = 0x1FF), as a TD's kernel does before it takes interrupts.
    /// </summary>
    public static TdGuest Create(Kvm kvm, Action<Assembler> program, Action<Vm>? prepareVm = null, bool enableApic = false) =>
        Create(kvm, program, attributes: 0, prepareVm, enableApic);

    /// <summary>As <see cref="Create(Kvm, Action{Assembler}, Action{Vm}?, bool)"/>, with KVM_TDX_INIT_VM's TD <paramref name="attributes"/> (e.g. <see cref="AttrSeptVeDisable"/>).</summary>
    public static TdGuest Create(Kvm kvm, Action<Assembler> program, ulong attributes, Action<Vm>? prepareVm = null, bool enableApic = false)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        ArgumentNullException.ThrowIfNull(program);
        var owned = new OwnedResources();
        try
        {
            var vm = owned.Add(kvm.CreateVm(VmType.Tdx));
            vm.EnableSplitIrqchip(24);
            prepareVm?.Invoke(vm);
            var launch = new TdxLaunch(vm);
            launch.InitVm(launch.GetCapabilities().CpuidWithGpaw(48), attributes);
            var low = owned.Add(vm.CreateGuestMemfd(Size));
            owned.Add(vm.AddGuestMemfdSlot(0, 0, Size, low));
            var high = owned.Add(vm.CreateGuestMemfd(Size));
            owned.Add(vm.AddGuestMemfdSlot(1, Boot, Size, high));
            vm.SetMemoryAttributes(0, Size, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            vm.SetMemoryAttributes(Boot, Size, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            var vcpu = owned.Add(vm.CreateVcpu(0));
            vcpu.SetCpuid(kvm.GetSupportedCpuid());
            launch.InitVcpu(vcpu);

            var lowImage = new PinnedArray<byte>((int)(Size - Pml4), (int)Page);
            void Entry(ulong at, ulong value) => BitConverter.TryWriteBytes(lowImage.Span[(int)(at - Pml4)..], value);
            Entry(Pml4, Pdpt | 3);
            Entry(Pdpt, PdLow | 3);
            Entry(Pdpt + 3 * 8, PdHigh | 3);
            Entry(PdLow, 0x83);                                // 0 – 2 MiB, present | writable | 2 MiB page
            Entry(PdHigh + 511 * 8, 0xffe0_0000UL | 0x83);     // 4 GiB - 2 MiB – 4 GiB
            GuestCode.Assemble(a =>
            {
                // x2APIC SVR is not virtualized by the TDX module (a WRMSR would be a #VE): ask KVM as the #VE
                // handler of a TD's kernel would (tdx.c write_msr: TDG.VP.VMCALL<Instruction.WRMSR>).
                if (enableApic) Vmcall(a, TdxGhci.EXIT_REASON_MSR_WRITE, 0x80f, 0x1ff);
                program(a);
            }, 64, Code).CopyTo(lowImage.Span[(int)(Code - Pml4)..]);
            var bootImage = new PinnedArray<byte>((int)Page, (int)Page);
            BootStub().CopyTo(bootImage.Span);

            launch.InitMemRegion(vcpu, Pml4, (nint)lowImage.Address, (Size - Pml4) / Page);
            launch.InitMemRegion(vcpu, BootPage, (nint)bootImage.Address, 1);
            GC.KeepAlive(lowImage);
            GC.KeepAlive(bootImage);
            launch.FinalizeVm();
            return new TdGuest(owned, vm, vcpu);
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The top page: at 0xFFFFFFF0 a jump back to its start, where 32-bit code loads the GDT (null, 64-bit code 0x08,
    /// data 0x10, kept in the page), sets CR4.PAE and CR3, CR0.PG (EFER.LME is already set in a TD), and far-jumps to
    /// <see cref="Code"/> with the data segments and the stack set up on the way.
    /// </summary>
    private static byte[] BootStub()
    {
        const ulong GdtAt = BootPage + 0x800, GdtrAt = BootPage + 0x840, Long = BootPage + 0x100;
        var image = new byte[Page];
        // GDT: null; 0x08 64-bit code (P, DPL 0, S, type 0xB, L); 0x10 data (P, S, type 0x3, G, D/B).
        BitConverter.TryWriteBytes(image.AsSpan((int)(GdtAt - BootPage) + 8), 0x0020_9b00_0000_0000UL);
        BitConverter.TryWriteBytes(image.AsSpan((int)(GdtAt - BootPage) + 16), 0x00cf_9300_0000_ffffUL);
        BitConverter.TryWriteBytes(image.AsSpan((int)(GdtrAt - BootPage)), (ushort)(3 * 8 - 1));
        BitConverter.TryWriteBytes(image.AsSpan((int)(GdtrAt - BootPage) + 2), (uint)GdtAt);

        GuestCode.Assemble(a =>
        {
            a.lgdt(__[(uint)GdtrAt]);
            a.mov(eax, cr4);
            a.or(eax, 1 << 5);
            a.mov(cr4, eax);
            a.mov(eax, (uint)Pml4);
            a.mov(cr3, eax);
            a.mov(eax, cr0);
            a.or(eax, unchecked((int)0x8000_0000));
            a.mov(cr0, eax);
            a.jmp(Code64Selector, (uint)Long);
        }, 32, BootPage).CopyTo(image, 0);
        GuestCode.Assemble(a =>
        {
            a.mov(ax, DataSelector);
            a.mov(ds, ax);
            a.mov(es, ax);
            a.mov(ss, ax);
            a.mov(rsp, Size);
            a.mov(rax, Code);
            a.jmp(rax);
        }, 64, Long).CopyTo(image, (int)(Long - BootPage));
        GuestCode.Assemble(a => a.jmp(BootPage), 32, ResetVector).CopyTo(image, (int)(ResetVector - BootPage));
        return image;
    }

    /// <summary>TDG.VP.VMCALL with R10 = 0 (standard), R11 = <paramref name="subFunction"/>, R12.. from <paramref name="args"/>.</summary>
    public static void Vmcall(Assembler a, ulong subFunction, params ulong[] args)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(args);
        a.mov(rcx, ExposeR10ToR15);
        a.xor(r10, r10);
        a.mov(r11, subFunction);
        AssemblerRegister64[] regs = [r12, r13, r14, r15];
        for (int i = 0; i < args.Length; i++) a.mov(regs[i], args[i]);
        a.xor(eax, eax);
        a.tdcall();
    }

    /// <summary>
    /// Reports <paramref name="value"/>: TDG.VP.VMCALL(#VE.RequestMMIO) write of 8 bytes at <see cref="ReportGpa"/> |
    /// <see cref="SharedBit"/>, with RBX, RCX and R10–R15 kept on the stack around it (RAX ends 0).
    /// </summary>
    public static void Report(Assembler a, AssemblerRegister64 value)
    {
        ArgumentNullException.ThrowIfNull(a);
        AssemblerRegister64[] saved = [rbx, rcx, r10, r11, r12, r13, r14, r15];
        foreach (var r in saved) a.push(r);
        a.mov(rbx, value);
        a.mov(rcx, ExposeR10ToR15);
        a.xor(r10, r10);
        a.mov(r11, TdxGhci.EXIT_REASON_EPT_VIOLATION);
        a.mov(r12, 8);
        a.mov(r13, 1);
        a.mov(r14, ReportGpa | SharedBit);
        a.mov(r15, rbx);
        a.xor(eax, eax);
        a.tdcall();
        for (int i = saved.Length - 1; i >= 0; i--) a.pop(saved[i]);
    }

    /// <summary>
    /// Emits code that makes <paramref name="handler"/> the handler of <paramref name="vector"/>: a 64-bit interrupt
    /// gate (selector 0x08, DPL 0) at <see cref="Idt"/> + 16 * vector, and LIDT of the whole page. Clobbers RAX, RDX, RBX.
    /// </summary>
    public static void InstallHandler(Assembler a, int vector, Label handler)
    {
        ArgumentNullException.ThrowIfNull(a);
        a.lea(rax, __[handler]);
        a.mov(rdx, rax);
        a.and(eax, 0xffff);
        a.shr(rdx, 16);
        a.shl(rdx, 48);
        a.or(rax, rdx);
        a.mov(rdx, 0x0000_8e00_0008_0000UL); // P, DPL 0, type 0xE (64-bit interrupt gate); selector 0x08
        a.or(rax, rdx);
        a.mov(rbx, Idt + (ulong)(16 * vector));
        a.mov(__qword_ptr[rbx], rax);
        a.mov(__qword_ptr[rbx + 8], 0);
        a.mov(rbx, IdtrImage);
        a.mov(__word_ptr[rbx], 0xfff);
        a.mov(rax, Idt);
        a.mov(__qword_ptr[rbx + 2], rax);
        a.lidt(__[rbx]);
    }

    /// <summary>Runs to the next exit, which must be a <see cref="Report"/>; returns the value.</summary>
    public ulong RunToReport()
    {
        var exit = Vcpu.Run();
        Xunit.Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioIsWrite && exit.MmioAddress == ReportGpa,
            $"expected a report (MMIO write at 0x{ReportGpa:X}), got {exit.ToString()}");
        return BitConverter.ToUInt64(exit.MmioData);
    }

    public void Dispose() => _owned.Dispose();
}
