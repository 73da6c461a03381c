// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SVE2 (A64Interpreter.Sve2*.cs) against qemu-aarch64 (-cpu max,sveN=on, which implements SVE2). One C program,
/// built by aarch64-linux-gnu-gcc -O3 -march=armv9-a twice — hosted (printing one digest per case under qemu) and
/// freestanding (a raw guest on an emulated vCPU whose CPU model advertises ID_AA64ZFR0_EL1.SVEver = 1, writing the
/// digests to guest memory) — holds three kinds of case: (1) hand-written blocks, one SVE2 instruction each (inline
/// asm), run on four windows of data whose bytes are half random and half edge values (0x00, 0x7F, 0x80, 0xFF, 0x01,
/// 0xFE, 0x81, 0x7E, so elements of every size include their saturation limits), with a random governing predicate;
/// the digest covers Z0, P2, NZCV and a scatter buffer; (2) WHILE* on scalar pairs at the signed, unsigned and 32-bit
/// boundaries; (3) ordinary C loops for which gcc emits SVE2 (WHILEWR alias checks, EOR3, BCAX, BSL, NBSL, CADD,
/// SHADD, URHADD, USRA), called with overlapping and disjoint operands. Digests must agree case by case at 128-,
/// 256- and 512-bit vectors. Also: SVE2 encodings are UNDEFINED without SVE and on an SVE-only CPU (Neoverse-V1-like),
/// and follow CPACR_EL1.ZEN like SVE on an SVE2 CPU. Skips, with the reason, without the cross compiler (package
/// gcc-aarch64-linux-gnu) or qemu-aarch64 (package qemu-user).
/// </summary>
public class Arm64Sve2Tests
{
    private const uint SveFeature = 1u << KvmArm64Constants.KVM_ARM_VCPU_SVE;

    /// <summary>The Neoverse-V1-like model with SVE2 (ID_AA64ZFR0_EL1.SVEver = 1) and vectors up to <paramref name="bits"/>.</summary>
    internal static Arm64CpuModel Sve2Cpu(int bits) => Arm64CpuModel.NeoverseV1 with
    {
        Name = $"neoverse-v1+sve2-{bits}", SveMaxVectorLength = bits / 8, SveFeatures = Arm64CpuModel.NeoverseV1.SveFeatures | 1,
    };

