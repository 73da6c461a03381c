/* SPDX-License-Identifier: MIT */
/* A corpus of small, deterministic, portable C functions (fixed-width integers, no undefined behaviour, no libc)
 * that CompiledCorpusTests builds at -O0/-O2/-O3/-Os for x86-64 (baseline, v2, v3, general registers only) and
 * aarch64, runs in micro-VMs on the emulated kernels (and the general-register builds on /dev/kvm), and compares
 * with the same file built for this host (-DCORPUS_HOST, whose main prints "name digest" for every part and seed).
 * Every part takes a seed and returns a 64-bit digest; the same source gives the same digests on every ISA and at
 * every optimisation level, so a difference is an interpreter bug (or the compiler's). Rules that keep it portable:
 * no plain char arithmetic (signed on x86-64, unsigned on aarch64), no signed overflow (arithmetic in unsigned), no
 * shifts by the width or more, no NaNs (their payloads differ between ISAs), -ffp-contract=off (no fused
 * multiply-adds on v3 and aarch64), -fno-math-errno (sqrt inline, no libm). Parts named fp_* use floating point and
 * are compiled out with -DCORPUS_NO_FP (the -mgeneral-regs-only builds, which /dev/kvm runs). 128-bit division
 * links libgcc (__udivti3, __divti3, __umodti3, __modti3). */
#ifndef CORPUS_HOST
#define KVMSHARP_GUEST_MEMFUNCS
#include "kvmsharp_guest.h"
typedef kvms_u64 u64;
typedef kvms_i64 i64;
#else
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef unsigned long long u64;
typedef long long i64;
#endif
#include <stdarg.h>
typedef unsigned int u32;
typedef int i32;
typedef unsigned short u16;
typedef short i16;
typedef unsigned char u8;
typedef signed char i8;
typedef unsigned __int128 u128;
typedef __int128 i128;

#define NOINLINE __attribute__((noinline))

static u64 mix(u64 h, u64 v)
{
    h ^= v;
    h *= 0x100000001b3ull;
    return h ^ (h >> 29);
}

/* xorshift64* state, seeded per part */
typedef struct { u64 s; } rng;
static u64 next(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}
/* A value shifted right by a random amount below mod (the two draws in sequence: C leaves the order of two calls in
 * one expression unspecified, and gcc orders them differently at different levels). */
static u64 next_shifted(rng *r, u64 mod) { u64 v = next(r); return v >> (next(r) % mod); }
static rng seeded(u64 seed, u64 salt) { rng r = { (seed ^ (salt * 0x9e3779b97f4a7c15ull)) | 1 }; next(&r); return r; }

static u8 BUF[4096];
static void fill_buf(rng *r, u64 n)
{
    for (u64 i = 0; i < n; i += 8) {
        u64 v = next(r);
        for (u64 k = 0; k < 8 && i + k < n; k++) BUF[i + k] = (u8)(v >> (8 * k));
    }
}

static void my_memcpy(void *d, const void *s, u64 n)
{
    u8 *dd = d;
    const u8 *ss = s;
    for (u64 i = 0; i < n; i++) dd[i] = ss[i];
}

/* ---- 0: CRC-32 (table built at run time) and CRC-32C bit by bit ---- */
static u32 CRC_TABLE[256];
NOINLINE static u64 crc32_part(u64 seed)
{
    rng r = seeded(seed, 0);
    fill_buf(&r, 400);
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        CRC_TABLE[i] = c;
    }
    u32 crc = 0xffffffffu;
    for (u64 i = 0; i < 400; i++) crc = CRC_TABLE[(crc ^ BUF[i]) & 0xff] ^ (crc >> 8);
    u32 c2 = 0xffffffffu;
    for (u64 i = 0; i < 64; i++) {
        c2 ^= BUF[i];
        for (int k = 0; k < 8; k++) c2 = (c2 >> 1) ^ (0x82f63b78u & (0u - (c2 & 1)));
    }
    return ((u64)~crc << 32) | ~c2;
}

/* ---- 1: SHA-256 of a buffer ---- */
static const u32 K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
static u32 ror32(u32 x, u32 n) { return (x >> n) | (x << (32 - n)); }
typedef struct { u32 h[8]; u8 block[64]; u64 len; u32 fill; } sha256_ctx;
static void sha256_block(sha256_ctx *c)
{
    u32 w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (u32)c->block[4 * i] << 24 | (u32)c->block[4 * i + 1] << 16 | (u32)c->block[4 * i + 2] << 8 | c->block[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        u32 s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        u32 s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    u32 a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        u32 t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        u32 t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g; g = f; f = e; e = d + t1; d = cc; cc = b; b = a; a = t1 + t2;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d; c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}
static void sha256_update(sha256_ctx *c, const u8 *p, u64 n)
{
    for (u64 i = 0; i < n; i++) {
        c->block[c->fill++] = p[i];
        c->len++;
        if (c->fill == 64) { sha256_block(c); c->fill = 0; }
    }
}
static void sha256_final(sha256_ctx *c, u8 out[32])
{
    u64 bits = c->len * 8;
    u8 pad = 0x80;
    sha256_update(c, &pad, 1);
    pad = 0;
    while (c->fill != 56) sha256_update(c, &pad, 1);
    u8 lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (u8)(bits >> (56 - 8 * i));
    sha256_update(c, lenb, 8);
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 4; k++) out[4 * i + k] = (u8)(c->h[i] >> (24 - 8 * k));
}
NOINLINE static u64 sha256_part(u64 seed)
{
    rng r = seeded(seed, 1);
    u64 n = 100 + (next(&r) % 100);
    fill_buf(&r, n);
    sha256_ctx c = { { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }, { 0 }, 0, 0 };
    sha256_update(&c, BUF, n);
    u8 out[32];
    sha256_final(&c, out);
    u64 h = 0;
    for (int i = 0; i < 32; i++) h = mix(h, out[i]);
    /* "abc" has a known digest: its first word is 0xba7816bf */
    sha256_ctx k = { { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }, { 0 }, 0, 0 };
    sha256_update(&k, (const u8 *)"abc", 3);
    sha256_final(&k, out);
    return mix(h, (u64)out[0] << 24 | (u64)out[1] << 16 | (u64)out[2] << 8 | out[3]);
}

/* ---- 2: FNV-1a, an xxhash64-like mix, murmur finalisers ---- */
static u64 rotl64(u64 x, u32 n) { return (x << (n & 63)) | (x >> ((64 - n) & 63)); }
NOINLINE static u64 hash_part(u64 seed)
{
    rng r = seeded(seed, 2);
    fill_buf(&r, 256);
    u64 fnv = 0xcbf29ce484222325ull;
    u32 fnv32 = 0x811c9dc5u;
    for (int i = 0; i < 256; i++) { fnv = (fnv ^ BUF[i]) * 0x100000001b3ull; fnv32 = (fnv32 ^ BUF[i]) * 0x01000193u; }
    const u64 P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full;
    u64 acc[4] = { seed + P1 + P2, seed + P2, seed, seed - P1 };
    for (int i = 0; i + 32 <= 256; i += 32)
        for (int l = 0; l < 4; l++) {
            u64 v = 0;
            for (int b = 0; b < 8; b++) v |= (u64)BUF[i + 8 * l + b] << (8 * b);
            acc[l] = rotl64(acc[l] + v * P2, 31) * P1;
        }
    u64 h = rotl64(acc[0], 1) + rotl64(acc[1], 7) + rotl64(acc[2], 12) + rotl64(acc[3], 18);
    h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ull; h ^= h >> 33;
    u32 m = fnv32;
    m ^= m >> 16; m *= 0x85ebca6bu; m ^= m >> 13; m *= 0xc2b2ae35u; m ^= m >> 16;
    return mix(mix(fnv, h), m);
}

