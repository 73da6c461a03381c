// SPDX-License-Identifier: MIT
// GuestMemfdBasics: the typed SDK end to end: capabilities, a guest_memfd as the guest's whole memory, a tiny guest
// that reads what the host wrote and answers, and what errors look like. See README.md.
using Iced.Intel;
using KvmSharp;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace GuestMemfdBasics;

internal static class Program
{
    // Guest memory: one guest_memfd of 16 pages, bound at guest-physical 0x10000. The guest runs in real mode with
    // every segment based at the slot, so an address in its code is an offset into the file.
    private const ulong MemorySize = 0x1_0000;
    private const ulong GuestPhysicalAddress = 0x1_0000;
    private const ushort HostValueOffset = 0x1000; // the host writes here …
    private const ushort GuestAnswerOffset = 0x1008; // … the guest answers here.
    private const uint HostValue = 41;

    public static int Main(string[] args)
    {
        try
        {
            Run(forceEmulated: args.Contains("--emulated"));
            Console.WriteLine("OK: every expectation held.");
            return 0;
        }
        catch (SampleExpectationException e)
        {
            Console.WriteLine($"FAILED: {e.Message}");
            return 1;
        }
    }

    private static void Run(bool forceEmulated)
    {
        // 1. Pick a kernel. Both sit behind the same syscall boundary (IKernel): everything below is the same code.
        (Kvm kvm, EmulatedKernel? emulator) = OpenKernelWithGuestMemfd(forceEmulated);
        using var emulatorLifetime = emulator;
        using var kvmLifetime = kvm;

        // 2. Ask before using: /dev/kvm answers for the kernel, a VM for its own type (they can differ).
        using Vm vm = kvm.CreateVm();
        Console.WriteLine($"KVM API version {kvm.ApiVersion}; guest_memfd: {kvm.SupportsGuestMemfd}");
        Console.WriteLine($"SupportedGuestMemfdFlags (/dev/kvm): {kvm.SupportedGuestMemfdFlags.ToKernelString()}");
        Console.WriteLine($"SupportedGuestMemfdFlags (VM):       {vm.SupportedGuestMemfdFlags.ToKernelString()}");
        Console.WriteLine($"GuestMemfdUse (VM): {vm.GuestMemfdUse}");
        Expect(vm.GuestMemfdUse == GuestMemfdUse.SoleMemory, "a default VM can use guest_memfd as its whole memory");

        // 3. The guest's memory: mappable (MMAP) and born shared (INIT_SHARED), so the host may write it before boot.
        using GuestMemfd gmem = vm.CreateGuestMemfd(MemorySize, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using GuestMapping memory = gmem.Map();
        Console.WriteLine($"guest_memfd: {gmem.Size / 1024} KiB, flags {gmem.Flags.ToKernelString()}, mapped at 0x{memory.Address:X}");

        // Every access through GuestMapping is checked against the file (size, private pages) before memory is touched.
        memory.Write(0, AssembleGuest());
        memory.Write(HostValueOffset, HostValue);

        // 4. Bind the file as memory slot 0. The SDK maps the file again for the slot's userspace_addr: some hosts
        //    (kvm_pvm among them) only let a vCPU reach guest_memfd that way. The slot owns that second mapping.
        using MemorySlot slot = vm.AddGuestMemfdSlot(slot: 0, GuestPhysicalAddress, MemorySize, gmem);
        Console.WriteLine($"slot {slot.Slot}: gpa 0x{slot.GuestPhysicalAddress:X}, {slot.Size / 1024} KiB of guest_memfd");

        // 5. One vCPU in real mode, every segment based at the slot, starting at its first byte.
        using Vcpu vcpu = vm.CreateVcpu();
        kvm_sregs sregs = vcpu.GetSregs();
        sregs.cs.@base = sregs.ds.@base = GuestPhysicalAddress;
        sregs.cs.selector = sregs.ds.selector = (ushort)(GuestPhysicalAddress >> 4);
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 }); // bit 1 of RFLAGS is always set

        // Run() returns a ref struct over the kvm_run page: read what you need before the next Run().
        KvmExitReason reason = vcpu.Run().Reason;
        Console.WriteLine($"guest exit: {reason}");
        Expect(reason == KvmExitReason.KVM_EXIT_HLT, $"the guest halts after answering (got {reason})");

        uint answer = memory.Read<uint>(GuestAnswerOffset);
        Console.WriteLine($"host wrote {HostValue}, guest answered {answer}");
        Expect(answer == HostValue + 1, $"the guest answers {HostValue + 1}");