    /// <summary>Hand-written blocks: Z0–Z2 (and Z4) from the data, P1 the governing predicate; they write Z0 or P2.</summary>
    private static readonly string[] VectorCases =
    [
        "eor3 z0.d, z0.d, z1.d, z2.d",
        "bcax z0.d, z0.d, z1.d, z2.d",
        "bsl z0.d, z0.d, z1.d, z2.d",
        "bsl1n z0.d, z0.d, z1.d, z2.d",
        "bsl2n z0.d, z0.d, z1.d, z2.d",
        "nbsl z0.d, z0.d, z1.d, z2.d",
        "xar z0.b, z0.b, z1.b, #3",
        "xar z0.h, z0.h, z1.h, #16",
        "xar z0.s, z0.s, z1.s, #7",
        "xar z0.d, z0.d, z1.d, #64",
        "xar z0.d, z0.d, z1.d, #1",
        "shadd z0.b, p1/m, z0.b, z1.b",
        "uhadd z0.h, p1/m, z0.h, z1.h",
        "shsub z0.s, p1/m, z0.s, z1.s",
        "uhsub z0.d, p1/m, z0.d, z1.d",
        "srhadd z0.b, p1/m, z0.b, z1.b",
        "urhadd z0.h, p1/m, z0.h, z1.h",
        "shsubr z0.s, p1/m, z0.s, z1.s",
        "uhsubr z0.b, p1/m, z0.b, z1.b",
        "srhadd z0.d, p1/m, z0.d, z1.d",
        "urhadd z0.d, p1/m, z0.d, z1.d",
        "sqadd z0.b, p1/m, z0.b, z1.b",
        "uqadd z0.h, p1/m, z0.h, z1.h",
        "sqsub z0.s, p1/m, z0.s, z1.s",
        "uqsub z0.d, p1/m, z0.d, z1.d",
        "suqadd z0.b, p1/m, z0.b, z1.b",
        "usqadd z0.h, p1/m, z0.h, z1.h",
        "sqsubr z0.s, p1/m, z0.s, z1.s",
        "uqsubr z0.b, p1/m, z0.b, z1.b",
        "sqadd z0.d, p1/m, z0.d, z1.d",
        "suqadd z0.d, p1/m, z0.d, z1.d",
        "usqadd z0.d, p1/m, z0.d, z1.d",
        "srshl z0.b, p1/m, z0.b, z1.b",
        "urshl z0.h, p1/m, z0.h, z1.h",
        "sqshl z0.s, p1/m, z0.s, z1.s",
        "uqshl z0.d, p1/m, z0.d, z1.d",
        "sqrshl z0.b, p1/m, z0.b, z1.b",
        "uqrshl z0.h, p1/m, z0.h, z1.h",
        "srshlr z0.s, p1/m, z0.s, z1.s",
        "sqshlr z0.h, p1/m, z0.h, z1.h",
        "uqrshlr z0.b, p1/m, z0.b, z1.b",
        "urshl z0.d, p1/m, z0.d, z1.d",
        "sqrshl z0.d, p1/m, z0.d, z1.d",
        "sqshl z0.b, p1/m, z0.b, #3",
        "uqshl z0.h, p1/m, z0.h, #15",
        "srshr z0.s, p1/m, z0.s, #31",
        "urshr z0.d, p1/m, z0.d, #64",
        "sqshlu z0.b, p1/m, z0.b, #7",
        "srshr z0.b, p1/m, z0.b, #1",
        "sqshl z0.d, p1/m, z0.d, #40",
        "sqshlu z0.s, p1/m, z0.s, #0",
        "addp z0.b, p1/m, z0.b, z1.b",
        "smaxp z0.h, p1/m, z0.h, z1.h",
        "umaxp z0.s, p1/m, z0.s, z1.s",
        "sminp z0.d, p1/m, z0.d, z1.d",
        "uminp z0.b, p1/m, z0.b, z1.b",
        "addp z0.d, p1/m, z0.d, z1.d",
        "sadalp z0.h, p1/m, z1.b",
        "uadalp z0.s, p1/m, z1.h",
        "sadalp z0.d, p1/m, z1.s",
        "sqabs z0.b, p1/m, z1.b",
        "sqneg z0.h, p1/m, z1.h",
        "sqabs z0.d, p1/m, z1.d",
        "sqneg z0.s, p1/m, z1.s",
        "mul z0.s, z1.s, z2.s",
        "mul z0.d, z1.d, z2.d",
        "pmul z0.b, z1.b, z2.b",
        "smulh z0.b, z1.b, z2.b",
        "umulh z0.d, z1.d, z2.d",
        "smulh z0.d, z1.d, z2.d",
        "umulh z0.h, z1.h, z2.h",
        "sqdmulh z0.h, z1.h, z2.h",
        "sqdmulh z0.s, z1.s, z2.s",
        "sqrdmulh z0.b, z1.b, z2.b",
        "sqrdmulh z0.d, z1.d, z2.d",
        "sqdmulh z0.d, z1.d, z2.d",
        "sqrdmlah z0.h, z1.h, z2.h",
        "sqrdmlsh z0.s, z1.s, z2.s",
        "sqrdmlah z0.d, z1.d, z2.d",
        "sqrdmlsh z0.b, z1.b, z2.b",
        "ssra z0.s, z1.s, #3",
        "usra z0.b, z1.b, #8",
        "srsra z0.h, z1.h, #1",
        "ursra z0.d, z1.d, #64",
        "srsra z0.d, z1.d, #33",
        "sri z0.s, z1.s, #3",
        "sli z0.h, z1.h, #0",
        "sli z0.d, z1.d, #63",
        "sri z0.b, z1.b, #8",
        "sri z0.d, z1.d, #64",
        "saba z0.s, z1.s, z2.s",
        "uaba z0.b, z1.b, z2.b",
        "saba z0.d, z1.d, z2.d",
        "cadd z0.h, z0.h, z1.h, #90",
        "cadd z0.s, z0.s, z1.s, #270",
        "sqcadd z0.b, z0.b, z1.b, #90",
        "sqcadd z0.d, z0.d, z1.d, #270",
        "sqcadd z0.h, z0.h, z1.h, #270",
        "saddlb z0.h, z1.b, z2.b",
        "saddlt z0.s, z1.h, z2.h",
        "uaddlb z0.d, z1.s, z2.s",
        "uaddlt z0.h, z1.b, z2.b",
        "ssublb z0.s, z1.h, z2.h",
        "usublt z0.d, z1.s, z2.s",
        "sabdlb z0.h, z1.b, z2.b",
        "uabdlt z0.s, z1.h, z2.h",
        "saddwb z0.h, z1.h, z2.b",
        "uaddwt z0.s, z1.s, z2.h",
        "ssubwb z0.d, z1.d, z2.s",
        "usubwt z0.h, z1.h, z2.b",
        "smullb z0.h, z1.b, z2.b",
        "smullt z0.s, z1.h, z2.h",
        "umullb z0.d, z1.s, z2.s",
        "umullt z0.h, z1.b, z2.b",
        "sqdmullb z0.s, z1.h, z2.h",
        "sqdmullt z0.d, z1.s, z2.s",
        "pmullb z0.h, z1.b, z2.b",
        "pmullt z0.h, z1.b, z2.b",
        "pmullb z0.d, z1.s, z2.s",
        "pmullt z0.d, z1.s, z2.s",
        "smlalb z0.s, z1.h, z2.h",
        "smlalt z0.d, z1.s, z2.s",
        "umlalb z0.h, z1.b, z2.b",
        "umlalt z0.s, z1.h, z2.h",
        "smlslb z0.d, z1.s, z2.s",
        "umlslt z0.h, z1.b, z2.b",
        "sqdmlalb z0.s, z1.h, z2.h",
        "sqdmlalt z0.d, z1.s, z2.s",
        "sqdmlslb z0.h, z1.b, z2.b",
        "sqdmlslt z0.s, z1.h, z2.h",
        "sabalb z0.h, z1.b, z2.b",
        "sabalt z0.s, z1.h, z2.h",
        "uabalb z0.d, z1.s, z2.s",
        "uabalt z0.h, z1.b, z2.b",
        "saddlbt z0.h, z1.b, z2.b",
        "saddlbt z0.d, z1.s, z2.s",
        "ssublbt z0.s, z1.h, z2.h",
        "ssubltb z0.h, z1.b, z2.b",
        "eorbt z0.b, z1.b, z2.b",
        "eortb z0.s, z1.s, z2.s",
        "eorbt z0.d, z1.d, z2.d",
        "adclb z0.s, z1.s, z2.s",
        "adclt z0.d, z1.d, z2.d",
        "sbclb z0.d, z1.d, z2.d",
        "sbclt z0.s, z1.s, z2.s",
        "sshllb z0.h, z1.b, #0",
        "sshllt z0.s, z1.h, #5",
        "ushllb z0.d, z1.s, #31",
        "ushllt z0.h, z1.b, #7",
        "shrnb z0.b, z1.h, #1",
        "shrnt z0.h, z1.s, #16",
        "rshrnb z0.s, z1.d, #32",
        "rshrnt z0.b, z1.h, #8",
        "sqshrunb z0.b, z1.h, #3",
        "sqrshrunt z0.h, z1.s, #1",
        "sqshrnb z0.s, z1.d, #7",
        "sqrshrnt z0.b, z1.h, #2",
        "uqshrnb z0.h, z1.s, #9",
        "uqrshrnt z0.s, z1.d, #31",
        "sqrshrnb z0.s, z1.d, #32",
        "sqxtnb z0.b, z1.h",
        "sqxtnt z0.h, z1.s",
        "uqxtnb z0.s, z1.d",
        "uqxtnt z0.b, z1.h",
        "sqxtunb z0.h, z1.s",
        "sqxtunt z0.s, z1.d",
        "addhnb z0.b, z1.h, z2.h",
        "addhnt z0.h, z1.s, z2.s",
        "raddhnb z0.s, z1.d, z2.d",
        "raddhnt z0.b, z1.h, z2.h",
        "subhnb z0.h, z1.s, z2.s",
        "subhnt z0.s, z1.d, z2.d",
        "rsubhnb z0.b, z1.h, z2.h",
        "rsubhnt z0.s, z1.d, z2.d",
        "and z4.b, z4.b, #0x3f\ntbl z0.b, {z1.b, z2.b}, z4.b",
        "and z4.h, z4.h, #0x1f\ntbl z0.h, {z1.h, z2.h}, z4.h",
        "and z4.s, z4.s, #0x1f\ntbl z0.s, {z1.s, z2.s}, z4.s",
        "and z4.d, z4.d, #0xf\ntbl z0.d, {z1.d, z2.d}, z4.d",
        "and z4.b, z4.b, #0x1f\ntbx z0.b, z1.b, z4.b",
        "and z4.s, z4.s, #0xf\ntbx z0.s, z1.s, z4.s",
        "tbx z0.d, z1.d, z4.d",
        "and z0.b, z0.b, #7\nand z1.b, z1.b, #7\nmatch p2.b, p1/z, z0.b, z1.b",
        "and z0.h, z0.h, #3\nand z1.h, z1.h, #3\nnmatch p2.h, p1/z, z0.h, z1.h",
        "and z0.b, z0.b, #0x3f\nmatch p2.b, p1/z, z0.b, z1.b",
        "and z1.s, z1.s, #3\nand z2.s, z2.s, #3\nhistcnt z0.s, p1/z, z1.s, z2.s",
        "and z1.d, z1.d, #1\nand z2.d, z2.d, #1\nhistcnt z0.d, p1/z, z1.d, z2.d",
        "and z1.b, z1.b, #7\nand z2.b, z2.b, #7\nhistseg z0.b, z1.b, z2.b",
        "index z5.s, #0, #3\nldnt1b {z0.s}, p1/z, [z5.s, x11]",
        "index z5.s, #0, #6\nldnt1sh {z0.s}, p1/z, [z5.s, x11]",
        "index z5.s, #0, #4\nldnt1w {z0.s}, p1/z, [z5.s, x11]",
        "index z5.d, #0, #7\nldnt1sb {z0.d}, p1/z, [z5.d, x11]",
        "index z5.d, #0, #8\nldnt1d {z0.d}, p1/z, [z5.d, x11]",
        "index z5.d, #0, #12\nldnt1sw {z0.d}, p1/z, [z5.d, x11]",
        "index z5.d, #0, #2\nldnt1h {z0.d}, p1/z, [z5.d, x11]",
        "index z5.s, #0, #8\nstnt1w {z1.s}, p1, [z5.s, x13]",
        "index z5.d, #0, #8\nstnt1d {z1.d}, p1, [z5.d, x13]",
        "index z5.d, #0, #3\nstnt1b {z1.d}, p1, [z5.d, x13]",
        "index z5.s, #0, #2\nstnt1h {z1.s}, p1, [z5.s, x13]"
    ];

