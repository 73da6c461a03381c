// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

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
        for (int e = 0; e < Elements(8); e++) SetE(n, e, 8, Rax1(E(n, e, 8), E(m, e, 8)));
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

    /// <summary>
    /// SM4E (01000101 00 10001 1 11100 0 Zm Zdn) and SM4EKEY (01000101 00 1 Zm 11110 0 Zn Zd): per 128-bit segment,
    /// the four rounds of <see cref="Sm4Rounds"/> (A64Interpreter.SimdSm3Sm4.cs, shared with the AdvSIMD forms) over
    /// the state in Zdn (SM4EKEY: Zn) with the round keys (SM4EKEY: the constants CK) in Zm (C8.2 SM4E, SM4EKEY).
    /// </summary>
    private bool Sve2Sm4(uint insn, bool key)
    {
        if (Zfr0Field(40) < 1) return false;
        int zd = (int)(insn & 31);
        var d = Z(key ? (int)((insn >> 5) & 31) : zd, _z0);
        var m = Z(key ? (int)((insn >> 16) & 31) : (int)((insn >> 5) & 31), _z1);
        for (int seg = 0; seg < _vl; seg += 16)
        {
            var state = d.AsSpan(seg, 16);
            BinaryPrimitives.WriteUInt128LittleEndian(state, Sm4Rounds(BinaryPrimitives.ReadUInt128LittleEndian(state),
                BinaryPrimitives.ReadUInt128LittleEndian(m.AsSpan(seg, 16)), key));
        }
        SetZ(zd, d);
        Next();
        return true;
    }
}
