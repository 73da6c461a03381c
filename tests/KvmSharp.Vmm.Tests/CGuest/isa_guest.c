/* SPDX-License-Identifier: MIT */
/* Ordinary C built with gcc -O2 -march=x86-64-v2 (SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CX16, LAHF/SAHF: the RHEL 9
 * baseline) or -march=x86-64-v3 (v2 + AVX, AVX2, BMI1, BMI2, FMA, F16C, LZCNT, MOVBE: 256-bit vectors, VEX
 * three-operand forms, FMA contraction, bit manipulation): array loops, min/max, abs, blends, rounding, popcount,
 * dot products, strings, struct copies, bit fields and fused multiply-adds, which gcc compiles with the level's
 * instructions. X86IsaLevelGuestTests runs isa_checksum(seed) in a micro-VM and compares it with the same file built
 * for the host at the same level (-DISA_HOST, with a main that prints the checksum and the ten parts
 * isa_part(seed, k), so that a difference names the function). */
#ifndef ISA_HOST
#define KVMSHARP_GUEST_MEMFUNCS
#include "kvmsharp_guest.h"
typedef kvms_u64 u64;
#else
#include <stdio.h>
#include <stdlib.h>
typedef unsigned long long u64;
#endif
typedef unsigned int u32;
typedef int i32;
typedef short i16;
typedef unsigned short u16;
typedef signed char i8;
typedef unsigned char u8;
typedef long long i64;

#define N 256
static i32 A[N], B[N], C[N];
static u32 UA[N], UB[N];
static i16 SA[N], SB[N];
static u16 WA[N];
static i8 CA[N];
static u8 BA[N], BB[N];
static i64 LA[N], LB[N];
static float FA[N], FB[N];
static double DA[N], DB[N];
static char STR[N + 16];

struct rec { i64 a, b; i32 c; float d; double e; u8 tag[24]; };
static struct rec RECS[16], COPIES[16];

static u64 st;
static u64 rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }

static u64 mix(u64 h, u64 v) { h ^= v; h *= 0x100000001b3ull; return h ^ (h >> 29); }

__attribute__((noinline)) static void fill(u64 seed)
{
    st = seed | 1;
    for (int i = 0; i < N; i++) {
        u64 r = rnd();
        A[i] = (i32)r; B[i] = (i32)(r >> 32); UA[i] = (u32)(r >> 7); UB[i] = (u32)(r >> 19);
        SA[i] = (i16)r; SB[i] = (i16)(r >> 16); WA[i] = (u16)(r >> 24); CA[i] = (i8)(r >> 40);
        BA[i] = (u8)(r >> 48); BB[i] = (u8)(r >> 56); LA[i] = (i64)rnd(); LB[i] = (i64)rnd();
        FA[i] = (float)(i32)(r >> 40) / 1024.0f + 0.25f; FB[i] = (float)(i16)r / 7.0f;
        DA[i] = (double)(i64)r / 3.0e12; DB[i] = (double)(i32)(r >> 32) / 9.0;
        STR[i] = (char)('a' + (r >> 59));
    }
    STR[N - 3] = 0;
}

__attribute__((noinline)) static u64 int_minmax(void)
{
    u64 h = 0;
    for (int i = 0; i < N; i++) C[i] = A[i] < B[i] ? A[i] : B[i];           /* pminsd */
    for (int i = 0; i < N; i++) C[i] ^= (UA[i] > UB[i] ? UA[i] : UB[i]);     /* pmaxud */
    for (int i = 0; i < N; i++) SA[i] = SA[i] > SB[i] ? SA[i] : SB[i];       /* pmaxsw */
    for (int i = 0; i < N; i++) WA[i] = WA[i] < (u16)SB[i] ? WA[i] : (u16)SB[i]; /* pminuw */
    for (int i = 0; i < N; i++) CA[i] = CA[i] > (i8)BB[i] ? CA[i] : (i8)BB[i];   /* pmaxsb */
    for (int i = 0; i < N; i++) h = mix(h, (u64)C[i] + SA[i] + WA[i] + CA[i]);
    return h;
}