    /// <summary>WHILE* with X9/W9 and X10/W10 from the scalar pairs; they write P2 and NZCV.</summary>
    private static readonly string[] WhileCases =
    [
        "whilege p2.s, x9, x10",
        "whilegt p2.b, x9, x10",
        "whilehs p2.h, w9, w10",
        "whilehi p2.d, x9, x10",
        "whilege p2.h, w9, w10",
        "whilegt p2.d, w9, w10",
        "whilehs p2.b, x9, x10",
        "whilehi p2.s, w9, w10",
        "whilewr p2.b, x9, x10",
        "whilewr p2.h, x9, x10",
        "whilewr p2.s, x9, x10",
        "whilewr p2.d, x9, x10",
        "whilerw p2.b, x9, x10",
        "whilerw p2.h, x9, x10",
        "whilerw p2.s, x9, x10",
        "whilerw p2.d, x9, x10"
    ];

    /// <summary>The compiled loops (calls in the C program's loop_case_N functions).</summary>
    private static readonly string[] LoopCases =
    [
        "add_alias32(w1 + 3, w1, n): WHILEWR with a 12-byte distance", "add_alias32(w1, w1 + 5, n): destination below the source",
        "add_alias32(w1 + 64, w1, n)", "add_alias8(b1 + 1, b1, n)", "add_alias8(b1 + 17, b1, n)", "add_alias64(d1 + 1, d1, n)",
        "mla_long(w1, h1, h2, n) aliased", "eor3(d1, d2, d3)", "bcax(d1, d2, d3)", "bsl(w1, w2, w3)", "nbsl(w1, w2, w3)",
        "cadd(h1, h2, h3)", "havg_s8(b1, b2, b3)", "avg_u8(b1, b2, b3)", "shift_acc(w1, w2)", "mulh(w1, w2, w3)", "xar64(d1, d2, d3)",
        "all loops at n = 1 … 40",
    ];

