// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// Builds a guest from C# with the Iced assembler: code is assembled at <see cref="Layout.ImageBase"/>, exported labels
/// become global STT_FUNC symbols, and the result is packaged as an ELF ET_EXEC (<see cref="ElfWriter"/>) so it goes
/// through the same loader as a compiler's output. No machine code is typed by hand.
/// </summary>
public sealed class GuestProgram
{
    private readonly Dictionary<string, Label> _exports = new(StringComparer.Ordinal);

    /// <summary>The 64-bit Iced assembler the program's code is emitted with.</summary>
    public Assembler Asm { get; } = new(64);

    /// <summary>
    /// Creates a label exported under <paramref name="name"/>. Place it with <see cref="Place"/> (Iced's Label is a
    /// struct: the placed copy is the one that knows its address).
    /// </summary>
    public Label Export(string name)
    {
        Label label = Asm.CreateLabel(name);
        _exports[name] = label;
        return label;
    }

    /// <summary>Places <paramref name="label"/> at the current position (and records it when it is an export).</summary>
    public void Place(ref Label label)
    {
        Asm.Label(ref label);
        if (_exports.ContainsKey(label.Name)) _exports[label.Name] = label;
    }

    /// <summary>
    /// Exports <paramref name="placed"/>, a label already exported and placed, under a second name too (Iced allows one
    /// label per instruction, so two names for one address share it).
    /// </summary>
    public void Alias(string name, Label placed) => _exports[name] = placed;

    /// <summary>OUT of <paramref name="status"/>'s register (EAX) to the exit port.</summary>
    public void ExitWith(AssemblerRegister32 status)
    {
        if (status != eax) Asm.mov(eax, status);
        Asm.mov(dx, Ports.Exit);
        Asm.@out(dx, eax);
        Asm.hlt();
    }

    /// <summary>
    /// A host call (GUEST-ABI.md, "Host calls") to the function whose id is in <paramref name="id"/>, with the SysV
    /// argument registers RDI, RSI, RDX, RCX, R8, R9 as its six arguments. After it RAX = result, RDX = status;
    /// R11 is clobbered, the argument registers (but RDX) are kept.
    /// </summary>
    public void HostCall(AssemblerRegister64 id)
    {
        if (id == rdx || id == r11) throw new ArgumentException("the id may not be in RDX or R11", nameof(id));
        Asm.mov(r11, HostCallBlock.Base);
        Asm.mov(__qword_ptr[r11 + (int)HostCallBlock.Function], id);
        AssemblerRegister64[] args = [rdi, rsi, rdx, rcx, r8, r9];
        for (int i = 0; i < args.Length; i++) Asm.mov(__qword_ptr[r11 + (int)HostCallBlock.Args + (i * sizeof(ulong))], args[i]);
        Asm.mov(dx, Ports.HostCall);
        Asm.@out(dx, al);
        Asm.mov(rax, __qword_ptr[r11 + (int)HostCallBlock.Result]);
        Asm.mov(rdx, __qword_ptr[r11 + (int)HostCallBlock.Status]);
    }

    /// <summary>
    /// Prints RDI bytes from address RSI with one OUT to COM1 each (one VM exit per byte). Clobbers RAX, RCX and RDX.
    /// </summary>
    public void PrintOneOutPerByte()
    {
        Label next = Asm.CreateLabel(), done = Asm.CreateLabel();
        Asm.xor(ecx, ecx);
        Asm.mov(dx, Ports.Com1);
        Asm.Label(ref next);
        Asm.cmp(rcx, rdi);
        Asm.jae(done);
        Asm.mov(al, __byte_ptr[rsi + rcx]);
        Asm.@out(dx, al);
        Asm.inc(rcx);
        Asm.jmp(next);
        Asm.Label(ref done);
    }

    /// <summary>
    /// Prints RCX bytes from address RSI through the console-write port (GUEST-ABI.md, "Printing a buffer in one exit"):
    /// one VM exit. After it RAX = the bytes the host printed (RCX, or 0 when it refused the range); RDX is clobbered.
    /// In a TD micro-VM (features bit 3, <see cref="CallRegion.FeatureConsoleBuffer"/>) the bytes go through the shared
    /// console buffer instead, one exit per <see cref="CallRegion.ConsoleBufferSize"/> bytes, stopping at a refused
    /// chunk; there RCX, RSI, RDI, R8 and R9 are clobbered too.
    /// </summary>
    public void ConsoleWrite()
    {
        Label buffered = Asm.CreateLabel(), done = Asm.CreateLabel();
        Asm.test(__byte_ptr[CallRegion.Address(CallRegion.Features)], (byte)CallRegion.FeatureConsoleBuffer);
        Asm.jnz(buffered);
        Asm.mov(__qword_ptr[CallRegion.Address(CallRegion.ConsolePtr)], rsi);
        Asm.mov(__qword_ptr[CallRegion.Address(CallRegion.ConsoleLen)], rcx);
        Asm.mov(dx, Ports.ConsoleWrite);
        Asm.@out(dx, al);
        Asm.mov(rax, __qword_ptr[CallRegion.Address(CallRegion.ConsoleLen)]);
        Asm.jmp(done);
        Asm.Label(ref buffered);
        ConsoleWriteThroughBuffer();
        Asm.Label(ref done);
    }

