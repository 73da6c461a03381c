// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The Armv8.2 Advanced SIMD cryptographic extensions SHA512, SHA3, SM3 and SM4 (A64Interpreter.SimdCryptoExtensions.cs,
/// .SimdSm3Sm4.cs): every instruction as GNU assembly on <see cref="Arm64SveBf16Tests"/>'s 64 data windows (V0–V2 the
/// low 128 bits of Z0–Z2, V4 of Z4), compared bit for bit (all of Z0, so the zeroed upper bits too) with qemu-aarch64
/// -cpu max at 128- and 512-bit vectors; known answers from a C program built with the ACLE intrinsics
/// (vsha512hq_u64 …, vsm3tt1aq_u32 …, vsm4eq_u32 …, veor3q_u64 …): the FIPS 180-4 SHA-512 digest of "abc", the
/// GB/T 32905 SM3 digest of "abc", the GB/T 32907 SM4 example and the FIPS 202 SHA3-256 digest of "abc", on the emulator (V1 with SVE2, and V2) and under qemu; and the decode
/// gate: the op0 = 1100 row decoded as objdump decodes it, each instruction UNDEFINED (EC 0x00) before the
/// CPACR_EL1.FPEN trap on a host whose ID_AA64ISAR0_EL1 lacks its feature, FPEN-trapped (EC 0x07) and executed (with
/// values qemu gave) on Neoverse V1 and V2, and the unallocated encodings UNDEFINED everywhere.
/// </summary>
public class Arm64SimdCryptoExtensionTests
{
    /// <summary>V<paramref name="r"/> (a field value with bit 4 set) = V<paramref name="src"/> around <paramref name="insn"/>, saved and restored on the stack.</summary>
    private static string WithV(int r, int src, string insn) => $"str q{r}, [sp, #-16]!\nmov v{r}.16b, v{src}.16b\n{insn}\nldr q{r}, [sp], #16";

    /// <summary>
    /// A four-register form (EOR3, BCAX, SM3SS1) followed by MOV V0, V0: qemu 7.2's disas_crypto_four_reg writes the
    /// two doublewords without clearing the Z register above 128 bits (the Arm ARM's V[d] = result zeroes them; qemu
    /// fixed it in "target/arm: Convert Cryptographic 4-register to decodetree", 2024), so the MOV, which zeroes them
    /// on both, keeps the 512-bit digests comparable. The emulator's zeroing for these is asserted in
    /// <see cref="Each_instruction_zeroes_the_z_register_above_128_bits"/>.
    /// </summary>
    private static string FourReg(string insn) => insn + "\nmov v0.16b, v0.16b";

    private static readonly string[] Cases =
    [
        "sha512h q0, q1, v2.2d",
        "sha512h2 q0, q1, v2.2d",
        "sha512su0 v0.2d, v1.2d",
        "sha512su1 v0.2d, v1.2d, v2.2d",
        "sha512h q0, q0, v0.2d",
        "sha512h2 q0, q2, v1.2d",
        "sha512su1 v0.2d, v0.2d, v0.2d",
        WithV(17, 2, "sha512h q0, q1, v17.2d"),
        WithV(17, 1, "sha512su0 v0.2d, v17.2d"),
        FourReg("eor3 v0.16b, v1.16b, v2.16b, v4.16b"),
        FourReg("eor3 v0.16b, v0.16b, v0.16b, v1.16b"),
        FourReg("bcax v0.16b, v1.16b, v2.16b, v4.16b"),
        FourReg("bcax v0.16b, v0.16b, v1.16b, v0.16b"),
        FourReg(WithV(17, 4, "eor3 v0.16b, v1.16b, v2.16b, v17.16b")),
        FourReg(WithV(17, 4, "bcax v0.16b, v17.16b, v2.16b, v1.16b")),
        "rax1 v0.2d, v1.2d, v2.2d",
        "rax1 v0.2d, v0.2d, v0.2d",
        "xar v0.2d, v1.2d, v2.2d, #0",
        "xar v0.2d, v1.2d, v2.2d, #1",
        "xar v0.2d, v1.2d, v2.2d, #10",
        "xar v0.2d, v1.2d, v2.2d, #63",
        "xar v0.2d, v0.2d, v4.2d, #32",
        FourReg("sm3ss1 v0.4s, v1.4s, v2.4s, v4.4s"),
        FourReg(WithV(17, 4, "sm3ss1 v0.4s, v1.4s, v2.4s, v17.4s")),
        "sm3tt1a v0.4s, v1.4s, v2.s[0]",
        "sm3tt1a v0.4s, v1.4s, v2.s[3]",
        "sm3tt1b v0.4s, v1.4s, v2.s[1]",
        "sm3tt1b v0.4s, v1.4s, v2.s[2]",
        "sm3tt2a v0.4s, v1.4s, v2.s[2]",
        "sm3tt2a v0.4s, v1.4s, v2.s[3]",
        "sm3tt2b v0.4s, v1.4s, v2.s[0]",
        "sm3tt2b v0.4s, v1.4s, v2.s[1]",
        WithV(17, 0, "sm3tt2b v17.4s, v1.4s, v2.s[2]\nmov v0.16b, v17.16b"),
        "sm3partw1 v0.4s, v1.4s, v2.4s",
        "sm3partw2 v0.4s, v1.4s, v2.4s",
        "sm3partw1 v0.4s, v0.4s, v0.4s",
        "sm4e v0.4s, v1.4s",
        "sm4e v0.4s, v0.4s",
        WithV(17, 1, "sm4e v0.4s, v17.4s"),
        "sm4ekey v0.4s, v1.4s, v2.4s",
        "sm4ekey v0.4s, v0.4s, v0.4s",
        // A chain as a hash loop uses them: two SHA-512 rounds and a schedule step, an SM3 round, an SM4 key and round.
        "sha512su0 v4.2d, v1.2d\nsha512h q0, q1, v2.2d\nsha512su1 v4.2d, v2.2d, v0.2d\nsha512h2 q0, q4, v1.2d",
        "sm3ss1 v5.4s, v0.4s, v1.4s, v2.4s\nsm3tt1a v0.4s, v5.4s, v4.s[1]\nsm3tt2b v1.4s, v5.4s, v2.s[1]\neor v0.16b, v0.16b, v1.16b",
        "sm4ekey v5.4s, v1.4s, v2.4s\nsm4e v0.4s, v5.4s",
    ];