    internal const string Source = """
        // Arm64Sve2Tests: SVE2 cases, hosted (qemu-aarch64, -DHOSTED: prints the digests) or a raw guest (digests at 0x1F8000).
        #include <stdint.h>
        #define M 1536
        #define N 203
        static uint8_t A[M] __attribute__((aligned(64))), B[M] __attribute__((aligned(64))), C[M] __attribute__((aligned(64)));
        static uint8_t PM[M] __attribute__((aligned(64))), S[1024] __attribute__((aligned(64)));
        static uint64_t seed;
        static uint8_t rnd(void) { seed = seed * 6364136223846793005ULL + 1442695040888963407ULL; return (uint8_t)(seed >> 56); }
        static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001B3ULL + (h >> 29); }
        static uint64_t bytes(uint64_t h, const uint8_t *p, int n) { for (int i = 0; i < n; i++) h = mix(h, p[i]); return h; }
        static const uint8_t edge[8] = { 0x00, 0x7f, 0x80, 0xff, 0x01, 0xfe, 0x81, 0x7e };
        static uint8_t val(void) { uint8_t r = rnd(); return (r & 1) ? edge[(r >> 1) & 7] : rnd(); }
        static int16_t h1[N + 64], h2[N + 64], h3[N + 64];
        static int32_t w1[N + 64], w2[N + 64], w3[N + 64];
        static uint64_t d1[N + 64], d2[N + 64], d3[N + 64];
        static uint8_t b1[N + 64], b2[N + 64], b3[N + 64];
        static void init(void)
        {
            seed = 0x5eed;
            for (int i = 0; i < M; i++) { A[i] = val(); B[i] = val(); C[i] = val(); PM[i] = (rnd() & 3) != 0; }
        }
        static void init_loops(void)
        {
            for (int i = 0; i < N + 64; i++)
            {
                h1[i] = (int16_t)(A[i] | A[i + 300] << 8); h2[i] = (int16_t)(B[i] | B[i + 300] << 8); h3[i] = (int16_t)(C[i] | C[i + 300] << 8);
                w1[i] = (int32_t)((uint32_t)(uint16_t)h1[i] << 16 | (uint16_t)h2[i]); w2[i] = (int32_t)((uint32_t)(uint16_t)h2[i] << 16 | (uint16_t)h3[i]);
                w3[i] = (int32_t)((uint32_t)(uint16_t)h3[i] << 16 | (uint16_t)h1[i]);
                d1[i] = (uint64_t)(uint32_t)w1[i] << 32 | (uint32_t)w2[i]; d2[i] = (uint64_t)(uint32_t)w2[i] << 32 | (uint32_t)w3[i];
                d3[i] = (uint64_t)(uint32_t)w3[i] << 32 | (uint32_t)w1[i];
                b1[i] = A[i + 600]; b2[i] = B[i + 600]; b3[i] = C[i + 600];
            }
        }
        static int vlb(void) { uint64_t v; __asm__ volatile("rdvl %0, #1" : "=r"(v)); return (int)v; }
        static uint64_t digest_loops(void)
        {
            uint64_t h = bytes(0, (const uint8_t *)h1, sizeof h1); h = bytes(h, (const uint8_t *)w1, sizeof w1);
            h = bytes(h, (const uint8_t *)d1, sizeof d1); return bytes(h, b1, sizeof b1);
        }

        #define ZCASE(NAME, INSN) \
        __attribute__((noinline)) static uint64_t NAME(void) { \
            uint64_t h = 0; int vl = vlb(); \
            for (int k = 0; k < 4; k++) { \
                uint8_t z[256], p[32]; uint64_t f; \
                const uint8_t *a = A + k * 256, *b = B + k * 256, *c = C + k * 256, *m = PM + k * 256; \
                for (int i = 0; i < 1024; i++) S[i] = 0; \
                __asm__ volatile("ptrue p0.b\n ld1b {z0.b}, p0/z, [%[a]]\n ld1b {z1.b}, p0/z, [%[b]]\n ld1b {z2.b}, p0/z, [%[c]]\n" \
                    " ld1b {z3.b}, p0/z, [%[m]]\n ld1b {z4.b}, p0/z, [%[c2]]\n cmpne p1.b, p0/z, z3.b, #0\n pfalse p2.b\n" \
                    " mov x11, %[a]\n mov x13, %[s]\n msr nzcv, xzr\n" INSN "\n mrs %[f], nzcv\n st1b {z0.b}, p0, [%[z]]\n str p2, [%[p]]\n" \
                    : [f] "=&r"(f) : [a] "r"(a), [b] "r"(b), [c] "r"(c), [m] "r"(m), [c2] "r"(c + 64), [s] "r"(S), [z] "r"(z), [p] "r"(p) \
                    : "memory", "cc", "x11", "x13", "z0", "z1", "z2", "z3", "z4", "z5", "z6", "z7", "z15", "p0", "p1", "p2"); \
                h = bytes(h, z, vl); h = bytes(h, p, vl / 8); h = mix(h, f); h = bytes(h, S, 1024); \
            } \
            return h; }

        static const uint64_t pairs[][2] = {
            { 0, 0 }, { 0, 5 }, { 5, 0 }, { 100, 3 }, { 3, 100 }, { -3ULL, 7 }, { 7, -3ULL }, { 0x8000000000000000ULL, 0x7fffffffffffffffULL },
            { 0x7fffffffffffffffULL, 0x8000000000000000ULL }, { 0x8000000000000003ULL, 0x8000000000000000ULL }, { 2, 0x8000000000000000ULL },
            { 0x7fffffff, 0x80000000 }, { 0x80000000, 0x7fffffff }, { 0x80000002, 0x7fffffff }, { 0xffffffff, 0 }, { 1, 0xffffffff },
            { 16, 32 }, { 32, 16 }, { 0x1000, 0x1003 }, { 0x1003, 0x1000 }, { 0x1000, 0x1040 }, { 0x1040, 0x1000 }, { 0x1000, 0x1009 },
            { 0x100000000ULL, 0xffffffffULL }, { 0x100000005ULL, 0x2ULL }, { -1ULL, -1ULL }, { -1ULL, 0 }, { 0, -1ULL },
        };
        #define WCASE(NAME, INSN) \
        __attribute__((noinline)) static uint64_t NAME(void) { \
            uint64_t h = 0; int vl = vlb(); \
            for (unsigned i = 0; i < sizeof pairs / sizeof pairs[0]; i++) { \
                uint8_t p[32]; uint64_t f; \
                __asm__ volatile("mov x9, %[x]\n mov x10, %[y]\n pfalse p2.b\n msr nzcv, xzr\n" INSN "\n mrs %[f], nzcv\n str p2, [%[p]]\n" \
                    : [f] "=&r"(f) : [x] "r"(pairs[i][0]), [y] "r"(pairs[i][1]), [p] "r"(p) : "memory", "cc", "x9", "x10", "p2"); \
                h = bytes(h, p, vl / 8); h = mix(h, f); \
            } \
            return h; }

        __attribute__((noinline)) static void add_alias32(int32_t *d, const int32_t *a, int n) { for (int i = 0; i < n; i++) d[i] = a[i] * 3 + 1; }
        __attribute__((noinline)) static void add_alias8(uint8_t *d, const uint8_t *a, int n) { for (int i = 0; i < n; i++) d[i] = (uint8_t)(a[i] + 7); }
        __attribute__((noinline)) static void add_alias64(uint64_t *d, const uint64_t *a, int n) { for (int i = 0; i < n; i++) d[i] = a[i] ^ (a[i] >> 3); }
        __attribute__((noinline)) static void mla_long(int32_t *d, const int16_t *a, const int16_t *b, int n) { for (int i = 0; i < n; i++) d[i] += a[i] * b[i]; }
        __attribute__((noinline)) static void eor3(uint64_t *restrict d, const uint64_t *a, const uint64_t *b, int n) { for (int i = 0; i < n; i++) d[i] = d[i] ^ a[i] ^ b[i]; }
        __attribute__((noinline)) static void bcax(uint64_t *restrict d, const uint64_t *a, const uint64_t *b, int n) { for (int i = 0; i < n; i++) d[i] = d[i] ^ (a[i] & ~b[i]); }
        __attribute__((noinline)) static void bsl(uint32_t *restrict d, const uint32_t *a, const uint32_t *c, int n) { for (int i = 0; i < n; i++) d[i] = (d[i] & c[i]) | (a[i] & ~c[i]); }
        __attribute__((noinline)) static void nbsl(uint32_t *restrict d, const uint32_t *a, const uint32_t *c, int n) { for (int i = 0; i < n; i++) d[i] = ~((d[i] & c[i]) | (a[i] & ~c[i])); }
        __attribute__((noinline)) static void cadd(int16_t *restrict d, const int16_t *a, const int16_t *b, int n) { for (int i = 0; i + 1 < n; i += 2) { d[i] = (int16_t)(a[i] - b[i + 1]); d[i + 1] = (int16_t)(a[i + 1] + b[i]); } }
        __attribute__((noinline)) static void havg_s8(int8_t *restrict d, const int8_t *a, const int8_t *b, int n) { for (int i = 0; i < n; i++) d[i] = (int8_t)((a[i] + b[i]) >> 1); }
        __attribute__((noinline)) static void avg_u8(uint8_t *restrict d, const uint8_t *a, const uint8_t *b, int n) { for (int i = 0; i < n; i++) d[i] = (uint8_t)((a[i] + b[i] + 1) >> 1); }
        __attribute__((noinline)) static void shift_acc(uint32_t *restrict d, const uint32_t *a, int n) { for (int i = 0; i < n; i++) d[i] += a[i] >> 3; }
        __attribute__((noinline)) static void mulh(int32_t *restrict d, const int32_t *a, const int32_t *b, int n) { for (int i = 0; i < n; i++) d[i] = (int32_t)(((int64_t)a[i] * b[i]) >> 32); }
        __attribute__((noinline)) static void xar64(uint64_t *restrict d, const uint64_t *a, const uint64_t *b, int n) { for (int i = 0; i < n; i++) { uint64_t x = a[i] ^ b[i]; d[i] = (x >> 7) | (x << 57); } }

        static void all_loops(int n)
        {
            add_alias32(w1 + 3, w1, n); add_alias32(w1, w1 + 5, n); add_alias8(b1 + 1, b1, n); add_alias64(d1 + 1, d1, n);
            mla_long(w2 + 1, h1, h2, n); eor3(d1, d2, d3, n); bcax(d2, d1, d3, n); bsl((uint32_t *)w1, (uint32_t *)w2, (uint32_t *)w3, n);
            nbsl((uint32_t *)w2, (uint32_t *)w3, (uint32_t *)w1, n); cadd(h1, h2, h3, n); havg_s8((int8_t *)b1, (int8_t *)b2, (int8_t *)b3, n);
            avg_u8(b2, b1, b3, n); shift_acc((uint32_t *)w3, (uint32_t *)w1, n); mulh(w1, w2, w3, n); xar64(d3, d1, d2, n);
        }
        #define LOOP(NAME, CALL) __attribute__((noinline)) static uint64_t NAME(void) { init_loops(); int n = N; (void)n; CALL; return digest_loops(); }
        LOOP(loop0, add_alias32(w1 + 3, w1, n))
        LOOP(loop1, add_alias32(w1, w1 + 5, n))
        LOOP(loop2, add_alias32(w1 + 64, w1, n - 64))
        LOOP(loop3, add_alias8(b1 + 1, b1, n))
        LOOP(loop4, add_alias8(b1 + 17, b1, n))
        LOOP(loop5, add_alias64(d1 + 1, d1, n))
        LOOP(loop6, mla_long(w1, (const int16_t *)w1 + 3, h2, n))
        LOOP(loop7, eor3(d1, d2, d3, n))
        LOOP(loop8, bcax(d1, d2, d3, n))
        LOOP(loop9, bsl((uint32_t *)w1, (uint32_t *)w2, (uint32_t *)w3, n))
        LOOP(loop10, nbsl((uint32_t *)w1, (uint32_t *)w2, (uint32_t *)w3, n))
        LOOP(loop11, cadd(h1, h2, h3, n))
        LOOP(loop12, havg_s8((int8_t *)b1, (int8_t *)b2, (int8_t *)b3, n))
        LOOP(loop13, avg_u8(b1, b2, b3, n))
        LOOP(loop14, shift_acc((uint32_t *)w1, (uint32_t *)w2, n))
        LOOP(loop15, mulh(w1, w2, w3, n))
        LOOP(loop16, xar64(d1, d2, d3, n))
        LOOP(loop17, for (int k = 1; k <= 40; k++) all_loops(k))

        @CASES@
        typedef uint64_t (*case_fn)(void);
        static case_fn const cases[] = { @TABLE@ };
        #define NCASES (sizeof cases / sizeof cases[0])
        #ifdef HOSTED
        #include <stdio.h>
        int main(void)
        {
            init();
            for (unsigned i = 0; i < NCASES; i++) printf("%016llx\n", (unsigned long long)cases[i]());
            return 0;
        }
        #else
        uint64_t sve2_run(void)
        {
            init();
            volatile uint64_t *out = (volatile uint64_t *)0x1F8000;
            for (unsigned i = 0; i < NCASES; i++) out[i] = cases[i]();
            return NCASES;
        }
        #endif
        """;

