// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The x87 double extended-precision format (Intel SDM Vol. 1 4.2.2, Table 4-3; AMD APM Vol. 1 6.2.2): sign, 15-bit
/// exponent (bias 16383) and a 64-bit significand whose integer bit (63) is explicit. The encodings the x87 FPU no
/// longer supports (SDM Vol. 1 8.2.2, Table 8-3: pseudo-NaN, pseudo-infinity, unnormal — integer bit clear with a
/// non-zero exponent) are invalid operands; a pseudo-denormal (exponent 0, integer bit set) is read as a denormal.
/// </summary>
internal readonly record struct Extended80(ushort SignExp, ulong Significand)
{
    public const int Bias = 0x3fff, MaxExp = 0x7fff;
    public const ulong IntegerBit = 1UL << 63, QuietBit = 1UL << 62;

    /// <summary>The real indefinite QNaN (SDM Vol. 1 4.8.3.7): negative, exponent all ones, significand 0xC000….</summary>
    public static readonly Extended80 Indefinite = new(0xffff, 0xc000_0000_0000_0000);
    public static readonly Extended80 PositiveZero = new(0, 0), One = new(Bias, IntegerBit);

    public bool Sign => (SignExp & 0x8000) != 0;
    public int Exp => SignExp & MaxExp;

    public bool IsZero => Exp == 0 && Significand == 0;
    /// <summary>Exponent 0, significand non-zero: a denormal or a pseudo-denormal (integer bit set).</summary>
    public bool IsDenormal => Exp == 0 && Significand != 0;
    /// <summary>SDM Table 8-3: a non-zero exponent with the integer bit clear (unnormal, pseudo-NaN, pseudo-infinity).</summary>
    public bool IsUnsupported => Exp != 0 && (Significand & IntegerBit) == 0;
    public bool IsInfinity => Exp == MaxExp && Significand == IntegerBit;
    public bool IsNaN => Exp == MaxExp && (Significand & IntegerBit) != 0 && (Significand << 1) != 0;
    public bool IsSignalingNaN => IsNaN && (Significand & QuietBit) == 0;

    public Extended80 Negate() => new((ushort)(SignExp ^ 0x8000), Significand);
    public Extended80 Abs() => new((ushort)(SignExp & MaxExp), Significand);
    public Extended80 Quiet() => new(SignExp, Significand | QuietBit);

    public static Extended80 Zero(bool negative) => new((ushort)(negative ? 0x8000 : 0), 0);
    public static Extended80 Infinity(bool negative) => new((ushort)((negative ? 0x8000 : 0) | MaxExp), IntegerBit);

    /// <summary>Bytes 0..9 as FLD m80 / FSTP m80 and FXSAVE's ST slots hold them: significand, then sign and exponent.</summary>
    public static Extended80 Read(ReadOnlySpan<byte> b) =>
        new(System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(b[8..]), System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b));

    public void Write(Span<byte> b)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, Significand);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(b[8..], SignExp);
    }

    /// <summary>
    /// A finite non-zero value normalized for arithmetic: integer bit set, exponent possibly below 1 (denormals; a
    /// pseudo-denormal has the exponent 1 as SDM Vol. 1 8.2.2 says its value is read).
    /// </summary>
    public (int Exp, ulong Sig) Normalized()
    {
        int e = Exp == 0 ? 1 : Exp;
        int shift = System.Numerics.BitOperations.LeadingZeroCount(Significand);
        return (e - shift, Significand << shift);
    }

    public override string ToString() => $"{SignExp:X4}:{Significand:X16}";
}

/// <summary>The FSW exception flags and the FCW fields an x87 operation reads (SDM Vol. 1 8.1.3, 8.1.5).</summary>
internal struct X87Env(ushort fcw)
{
    public const ushort IE = 1, DE = 2, ZE = 4, OE = 8, UE = 0x10, PE = 0x20, SF = 0x40;

    public readonly ushort Fcw = fcw;
    /// <summary>FSW bits 6:0 this operation raised.</summary>
    public ushort Flags;
    /// <summary>C1 as the round-up indication (SDM Vol. 1 8.1.3.3): the significand was incremented when rounding.</summary>
    public bool RoundedUp;

    /// <summary>FCW.RC: 0 nearest even, 1 down, 2 up, 3 toward zero (SDM Vol. 1 Table 4-8).</summary>
    public readonly int Rc => (Fcw >> 10) & 3;

    /// <summary>FCW.PC: 00 single (24 bits), 10 double (53), 11 extended (64); 01 is reserved (read as 64 here).</summary>
    public readonly int Precision => ((Fcw >> 8) & 3) switch { 0 => 24, 2 => 53, _ => 64 };

    public readonly bool Masked(ushort flag) => (Fcw & flag) != 0;

    /// <summary>An unmasked IE, DE or ZE: SDM Vol. 1 8.5: the operands and destination are left unchanged.</summary>
    public readonly bool PreComputationFault => (Flags & ~Fcw & (IE | DE | ZE)) != 0;
}
