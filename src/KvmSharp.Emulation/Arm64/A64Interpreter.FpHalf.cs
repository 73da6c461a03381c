// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// FEAT_FP16 element operations at every precision (esz 2 = half, 4 = single, 8 = double), shared by the scalar FP
/// groups of A64Interpreter.FloatingPoint.cs (ftype 11) and the AdvSIMD FP16 groups of A64Interpreter.SimdHalf.cs.
/// A half operand goes through the SVE half arithmetic of A64Interpreter.SveHalf.cs (exact widening to double, one
/// rounding back in FPCR.RMode, FPCR.FZ16 rather than FZ: a denormal operand is a zero without IDC, a tiny result a
/// zero with UFC alone); single and double use the scalar pseudocode of A64Interpreter.FpArithmetic.cs. The gate is
/// ID_AA64PFR0_EL1.FP (bits 19:16) = 1: "FP including half-precision" (Arm ARM D19.2 ID_AA64PFR0_EL1; HaveFP16Ext()).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>HaveFP16Ext(): ID_AA64PFR0_EL1.FP (bits 19:16) is 0b0001 ("as 0b0000, and half-precision arithmetic").</summary>
    internal static bool HaveFp16(ulong pfr0) => ((pfr0 >> 16) & 0xF) == 1;

    /// <summary>HaveFP16Ext() for this vCPU's model.</summary>
    private bool Fp16 => HaveFp16(cpu.IdRegs.Model.Aa64Pfr0);

    /// <summary>The low <paramref name="esz"/> bytes of V<paramref name="n"/> (H, S or D).</summary>
    private ulong FpRegE(int n, int esz) => esz == 2 ? (ushort)cpu.Vregs[n] : FpReg(n, esz == 8);

    /// <summary>FPMax/FPMin (<paramref name="numeric"/>: FPMaxNum/FPMinNum) at element size <paramref name="esz"/> (FpBinaryE opc 4–7).</summary>
    private ulong FpMinMaxE(ulong x, ulong y, int esz, bool max, bool numeric) =>
        FpBinaryE(numeric ? (max ? 4u : 5u) : (max ? 6u : 7u), x, y, esz);

    /// <summary>FPMulX at element size <paramref name="esz"/>: ∞ × 0 is ±2.0 without IOC (Arm ARM shared pseudocode FPMulX).</summary>
    private ulong FpMulXE(ulong x, ulong y, int esz)
    {
        if (esz != 2) return FpMulX(x, y, esz == 8);
        uint before = cpu.Fpsr;
        return HalfOut(FpMulX(HalfIn(x), HalfIn(y), dbl: true), before);
    }

    /// <summary>FPCompareEQ (kind 0), FPCompareGE (1), FPCompareGT (2) at element size <paramref name="esz"/>.</summary>
    private bool FpCompareMaskE(ulong x, ulong y, int esz, int kind) =>
        esz == 2 ? FpCompareMask(HalfIn(x), HalfIn(y), dbl: true, kind) : FpCompareMask(x, y, esz == 8, kind);

    /// <summary>
    /// FPRoundInt at element size <paramref name="esz"/> (opcode as <see cref="FpRoundInt"/>). A half rounds as its
    /// exact double (FPUnpack with FZ16) and returns exactly: an integral half, or a NaN FPConvertNaN gives back with
    /// the quietened payload (FPProcessNaN at N = 16), or the half default NaN under FPCR.DN.
    /// </summary>
    private ulong FpRoundIntE(ulong x, int esz, uint opcode) =>
        esz == 2 ? FpToHalf(FpRoundInt(HalfIn(x), dbl: true, opcode), dbl: true) : FpRoundInt(x, esz == 8, opcode);

    /// <summary>
    /// FPToFixed(op, fbits, unsigned, FPCR, rounding, <paramref name="bits"/>) at element size <paramref name="esz"/>:
    /// a half through the 32/64-bit conversion of its exact double scaled by 2^fbits (A64Interpreter.SveHalf.cs
    /// <see cref="HalfToFixedScaled"/>), single and double through <see cref="FpToFixed"/>.
    /// </summary>
    private ulong FpToFixedE(ulong x, int esz, int fbits, int bits, bool unsigned, MidpointRounding rounding) =>
        esz == 2 ? HalfToFixedScaled(x, fbits, bits, unsigned, rounding) : FpToFixed(x, esz == 8, fbits, bits == 64, unsigned, rounding);

    /// <summary>FixedToFP(value, fbits, FPCR.RMode) at element size <paramref name="esz"/>.</summary>
    private ulong FixedToFpE(Int128 value, int esz, int fbits) =>
        esz == 2 ? FixedToHalfScaled(value, fbits) : FixedToFpScaled(value, esz == 8, fbits);

    /// <summary>
    /// FixedToFP at N = 16: value ÷ 2^fbits rounded once in FPCR.RMode, then FPRoundBase's FZ16 flush (a result tiny
    /// before rounding — possible with fbits &gt; 0 — is a zero of its sign with UFC alone). The exact quotient is
    /// first made a double by rounding to odd (truncate to 53 bits, set the last bit when anything was dropped),
    /// which keeps one later rounding to 11 bits exact (53 ≥ 2 × 11 + 2) and its inexactness visible; dividing by
    /// 2^fbits ≤ 2^64 is exact. Zero is +0 (FPZero('0')).
    /// </summary>
    private ulong FixedToHalfScaled(Int128 value, int fbits)
    {
        if (value == 0) return 0;
        UInt128 magnitude = (UInt128)(value < 0 ? -value : value);
        int shift = Math.Max(0, 128 - (int)UInt128.LeadingZeroCount(magnitude) - 53);
        ulong mantissa = (ulong)(magnitude >> shift);
        if (shift > 0 && (magnitude & ((UInt128.One << shift) - 1)) != 0) mantissa |= 1;
        double d = Math.ScaleB((double)mantissa, shift - fbits) * (value < 0 ? -1 : 1);
        uint before = cpu.Fpsr;
        return HalfOut(BitConverter.DoubleToUInt64Bits(d), before);
    }

    /// <summary>
    /// VFPExpandImm at N = 16: sign = imm8&lt;7&gt;, exp = NOT(imm8&lt;6&gt;):Replicate(imm8&lt;6&gt;, 2):imm8&lt;5:4&gt;,
    /// frac = imm8&lt;3:0&gt;:Zeros(6).
    /// </summary>
    internal static ulong VfpExpandImmHalf(uint imm8)
    {
        ulong sign = (imm8 >> 7) & 1, b6 = (imm8 >> 6) & 1;
        ulong exp = ((b6 ^ 1) << 4) | (b6 != 0 ? 3UL << 2 : 0) | ((imm8 >> 4) & 3);
        return (sign << 15) | (exp << 10) | ((imm8 & 15UL) << 6);
    }
}