    /// <summary>
    /// The TD form of <see cref="ConsoleWrite"/>: chunks of at most <see cref="CallRegion.ConsoleBufferSize"/> bytes,
    /// each copied (REP MOVSB: plain memory, no #VE) into the shared console buffer and printed with one OUT.
    /// </summary>
    private void ConsoleWriteThroughBuffer()
    {
        Label next = Asm.CreateLabel(), finished = Asm.CreateLabel();
        Asm.mov(r8, rcx);                                   // bytes left
        Asm.xor(r9d, r9d);                                  // bytes printed
        Asm.Label(ref next);
        Asm.test(r8, r8);
        Asm.jz(finished);
        Asm.mov(ecx, (uint)CallRegion.ConsoleBufferSize);
        Asm.cmp(r8, rcx);
        Asm.cmovb(rcx, r8);
        Asm.sub(r8, rcx);
        Asm.mov(edi, (uint)CallRegion.ConsoleBuffer);
        Asm.mov(__qword_ptr[CallRegion.Address(CallRegion.ConsolePtr)], rdi);
        Asm.mov(__qword_ptr[CallRegion.Address(CallRegion.ConsoleLen)], rcx);
        Asm.rep.movsb();
        Asm.mov(dx, Ports.ConsoleWrite);
        Asm.@out(dx, al);
        Asm.mov(rax, __qword_ptr[CallRegion.Address(CallRegion.ConsoleLen)]);
        Asm.add(r9, rax);
        Asm.test(rax, rax);
        Asm.jnz(next);
        Asm.Label(ref finished);
        Asm.mov(rax, r9);
    }

    /// <summary>A host call to the fixed id <paramref name="id"/> (clobbers RAX before the call to hold it).</summary>
    public void HostCall(uint id)
    {
        Asm.mov(eax, id);
        HostCall(rax);
    }

    /// <summary>
    /// Exports and places two functions for guests that test MSR behaviour: <c>wrmsr(index, value)</c> → 0 and
    /// <c>rdmsr(index)</c> → the value (a refused MSR ends the call with a #GP <c>exception</c> outcome).
    /// </summary>
    public void AddMsrFunctions()
    {
        Label write = Export("wrmsr"), read = Export("rdmsr");
        Place(ref write);
        Asm.mov(ecx, edi);
        Asm.mov(rax, rsi);
        Asm.mov(rdx, rsi);
        Asm.shr(rdx, 32);
        Asm.wrmsr();
        Asm.xor(eax, eax);
        Asm.ret();
        Place(ref read);
        Asm.mov(ecx, edi);
        Asm.rdmsr();
        Asm.shl(rdx, 32);
        Asm.or(rax, rdx);
        Asm.ret();
    }

    /// <summary>exit(<paramref name="status"/>).</summary>
    public void ExitWith(int status)
    {
        Asm.mov(eax, status);
        ExitWith(eax);
    }

    /// <summary>Assembles, packages as ELF and parses it back into an image.</summary>
    public GuestImage Build(Label entry) => GuestImage.FromElf(BuildElf(entry));

    /// <summary>
    /// Assembles at <see cref="Layout.ImageBase"/> and returns the ELF file's bytes, entered at
    /// <paramref name="entry"/>, with every export as a symbol.
    /// </summary>
    public byte[] BuildElf(Label entry)
    {
        using var stream = new MemoryStream();
        var result = Asm.Assemble(new StreamCodeWriter(stream), Layout.ImageBase, BlockEncoderOptions.ReturnNewInstructionOffsets);
        var functions = _exports.ToDictionary(e => e.Key, e => result.GetLabelRIP(e.Value), StringComparer.Ordinal);
        return ElfWriter.Write(stream.ToArray(), Layout.ImageBase, result.GetLabelRIP(entry), functions);
    }
}