/* ---- 3: quicksort and heapsort with comparators through function pointers ---- */
typedef int (*cmp_fn)(const void *, const void *);
static int cmp_i32(const void *a, const void *b) { i32 x = *(const i32 *)a, y = *(const i32 *)b; return (x > y) - (x < y); }
static int cmp_u64_desc(const void *a, const void *b) { u64 x = *(const u64 *)a, y = *(const u64 *)b; return (x < y) - (x > y); }
static int cmp_i16_abs(const void *a, const void *b)
{
    i32 x = *(const i16 *)a, y = *(const i16 *)b;
    x = x < 0 ? -x : x; y = y < 0 ? -y : y;
    if (x != y) return x < y ? -1 : 1;
    return (*(const i16 *)a > *(const i16 *)b) - (*(const i16 *)a < *(const i16 *)b);
}
static void swap_bytes(u8 *a, u8 *b, u64 size) { for (u64 i = 0; i < size; i++) { u8 t = a[i]; a[i] = b[i]; b[i] = t; } }
static void quicksort(u8 *base, i64 lo, i64 hi, u64 size, cmp_fn cmp)
{
    while (lo < hi) {
        i64 mid = lo + (hi - lo) / 2;
        swap_bytes(base + mid * size, base + hi * size, size);
        i64 store = lo;
        for (i64 i = lo; i < hi; i++)
            if (cmp(base + i * size, base + hi * size) < 0) { swap_bytes(base + i * size, base + store * size, size); store++; }
        swap_bytes(base + store * size, base + hi * size, size);
        if (store - lo < hi - store) { quicksort(base, lo, store - 1, size, cmp); lo = store + 1; }
        else { quicksort(base, store + 1, hi, size, cmp); hi = store - 1; }
    }
}
static void sift(u8 *base, u64 root, u64 n, u64 size, cmp_fn cmp)
{
    for (;;) {
        u64 child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && cmp(base + child * size, base + (child + 1) * size) < 0) child++;
        if (cmp(base + root * size, base + child * size) >= 0) return;
        swap_bytes(base + root * size, base + child * size, size);
        root = child;
    }
}
static void heapsort(u8 *base, u64 n, u64 size, cmp_fn cmp)
{
    for (u64 i = n / 2; i-- > 0;) sift(base, i, n, size, cmp);
    for (u64 end = n; end-- > 1;) { swap_bytes(base, base + end * size, size); sift(base, 0, end, size, cmp); }
}
NOINLINE static u64 sort_part(u64 seed)
{
    rng r = seeded(seed, 3);
    static i32 a[64], b[64];
    static u64 c[40];
    static i16 d[48];
    for (int i = 0; i < 64; i++) a[i] = b[i] = (i32)(next(&r) % 1000) - 500;
    for (int i = 0; i < 40; i++) c[i] = next(&r) >> (i & 7);
    for (int i = 0; i < 48; i++) d[i] = (i16)next(&r);
    cmp_fn fns[3] = { cmp_i32, cmp_u64_desc, cmp_i16_abs };
    quicksort((u8 *)a, 0, 63, sizeof a[0], fns[0]);
    heapsort((u8 *)b, 64, sizeof b[0], fns[0]);
    quicksort((u8 *)c, 0, 39, sizeof c[0], fns[1]);
    heapsort((u8 *)d, 48, sizeof d[0], fns[2]);
    u64 h = 0;
    for (int i = 0; i < 64; i++) h = mix(h, (u64)(u32)a[i] ^ ((u64)(a[i] == b[i]) << 40));
    for (int i = 0; i < 40; i++) h = mix(h, c[i]);
    for (int i = 0; i < 48; i++) h = mix(h, (u64)(u16)d[i]);
    return h;
}

/* ---- 4: a bytecode interpreter (a dense switch: a jump table) and computed gotos ---- */
enum { OP_PUSH, OP_ADD, OP_SUB, OP_MUL, OP_DIVU, OP_XOR, OP_DUP, OP_SWAP, OP_JNZ, OP_DEC, OP_SHL, OP_SHR, OP_NEG, OP_ROT, OP_OVER, OP_HALT };
static u64 run_bytecode(const u8 *code, u64 start)
{
    u64 stack[32];
    int sp = 0;
    u64 pc = 0, steps = 0;
    stack[sp++] = start;
    for (;;) {
        if (++steps > 20000) return ~0ull;
        u8 op = code[pc++];
        switch (op) {
        case OP_PUSH: stack[sp++] = code[pc++]; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_DIVU: sp--; stack[sp - 1] /= (stack[sp] | 1); break;
        case OP_XOR: sp--; stack[sp - 1] ^= stack[sp]; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_SWAP: { u64 t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; break; }
        case OP_JNZ: { u8 target = code[pc++]; sp--; if (stack[sp]) pc = target; break; }
        case OP_DEC: stack[sp - 1]--; break;
        case OP_SHL: stack[sp - 1] <<= 3; break;
        case OP_SHR: stack[sp - 1] >>= 5; break;
        case OP_NEG: stack[sp - 1] = 0 - stack[sp - 1]; break;
        case OP_ROT: stack[sp - 1] = rotl64(stack[sp - 1], 17); break;
        case OP_OVER: stack[sp] = stack[sp - 2]; sp++; break;
        case OP_HALT: return stack[sp - 1] ^ ((u64)sp << 56);
        default: return 0xdead;
        }
    }
}
static u64 threaded(const u8 *code, u64 acc)
{
    static void *const labels[] = { &&op_add, &&op_mul, &&op_rot, &&op_xor, &&op_end };
    u64 i = 0;
#define DISPATCH() goto *labels[code[i++] % 5]
    DISPATCH();
op_add: acc += 0x1234567; DISPATCH();
op_mul: acc *= 0x9e3779b1; DISPATCH();
op_rot: acc = rotl64(acc, 13); DISPATCH();
op_xor: acc ^= acc >> 7; DISPATCH();
op_end:
#undef DISPATCH
    return acc;
}
NOINLINE static u64 interp_part(u64 seed)
{
    /* acc = seed; counter = 40; loop: acc = acc * 31 + counter, acc ^= acc >> 5 ... until counter = 0 */
    static const u8 prog[] = {
        OP_PUSH, 20, OP_SWAP,                     /* counter acc */
        /* 3: */ OP_PUSH, 31, OP_MUL, OP_OVER, OP_ADD, OP_DUP, OP_SHR, OP_XOR, OP_ROT, OP_SWAP, OP_DEC,
        OP_DUP, OP_JNZ, 18, OP_PUSH, 0, OP_JNZ, 22, OP_PUSH, 1, OP_JNZ, 24, OP_HALT, 0, 0,
        /* 24: */ OP_SWAP, OP_PUSH, 1, OP_JNZ, 3,
    };
    u64 h = 0;
    for (u64 k = 0; k < 3; k++) h = mix(h, run_bytecode(prog, seed + k));
    static const u8 prog2[] = { OP_PUSH, 200, OP_DIVU, OP_DUP, OP_SHL, OP_SUB, OP_NEG, OP_PUSH, 7, OP_MUL, OP_HALT };
    h = mix(h, run_bytecode(prog2, seed));
    u8 code[64];
    rng r = seeded(seed, 4);
    for (int i = 0; i < 63; i++) code[i] = (u8)(next(&r) % 4);
    code[63] = 4;
    return mix(h, threaded(code, seed));
}