        ShowTypedErrors(vm, gmem);
    }

    /// <summary>The guest: reads the host's value, adds one, stores it where the host looks, halts.</summary>
    private static byte[] AssembleGuest()
    {
        var asm = new Assembler(16);
        asm.mov(eax, __dword_ptr[HostValueOffset]);
        asm.inc(eax);
        asm.mov(__dword_ptr[GuestAnswerOffset], eax);
        asm.hlt();
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), 0);
        return stream.ToArray();
    }

    private static void ShowTypedErrors(Vm vm, GuestMemfd gmem)
    {
        ulong page = (ulong)GuestMemfd.PageSize;

        // A kernel error is a KvmException with the errno, its name and the kernel's name for the call: branch on
        // Errno, log the message. Here: a guest_memfd created without MMAP cannot be mapped (the kernel says ENODEV).
        using (GuestMemfd privateOnly = vm.CreateGuestMemfd(page))
        {
            try
            {
                using GuestMapping never = privateOnly.Map();
                Expect(false, "mmap of a guest_memfd without MMAP fails");
            }
            catch (KvmException e)
            {
                Console.WriteLine($"typed error: {e.GetType().Name} operation={e.Operation} errno={e.ErrnoName} ({(int)e.Errno})");
                Console.WriteLine($"  message: {e.Message}");
                Expect(e.Operation == "mmap" && e.Errno == Errno.ENODEV, "mmap without MMAP is refused with ENODEV");
            }
        }

        // A host access the kernel would answer with SIGBUS (beyond the end of the file, or a private page) would kill
        // a .NET process. GuestMapping refuses it first. A mapping may be longer than the file: map one page more
        // and write 8 bytes across the end of the file.
        using GuestMapping wide = gmem.Map(length: gmem.Size + page);
        ulong lastFour = gmem.Size - 4;
        wide.Write(lastFour, 0xAAAA_AAAAu);
        try
        {
            wide.Write(lastFour, 0x1122_3344_5566_7788UL);
            Expect(false, "a write across the end of the file is refused");
        }
        catch (GuestMemoryFaultException e)
        {
            Console.WriteLine($"refused access: {e.Fault} at file offset 0x{e.FileOffset:X} (+{e.Length}), errno={e.ErrnoName}");
        }
        // Refused as a whole, before touching memory: the 4 bytes inside the file are unchanged.
        uint inside = wide.Read<uint>(lastFour);
        Console.WriteLine($"bytes before the end of the file: 0x{inside:X8} (unchanged)");
        Expect(inside == 0xAAAA_AAAA, "a refused access writes nothing");
        Expect(!wide.CanAccess(gmem.Size, 1), "CanAccess asks the same question without throwing");
    }

    /// <summary>
    /// /dev/kvm when its kernel can make guest_memfd a default VM's whole memory (Linux 6.18+ built with
    /// CONFIG_KVM_GUEST_MEMFD); otherwise, or with --emulated, the emulated kernel, configured like this machine but
    /// with guest_memfd.
    /// </summary>
    private static (Kvm Kvm, EmulatedKernel? Emulator) OpenKernelWithGuestMemfd(bool forceEmulated)
    {
        Kvm? real = null;
        string why = forceEmulated ? "--emulated was given" : TryRealKernel(out real);
        if (real is not null) return (real, null);
        var emulator = new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: true));
        Console.WriteLine($"kernel: emulated, because {why}");
        return (Kvm.Open(emulator), emulator);
    }

    /// <summary>Opens /dev/kvm and keeps it when a default VM can live in guest_memfd; else says why not.</summary>
    private static string TryRealKernel(out Kvm? kvm)
    {
        kvm = null;
        Kvm real;
        try
        {
            real = Kvm.Open();
        }
        catch (KvmException e)
        {
            return $"/dev/kvm did not open ({e.ErrnoName})";
        }
        GuestMemfdUse use;
        using (Vm probe = real.CreateVm()) use = probe.GuestMemfdUse;
        if (use == GuestMemfdUse.SoleMemory)
        {
            Console.WriteLine("kernel: linux (/dev/kvm offers guest_memfd with MMAP|INIT_SHARED)");
            kvm = real;
            return "";
        }
        string why = real.SupportsGuestMemfd
            ? $"/dev/kvm's guest_memfd is only '{use}' for a default VM (MMAP|INIT_SHARED came in 6.18)"
            : "/dev/kvm has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0)";
        real.Dispose();
        return why;
    }

    private static void Expect(bool condition, string expectation)
    {
        if (!condition) throw new SampleExpectationException(expectation);
    }
}

/// <summary>A line the sample promises in its README did not hold.</summary>
internal sealed class SampleExpectationException(string expectation) : Exception(expectation);
