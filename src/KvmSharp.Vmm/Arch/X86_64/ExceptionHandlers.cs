// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.GuestAbi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The code at <see cref="Layout.ExceptionHandlers"/> that the IDT's gates lead to. Stub <i>n</i> makes every frame
/// look alike — it pushes a 0 error code where the CPU pushes none (<see cref="Idt.HasErrorCode"/>), then the vector —
/// and jumps to the common handler, which copies vector, error code, RIP, CS, RFLAGS, RSP and SS from the frame and CR2
/// into the <see cref="ExceptionBlock"/>, OUTs to <see cref="Ports.Exception"/> and halts. The host ends the call at the
/// OUT; the guest is never resumed, so the handler may clobber RAX, RDX and RDI and never returns (no IRETQ).
/// </summary>
public static class ExceptionHandlers
{
    private static readonly (byte[] Code, ulong[] Stubs) Assembled = Assemble();

    /// <summary>
    /// The assembled stubs and common handler, as placed at <see cref="Layout.ExceptionHandlers"/> (at most one page).
    /// </summary>
    public static ReadOnlySpan<byte> Bytes => Assembled.Code;

    /// <summary>The guest address of vector <paramref name="vector"/>'s stub (what its gate points at).</summary>
    public static ulong Stub(int vector) => Assembled.Stubs[vector];

    /// <summary>
    /// Copies <see cref="Bytes"/> to <see cref="Layout.ExceptionHandlers"/> in <paramref name="memory"/>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        memory.Write(Layout.ExceptionHandlers, Assembled.Code);
    }

    private static (byte[], ulong[]) Assemble()
    {
        var a = new Assembler(64);
        Label common = a.CreateLabel("common");
        var stubs = new Label[Idt.Vectors];
        for (int vector = 0; vector < Idt.Vectors; vector++)
        {
            stubs[vector] = a.CreateLabel();
            a.Label(ref stubs[vector]);
            if (!Idt.HasErrorCode(vector)) a.push(0);
            a.push(vector);
            a.jmp(common);
        }

        // The stack now holds, from RSP up: vector, error code, RIP, CS, RFLAGS, RSP, SS (SDM Vol. 3A 6.14.2).
        a.Label(ref common);
        a.mov(rdi, ExceptionBlock.Base);
        ulong[] fields = [ExceptionBlock.Vector, ExceptionBlock.ErrorCode, ExceptionBlock.Rip, ExceptionBlock.Cs,
            ExceptionBlock.Rflags, ExceptionBlock.Rsp, ExceptionBlock.Ss];
        for (int i = 0; i < fields.Length; i++)
        {
            a.mov(rax, __qword_ptr[rsp + (i * sizeof(ulong))]);
            a.mov(__qword_ptr[rdi + (int)fields[i]], rax);
        }
        a.mov(rax, cr2);
        a.mov(__qword_ptr[rdi + (int)ExceptionBlock.Cr2], rax);
        a.mov(dx, Ports.Exception);
        a.@out(dx, al);
        // Not reached: the host never resumes a guest that reported an exception.
        Label halt = a.CreateLabel();
        a.Label(ref halt);
        a.hlt();
        a.jmp(halt);

        using var stream = new MemoryStream();
        var result = a.Assemble(new StreamCodeWriter(stream), Layout.ExceptionHandlers, BlockEncoderOptions.ReturnNewInstructionOffsets);
        byte[] code = stream.ToArray();
        if ((ulong)code.Length > Layout.PageSize) throw new InvalidOperationException($"the exception handlers take {code.Length} bytes, more than their page");
        return (code, [.. stubs.Select(label => result.GetLabelRIP(label))]);
    }
}