    /// <summary>Where the guest is linked (<see cref="SveElfGuest"/>'s layout) and where sve2_run stores its digests.</summary>
    private const ulong TextBase = SveElfGuest.TextBase, Results = 0x1F_8000;

    internal static readonly string[] Flags =
        ["-O3", "-march=armv9-a", "-mstrict-align", "-fno-tree-loop-distribute-patterns", "-Wall", "-Wextra", "-Werror"];

    private static string Program() => Program(VectorCases, WhileCases, LoopCases.Length);

    /// <summary>
    /// <see cref="Source"/> with ZCASE blocks for <paramref name="vectorCases"/>, WCASE blocks for
    /// <paramref name="whileCases"/> and the first <paramref name="loops"/> compiled loops, in that order (other
    /// Arm64Sve2*Tests pass their own cases and no loops, building with -Wno-unused-function -Wno-unused-const-variable).
    /// </summary>
    internal static string Program(string[] vectorCases, string[] whileCases, int loops)
    {
        static string Quote(string asm) => "\"" + asm.Replace("\n", "\\n") + "\"";
        var cases = new StringBuilder();
        var table = new List<string>();
        for (int i = 0; i < vectorCases.Length; i++)
        {
            cases.Append($"ZCASE(zcase{i}, {Quote(vectorCases[i])})\n");
            table.Add($"zcase{i}");
        }
        for (int i = 0; i < whileCases.Length; i++)
        {
            cases.Append($"WCASE(wcase{i}, {Quote(whileCases[i])})\n");
            table.Add($"wcase{i}");
        }
        for (int i = 0; i < loops; i++) table.Add($"loop{i}");
        return Source.Replace("@CASES@", cases.ToString()).Replace("@TABLE@", string.Join(", ", table));
    }