/* ---- 5: 64-bit multiply, divide, modulo with signed and unsigned mixes (and by constants) ---- */
NOINLINE static u64 div_by_var(u64 a, u64 b) { return a / b; }
NOINLINE static i64 sdiv_by_var(i64 a, i64 b) { return a / b; }
NOINLINE static i64 smod_by_var(i64 a, i64 b) { return a % b; }
NOINLINE static u64 arith64_part(u64 seed)
{
    rng r = seeded(seed, 5);
    u64 h = 0;
    for (int i = 0; i < 24; i++) {
        u64 a = next(&r), b = next_shifted(&r, 60);
        if (b == 0) b = 3;
        i64 sa = (i64)a, sb = (i64)((i & 1) ? 0 - b : b);
        if (sb == -1) sb = -3;
        h = mix(h, div_by_var(a, b));
        h = mix(h, a % b);
        h = mix(h, (u64)sdiv_by_var(sa, sb));
        h = mix(h, (u64)smod_by_var(sa, sb));
        h = mix(h, a / 10 + a / 7 + a % 1000 + a / 0xffffffffull);
        h = mix(h, (u64)(sa / 10) + (u64)(sa % 7) + (u64)(sa / -3) + (u64)(sa / 16) + (u64)(sa % 16));
        u32 a32 = (u32)a, b32 = (u32)b | 1;
        i32 s32 = (i32)a32, t32 = (i32)(b32 >> 2) + 1;
        h = mix(h, (u64)(a32 / b32) << 32 | (a32 % b32));
        h = mix(h, (u64)(u32)(s32 / t32) << 32 | (u32)(s32 % t32));
        h = mix(h, (u64)(u32)(s32 / 9) + (u64)(u32)(s32 % -5) + a32 / 1000000u);
        h = mix(h, a * b + (u64)((i64)(i32)a32 * (i64)(i32)b32) + (u64)a32 * b32);
        i16 x16 = (i16)a, y16 = (i16)(b | 1);
        h = mix(h, (u64)(u16)(i16)(x16 / y16) | (u64)(u16)(i16)(x16 % y16) << 16 | (u64)(u8)((u8)a / (u8)(b | 1)) << 32);
        i8 x8 = (i8)a, y8 = (i8)(b | 1);
        if (y8 == -1) y8 = 5;
        h = mix(h, (u64)(u8)(i8)(x8 / y8) | (u64)(u8)(i8)(x8 % y8) << 8);
    }
    return h;
}

/* ---- 6: 128-bit multiply, divide, modulo ---- */
NOINLINE static u128 div128(u128 a, u128 b) { return a / b; }
NOINLINE static i128 sdiv128(i128 a, i128 b) { return a / b; }
NOINLINE static i128 smod128(i128 a, i128 b) { return a % b; }
NOINLINE static u64 arith128_part(u64 seed)
{
    rng r = seeded(seed, 6);
    u64 h = 0;
    for (int i = 0; i < 12; i++) {
        u64 a0 = next(&r), a1 = next(&r), b0 = next(&r), b1 = next_shifted(&r, 64);
        u128 a = (u128)a1 << 64 | a0, b = (u128)b1 << 64 | b0;
        if (i & 1) b >>= 64;
        if (b == 0) b = 7;
        u128 p = a * b, q = div128(a, b), m = a % b;
        h = mix(h, (u64)p); h = mix(h, (u64)(p >> 64));
        h = mix(h, (u64)q); h = mix(h, (u64)(q >> 64));
        h = mix(h, (u64)m); h = mix(h, (u64)(m >> 64));
        i128 sa = (i128)a, sb = (i128)b;
        if (i & 2) sb = (i128)(0 - (u128)sb);
        if (sb == -1) sb = 5;
        i128 sq = sdiv128(sa, sb), sm = smod128(sa, sb);
        h = mix(h, (u64)sq ^ (u64)((u128)sq >> 64)); h = mix(h, (u64)sm ^ (u64)((u128)sm >> 64));
        u128 wide = (u128)a0 * b0;
        i128 swide = (i128)(i64)a0 * (i64)b0;
        h = mix(h, (u64)(wide >> 64) ^ (u64)((u128)swide >> 64));
        h = mix(h, (u64)(a / 10) ^ (u64)(a % 1000000007u));
    }
    return h;
}

#if defined(CORPUS_NO_FP) && !defined(CORPUS_HOST)
/* The -mgeneral-regs-only builds (which /dev/kvm runs) bring their own 128-bit division: libgcc's x86-64
 * __udivti3/__divti3 move the quotient's halves through XMM registers (movq, punpcklqdq, movaps), and kvm_pvm hands
 * guest SSE to KVM's instruction emulator, which stops. Shift-and-subtract, general registers only. */
static u128 udivmod128(u128 n, u128 d, u128 *rem)
{
    u128 q = 0, r = 0;
    for (int b = 127; b >= 0; b--) {
        r = r << 1 | ((n >> b) & 1);
        if (r >= d) { r -= d; q |= (u128)1 << b; }
    }
    *rem = r;
    return q;
}
u128 __udivti3(u128 n, u128 d);
u128 __umodti3(u128 n, u128 d);
i128 __divti3(i128 n, i128 d);
i128 __modti3(i128 n, i128 d);
u128 __udivti3(u128 n, u128 d) { u128 r; return udivmod128(n, d, &r); }
u128 __umodti3(u128 n, u128 d) { u128 r; udivmod128(n, d, &r); return r; }
i128 __divti3(i128 n, i128 d)
{
    u128 r, q = udivmod128(n < 0 ? 0 - (u128)n : (u128)n, d < 0 ? 0 - (u128)d : (u128)d, &r);
    return (i128)((n < 0) != (d < 0) ? 0 - q : q);
}
i128 __modti3(i128 n, i128 d)
{
    u128 r;
    udivmod128(n < 0 ? 0 - (u128)n : (u128)n, d < 0 ? 0 - (u128)d : (u128)d, &r);
    return (i128)(n < 0 ? 0 - r : r);
}
#endif

/* ---- 7: bit tricks: popcount, clz, ctz, parity, ffs, rotates, bswap, bit reversal, overflow builtins ---- */
NOINLINE static u64 bits_part(u64 seed)
{
    rng r = seeded(seed, 7);
    u64 h = 0;
    for (int i = 0; i < 32; i++) {
        u64 x = next(&r), y = next(&r) >> (i % 64);
        u32 x32 = (u32)x, s = (u32)(y & 63);
        h = mix(h, (u64)__builtin_popcountll(x) | (u64)__builtin_popcount(x32) << 8 | (u64)__builtin_parityll(y) << 16);
        h = mix(h, (u64)__builtin_clzll(x | 1) | (u64)__builtin_ctzll(y | (1ull << 63)) << 8 | (u64)__builtin_clz(x32 | 1) << 16
                       | (u64)__builtin_ctz(x32 | 0x80000000u) << 24 | (u64)__builtin_ffsll((i64)y) << 32 | (u64)__builtin_clrsbll((i64)x) << 40);
        h = mix(h, rotl64(x, s) ^ ((x >> s) | (x << ((64 - s) & 63))));
        h = mix(h, (u64)ror32(x32, s & 31 ? s & 31 : 1) ^ (u64)(u16)((u16)x << 3 | (u16)x >> 13));
        h = mix(h, __builtin_bswap64(x) ^ __builtin_bswap32(x32) ^ __builtin_bswap16((u16)y));
        u64 rev = 0;
        for (int b = 0; b < 64; b++) rev |= ((x >> b) & 1) << (63 - b);
        h = mix(h, rev);
        h = mix(h, (x & -x) ^ (x & (x - 1)) ^ (x ^ (x - 1)) ^ (~x & y));
        u64 res64;
        i64 sres;
        u32 res32;
        int o1 = __builtin_add_overflow(x, y, &res64);
        int o2 = __builtin_mul_overflow((i64)x >> 20, (i64)y >> 30, &sres);
        int o3 = __builtin_sub_overflow(x32, (u32)y, &res32);
        int o4 = __builtin_mul_overflow(x, y >> 40, &res64);
        h = mix(h, res64 ^ (u64)sres ^ res32 ^ (u64)(o1 | o2 << 1 | o3 << 2 | o4 << 3) << 60);
        h = mix(h, (u64)((i64)x >> s) ^ (u64)((i32)x32 >> (s & 31)) ^ (x >> s) ^ (x << s));
        h = mix(h, (u64)(x > y) | (u64)((i64)x > (i64)y) << 1 | (u64)((i32)x32 < (i32)y) << 2 | (u64)(x32 <= (u32)y) << 3);
    }
    return h;
}

