// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The Advanced SIMD cryptographic extension (Arm ARM DDI 0487 C4.1 "Cryptographic AES", "Cryptographic three-register
/// SHA", "Cryptographic two-register SHA"; C7.2 and the shared pseudocode of each instruction): AESE, AESD, AESMC,
/// AESIMC (FEAT_AES, ID_AA64ISAR0_EL1.AES bits 7:4 ≥ 1), SHA1C, SHA1P, SHA1M, SHA1SU0, SHA1H, SHA1SU1 (FEAT_SHA1,
/// SHA1 bits 11:8 ≥ 1) and SHA256H, SHA256H2, SHA256SU0, SHA256SU1 (FEAT_SHA256, SHA2 bits 15:12 ≥ 1). Every preset
/// advertises all three (Arm64HostCpu.Aa64Isar0: AES 2, SHA1 1, SHA2 1). A feature the model's register lacks, a size
/// other than 00 or an unallocated opcode is UNDEFINED, before CheckFPAdvSIMDEnabled64. The AES S-boxes and GF(2^8)
/// product are those of the SVE2 forms (A64Interpreter.Sve2Crypto.cs). Reached through <see cref="TrySimdEstimates"/>.
/// The Armv8.2 extensions SHA512, SHA3, SM3 and SM4 are in A64Interpreter.SimdCryptoExtensions.cs and .SimdSm3Sm4.cs.
/// </summary>
internal sealed partial class A64Interpreter
{
    private bool TrySimdCrypto(uint insn)
    {
        ulong isar0 = cpu.IdRegs.Model.Aa64Isar0;
        // Cryptographic AES: 01001110 size 10100 opcode 10 Rn Rd; AESE 00100, AESD 00101, AESMC 00110, AESIMC 00111.
        if ((insn & 0xFF3E_0C00) == 0x4E28_0800)
        {
            uint opcode = (insn >> 12) & 31;
            if (((insn >> 22) & 3) != 0 || opcode is < 4 or > 7 || ((isar0 >> 4) & 0xF) < 1) return UndefinedTrue();
            if (FpTrapped()) return true;
            AdvSimdAes(insn, opcode);
            return true;
        }
        // Cryptographic three-register SHA: 01011110 size 0 Rm 0 opcode 00 Rn Rd (opcode 000–011 SHA1, 100–110 SHA256).
        if ((insn & 0xFF20_8C00) == 0x5E00_0000)
        {
            uint opcode = (insn >> 12) & 7;
            int field = opcode < 4 ? 8 : 12;
            if (((insn >> 22) & 3) != 0 || opcode == 7 || ((isar0 >> field) & 0xF) < 1) return UndefinedTrue();
            if (FpTrapped()) return true;
            Sha3Reg(insn, opcode);
            return true;
        }
        // Cryptographic two-register SHA: 01011110 size 10100 opcode 10 Rn Rd; SHA1H 00000, SHA1SU1 00001, SHA256SU0 00010.
        if ((insn & 0xFF3E_0C00) == 0x5E28_0800)
        {
            uint opcode = (insn >> 12) & 31;
            int field = opcode < 2 ? 8 : 12;
            if (((insn >> 22) & 3) != 0 || opcode > 2 || ((isar0 >> field) & 0xF) < 1) return UndefinedTrue();
            if (FpTrapped()) return true;
            Sha2Reg(insn, opcode);
            return true;
        }
        return false;
    }