    private static string[] CaseNames => [.. VectorCases.Select(c => c.Replace("\n", "; ")), .. WhileCases, .. LoopCases];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Built = new(Build);

    private static (byte[]?, string?, string?) Build() => Build(Program(), "sve2");

    /// <summary>
    /// aarch64-linux-gnu-objdump -d of the guest ELF <see cref="Build(string, string, string[])"/> built for
    /// <paramref name="tag"/> (skips the calling test, naming the package, without objdump).
    /// </summary>
    internal static string DisassembleGuest(string tag)
    {
        string elf = Path.Combine(Path.GetTempPath(), $"kvmsharp-{tag}-{Environment.ProcessId}", "guest.elf");
        var (code, disassembly) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-objdump", ["-d", elf]);
        Skip.If(code == -1, $"aarch64-linux-gnu-objdump (package binutils-aarch64-linux-gnu) is not available: {disassembly}");
        return disassembly;
    }

    /// <summary>
    /// A guest of compiled C cases: <paramref name="cSource"/> (functions of type <c>uint64_t (void)</c> returning a
    /// digest) put before the case table of an otherwise empty <see cref="Program(string[], string[], int)"/>, whose table
    /// lists <paramref name="functions"/> in order, built as <paramref name="tag"/> with the warnings an empty program
    /// needs off and <paramref name="extraFlags"/> (e.g. a -march) after them.
    /// </summary>
    internal static (byte[]? Guest, string? Hosted, string? Why) BuildCompiledCases(string cSource, IEnumerable<string> functions, string tag,
        params string[] extraFlags)
    {
        const string table = "static case_fn const cases[] = { ", typedef = "typedef uint64_t (*case_fn)(void);";
        string program = Program([], [], 0);
        Assert.Contains(table, program);
        Assert.Contains(typedef, program);
        program = program.Replace(typedef, cSource + typedef).Replace(table, table + string.Join(", ", functions));
        return Build(program, tag, ["-Wno-unused-function", "-Wno-unused-const-variable", "-Wno-unused-variable", .. extraFlags]);
    }

