// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// SSE4.2 PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM xmm1, xmm2/m128, imm8 (Intel SDM Vol. 2B PCMPESTRI … and Vol. 1
/// 4.1 "Imm8 Control Byte Operation for PCMPESTRI / PCMPESTRM / PCMPISTRI / PCMPISTRM"): imm8[1:0] the element format
/// (unsigned/signed bytes/words), [3:2] the aggregation (equal any, ranges, equal each, equal ordered), [5:4] the
/// polarity, [6] the index (least/most significant) or mask (bits/expanded) form. Explicit lengths come from EAX/EDX
/// (RAX/RDX with REX.W), absolute values saturated to the element count; implicit ones end at the first zero element.
/// The result goes to ECX or XMM0; CF = result ≠ 0, ZF/SF = xmm2/xmm1 shorter than the register, OF = result bit 0,
/// AF = PF = 0. The m128 operand needs no alignment (SDM Vol. 2A 2.5, exception type 4 note).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The four string compares; false for any other mnemonic.</summary>
    private bool TrySseString(in Instruction i, ref ulong f)
    {
        if (i.Mnemonic is not (Mnemonic.Pcmpestri or Mnemonic.Pcmpestrm or Mnemonic.Pcmpistri or Mnemonic.Pcmpistrm
            or Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm64)) return false;
        RequireLegacySse(GuestFeatures.Sse42(_cpu));
        PackedStringCompare(i, ref f);
        return true;
    }

    private void PackedStringCompare(in Instruction i, ref ulong f)
    {
        var m = i.Mnemonic;
        int imm = (int)i.GetImmediate(2);
        bool words = (imm & 1) != 0, signed = (imm & 2) != 0;
        int size = words ? 2 : 1, upper = 16 / size;
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16];
        VectorRegisters.Read(Vec, VectorIndex(i.Op0Register), a);
        ReadXmmSource(i, 1, b, 16, aligned: false);
        bool explicitLength = m is Mnemonic.Pcmpestri or Mnemonic.Pcmpestrm or Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm64;
        bool wide = m is Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm64;
        int len1 = explicitLength ? ExplicitLength(Register.RAX, wide, upper) : ImplicitLength(a, size, upper);
        int len2 = explicitLength ? ExplicitLength(Register.RDX, wide, upper) : ImplicitLength(b, size, upper);
        int aggregation = imm >> 2 & 3;
        int res1 = 0;
        for (int j = 0; j < upper; j++) // j: the position in xmm2 (IntRes1 bit j)
        {
            bool bit;
            switch (aggregation)
            {
                case 0: // equal any: xmm2[j] equals some valid xmm1 element
                    bit = false;
                    for (int k = 0; k < len1 && j < len2; k++) bit |= Lane(a, k, size, signed) == Lane(b, j, size, signed);
                    break;
                case 1: // ranges: xmm1[2k] <= xmm2[j] <= xmm1[2k+1] for some valid pair
                    bit = false;
                    for (int k = 0; k + 1 < upper && j < len2; k += 2)
                    {
                        long v = Lane(b, j, size, signed);
                        bool ge = k < len1 && v >= Lane(a, k, size, signed);
                        bool le = k + 1 < len1 && v <= Lane(a, k + 1, size, signed);
                        bit |= ge && le;
                    }
                    break;
                case 2: // equal each: both invalid → true, one invalid → false
                    bit = j >= len1 && j >= len2 || (j < len1 && j < len2 && Lane(a, j, size, signed) == Lane(b, j, size, signed));
                    break;
                default: // equal ordered: the needle xmm1 starts at xmm2[j] (an invalid needle element matches anything)
                    bit = true;
                    for (int k = 0; k < upper - j; k++)
                    {
                        bool needleValid = k < len1, hayValid = j + k < len2;
                        bool match = !needleValid || (hayValid && Lane(a, k, size, signed) == Lane(b, j + k, size, signed));
                        bit &= match;
                    }
                    break;
            }
            if (bit) res1 |= 1 << j;
        }
        int all = (1 << upper) - 1;
        int res2 = (imm >> 4 & 3) switch
        {
            1 => ~res1 & all,
            3 => res1 ^ ((1 << len2) - 1),
            _ => res1,
        };
        bool index = m is Mnemonic.Pcmpestri or Mnemonic.Pcmpistri or Mnemonic.Pcmpestri64;
        bool most = (imm & 0x40) != 0;
        if (index)
        {
            int at = res2 == 0 ? upper : most ? 31 - System.Numerics.BitOperations.LeadingZeroCount((uint)res2) : System.Numerics.BitOperations.TrailingZeroCount(res2);
            WriteReg(Register.ECX, (ulong)at);
        }
        else
        {
            Span<byte> r = stackalloc byte[16];
            r.Clear();
            if (most) for (int k = 0; k < upper; k++) SetLane(r, k, size, (res2 >> k & 1) != 0 ? ulong.MaxValue : 0);
            else SetLane(r, 0, 2, (ulong)res2);
            VectorRegisters.WriteLegacy(Vec, 0, r);
        }
        f = (f & ~RFLAGS_ARITH) | (res2 != 0 ? RFLAGS_CF : 0) | (len2 < upper ? RFLAGS_ZF : 0) | (len1 < upper ? RFLAGS_SF : 0)
            | ((res2 & 1) != 0 ? RFLAGS_OF : 0);
    }

    /// <summary>|EAX| or |RAX| (|EDX|, |RDX|), saturated to <paramref name="upper"/>.</summary>
    private int ExplicitLength(Register full, bool wide, int upper)
    {
        ulong raw = ReadReg(full);
        long v = wide ? (long)raw : (int)raw;
        return v >= upper || v <= -upper ? upper : (int)Math.Abs(v);
    }

    private static int ImplicitLength(ReadOnlySpan<byte> v, int size, int upper)
    {
        for (int k = 0; k < upper; k++)
            if (Lane(v, k, size, false) == 0) return k;
        return upper;
    }
}
