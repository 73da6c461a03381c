// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>Guest code assembled with Iced for the address it will run at (the one place the stream plumbing lives).</summary>
public static class GuestCode
{
    /// <summary>
    /// The bytes of <paramref name="program"/> in <paramref name="bitness"/>-bit mode (16, 32 or 64), encoded for
    /// <paramref name="at"/> (relative branches and RIP-relative operands resolve against it).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="program"/> is null.</exception>
    public static byte[] Assemble(Action<Assembler> program, int bitness, ulong at)
    {
        ArgumentNullException.ThrowIfNull(program);
        var a = new Assembler(bitness);
        program(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), at);
        return stream.ToArray();
    }
}
