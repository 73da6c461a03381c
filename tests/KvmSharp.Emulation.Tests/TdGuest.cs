// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Memory;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A TD on the emulated kernel, launched as a VMM launches one (split irqchip, KVM_TDX_INIT_VM with GPAW 48, a private
/// guest_memfd slot at GPA 0, KVM_TDX_INIT_VCPU, KVM_TDX_INIT_MEM_REGION of identity page tables and the program,
/// KVM_TDX_FINALIZE_VM) and then put in 64-bit mode at <see cref="Code"/> through the emulator's internals — the step
/// a TD's firmware (TDVF) takes, since KVM cannot set a TD's registers. The program talks to the host with TDCALL:
/// <see cref="Report"/> writes a register to <see cref="ReportGpa"/> with TDG.VP.VMCALL&lt;#VE.RequestMMIO&gt;, which
/// reaches the test as an 8-byte KVM_EXIT_MMIO.
/// </summary>
internal sealed class TdGuest : IDisposable
{
    public const ulong Size = 0x1_0000;
    public const ulong Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000, Code = 0x4000;

    /// <summary>GPAW 48: bit 47 is the shared bit (kvm-&gt;arch.gfn_direct_bits).</summary>
    public const ulong SharedBit = 1UL << 47;

    /// <summary>Where <see cref="Report"/> writes (the MMIO exit's address: the shared bit cleared).</summary>
    public const ulong ReportGpa = 0xfeed_0000;

    /// <summary>RCX for TDG.VP.VMCALL: R10–R15 exposed (bits 10–15).</summary>
    public const ulong ExposeR10ToR15 = 0xfc00;

    private readonly EmulatedKernel _kernel;
    private readonly Kvm _kvm;
    private readonly KvmSharp.GuestMemfd _gmem;
    private readonly MemorySlot _slot;

    private TdGuest(EmulatedKernel kernel, Kvm kvm, Vm vm, KvmSharp.GuestMemfd gmem, MemorySlot slot, KvmSharp.Vcpu vcpu)
    {
        _kernel = kernel;
        _kvm = kvm;
        Vm = vm;
        _gmem = gmem;
        _slot = slot;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }

    public KvmSharp.Vcpu Vcpu { get; }

    /// <summary>The emulator's view of the vCPU (for what a TD hides from KVM_GET_REGS).</summary>
    public X86.X86Cpu Cpu => GuestMemoryPath.VmOf(_kernel, Vm.Handle)!.Vcpus[0].Cpu;

    public static TdGuest Create(Action<Assembler> program, Action<Vm>? beforeLaunch = null)
    {
        var k = new EmulatedKernel(EmulatorConfig.X86_64());
        var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        var vm = kvm.CreateVm(VmType.Tdx);
        vm.EnableSplitIrqchip(24);
        beforeLaunch?.Invoke(vm);
        var launch = new TdxLaunch(vm);
        launch.InitVm(launch.GetCapabilities().CpuidWithGpaw(48));
        var gmem = vm.CreateGuestMemfd(Size);
        var slot = vm.AddGuestMemfdSlot(0, 0, Size, gmem);
        vm.SetMemoryAttributes(0, Size, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetCpuid(kvm.GetSupportedCpuid());
        launch.InitVcpu(vcpu);

        // Identity map of the first 2 MiB (one large page), then the program.
        var image = new PinnedArray<byte>((int)(Size - Pml4), 4096);
        var bytes = image.Span;
        BitConverter.TryWriteBytes(bytes[(int)(Pml4 - Pml4)..], Pdpt | 3);
        BitConverter.TryWriteBytes(bytes[(int)(Pdpt - Pml4)..], Pd | 3);
        BitConverter.TryWriteBytes(bytes[(int)(Pd - Pml4)..], 0x83UL); // present, writable, 2 MiB
        var a = new Assembler(64);
        program(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), Code);
        stream.ToArray().CopyTo(bytes[(int)(Code - Pml4)..]);
        launch.InitMemRegion(vcpu, Pml4, (nint)image.Address, (Size - Pml4) / 4096);
        GC.KeepAlive(image);
        launch.FinalizeVm();

        var guest = new TdGuest(k, kvm, vm, gmem, slot, vcpu);
        var cpu = guest.Cpu;
        var sregs = cpu.Sregs;
        LongMode.Apply(ref sregs);
        sregs.cr3 = Pml4;
        cpu.Sregs = sregs;
        cpu.Rip = Code;
        cpu.Rflags = 2;
        cpu.Gpr[X86.X86Cpu.RSP] = Size;
        return guest;
    }

    /// <summary>TDG.VP.VMCALL with R10 = 0 (standard), R11 = <paramref name="subFunction"/>, R12.. from <paramref name="args"/>.</summary>
    public static void Vmcall(Assembler a, ulong subFunction, params ulong[] args)
    {
        a.mov(rcx, ExposeR10ToR15);
        a.xor(r10, r10);
        a.mov(r11, subFunction);
        AssemblerRegister64[] regs = [r12, r13, r14, r15];
        for (int i = 0; i < args.Length; i++) a.mov(regs[i], args[i]);
        a.xor(eax, eax);
        a.tdcall();
    }

    /// <summary>
    /// Reports <paramref name="value"/>: TDG.VP.VMCALL&lt;#VE.RequestMMIO&gt; write of 8 bytes at <see cref="ReportGpa"/> |
    /// <see cref="SharedBit"/>, with RBX, RCX and R10–R15 kept on the stack around it (RAX ends 0).
    /// </summary>
    public static void Report(Assembler a, AssemblerRegister64 value)
    {
        AssemblerRegister64[] saved = [rbx, rcx, r10, r11, r12, r13, r14, r15];
        foreach (var r in saved) a.push(r);
        a.mov(rbx, value == rsp ? rsp : value);
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

    /// <summary>What the TD's own kernel does first: software-enable its (x2APIC-mode) local APIC, SPIV = 0x1ff.</summary>
    public void EnableApic() => Xunit.Assert.Equal(0, X86.MsrRules.Set(Cpu, 0x80f, 0x1ff, hostInitiated: true));

    /// <summary>Runs to the next exit, which must be a <see cref="Report"/>; returns the value.</summary>
    public ulong RunToReport()
    {
        var exit = Vcpu.Run();
        Xunit.Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioIsWrite && exit.MmioAddress == ReportGpa,
            $"expected a report (MMIO write at 0x{ReportGpa:X}), got {exit.ToString()}");
        return BitConverter.ToUInt64(exit.MmioData);
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        _slot.Dispose();
        _gmem.Dispose();
        Vm.Dispose();
        _kvm.Dispose();
        _kernel.Dispose();
    }
}