    /// <summary>The assembler directives that let the cases assemble in a build for armv9-a+bf16+i8mm (<see cref="Arm64SveBf16Tests.Build"/>).</summary>
    private const string Extensions = ".arch_extension sha3\n.arch_extension sm4\n";

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> CasesBuilt =
        new(() => Build([.. Cases.Select(c => Extensions + c)], "simd-cryptoext"));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void The_crypto_extension_instructions_give_the_values_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(CasesBuilt.Value, Names(Cases), bits);

    /// <summary>
    /// One 128-byte SHA-512 block ("abc" padded, FIPS 180-4 5.1.2) through SHA512H/H2/SU0/SU1 (two rounds per
    /// SHA512H + SHA512H2 pair, the message schedule two words per SU0 + SU1), one 64-byte SM3 block ("abc") through
    /// SM3PARTW1/2 (the expansion), SM3SS1 and SM3TT1A/B, SM3TT2A/B (one round each), and the GB/T 32907 example
    /// through SM4EKEY (8 × 4 round keys) and SM4E (8 × 4 rounds), and one Keccak-f[1600] permutation of the padded
    /// SHA3-256 block "abc" (FIPS 202; θ through EOR3 and RAX1, ρ and π through XAR, χ through BCAX, one lane per
    /// vector); kat[i] the digest / ciphertext as 64-bit big-endian words.
    /// </summary>
    private const string KatSource = """
        #include <arm_neon.h>
        static const uint64_t K512[80] = {
            0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
            0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
            0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
            0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
            0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
            0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
            0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
            0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
            0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
            0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
            0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
            0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
            0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
            0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
            0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
            0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
            0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
            0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
            0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
            0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
        };
        static const uint64_t sha512_iv[8] = { 0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
                                               0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL };
        static const uint32_t sm3_iv[8] = { 0x7380166fu, 0x4914b2b9u, 0x172442d7u, 0xda8a0600u, 0xa96f30bcu, 0x163138aau, 0xe38dee4du, 0xb0fb0e4eu };
        static const uint8_t abc128[128] = { 'a', 'b', 'c', 0x80, [127] = 24 }, abc64[64] = { 'a', 'b', 'c', 0x80, [63] = 24 };
        static const uint8_t sm4_key[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10 };
        static const uint32_t sm4_fk[4] = { 0xa3b1bac6u, 0x56aa3350u, 0x677d9197u, 0xb27022dcu };
        static void sha512_block(uint64_t st[8], const uint8_t *blk)
        {
            uint64x2_t ab = vld1q_u64(st), cd = vld1q_u64(st + 2), ef = vld1q_u64(st + 4), gh = vld1q_u64(st + 6), w[8];
            for (int i = 0; i < 8; i++) w[i] = vreinterpretq_u64_u8(vrev64q_u8(vld1q_u8(blk + 16 * i)));
            for (int t = 0; t < 40; t++)
            {
                uint64x2_t kw = vaddq_u64(w[t % 8], vld1q_u64(K512 + 2 * t));
                uint64x2_t t1 = vsha512hq_u64(vaddq_u64(gh, vextq_u64(kw, kw, 1)), vextq_u64(ef, gh, 1), vextq_u64(cd, ef, 1));
                uint64x2_t nef = vaddq_u64(cd, t1), nab = vsha512h2q_u64(t1, cd, ab);
                gh = ef; ef = nef; cd = ab; ab = nab;
                if (t < 32)
                    w[t % 8] = vsha512su1q_u64(vsha512su0q_u64(w[t % 8], w[(t + 1) % 8]), w[(t + 7) % 8], vextq_u64(w[(t + 4) % 8], w[(t + 5) % 8], 1));
            }
            vst1q_u64(st, vaddq_u64(vld1q_u64(st), ab)); vst1q_u64(st + 2, vaddq_u64(vld1q_u64(st + 2), cd));
            vst1q_u64(st + 4, vaddq_u64(vld1q_u64(st + 4), ef)); vst1q_u64(st + 6, vaddq_u64(vld1q_u64(st + 6), gh));
        }
        #define SM3_ROUND(L, TT1, TT2) \
            { uint32_t tj = j < 16 ? 0x79cc4519u : 0x7a879d8au; tj = (tj << (j % 32)) | (tj >> ((32 - j % 32) % 32)); \
              uint32x4_t ss1 = vsm3ss1q_u32(abcd, efgh, vsetq_lane_u32(tj, vdupq_n_u32(0), 3)); \
              abcd = TT1(abcd, ss1, wp, L); efgh = TT2(efgh, ss1, wj, L); j++; }
        #define SM3_ROUNDS(TT1, TT2) SM3_ROUND(0, TT1, TT2) SM3_ROUND(1, TT1, TT2) SM3_ROUND(2, TT1, TT2) SM3_ROUND(3, TT1, TT2)
        static void sm3_block(uint32_t st[8], const uint8_t *blk)
        {
            uint32x4_t w[17];
            for (int i = 0; i < 4; i++) w[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(blk + 16 * i)));
            for (int k = 4; k < 17; k++)
                w[k] = vsm3partw2q_u32(vsm3partw1q_u32(w[k - 4], vextq_u32(w[k - 3], w[k - 2], 3), w[k - 1]),
                                       vextq_u32(w[k - 2], w[k - 1], 2), vextq_u32(w[k - 4], w[k - 3], 3));
            uint32x4_t abcd = { st[3], st[2], st[1], st[0] }, efgh = { st[7], st[6], st[5], st[4] }, abcd0 = abcd, efgh0 = efgh;
            int j = 0;
            for (int k = 0; k < 16; k++)
            {
                uint32x4_t wj = w[k], wp = veorq_u32(w[k], w[k + 1]);
                if (k < 4) { SM3_ROUNDS(vsm3tt1aq_u32, vsm3tt2aq_u32) } else { SM3_ROUNDS(vsm3tt1bq_u32, vsm3tt2bq_u32) }
            }
            abcd = veorq_u32(abcd, abcd0); efgh = veorq_u32(efgh, efgh0);
            for (int i = 0; i < 4; i++) { st[i] = abcd[3 - i]; st[4 + i] = efgh[3 - i]; }
        }
        static void sm4_encrypt(uint8_t out[16], const uint8_t key[16], const uint8_t in[16])
        {
            uint32x4_t rk[8], k = veorq_u32(vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(key))), vld1q_u32(sm4_fk));
            for (int i = 0; i < 8; i++)
            {
                uint32_t ck[4];
                for (int e = 0; e < 4; e++) { uint32_t c = 0; for (int b = 0; b < 4; b++) c = c << 8 | (uint8_t)((16 * i + 4 * e + b) * 7); ck[e] = c; }
                k = rk[i] = vsm4ekeyq_u32(k, vld1q_u32(ck));
            }
            uint32x4_t x = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(in)));
            for (int i = 0; i < 8; i++) x = vsm4eq_u32(x, rk[i]);
            x = vrev64q_u32(x); x = vextq_u32(x, x, 2);
            vst1q_u8(out, vrev32q_u8(vreinterpretq_u8_u32(x)));
        }
        static const uint64_t keccak_rc[24] = {
            0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
            0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
            0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
            0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
            0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
            0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
        };
        static void keccakf(uint64_t st[25])
        {
            uint64x2_t a[25], b[25], c[5], d[5];
            for (int i = 0; i < 25; i++) a[i] = vdupq_n_u64(st[i]);
            for (int round = 0; round < 24; round++)
            {
                for (int x = 0; x < 5; x++) c[x] = veor3q_u64(veor3q_u64(a[x], a[x + 5], a[x + 10]), a[x + 15], a[x + 20]);
                for (int x = 0; x < 5; x++) d[x] = vrax1q_u64(c[(x + 4) % 5], c[(x + 1) % 5]);
                b[0] = vxarq_u64(a[0], d[0], 0); b[10] = vxarq_u64(a[1], d[1], 63); b[20] = vxarq_u64(a[2], d[2], 2); b[5] = vxarq_u64(a[3], d[3], 36); b[15] = vxarq_u64(a[4], d[4], 37);
                b[16] = vxarq_u64(a[5], d[0], 28); b[1] = vxarq_u64(a[6], d[1], 20); b[11] = vxarq_u64(a[7], d[2], 58); b[21] = vxarq_u64(a[8], d[3], 9); b[6] = vxarq_u64(a[9], d[4], 44);
                b[7] = vxarq_u64(a[10], d[0], 61); b[17] = vxarq_u64(a[11], d[1], 54); b[2] = vxarq_u64(a[12], d[2], 21); b[12] = vxarq_u64(a[13], d[3], 39); b[22] = vxarq_u64(a[14], d[4], 25);
                b[23] = vxarq_u64(a[15], d[0], 23); b[8] = vxarq_u64(a[16], d[1], 19); b[18] = vxarq_u64(a[17], d[2], 49); b[3] = vxarq_u64(a[18], d[3], 43); b[13] = vxarq_u64(a[19], d[4], 56);
                b[14] = vxarq_u64(a[20], d[0], 46); b[24] = vxarq_u64(a[21], d[1], 62); b[9] = vxarq_u64(a[22], d[2], 3); b[19] = vxarq_u64(a[23], d[3], 8); b[4] = vxarq_u64(a[24], d[4], 50);
                for (int y = 0; y < 25; y += 5)
                    for (int x = 0; x < 5; x++) a[y + x] = vbcaxq_u64(b[y + x], b[y + (x + 2) % 5], b[y + (x + 1) % 5]);
                a[0] = veorq_u64(a[0], vdupq_n_u64(keccak_rc[round]));
            }
            for (int i = 0; i < 25; i++) st[i] = vgetq_lane_u64(a[i], 0);
        }
        static uint64_t be64(const uint8_t *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = v << 8 | p[i]; return v; }
        static uint64_t kat[18];
        static void run_kats(void)
        {
            uint64_t h[8]; uint32_t s[8]; uint8_t c[16];
            for (int i = 0; i < 8; i++) { h[i] = sha512_iv[i]; s[i] = sm3_iv[i]; }
            sha512_block(h, abc128);
            sm3_block(s, abc64);
            sm4_encrypt(c, sm4_key, sm4_key);
            for (int i = 0; i < 8; i++) kat[i] = h[i];
            for (int i = 0; i < 4; i++) kat[8 + i] = (uint64_t)s[2 * i] << 32 | s[2 * i + 1];
            kat[12] = be64(c); kat[13] = be64(c + 8);
            uint64_t k[25];
            for (int i = 0; i < 25; i++) k[i] = 0;
            k[0] = 0x06636261ULL; k[16] = 0x8000000000000000ULL;
            keccakf(k);
            // volatile: no SVE REVB loop for the byte swap (A64Interpreter.SvePermute.cs decodes REVB .D as CLASTA).
            for (int i = 0; i < 4; i++) { volatile uint64_t lane = k[i]; kat[14 + i] = __builtin_bswap64(lane); }
        }
        #define KAT(I) __attribute__((noinline)) static uint64_t kat##I(void) { run_kats(); return kat[I]; }
        KAT(0) KAT(1) KAT(2) KAT(3) KAT(4) KAT(5) KAT(6) KAT(7) KAT(8) KAT(9) KAT(10) KAT(11) KAT(12) KAT(13) KAT(14) KAT(15) KAT(16) KAT(17)

        """;

