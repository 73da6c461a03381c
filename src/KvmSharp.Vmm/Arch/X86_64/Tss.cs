// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The 64-bit TSS at <see cref="Layout.Tss"/> (Intel SDM Vol. 3A 8.7, Figure 8-11). Long mode uses a TSS only for stack
/// pointers: IST1 is the exception stack, so an exception is delivered on a good stack even when the guest's own RSP
/// points at the stack guard (a #PF there would otherwise become #DF and then a triple fault).
/// </summary>
public static class Tss
{
    /// <summary>The 104-byte 64-bit TSS, as a segment limit.</summary>
    public const uint Limit = 0x67;

    /// <summary>IST1 (IST<i>n</i> at 0x24 + 8·(n-1)).</summary>
    public const ulong Ist1 = 0x24;

    /// <summary>The I/O map base: at the limit or beyond it, there is no I/O permission bitmap (ring 0 needs none).</summary>
    public const ulong IoMapBase = 0x66;

    /// <summary>
    /// Writes IST1 (= <see cref="Layout.ExceptionStackTop"/>) and the I/O map base into the TSS at
    /// <see cref="Layout.Tss"/>; the other fields are left as they are (zero in fresh memory).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        memory.Write(Layout.Tss + Ist1, Layout.ExceptionStackTop);
        memory.Write(Layout.Tss + IoMapBase, (ushort)(Limit + 1));
    }
}