/* ---- 8: a bignum (32-bit limbs): add, sub, multiply, divide by a small number, with carry chains ---- */
#define LIMBS 12
typedef struct { u32 d[LIMBS]; } big;
static big big_add(const big *a, const big *b)
{
    big r;
    u64 c = 0;
    for (int i = 0; i < LIMBS; i++) { c += (u64)a->d[i] + b->d[i]; r.d[i] = (u32)c; c >>= 32; }
    return r;
}
static big big_sub(const big *a, const big *b)
{
    big r;
    u64 borrow = 0;
    for (int i = 0; i < LIMBS; i++) { u64 t = (u64)a->d[i] - b->d[i] - borrow; r.d[i] = (u32)t; borrow = (t >> 32) & 1; }
    return r;
}
static big big_mul(const big *a, const big *b)
{
    big r = { { 0 } };
    for (int i = 0; i < LIMBS; i++) {
        u64 c = 0;
        for (int j = 0; i + j < LIMBS; j++) {
            c += (u64)a->d[i] * b->d[j] + r.d[i + j];
            r.d[i + j] = (u32)c;
            c >>= 32;
        }
    }
    return r;
}
static u32 big_divsmall(big *a, u32 d)
{
    u64 rem = 0;
    for (int i = LIMBS - 1; i >= 0; i--) { u64 cur = rem << 32 | a->d[i]; a->d[i] = (u32)(cur / d); rem = cur % d; }
    return (u32)rem;
}
NOINLINE static u64 bignum_part(u64 seed)
{
    rng r = seeded(seed, 8);
    big a, b;
    for (int i = 0; i < LIMBS; i++) { a.d[i] = (u32)next(&r); b.d[i] = i < LIMBS / 2 ? (u32)next(&r) : 0; }
    u64 h = 0;
    for (int k = 0; k < 3; k++) {
        big s = big_add(&a, &b), d = big_sub(&a, &b), p = big_mul(&a, &b);
        for (int i = 0; i < LIMBS; i++) h = mix(h, (u64)s.d[i] << 32 ^ d.d[i] ^ (u64)p.d[i] << 16);
        h = mix(h, big_divsmall(&p, 1000000007u));
        h = mix(h, big_divsmall(&p, 10));
        a = p;
        b = d;
    }
    /* 3^60 in decimal digits, through repeated multiply and divide */
    big t = { { 1 } };
    for (int i = 0; i < 60; i++) {
        u64 c = 0;
        for (int l = 0; l < LIMBS; l++) { c += (u64)t.d[l] * 3; t.d[l] = (u32)c; c >>= 32; }
    }
    u64 digits = 0;
    for (int i = 0; i < 29; i++) digits = digits * 3 + big_divsmall(&t, 10);
    return mix(h, digits);
}