__attribute__((noinline)) static u64 int_arith(void)
{
    u64 h = 0;
    for (int i = 0; i < N; i++) C[i] = A[i] * B[i];                 /* pmulld */
    for (int i = 0; i < N; i++) C[i] += A[i] < 0 ? -A[i] : A[i];    /* pabsd */
    for (int i = 0; i < N; i++) LA[i] = (i64)A[i] * (i64)B[i] + LA[i]; /* pmuldq / pmovsxdq */
    for (int i = 0; i < N; i++) LB[i] = LA[i] > LB[i] ? LA[i] : LB[i]; /* pcmpgtq + blendv */
    for (int i = 0; i < N; i++) LA[i] = LA[i] == LB[i] ? 1 : LA[i];    /* pcmpeqq */
    for (int i = 0; i < N; i++) C[i] += BA[i] + (SB[i] >> 3);          /* pmovzxbd, pmovsxwd */
    for (int i = 0; i < N; i++) SB[i] = (i16)(SB[i] < 0 ? -SB[i] : SB[i]); /* pabsw */
    i64 s = 0;
    for (int i = 0; i < N; i++) s += LA[i] ^ LB[i];
    for (int i = 0; i < N; i++) h = mix(h, (u64)C[i] + (u64)SB[i]);
    return mix(h, (u64)s);
}

__attribute__((noinline)) static u64 bytes(void)
{
    u64 h = 0;
    u32 sum = 0;
    for (int i = 0; i < N; i++) sum += (BA[i] > BB[i] ? BA[i] - BB[i] : BB[i] - BA[i]);
    for (int i = 0; i < N; i++) BA[i] = BA[i] > 100 ? BB[i] : BA[i];   /* pblendvb */
    for (int i = 0; i < N; i++) { i32 v = A[i] >> 8; C[i] = v < 0 ? 0 : v > 65535 ? 65535 : v; }
    for (int i = 0; i < N; i++) WA[i] = (u16)C[i];                     /* packusdw */
    for (int i = 0; i < N; i++) h = mix(h, BA[i] + WA[i]);
    return mix(h, sum);
}

__attribute__((noinline)) static u64 popcounts(void)
{
    u64 h = 0;
    for (int i = 0; i < N; i++) h += (u64)__builtin_popcountll((u64)LA[i]) + (u64)__builtin_popcount(UA[i]);
    for (int i = 0; i < N; i++) h = mix(h, (u64)__builtin_ctz(UA[i] | 0x80000000u));
    return h;
}

__attribute__((noinline)) static u64 floats(void)
{
    u64 h = 0;
    float dot = 0;
    for (int i = 0; i < N; i++) dot += FA[i] * FB[i];
    double ddot = 0;
    for (int i = 0; i < N; i++) ddot += DA[i] * DB[i];
    for (int i = 0; i < N; i++) FA[i] = __builtin_floorf(FA[i]) + __builtin_ceilf(FB[i]);   /* roundps */
    for (int i = 0; i < N; i++) DA[i] = __builtin_trunc(DA[i]) - __builtin_floor(DB[i]);    /* roundpd */
    for (int i = 0; i < N; i++) FB[i] = FA[i] > FB[i] ? FA[i] : FB[i];                    /* maxps */
    for (int i = 0; i < N; i++) DB[i] = DB[i] < 0 ? -DB[i] : DB[i];
    for (int i = 0; i < N; i++) FA[i] = __builtin_rintf(FA[i] * 0.3f);
    union { float f; u32 u; } fu;
    union { double d; u64 u; } du;
    for (int i = 0; i < N; i++) { fu.f = FA[i] + FB[i]; du.d = DA[i] * DB[i]; h = mix(h, fu.u ^ du.u); }
    fu.f = dot; du.d = ddot;
    h = mix(h, fu.u);
    h = mix(h, du.u);
    i32 ic = 0;
    for (int i = 0; i < N; i++) ic += (i32)__builtin_nearbyintf(FB[i]) + (i32)__builtin_nearbyint(DB[i]);
    return mix(h, (u64)ic);
}

__attribute__((noinline)) static u64 horizontal(void)
{
    float s = 0;
    for (int i = 0; i < N; i += 2) s += FA[i] - FA[i + 1];
    double d = 0;
    for (int i = 0; i < N; i += 2) { DA[i] = DA[i] + DB[i]; DA[i + 1] = DA[i + 1] - DB[i + 1]; } /* addsubpd */
    for (int i = 0; i < N; i++) d += DA[i];
    union { float f; u32 u; } fu = { s };
    union { double d; u64 u; } du = { d };
    return mix(fu.u, du.u);
}

