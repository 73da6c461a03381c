// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// The report of the arm64 vector table (<see cref="Arm64GuestCode.Vectors"/>) read as a <see cref="GuestException"/>:
/// <see cref="GuestException.Vector"/> is the vector-table entry (0-15), <see cref="GuestException.Rip"/> is ELR_EL1
/// (the faulting instruction for a synchronous exception), <see cref="GuestException.ErrorCode"/> is ESR_EL1,
/// <see cref="GuestException.Cr2"/> is FAR_EL1 (for the exception classes that set it), <see cref="GuestException.Rflags"/>
/// is SPSR_EL1 and <see cref="GuestException.Rsp"/> the guest's SP.
/// </summary>
public static class Arm64Exceptions
{
    /// <summary>Reads the exception block of an arm64 micro-VM.</summary>
    public static GuestException FromBlock(ReadOnlySpan<byte> block)
    {
        ulong raw = Field(block, ExceptionBlock.Vector);
        ulong esr = Field(block, ExceptionBlock.ErrorCode);
        uint ec = (uint)(esr >> 26) & 0x3F;
        return new GuestException
        {
            Architecture = GuestArchitecture.Arm64,
            Vector = (int)Math.Min(raw, int.MaxValue),
            ErrorCode = esr,
            Rip = Field(block, ExceptionBlock.Rip),
            Rflags = Field(block, ExceptionBlock.Rflags),
            Rsp = Field(block, ExceptionBlock.Rsp),
            Cr2 = HasFar(ec) ? Field(block, ExceptionBlock.Cr2) : null,
        };
    }

    /// <summary>ESR_ELx.EC of <paramref name="esr"/>.</summary>
    public static uint ExceptionClass(ulong esr) => (uint)(esr >> 26) & 0x3F;

    /// <summary>The exception classes for which FAR_EL1 holds the faulting address (Arm ARM D19.2.40).</summary>
    private static bool HasFar(uint ec) => ec is 0x20 or 0x21 or 0x22 or 0x24 or 0x25 or 0x30 or 0x31 or 0x34 or 0x35;

    /// <summary>"EC 0x25" — the exception class, as the mnemonic of an arm64 exception.</summary>
    public static string Mnemonic(GuestException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return string.Create(CultureInfo.InvariantCulture, $"EC 0x{ExceptionClass(e.ErrorCode ?? 0):X2}");
    }

    /// <summary>The exception class's name (asm/esr.h ESR_ELx_EC_*), or the vector-table entry for IRQ/FIQ/SError.</summary>
    public static string Name(GuestException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        // Entries 1-3, 5-7 … are IRQ, FIQ and SError: ESR_EL1 is not theirs.
        if (e.Vector % 4 != 0) return (e.Vector % 4) switch { 1 => "IRQ", 2 => "FIQ", _ => "SError" };
        return ExceptionClass(e.ErrorCode ?? 0) switch
        {
            0x00 => "undefined instruction",
            0x01 => "WFI/WFE trap",
            0x07 => "SVE/SIMD/FP access trap",
            0x0D => "branch target exception",
            0x0E => "illegal execution state",
            0x15 => "SVC",
            0x16 => "HVC",
            0x17 => "SMC",
            0x18 => "system register trap",
            0x20 or 0x21 => "instruction abort",
            0x22 => "PC alignment fault",
            0x24 or 0x25 => "data abort",
            0x26 => "SP alignment fault",
            0x2C => "floating-point exception",
            0x2F => "SError",
            0x30 or 0x31 => "breakpoint",
            0x32 or 0x33 => "software step",
            0x34 or 0x35 => "watchpoint",
            0x3C => "BRK",
            _ => "exception",
        };
    }

    /// <summary>"data abort (EC 0x25) at pc 0x100010: far 0x10000000000, esr 0x96000000".</summary>
    public static string Describe(GuestException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        string far = e.Cr2 is ulong f ? string.Create(CultureInfo.InvariantCulture, $"far 0x{f:X}, ") : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{Name(e)} ({Mnemonic(e)}) at pc 0x{e.Rip:X}: {far}esr 0x{e.ErrorCode ?? 0:X}, vector entry {e.Vector}");
    }

    private static ulong Field(ReadOnlySpan<byte> block, ulong offset) => BinaryPrimitives.ReadUInt64LittleEndian(block[(int)offset..]);
}