/* ---- 9: integer formatting and parsing (division by constants) ---- */
static u64 fmt_u64(u8 *out, u64 v, u32 base)
{
    u8 tmp[72];
    u64 n = 0;
    do { u32 dgt = (u32)(v % base); tmp[n++] = (u8)(dgt < 10 ? '0' + dgt : 'a' + dgt - 10); v /= base; } while (v);
    for (u64 i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
    return n;
}
static u64 fmt_dec(u8 *out, u64 v)
{
    u8 tmp[24];
    u64 n = 0;
    do { tmp[n++] = (u8)('0' + v % 10); v /= 10; } while (v);
    for (u64 i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
    return n;
}
static u64 fmt_i64(u8 *out, i64 v)
{
    if (v < 0) { out[0] = '-'; return 1 + fmt_dec(out + 1, 0 - (u64)v); }
    return fmt_dec(out, (u64)v);
}
static u64 parse_u64(const u8 *s, u32 base)
{
    u64 v = 0;
    for (; *s; s++) v = v * base + (u64)(*s >= 'a' ? *s - 'a' + 10 : *s - '0');
    return v;
}
NOINLINE static u64 format_part(u64 seed)
{
    rng r = seeded(seed, 9);
    u8 s[80];
    u64 h = 0;
    for (int i = 0; i < 15; i++) {
        u64 v = next_shifted(&r, 64);
        u64 n = fmt_dec(s, v);
        for (u64 k = 0; k < n; k++) h = mix(h, s[k]);
        h = mix(h, parse_u64(s, 10) ^ v);
        u32 bases[] = { 2, 8, 16, 36, 7 };
        u32 base = bases[i % 5];
        n = fmt_u64(s, v, base);
        h = mix(h, n ^ parse_u64(s, base) ^ s[0] ^ (u64)s[n - 1] << 8);
        n = fmt_i64(s, (i64)((i & 1) ? 0 - v : v) >> 3);
        for (u64 k = 0; k < n; k++) h = mix(h, s[k]);
    }
    u64 n = fmt_i64(s, (i64)(1ull << 63));
    for (u64 k = 0; k < n; k++) h = mix(h, s[k]);
    return h;
}

/* ---- 10: struct copies, passing and returning large structs by value ---- */
typedef struct { u64 a[9]; u32 b; u8 c[13]; i16 d; } large;
typedef struct { u8 x; u16 y; u32 z; } small3;
NOINLINE static large make_large(u64 seed)
{
    large l;
    rng r = seeded(seed, 10);
    for (int i = 0; i < 9; i++) l.a[i] = next(&r);
    l.b = (u32)next(&r);
    for (int i = 0; i < 13; i++) l.c[i] = (u8)next(&r);
    l.d = (i16)next(&r);
    return l;
}
NOINLINE static large twist(large l, small3 s, large m)
{
    for (int i = 0; i < 9; i++) l.a[i] = rotl64(l.a[i], (u32)i) + m.a[8 - i] + s.z;
    l.b ^= m.b + s.y;
    for (int i = 0; i < 13; i++) l.c[i] = (u8)(l.c[i] + m.c[12 - i] + s.x);
    l.d = (i16)(l.d - m.d);
    return l;
}
NOINLINE static small3 make_small(u64 v) { small3 s = { (u8)v, (u16)(v >> 8), (u32)(v >> 24) }; return s; }
static u64 hash_large(const large *l)
{
    u64 h = 0;
    for (int i = 0; i < 9; i++) h = mix(h, l->a[i]);
    h = mix(h, l->b);
    for (int i = 0; i < 13; i++) h = mix(h, l->c[i]);
    return mix(h, (u64)(u16)l->d);
}
NOINLINE static u64 struct_part(u64 seed)
{
    large a = make_large(seed), b = make_large(seed + 1);
    large arr[6];
    for (int i = 0; i < 6; i++) {
        arr[i] = twist(a, make_small(seed * (u64)(i + 1)), b);
        b = a;
        a = arr[i];
    }
    large copy;
    my_memcpy(&copy, &arr[3], sizeof copy);
    copy = arr[(seed & 3) + 1];
    u64 h = hash_large(&copy);
    for (int i = 0; i < 6; i++) h = mix(h, hash_large(&arr[i]));
    struct { large l; small3 s; } nested = { arr[5], make_small(seed) }, n2;
    n2 = nested;
    return mix(mix(h, hash_large(&n2.l)), n2.s.x ^ n2.s.y ^ (u64)n2.s.z);
}

/* ---- 11: variadic functions ---- */
NOINLINE static u64 vsum(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    u64 h = 0;
    for (int i = 0; i < n; i++) {
        if (i % 3 == 0) h = mix(h, va_arg(ap, u64));
        else if (i % 3 == 1) h = mix(h, (u64)(i64)va_arg(ap, int));
        else {
            small3 s = va_arg(ap, small3);
            h = mix(h, s.x + s.y + (u64)s.z);
        }
    }
    va_end(ap);
    return h;
}
static u64 vforward(int n, va_list ap)
{
    u64 h = 0;
    va_list copy;
    va_copy(copy, ap);
    for (int i = 0; i < n; i++) h = mix(h, va_arg(ap, u64));
    for (int i = 0; i < n; i++) h = mix(h, va_arg(copy, u64) >> 1);
    va_end(copy);
    return h;
}
NOINLINE static u64 vouter(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    u64 h = vforward(n, ap);
    va_end(ap);
    return h;
}
NOINLINE static u64 varargs_part(u64 seed)
{
    small3 s = make_small(seed);
    u64 h = vsum(9, seed, -5, s, seed * 3, 7, make_small(seed >> 3), ~seed, (int)seed, s);
    h = mix(h, vouter(12, seed, seed + 1, seed + 2, seed + 3, seed + 4, seed + 5, seed + 6, seed + 7, seed + 8, seed + 9, seed + 10, seed + 11));
    return mix(h, vsum(1, seed));
}

/* ---- 12: variable-length arrays, alloca and over-aligned locals (stack realignment: and rsp, -N; leave) ---- */
NOINLINE static u64 vla_sum(u32 n, u64 seed)
{
    u64 vla[n];
    u32 other[n + 3];
    for (u32 i = 0; i < n; i++) vla[i] = seed * (i + 1);
    for (u32 i = 0; i < n + 3; i++) other[i] = (u32)(seed >> (i % 32)) + i;
    u64 h = 0;
    for (u32 i = 0; i < n; i++) h = mix(h, vla[n - 1 - i] ^ other[i + 2]);
    return h;
}
NOINLINE static u64 alloca_sum(u32 n, u64 seed)
{
    u8 *p = __builtin_alloca(n);
    for (u32 i = 0; i < n; i++) p[i] = (u8)(seed + i * 7);
    u64 h = 0;
    for (u32 i = 0; i < n; i += 3) h = mix(h, p[i]);
    return h;
}
NOINLINE static u64 aligned_locals(u64 seed, u32 depth)
{
    _Alignas(64) u8 block[100];
    _Alignas(32) u64 words[5];
    for (int i = 0; i < 100; i++) block[i] = (u8)(seed >> (i % 8));
    for (int i = 0; i < 5; i++) words[i] = seed + (u64)i;
    u64 h = ((u64)(__UINTPTR_TYPE__)block & 63) | ((u64)(__UINTPTR_TYPE__)words & 31) << 8;
    for (int i = 0; i < 100; i++) h = mix(h, block[i]);
    for (int i = 0; i < 5; i++) h = mix(h, words[i]);
    if (depth) h = mix(h, aligned_locals(seed * 3, depth - 1));
    return h;
}
NOINLINE static u64 stack_part(u64 seed)
{
    u64 h = 0;
    for (u32 n = 1; n < 40; n += 13) h = mix(h, vla_sum(n, seed) ^ alloca_sum(n * 5, seed));
    return mix(h, aligned_locals(seed, 3));
}

/* ---- 13: deep recursion: Ackermann, n-queens, mutual recursion, recursion through function pointers ---- */
static u64 ack(u64 m, u64 n)
{
    if (m == 0) return n + 1;
    if (n == 0) return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}
static u32 queens(u32 n, u32 row, u32 cols, u32 d1, u32 d2)
{
    if (row == n) return 1;
    u32 count = 0;
    for (u32 c = 0; c < n; c++) {
        u32 a = 1u << c, b = 1u << (row + c), e = 1u << (row + n - c);
        if ((cols & a) || (d1 & b) || (d2 & e)) continue;
        count += queens(n, row + 1, cols | a, d1 | b, d2 | e);
    }
    return count;
}
static int is_odd(u64 n);
NOINLINE static int is_even(u64 n) { return n == 0 ? 1 : is_odd(n - 1); }
NOINLINE static int is_odd(u64 n) { return n == 0 ? 0 : is_even(n - 1); }
typedef u64 (*rec_fn)(u64, u64);
static u64 fib_via(u64 n, u64 unused);
static rec_fn volatile FIB = fib_via;
static u64 fib_via(u64 n, u64 unused) { return n < 2 ? n + unused : FIB(n - 1, unused) + FIB(n - 2, unused); }
NOINLINE static u64 recursion_part(u64 seed)
{
    u64 h = mix(ack(2, 3 + seed % 4), ack(3, 1 + seed % 2));
    h = mix(h, queens(5 + (u32)(seed % 2), 0, 0, 0, 0));
    h = mix(h, (u64)is_even(100 + seed % 100) | (u64)is_odd(101 + seed % 50) << 1);
    return mix(h, FIB(10 + seed % 3, 0));
}

/* ---- 14: a switch-heavy state machine: a UTF-8 decoder and a tokeniser (sparse switch, if-chains) ---- */
NOINLINE static u64 utf8_decode(const u8 *s, u64 n, u32 *out, u64 *count)
{
    u64 errors = 0, k = 0;
    u32 state = 0, cp = 0, need = 0;
    for (u64 i = 0; i < n; i++) {
        u8 b = s[i];
        switch (state) {
        case 0:
            if (b < 0x80) out[k++] = b;
            else if ((b & 0xe0) == 0xc0) { cp = b & 0x1f; need = 1; state = 1; }
            else if ((b & 0xf0) == 0xe0) { cp = b & 0x0f; need = 2; state = 1; }
            else if ((b & 0xf8) == 0xf0) { cp = b & 0x07; need = 3; state = 1; }
            else errors++;
            break;
        case 1:
            if ((b & 0xc0) != 0x80) { errors++; state = 0; i--; break; }
            cp = cp << 6 | (b & 0x3f);
            if (--need == 0) { out[k++] = cp; state = 0; }
            break;
        }
    }
    *count = k;
    return errors;
}
NOINLINE static u32 classify(u32 c)
{
    switch (c) {
    case ' ': case '\t': case '\n': return 1;
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9': return 2;
    case '+': case '-': case '*': case '/': case '%': return 3;
    case '(': return 4;
    case ')': return 5;
    case 0x263a: return 6;
    case 0x10348: return 7;
    case 0xe9: return 8;
    default: return c < 0x80 ? 9 : 10;
    }
}
NOINLINE static u64 state_part(u64 seed)
{
    rng r = seeded(seed, 14);
    static const u8 pieces[][5] = { "a", "7", " ", "(", ")", "+", "\xc3\xa9", "\xe2\x98\xba", "\xf0\x90\x8d\x88", "\xff", "\xe2\x98", "-" };
    u8 text[208];
    u64 n = 0;
    while (n < 200) {
        const u8 *p = pieces[next(&r) % 12];
        while (*p) text[n++] = *p++;
    }
    static u32 cps[208];
    u64 count;
    u64 errors = utf8_decode(text, n, cps, &count);
    u64 h = mix(errors, count);
    u32 prev = 0;
    u64 tokens = 0, depth = 0, maxdepth = 0;
    for (u64 i = 0; i < count; i++) {
        u32 c = classify(cps[i]);
        if (c != prev) tokens++;
        if (c == 4) { depth++; if (depth > maxdepth) maxdepth = depth; }
        if (c == 5 && depth) depth--;
        h = mix(h, c + cps[i]);
        prev = c;
    }
    return mix(h, tokens << 32 | maxdepth);
}

/* ---- 15: narrow integer arithmetic: promotions, sign and zero extensions, saturation, conditional selects ---- */
static u8 sat_add_u8(u8 a, u8 b) { u32 s = (u32)a + b; return s > 255 ? 255 : (u8)s; }
static i16 sat_sub_i16(i16 a, i16 b) { i32 s = (i32)a - b; return s > 32767 ? 32767 : s < -32768 ? -32768 : (i16)s; }
NOINLINE static u64 narrow_part(u64 seed)
{
    rng r = seeded(seed, 15);
    static u8 a8[64];
    static i8 s8[64];
    static i16 s16[64];
    static u16 u16s[64];
    static i32 s32[64];
    for (int i = 0; i < 64; i++) {
        u64 v = next(&r);
        a8[i] = (u8)v; s8[i] = (i8)(v >> 8); s16[i] = (i16)(v >> 16); u16s[i] = (u16)(v >> 32); s32[i] = (i32)(v >> 24);
    }
    u64 h = 0;
    i64 acc = 0;
    u32 uacc = 0;
    for (int i = 0; i < 64; i++) {
        acc += s8[i] * s16[i] + (i64)s32[i] * s8[63 - i];
        uacc += (u32)a8[i] * u16s[i];
        a8[i] = sat_add_u8(a8[i], a8[(i + 1) & 63]);
        s16[i] = sat_sub_i16(s16[i], s16[(i + 7) & 63]);
        s32[i] = s32[i] > 0 ? s32[i] >> 3 : -(s32[i] >> 5);
        u16s[i] = (u16)(u16s[i] * 3u + (u16)(i16)s8[i]);
    }
    i32 mn = s32[0], mx = s32[0];
    for (int i = 1; i < 64; i++) { if (s32[i] < mn) mn = s32[i]; if (s32[i] > mx) mx = s32[i]; }
    for (int i = 0; i < 64; i++) h = mix(h, (u64)a8[i] | (u64)(u16)s16[i] << 8 | (u64)u16s[i] << 24 | (u64)(u32)s32[i] << 40);
    h = mix(h, (u64)acc ^ uacc ^ (u64)(u32)mn << 32 ^ (u32)mx);
    u64 abs_sum = 0;
    for (int i = 0; i < 64; i++) abs_sum += (u64)(s16[i] < 0 ? -(i32)s16[i] : s16[i]) + (u64)(s8[i] < 0 ? -(i32)s8[i] : s8[i]);
    return mix(h, abs_sum);
}

/* ---- 16: string functions as loops (which gcc may vectorise): strlen, strchr, memcmp, memchr, reverse ---- */
NOINLINE static u64 my_strlen(const u8 *s) { u64 n = 0; while (s[n]) n++; return n; }
NOINLINE static const u8 *my_strchr(const u8 *s, u8 c) { for (; *s; s++) if (*s == c) return s; return c ? 0 : s; }
NOINLINE static int my_memcmp(const u8 *a, const u8 *b, u64 n)
{
    for (u64 i = 0; i < n; i++) if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}
NOINLINE static u64 count_byte(const u8 *s, u64 n, u8 c) { u64 k = 0; for (u64 i = 0; i < n; i++) k += s[i] == c; return k; }
NOINLINE static u64 string_part(u64 seed)
{
    rng r = seeded(seed, 16);
    static u8 s[256], t[256];
    for (int i = 0; i < 255; i++) s[i] = (u8)('a' + next(&r) % 26);
    s[255] = 0;
    u64 h = 0;
    for (int k = 0; k < 6; k++) {
        u64 cut = 40 + next(&r) % 200;
        s[cut] = 0;
        h = mix(h, my_strlen(s));
        const u8 *p = my_strchr(s, (u8)('a' + k));
        h = mix(h, p ? (u64)(p - s) : 9999);
        s[cut] = (u8)('a' + k);
    }
    my_memcpy(t, s, 256);
    h = mix(h, (u64)(i64)my_memcmp(s, t, 256));
    t[200] ^= 1;
    h = mix(h, (u64)(i64)my_memcmp(s, t, 256) + 2 * (u64)(i64)my_memcmp(t, s, 256));
    h = mix(h, count_byte(s, 255, 'e') << 16 | count_byte(t, 250, 'q'));
    for (int i = 0; i < 127; i++) { u8 c = t[i]; t[i] = t[254 - i]; t[254 - i] = c; }
    for (int i = 0; i < 255; i++) t[i] = (u8)(t[i] >= 'a' && t[i] <= 'z' ? t[i] - 32 : t[i]);
    for (int i = 0; i < 255; i += 17) h = mix(h, t[i]);
    return h;
}

/* ---- 17: matrix multiply of int32 (and int64 accumulators) ---- */
NOINLINE static u64 imatrix_part(u64 seed)
{
    rng r = seeded(seed, 17);
    static i32 a[10][10], b[10][10], c[10][10];
    static i64 d[10][10];
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) { a[i][j] = (i32)(next(&r) % 2001) - 1000; b[i][j] = (i32)(next(&r) % 201) - 100; }
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) {
            i32 s = 0;
            i64 s64 = 0;
            for (int k = 0; k < 10; k++) { s += a[i][k] * b[k][j]; s64 += (i64)a[i][k] * b[j][k] * 3; }
            c[i][j] = s;
            d[i][j] = s64;
        }
    u64 h = 0;
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) h = mix(h, (u64)(u32)c[i][j] ^ (u64)d[i][j] << 7);
    return h;
}

