// SPDX-License-Identifier: MIT
// ConversionFlowOnEmulator: testing a confidential-computing memory flow without CoCo hardware or an unmerged kernel.
// The emulated kernel plays the "guest_memfd: In-place conversion support" v8 series on x86_64. See README.md.
using Iced.Intel;
using KvmSharp;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace ConversionFlowOnEmulator;

internal static class Program
{
    // One guest_memfd of 16 pages at guest-physical 0x10000: page 0 code, page 1 the secret, page 2 the guest's answer.
    private const ulong MemorySize = 0x1_0000;
    private const ulong GuestPhysicalAddress = 0x1_0000;
    private const ushort SecretOffset = 0x1000;
    private const ushort AnswerOffset = 0x2000;
    private const ulong Secret = 0x5EC2_E7C0_FFEE_0001;

    // KVM_SET_MEMORY_ATTRIBUTES2 takes raw attribute bits: PRIVATE, or 0 for shared.

    private static readonly ulong Page = (ulong)GuestMemfd.PageSize;

    public static int Main()
    {
        try
        {
            Run();
            Console.WriteLine("OK: every expectation held.");
            return 0;
        }
        catch (SampleExpectationException e)
        {
            Console.WriteLine($"FAILED: {e.Message}");
            return 1;
        }
    }

    private static void Run()
    {
        // The emulated kernel: x86_64 with every VM type, plus the v8 in-place conversion series
        // (kvm.gmem_in_place_conversion=1). Kvm.Open needs the proposal numbers this configuration answers to.
        EmulatorConfig config = EmulatorConfig.X86_64(inPlaceConversion: true);
        using var kernel = new EmulatedKernel(config);
        using Kvm kvm = Kvm.Open(kernel, proposals: config.Proposals);

        Console.WriteLine("== What this kernel offers (the questions `kvmsharp caps` asks)");
        ShowCapabilities(kvm);

        Console.WriteLine();
        Console.WriteLine("== Private/shared conversion on a KVM_X86_SW_PROTECTED_VM");
        ConvertInPlace(kvm);

        Console.WriteLine();
        Console.WriteLine("== KVM_EXIT_MEMORY_FAULT: a guest access that disagrees with the attributes");
        ResolveMemoryFaults(kvm);

        Console.WriteLine();
        Console.WriteLine("== The fallback path: the same VMM on a 6.12 host");
        FallbackOnLinux612();
    }

    private static void ShowCapabilities(Kvm kvm)
    {
        Console.WriteLine($"VM types: {string.Join(", ", kvm.SupportedVmTypes)}");
        Console.WriteLine($"guest_memfd flags (/dev/kvm): {kvm.SupportedGuestMemfdFlags.ToKernelString()}");
        // Answers differ per VM type (a VM whose private memory the host must not see refuses INIT_SHARED), so a VMM
        // asks a VM of the type it will run.
        foreach (VmType type in new[] { VmType.Default, VmType.SwProtected })
        {
            using Vm vm = kvm.CreateVm(type);
            MemoryAttributes gmemAttributes = vm.SupportedGuestMemfdMemoryAttributes;
            Console.WriteLine($"  {type,-11} GuestMemfdUse={vm.GuestMemfdUse}, flags={vm.SupportedGuestMemfdFlags.ToKernelString()}, " +
                $"gmem attributes=0x{(ulong)gmemAttributes:X}, VM attributes=0x{(ulong)vm.SupportedMemoryAttributes:X}");
            if (type == VmType.SwProtected)
            {
                Expect(gmemAttributes.HasFlag(MemoryAttributes.Private), "a SW_PROTECTED VM converts through its guest_memfd (KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES has PRIVATE)");
                Expect(vm.SupportedGuestMemfdFlags.HasFlag(GuestMemfdFlags.Mmap), "a SW_PROTECTED VM's guest_memfd can be mapped");
            }
        }
    }