__attribute__((noinline)) static u64 my_strlen(const char *p) { u64 n = 0; while (p[n]) n++; return n; }

__attribute__((noinline)) static u64 strings(void)
{
    u64 h = my_strlen(STR);
    for (int i = 0; i < N; i++) if (STR[i] == 'q') { h = mix(h, (u64)i); break; }
    for (int i = 0; i < 16; i++) {
        RECS[i].a = LA[i]; RECS[i].b = LB[i]; RECS[i].c = A[i]; RECS[i].d = FA[i]; RECS[i].e = DA[i];
        for (int k = 0; k < 24; k++) RECS[i].tag[k] = (u8)(BA[i + k] ^ k);
    }
    for (int i = 0; i < 16; i++) COPIES[15 - i] = RECS[i];
    const u8 *p = (const u8 *)COPIES;
    for (u64 k = 0; k < sizeof COPIES; k += 8) {
        u64 v = 0;
        for (int b = 0; b < 8; b++) v |= (u64)p[k + b] << (8 * b);
        h = mix(h, v);
    }
    return h;
}

__attribute__((noinline)) static u64 bits(void)
{
    u64 h = 0;
    for (int i = 0; i < N; i++) {
        u64 x = (u64)LA[i], m = (u64)LB[i];
        u32 s = UA[i] & 63;
        h = mix(h, x & ~m);                               /* andn */
        h = mix(h, (x >> (s & 31)) & ((1ull << (UB[i] & 31)) - 1)); /* shrx, bzhi */
        h = mix(h, x & -x);                               /* blsi */
        h = mix(h, x ^ (x - 1));                          /* blsmsk */
        h = mix(h, x & (x - 1));                          /* blsr */
        h = mix(h, x << s);                               /* shlx */
        h = mix(h, (u64)((i64)x >> s));                   /* sarx */
        h = mix(h, (x >> 13) | (x << 51));                /* rorx */
        h = mix(h, (u64)__builtin_clzll(x | 1) + (u64)__builtin_ctzll(m | (1ull << 63))); /* lzcnt, tzcnt */
        h = mix(h, __builtin_bswap64(x));                 /* movbe (through memory) */
        unsigned __int128 p = (unsigned __int128)x * m;   /* mulx */
        h = mix(h, (u64)p ^ (u64)(p >> 64));
#ifdef __BMI2__
        h = mix(h, __builtin_ia32_pdep_di(x, m) ^ __builtin_ia32_pext_di(x, m));
#endif
    }
    return h;
}

__attribute__((noinline)) static u64 fused(void)
{
    float s = 0;
    for (int i = 0; i < N; i++) FA[i] = FA[i] * FB[i] + FA[(i + 1) % N];   /* vfmadd */
    for (int i = 0; i < N; i++) DA[i] = DA[i] * DB[i] - DA[(i + 3) % N];   /* vfmsub */
    for (int i = 0; i < N; i++) s = s * 0.5f - FA[i] * FB[i];              /* vfnmadd */
    union { float f; u32 u; } fu = { s };
    u64 h = fu.u;
    union { double d; u64 u; } du;
    for (int i = 0; i < N; i++) { du.d = DA[i]; fu.f = FA[i]; h = mix(h, du.u ^ fu.u); }
    return h;
}

__attribute__((noinline)) static u64 crc(void)
{
    u32 c = ~0u;
    for (int i = 0; i < N; i++) c = __builtin_ia32_crc32si(c, UA[i]);
    for (int i = 0; i < N; i++) c = __builtin_ia32_crc32qi(c, BA[i]);
    u64 c64 = __builtin_ia32_crc32di(c, (u64)LA[7]);
    return c64 ^ ((u64)__builtin_ia32_crc32hi(c, WA[3]) << 32);
}

#define PARTS 10
static u64 part_of(u64 k)
{
    switch (k) {
    case 0: return int_minmax();
    case 1: return int_arith();
    case 2: return bytes();
    case 3: return popcounts();
    case 4: return floats();
    case 5: return horizontal();
    case 6: return strings();
    case 7: return crc();
    case 8: return bits();
    default: return fused();
    }
}

#include "parts_checksum.h"

/* The exports the tests call: the checksum, and its part k (0 … PARTS-1). */
u64 isa_part(u64 seed, u64 k) { return checksum_part(seed, k); }
u64 isa_checksum(u64 seed) { return checksum_all(seed); }