/* ---- 18: bit fields and unions ---- */
struct packed_bits { u32 a : 3; i32 b : 7; u32 c : 12; u64 d : 37; i64 e : 20; u8 f : 1; };
NOINLINE static u64 bitfield_part(u64 seed)
{
    rng r = seeded(seed, 18);
    struct packed_bits p[16];
    for (int i = 0; i < 16; i++) {
        u64 v = next(&r);
        p[i].a = v & 7; p[i].b = (i32)((v >> 3) & 127) - 64; p[i].c = (v >> 10) & 0xfff; p[i].d = v >> 27;
        p[i].e = (i64)((v >> 5) & 0xfffff) - 0x80000; p[i].f = v >> 63;
    }
    u64 h = 0;
    for (int i = 0; i < 16; i++) {
        p[i].b = (i32)(p[i].b + p[(i + 1) & 15].a) % 63;
        p[i].d += p[i].c;
        p[i].e = p[i].e / 3;
        h = mix(h, (u64)p[i].a | (u64)(u32)p[i].b << 3 | (u64)p[i].c << 40);
        h = mix(h, (u64)p[i].d ^ (u64)p[i].e << 20 ^ p[i].f);
    }
    union { u64 q; u32 w[2]; u16 s[4]; u8 b[8]; } u = { seed };
    h = mix(h, (u64)u.w[0] ^ (u64)u.s[1] << 32 ^ (u64)u.b[7] << 56);
    return h;
}


/* ---- 19: loops gcc vectorises at -O3: widening sums, min/max and match-count reductions, dot products of
 * 16-bit values, 64-bit multiplies, per-element variable shifts, absolute differences, byte multiplies,
 * conditional stores, interleaved (structure) loads ---- */
