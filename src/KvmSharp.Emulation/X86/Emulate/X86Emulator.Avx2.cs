// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The AVX/AVX2 instructions without a legacy twin that gcc -O2 -march=x86-64-v3 emits for ordinary loops (Intel SDM
/// Vol. 2 per instruction page): VPBROADCASTB/W/D/Q, VBROADCASTSS/SD, VBROADCASTI128/F128, VINSERTI128/F128,
/// VPERM2I128/F128, VPERMQ/VPERMPD, VPERMD/VPERMPS, VPSLLVD/Q, VPSRLVD/Q, VPSRAVD, VPBLENDD, VPMOVSX/ZX (both
/// widths), and the converts that change width across lanes (VCVT(T)PD2DQ/VCVTPD2PS ymm → xmm, VCVTPS2PD/VCVTDQ2PD xmm → ymm). Faults as
/// <see cref="RequireAvx"/> (AVX2 for the ones the SDM lists under AVX2); VEX memory operands need no alignment.
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryAvx2(in Instruction i)
    {
        var m = i.Mnemonic;
        switch (m)
        {
            case Mnemonic.Vpbroadcastb or Mnemonic.Vpbroadcastw or Mnemonic.Vpbroadcastd or Mnemonic.Vpbroadcastq
                or Mnemonic.Vbroadcastss or Mnemonic.Vbroadcastsd or Mnemonic.Vbroadcasti128 or Mnemonic.Vbroadcastf128:
            {
                // SDM VPBROADCAST/VBROADCAST: the low element of xmm/m (m128 for the 128-bit ones) in every element.
                RequireAvx(avx2: m is not (Mnemonic.Vbroadcastf128 or Mnemonic.Vbroadcastss or Mnemonic.Vbroadcastsd) || i.GetOpKind(1) == OpKind.Register);
                int size = m switch
                {
                    Mnemonic.Vpbroadcastb => 1, Mnemonic.Vpbroadcastw => 2, Mnemonic.Vpbroadcastd or Mnemonic.Vbroadcastss => 4,
                    Mnemonic.Vpbroadcastq or Mnemonic.Vbroadcastsd => 8, _ => 16,
                };
                int bytes = i.Op0Register.IsYMM() ? 32 : 16;
                Span<byte> src = stackalloc byte[16], r = stackalloc byte[32];
                if (i.GetOpKind(1) == OpKind.Register) VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), src);
                else AccessMemory(VectorLinear(i, alignment: 1), src[..size], write: false);
                for (int k = 0; k < bytes; k += size) src[..size].CopyTo(r[k..]);
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r[..bytes]);
                return true;
            }
            case Mnemonic.Vinserti128 or Mnemonic.Vinsertf128:
            {
                // SDM VINSERTI128 ymm1, ymm2, xmm3/m128, imm8: ymm2 with the half imm8[0] replaced by xmm3/m128.
                RequireAvx(avx2: m == Mnemonic.Vinserti128);
                Span<byte> r = stackalloc byte[32];
                VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), r);
                ReadVector(i, 2, r.Slice((int)(i.GetImmediate(3) & 1) * 16, 16), alignment: 1);
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r);
                return true;
            }
            case Mnemonic.Vperm2i128 or Mnemonic.Vperm2f128:
            {
                // SDM VPERM2I128 ymm1, ymm2, ymm3/m256, imm8: each half picked by imm8[1:0]/[5:4] from ymm2's/ymm3's
                // halves, zeroed by imm8[3]/[7].
                RequireAvx(avx2: m == Mnemonic.Vperm2i128);
                Span<byte> a = stackalloc byte[64], r = stackalloc byte[32];
                VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), a[..32]);
                ReadVector(i, 2, a[32..], alignment: 1);
                int imm = (int)i.GetImmediate(3);
                for (int h = 0; h < 2; h++)
                {
                    int ctl = imm >> (4 * h);
                    if ((ctl & 8) != 0) r.Slice(16 * h, 16).Clear();
                    else a.Slice(16 * (ctl & 3), 16).CopyTo(r[(16 * h)..]);
                }
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r);
                return true;
            }
            case Mnemonic.Vpermq or Mnemonic.Vpermpd:
            {
                // SDM VPERMQ ymm1, ymm2/m256, imm8: qword k = source qword imm8[2k+1:2k].
                RequireAvx(avx2: true);
                Span<byte> a = stackalloc byte[32], r = stackalloc byte[32];
                ReadVector(i, 1, a, alignment: 1);
                int imm = (int)i.GetImmediate(2);
                for (int k = 0; k < 4; k++) a.Slice(8 * (imm >> (2 * k) & 3), 8).CopyTo(r[(8 * k)..]);
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r);
                return true;
            }
            case Mnemonic.Vpermd or Mnemonic.Vpermps:
            {
                // SDM VPERMD ymm1, ymm2 (indices), ymm3/m256: dword k = ymm3 dword ymm2[k][2:0].
                RequireAvx(avx2: true);
                Span<byte> idx = stackalloc byte[32], a = stackalloc byte[32], r = stackalloc byte[32];
                VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), idx);
                ReadVector(i, 2, a, alignment: 1);
                for (int k = 0; k < 8; k++) a.Slice(4 * (idx[4 * k] & 7), 4).CopyTo(r[(4 * k)..]);
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r);
                return true;
            }
            case Mnemonic.Vpsllvd or Mnemonic.Vpsllvq or Mnemonic.Vpsrlvd or Mnemonic.Vpsrlvq or Mnemonic.Vpsravd:
            {
                // SDM VPSLLVD/Q, VPSRLVD/Q, VPSRAVD dest, src1, src2: each element shifted by src2's element (unsigned);
                // a count ≥ the element width gives 0 (VPSRAVD: the sign in every bit).
                RequireAvx(avx2: true);
                int bytes = i.Op0Register.IsYMM() ? 32 : 16, size = m is Mnemonic.Vpsllvq or Mnemonic.Vpsrlvq ? 8 : 4, bits = size * 8;
                Span<byte> a = stackalloc byte[32], b = stackalloc byte[32], r = stackalloc byte[32];
                VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), a[..bytes]);
                ReadVector(i, 2, b[..bytes], alignment: 1);
                for (int k = 0; k < bytes / size; k++)
                {
                    ulong x = RawLane(a, k, size), c = RawLane(b, k, size);
                    ulong v = m switch
                    {
                        Mnemonic.Vpsravd => (ulong)(Lane(a, k, 4, true) >> (int)Math.Min(c, 31UL)),
                        Mnemonic.Vpsllvd or Mnemonic.Vpsllvq => c >= (ulong)bits ? 0 : x << (int)c,
                        _ => c >= (ulong)bits ? 0 : x >> (int)c,
                    };
                    SetLane(r, k, size, v);
                }
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r[..bytes]);
                return true;
            }
            case Mnemonic.Vpblendd:
            {
                // SDM VPBLENDD dest, src1, src2, imm8: dword k from src2 where imm8[k] is set.
                RequireAvx(avx2: true);
                int bytes = i.Op0Register.IsYMM() ? 32 : 16;
                Span<byte> a = stackalloc byte[32], b = stackalloc byte[32];
                VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), a[..bytes]);
                ReadVector(i, 2, b[..bytes], alignment: 1);
                int imm = (int)i.GetImmediate(3);
                for (int k = 0; k < bytes / 4; k++)
                    if ((imm >> k & 1) != 0) b.Slice(4 * k, 4).CopyTo(a[(4 * k)..]);
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), a[..bytes]);
                return true;
            }
            case Mnemonic.Vpmovsxbw or Mnemonic.Vpmovsxbd or Mnemonic.Vpmovsxbq or Mnemonic.Vpmovsxwd or Mnemonic.Vpmovsxwq or Mnemonic.Vpmovsxdq
                or Mnemonic.Vpmovzxbw or Mnemonic.Vpmovzxbd or Mnemonic.Vpmovzxbq or Mnemonic.Vpmovzxwd or Mnemonic.Vpmovzxwq or Mnemonic.Vpmovzxdq:
            {
                // SDM PMOVSX/PMOVZX (VEX.128 and VEX.256): the low bytes/ratio of xmm2/m, each element extended.
                RequireAvx(avx2: i.Op0Register.IsYMM());
                string n = m.ToString();
                int from = n[7] switch { 'b' => 1, 'w' => 2, _ => 4 }, to = n[8] switch { 'w' => 2, 'd' => 4, _ => 8 };
                bool signed = n[5] == 's'; // Vpmov[sz]x<from><to>
                int bytes = i.Op0Register.IsYMM() ? 32 : 16, count = bytes / to;
                Span<byte> b = stackalloc byte[16], r = stackalloc byte[32];
                if (i.GetOpKind(1) == OpKind.Register) VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), b);
                else AccessMemory(VectorLinear(i, alignment: 1), b[..(count * from)], write: false);
                for (int k = 0; k < count; k++) SetLane(r, k, to, (ulong)Lane(b, k, from, signed));
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r[..bytes]);
                return true;
            }
            case Mnemonic.Vcvttpd2dq or Mnemonic.Vcvtpd2dq or Mnemonic.Vcvtpd2ps when i.GetOpKind(1) == OpKind.Memory ? i.MemorySize.GetSize() == 32 : i.GetOpRegister(1).IsYMM():
            {
                // SDM CVTTPD2DQ/CVTPD2DQ/CVTPD2PS xmm1, ymm2/m256: four doubles narrowed into the low half, bits 255:128 zeroed.
                RequireAvx(avx2: false);
                Span<byte> a = stackalloc byte[32], r = stackalloc byte[16];
                ReadVector(i, 1, a, alignment: 1);
                var math = new SseArithmetic(Vec.Fpu.mxcsr);
                for (int k = 0; k < 4; k++)
                {
                    ulong x = RawLane(a, k, 8);
                    SetLane(r, k, 4, m == Mnemonic.Vcvtpd2ps ? math.Convert(x, FloatFormat.Double, FloatFormat.Single)
                        : math.ToInteger(x, FloatFormat.Double, 4, truncate: m == Mnemonic.Vcvttpd2dq));
                }
                CommitMxcsr(math);
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r);
                return true;
            }
            case Mnemonic.Vcvtps2pd or Mnemonic.Vcvtdq2pd when i.Op0Register.IsYMM():
            {
                // SDM CVTPS2PD/CVTDQ2PD ymm1, xmm2/m128: four floats/dwords widened to doubles (exact but for an SNaN/denormal).
                RequireAvx(avx2: false);
                Span<byte> a = stackalloc byte[16], r = stackalloc byte[32];
                ReadVector(i, 1, a, alignment: 1);
                var math = new SseArithmetic(Vec.Fpu.mxcsr);
                for (int k = 0; k < 4; k++)
                    SetLane(r, k, 8, m == Mnemonic.Vcvtps2pd ? math.Convert(RawLane(a, k, 4), FloatFormat.Single, FloatFormat.Double)
                        : math.FromInteger(Lane(a, k, 4, true), FloatFormat.Double));
                CommitMxcsr(math);
                VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r);
                return true;
            }
            default:
                return false;
        }
    }
}
