// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.GuestAbi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The code at <see cref="Layout.Trampoline"/>. The host pushes its address as the return address of every call, so a
/// guest function simply returns (RET) and lands here: RAX is stored into CallRegion.result, then an OUT to the return
/// port hands control back to the host.
/// </summary>
public static class Trampoline
{
    private static readonly byte[] Code = Assemble();

    /// <summary>The assembled trampoline, as placed at <see cref="Layout.Trampoline"/>.</summary>
    public static ReadOnlySpan<byte> Bytes => Code;

    /// <summary>Copies <see cref="Bytes"/> to <see cref="Layout.Trampoline"/> in <paramref name="memory"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        memory.Write(Layout.Trampoline, Code);
    }

    private static byte[] Assemble()
    {
        var a = new Assembler(64);
        a.mov(rdi, CallRegion.Address(CallRegion.Result));
        a.mov(__qword_ptr[rdi], rax);
        a.mov(dx, Ports.Return);
        a.@out(dx, al);
        // Not reached: the host never resumes a call that returned.
        a.hlt();
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), Layout.Trampoline);
        return stream.ToArray();
    }
}