NOINLINE static u64 vector_part(u64 seed)
{
    rng r = seeded(seed, 22);
    static u8 b8[128], c8[128];
    static i16 x16[128], y16[128];
    static u32 u[64], sh[64];
    static i32 sv[64];
    static u64 q[32], qq[32];
    for (int i = 0; i < 128; i++) {
        u64 v = next(&r);
        b8[i] = (u8)v; c8[i] = (u8)(v >> 8); x16[i] = (i16)(v >> 16); y16[i] = (i16)(v >> 32);
    }
    for (int i = 0; i < 64; i++) { u64 v = next(&r); u[i] = (u32)v; sh[i] = (u32)(v >> 32) % 32; sv[i] = (i32)(v >> 16); }
    for (int i = 0; i < 32; i++) { q[i] = next(&r); qq[i] = next(&r); }
    u64 h = 0;
    u32 bsum = 0, sad = 0, matches = 0;
    u8 bmax = 0, bmin = 255;
    for (int i = 0; i < 128; i++) bsum += b8[i];
    for (int i = 0; i < 128; i++) sad += (u32)(b8[i] > c8[i] ? b8[i] - c8[i] : c8[i] - b8[i]);
    for (int i = 0; i < 128; i++) { bmax = b8[i] > bmax ? b8[i] : bmax; bmin = b8[i] < bmin ? b8[i] : bmin; }
    for (int i = 0; i < 128; i++) matches += (b8[i] & 0xf) == (c8[i] & 0xf);
    h = mix(h, (u64)bsum << 32 | sad);
    h = mix(h, (u64)bmax << 40 | (u64)bmin << 32 | matches);
    u32 dot = 0;
    i64 dot64 = 0;
    for (int i = 0; i < 128; i++) dot += (u32)(x16[i] * y16[i]);
    for (int i = 0; i < 128; i++) dot64 += (i64)x16[i] * b8[i];
    h = mix(h, (u64)dot ^ (u64)dot64 << 7);
    i32 smax = sv[0], smin = sv[0];
    u32 umax = 0;
    for (int i = 0; i < 64; i++) { smax = sv[i] > smax ? sv[i] : smax; smin = sv[i] < smin ? sv[i] : smin; umax = u[i] > umax ? u[i] : umax; }
    h = mix(h, (u64)(u32)smax << 32 ^ (u32)smin ^ (u64)umax << 16);
    for (int i = 0; i < 64; i++) u[i] = (u[i] << sh[i]) ^ (u[i] >> (31 - sh[i])) ^ (u32)(sv[i] >> sh[i]);
    for (int i = 0; i < 32; i++) q[i] = q[i] * qq[i] + (q[i] >> 3) * 5;
    for (int i = 0; i < 128; i++) c8[i] = (u8)(b8[i] * c8[i] + 3);
    for (int i = 0; i < 128; i++) if (x16[i] > y16[i]) x16[i] = (i16)(y16[i] >> 1);
    for (int i = 0; i < 64; i++) sv[i] = sv[i] < 0 ? -(sv[i] >> 1) : sv[i] >> 2;
    for (int i = 0; i < 64; i += 2) { u32 t = u[i] + u[i + 1]; u[i + 1] = u[i] - u[i + 1]; u[i] = t; } /* stride 2 */
    for (int i = 0; i < 64; i++) h = mix(h, (u64)u[i] << 32 | (u32)sv[i]);
    for (int i = 0; i < 32; i++) h = mix(h, q[i]);
    for (int i = 0; i < 128; i += 4) h = mix(h, (u64)c8[i] | (u64)(u16)x16[i] << 8 | (u64)c8[i + 1] << 24 | (u64)(u16)x16[i + 3] << 32);
    u16 w16[64];
    for (int i = 0; i < 64; i++) w16[i] = (u16)(b8[2 * i] | c8[2 * i + 1] << 8); /* interleaved loads */
    u64 wsum = 0;
    for (int i = 0; i < 64; i++) wsum += (u64)w16[i] * (u64)(i + 1);
    return mix(h, wsum);
}

/* ---- 20: atomics (single-threaded, deterministic), packed and unaligned accesses, 128-bit shifts and compares ---- */
struct __attribute__((packed)) packed_rec { u8 tag; u32 a; u64 b; u16 c; i32 d; };
NOINLINE static u64 atomic_part(u64 seed)
{
    rng r = seeded(seed, 23);
    static u64 a64;
    static u32 a32;
    static u16 a16;
    static u8 a8;
    a64 = next(&r); a32 = (u32)next(&r); a16 = (u16)next(&r); a8 = (u8)next(&r);
    u64 h = 0;
    for (int i = 0; i < 8; i++) {
        u64 v = next(&r);
        h = mix(h, __atomic_fetch_add(&a64, v, __ATOMIC_SEQ_CST));
        h = mix(h, __atomic_fetch_or(&a32, (u32)v, __ATOMIC_ACQ_REL));
        h = mix(h, __atomic_fetch_and(&a16, (u16)(v >> 8), __ATOMIC_RELAXED));
        h = mix(h, __atomic_fetch_xor(&a8, (u8)(v >> 3), __ATOMIC_SEQ_CST));
        h = mix(h, __atomic_exchange_n(&a32, (u32)(v >> 32), __ATOMIC_SEQ_CST));
        u64 expected = (i & 1) ? a64 : v;
        int ok = __atomic_compare_exchange_n(&a64, &expected, v ^ 0x5555, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        h = mix(h, expected ^ (u64)ok << 63);
        h = mix(h, __atomic_add_fetch(&a16, 7, __ATOMIC_SEQ_CST) ^ (u64)__atomic_sub_fetch(&a8, 3, __ATOMIC_SEQ_CST) << 16);
        h = mix(h, __atomic_load_n(&a64, __ATOMIC_ACQUIRE));
        __atomic_store_n(&a32, (u32)v ^ a32, __ATOMIC_RELEASE);
    }
    static u8 raw[64];
    for (int i = 0; i < 64; i++) raw[i] = (u8)next(&r);
    static struct packed_rec recs[7]; /* 19-byte elements: every member at an unaligned address */
    for (int off = 1; off < 8; off++) {
        struct packed_rec *p = &recs[off - 1];
        __builtin_memcpy(p, raw + off, sizeof *p);
        h = mix(h, p->a ^ p->b ^ p->c ^ (u64)(i64)p->d ^ p->tag);
        p->b += p->a;
        p->d = p->d / 3 - p->c;
        h = mix(h, p->b ^ (u64)(u32)p->d);
        raw[off] = (u8)(raw[off] ^ p->tag ^ (u8)p->b);
        u32 w;
        u64 d;
        __builtin_memcpy(&w, raw + off + 3, 4);
        __builtin_memcpy(&d, raw + 2 * off + 1, 8);
        h = mix(h, w ^ d);
    }
    for (int i = 0; i < 64; i++) h = mix(h, raw[i]);
    u128 x = (u128)next(&r) << 64 | next(&r);
    for (u32 k = 0; k < 128; k += 9) {
        u128 y = x << k, z = x >> k;
        i128 sz = (i128)x >> k;
        h = mix(h, (u64)y ^ (u64)(y >> 64) ^ (u64)z ^ (u64)(z >> 64) ^ (u64)((u128)sz >> 64));
        h = mix(h, (u64)(y < z) | (u64)((i128)y < (i128)z) << 1 | (u64)(y == x) << 2);
    }
    return h;
}

#ifndef CORPUS_NO_FP
/* ---- 21: double: sums, products, division, sqrt, conversions to and from integers, rounding ---- */
static u64 dbits(double d) { union { double d; u64 u; } x = { d }; return x.u; }
static u32 fbits(float f) { union { float f; u32 u; } x = { f }; return x.u; }
NOINLINE static u64 fp_double_part(u64 seed)
{
    rng r = seeded(seed, 19);
    static double v[64];
    for (int i = 0; i < 64; i++) v[i] = (double)(i64)next(&r) / 1.0e9 + 0.5;
    double sum = 0, prod = 1, mx = v[0], mn = v[0];
    u64 h = 0;
    for (int i = 0; i < 64; i++) {
        sum += v[i];
        prod = prod * (1.0 + v[i] * 1e-12);
        mx = v[i] > mx ? v[i] : mx;
        mn = v[i] < mn ? v[i] : mn;
        double a = v[i] < 0 ? -v[i] : v[i];
        double s = __builtin_sqrt(a);
        h = mix(h, dbits(s) ^ dbits(v[i] / 3.0) ^ dbits(a * 1.5 - 2.25));
        i64 t = (i64)v[i];
        u64 ut = (u64)a;
        h = mix(h, (u64)t ^ ut << 1 ^ (u64)__builtin_lrint(v[i] * 0.5));
        u64 w = next(&r) >> (i % 64);
        h = mix(h, dbits((double)w) ^ dbits((double)(i64)next(&r)) ^ (u64)(v[i] > 0.0) << 63);
        h = mix(h, fbits((float)v[i]) ^ dbits((double)(float)v[i]));
    }
    h = mix(h, dbits(sum) ^ dbits(prod) ^ dbits(mx) ^ dbits(mn) ^ dbits(sum / 64.0));
    double x = 1.0;
    for (int i = 0; i < 40; i++) x = x * 0.5 + 1.0 / (x + (double)i); /* subnormal-free, exact IEEE */
    return mix(h, dbits(x) ^ dbits(1e308 * 10.0) ^ dbits(-0.0 * 5.0) ^ dbits(4.9e-324 / 2.0 + 4.9e-324));
}

/* ---- 22: float: the same in single precision, and conversions from 64-bit unsigned ---- */
NOINLINE static u64 fp_float_part(u64 seed)
{
    rng r = seeded(seed, 20);
    static float f[64];
    for (int i = 0; i < 64; i++) f[i] = (float)(i32)next(&r) / 65536.0f;
    float s = 0, dot = 0;
    u64 h = 0;
    for (int i = 0; i < 64; i++) {
        s += f[i];
        dot += f[i] * f[63 - i];
        float a = f[i] < 0 ? -f[i] : f[i];
        h = mix(h, fbits(__builtin_sqrtf(a)) ^ (u64)fbits(f[i] * 0.1f) << 32);
        h = mix(h, (u64)(i32)f[i] ^ (u64)(u32)a << 32 ^ (u64)__builtin_lrintf(f[i]));
        u64 big = next(&r) >> (i % 64);
        h = mix(h, fbits((float)big) ^ (u64)fbits((float)(i64)big) << 32 ^ dbits((double)(u32)big));
        h = mix(h, (u64)(f[i] < f[(i + 1) & 63]) | (u64)(f[i] == f[i]) << 1 | (u64)(f[i] >= 0.0f) << 2);
    }
    return mix(h, (u64)fbits(s) << 32 | fbits(dot));
}

/* ---- 23: matrix multiply of doubles, and a small linear solve (Gaussian elimination) ---- */
NOINLINE static u64 fp_matrix_part(u64 seed)
{
    rng r = seeded(seed, 21);
    static double a[8][9], b[8][8], c[8][8];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) { a[i][j] = (double)(i32)(next(&r) % 2001) / 1000.0 - 1.0; b[i][j] = (double)(i32)(next(&r) % 301) / 10.0; }
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            double s = 0;
            for (int k = 0; k < 8; k++) s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
    u64 h = 0;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) h = mix(h, dbits(c[i][j]));
    /* diagonally dominant system: elimination without pivoting */
    double m[8][9];
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 9; j++) m[i][j] = a[i][j];
        m[i][i] += 20.0;
    }
    for (int k = 0; k < 8; k++)
        for (int i = k + 1; i < 8; i++) {
            double f = m[i][k] / m[k][k];
            for (int j = k; j < 9; j++) m[i][j] -= f * m[k][j];
        }
    double x[8];
    for (int i = 7; i >= 0; i--) {
        double s = m[i][8];
        for (int j = i + 1; j < 8; j++) s -= m[i][j] * x[j];
        x[i] = s / m[i][i];
    }
    for (int i = 0; i < 8; i++) h = mix(h, dbits(x[i]));
    return h;
}

