// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The x86-64-v2 additions to the legacy SSE set (Intel SDM Vol. 2 per instruction; the x86-64 psABI's
/// microarchitecture level 2): SSE3, the SSSE3 instructions <see cref="TrySseInteger"/> lacks, SSE4.1 and SSE4.2's
/// PCMPGTQ and CRC32. This file holds the dispatch and the packed-integer forms; the floating-point ones are in
/// X86Emulator.Sse41Float.cs, CRC32 in X86Emulator.Sse42.cs. Fault order as <see cref="RequireLegacySse"/>, gated on
/// the guest CPUID's CPUID.1:ECX bit of each instruction's extension (SSE3 [0], SSSE3 [9], SSE4.1 [19], SSE4.2 [20]);
/// an m128 operand must be 16-byte aligned (#GP(0)) unless MXCSR.MM, except LDDQU's; the narrower memory operands
/// (PMOVSX/ZX, MOVDDUP, INSERTPS, ROUNDSS/SD, PINSR*/PEXTR*) need no alignment (SDM Vol. 2A 2.5, Table 2-19/2-20:
/// exception types 4 and 5). MMX (mm register) forms are not emulated.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The SSE3/SSSE3/SSE4.1/SSE4.2 instructions of this file and its siblings; false for any other.</summary>
    private bool TrySseV2(in Instruction i, ref ulong f)
    {
        if (i.Encoding != EncodingKind.Legacy) return false;
        if (i.Mnemonic == Mnemonic.Crc32)
        {
            if (!GuestFeatures.Sse42(_cpu)) throw new GuestFault(UD_VECTOR); // SDM CRC32: #UD if CPUID.01H:ECX.SSE4_2 = 0
            Crc32(i);
            return true;
        }
        if (!UsesOnlyXmm(i)) return false;
        switch (i.Mnemonic)
        {
            case Mnemonic.Phaddw or Mnemonic.Phaddd or Mnemonic.Phaddsw or Mnemonic.Phsubw or Mnemonic.Phsubd or Mnemonic.Phsubsw
                or Mnemonic.Pmaddubsw or Mnemonic.Pmulhrsw or Mnemonic.Psignb or Mnemonic.Psignw or Mnemonic.Psignd
                or Mnemonic.Pabsb or Mnemonic.Pabsw or Mnemonic.Pabsd:
                RequireLegacySse(GuestFeatures.Ssse3(_cpu));
                PackedIntegerV2(i);
                return true;
            case Mnemonic.Pminsb or Mnemonic.Pmaxsb or Mnemonic.Pminuw or Mnemonic.Pmaxuw or Mnemonic.Pminsd or Mnemonic.Pmaxsd
                or Mnemonic.Pminud or Mnemonic.Pmaxud or Mnemonic.Pmulld or Mnemonic.Pmuldq or Mnemonic.Packusdw or Mnemonic.Pcmpeqq
                or Mnemonic.Pblendw or Mnemonic.Pblendvb or Mnemonic.Mpsadbw or Mnemonic.Phminposuw:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                PackedIntegerV2(i);
                return true;
            case Mnemonic.Pcmpgtq:
                RequireLegacySse(GuestFeatures.Sse42(_cpu));
                PackedIntegerV2(i);
                return true;
            case Mnemonic.Pmovsxbw or Mnemonic.Pmovsxbd or Mnemonic.Pmovsxbq or Mnemonic.Pmovsxwd or Mnemonic.Pmovsxwq or Mnemonic.Pmovsxdq
                or Mnemonic.Pmovzxbw or Mnemonic.Pmovzxbd or Mnemonic.Pmovzxbq or Mnemonic.Pmovzxwd or Mnemonic.Pmovzxwq or Mnemonic.Pmovzxdq:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                PackedExtend(i);
                return true;
            case Mnemonic.Pextrb or Mnemonic.Pextrd or Mnemonic.Extractps:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                ExtractElement(i);
                return true;
            case Mnemonic.Pextrw when i.Code == Code.Pextrw_r32m16_xmm_imm8 || i.Code == Code.Pextrw_r64m16_xmm_imm8:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                ExtractElement(i);
                return true;
            case Mnemonic.Pinsrb or Mnemonic.Pinsrd:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                InsertElement(i);
                return true;
            case Mnemonic.Movntdqa:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                Move128(i, aligned: true, nonTemporal: true);
                return true;
            default:
                return TrySseV2Float(i) || TrySseString(i, ref f);
        }
    }

    /// <summary>xmm1 = op(xmm1, xmm2/m128) for the SSSE3/SSE4.1/SSE4.2 packed-integer forms (imm8 for PBLENDW, MPSADBW).</summary>
    private void PackedIntegerV2(in Instruction i)
    {
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16], r = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        ReadXmmSource(i, 1, b, 16);
        r.Clear();
        var m = i.Mnemonic;
        switch (m)
        {
            case Mnemonic.Phaddw or Mnemonic.Phaddsw or Mnemonic.Phsubw or Mnemonic.Phsubsw or Mnemonic.Phaddd or Mnemonic.Phsubd:
            {
                // SDM PHADDW/PHADDD/PHADDSW/PHSUBW/PHSUBD/PHSUBSW: the low half from xmm1's adjacent pairs, the high from xmm2's;
                // PHSUB subtracts the odd (higher) element from the even one.
                int size = m is Mnemonic.Phaddd or Mnemonic.Phsubd ? 4 : 2;
                bool sub = m is Mnemonic.Phsubw or Mnemonic.Phsubsw or Mnemonic.Phsubd;
                bool saturate = m is Mnemonic.Phaddsw or Mnemonic.Phsubsw;
                int half = 8 / size;
                for (int k = 0; k < 16 / size; k++)
                {
                    ReadOnlySpan<byte> s = k < half ? a : b;
                    int p = 2 * (k % half);
                    long x = Lane(s, p, size, true), y = Lane(s, p + 1, size, true);
                    long v = sub ? x - y : x + y;
                    SetLane(r, k, size, (ulong)(saturate ? Saturate(v, short.MinValue, short.MaxValue) : v));
                }
                break;
            }
            case Mnemonic.Pmaddubsw:
                // SDM PMADDUBSW: xmm1's unsigned bytes times xmm2's signed bytes, adjacent products added with signed saturation.
                for (int k = 0; k < 8; k++)
                {
                    long v = a[2 * k] * (long)(sbyte)b[2 * k] + a[2 * k + 1] * (long)(sbyte)b[2 * k + 1];
                    SetLane(r, k, 2, (ulong)Saturate(v, short.MinValue, short.MaxValue));
                }
                break;
            case Mnemonic.Pmulhrsw:
                // SDM PMULHRSW: ((a × b >> 14) + 1) >> 1, bits 16:1 of the rounded product.
                for (int k = 0; k < 8; k++) SetLane(r, k, 2, (ulong)((((Lane(a, k, 2, true) * Lane(b, k, 2, true)) >> 14) + 1) >> 1));
                break;
            case Mnemonic.Psignb or Mnemonic.Psignw or Mnemonic.Psignd:
            {
                int size = m == Mnemonic.Psignb ? 1 : m == Mnemonic.Psignw ? 2 : 4;
                for (int k = 0; k < 16 / size; k++)
                {
                    long s = Lane(b, k, size, true), x = Lane(a, k, size, true);
                    SetLane(r, k, size, (ulong)(s < 0 ? -x : s == 0 ? 0 : x));
                }
                break;
            }
            case Mnemonic.Pabsb or Mnemonic.Pabsw or Mnemonic.Pabsd:
            {
                // SDM PABSB/W/D: the unsigned absolute value of each source element (0x80 stays 0x80).
                int size = m == Mnemonic.Pabsb ? 1 : m == Mnemonic.Pabsw ? 2 : 4;
                for (int k = 0; k < 16 / size; k++) SetLane(r, k, size, (ulong)Math.Abs(Lane(b, k, size, true)));
                break;
            }
            case Mnemonic.Pminsb or Mnemonic.Pmaxsb or Mnemonic.Pminuw or Mnemonic.Pmaxuw or Mnemonic.Pminsd or Mnemonic.Pmaxsd
                or Mnemonic.Pminud or Mnemonic.Pmaxud:
            {
                int size = m is Mnemonic.Pminsb or Mnemonic.Pmaxsb ? 1 : m is Mnemonic.Pminuw or Mnemonic.Pmaxuw ? 2 : 4;
                bool signed = m is Mnemonic.Pminsb or Mnemonic.Pmaxsb or Mnemonic.Pminsd or Mnemonic.Pmaxsd;
                bool min = m is Mnemonic.Pminsb or Mnemonic.Pminuw or Mnemonic.Pminsd or Mnemonic.Pminud;
                for (int k = 0; k < 16 / size; k++)
                {
                    long x = Lane(a, k, size, signed), y = Lane(b, k, size, signed);
                    SetLane(r, k, size, (ulong)(min ? Math.Min(x, y) : Math.Max(x, y)));
                }
                break;
            }
            case Mnemonic.Pmulld:
                for (int k = 0; k < 4; k++) SetLane(r, k, 4, (ulong)(Lane(a, k, 4, true) * Lane(b, k, 4, true)));
                break;
            case Mnemonic.Pmuldq:
                // SDM PMULDQ: the signed products of dwords 0 and 2, as quadwords.
                for (int k = 0; k < 2; k++) SetLane(r, k, 8, (ulong)(Lane(a, 2 * k, 4, true) * Lane(b, 2 * k, 4, true)));
                break;
            case Mnemonic.Packusdw:
                for (int k = 0; k < 8; k++) SetLane(r, k, 2, (ulong)Saturate(Lane(k < 4 ? a : b, k & 3, 4, true), 0, ushort.MaxValue));
                break;
            case Mnemonic.Pcmpeqq or Mnemonic.Pcmpgtq:
                for (int k = 0; k < 2; k++)
                {
                    long x = Lane(a, k, 8, true), y = Lane(b, k, 8, true);
                    SetLane(r, k, 8, (m == Mnemonic.Pcmpeqq ? x == y : x > y) ? ulong.MaxValue : 0);
                }
                break;
            case Mnemonic.Pblendw:
            {
                int imm = (int)i.GetImmediate(2);
                for (int k = 0; k < 8; k++) SetLane(r, k, 2, (ulong)Lane((imm >> k & 1) != 0 ? b : a, k, 2, false));
                break;
            }
            case Mnemonic.Pblendvb:
            {
                // SDM PBLENDVB xmm1, xmm2/m128, <XMM0>: the byte from xmm2 where XMM0's byte has its top bit set.
                ReadOnlySpan<byte> mask = VectorRegisters.Low(Vec, 0);
                for (int k = 0; k < 16; k++) r[k] = (mask[k] & 0x80) != 0 ? b[k] : a[k];
                break;
            }
            case Mnemonic.Mpsadbw:
            {
                // SDM MPSADBW: eight sums of absolute differences of xmm1's bytes at imm8[2]×4 + k … +3 and xmm2's block imm8[1:0]×4.
                int imm = (int)i.GetImmediate(2);
                int from = (imm >> 2 & 1) * 4, block = (imm & 3) * 4;
                for (int k = 0; k < 8; k++)
                {
                    int sum = 0;
                    for (int j = 0; j < 4; j++) sum += Math.Abs(a[from + k + j] - b[block + j]);
                    SetLane(r, k, 2, (ulong)sum);
                }
                break;
            }
            default: // PHMINPOSUW: the least unsigned word of xmm2 in bits 15:0, its (lowest) index in 18:16, the rest zero
            {
                int at = 0;
                for (int k = 1; k < 8; k++)
                    if (Lane(b, k, 2, false) < Lane(b, at, 2, false)) at = k;
                SetLane(r, 0, 4, (ulong)Lane(b, at, 2, false) | (ulong)at << 16);
                break;
            }
        }
        VectorRegisters.WriteLegacy(Vec, dest, r);
    }

    /// <summary>
    /// PMOVSX/PMOVZX BW/BD/BQ/WD/WQ/DQ xmm1, xmm2/m: the low 16/ratio bytes of the source, each element sign- or
    /// zero-extended (a memory source is that many bytes, no alignment).
    /// </summary>
    private void PackedExtend(in Instruction i)
    {
        var m = i.Mnemonic;
        (int from, int to) = m switch
        {
            Mnemonic.Pmovsxbw or Mnemonic.Pmovzxbw => (1, 2),
            Mnemonic.Pmovsxbd or Mnemonic.Pmovzxbd => (1, 4),
            Mnemonic.Pmovsxbq or Mnemonic.Pmovzxbq => (1, 8),
            Mnemonic.Pmovsxwd or Mnemonic.Pmovzxwd => (2, 4),
            Mnemonic.Pmovsxwq or Mnemonic.Pmovzxwq => (2, 8),
            _ => (4, 8),
        };
        bool signed = m is Mnemonic.Pmovsxbw or Mnemonic.Pmovsxbd or Mnemonic.Pmovsxbq or Mnemonic.Pmovsxwd or Mnemonic.Pmovsxwq or Mnemonic.Pmovsxdq;
        int count = 16 / to;
        Span<byte> b = stackalloc byte[16], r = stackalloc byte[16];
        ReadXmmSource(i, 1, b, count * from);
        for (int k = 0; k < count; k++) SetLane(r, k, to, (ulong)Lane(b, k, from, signed));
        VectorRegisters.WriteLegacy(Vec, VectorIndex(i.Op0Register), r);
    }

    /// <summary>
    /// PEXTRB/PEXTRW (66 0F 3A 15)/PEXTRD/EXTRACTPS r/m, xmm, imm8: the element imm8 selects (modulo the count), stored
    /// as a byte/word/dword in memory or zero-extended into the register.
    /// </summary>
    private void ExtractElement(in Instruction i)
    {
        int size = i.Mnemonic switch { Mnemonic.Pextrb => 1, Mnemonic.Pextrw => 2, _ => 4 };
        int sel = (int)i.GetImmediate(2) & (16 / size - 1);
        ulong value = (ulong)Lane(VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(1))), sel, size, false);
        if (i.GetOpKind(0) == OpKind.Register) WriteReg(i.Op0Register, value);
        else WriteOp(i, 0, size, value);
    }

    /// <summary>PINSRB xmm, r32/m8, imm8[3:0] and PINSRD xmm, r/m32, imm8[1:0]: the element replaced, the rest kept.</summary>
    private void InsertElement(in Instruction i)
    {
        int size = i.Mnemonic == Mnemonic.Pinsrb ? 1 : 4;
        int sel = (int)i.GetImmediate(2) & (16 / size - 1);
        ulong value = i.GetOpKind(1) == OpKind.Register ? ReadReg(i.GetOpRegister(1)) : ReadOp(i, 1, size);
        int n = VectorIndex(i.Op0Register);
        Span<byte> v = stackalloc byte[16];
        VectorRegisters.Read(Vec, n, v);
        SetLane(v, sel, size, value);
        VectorRegisters.WriteLegacy(Vec, n, v);
    }
}
