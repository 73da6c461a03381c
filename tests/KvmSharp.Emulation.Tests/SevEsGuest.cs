// SPDX-License-Identifier: MIT
using System.Diagnostics;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Memory;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// An SEV-ES or SNP guest launched on the emulator the way a VMM does (SEV-ES: KVM_SEV_INIT2, LAUNCH_START with the
/// ES policy bit, LAUNCH_UPDATE_VMSA, LAUNCH_FINISH; SNP: INIT2, SNP_LAUNCH_START, SNP_LAUNCH_UPDATE of the private
/// image, SNP_LAUNCH_FINISH), in 64-bit long mode with a GDT, an IDT whose vector 29 (#VC) goes to
/// <see cref="VcHandler"/>, and a stack. GPA layout: GDT 0x1000, PML4 0x2000, PDPT 0x3000, PD 0x4000, program
/// <see cref="Code"/>, #VC handler <see cref="VcHandler"/>, IDT 0x7000, stack page 0x8000 (private, RSP = 0x9000),
/// <see cref="Ghcb"/> and <see cref="Report"/> (shared). Linear = GPA through a 2 MiB PTE with the C-bit; the same
/// 2 MiB again at <see cref="SharedAlias"/> without it (how a guest maps its GHCB); <see cref="MmioLinear"/> maps
/// <see cref="MmioGpa"/>, which no memslot backs, without the C-bit.
/// </summary>
internal sealed class SevEsGuest : IDisposable
{
    public const ulong Size = 0x1_0000;
    public const ulong Code = 0x5000, VcHandler = 0x6000, Idt = 0x7000, StackTop = 0x9000, Ghcb = 0x9000, Report = 0xA000;
    public const ulong SharedAlias = 0x20_0000, MmioLinear = 0x40_0000, MmioGpa = 0x1000_0000;

    /// <summary>Where the APs (vCPU IDs 1 and up) start (in the code page after the program), with RSP = <see cref="ApStackTop"/>.</summary>
    public const ulong ApCode = 0x5800, ApStackTop = 0x8800;
    public const ulong CBit = 1UL << GuestPhysicalMemory.CbitPosition;

    /// <summary>struct ghcb offsets of the request fields (arch/x86/include/asm/svm.h).</summary>
    public const int GhcbSwExitCode = 0x390, GhcbSwExitInfo1 = 0x398, GhcbSwExitInfo2 = 0x3a0, GhcbValidBitmap = 0x3f0;

    private readonly List<IDisposable> _owned = [];

    private SevEsGuest(EmulatedKernel kernel) => Kernel = kernel;

    public EmulatedKernel Kernel { get; }

    public Kvm Kvm { get; private set; } = null!;

    public Vm Vm { get; private set; } = null!;

    public KvmSharp.Vcpu Vcpu { get; private set; } = null!;

    /// <summary>Every vCPU, by ID (<see cref="Vcpu"/> is the first).</summary>
    public List<KvmSharp.Vcpu> Vcpus { get; } = [];

    /// <summary>An SNP guest's guest_memfd (its private memory, GPA 0 .. <see cref="Size"/>); null for SEV and SEV-ES.</summary>
    public KvmSharp.GuestMemfd? Gmem { get; private set; }

    /// <summary>The host view of GPA 0 .. <see cref="Size"/> for shared pages (and every page of an SEV-ES guest).</summary>
    public AnonymousMemory Memory { get; private set; } = null!;

    /// <summary>The CPUID table the vCPU gets (leaf 0 and 0x8000001F with the C-bit position).</summary>
    public static IReadOnlyList<CpuidEntry> CpuidTable { get; } =
    [
        new CpuidEntry(0, 0, 0, 0xd, 0x6874_7541, 0x444d_4163, 0x6974_6e65),
        new CpuidEntry(0x8000_0000, 0, 0, 0x8000_001f, 0, 0, 0),
        new CpuidEntry(0x8000_001f, 0, 0, 0xa, 0x33 | (1 << 6), 0, 0),
    ];