    /// <summary>
    /// AESE: AESSubBytes(AESShiftRows(Vd ⊕ Vn)); AESD: AESInvSubBytes(AESInvShiftRows(Vd ⊕ Vn)); AESMC /
    /// AESIMC: AESMixColumns / AESInvMixColumns(Vn) (byte i of the ShiftRows result is byte (i + 4 × (i MOD 4)) MOD 16;
    /// column c is bytes 4c … 4c + 3, multiplied by the circulant {2, 3, 1, 1} or {14, 11, 13, 9}).
    /// </summary>
    private void AdvSimdAes(uint insn, uint opcode)
    {
        int rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], result = 0;
        if (opcode < 6)
        {
            bool decrypt = opcode == 5;
            UInt128 x = cpu.Vregs[rd] ^ n;
            var box = decrypt ? AesSbox.Inverse : AesSbox.Forward;
            for (int i = 0; i < 16; i++)
            {
                int src = ((decrypt ? i - 4 * (i % 4) : i + 4 * (i % 4)) + 16) % 16;
                result = WithElem(result, i, 8, box[Elem(x, src, 8)]);
            }
        }
        else
        {
            ReadOnlySpan<byte> coef = opcode == 7 ? [14, 11, 13, 9] : [2, 3, 1, 1];
            for (int c = 0; c < 16; c += 4)
            {
                for (int r = 0; r < 4; r++)
                {
                    byte v = 0;
                    for (int j = 0; j < 4; j++) v ^= GfMul((byte)Elem(n, c + j, 8), coef[(j - r + 4) % 4]);
                    result = WithElem(result, c + r, 8, v);
                }
            }
        }
        SetV(rd, result);
        Next();
    }

    private static uint ShaWord(UInt128 v, int e) => (uint)(v >> (32 * e));

    private static UInt128 ShaVector(uint w0, uint w1, uint w2, uint w3) =>
        ((UInt128)w3 << 96) | ((UInt128)w2 << 64) | ((UInt128)w1 << 32) | w0;

    /// <summary>
    /// SHAchoose and SHAmajority (shared pseudocode), on words (SHA-1, SHA-256) and doublewords (SHA-512,
    /// A64Interpreter.SimdCryptoExtensions.cs).
    /// </summary>
    private static T ShaChoose<T>(T x, T y, T z) where T : IBinaryInteger<T> => ((y ^ z) & x) ^ z;

    private static T ShaMajority<T>(T x, T y, T z) where T : IBinaryInteger<T> => (x & y) | ((x | y) & z);

    /// <summary>
    /// SHA1C/SHA1P/SHA1M (opcode 000/001/010: SHAchoose, SHAparity, SHAmajority): four rounds of X = Qd (a, b, c, d),
    /// Y = Sn (e), W = Vm: Y += ROL(X0, 5) + f(X1, X2, X3) + W[e]; X1 = ROL(X1, 30); ⟨Y, X⟩ = ROL(Y:X, 32). SHA1SU0
    /// (011): (Vn&lt;63:0&gt; : Vd&lt;127:64&gt;) ⊕ Vd ⊕ Vm. SHA256H (100) / SHA256H2 (101): SHA256hash(Qd, Qn, Vm,
    /// part1) / SHA256hash(Qn, Qd, Vm, part2). SHA256SU1 (110): the σ1 message schedule update.
    /// </summary>
    private void Sha3Reg(uint insn, uint opcode)
    {
        int rd = (int)(insn & 31);
        UInt128 d = cpu.Vregs[rd], n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31];
        UInt128 result;
        switch (opcode)
        {
            case <= 2:
            {
                uint x0 = ShaWord(d, 0), x1 = ShaWord(d, 1), x2 = ShaWord(d, 2), x3 = ShaWord(d, 3), y = (uint)n;
                for (int e = 0; e < 4; e++)
                {
                    uint t = opcode switch { 0 => ShaChoose(x1, x2, x3), 1 => x1 ^ x2 ^ x3, _ => ShaMajority(x1, x2, x3) };
                    y += uint.RotateLeft(x0, 5) + t + ShaWord(m, e);
                    x1 = uint.RotateLeft(x1, 30);
                    (y, x0, x1, x2, x3) = (x3, y, x0, x1, x2);
                }
                result = ShaVector(x0, x1, x2, x3);
                break;
            }
            case 3:
                result = ((UInt128)(ulong)n << 64 | (d >> 64)) ^ d ^ m;
                break;
            case 4:
                result = Sha256Hash(d, n, m, part1: true);
                break;
            case 5:
                result = Sha256Hash(n, d, m, part1: false);
                break;
            default:
            {
                UInt128 t0 = ((UInt128)ShaWord(m, 0) << 96) | (n >> 32);
                uint[] r = new uint[4];
                for (int e = 0; e < 4; e++)
                {
                    uint elt = e < 2 ? ShaWord(m, 2 + e) : r[e - 2];
                    elt = uint.RotateRight(elt, 17) ^ uint.RotateRight(elt, 19) ^ (elt >> 10);
                    r[e] = elt + ShaWord(d, e) + ShaWord(t0, e);
                }
                result = ShaVector(r[0], r[1], r[2], r[3]);
                break;
            }
        }
        SetV(rd, result);
        Next();
    }

    /// <summary>
    /// SHA256hash(x, y, w, part1): four rounds of t = y3 + Σ1(y0) + SHAchoose(y0, y1, y2) + w[e]; x3 += t;
    /// y3 = t + Σ0(x0) + SHAmajority(x0, x1, x2); ⟨y, x⟩ = ROL(y:x, 32); x (part1) or y.
    /// </summary>
    private static UInt128 Sha256Hash(UInt128 xIn, UInt128 yIn, UInt128 w, bool part1)
    {
        uint x0 = ShaWord(xIn, 0), x1 = ShaWord(xIn, 1), x2 = ShaWord(xIn, 2), x3 = ShaWord(xIn, 3);
        uint y0 = ShaWord(yIn, 0), y1 = ShaWord(yIn, 1), y2 = ShaWord(yIn, 2), y3 = ShaWord(yIn, 3);
        for (int e = 0; e < 4; e++)
        {
            uint chs = ShaChoose(y0, y1, y2), maj = ShaMajority(x0, x1, x2);
            uint sigma1 = uint.RotateRight(y0, 6) ^ uint.RotateRight(y0, 11) ^ uint.RotateRight(y0, 25);
            uint sigma0 = uint.RotateRight(x0, 2) ^ uint.RotateRight(x0, 13) ^ uint.RotateRight(x0, 22);
            uint t = y3 + sigma1 + chs + ShaWord(w, e);
            x3 = t + x3;
            y3 = t + sigma0 + maj;
            // ROL(y:x, 32): y3 moves into x0, x3 into y0.
            (x0, x1, x2, x3, y0, y1, y2, y3) = (y3, x0, x1, x2, x3, y0, y1, y2);
        }
        return part1 ? ShaVector(x0, x1, x2, x3) : ShaVector(y0, y1, y2, y3);
    }

    /// <summary>
    /// SHA1H (00000): Sd = ROL(Sn, 30). SHA1SU1 (00001): T = Vd ⊕ (Vn &gt;&gt; 32); W0..W2 = ROL(T0..T2, 1), W3 =
    /// ROL(T3, 1) ⊕ ROL(T0, 2). SHA256SU0 (00010): T = Vn&lt;31:0&gt; : Vd&lt;127:32&gt;, each word σ0(T[e]) + Vd[e].
    /// </summary>
    private void Sha2Reg(uint insn, uint opcode)
    {
        int rd = (int)(insn & 31);
        UInt128 d = cpu.Vregs[rd], n = cpu.Vregs[(insn >> 5) & 31];
        UInt128 result;
        if (opcode == 0)
        {
            result = uint.RotateLeft((uint)n, 30);
        }
        else if (opcode == 1)
        {
            UInt128 t = d ^ (n >> 32);
            uint t0 = ShaWord(t, 0);
            result = ShaVector(uint.RotateLeft(t0, 1), uint.RotateLeft(ShaWord(t, 1), 1), uint.RotateLeft(ShaWord(t, 2), 1),
                uint.RotateLeft(ShaWord(t, 3), 1) ^ uint.RotateLeft(t0, 2));
        }
        else
        {
            UInt128 t = ((UInt128)(uint)n << 96) | (d >> 32);
            result = 0;
            for (int e = 0; e < 4; e++)
            {
                uint elt = ShaWord(t, e);
                elt = uint.RotateRight(elt, 7) ^ uint.RotateRight(elt, 18) ^ (elt >> 3);
                result |= (UInt128)(elt + ShaWord(d, e)) << (32 * e);
            }
        }
        SetV(rd, result);
        Next();
    }
}
