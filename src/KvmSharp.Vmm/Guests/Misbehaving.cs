// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// Guests that end badly on purpose, one per outcome, so every way a guest can end is exercised. Each is entered at
/// <c>_start</c>. A guest that raises a CPU exception exports the faulting instruction as <see cref="FaultSymbol"/>
/// (<c>image.Resolve("fault")</c>), so a test knows the RIP to expect.
/// </summary>
public static class Misbehaving
{
    /// <summary>The port <see cref="BadPortImage"/> writes to; no device claims it.</summary>
    public const ushort BadPort = 0x1234;

    /// <summary>The export at the instruction that raises the exception.</summary>
    public const string FaultSymbol = "fault";

    /// <summary>What <see cref="PageFaultImage"/> writes to: canonical, never mapped (the page tables map guest memory only, at most 1 GiB).</summary>
    public const ulong UnmappedAddress = 0xDEAD_0000;

    /// <summary>OUT to a port nobody claims → <see cref="GuestOutcome.UnknownPort"/>.</summary>
    public static GuestImage BadPortImage() => Single(a =>
    {
        a.mov(al, 0x42);
        a.mov(dx, BadPort);
        a.@out(dx, al);
        a.hlt();
    });

    /// <summary>Counts forever in registers, no exits → <see cref="GuestOutcome.Timeout"/>.</summary>
    public static GuestImage EndlessLoopImage() => Single(a =>
    {
        Label self = a.CreateLabel();
        a.xor(ecx, ecx);
        a.Label(ref self);
        a.inc(rcx);
        a.jmp(self);
    });

    /// <summary>Interrupts off and an endless loop: no interrupt could ever stop it → still a timeout.</summary>
    public static GuestImage EndlessLoopNoInterruptsImage() => Single(a =>
    {
        Label self = a.CreateLabel();
        a.cli();
        a.Label(ref self);
        a.pause();
        a.jmp(self);
    });

    /// <summary>
    /// Loads an empty IDT (limit 0) over the VMM's, then UD2: #UD → #GP → #DF, each beyond the limit → triple fault →
    /// <see cref="GuestOutcome.Shutdown"/>, at the UD2.
    /// </summary>
    public static GuestImage TripleFaultImage() => Faulting((p, markFault) =>
    {
        // A 10-byte pseudo-descriptor of zeros on the stack: limit 0, base 0.
        p.Asm.push(0);
        p.Asm.push(0);
        p.Asm.lidt(__[rsp]);
        markFault();
        p.Asm.ud2();
    });

    /// <summary>UD2 → <see cref="GuestOutcome.Exception"/>, #UD (vector 6, no error code) at the UD2.</summary>
    public static GuestImage InvalidOpcodeImage() => Faulting((p, markFault) =>
    {
        markFault();
        p.Asm.ud2();
    });

    /// <summary>1 / 0 → <see cref="GuestOutcome.Exception"/>, #DE (vector 0) at the DIV.</summary>
    public static GuestImage DivideErrorImage() => Faulting((p, markFault) =>
    {
        p.Asm.mov(eax, 1);
        p.Asm.xor(edx, edx);
        p.Asm.xor(ecx, ecx);
        markFault();
        p.Asm.div(ecx);
    });

    /// <summary>
    /// Writes to <see cref="UnmappedAddress"/> → <see cref="GuestOutcome.Exception"/>, #PF (vector 14) with CR2 = that
    /// address and error code 0x2 (write, not present).
    /// </summary>
    public static GuestImage PageFaultImage() => Faulting((p, markFault) =>
    {
        p.Asm.mov(rax, UnmappedAddress);
        markFault();
        p.Asm.mov(__qword_ptr[rax], rax);
    });

    /// <summary>Reads through a non-canonical address → <see cref="GuestOutcome.Exception"/>, #GP (vector 13), error code 0.</summary>
    public static GuestImage GeneralProtectionImage() => Faulting((p, markFault) =>
    {
        p.Asm.mov(rax, 0x8000_0000_0000_0000UL);
        markFault();
        p.Asm.mov(rcx, __qword_ptr[rax]);
    });

    /// <summary>Writes through a null pointer (page 0 is not mapped): #PF, CR2 0, error code 0x2.</summary>
    public static GuestImage NullWriteImage() => Faulting((p, markFault) =>
    {
        p.Asm.xor(eax, eax);
        markFault();
        p.Asm.mov(__qword_ptr[rax], rax);
    });

    /// <summary>
    /// Calls itself until the stack runs into its guard page: #PF at the CALL, CR2 = <see cref="Layout.StackGuard"/> +
    /// 0xFF8, error code 0x2. Reported because the handlers run on their own stack (IST1); with the guest's stack they
    /// would fault again pushing the frame (#DF, then a triple fault).
    /// </summary>
    public static GuestImage StackOverflowImage() => Faulting((p, markFault) =>
    {
        Label fault = markFault();
        p.Asm.call(fault);
    });

    /// <summary>HLT with interrupts off → <see cref="GuestOutcome.Halt"/>.</summary>
    public static GuestImage HaltImage() => Single(a =>
    {
        a.cli();
        a.hlt();
    });