    /// <summary>
    /// SHA-512("abc") (FIPS 180-4 example), SM3("abc") (GB/T 32905 A.1), SM4 of the GB/T 32907 A.1 example and
    /// SHA3-256("abc") (FIPS 202), as 64-bit big-endian words.
    /// </summary>
    private static readonly ulong[] KnownAnswers =
    [
        0xddaf35a193617abaUL, 0xcc417349ae204131UL, 0x12e6fa4e89a97ea2UL, 0x0a9eeee64b55d39aUL,
        0x2192992a274fc1a8UL, 0x36ba3c23a3feebbdUL, 0x454d4423643ce80eUL, 0x2a9ac94fa54ca49fUL,
        0x66c7f0f462eeedd9UL, 0xd1f2d46bdc10e4e2UL, 0x4167c4875cf2f7a2UL, 0x297da02b8f4ba8e0UL,
        0x681edf34d206965eUL, 0x86b3e94f536e4246UL,
        0x3a985da74fe225b2UL, 0x045c172d6bd390bdUL, 0x855f086e3e9d525bUL, 0x46bfe24511431532UL,
    ];

    private static readonly string[] KatNames =
    [
        .. Enumerable.Range(0, 8).Select(i => $"SHA-512(\"abc\") word {i}"), .. Enumerable.Range(0, 4).Select(i => $"SM3(\"abc\") word {i}"),
        "SM4 example ciphertext high", "SM4 example ciphertext low", .. Enumerable.Range(0, 4).Select(i => $"SHA3-256(\"abc\") word {i}"),
    ];