    private static void ConvertInPlace(Kvm kvm)
    {
        using Vm vm = kvm.CreateVm(VmType.SwProtected);
        // MMAP: the host maps the same file the guest runs from; INIT_SHARED: every page starts shared, so the
        // host can load the guest and its secret before anything is private.
        using GuestMemfd gmem = vm.CreateGuestMemfd(MemorySize, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using GuestMapping memory = gmem.Map();
        memory.Write(0, Assemble16(a =>
        {
            // answer = secret + 1, then halt.
            a.mov(eax, __dword_ptr[SecretOffset]);
            a.mov(edx, __dword_ptr[SecretOffset + 4]);
            a.add(eax, 1);
            a.adc(edx, 0);
            a.mov(__dword_ptr[AnswerOffset], eax);
            a.mov(__dword_ptr[AnswerOffset + 4], edx);
            a.hlt();
        }));
        memory.Write(SecretOffset, Secret);
        using MemorySlot slot = vm.AddGuestMemfdSlot(0, GuestPhysicalAddress, MemorySize, gmem);

        // Shared → private with KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd (offsets are file offsets, not GPAs).
        gmem.MakePrivate(SecretOffset, Page);
        Console.WriteLine($"page at file offset 0x{SecretOffset:X} is private: IsShared={gmem.IsShared(SecretOffset, Page)}");

        // The host may no longer touch it. The kernel would answer a load with SIGBUS, which a .NET process cannot
        // survive; GuestMapping refuses first with a typed exception.
        try
        {
            _ = memory.Read<ulong>(SecretOffset);
            Expect(false, "a host read of a private page is refused");
        }
        catch (GuestMemoryFaultException e)
        {
            Console.WriteLine($"host read refused: {e.Fault} at file offset 0x{e.FileOffset:X}, errno={e.ErrnoName}");
            Expect(e.Fault == GuestMemoryFault.PrivatePage, "the refusal names the private page");
        }

        // The guest reads it: on SW_PROTECTED, KVM takes each access's privacy from the attributes, and the
        // private page is served from the guest_memfd.
        using Vcpu vcpu = CreateRealModeVcpu(vm);
        KvmExitReason reason = vcpu.Run().Reason;
        ulong answer = memory.Read<ulong>(AnswerOffset);
        Console.WriteLine($"guest exit: {reason}; guest read the private secret and answered 0x{answer:X}");
        Expect(reason == KvmExitReason.KVM_EXIT_HLT && answer == Secret + 1, "the guest reads the private page");

        // Private → shared: the contents are still there (in-place conversion keeps the page).
        gmem.MakeShared(SecretOffset, Page);
        ulong back = memory.Read<ulong>(SecretOffset);
        Console.WriteLine($"converted back to shared: host reads 0x{back:X} (contents preserved)");
        Expect(back == Secret, "conversion keeps the contents");
    }

    private static void ResolveMemoryFaults(Kvm kvm)
    {
        // On SW_PROTECTED an access is private exactly when the page is, so it cannot disagree. An SNP (or TDX) guest
        // chooses per access (SNP: the C-bit of the guest's page-table entry; TDX: the GPA's shared bit), and every
        // access with paging off is private, as here. When the choice disagrees with the page's attributes, KVM_RUN
        // stops with KVM_EXIT_MEMORY_FAULT and the VMM converts the page the way the guest asked (QEMU's
        // kvm_convert_memory), then enters again. An SNP guest must also validate a page (PVALIDATE, the RMP's
        // validated bit) before its first private access, so it validates what it is about to use: its PVALIDATE of a
        // shared page is the private access that faults. The code page is launched (SNP_LAUNCH_UPDATE: private and
        // validated). The page layout starts at GPA 0 here because a real-mode PVALIDATE takes its address in AX.
        const ulong Base = 0;
        using Vm vm = kvm.CreateVm(VmType.Snp);
        using SnpLaunch launch = SnpLaunch.Open(vm);
        launch.Init(); // KVM_SEV_INIT2, before any vCPU: without it KVM_RUN is EINVAL (svm_vcpu_pre_run)
        using GuestMemfd gmem = vm.CreateGuestMemfd(MemorySize, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using (GuestMapping loader = gmem.Map()) loader.Write(SecretOffset, (byte)0x2A);
        using MemorySlot slot = vm.AddGuestMemfdSlot(0, Base, MemorySize, gmem);
        using Vcpu vcpu = CreateRealModeVcpu(vm, Base);

        var code = new PinnedArray<byte>((int)Page, (int)Page);
        Assemble16(a =>
        {
            a.mov(ax, SecretOffset);
            a.xor(ecx, ecx);   // 4 KiB page
            a.mov(edx, 1);     // validate
            a.pvalidate();
            a.mov(al, __byte_ptr[SecretOffset]);
            a.hlt();
        }).CopyTo(code.Span);
        gmem.MakePrivate(0, Page); // SNP_LAUNCH_UPDATE takes private GFNs only
        launch.Start();
        launch.Update(Base / Page, (nint)code.Address, Page);
        GC.KeepAlive(code);
        launch.Finish(); // the vCPU's state is now protected: its registers are the guest's

        int faults = 0;
        while (true)
        {
            VcpuExit exit = vcpu.Run();
            if (exit.Reason != KvmExitReason.KVM_EXIT_MEMORY_FAULT)
            {
                Expect(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"the guest halts after the fault (got {exit.ToString()})");
                break;
            }
            bool wantsPrivate = exit.MemoryFaultIsPrivate;
            Console.WriteLine($"KVM_EXIT_MEMORY_FAULT gpa=0x{exit.MemoryFaultGpa:X} size=0x{exit.MemoryFaultSize:X} " +
                $"flags=0x{exit.MemoryFaultFlags:X} ({(wantsPrivate ? "private" : "shared")} access)");
            Expect(++faults <= 1, "one fault: the secret page the guest validates");
            // The slot maps GPAs to file offsets; this slot starts at file offset 0.
            ulong fileOffset = slot.MemfdOffsetOf(exit.MemoryFaultGpa);
            if (wantsPrivate) gmem.MakePrivate(fileOffset, exit.MemoryFaultSize);
            else gmem.MakeShared(fileOffset, exit.MemoryFaultSize);
        }
        Console.WriteLine($"after {faults} conversion the guest validated the page, read it and halted");
        Expect(faults == 1, "one memory fault (the secret page, converted to private), then HLT");
    }

    private static void FallbackOnLinux612()
    {
        // 6.11–6.15 (6.12 LTS) as a distro ships it: guest_memfd exists, but without flags, only for VM types with
        // private memory, and only as the private half of a slot whose shared half is ordinary host memory.
        EmulatorConfig config = EmulatorConfig.X86_64(KernelGeneration.Linux611);
        using var kernel = new EmulatedKernel(config);
        using Kvm kvm = Kvm.Open(kernel, proposals: config.Proposals);
        using Vm plain = kvm.CreateVm();
        using Vm vm = kvm.CreateVm(VmType.SwProtected);
        Console.WriteLine($"GuestMemfdUse: default VM {plain.GuestMemfdUse}, SW_PROTECTED {vm.GuestMemfdUse}; " +
            $"flags {kvm.SupportedGuestMemfdFlags.ToKernelString()}");
        Expect(plain.GuestMemfdUse == GuestMemfdUse.None && vm.GuestMemfdUse == GuestMemfdUse.PrivateBacking,
            "on 6.12 a default VM has no guest_memfd and a SW_PROTECTED VM has it for private memory only");

        // Asking for MMAP anyway is a typed error that says what the VM supports.
        try
        {
            using GuestMemfd never = vm.CreateGuestMemfd(MemorySize, GuestMemfdFlags.Mmap);
            Expect(false, "MMAP is refused before 6.18");
        }
        catch (KvmException e)
        {
            Console.WriteLine($"MMAP refused: {e.Operation} {e.ErrnoName}");
            Expect(e.Errno == Errno.EINVAL, "MMAP is refused with EINVAL");
        }

        // The fallback: host memory for shared pages, an unmappable guest_memfd for private ones, and the per-VM
        // attributes (KVM_SET_MEMORY_ATTRIBUTES, by GPA) choosing between them.
        using AnonymousMemory shared = vm.AllocateMemory(MemorySize);
        using GuestMemfd privateMemory = vm.CreateGuestMemfd(MemorySize);
        using MemorySlot slot = vm.AddPrivateMemorySlot(0, GuestPhysicalAddress, MemorySize, shared, privateMemory);
        vm.SetMemoryAttributes(GuestPhysicalAddress + SecretOffset, Page, (ulong)MemoryAttributes.Private);
        Console.WriteLine($"private-capable slot: shared half in host memory, private half in guest_memfd; page 0x{GuestPhysicalAddress + SecretOffset:X} private");
    }

    private static Vcpu CreateRealModeVcpu(Vm vm, ulong segmentBase = GuestPhysicalAddress)
    {
        Vcpu vcpu = vm.CreateVcpu();
        kvm_sregs sregs = vcpu.GetSregs();
        sregs.cs.@base = sregs.ds.@base = segmentBase;
        sregs.cs.selector = sregs.ds.selector = (ushort)(segmentBase >> 4);
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
        return vcpu;
    }

    private static byte[] Assemble16(Action<Assembler> program)
    {
        var asm = new Assembler(16);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), 0);
        return stream.ToArray();
    }

    private static void Expect(bool condition, string expectation)
    {
        if (!condition) throw new SampleExpectationException(expectation);
    }
}

/// <summary>A line the sample promises in its README did not hold.</summary>
internal sealed class SampleExpectationException(string expectation) : Exception(expectation);
