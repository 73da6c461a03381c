// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance.Guests.Arm64;

/// <summary>
/// An A64 general-purpose register operand: its encoding (0..31) and width. Encoding 31 is XZR/WZR or SP depending
/// on the instruction; <see cref="IsSp"/> records which one the author meant so misuse is caught when encoding.
/// </summary>
public readonly record struct A64Register(int Number, bool Is64, bool IsSp = false)
{
    public static A64Register X(int n) => n is >= 0 and <= 30 ? new(n, true) : throw new ArgumentOutOfRangeException(nameof(n), n, "x0..x30");

    public static A64Register W(int n) => n is >= 0 and <= 30 ? new(n, false) : throw new ArgumentOutOfRangeException(nameof(n), n, "w0..w30");

    public static A64Register Xzr => new(31, true);

    public static A64Register Wzr => new(31, false);

    public static A64Register Sp => new(31, true, IsSp: true);

    public override string ToString() => IsSp ? "sp" : Number == 31 ? (Is64 ? "xzr" : "wzr") : $"{(Is64 ? 'x' : 'w')}{Number}";
}

/// <summary>A64 condition codes (cond field of B.cond).</summary>
public enum A64Condition
{
    EQ = 0, NE = 1, HS = 2, LO = 3, MI = 4, PL = 5, VS = 6, VC = 7,
    HI = 8, LS = 9, GE = 10, LT = 11, GT = 12, LE = 13, AL = 14,
}

/// <summary>A branch target inside one <see cref="A64Assembler"/>.</summary>
public sealed class A64Label
{
    internal int Position { get; set; } = -1;
}