    private static (byte[]?, string?, string?) BuildKats() =>
        Arm64Sve2Tests.BuildCompiledCases(KatSource, Enumerable.Range(0, 18).Select(i => $"kat{i}"), "simd-cryptokat", "-march=armv9-a+sha3+sm4");

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> KatBuilt = new(BuildKats);

    /// <summary>
    /// The known answers from the ACLE-intrinsic program: gcc emitted all 17 instructions (objdump of the guest), the
    /// emulator gives the standard digests and ciphertext on the V1-like CPU with SVE2 and on the Neoverse V2 preset,
    /// and qemu's values agree case by case.
    /// </summary>
    [SkippableFact]
    public void Sha512_sm3_sm4_and_sha3_of_the_standard_examples_give_the_standard_answers()
    {
        var built = KatBuilt.Value;
        Skip.If(built.Guest is null, built.Why);
        string disassembly = Arm64Sve2Tests.DisassembleGuest("simd-cryptokat");
        foreach (string m in new[] { "sha512h", "sha512h2", "sha512su0", "sha512su1", "sm3ss1", "sm3tt1a", "sm3tt1b", "sm3tt2a",
                                     "sm3tt2b", "sm3partw1", "sm3partw2", "sm4e", "sm4ekey", "eor3", "rax1", "xar", "bcax" })
            Assert.Contains($"\t{m}\t", disassembly);
        Assert.Equal(KnownAnswers, Arm64Sve2Tests.RunEmulated(built.Guest!, 128));
        Assert.Equal(KnownAnswers, Arm64Sve2Tests.RunEmulated(built.Guest!, 128, Arm64CpuModel.NeoverseV2));
        Arm64Sve2Tests.CompareWithQemu(built, KatNames, 128);
    }

