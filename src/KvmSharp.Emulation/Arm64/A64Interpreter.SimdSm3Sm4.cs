// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The AdvSIMD ShangMi instructions decoded by A64Interpreter.SimdCryptoExtensions.cs: SM3SS1, SM3TT1A, SM3TT1B,
/// SM3TT2A, SM3TT2B, SM3PARTW1, SM3PARTW2 (FEAT_SM3; the GB/T 32905-2016 hash's compression and message expansion
/// steps) and SM4E, SM4EKEY (FEAT_SM4; four rounds of the GB/T 32907-2016 block cipher and of its key schedule),
/// after Arm ARM DDI 0487 C7.2 and each instruction's pseudocode. The SM4 S-box and rounds are shared with the SVE2
/// SM4E/SM4EKEY (A64Interpreter.Sve2Crypto.cs); words are 32-bit lanes (<see cref="ShaWord"/>, <see cref="ShaVector"/>).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>SM3SS1 (C7.2): Vd&lt;127:96&gt; = ROL(ROL(Vn3, 12) + Vm3 + Va3, 7), Vd&lt;95:0&gt; = 0.</summary>
    private static UInt128 Sm3Ss1(UInt128 n, UInt128 m, UInt128 a) =>
        ShaVector(0, 0, 0, uint.RotateLeft(uint.RotateLeft(ShaWord(n, 3), 12) + ShaWord(m, 3) + ShaWord(a, 3), 7));

    /// <summary>SM3's permutation P0(x) = x ⊕ ROL(x, 9) ⊕ ROL(x, 17) (GB/T 32905 4.4).</summary>
    private static uint Sm3P0(uint x) => x ^ uint.RotateLeft(x, 9) ^ uint.RotateLeft(x, 17);

    /// <summary>SM3's permutation P1(x) = x ⊕ ROL(x, 15) ⊕ ROL(x, 23) (GB/T 32905 4.4).</summary>
    private static uint Sm3P1(uint x) => x ^ uint.RotateLeft(x, 15) ^ uint.RotateLeft(x, 23);

    /// <summary>
    /// SM3TT1A/SM3TT1B/SM3TT2A/SM3TT2B (C7.2) with the words d0..d3 of Vd, Vn3 and <paramref name="wj"/> = Vm.S[imm2]:
    /// TT1 = FF(d3, d2, d1) + d0 + (Vn3 ⊕ ROL(d3, 12)) + Wj, the result (d1, ROL(d2, 9), d3, TT1); TT2 = GG(d3, d2, d1)
    /// + d0 + Vn3 + Wj, the result (d1, ROL(d2, 19), d3, P0(TT2)). FF and GG are the parity for the A forms, FF the
    /// majority and GG the choice (d3 ? d2 : d1) for the B forms.
    /// </summary>
    private static UInt128 Sm3Tt(CryptoExtOp op, UInt128 d, UInt128 n, uint wj)
    {
        uint d0 = ShaWord(d, 0), d1 = ShaWord(d, 1), d2 = ShaWord(d, 2), d3 = ShaWord(d, 3), n3 = ShaWord(n, 3);
        uint f = op switch
        {
            CryptoExtOp.Sm3Tt1B => ShaMajority(d3, d1, d2),
            CryptoExtOp.Sm3Tt2B => ShaChoose(d3, d2, d1),
            _ => d1 ^ d3 ^ d2,
        };
        return op is CryptoExtOp.Sm3Tt1A or CryptoExtOp.Sm3Tt1B
            ? ShaVector(d1, uint.RotateLeft(d2, 9), d3, f + d0 + (n3 ^ uint.RotateLeft(d3, 12)) + wj)
            : ShaVector(d1, uint.RotateLeft(d2, 19), d3, Sm3P0(f + d0 + n3 + wj));
    }

    /// <summary>
    /// SM3PARTW1 (C7.2): r[i] = d[i] ⊕ n[i] ⊕ ROL(m[i + 1], 15) for i &lt; 3, then r[3] = d[3] ⊕ n[3] ⊕ ROL(P1(r[0]), 15),
    /// and each r[i] through P1.
    /// </summary>
    private static UInt128 Sm3PartW1(UInt128 d, UInt128 n, UInt128 m)
    {
        UInt128 t = d ^ n;
        uint r0 = Sm3P1(ShaWord(t, 0) ^ uint.RotateLeft(ShaWord(m, 1), 15));
        uint r1 = Sm3P1(ShaWord(t, 1) ^ uint.RotateLeft(ShaWord(m, 2), 15));
        uint r2 = Sm3P1(ShaWord(t, 2) ^ uint.RotateLeft(ShaWord(m, 3), 15));
        return ShaVector(r0, r1, r2, Sm3P1(ShaWord(t, 3) ^ uint.RotateLeft(r0, 15)));
    }

    /// <summary>
    /// SM3PARTW2 (C7.2): tmp[i] = n[i] ⊕ ROL(m[i], 7); r = d ⊕ tmp, then r[3] ⊕= P1(ROL(tmp[0], 15)).
    /// </summary>
    private static UInt128 Sm3PartW2(UInt128 d, UInt128 n, UInt128 m)
    {
        UInt128 tmp = n ^ ShaVector(uint.RotateLeft(ShaWord(m, 0), 7), uint.RotateLeft(ShaWord(m, 1), 7),
            uint.RotateLeft(ShaWord(m, 2), 7), uint.RotateLeft(ShaWord(m, 3), 7));
        return (d ^ tmp) ^ ((UInt128)Sm3P1(uint.RotateLeft(ShaWord(tmp, 0), 15)) << 96);
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
    /// Four SM4 rounds (C7.2 SM4E, SM4EKEY; C8.2 the SVE2 forms): round i over the words x0..x3 of
    /// <paramref name="state"/> and the word k[i] of <paramref name="keys"/> computes t = τ(x1 ⊕ x2 ⊕ x3 ⊕ k[i]) (τ: the
    /// S-box on each byte) and shifts the state a word down, x0 ⊕ L(t) entering at x3, with L(t) = t ⊕ ROL(t, 2) ⊕
    /// ROL(t, 10) ⊕ ROL(t, 18) ⊕ ROL(t, 24), or for the key schedule (<paramref name="keySchedule"/>) L'(t) = t ⊕
    /// ROL(t, 13) ⊕ ROL(t, 23).
    /// </summary>
    private static UInt128 Sm4Rounds(UInt128 state, UInt128 keys, bool keySchedule)
    {
        uint x0 = ShaWord(state, 0), x1 = ShaWord(state, 1), x2 = ShaWord(state, 2), x3 = ShaWord(state, 3);
        for (int i = 0; i < 4; i++)
        {
            uint v = x1 ^ x2 ^ x3 ^ ShaWord(keys, i);
            uint t = (uint)(Sm4Sbox[v & 0xFF] | Sm4Sbox[(v >> 8) & 0xFF] << 8 | Sm4Sbox[(v >> 16) & 0xFF] << 16 | Sm4Sbox[v >> 24] << 24);
            uint l = keySchedule ? t ^ uint.RotateLeft(t, 13) ^ uint.RotateLeft(t, 23)
                                 : t ^ uint.RotateLeft(t, 2) ^ uint.RotateLeft(t, 10) ^ uint.RotateLeft(t, 18) ^ uint.RotateLeft(t, 24);
            // The pseudocode's shift: x0 leaves, the new word enters at x3.
            (x0, x1, x2, x3) = (x1, x2, x3, x0 ^ l);
        }
        return ShaVector(x0, x1, x2, x3);
    }
}