/* ---- 24: floating-point loops gcc vectorises at -O3 (no reassociation: element-wise only, and conversions), and
 * scalar fabs/copysign/min/max/compares ---- */
NOINLINE static u64 fp_vector_part(u64 seed)
{
    rng r = seeded(seed, 24);
    static double x[64], y[64], z[64];
    static float f[64], g[64];
    static i32 iv[64];
    static u64 big[16];
    for (int i = 0; i < 64; i++) {
        u64 v = next(&r);
        x[i] = (double)(i32)v / 1048576.0; y[i] = (double)(i16)(v >> 32) / 64.0 + 0.5;
        f[i] = (float)(i16)(v >> 16) / 16.0f; g[i] = (float)(u8)(v >> 48) + 1.0f; iv[i] = (i32)(v >> 20) % 100000;
    }
    for (int i = 0; i < 16; i++) big[i] = next(&r) | (i & 1 ? 1ull << 63 : 0);
    for (int i = 0; i < 64; i++) z[i] = x[i] * y[i] + x[i] / y[i];
    for (int i = 0; i < 64; i++) z[i] += __builtin_sqrt(x[i] < 0 ? -x[i] : x[i]);
    for (int i = 0; i < 64; i++) f[i] = f[i] * g[i] - g[i] / 3.0f;
    for (int i = 0; i < 64; i++) g[i] = __builtin_sqrtf(g[i]) + (float)iv[i];
    for (int i = 0; i < 64; i++) iv[i] = (i32)(z[i] * 0.25) + (i32)f[i];
    for (int i = 0; i < 64; i++) x[i] = (double)f[i] + (double)iv[i];
    for (int i = 0; i < 64; i++) y[i] = x[i] > y[i] ? x[i] : y[i];
    u64 h = 0;
    for (int i = 0; i < 64; i++) h = mix(h, dbits(z[i]) ^ (u64)fbits(f[i]) << 1 ^ (u64)fbits(g[i]) << 32 ^ (u64)(u32)iv[i] ^ dbits(x[i]) ^ dbits(y[i]));
    for (int i = 0; i < 16; i++) {
        double d = (double)big[i];
        float fl = (float)big[i];
        u64 back = (u64)d, fback = (u64)fl;
        u32 u32back = (u32)(d / 4294967296.0);
        h = mix(h, dbits(d) ^ fbits(fl) ^ back ^ fback << 1 ^ u32back);
        double a = x[i], b = y[(i + 5) & 63];
        h = mix(h, dbits(__builtin_fabs(a)) ^ dbits(__builtin_copysign(b, a)) ^ dbits(-a) ^ (u64)fbits(__builtin_fabsf(f[i])) << 1);
        h = mix(h, (u64)(a < b) | (u64)(a <= b) << 1 | (u64)(a == b) << 2 | (u64)(a != b) << 3 | (u64)(f[i] > g[i]) << 4);
        h = mix(h, dbits(a < b ? a : b) ^ dbits(a > b ? a : b) ^ (u64)(i16)(i32)a ^ (u64)(u8)(u32)__builtin_fabs(b) << 20);
    }
    return h;
}
#endif

/* ---- the table of parts ---- */
typedef u64 (*part_fn)(u64);
typedef struct { const char *name; part_fn fn; } part;
static const part PARTS[] = {
    { "crc32", crc32_part }, { "sha256", sha256_part }, { "hash", hash_part }, { "sort", sort_part },
    { "interp", interp_part }, { "arith64", arith64_part }, { "arith128", arith128_part }, { "bits", bits_part },
    { "bignum", bignum_part }, { "format", format_part }, { "struct", struct_part }, { "varargs", varargs_part },
    { "stack", stack_part }, { "recursion", recursion_part }, { "state", state_part }, { "narrow", narrow_part },
    { "string", string_part }, { "imatrix", imatrix_part }, { "bitfield", bitfield_part }, { "vector", vector_part }, { "atomic", atomic_part },
#ifndef CORPUS_NO_FP
    { "fp_double", fp_double_part }, { "fp_float", fp_float_part }, { "fp_matrix", fp_matrix_part }, { "fp_vector", fp_vector_part },
#endif
};
#define NPARTS (sizeof PARTS / sizeof PARTS[0])

/* The micro-VM boots without CR4.OSXSAVE: an AVX build (-march=x86-64-v3) sets it and XCR0 = x87|SSE|AVX (XSETBV)
 * before its first VEX instruction, at every entry (as isa_guest.c does). */
static void enable_avx(void)
{
#if defined(__AVX__) && !defined(CORPUS_HOST)
    u64 cr4;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | (1ull << 18)));
    __asm__ volatile("xsetbv" : : "c"(0), "a"(7), "d"(0));
#endif
}

/* The number of parts of this build. */
u64 corpus_parts(void) { return NPARTS; }

/* Part k's digest for seed; ~0 for a k out of range. */
u64 corpus_part(u64 seed, u64 k)
{
    enable_avx();
    return k < NPARTS ? PARTS[k].fn(seed) : ~0ull;
}

/* All parts of one seed mixed: one call for the common case. */
u64 corpus_all(u64 seed)
{
    enable_avx();
    u64 h = 0xcbf29ce484222325ull;
    for (u64 k = 0; k < NPARTS; k++) h = mix(h, PARTS[k].fn(seed));
    return h;
}

#ifndef CORPUS_HOST
void _start(void) {}
#else
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        u64 seed = strtoull(argv[i], 0, 0);
        for (u64 k = 0; k < NPARTS; k++) printf("%s %llu\n", PARTS[k].name, corpus_part(seed, k));
    }
    return 0;
}
#endif