    /// <summary>V<paramref name="r"/> for the single-instruction tests: byte i = 0x40 r + 0x11 i + (r + 3) i² (mod 256).</summary>
    private static byte[] Input(int r) => [.. Enumerable.Range(0, 16).Select(i => (byte)(0x40 * r + 0x11 * i + i * i * (r + 3)))];

    /// <summary>
    /// Every instruction with Rd 0, Rn 1, Rm 2 (Ra 3), aarch64-linux-gnu-as's word; its feature; V0 after it from
    /// <see cref="Input"/>, as qemu-aarch64 -cpu max (7.2) computed it.
    /// </summary>
    public static TheoryData<uint, string, string> Instructions => new()
    {
        { 0xCE628020, "sha512", "2277690e24d00930c7a888063ae841e6" }, // sha512h q0, q1, v2.2d
        { 0xCE628420, "sha512", "a8d37314aa67a3f79d5c2b497eb70629" }, // sha512h2 q0, q1, v2.2d
        { 0xCEC08020, "sha512", "1f5100642cd748a723cdc3cae52e51b0" }, // sha512su0 v0.2d, v1.2d
        { 0xCE628820, "sha512", "dfc16b9ccf79d86e8a600d2ea5dc9c38" }, // sha512su1 v0.2d, v1.2d, v2.2d
        { 0xCE020C20, "sha3", "223af8bc16a68c48ca5200b45e3e1400" },   // eor3 v0.16b, v1.16b, v2.16b, v3.16b
        { 0xCE628C20, "sha3", "0bbb9575ef474159a2025ded561f7841" },   // rax1 v0.2d, v1.2d, v2.2d
        { 0xCE822820, "sha3", "e009df1ad411d92cf025eb2af41df130" },   // xar v0.2d, v1.2d, v2.2d, #10
        { 0xCE220C20, "sha3", "233ee95c57669dc8db36a9d457765540" },   // bcax v0.16b, v1.16b, v2.16b, v3.16b
        { 0xCE420C20, "sm3", "cf051dea000000000000000000000000" },    // sm3ss1 v0.4s, v1.4s, v2.4s, v3.4s
        { 0xCE42B020, "sm3", "2f68bdcba23ad87cad18904d0ad2a074" },    // sm3tt1a v0.4s, v1.4s, v2.s[3]
        { 0xCE42B420, "sm3", "c3fc5207a23ad87cad18904d0ad2a074" },    // sm3tt1b v0.4s, v1.4s, v2.s[3]
        { 0xCE42B820, "sm3", "b8582573a23ad87c624136b40ad2a074" },    // sm3tt2a v0.4s, v1.4s, v2.s[3]
        { 0xCE42BC20, "sm3", "6bad06f5a23ad87c624136b40ad2a074" },    // sm3tt2b v0.4s, v1.4s, v2.s[3]
        { 0xCE62C020, "sm3", "96c12b7e0da46481f38ce6d56d28e43d" },    // sm3partw1 v0.4s, v1.4s, v2.4s
        { 0xCE62C420, "sm3", "f7827821f6fbb5cc3ccd53c682170130" },    // sm3partw2 v0.4s, v1.4s, v2.4s
        { 0xCEC08420, "sm4", "4b5a1352baf12eaabc4d9bd78f9595f1" },    // sm4e v0.4s, v1.4s
        { 0xCE62C820, "sm4", "f1e1666f062ba03081d6013d8ca27bd8" },    // sm4ekey v0.4s, v1.4s, v2.4s
    };