    /// <summary>
    /// Builds <paramref name="program"/> (a <see cref="Program(string[], string[], int)"/> text) freestanding and
    /// hosted in a directory named after <paramref name="tag"/>, with <see cref="Flags"/> plus <paramref name="extraFlags"/>:
    /// the guest ELF and the hosted binary's path, or why the cross compiler is missing.
    /// </summary>
    internal static (byte[]? Guest, string? Hosted, string? Why) Build(string program, string tag, params string[] extraFlags)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"kvmsharp-{tag}-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string c = Path.Combine(dir, "sve2_guest.c"), guest = Path.Combine(dir, "guest.elf"), hosted = Path.Combine(dir, "hosted");
        File.WriteAllText(c, program);
        string[] flags = [.. Flags, .. extraFlags];
        string? why = Gcc([.. flags, "-ffreestanding", "-nostdlib", "-static", "-fno-pic", "-no-pie", $"-Wl,-Ttext=0x{TextBase:X}",
                           "-Wl,-e,sve2_run", "-Wl,--build-id=none", "-o", guest, c])
                      ?? Gcc([.. flags, "-DHOSTED", "-static", "-o", hosted, c]);
        return why is null ? (File.ReadAllBytes(guest), hosted, null) : (null, null, why);
    }

    private static string? Gcc(string[] args)
    {
        var (code, output) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-gcc", args);
        if (code == -1) return $"aarch64-linux-gnu-gcc (package gcc-aarch64-linux-gnu) is not available: {output}";
        Assert.True(code == 0, $"aarch64-linux-gnu-gcc failed ({code}): {output}");
        return null;
    }

    /// <summary>
    /// sve2_run on an SVE vCPU of <paramref name="model"/> (default <see cref="Sve2Cpu"/>(<paramref name="bits"/>)) at ZCR_EL1.LEN = bits / 128 − 1 (<see cref="SveElfGuest.Run"/>): the digests it stores at <see cref="Results"/>.
    /// </summary>
    internal static ulong[] RunEmulated(byte[] elf, int bits, Arm64CpuModel? model = null) =>
        SveElfGuest.Run(elf, model ?? Sve2Cpu(bits), (ulong)(bits / 128 - 1), (x0, host) =>
        {
            int count = (int)x0;
            byte[] raw = new byte[8 * count];
            host.Read(Results, raw);
            return Enumerable.Range(0, count).Select(i => BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(8 * i))).ToArray();
        });

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void Sve2_instructions_and_compiled_loops_give_the_digests_qemu_gives_at_the_same_vector_length(int bits) =>
        CompareWithQemu(Built.Value, CaseNames, bits);

    /// <summary>
    /// Runs the hosted build under qemu-aarch64 -cpu max,sve<paramref name="bits"/>=on and the guest build on the
    /// emulator (CPU <paramref name="model"/>, default <see cref="Sve2Cpu"/>) at the same vector length, and asserts the
    /// digests agree case by case (skips, with the reason, without the cross compiler or qemu-aarch64).
    /// </summary>
    internal static void CompareWithQemu((byte[]? Guest, string? Hosted, string? Why) built, string[] names, int bits, Arm64CpuModel? model = null)
    {
        var (guest, hosted, why) = built;
        Skip.If(guest is null, why);
        var (code, output) = Arm64SveCorpusTests.Exec("qemu-aarch64", ["-cpu", $"max,sve{bits}=on", hosted!]);
        Skip.If(code == -1, $"qemu-aarch64 (package qemu-user) is not available: {output}");
        Assert.True(code == 0, $"qemu-aarch64 failed ({code}): {output}");
        ulong[] expected = [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => Convert.ToUInt64(l, 16))];
        Assert.Equal(names.Length, expected.Length);
        ulong[] actual = RunEmulated(guest!, bits, model);
        Assert.Equal(names.Length, actual.Length);
        var failures = Enumerable.Range(0, names.Length).Where(i => expected[i] != actual[i])
            .Select(i => $"{names[i]}: qemu {expected[i]:x16}, emulator {actual[i]:x16}").ToList();
        Assert.True(failures.Count == 0, $"VL {bits}: {failures.Count} of {names.Length} cases differ:\n" + string.Join("\n", failures));
    }

    /// <summary>
    /// eor3 z0.d, z0.d, z1.d, z2.d on a vCPU without SVE, on the SVE-only Neoverse-V1-like CPU (SVEver = 0) and on the
    /// SVE2 CPU with CPACR_EL1.ZEN trapping EL1: "if !HaveSVE2() then UNDEFINED" (EC 0x00) comes in the decode, before
    /// CheckSVEEnabled (EC 0x19).
    /// </summary>
    [Theory]
    [InlineData(false, false, 0x33_0000UL, 0x00UL)] // no SVE feature
    [InlineData(true, false, 0x33_0000UL, 0x00UL)]  // SVE without SVE2
    [InlineData(true, false, 0x30_0000UL, 0x00UL)]  // SVE without SVE2, ZEN trapping: still UNDEFINED
    [InlineData(true, true, 0x30_0000UL, 0x19UL)]   // SVE2, ZEN trapping: the SVE access trap
    [InlineData(true, true, 0x33_0000UL, null)]     // SVE2 enabled: executes
    public void An_sve2_instruction_is_undefined_without_sve2_and_follows_cpacr_zen_with_it(bool sve, bool sve2, ulong cpacr, ulong? ec)
    {
        var model = sve2 ? Sve2Cpu(256) : Arm64CpuModel.NeoverseV1;
        using var s = Arm64TestVm.RunningWords(model, 0x04223820 /* eor3 z0.d, z0.d, z2.d, z1.d */);
        var v = s.AddVcpu(sve ? SveFeature : 0);
        if (sve)
        {
            v.FinalizeSve();
            v.SetOneReg(ZCR_EL1, 1);
            v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0), [.. Enumerable.Repeat((byte)0x0F, 256)]);
            v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(1, 0), [.. Enumerable.Repeat((byte)0x33, 256)]);
            v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(2, 0), [.. Enumerable.Repeat((byte)0x55, 256)]);
        }
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, cpacr);
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        bool done = v.GetOneReg(KvmArm64Regs.X(9)) == Arm64Guest.UcallDone;
        if (ec is null)
        {
            Assert.True(done);
            Assert.Equal([.. Enumerable.Repeat((byte)(0x0F ^ 0x33 ^ 0x55), 32), .. new byte[224]], v.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0)));
            return;
        }
        Assert.False(done);
        Assert.Equal(ec, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
        Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
    }

    /// <summary>
    /// The Neoverse V2-like preset (<see cref="Arm64CpuModel.NeoverseV2"/>, what `run --sve 128` picks): the guest reads
    /// SVEver = 1 and the vector length caps at 128 bits, and eor3 runs there (16 bytes, the rest of Z0 zeroed).
    /// </summary>
    [Fact]
    public void The_neoverse_v2_preset_offers_sve2_at_128_bits()
    {
        using var s = new Arm64TestVm(a =>
        {
            a.Emit(0x04223820); // eor3 z0.d, z0.d, z2.d, z1.d
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV2 });
        var v = s.AddVcpu(SveFeature);
        v.FinalizeSve();
        Assert.Equal(1UL, v.GetOneReg(KvmArm64IdRegs.ID_AA64ZFR0_EL1) & 0xF);
        v.SetOneReg(ZCR_EL1, 15); // asks for 2048 bits: capped at the host's 128
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0), [.. Enumerable.Repeat((byte)0x0F, 256)]);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(1, 0), [.. Enumerable.Repeat((byte)0x33, 256)]);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(2, 0), [.. Enumerable.Repeat((byte)0x55, 256)]);
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000UL);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        Assert.Equal([.. Enumerable.Repeat((byte)(0x0F ^ 0x33 ^ 0x55), 16), .. new byte[240]], v.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0)));
    }

    /// <summary>
    /// ID_AA64ZFR0_EL1 as the guest reads it (KVM_GET_ONE_REG of the ID register, arch/arm64/kvm/sys_regs.c
    /// ID_WRITABLE(ID_AA64ZFR0_EL1, ~ID_AA64ZFR0_EL1_RES0)): SVEver = 1 on the SVE2 CPU, 0 on the SVE-only one.
    /// </summary>
    [Theory]
    [InlineData(true, 1UL)]
    [InlineData(false, 0UL)]
    public void Id_aa64zfr0_el1_sve_ver_says_whether_sve2_is_implemented(bool sve2, ulong sveVer)
    {
        using var s = new Arm64TestVm(a => Arm64Guest.Ucall(a, Arm64Guest.UcallDone),
            EmulatorConfig.Arm64() with { Arm64Cpu = sve2 ? Sve2Cpu(256) : Arm64CpuModel.NeoverseV1 });
        var v = s.AddVcpu(SveFeature);
        ulong zfr0 = v.GetOneReg(KvmArm64IdRegs.ID_AA64ZFR0_EL1);
        Assert.Equal(sveVer, zfr0 & 0xF);
        Assert.Equal(1UL, (zfr0 >> 44) & 0xF); // I8MM, as on the SVE-only model
    }

    /// <summary>
    /// WHILEWR/WHILERW p2.b at 128 bits on pairs whose results were measured on qemu-aarch64 -cpu max,sve128=on
    /// (P2 as two bytes, NZCV &gt;&gt; 28): a negative distance (WHILEWR) or equal addresses give all elements, a
    /// positive one its byte count; the addresses compare unsigned.
    /// </summary>
    [Theory]
    [InlineData(0x1000UL, 0x1009UL, false, 0x01FF, 0xA)]
    [InlineData(0x1000UL, 0x1009UL, true, 0x01FF, 0xA)]
    [InlineData(0x1003UL, 0x1000UL, false, 0xFFFF, 0x8)]
    [InlineData(0x1003UL, 0x1000UL, true, 0x0007, 0xA)]
    [InlineData(0x7FFF_FFFF_FFFF_FFFFUL, 0x8000_0000_0000_0000UL, false, 0x0001, 0xA)]
    [InlineData(0x8000_0000_0000_0000UL, 0x7FFF_FFFF_FFFF_FFFFUL, true, 0x0001, 0xA)]
    [InlineData(0UL, 0UL, true, 0xFFFF, 0x8)]
    [InlineData(0xFFFF_FFFF_FFFF_FFFFUL, 0UL, false, 0xFFFF, 0x8)] // unsigned addresses: 0 is below 2^64 − 1
    [InlineData(0UL, 0xFFFF_FFFF_FFFF_FFFFUL, true, 0xFFFF, 0x8)]
    public void Whilewr_and_whilerw_give_what_qemu_gives(ulong x9, ulong x10, bool rw, int p2, int nzcv)
    {
        using var s = new Arm64TestVm(a =>
        {
            a.Emit(rw ? 0x252A3132u : 0x252A3122u); // whilerw p2.b, x9, x10 / whilewr p2.b, x9, x10
            a.Emit(0xD53B4203); // mrs x3, nzcv
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Sve2Cpu(128) });
        var v = s.AddVcpu(SveFeature);
        v.FinalizeSve();
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        v.SetOneReg(KvmArm64Regs.X(9), x9);
        v.SetOneReg(KvmArm64Regs.X(10), x10);
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        byte[] p = v.GetOneRegBytes(KVM_REG_ARM64_SVE_PREG(2, 0));
        Assert.Equal(p2, p[0] | p[1] << 8);
        Assert.Equal((ulong)nzcv, v.GetOneReg(KvmArm64Regs.X(3)) >> 28);
    }

    /// <summary>
    /// Userspace may lower ID_AA64ZFR0_EL1.SVEver before the first KVM_RUN (sys_regs.c ID_WRITABLE, FTR_LOWER_SAFE),
    /// but KVM cannot trap SVE2 instructions: the guest reads SVEver = 0 and EOR3 still executes on the SVE2 CPU.
    /// </summary>
    [Fact]
    public void Lowering_sve_ver_changes_what_the_guest_reads_not_what_the_cpu_executes()
    {
        using var s = Arm64TestVm.RunningWords(Sve2Cpu(128), 0x04223820 /* eor3 z0.d, z0.d, z2.d, z1.d */, 0xD5380483 /* mrs x3, id_aa64zfr0_el1 */);
        var v = s.AddVcpu(SveFeature);
        ulong zfr0 = v.GetOneReg(KvmArm64IdRegs.ID_AA64ZFR0_EL1);
        v.SetOneReg(KvmArm64IdRegs.ID_AA64ZFR0_EL1, zfr0 & ~0xFUL);
        v.FinalizeSve();
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(1, 0), [.. Enumerable.Repeat((byte)0x33, 256)]);
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        Assert.Equal(zfr0 & ~0xFUL, v.GetOneReg(KvmArm64Regs.X(3)));
        Assert.Equal([.. Enumerable.Repeat((byte)0x33, 16), .. new byte[240]], v.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0)));
    }
}
