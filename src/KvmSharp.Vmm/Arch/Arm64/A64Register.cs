// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// An A64 general-purpose register operand: its encoding (0..31) and width. Encoding 31 is XZR/WZR or SP depending
/// on the instruction; <see cref="IsSp"/> records which one the author meant so misuse is caught when encoding.
/// </summary>
/// <param name="Number">The register encoding, 0..31.</param>
/// <param name="Is64">X (64-bit) rather than W (32-bit).</param>
/// <param name="IsSp">Encoding 31 means SP rather than the zero register.</param>
public readonly record struct A64Register(int Number, bool Is64, bool IsSp = false)
{
    /// <summary>The 64-bit register Xn (n = 0..30).</summary>
    public static A64Register X(int n) => n is >= 0 and <= 30 ? new(n, true) : throw new ArgumentOutOfRangeException(nameof(n), n, "x0..x30");

    /// <summary>The 32-bit register Wn (n = 0..30).</summary>
    public static A64Register W(int n) => n is >= 0 and <= 30 ? new(n, false) : throw new ArgumentOutOfRangeException(nameof(n), n, "w0..w30");

    /// <summary>The 64-bit zero register (encoding 31).</summary>
    public static A64Register Xzr => new(31, true);

    /// <summary>The 32-bit zero register (encoding 31).</summary>
    public static A64Register Wzr => new(31, false);

    /// <summary>The stack pointer (encoding 31 where the instruction reads SP).</summary>
    public static A64Register Sp => new(31, true, IsSp: true);

    /// <summary>The assembler name: x0, w3, sp, xzr …</summary>
    public override string ToString() => IsSp ? "sp" : Number == 31 ? (Is64 ? "xzr" : "wzr") : $"{(Is64 ? 'x' : 'w')}{Number}";
}

/// <summary>A64 condition codes (cond field of B.cond).</summary>
public enum A64Condition
{
    /// <summary>Equal (Z set).</summary>
    EQ = 0,
    /// <summary>Not equal.</summary>
    NE = 1,
    /// <summary>Unsigned higher or same (C set).</summary>
    HS = 2,
    /// <summary>Unsigned lower (C clear).</summary>
    LO = 3,
    /// <summary>Negative.</summary>
    MI = 4,
    /// <summary>Positive or zero.</summary>
    PL = 5,
    /// <summary>Overflow.</summary>
    VS = 6,
    /// <summary>No overflow.</summary>
    VC = 7,
    /// <summary>Unsigned higher.</summary>
    HI = 8,
    /// <summary>Unsigned lower or same.</summary>
    LS = 9,
    /// <summary>Signed greater or equal.</summary>
    GE = 10,
    /// <summary>Signed less than.</summary>
    LT = 11,
    /// <summary>Signed greater than.</summary>
    GT = 12,
    /// <summary>Signed less or equal.</summary>
    LE = 13,
    /// <summary>Always.</summary>
    AL = 14,
}

/// <summary>A branch target inside one <see cref="A64Assembler"/>.</summary>
public sealed class A64Label
{
    internal int Position { get; set; } = -1;
}