    /// <summary><see cref="Arm64TestVm.RunningWords"/> of <paramref name="insn"/> on <paramref name="model"/>, V0–V3 from <see cref="Input"/>, CPACR_EL1 = <paramref name="cpacr"/>, run to the first exit.</summary>
    private static (Arm64TestVm Vm, KvmSharp.Vcpu Vcpu) Run(Arm64CpuModel model, uint insn, ulong cpacr)
    {
        var s = Arm64TestVm.RunningWords(model, insn);
        var v = s.AddVcpu();
        for (int r = 0; r < 4; r++) v.SetOneRegBytes(Arm64SimdTests.VRegId(r), Input(r));
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, cpacr);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        return (s, v);
    }

    /// <summary>The vCPU took the exception class <paramref name="ec"/> at the instruction, V0 unchanged.</summary>
    private static void AssertTookException(KvmSharp.Vcpu v, ulong ec)
    {
        Assert.NotEqual(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        Assert.Equal(ec, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
        Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
        Assert.Equal(Input(0), v.GetOneRegBytes(Arm64SimdTests.VRegId(0)));
    }

    /// <summary>
    /// On Neoverse V1 and V2 (ID_AA64ISAR0_EL1 SHA2 = 2, SHA3 = SM3 = SM4 = 1, as the guest reads it) the instruction
    /// gives qemu's value with FP enabled, and with CPACR_EL1.FPEN trapping takes the FP access trap (EC 0x07).
    /// </summary>
    [Theory]
    [MemberData(nameof(Instructions))]
    public void Each_instruction_runs_on_neoverse_v1_and_v2_and_follows_cpacr_fpen(uint insn, string feature, string v0)
    {
        _ = feature;
        foreach (var model in new[] { Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2 })
        {
            foreach (ulong cpacr in new[] { 0x30_0000UL, 0UL })
            {
                var (s, v) = Run(model, insn, cpacr);
                using (s)
                {
                    Assert.Equal(0x111_0000_2000UL, v.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1) & 0xFFF_0000_F000UL);
                    if (cpacr == 0)
                    {
                        AssertTookException(v, 0x07);
                        continue;
                    }
                    Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
                    Assert.Equal(UInt128.Parse(v0, System.Globalization.NumberStyles.HexNumber), Arm64SimdTests.V(v, 0));
                }
            }
        }
    }

    /// <summary>
    /// On an SVE vCPU (Neoverse V1, 256-bit vectors) with Z0–Z3 holding <see cref="Input"/> below 128 bits and 0xA5
    /// above, the instruction writes qemu's value to V0 and zeroes Z0 above 128 bits (Arm ARM V[] assignment: the
    /// CONSTRAINED UNPREDICTABLE Unpredictable_SVEZEROUPPER zeroes them up to the vector length either way).
    /// </summary>
    [Theory]
    [MemberData(nameof(Instructions))]
    public void Each_instruction_zeroes_the_z_register_above_128_bits(uint insn, string feature, string v0)
    {
        _ = feature;
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseV1, insn);
        var v = s.AddVcpu(1u << KvmArm64Constants.KVM_ARM_VCPU_SVE);
        v.FinalizeSve();
        v.SetOneReg(ZCR_EL1, 1);
        for (int r = 0; r < 4; r++)
        {
            byte[] z = new byte[256];
            z.AsSpan(16, 16).Fill(0xA5);
            Input(r).CopyTo(z, 0);
            v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(r, 0), z);
        }
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x30_0000UL);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        byte[] expected = new byte[256];
        BitConverter.TryWriteBytes(expected.AsSpan(0, 8), (ulong)UInt128.Parse(v0, System.Globalization.NumberStyles.HexNumber));
        BitConverter.TryWriteBytes(expected.AsSpan(8, 8), (ulong)(UInt128.Parse(v0, System.Globalization.NumberStyles.HexNumber) >> 64));
        Assert.Equal(expected, v.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0)));
    }

    /// <summary>The model without <paramref name="feature"/>: Neoverse V1 with that ID_AA64ISAR0_EL1 field lowered.</summary>
    private static Arm64CpuModel Without(string feature) => feature switch
    {
        "sha512" => Arm64CpuModel.NeoverseV1 with { Sha2 = 1 },
        "sha3" => Arm64CpuModel.NeoverseV1 with { Sha3 = 0 },
        "sm3" => Arm64CpuModel.NeoverseV1 with { Sm3 = 0 },
        _ => Arm64CpuModel.NeoverseV1 with { Sm4 = 0 },
    };

    /// <summary>
    /// On Neoverse N1, the N1 with PAuth and V1 with the instruction's own ID_AA64ISAR0_EL1 field lowered (SHA2 = 1
    /// for SHA512), the instruction is UNDEFINED (EC 0x00 at it, V0 unchanged) with FP enabled and with
    /// CPACR_EL1.FPEN trapping: "if !HaveSHA512() then UNDEFINED" (HaveSHA3, HaveSM3, HaveSM4) comes in the decode.
    /// </summary>
    [Theory]
    [MemberData(nameof(Instructions))]
    public void Each_instruction_is_undefined_before_the_fp_trap_on_a_host_without_its_feature(uint insn, string feature, string v0)
    {
        _ = v0;
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.WithPointerAuth, Without(feature) })
        {
            foreach (ulong cpacr in new[] { 0x30_0000UL, 0UL })
            {
                var (s, v) = Run(model, insn, cpacr);
                using (s) AssertTookException(v, 0x00);
            }
        }
    }

    /// <summary>
    /// A host with SHA256 and SHA3 but not SHA512, SM3 or SM4 (new Arm64CpuModel { Sha2 = 1, Sha3 = 1 }): the guest
    /// reads ID_AA64ISAR0_EL1.SHA2 = 1, SHA3 = 1; SHA512H, SM3SS1 and SM4E are UNDEFINED while EOR3 (and SHA256H) run.
    /// </summary>
    [Theory]
    [InlineData(0xCE628020u, false)] // sha512h q0, q1, v2.2d
    [InlineData(0xCEC08020u, false)] // sha512su0 v0.2d, v1.2d
    [InlineData(0xCE420C20u, false)] // sm3ss1 v0.4s, v1.4s, v2.4s, v3.4s
    [InlineData(0xCEC08420u, false)] // sm4e v0.4s, v1.4s
    [InlineData(0xCE020C20u, true)]  // eor3 v0.16b, v1.16b, v2.16b, v3.16b
    [InlineData(0x5E024020u, true)]  // sha256h q0, q1, v2.4s
    public void A_host_with_sha3_but_not_sha512_runs_eor3_and_undefines_sha512(uint insn, bool runs)
    {
        var (s, v) = Run(new Arm64CpuModel { Sha2 = 1, Sha3 = 1 }, insn, 0x30_0000UL);
        using (s)
        {
            Assert.Equal(0x1_0000_1000UL, v.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1) & 0xFFF_0000_F000UL);
            if (!runs)
            {
                AssertTookException(v, 0x00);
                return;
            }
            Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.NotEqual(Input(0), v.GetOneRegBytes(Arm64SimdTests.VRegId(0)));
        }
    }

    /// <summary>
    /// Unallocated encodings of the op0 = 1100 row (Arm ARM C4.1; objdump: "undefined") are UNDEFINED on every preset,
    /// also with CPACR_EL1.FPEN trapping.
    /// </summary>
    [Theory]
    [InlineData(0xCE620C20u)] // four-register, Op0 11
    [InlineData(0xCE62CC20u)] // three-register SHA512, O 1 opcode 11
    [InlineData(0xCEC08820u)] // two-register SHA512, opcode 10
    [InlineData(0xCEC08C20u)] // two-register SHA512, opcode 11
    [InlineData(0xCE42F020u)] // three-register imm2 group with bits 15:14 = 11
    [InlineData(0xCE629020u)] // three-register SHA512 group with bits 13:12 = 01
    [InlineData(0xCEA00000u)] // op1 01, op2 01xx
    [InlineData(0xCEC88020u)] // two-register SHA512 group with bit 19 set
    [InlineData(0xCF000000u)] // op1 1x
    public void Unallocated_encodings_of_the_row_are_undefined_before_the_fp_trap(uint insn)
    {
        Assert.Equal(true, A64Interpreter.SimdCryptoExtensionUndefined(insn, Arm64CpuModel.NeoverseV2.Aa64Isar0));
        Arm64TestVm.AssertUndefinedBeforeFpTrap(insn);
    }

    /// <summary>
    /// The decode of the whole op0 = 1100 row against aarch64-linux-gnu-objdump: on 6000 words (random in the row,
    /// and around the two-register SHA512 group, whose fixed bits random words rarely hit) plus each group's words,
    /// objdump's "undefined" is exactly <see cref="A64Interpreter.CryptoExtOp.Unallocated"/> and otherwise its mnemonic
    /// is the decoded instruction; with V2's ID_AA64ISAR0_EL1 every allocated word is defined, with N1's none is.
    /// </summary>
    [SkippableFact]
    public void The_row_decodes_as_objdump_decodes_it()
    {
        var rng = new Random(2701);
        var words = new List<uint>();
        for (int i = 0; i < 3000; i++) words.Add(0xCE00_0000u | (uint)rng.Next(1 << 25));
        for (int i = 0; i < 1500; i++) words.Add(0xCEC0_8000u | (uint)rng.Next(1 << 12));
        for (int i = 0; i < 1500; i++) words.Add((0xCEC0_8000u | (uint)rng.Next(1 << 12)) ^ (1u << rng.Next(12, 25)));
        foreach (uint group in new[] { 0xCE00_0000u, 0xCE20_0000u, 0xCE40_0000u, 0xCE60_0000u, 0xCE80_0000u, 0xCE40_8000u, 0xCE60_8000u })
        {
            for (uint bits = 0; bits < 64; bits++) words.Add(group | (bits << 10) | (uint)rng.Next(1 << 10) | ((uint)rng.Next(32) << 16));
        }
        string dir = Path.Combine(Path.GetTempPath(), $"kvmsharp-cryptorow-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string bin = Path.Combine(dir, "row.bin");
        File.WriteAllBytes(bin, [.. words.SelectMany(BitConverter.GetBytes)]);
        var (code, output) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-objdump", ["-D", "-b", "binary", "-m", "aarch64", bin]);
        Skip.If(code == -1, $"aarch64-linux-gnu-objdump (package binutils-aarch64-linux-gnu) is not available: {output}");
        var lines = output.Split('\n').Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+[0-9a-f]+:\t[0-9a-f]{8} \t")).ToList();
        Assert.Equal(words.Count, lines.Count);
        int allocated = 0;
        for (int i = 0; i < words.Count; i++)
        {
            string objdump = lines[i].Split('\t')[2].Split(' ')[0].Trim();
            var decoded = A64Interpreter.DecodeCryptoExtension(words[i])!.Value.Op;
            string ours = decoded == A64Interpreter.CryptoExtOp.Unallocated ? ".inst" : decoded.ToString().ToLowerInvariant();
            Assert.True(ours == objdump, $"{words[i]:x8}: objdump {lines[i].Trim()}, decoded {decoded}");
            bool unallocated = decoded == A64Interpreter.CryptoExtOp.Unallocated;
            allocated += unallocated ? 0 : 1;
            Assert.Equal(unallocated, A64Interpreter.SimdCryptoExtensionUndefined(words[i], Arm64CpuModel.NeoverseV2.Aa64Isar0));
            Assert.Equal(true, A64Interpreter.SimdCryptoExtensionUndefined(words[i], Arm64CpuModel.NeoverseN1.Aa64Isar0));
        }
        Assert.InRange(allocated, 1000, words.Count - 1000);
        Assert.Null(A64Interpreter.SimdCryptoExtensionUndefined(0x4EA21C20u, Arm64CpuModel.NeoverseV2.Aa64Isar0)); // orr v0.16b, v1.16b, v2.16b
    }
}