    /// <summary>
    /// Launches a guest of <paramref name="type"/> (<see cref="VmType.SevEs"/>, <see cref="VmType.Snp"/>, or
    /// <see cref="VmType.Sev"/>: no protected state) running <paramref name="program"/> at <see cref="Code"/>, with
    /// <paramref name="vcHandler"/> (default: <see cref="RecordAndTerminate"/>) at <see cref="VcHandler"/>.
    /// </summary>
    /// <remarks>
    /// <paramref name="vcpus"/> vCPUs are created (after KVM_CREATE_IRQCHIP when <paramref name="irqchip"/>); the APs
    /// run <paramref name="apProgram"/> at <see cref="ApCode"/>. <paramref name="patchImage"/> may change the private
    /// image (GPA 0 .. <see cref="Ghcb"/>) before it is launched. <paramref name="snpFinish"/> replaces an SNP guest's
    /// plain SNP_LAUNCH_FINISH (e.g. to add pages first or give host data); <paramref name="snpInit"/> replaces its
    /// plain KVM_SEV_INIT2 (e.g. Secure TSC). <paramref name="config"/>: the emulated
    /// kernel (default <c>EmulatorConfig.X86_64()</c>).
    /// </remarks>
    public static SevEsGuest Create(VmType type, Action<Assembler> program, Action<Assembler>? vcHandler = null, ushort ghcbVersion = 0,
        int vcpus = 1, bool irqchip = false, Action<Assembler>? apProgram = null, Action<byte[]>? patchImage = null,
        Action<SnpLaunch>? snpFinish = null, EmulatorConfig? config = null, Action<SnpLaunch>? snpInit = null)
    {
        var g = new SevEsGuest(new EmulatedKernel(config ?? EmulatorConfig.X86_64()));
        try
        {
            g.Launch(type, program, vcHandler ?? RecordAndTerminate, ghcbVersion, vcpus, irqchip, apProgram, patchImage, snpFinish, snpInit);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    private void Launch(VmType type, Action<Assembler> program, Action<Assembler> vcHandler, ushort ghcbVersion,
        int vcpus, bool irqchip, Action<Assembler>? apProgram, Action<byte[]>? patchImage, Action<SnpLaunch>? snpFinish,
        Action<SnpLaunch>? snpInit)
    {
        Kvm = Own(Kvm.Open(Kernel, proposals: Kernel.Config.Proposals));
        Vm = Own(Kvm.CreateVm(type));
        Memory = Own(Vm.AllocateMemory(Size));
        bool snp = type == VmType.Snp;
        SnpLaunch? snpLaunch = null;
        SevLaunch? sevLaunch = null;
        if (snp)
        {
            snpLaunch = Own(SnpLaunch.Open(Vm));
            if (snpInit is null) snpLaunch.Init(ghcbVersion: ghcbVersion);
            else snpInit(snpLaunch);
            var gmem = Own(Vm.CreateGuestMemfd(Size));
            Gmem = gmem;
            Own(Vm.AddPrivateMemorySlot(0, 0, Size, Memory, gmem));
        }
        else
        {
            sevLaunch = Own(SevLaunch.Open(Vm));
            sevLaunch.Init(ghcbVersion: ghcbVersion);
            Own(Vm.AddMemorySlot(0, 0, Memory));
        }
        if (irqchip) Vm.CreateIrqchip();
        for (int id = 0; id < vcpus; id++)
        {
            var vcpu = Own(Vm.CreateVcpu(id));
            vcpu.SetCpuid(CpuidTable);
            Vcpus.Add(vcpu);
        }
        Vcpu = Vcpus[0];
        // KVM_SET_LAPIC recalculates the APIC map (kvm_apic_set_state → kvm_recalculate_apic_map): the last vCPU
        // created is not in it before, so an MSI to its APIC ID would reach no one (as a VMM does at setup).
        if (irqchip)
            foreach (var vcpu in Vcpus) vcpu.SetLapic(vcpu.GetLapic());

        var image = new byte[Size];
        void Entry(ulong at, ulong value) => BitConverter.TryWriteBytes(image.AsSpan((int)at, 8), value);
        var gdt = Gdt.Entries;
        for (int i = 0; i < gdt.Length; i++) Entry(0x1000 + (ulong)i * 8, gdt[i]);
        Entry(0x2000, 0x3000 | CBit | 3);
        Entry(0x3000, 0x4000 | CBit | 3);
        Entry(0x4000, 0x0 | CBit | 0x83);
        Entry(0x4000 + 8, 0x0 | 0x83);
        Entry(0x4000 + 16, MmioGpa | 0x83);
        Assemble(program, Code).CopyTo(image, (int)Code);
        Assemble(vcHandler, VcHandler).CopyTo(image, (int)VcHandler);
        if (apProgram is not null) Assemble(apProgram, ApCode).CopyTo(image, (int)ApCode);
        // Vector 29: a 64-bit interrupt gate to the handler.
        Entry(Idt + 29 * 16, (VcHandler & 0xffff) | ((ulong)Gdt.CodeSelector << 16) | (0xEUL << 40) | (1UL << 47) | (((VcHandler >> 16) & 0xffff) << 48));

        foreach (var vcpu in Vcpus)
        {
            var sregs = vcpu.GetSregs();
            LongMode.Apply(ref sregs);
            sregs.cr3 = 0x2000;
            sregs.idt.@base = Idt;
            sregs.idt.limit = 32 * 16 - 1;
            vcpu.SetSregs(sregs);
            var regs = vcpu.GetRegs();
            regs.rip = vcpu == Vcpu ? Code : ApCode;
            regs.rsp = vcpu == Vcpu ? StackTop : ApStackTop;
            regs.rflags = 2;
            vcpu.SetRegs(regs);
        }
        patchImage?.Invoke(image);

        if (snp)
        {
            var pinned = new PinnedArray<byte>((int)Size, 0x1000);
            image.CopyTo(pinned.Span);
            Vm.SetMemoryAttributes(0, Size, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            snpLaunch!.Start();
            snpLaunch.Update(1, (nint)(pinned.Address + 0x1000), Ghcb - 0x1000);
            GC.KeepAlive(pinned);
            if (snpFinish is null) snpLaunch.Finish();
            else snpFinish(snpLaunch);
            Vm.SetMemoryAttributes(Ghcb, Size - Ghcb, 0);
        }
        else
        {
            Memory.Write(0, image);
            sevLaunch!.Start(type == VmType.SevEs ? 0x4u : 0u);
            if (type == VmType.SevEs) sevLaunch.UpdateVmsa();
            sevLaunch.Measure(); // LAUNCH_MEASURE: the firmware goes to LSECRET, which LAUNCH_FINISH needs
            sevLaunch.Finish();
        }
    }

    /// <summary>The #VC handler most tests use: stores the error code and the faulting RIP at <see cref="Report"/>
    /// (through the shared alias), then asks for termination with the GHCB MSR protocol (reason set 1, code 0x29).</summary>
    public static void RecordAndTerminate(Assembler a)
    {
        a.mov(rax, __qword_ptr[rsp]);
        a.mov(rbx, (long)(SharedAlias + Report));
        a.mov(__qword_ptr[rbx], rax);
        a.mov(rax, __qword_ptr[rsp + 8]);
        a.mov(__qword_ptr[rbx + 8], rax);
        Terminate(a, 0x29);
    }

    /// <summary>WRMSR GHCB MSR = GHCB_MSR_TERM_REQ | reason set 1 | <paramref name="code"/>; VMGEXIT; HLT.</summary>
    public static void Terminate(Assembler a, byte code)
    {
        a.mov(ecx, 0xC001_0130);
        a.mov(eax, 0x100 | (1 << 12) | (code << 16));
        a.xor(edx, edx);
        a.wrmsr();
        Vmgexit(a);
        a.hlt();
    }

    /// <summary>VMGEXIT (F3 0F 01 D9; "rep vmmcall").</summary>
    public static void Vmgexit(Assembler a) => a.db(0xF3, 0x0F, 0x01, 0xD9);

    /// <summary>GHCB MSR = <paramref name="value"/> (ECX/EAX/EDX clobbered).</summary>
    public static void WriteGhcbMsr(Assembler a, ulong value)
    {
        a.mov(ecx, 0xC001_0130);
        a.mov(eax, (uint)value);
        a.mov(edx, (uint)(value >> 32));
        a.wrmsr();
    }

    /// <summary>RDMSR GHCB MSR into RAX (64 bits; RCX/RDX clobbered).</summary>
    public static void ReadGhcbMsr(Assembler a)
    {
        a.mov(ecx, 0xC001_0130);
        a.rdmsr();
        a.shl(rdx, 32);
        a.or(rax, rdx);
    }

    /// <summary>Stores qword <paramref name="value"/> at GHCB byte <paramref name="offset"/> through the shared alias (RAX, RBX clobbered).</summary>
    public static void SetGhcb(Assembler a, int offset, ulong value)
    {
        a.mov(rbx, (long)(SharedAlias + Ghcb));
        a.mov(rax, value);
        a.mov(__qword_ptr[rbx + offset], rax);
    }

    /// <summary>The GHCB valid bitmap (byte 0x3f0): exactly the bits of <paramref name="offsets"/> (each offset / 8).</summary>
    public static void SetGhcbValid(Assembler a, params int[] offsets)
    {
        ulong lo = 0, hi = 0;
        foreach (int o in offsets)
        {
            int bit = o / 8;
            if (bit < 64) lo |= 1UL << bit;
            else hi |= 1UL << (bit - 64);
        }
        SetGhcb(a, GhcbValidBitmap, lo);
        SetGhcb(a, GhcbValidBitmap + 8, hi);
    }

    /// <summary>
    /// A GHCB page-protocol request (arch/x86/kvm/svm/sev.c sev_handle_vmgexit): sw_exit_code and sw_exit_info_1/2 with
    /// their valid bits (plus <paramref name="validLow"/>, the bitmap's first qword, for fields the caller stored),
    /// GHCB MSR = the GHCB's GPA, VMGEXIT. RAX, RBX, RCX, RDX clobbered.
    /// </summary>
    public static void GhcbRequest(Assembler a, ulong exitCode, ulong info1, ulong info2, ulong validLow = 0)
    {
        SetGhcb(a, GhcbSwExitCode, exitCode);
        SetGhcb(a, GhcbSwExitInfo1, info1);
        SetGhcb(a, GhcbSwExitInfo2, info2);
        // sw_exit_code and sw_exit_info_1/2 are valid bits 114..116 (offset / 8): the bitmap's second qword.
        SetGhcb(a, GhcbValidBitmap, validLow);
        SetGhcb(a, GhcbValidBitmap + 8, (1UL << (GhcbSwExitCode / 8 - 64)) | (1UL << (GhcbSwExitInfo1 / 8 - 64)) | (1UL << (GhcbSwExitInfo2 / 8 - 64)));
        WriteGhcbMsr(a, Ghcb);
        Vmgexit(a);
    }

    /// <summary>
    /// Runs <paramref name="vcpu"/> on a thread, kicked every 20 ms until KVM_RUN returns EINTR, for as long as its
    /// mp_state stays RUNNABLE (a kick that came before the vCPU reached its wait leaves it RUNNABLE: it runs on);
    /// fails with <paramref name="neverLeft"/> after two minutes. Returns the mp_state it left RUNNABLE for.
    /// </summary>
    public static uint RunKickedWhileRunnable(KvmSharp.Vcpu vcpu, string neverLeft)
    {
        var clock = Stopwatch.StartNew();
        uint state;
        while ((state = vcpu.GetMpState()) == KvmMpState.KVM_MP_STATE_RUNNABLE)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), neverLeft);
            vcpu.ImmediateExit = false;
            bool interrupted = false;
            Exception? failure = null;
            var runner = new Thread(() =>
            {
                try { interrupted = vcpu.RunBounded().Interrupted; }
                catch (Exception e) { failure = e; }
            });
            runner.Start();
            while (!runner.Join(20)) vcpu.Kick();
            Assert.Null(failure);
            Assert.True(interrupted);
        }
        return state;
    }

    /// <summary>The shared report page's qword <paramref name="index"/>.</summary>
    public ulong ReportQword(int index) => Memory.Read<ulong>(Report + (ulong)index * 8);

    /// <summary>The GHCB's qword at byte <paramref name="offset"/>.</summary>
    public ulong GhcbQword(int offset) => Memory.Read<ulong>(Ghcb + (ulong)offset);

    /// <summary>The GHCB's valid bitmap bit for the field at byte <paramref name="offset"/>.</summary>
    public bool GhcbValid(int offset) => (Memory.Read<byte>(Ghcb + 0x3f0 + (ulong)(offset / 64)) & (1 << (offset / 8 % 8))) != 0;

    private static byte[] Assemble(Action<Assembler> program, ulong at)
    {
        var asm = new Assembler(64);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), at);
        return stream.ToArray();
    }

    private T Own<T>(T resource) where T : IDisposable
    {
        _owned.Add(resource);
        return resource;
    }

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        Kernel.Dispose();
    }
}
