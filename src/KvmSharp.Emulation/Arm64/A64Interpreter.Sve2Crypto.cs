// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The optional SVE2 extensions (Arm ARM DDI 0487 C4.1 "SVE2 bitwise permute", "SVE2 crypto unary operations", "SVE2
/// crypto destructive binary operations", "SVE2 crypto constructive binary operations"; C8.2 pseudocode): BEXT, BDEP,
/// BGRP (FEAT_SVE_BitPerm, ID_AA64ZFR0_EL1.BitPerm bits 19:16 ≥ 1), AESE, AESD, AESMC, AESIMC (FEAT_SVE_AES, AES bits
/// 7:4 ≥ 1; PMULLB/T .Q from .D is FEAT_SVE_PMULL128, AES = 2), RAX1 (FEAT_SVE_SHA3, SHA3 bits 35:32 ≥ 1) and SM4E,
/// SM4EKEY (FEAT_SVE_SM4, SM4 bits 43:40 ≥ 1). Each is UNDEFINED when the emulated host's field says the feature is
/// absent ("if !HaveSVE2BitPerm() then UNDEFINED" …).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>A 4-bit field of the emulated host's ID_AA64ZFR0_EL1.</summary>
    private uint Zfr0Field(int shift) => (uint)(cpu.IdRegs.Model.Aa64Zfr0 >> shift) & 0xF;

    /// <summary>
    /// BEXT (opc 00: the bits of Zn where Zm is 1, packed into the low bits), BDEP (01: the low bits of Zn scattered
    /// to where Zm is 1, 0 elsewhere), BGRP (10: the bits of Zn where Zm is 1 packed low, then those where it is 0)
    /// (01000101 size 0 Zm 1011 opc Zn Zd; opc 11 reserved; C8.2 BEXT, BDEP, BGRP).
    /// </summary>
    private bool Sve2BitPermute(uint insn)
    {
        uint opc = (insn >> 10) & 3;
        if (Zfr0Field(16) < 1 || opc == 3) return false;
        int esz = Esz(insn), bits = 8 * esz;
        var n = Z((int)((insn >> 5) & 31), _z0);
        var m = Z((int)((insn >> 16) & 31), _z1);
        var d = _z2;
        for (int e = 0; e < Elements(esz); e++)
        {
            ulong x = E(n, e, esz), mask = E(m, e, esz), r = 0;
            int k = 0;
            if (opc == 1)
            {
                for (int b = 0; b < bits; b++)
                {
                    if (((mask >> b) & 1) == 0) continue;
                    r |= ((x >> k++) & 1) << b;
                }
            }
            else
            {
                for (int b = 0; b < bits; b++) if (((mask >> b) & 1) != 0) r |= ((x >> b) & 1) << k++;
                if (opc == 2) for (int b = 0; b < bits; b++) if (((mask >> b) & 1) == 0) r |= ((x >> b) & 1) << k++;
            }
            SetE(d, e, esz, r & EMask(esz));
        }
        SetZ((int)(insn & 31), d);
        Next();
        return true;
    }

    /// <summary>RAX1 (01000101 00 1 Zm 11110 1 Zn Zd): Zd.D = Zn.D ⊕ ROL(Zm.D, 1) (C8.2 RAX1).</summary>
    private bool Sve2Rax1(uint insn)
    {
        if (Zfr0Field(32) < 1) return false;
        var n = Z((int)((insn >> 5) & 31), _z0);
        var m = Z((int)((insn >> 16) & 31), _z1);
        for (int e = 0; e < Elements(8); e++)
        {
            ulong y = E(m, e, 8);
            SetE(n, e, 8, E(n, e, 8) ^ (y << 1 | y >> 63));
        }
        SetZ((int)(insn & 31), n);
        Next();
        return true;
    }

    /// <summary>The AES S-box and its inverse (FIPS-197 5.1.1: the GF(2^8) inverse, then the affine map with 0x63).</summary>
    private static readonly (byte[] Forward, byte[] Inverse) AesSbox = BuildAesSbox();

    private static (byte[], byte[]) BuildAesSbox()
    {
        byte[] s = new byte[256], inv = new byte[256];
        for (int x = 0; x < 256; x++)
        {
            byte v = 0;
            if (x != 0) for (int y = 1; y < 256; y++) if (GfMul((byte)x, (byte)y) == 1) { v = (byte)y; break; }
            int b = v, r = b ^ Rol8(b, 1) ^ Rol8(b, 2) ^ Rol8(b, 3) ^ Rol8(b, 4) ^ 0x63;
            s[x] = (byte)r;
            inv[(byte)r] = (byte)x;
        }
        return (s, inv);
    }

    private static int Rol8(int b, int n) => ((b << n) | (b >> (8 - n))) & 0xFF;

    /// <summary>Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (FIPS-197 4.2).</summary>
    private static byte GfMul(byte a, byte b)
    {
        int r = 0, x = a;
        for (int i = 0; i < 8; i++)
        {
            if (((b >> i) & 1) != 0) r ^= x;
            x = (x << 1) ^ ((x & 0x80) != 0 ? 0x11B : 0);
        }
        return (byte)r;
    }

    /// <summary>
    /// AESE (01000101 00 10001 0 11100 0 Zm Zdn): per 128-bit segment AESSubBytes(AESShiftRows(Zdn ⊕ Zm)); AESD (… 1):
    /// AESInvSubBytes(AESInvShiftRows(Zdn ⊕ Zm)) (C8.2 AESE, AESD; shared pseudocode AESShiftRows: byte i of the result
    /// is byte (i + 4 × (i MOD 4)) MOD 16 of the operand, the inverse (i − 4 × (i MOD 4)) MOD 16).
    /// </summary>
    private bool Sve2AesRound(uint insn)
    {
        if (Zfr0Field(4) < 1) return false;
        bool decrypt = ((insn >> 10) & 1) != 0;
        int zdn = (int)(insn & 31);
        var a = Z(zdn, _z0);
        var k = Z((int)((insn >> 5) & 31), _z1);
        var d = _z2;
        var box = decrypt ? AesSbox.Inverse : AesSbox.Forward;
        for (int seg = 0; seg < _vl; seg += 16)
        {
            for (int i = 0; i < 16; i++)
            {
                int src = ((decrypt ? i - 4 * (i % 4) : i + 4 * (i % 4)) + 16) % 16;
                d[seg + i] = box[a[seg + src] ^ k[seg + src]];
            }
        }
        SetZ(zdn, d);
        Next();
        return true;
    }

    /// <summary>
    /// AESMC (01000101 00 10000011100 0 00000 Zdn) and AESIMC (… 1 …): AESMixColumns / AESInvMixColumns of each
    /// 128-bit segment (C8.2; FIPS-197 5.1.3, 5.3.3: column c is bytes 4c … 4c + 3, multiplied by the circulant
    /// {2, 3, 1, 1} or {14, 11, 13, 9}).
    /// </summary>
    private bool Sve2AesMix(uint insn)
    {
        if (Zfr0Field(4) < 1) return false;
        bool inverse = ((insn >> 10) & 1) != 0;
        int zdn = (int)(insn & 31);
        var a = Z(zdn, _z0);
        var d = _z1;
        ReadOnlySpan<byte> coef = inverse ? [14, 11, 13, 9] : [2, 3, 1, 1];
        for (int c = 0; c < _vl; c += 4)
        {
            for (int r = 0; r < 4; r++)
            {
                byte v = 0;
                for (int j = 0; j < 4; j++) v ^= GfMul(a[c + j], coef[(j - r + 4) % 4]);
                d[c + r] = v;
            }
        }
        SetZ(zdn, d);
        Next();
        return true;
    }

    /// <summary>
    /// PMULLB/PMULLT Zd.Q, Zn.D, Zm.D (size 00 of 01000101 size 0 Zm 011 0 1 T Zn Zd, FEAT_SVE_PMULL128): per 128-bit
    /// segment, the 128-bit carry-less product of the doublewords 2s + T of Zn and Zm (C8.2 PMULLB, PMULLT).
    /// </summary>
    private bool Sve2PolyMulLong128(uint insn)
    {
        int t = (int)((insn >> 10) & 1);
        var n = Z((int)((insn >> 5) & 31), _z0);
        var m = Z((int)((insn >> 16) & 31), _z1);
        var d = _z2;
        for (int s = 0; s < _vl / 16; s++)
        {
            ulong x = E(n, 2 * s + t, 8), y = E(m, 2 * s + t, 8), lo = 0, hi = 0;
            for (int i = 0; i < 64; i++)
            {
                if (((y >> i) & 1) == 0) continue;
                lo ^= x << i;
                if (i != 0) hi ^= x >> (64 - i);
            }
            SetE(d, 2 * s, 8, lo);
            SetE(d, 2 * s + 1, 8, hi);
        }
        SetZ((int)(insn & 31), d);
        Next();
        return true;
    }

    /// <summary>The SM4 S-box (GB/T 32907-2016, the block cipher's τ transform; Arm ARM shared pseudocode Sbox()).</summary>
    private static readonly byte[] Sm4Sbox =
    [
        0xD6, 0x90, 0xE9, 0xFE, 0xCC, 0xE1, 0x3D, 0xB7, 0x16, 0xB6, 0x14, 0xC2, 0x28, 0xFB, 0x2C, 0x05,
        0x2B, 0x67, 0x9A, 0x76, 0x2A, 0xBE, 0x04, 0xC3, 0xAA, 0x44, 0x13, 0x26, 0x49, 0x86, 0x06, 0x99,
        0x9C, 0x42, 0x50, 0xF4, 0x91, 0xEF, 0x98, 0x7A, 0x33, 0x54, 0x0B, 0x43, 0xED, 0xCF, 0xAC, 0x62,
        0xE4, 0xB3, 0x1C, 0xA9, 0xC9, 0x08, 0xE8, 0x95, 0x80, 0xDF, 0x94, 0xFA, 0x75, 0x8F, 0x3F, 0xA6,
        0x47, 0x07, 0xA7, 0xFC, 0xF3, 0x73, 0x17, 0xBA, 0x83, 0x59, 0x3C, 0x19, 0xE6, 0x85, 0x4F, 0xA8,
        0x68, 0x6B, 0x81, 0xB2, 0x71, 0x64, 0xDA, 0x8B, 0xF8, 0xEB, 0x0F, 0x4B, 0x70, 0x56, 0x9D, 0x35,
        0x1E, 0x24, 0x0E, 0x5E, 0x63, 0x58, 0xD1, 0xA2, 0x25, 0x22, 0x7C, 0x3B, 0x01, 0x21, 0x78, 0x87,
        0xD4, 0x00, 0x46, 0x57, 0x9F, 0xD3, 0x27, 0x52, 0x4C, 0x36, 0x02, 0xE7, 0xA0, 0xC4, 0xC8, 0x9E,
        0xEA, 0xBF, 0x8A, 0xD2, 0x40, 0xC7, 0x38, 0xB5, 0xA3, 0xF7, 0xF2, 0xCE, 0xF9, 0x61, 0x15, 0xA1,
        0xE0, 0xAE, 0x5D, 0xA4, 0x9B, 0x34, 0x1A, 0x55, 0xAD, 0x93, 0x32, 0x30, 0xF5, 0x8C, 0xB1, 0xE3,
        0x1D, 0xF6, 0xE2, 0x2E, 0x82, 0x66, 0xCA, 0x60, 0xC0, 0x29, 0x23, 0xAB, 0x0D, 0x53, 0x4E, 0x6F,
        0xD5, 0xDB, 0x37, 0x45, 0xDE, 0xFD, 0x8E, 0x2F, 0x03, 0xFF, 0x6A, 0x72, 0x6D, 0x6C, 0x5B, 0x51,
        0x8D, 0x1B, 0xAF, 0x92, 0xBB, 0xDD, 0xBC, 0x7F, 0x11, 0xD9, 0x5C, 0x41, 0x1F, 0x10, 0x5A, 0xD8,
        0x0A, 0xC1, 0x31, 0x88, 0xA5, 0xCD, 0x7B, 0xBD, 0x2D, 0x74, 0xD0, 0x12, 0xB8, 0xE5, 0xB4, 0xB0,
        0x89, 0x69, 0x97, 0x4A, 0x0C, 0x96, 0x77, 0x7E, 0x65, 0xB9, 0xF1, 0x09, 0xC5, 0x6E, 0xC6, 0x84,
        0x18, 0xF0, 0x7D, 0xEC, 0x3A, 0xDC, 0x4D, 0x20, 0x79, 0xEE, 0x5F, 0x3E, 0xD7, 0xCB, 0x39, 0x48,
    ];

    /// <summary>
    /// SM4E (01000101 00 10001 1 11100 0 Zm Zdn) and SM4EKEY (01000101 00 1 Zm 11110 0 Zn Zd): per 128-bit segment,
    /// four rounds over the words d[0..3] of Zdn (SM4EKEY: of Zn) with the round keys (SM4EKEY: constants) m[i] of Zm:
    /// t = τ(d[i+1] ⊕ d[i+2] ⊕ d[i+3] ⊕ m[i]) (indices mod 4), d[i] ⊕= L(t) with L(t) = t ⊕ ROL(t, 2) ⊕ ROL(t, 10) ⊕
    /// ROL(t, 18) ⊕ ROL(t, 24) for SM4E and L'(t) = t ⊕ ROL(t, 13) ⊕ ROL(t, 23) for SM4EKEY (C8.2 SM4E, SM4EKEY).
    /// </summary>
    private bool Sve2Sm4(uint insn, bool key)
    {
        if (Zfr0Field(40) < 1) return false;
        int zd = (int)(insn & 31);
        var d = Z(key ? (int)((insn >> 5) & 31) : zd, _z0);
        var m = Z(key ? (int)((insn >> 16) & 31) : (int)((insn >> 5) & 31), _z1);
        for (int seg = 0; seg < _vl / 4; seg += 4)
        {
            for (int i = 0; i < 4; i++)
            {
                uint x = (uint)(E(d, seg + (i + 1) % 4, 4) ^ E(d, seg + (i + 2) % 4, 4) ^ E(d, seg + (i + 3) % 4, 4) ^ E(m, seg + i, 4));
                uint t = (uint)(Sm4Sbox[x & 0xFF] | Sm4Sbox[(x >> 8) & 0xFF] << 8 | Sm4Sbox[(x >> 16) & 0xFF] << 16 | Sm4Sbox[x >> 24] << 24);
                uint l = key ? t ^ uint.RotateLeft(t, 13) ^ uint.RotateLeft(t, 23)
                             : t ^ uint.RotateLeft(t, 2) ^ uint.RotateLeft(t, 10) ^ uint.RotateLeft(t, 18) ^ uint.RotateLeft(t, 24);
                SetE(d, seg + i, 4, E(d, seg + i, 4) ^ l);
            }
        }
        SetZ(zd, d);
        Next();
        return true;
    }
}
