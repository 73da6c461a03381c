// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The IDT at <see cref="Layout.Idt"/>: a 64-bit interrupt gate (Intel SDM Vol. 3A 6.14.1, Figure 6-8) for each
/// exception vector 0-31, into its stub in <see cref="ExceptionHandlers"/>. Interrupt gates, not trap gates: IF is off
/// in the handler (it is off in the guest too, but a guest may STI). Vectors above 31 have no gate, and none can
/// arrive: there is no interrupt controller, and INT n beyond the limit is #GP, which is reported.
/// </summary>
public static class Idt
{
    /// <summary>The number of gates: the exception vectors 0-31.</summary>
    public const int Vectors = 32;

    /// <summary>The IDTR limit: <see cref="Vectors"/> 16-byte gates, minus 1 (511).</summary>
    public const ushort Limit = Vectors * 16 - 1;

    /// <summary>The IST index every gate uses: 1, the exception stack of <see cref="Tss"/>.</summary>
    public const int Ist = 1;

    private const ulong InterruptGate = 0xE;

    // Built once: a micro-VM's creation and each full reset copy 512 bytes, nothing more.
    private static readonly byte[] Table = Build();

    /// <summary>The 32 gates as they are in guest memory.</summary>
    public static ReadOnlySpan<byte> Bytes => Table;

    /// <summary>
    /// Writes the 512-byte table (<see cref="Bytes"/>) to <see cref="Layout.Idt"/> in <paramref name="memory"/>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        memory.Write(Layout.Idt, Table);
    }

    /// <summary>A present, DPL 0 64-bit interrupt gate to <paramref name="offset"/> on stack <paramref name="ist"/> (0 = current).</summary>
    public static (ulong Low, ulong High) Gate(ulong offset, ushort selector, int ist)
    {
        ulong low = (offset & 0xffff) | ((ulong)selector << 16) | ((ulong)(ist & 7) << 32) | (InterruptGate << 40) | (1UL << 47)
            | (((offset >> 16) & 0xffff) << 48);
        return (low, offset >> 32);
    }

    /// <summary>The handler address a 64-bit gate (<see cref="Gate"/>'s two quadwords) leads to.</summary>
    public static ulong GateTarget(ulong low, ulong high) => (low & 0xffff) | (((low >> 48) & 0xffff) << 16) | (high << 32);

    /// <summary>
    /// The 32 gates with <paramref name="vector"/>'s leading to <paramref name="handler"/> instead of its exception
    /// stub: a confidential micro-VM's own #VC or #VE handler (SnpRuntime, TdRuntime).
    /// </summary>
    internal static byte[] WithHandler(int vector, ulong handler)
    {
        byte[] table = Build();
        WriteGate(table, vector, handler);
        return table;
    }

    private static byte[] Build()
    {
        var table = new byte[Vectors * 16];
        for (int vector = 0; vector < Vectors; vector++) WriteGate(table, vector, ExceptionHandlers.Stub(vector));
        return table;
    }

    private static void WriteGate(byte[] table, int vector, ulong target)
    {
        (ulong low, ulong high) = Gate(target, Gdt.CodeSelector, Ist);
        BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(vector * 16), low);
        BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(vector * 16 + 8), high);
    }

    /// <summary>The exceptions the CPU pushes an error code for (SDM Vol. 3A Table 6-1): #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX.</summary>
    public static bool HasErrorCode(int vector) => vector is 8 or (>= 10 and <= 14) or 17 or 21 or 29 or 30;
}
