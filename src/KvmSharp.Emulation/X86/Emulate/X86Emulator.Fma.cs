// SPDX-License-Identifier: MIT
using System.Numerics;
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// FMA3 (Intel SDM Vol. 2 VFMADD132PS … VFNMSUB231SD; CPUID.1:ECX.FMA[12]): VFMADD/VFMSUB/VFNMADD/VFNMSUB with the
/// 132/213/231 operand orders, PS/PD (VEX.128 and VEX.256) and SS/SD (bits 127:32/64 of the destination kept, 255:128
/// zeroed). 132: dest = dest × src3 + src2; 213: dest = src2 × dest + src3; 231: dest = src2 × src3 + dest; the MSUB
/// forms subtract the addend, the NM forms negate the product. The product and the sum are exact and rounded once
/// under MXCSR.RC (<see cref="SseArithmetic.Round"/>, with DAZ/FTZ). SIMD exceptions (SDM Vol. 2A 2.8 exception type
/// 2/3; Vol. 1 14.5.2 "FMA"): an SNaN operand or ∞ × 0 is IE; a NaN operand gives the first NaN in operand order
/// (dest, src2, src3) quieted, the default NaN for ∞ × 0 without one; ∞ − ∞ in the sum is IE with the default NaN; a
/// denormal operand sets DE; an unmasked flag is #XM (or #UD) before any write. VFMADDSUB/VFMSUBADD: X86Emulator.FmaAddSub.cs.
/// Faults first as <see cref="RequireAvx"/>, then #UD without the guest CPUID's FMA bit.
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryFma(in Instruction i)
    {
        string name = i.Mnemonic.ToString();
        bool negate = name.StartsWith("Vfnm", StringComparison.Ordinal);
        string rest = negate ? name[4..] : name.StartsWith("Vfm", StringComparison.Ordinal) ? name[3..] : "";
        bool subtract;
        if (rest.StartsWith("add", StringComparison.Ordinal) && rest.Length == 8) subtract = false;
        else if (rest.StartsWith("sub", StringComparison.Ordinal) && rest.Length == 8) subtract = true;
        else return false; // not FMA3 (or VFMADDSUB/VFMSUBADD: X86Emulator.FmaAddSub.cs)
        string order = rest[3..6];
        var fmt = rest[7] == 's' ? FloatFormat.Single : FloatFormat.Double;
        bool scalar = rest[6] == 's';
        RequireAvx(avx2: false);
        if (!GuestFeatures.Fma(_cpu)) throw new GuestFault(UD_VECTOR);
        int size = fmt.Bits / 8;
        int bytes = scalar ? 16 : i.Op0Register.IsYMM() ? 32 : 16;
        int dest = VectorIndex(i.Op0Register);
        Span<byte> d = stackalloc byte[32], s2 = stackalloc byte[32], s3 = stackalloc byte[32];
        VectorRegisters.Read(Vec, dest, d[..bytes]);
        VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), s2[..bytes]);
        if (i.GetOpKind(2) == OpKind.Register) VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(2)), s3[..bytes]);
        else AccessMemory(VectorLinear(i, alignment: 1), s3[..(scalar ? size : bytes)], write: false);
        var math = new SseArithmetic(Vec.Fpu.mxcsr);
        bool roundDown = (Vec.Fpu.mxcsr >> 13 & 3) == 1;
        uint flags = 0;
        int count = scalar ? 1 : bytes / size;
        for (int k = 0; k < count; k++)
        {
            ulong x = VectorLane(d, k, size), y = VectorLane(s2, k, size), z = VectorLane(s3, k, size);
            var (m1, m2, add) = order switch { "132" => (x, z, y), "213" => (y, x, z), _ => (y, z, x) };
            SetVectorLane(d, k, size, FusedElement(math, x, y, z, m1, m2, add, negate, subtract, fmt, roundDown, ref flags));
        }
        CommitFlags(flags | math.Flags);
        VectorRegisters.WriteVex(Vec, dest, d[..bytes]);
        return true;
    }

    /// <summary>±(m1 × m2) ± add rounded once; <paramref name="x"/>, <paramref name="y"/>, <paramref name="z"/> in operand order for the NaN rule.</summary>
    private static ulong FusedElement(SseArithmetic math, ulong x, ulong y, ulong z, ulong m1, ulong m2, ulong add,
        bool negate, bool subtract, FloatFormat fmt, bool roundDown, ref uint flags)
    {
        var a = math.Decode(m1, fmt);
        var b = math.Decode(m2, fmt);
        var c = math.Decode(add, fmt);
        bool aInf = a.Kind == FloatKind.Infinity, bInf = b.Kind == FloatKind.Infinity;
        bool infTimesZero = (aInf && b.Kind == FloatKind.Zero) || (bInf && a.Kind == FloatKind.Zero);
        if (a.IsNaN || b.IsNaN || c.IsNaN)
        {
            if (a.Kind == FloatKind.SignalingNaN || b.Kind == FloatKind.SignalingNaN || c.Kind == FloatKind.SignalingNaN || infTimesZero)
                flags |= SseArithmetic.IE;
            foreach (ulong v in (ReadOnlySpan<ulong>)[x, y, z])
                if (math.Decode(v, fmt).IsNaN) return v | fmt.QuietBit;
        }
        if (infTimesZero)
        {
            flags |= SseArithmetic.IE;
            return fmt.DefaultNaN;
        }
        bool pNeg = (a.Negative != b.Negative) != negate;
        bool cNeg = c.Negative != subtract;
        bool pInf = aInf || bInf, cInf = c.Kind == FloatKind.Infinity;
        if (pInf && cInf && pNeg != cNeg)
        {
            flags |= SseArithmetic.IE;
            return fmt.DefaultNaN;
        }
        if (a.Denormal || b.Denormal || c.Denormal) flags |= SseArithmetic.DE;
        if (pInf) return fmt.Infinity(pNeg);
        if (cInf) return fmt.Infinity(cNeg);
        bool pZero = a.Kind == FloatKind.Zero || b.Kind == FloatKind.Zero, cZero = c.Kind == FloatKind.Zero;
        BigInteger pm = pZero ? BigInteger.Zero : a.Mantissa * b.Mantissa;
        int pe = a.Exponent + b.Exponent;
        if (pZero && cZero)
            return fmt.Zero(pNeg == cNeg ? pNeg : roundDown); // IEEE 754 6.3: exact zero sums
        if (pZero) return math.Round(cNeg, c.Mantissa, c.Exponent, fmt);
        if (cZero) return math.Round(pNeg, pm, pe, fmt);
        int e = Math.Min(pe, c.Exponent);
        BigInteger sum = (pNeg ? -pm : pm) * BigInteger.Pow(2, pe - e) + (cNeg ? -c.Mantissa : c.Mantissa) * BigInteger.Pow(2, c.Exponent - e);
        if (sum.IsZero) return fmt.Zero(roundDown);
        return math.Round(sum.Sign < 0, BigInteger.Abs(sum), e, fmt);
    }
}
