// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Packed-integer SSE2/SSSE3 on XMM registers (Intel SDM Vol. 2 per instruction): PADD/PSUB B/W/D/Q, PAND/PANDN/POR,
/// PCMPGTB/W/D, PMOVMSKB, PSHUFD/PSHUFLW/PSHUFHW, PUNPCKL/H BW/WD/DQ/QDQ, PSLL/PSRL/PSRA W/D/Q by imm8 or xmm/m128,
/// PSLLDQ/PSRLDQ, PMINUB/PMAXUB/PMINSW/PMAXSW, PMULLW/PMULHW/PMULHUW/PMULUDQ, PMADDWD, PACKUSWB/PACKSSWB/PACKSSDW,
/// PADDUS/PADDS/PSUBUS/PSUBS B/W, PAVGB/W, PSADBW, PEXTRW/PINSRW, PSHUFB and PALIGNR (SSSE3, gated on CPUID.1:ECX.SSSE3[9]). No MXCSR effect; fault order as
/// <see cref="RequireLegacySse"/>; the m128 operand must be 16-byte aligned unless MXCSR.MM. MMX forms are not emulated.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The instructions of this file; false for any other mnemonic, a VEX form or an MMX form.</summary>
    private bool TrySseInteger(in Instruction i)
    {
        if (i.Encoding != EncodingKind.Legacy || !UsesOnlyXmm(i)) return false;
        switch (i.Mnemonic)
        {
            case Mnemonic.Paddb or Mnemonic.Paddw or Mnemonic.Paddd or Mnemonic.Paddq
                or Mnemonic.Psubb or Mnemonic.Psubw or Mnemonic.Psubd or Mnemonic.Psubq
                or Mnemonic.Pand or Mnemonic.Pandn or Mnemonic.Por
                or Mnemonic.Pcmpgtb or Mnemonic.Pcmpgtw or Mnemonic.Pcmpgtd
                or Mnemonic.Punpcklbw or Mnemonic.Punpcklwd or Mnemonic.Punpckldq or Mnemonic.Punpcklqdq
                or Mnemonic.Punpckhbw or Mnemonic.Punpckhwd or Mnemonic.Punpckhdq or Mnemonic.Punpckhqdq
                or Mnemonic.Pminub or Mnemonic.Pmaxub or Mnemonic.Pminsw or Mnemonic.Pmaxsw
                or Mnemonic.Pmullw or Mnemonic.Pmulhw or Mnemonic.Pmulhuw or Mnemonic.Pmuludq or Mnemonic.Pmaddwd
                or Mnemonic.Packuswb or Mnemonic.Packsswb or Mnemonic.Packssdw
                or Mnemonic.Pshufd or Mnemonic.Pshuflw or Mnemonic.Pshufhw:
                RequireLegacySse(feature: true);
                PackedInteger(i);
                return true;
            case Mnemonic.Paddusb or Mnemonic.Paddusw or Mnemonic.Paddsb or Mnemonic.Paddsw
                or Mnemonic.Psubusb or Mnemonic.Psubusw or Mnemonic.Psubsb or Mnemonic.Psubsw
                or Mnemonic.Pavgb or Mnemonic.Pavgw or Mnemonic.Psadbw:
                RequireLegacySse(feature: true);
                PackedSaturating(i);
                return true;
            case Mnemonic.Pextrw or Mnemonic.Pinsrw:
                if (i.Code is not (Code.Pextrw_r32_xmm_imm8 or Code.Pextrw_r64_xmm_imm8 or Code.Pinsrw_xmm_r32m16_imm8 or Code.Pinsrw_xmm_r64m16_imm8)) return false;
                RequireLegacySse(feature: true);
                InsertExtractWord(i);
                return true;
            case Mnemonic.Pshufb or Mnemonic.Palignr:
                RequireLegacySse(GuestFeatures.Ssse3(_cpu));
                PackedInteger(i);
                return true;
            case Mnemonic.Psllw or Mnemonic.Pslld or Mnemonic.Psllq or Mnemonic.Psrlw or Mnemonic.Psrld or Mnemonic.Psrlq
                or Mnemonic.Psraw or Mnemonic.Psrad or Mnemonic.Pslldq or Mnemonic.Psrldq:
                RequireLegacySse(feature: true);
                PackedShift(i);
                return true;
            case Mnemonic.Pmovmskb:
                RequireLegacySse(feature: true);
                ByteMask(i);
                return true;
            default:
                return false;
        }
    }

    private static long Lane(ReadOnlySpan<byte> v, int k, int size, bool signed)
    {
        ulong raw = RawLane(v, k, size);
        if (!signed) return (long)raw;
        int shift = 64 - size * 8;
        return (long)(raw << shift) >> shift;
    }

    private static ulong RawLane(ReadOnlySpan<byte> v, int k, int size)
    {
        int offset = k * size;
        ulong raw = 0;
        for (int b = size - 1; b >= 0; b--) raw = (raw << 8) | v[offset + b];
        return raw;
    }

    private static void SetLane(Span<byte> v, int k, int size, ulong value)
    {
        for (int b = 0; b < size; b++) v[k * size + b] = (byte)(value >> (8 * b));
    }

    private static long Saturate(long value, long min, long max) => Math.Clamp(value, min, max);

    /// <summary>The two-operand packed integer forms xmm1, xmm2/m128 (PSHUFD/LW/HW and PALIGNR with imm8).</summary>
    private void PackedInteger(in Instruction i)
    {
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16], r = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        ReadXmmSource(i, 1, b, 16);
        a.CopyTo(r);
        var m = i.Mnemonic;
        switch (m)
        {
            case Mnemonic.Paddb or Mnemonic.Paddw or Mnemonic.Paddd or Mnemonic.Paddq
                or Mnemonic.Psubb or Mnemonic.Psubw or Mnemonic.Psubd or Mnemonic.Psubq:
            {
                int size = m is Mnemonic.Paddb or Mnemonic.Psubb ? 1 : m is Mnemonic.Paddw or Mnemonic.Psubw ? 2
                    : m is Mnemonic.Paddd or Mnemonic.Psubd ? 4 : 8;
                bool sub = m is Mnemonic.Psubb or Mnemonic.Psubw or Mnemonic.Psubd or Mnemonic.Psubq;
                for (int k = 0; k < 16 / size; k++)
                {
                    ulong x = (ulong)Lane(a, k, size, false), y = (ulong)Lane(b, k, size, false);
                    SetLane(r, k, size, sub ? x - y : x + y);
                }
                break;
            }
            case Mnemonic.Pand:
                for (int k = 0; k < 16; k++) r[k] = (byte)(a[k] & b[k]);
                break;
            case Mnemonic.Pandn:
                for (int k = 0; k < 16; k++) r[k] = (byte)(~a[k] & b[k]);
                break;
            case Mnemonic.Por:
                for (int k = 0; k < 16; k++) r[k] = (byte)(a[k] | b[k]);
                break;
            case Mnemonic.Pcmpgtb or Mnemonic.Pcmpgtw or Mnemonic.Pcmpgtd:
            {
                int size = m == Mnemonic.Pcmpgtb ? 1 : m == Mnemonic.Pcmpgtw ? 2 : 4;
                for (int k = 0; k < 16 / size; k++) SetLane(r, k, size, Lane(a, k, size, true) > Lane(b, k, size, true) ? ulong.MaxValue : 0);
                break;
            }
            case Mnemonic.Punpcklbw or Mnemonic.Punpcklwd or Mnemonic.Punpckldq or Mnemonic.Punpcklqdq
                or Mnemonic.Punpckhbw or Mnemonic.Punpckhwd or Mnemonic.Punpckhdq or Mnemonic.Punpckhqdq:
            {
                int size = m is Mnemonic.Punpcklbw or Mnemonic.Punpckhbw ? 1 : m is Mnemonic.Punpcklwd or Mnemonic.Punpckhwd ? 2
                    : m is Mnemonic.Punpckldq or Mnemonic.Punpckhdq ? 4 : 8;
                int from = m is Mnemonic.Punpcklbw or Mnemonic.Punpcklwd or Mnemonic.Punpckldq or Mnemonic.Punpcklqdq ? 0 : 8 / size;
                for (int k = 0; k < 8 / size; k++)
                {
                    SetLane(r, 2 * k, size, (ulong)Lane(a, from + k, size, false));
                    SetLane(r, 2 * k + 1, size, (ulong)Lane(b, from + k, size, false));
                }
                break;
            }
            case Mnemonic.Pminub or Mnemonic.Pmaxub:
                for (int k = 0; k < 16; k++) r[k] = m == Mnemonic.Pminub ? Math.Min(a[k], b[k]) : Math.Max(a[k], b[k]);
                break;
            case Mnemonic.Pminsw or Mnemonic.Pmaxsw:
                for (int k = 0; k < 8; k++)
                {
                    long x = Lane(a, k, 2, true), y = Lane(b, k, 2, true);
                    SetLane(r, k, 2, (ulong)(m == Mnemonic.Pminsw ? Math.Min(x, y) : Math.Max(x, y)));
                }
                break;
            case Mnemonic.Pmullw or Mnemonic.Pmulhw or Mnemonic.Pmulhuw:
                for (int k = 0; k < 8; k++)
                {
                    bool signed = m != Mnemonic.Pmulhuw;
                    long p = Lane(a, k, 2, signed) * Lane(b, k, 2, signed);
                    SetLane(r, k, 2, (ulong)(m == Mnemonic.Pmullw ? p : p >> 16));
                }
                break;
            case Mnemonic.Pmuludq:
                for (int k = 0; k < 2; k++) SetLane(r, k, 8, (ulong)Lane(a, 2 * k, 4, false) * (ulong)Lane(b, 2 * k, 4, false));
                break;
            case Mnemonic.Pmaddwd:
                // The one overflow (all four words 0x8000) wraps to 0x80000000 (SDM Vol. 2B PMADDWD).
                for (int k = 0; k < 4; k++)
                {
                    long s = Lane(a, 2 * k, 2, true) * Lane(b, 2 * k, 2, true) + Lane(a, 2 * k + 1, 2, true) * Lane(b, 2 * k + 1, 2, true);
                    SetLane(r, k, 4, (ulong)s);
                }
                break;
            case Mnemonic.Packuswb or Mnemonic.Packsswb:
                for (int k = 0; k < 16; k++)
                {
                    long w = Lane(k < 8 ? a : b, k & 7, 2, true);
                    r[k] = (byte)(m == Mnemonic.Packuswb ? Saturate(w, 0, 255) : Saturate(w, sbyte.MinValue, sbyte.MaxValue));
                }
                break;
            case Mnemonic.Packssdw:
                for (int k = 0; k < 8; k++) SetLane(r, k, 2, (ulong)Saturate(Lane(k < 4 ? a : b, k & 3, 4, true), short.MinValue, short.MaxValue));
                break;
            case Mnemonic.Pshufd:
            {
                int imm = (int)i.GetImmediate(2);
                for (int k = 0; k < 4; k++) SetLane(r, k, 4, (ulong)Lane(b, (imm >> (2 * k)) & 3, 4, false));
                break;
            }
            case Mnemonic.Pshuflw or Mnemonic.Pshufhw:
            {
                int imm = (int)i.GetImmediate(2);
                b.CopyTo(r);
                int base_ = m == Mnemonic.Pshuflw ? 0 : 4;
                for (int k = 0; k < 4; k++) SetLane(r, base_ + k, 2, (ulong)Lane(b, base_ + ((imm >> (2 * k)) & 3), 2, false));
                break;
            }
            case Mnemonic.Pshufb:
                for (int k = 0; k < 16; k++) r[k] = (b[k] & 0x80) != 0 ? (byte)0 : a[b[k] & 15];
                break;
            default: // PALIGNR: (dest:src) >> imm8 bytes, zeros beyond 32
            {
                int imm = (int)i.GetImmediate(2);
                for (int k = 0; k < 16; k++)
                {
                    int n = k + imm;
                    r[k] = n < 16 ? b[n] : n < 32 ? a[n - 16] : (byte)0;
                }
                break;
            }
        }
        VectorRegisters.WriteLegacy(Vec, dest, r);
    }

    /// <summary>
    /// PSLL/PSRL/PSRA W/D/Q by imm8 or by the low quadword of xmm/m128 (a count beyond the lane width zeroes the lane,
    /// or fills it with the sign for PSRA), and PSLLDQ/PSRLDQ by imm8 bytes (beyond 15: zero).
    /// </summary>
    private void PackedShift(in Instruction i)
    {
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], r = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        ulong count;
        if (i.GetOpKind(1) == OpKind.Immediate8) count = i.GetImmediate(1);
        else
        {
            Span<byte> b = stackalloc byte[16];
            ReadXmmSource(i, 1, b, 16);
            count = VectorLane(b, 0, 8);
        }
        var m = i.Mnemonic;
        if (m is Mnemonic.Pslldq or Mnemonic.Psrldq)
        {
            r.Clear();
            int n = (int)Math.Min(count, 16);
            for (int k = 0; k < 16; k++)
            {
                int from = m == Mnemonic.Pslldq ? k - n : k + n;
                if (from is >= 0 and < 16) r[k] = a[from];
            }
            VectorRegisters.WriteLegacy(Vec, dest, r);
            return;
        }
        int size = m is Mnemonic.Psllw or Mnemonic.Psrlw or Mnemonic.Psraw ? 2 : m is Mnemonic.Pslld or Mnemonic.Psrld or Mnemonic.Psrad ? 4 : 8;
        int bits = size * 8;
        for (int k = 0; k < 16 / size; k++)
        {
            ulong value;
            if (m is Mnemonic.Psraw or Mnemonic.Psrad)
                value = (ulong)(Lane(a, k, size, true) >> (int)Math.Min(count, (ulong)bits - 1));
            else if (count >= (ulong)bits)
                value = 0;
            else
                value = m is Mnemonic.Psllw or Mnemonic.Pslld or Mnemonic.Psllq
                    ? (ulong)Lane(a, k, size, false) << (int)count
                    : (ulong)Lane(a, k, size, false) >> (int)count;
            SetLane(r, k, size, value);
        }
        VectorRegisters.WriteLegacy(Vec, dest, r);
    }

    /// <summary>
    /// PADDUS/PADDS/PSUBUS/PSUBS B/W (saturating), PAVGB/PAVGW ((a + b + 1) >> 1) and PSADBW (the sums of absolute byte
    /// differences of each half, zero-extended into its quadword).
    /// </summary>
    private void PackedSaturating(in Instruction i)
    {
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16], r = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        ReadXmmSource(i, 1, b, 16);
        var m = i.Mnemonic;
        if (m == Mnemonic.Psadbw)
        {
            r.Clear();
            for (int half = 0; half < 2; half++)
            {
                ulong sum = 0;
                for (int k = 0; k < 8; k++) sum += (ulong)Math.Abs(a[half * 8 + k] - b[half * 8 + k]);
                SetLane(r, half, 8, sum);
            }
            VectorRegisters.WriteLegacy(Vec, dest, r);
            return;
        }
        int size = m is Mnemonic.Paddusb or Mnemonic.Paddsb or Mnemonic.Psubusb or Mnemonic.Psubsb or Mnemonic.Pavgb ? 1 : 2;
        bool signed = m is Mnemonic.Paddsb or Mnemonic.Paddsw or Mnemonic.Psubsb or Mnemonic.Psubsw;
        long min = signed ? -(1L << (size * 8 - 1)) : 0, max = signed ? (1L << (size * 8 - 1)) - 1 : (1L << (size * 8)) - 1;
        for (int k = 0; k < 16 / size; k++)
        {
            long x = Lane(a, k, size, signed), y = Lane(b, k, size, signed);
            long v = m switch
            {
                Mnemonic.Pavgb or Mnemonic.Pavgw => (x + y + 1) >> 1,
                Mnemonic.Paddusb or Mnemonic.Paddusw or Mnemonic.Paddsb or Mnemonic.Paddsw => Saturate(x + y, min, max),
                _ => Saturate(x - y, min, max),
            };
            SetLane(r, k, size, (ulong)v);
        }
        VectorRegisters.WriteLegacy(Vec, dest, r);
    }

    /// <summary>PEXTRW r32/r64, xmm, imm8 (word imm8[2:0], zero-extended) and PINSRW xmm, r32/m16, imm8.</summary>
    private void InsertExtractWord(in Instruction i)
    {
        int sel = (int)(i.GetImmediate(2) & 7);
        if (i.Mnemonic == Mnemonic.Pextrw)
        {
            WriteReg(i.Op0Register, (ulong)Lane(VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(1))), sel, 2, false));
            return;
        }
        ulong value = i.GetOpKind(1) == OpKind.Register ? ReadReg(i.GetOpRegister(1)) : ReadOp(i, 1, 2);
        int n = VectorIndex(i.Op0Register);
        Span<byte> v = stackalloc byte[16];
        VectorRegisters.Read(Vec, n, v);
        SetLane(v, sel, 2, value & 0xffff);
        VectorRegisters.WriteLegacy(Vec, n, v);
    }

    /// <summary>PMOVMSKB r32/r64, xmm: the sign bit of each byte, zero-extended.</summary>
    private void ByteMask(in Instruction i)
    {
        ReadOnlySpan<byte> v = VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(1)));
        ulong mask = 0;
        for (int k = 0; k < 16; k++) mask |= (ulong)(v[k] >> 7) << k;
        WriteReg(i.Op0Register, mask);
    }
}