    /// <summary>exit(42).</summary>
    public static GuestImage Exit42Image() => Single(a =>
    {
        a.mov(eax, 42);
        a.mov(dx, Ports.Exit);
        a.@out(dx, eax);
        a.hlt();
    });

    /// <summary>Prints forever → <see cref="GuestOutcome.MaxExits"/> (or Timeout) — output is bounded by the limits.</summary>
    public static GuestImage ChattyImage() => Single(a =>
    {
        Label loop = a.CreateLabel();
        a.mov(dx, Ports.Com1);
        a.mov(al, (byte)'x');
        a.Label(ref loop);
        a.@out(dx, al);
        a.jmp(loop);
    });

    /// <summary>
    /// Edits its own page tables to map guest-virtual 2 MiB onto a guest-physical address with no memory behind it
    /// (1 GiB), then jumps there. KVM can neither run nor emulate an instruction fetch from there →
    /// <see cref="GuestOutcome.InternalError"/> (needs 2 MiB of memory, so that PD entry 1 is free).
    /// </summary>
    public static GuestImage WildJumpImage() => Single(a =>
    {
        a.mov(rax, Layout.MaxMemorySize | PageTables.Present | PageTables.Writable | PageTables.LargePage);
        a.mov(rdi, Layout.Pd + sizeof(ulong));
        a.mov(__qword_ptr[rdi], rax);
        a.mov(rax, Layout.LargePageSize);
        a.invlpg(__[rax]);
        a.jmp(rax);
    });

    /// <summary>
    /// One image, several calls, for the tests that a micro-VM outlives a timeout: <c>spin()</c> loops forever (no
    /// exits), <c>count(n)</c> loops n times in registers and returns n, <c>add(a, b)</c> returns a + b.
    /// </summary>
    public static GuestImage LoopsImage()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), spin = p.Export("spin"), count = p.Export("count"), add = p.Export("add");
        p.Place(ref start);
        p.ExitWith(0);

        p.Place(ref spin);
        a.inc(rcx);
        a.jmp(spin);

        p.Place(ref count);
        Label loop = a.CreateLabel(), done = a.CreateLabel();
        a.mov(rcx, rdi);
        a.test(rcx, rcx);
        a.jz(done);
        a.Label(ref loop);
        a.dec(rcx);
        a.jnz(loop);
        a.Label(ref done);
        a.mov(rax, rdi);
        a.ret();

        p.Place(ref add);
        a.lea(rax, __[rdi + rsi]);
        a.ret();
        return p.Build(start);
    }

    /// <summary>The guest-physical address <see cref="MmioWriteImage"/> and <see cref="MmioReadImage"/> touch: 1 GiB,
    /// past any guest memory a micro-VM can have.</summary>
    public const ulong UnbackedAddress = Layout.MaxMemorySize;

    /// <summary>
    /// Maps guest-virtual 2 MiB onto <see cref="UnbackedAddress"/> (no memory slot there) and writes 0x11223344 to it:
    /// a data access to no memory is MMIO → <see cref="GuestOutcome.UnhandledMmio"/> (a write).
    /// </summary>
    public static GuestImage MmioWriteImage() => MapUnbacked(a =>
    {
        a.mov(ecx, 0x11223344);
        a.mov(__dword_ptr[rax + 0x10], ecx);
        a.hlt();
    });

    /// <summary>As <see cref="MmioWriteImage"/>, but a 4-byte read.</summary>
    public static GuestImage MmioReadImage() => MapUnbacked(a =>
    {
        a.mov(ecx, __dword_ptr[rax + 0x10]);
        a.hlt();
    });

    private static GuestImage MapUnbacked(Action<Assembler> access) => Single(a =>
    {
        a.mov(rax, UnbackedAddress | PageTables.Present | PageTables.Writable | PageTables.LargePage);
        a.mov(rdi, Layout.Pd + sizeof(ulong));
        a.mov(__qword_ptr[rdi], rax);
        a.mov(rax, Layout.LargePageSize);
        a.invlpg(__[rax]);
        access(a);
    });

    /// <summary>
    /// A guest whose body calls <c>markFault()</c> just before the instruction that raises the exception, which exports
    /// <see cref="FaultSymbol"/> there (and returns its label); HLT after the body.
    /// </summary>
    private static GuestImage Faulting(Action<GuestProgram, Func<Label>> body)
    {
        var p = new GuestProgram();
        Label start = p.Export("_start");
        p.Place(ref start);
        int entry = p.Asm.Instructions.Count;
        body(p, () =>
        {
            // Iced allows one label per instruction: a fault at the entry point shares _start's.
            if (p.Asm.Instructions.Count == entry)
            {
                p.Alias(FaultSymbol, start);
                return start;
            }
            Label fault = p.Export(FaultSymbol);
            p.Place(ref fault);
            return fault;
        });
        p.Asm.hlt();
        return p.Build(start);
    }

    private static GuestImage Single(Action<Assembler> body)
    {
        var p = new GuestProgram();
        Label start = p.Export("_start");
        p.Place(ref start);
        body(p.Asm);
        return p.Build(start);
    }
}
