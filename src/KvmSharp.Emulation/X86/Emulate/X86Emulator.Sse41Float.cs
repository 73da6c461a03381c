// SPDX-License-Identifier: MIT
using System.Numerics;
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The floating-point side of the x86-64-v2 additions (Intel SDM Vol. 2 per instruction): SSE3 ADDSUBPS/PD,
/// HADDPS/PD, HSUBPS/PD, MOVSHDUP/MOVSLDUP/MOVDDUP, LDDQU; SSE4.1 ROUNDPS/PD/SS/SD, DPPS/DPPD, BLENDPS/PD,
/// BLENDVPS/PD and INSERTPS. Arithmetic is <see cref="SseArithmetic"/> under MXCSR (each operation rounded once, in
/// the SDM's pseudocode order); flags and #XM/#UD as <see cref="CommitMxcsr"/>, with the destination unchanged on an
/// unmasked exception. Dispatched from <see cref="TrySseV2"/>.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The instructions of this file; false for any other mnemonic.</summary>
    private bool TrySseV2Float(in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Addsubps or Mnemonic.Addsubpd or Mnemonic.Haddps or Mnemonic.Haddpd or Mnemonic.Hsubps or Mnemonic.Hsubpd:
                RequireLegacySse(GuestFeatures.Sse3(_cpu));
                Horizontal(i);
                return true;
            case Mnemonic.Movshdup or Mnemonic.Movsldup or Mnemonic.Movddup or Mnemonic.Lddqu:
                RequireLegacySse(GuestFeatures.Sse3(_cpu));
                Duplicate(i);
                return true;
            case Mnemonic.Roundps or Mnemonic.Roundpd or Mnemonic.Roundss or Mnemonic.Roundsd:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                RoundFloat(i);
                return true;
            case Mnemonic.Dpps or Mnemonic.Dppd:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                DotProduct(i);
                return true;
            case Mnemonic.Blendps or Mnemonic.Blendpd or Mnemonic.Blendvps or Mnemonic.Blendvpd or Mnemonic.Insertps:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                BlendFloat(i);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// ADDSUBPS/PD (even elements a − b, odd a + b), HADDPS/PD and HSUBPS/PD (SDM: xmm1's adjacent pairs then
    /// xmm2's, the even element first: r0 = a0 op a1).
    /// </summary>
    private void Horizontal(in Instruction i)
    {
        var m = i.Mnemonic;
        var fmt = m is Mnemonic.Addsubps or Mnemonic.Haddps or Mnemonic.Hsubps ? FloatFormat.Single : FloatFormat.Double;
        int size = fmt.Bits / 8, count = 16 / size;
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16], r = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        ReadXmmSource(i, 1, b, 16);
        var math = new SseArithmetic(Vec.Fpu.mxcsr);
        for (int k = 0; k < count; k++)
        {
            ulong value;
            if (m is Mnemonic.Addsubps or Mnemonic.Addsubpd)
                value = math.Binary(k % 2 == 0 ? SseArithmetic.Op.Sub : SseArithmetic.Op.Add, VectorLane(a, k, size), VectorLane(b, k, size), fmt);
            else
            {
                ReadOnlySpan<byte> s = k < count / 2 ? a : b;
                int p = 2 * (k % (count / 2));
                var op = m is Mnemonic.Haddps or Mnemonic.Haddpd ? SseArithmetic.Op.Add : SseArithmetic.Op.Sub;
                value = math.Binary(op, VectorLane(s, p, size), VectorLane(s, p + 1, size), fmt);
            }
            SetVectorLane(r, k, size, value);
        }
        CommitMxcsr(math);
        VectorRegisters.WriteLegacy(Vec, dest, r);
    }

    /// <summary>MOVSHDUP (odd singles twice), MOVSLDUP (even singles twice), MOVDDUP xmm, xmm/m64 (low double twice), LDDQU (an unaligned load).</summary>
    private void Duplicate(in Instruction i)
    {
        Span<byte> b = stackalloc byte[16], r = stackalloc byte[16];
        switch (i.Mnemonic)
        {
            case Mnemonic.Movddup:
                ReadXmmSource(i, 1, b, 8);
                SetVectorLane(r, 0, 8, VectorLane(b, 0, 8));
                SetVectorLane(r, 1, 8, VectorLane(b, 0, 8));
                break;
            case Mnemonic.Lddqu:
                ReadXmmSource(i, 1, r, 16, aligned: false);
                break;
            default:
                ReadXmmSource(i, 1, b, 16);
                int odd = i.Mnemonic == Mnemonic.Movshdup ? 1 : 0;
                for (int k = 0; k < 4; k++) SetVectorLane(r, k, 4, VectorLane(b, (k & ~1) + odd, 4));
                break;
        }
        VectorRegisters.WriteLegacy(Vec, VectorIndex(i.Op0Register), r);
    }

    /// <summary>
    /// ROUNDPS/PD xmm1, xmm2/m128, imm8 and ROUNDSS/SD xmm1, xmm2/m32/m64, imm8 (xmm1's upper elements kept): each
    /// element rounded to an integral value in its format, by MXCSR.RC when imm8[2] is set, else by imm8[1:0]; an SNaN is
    /// IE (quieted), an inexact result PE unless imm8[3] (SDM ROUNDPS "SIMD Floating-Point Exceptions": no other flag).
    /// </summary>
    private void RoundFloat(in Instruction i)
    {
        var m = i.Mnemonic;
        var fmt = m is Mnemonic.Roundps or Mnemonic.Roundss ? FloatFormat.Single : FloatFormat.Double;
        bool scalar = m is Mnemonic.Roundss or Mnemonic.Roundsd;
        int size = fmt.Bits / 8;
        int imm = (int)i.GetImmediate(2);
        uint mxcsr = Vec.Fpu.mxcsr;
        int mode = (imm & 4) != 0 ? (int)(mxcsr >> 13) & 3 : imm & 3;
        bool quiet = (imm & 8) != 0;
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        ReadXmmSource(i, 1, b, scalar ? size : 16);
        var math = new SseArithmetic(mxcsr);
        uint flags = 0;
        for (int k = 0; k < (scalar ? 1 : 16 / size); k++) SetVectorLane(a, k, size, RoundIntegral(math, VectorLane(b, k, size), fmt, mode, quiet, ref flags));
        CommitFlags(flags);
        VectorRegisters.WriteLegacy(Vec, dest, a);
    }

    /// <summary>One element of <see cref="RoundFloat"/>: RC 0 nearest-even, 1 down, 2 up, 3 toward zero; the sign of a zero result kept.</summary>
    private static ulong RoundIntegral(SseArithmetic math, ulong bits, FloatFormat fmt, int mode, bool quiet, ref uint flags)
    {
        var x = math.Decode(bits, fmt);
        switch (x.Kind)
        {
            case FloatKind.SignalingNaN:
                flags |= SseArithmetic.IE;
                return bits | fmt.QuietBit;
            case FloatKind.QuietNaN or FloatKind.Infinity:
                return bits;
            case FloatKind.Zero:
                return fmt.Zero(x.Negative); // a denormal under DAZ reads as zero
        }
        if (x.Exponent >= 0) return bits; // already integral
        BigInteger q = x.Mantissa >> -x.Exponent;
        BigInteger rem = x.Mantissa - (q << -x.Exponent);
        if (rem.IsZero) return bits;
        if (!quiet) flags |= SseArithmetic.PE;
        BigInteger half = BigInteger.One << (-x.Exponent - 1);
        bool up = mode switch
        {
            0 => rem > half || (rem == half && !q.IsEven),
            1 => x.Negative,
            2 => !x.Negative,
            _ => false,
        };
        if (up) q += 1;
        if (q.IsZero) return fmt.Zero(x.Negative);
        int top = (int)q.GetBitLength() - 1;
        ulong fraction = (ulong)(q << (fmt.FractionBits - top)) & fmt.FractionMask;
        return (x.Negative ? fmt.SignBit : 0) | ((ulong)(top + fmt.Bias) << fmt.FractionBits) | fraction;
    }

    /// <summary>ORs <paramref name="flags"/> into MXCSR; an unmasked one is #XM (CR4.OSXMMEXCPT) or #UD, before any write.</summary>
    private void CommitFlags(uint flags)
    {
        uint mxcsr = Vec.Fpu.mxcsr;
        Vec.Fpu.mxcsr = mxcsr | flags;
        if ((flags & ~(mxcsr >> 7) & 0x3f) != 0) throw new GuestFault((_cpu.Sregs.cr4 & CR4_OSXMMEXCPT) != 0 ? XM_VECTOR : UD_VECTOR);
    }

    /// <summary>
    /// DPPS/DPPD xmm1, xmm2/m128, imm8 (SDM DPPS/DPPD pseudocode): the products of the elements imm8[7:4] selects (+0.0
    /// for the others), summed pairwise — DPPS (p0 + p1) + (p2 + p3), DPPD p0 + p1 — each step rounded under MXCSR,
    /// written to the elements imm8[3:0] selects, +0.0 to the others.
    /// </summary>
    private void DotProduct(in Instruction i)
    {
        var fmt = i.Mnemonic == Mnemonic.Dpps ? FloatFormat.Single : FloatFormat.Double;
        int size = fmt.Bits / 8, count = 16 / size;
        int imm = (int)i.GetImmediate(2);
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16], r = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        ReadXmmSource(i, 1, b, 16);
        var math = new SseArithmetic(Vec.Fpu.mxcsr);
        Span<ulong> p = stackalloc ulong[4];
        for (int k = 0; k < count; k++)
            p[k] = (imm >> (4 + k) & 1) != 0 ? math.Binary(SseArithmetic.Op.Mul, VectorLane(a, k, size), VectorLane(b, k, size), fmt) : 0;
        ulong sum = math.Binary(SseArithmetic.Op.Add, p[0], p[1], fmt);
        if (count == 4) sum = math.Binary(SseArithmetic.Op.Add, sum, math.Binary(SseArithmetic.Op.Add, p[2], p[3], fmt), fmt);
        for (int k = 0; k < count; k++) SetVectorLane(r, k, size, (imm >> k & 1) != 0 ? sum : 0);
        CommitMxcsr(math);
        VectorRegisters.WriteLegacy(Vec, dest, r);
    }

    /// <summary>
    /// BLENDPS/BLENDPD (xmm2's element where imm8's bit is set), BLENDVPS/BLENDVPD (where XMM0's element has its sign
    /// bit set) and INSERTPS xmm1, xmm2/m32, imm8 (xmm2's single imm8[7:6] — or the m32 — into element imm8[5:4], then
    /// the elements of imm8[3:0] zeroed). No MXCSR effect.
    /// </summary>
    private void BlendFloat(in Instruction i)
    {
        var m = i.Mnemonic;
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        if (m == Mnemonic.Insertps)
        {
            int imm = (int)i.GetImmediate(2);
            ulong value;
            if (i.GetOpKind(1) == OpKind.Register) value = VectorLane(VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(1))), imm >> 6 & 3, 4);
            else
            {
                ReadXmmSource(i, 1, b, 4);
                value = VectorLane(b, 0, 4);
            }
            SetVectorLane(a, imm >> 4 & 3, 4, value);
            for (int k = 0; k < 4; k++)
                if ((imm >> k & 1) != 0) SetVectorLane(a, k, 4, 0);
            VectorRegisters.WriteLegacy(Vec, dest, a);
            return;
        }
        ReadXmmSource(i, 1, b, 16);
        int size = m is Mnemonic.Blendps or Mnemonic.Blendvps ? 4 : 8;
        ReadOnlySpan<byte> mask = VectorRegisters.Low(Vec, 0);
        for (int k = 0; k < 16 / size; k++)
        {
            bool take = m is Mnemonic.Blendps or Mnemonic.Blendpd ? ((int)i.GetImmediate(2) >> k & 1) != 0 : (mask[k * size + size - 1] & 0x80) != 0;
            if (take) SetVectorLane(a, k, size, VectorLane(b, k, size));
        }
        VectorRegisters.WriteLegacy(Vec, dest, a);
    }
}
