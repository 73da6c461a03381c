/* SPDX-License-Identifier: MIT */
/* Ordinary C loops that gcc -O3 -march=x86-64-v3 vectorizes with the AVX2/FMA instructions isa_guest.c does not reach:
 * table lookups out[i] = t[idx[i]] (VGATHERDPS/DPD/QPS/QPD, VPGATHERDD/DQ/QD/QQ), conditional loads and stores
 * (VMASKMOVPS/PD, VPMASKMOVD/Q), complex multiplies (VFMADDSUB/VFMSUBADD), saxpy and dot products (FMA), widening
 * integer sums, a memchr-like search. X86V3LoopsGuestTests runs v3_checksum(seed) in a micro-VM and compares it with
 * the same file built for the host (-DISA_HOST, a main that prints the checksum and the parts v3_part(seed, k), so
 * that a difference names the function). */
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
typedef unsigned char u8;
typedef long long i64;

#define N 512
#define T 1024
static i32 IA[N], IB[N], IDX[N], OI[N];
static i64 LIDX[N], LA[N], OL[N];
static u32 UA[N];
static float FA[N], FB[N], FC[N], FT[T], OF[N];
static double DA[N], DB[N], DT[T], OD[N];
static i32 IT[T];
static i64 LT[T];
static u8 BA[N];
static u16 WA[N];
static char STR[N + 32];

static u64 st;
static u64 rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }

static u64 mix(u64 h, u64 v) { h ^= v; h *= 0x100000001b3ull; return h ^ (h >> 29); }

static u64 hf(float f) { union { float f; u32 u; } x = { f }; return x.u; }
static u64 hd(double d) { union { double d; u64 u; } x = { d }; return x.u; }

__attribute__((noinline)) static void fill(u64 seed)
{
    st = seed | 1;
    for (int i = 0; i < N; i++) {
        u64 r = rnd();
        IA[i] = (i32)r; IB[i] = (i32)(r >> 32); IDX[i] = (i32)((r >> 20) % T); LIDX[i] = (i64)((r >> 40) % T);
        UA[i] = (u32)(r >> 9); LA[i] = (i64)rnd(); BA[i] = (u8)(r >> 50); WA[i] = (u16)(r >> 33);
        FA[i] = (float)(i32)(r >> 40) / 1024.0f + 0.25f; FB[i] = (float)(i16)r / 7.0f; FC[i] = (float)(i16)(r >> 16) / 3.0f;
        DA[i] = (double)(i64)r / 3.0e12; DB[i] = (double)(i32)(r >> 32) / 9.0;
        STR[i] = (char)('a' + (r >> 59));
    }
    for (int i = 0; i < T; i++) {
        u64 r = rnd();
        IT[i] = (i32)r; LT[i] = (i64)rnd(); FT[i] = (float)(i32)r / 65536.0f; DT[i] = (double)(i64)r / 1.0e9;
    }
    STR[N - 5] = 0;
}

__attribute__((noinline)) static u64 gathers(void)
{
    u64 h = 0;
    for (int i = 0; i < N; i++) OI[i] = IT[IDX[i]];                 /* vpgatherdd */
    for (int i = 0; i < N; i++) OF[i] = FT[IDX[i]] * FA[i];         /* vgatherdps */
    for (int i = 0; i < N; i++) OD[i] = DT[IDX[i]] + DB[i];         /* vgatherdpd */
    for (int i = 0; i < N; i++) OL[i] = LT[IDX[i]] ^ LA[i];         /* vpgatherdq */
    for (int i = 0; i < N; i++) h = mix(h, (u64)OI[i] + hf(OF[i]) + hd(OD[i]) + (u64)OL[i]);
    for (int i = 0; i < N; i++) OI[i] = IT[LIDX[i]];                /* vpgatherqd */
    for (int i = 0; i < N; i++) OF[i] = FT[LIDX[i]];                /* vgatherqps */
    for (int i = 0; i < N; i++) OD[i] = DT[LIDX[i]];                /* vgatherqpd */
    for (int i = 0; i < N; i++) OL[i] = LT[LIDX[i]];                /* vpgatherqq */
    for (int i = 0; i < N; i++) h = mix(h, (u64)OI[i] + hf(OF[i]) + hd(OD[i]) + (u64)OL[i]);
    return h;
}

__attribute__((noinline)) static u64 masked(void)
{
    u64 h = 0;
    for (int i = 0; i < N; i++) if (IA[i] > 0) OI[i] = IB[i];                /* vpmaskmovd store */
    for (int i = 0; i < N; i++) if (IB[i] & 1) OL[i] = LA[i] + 3;            /* vpmaskmovq store */
    for (int i = 0; i < N; i++) if (FB[i] < 0) OF[i] = FA[i] * 2.0f;         /* vmaskmovps store */
    for (int i = 0; i < N; i++) if (DB[i] > 0) OD[i] = DA[i] - DB[i];        /* vmaskmovpd store */
    i32 s = 0;
    for (int i = 0; i < N; i++) if (IA[i] & 4) s += IB[i];                   /* vpmaskmovd load */
    float fs = 0;
    for (int i = 0; i < N; i++) if (FB[i] > 1.0f) FC[i] = FA[i] / FB[i];
    for (int i = 0; i < N; i++) h = mix(h, (u64)OI[i] + (u64)OL[i] + hf(OF[i]) + hd(OD[i]) + hf(FC[i]));
    for (int i = 0; i < N; i++) fs += FC[i];
    return mix(mix(h, (u64)s), hf(fs));
}

__attribute__((noinline)) static u64 complex_mul(void)
{
    /* interleaved (re, im) pairs: vfmaddsub / vfmsubadd */
    for (int i = 0; i < N; i += 2) {
        float ar = FA[i], ai = FA[i + 1], br = FB[i], bi = FB[i + 1];
        OF[i] = ar * br - ai * bi;
        OF[i + 1] = ar * bi + ai * br;
    }
    for (int i = 0; i < N; i += 2) {
        double ar = DA[i], ai = DA[i + 1], br = DB[i], bi = DB[i + 1];
        OD[i] = ar * br - ai * bi;
        OD[i + 1] = ar * bi + ai * br;
    }
    for (int i = 0; i < N; i += 2) {
        FC[i] = FA[i] * FB[i] - FC[i];
        FC[i + 1] = FA[i + 1] * FB[i + 1] + FC[i + 1];
    }
    for (int i = 0; i < N; i += 2) {
        DB[i] = DA[i] * DB[i] + OD[i];
        DB[i + 1] = DA[i + 1] * DB[i + 1] - OD[i + 1];
    }
    u64 h = 0;
    for (int i = 0; i < N; i++) h = mix(h, hf(OF[i]) ^ hd(OD[i]) ^ hf(FC[i]) ^ hd(DB[i]));
    return h;
}

__attribute__((noinline)) static u64 saxpy_dot(void)
{
    const float a = 1.75f;
    for (int i = 0; i < N; i++) FB[i] = a * FA[i] + FB[i];
    const double b = -0.375;
    for (int i = 0; i < N; i++) DB[i] = b * DA[i] + DB[i];
    float dot = 0;
    for (int i = 0; i < N; i++) dot += FA[i] * FB[i];
    double ddot = 0;
    for (int i = 0; i < N; i++) ddot += DA[i] * DB[i];
    u64 h = mix(hf(dot), hd(ddot));
    for (int i = 0; i < N; i++) h = mix(h, hf(FB[i]) ^ hd(DB[i]));
    return h;
}

__attribute__((noinline)) static u64 widening(void)
{
    u32 s8 = 0;
    for (int i = 0; i < N; i++) s8 += BA[i];
    u64 s16 = 0;
    for (int i = 0; i < N; i++) s16 += WA[i];
    i64 s32 = 0;
    for (int i = 0; i < N; i++) s32 += IA[i];
    i64 prod = 0;
    for (int i = 0; i < N; i++) prod += (i64)IA[i] * IB[i];
    u64 us = 0;
    for (int i = 0; i < N; i++) us += UA[i];
    i32 sw = 0;
    for (int i = 0; i < N; i++) sw += (i16)WA[i] * (i16)IA[i];
    return mix(mix(mix(mix(mix(s8, s16), (u64)s32), (u64)prod), us), (u64)sw);
}

__attribute__((noinline)) static u64 search(void)
{
    u64 h = 0;
    u64 n = 0;
    while (STR[n]) n++;
    h = mix(h, n);
    for (int c = 'a'; c < 'a' + 32; c += 3) {
        int at = -1;
        for (int i = 0; i < N; i++) if (STR[i] == c) { at = i; break; }
        h = mix(h, (u64)at);
    }
    int cnt = 0;
    for (int i = 0; i < N; i++) cnt += STR[i] == 'e';
    i32 mx = IA[0];
    for (int i = 0; i < N; i++) mx = IA[i] > mx ? IA[i] : mx;
    u32 umn = ~0u;
    for (int i = 0; i < N; i++) umn = UA[i] < umn ? UA[i] : umn;
    return mix(mix(mix(h, (u64)cnt), (u64)mx), umn);
}

__attribute__((noinline)) static u64 converts(void)
{
    u64 h = 0;
    for (int i = 0; i < N; i++) OI[i] = (i32)FA[i];
    for (int i = 0; i < N; i++) OD[i] = (double)IA[i] * 0.5;
    for (int i = 0; i < N; i++) OF[i] = (float)DA[i];
    for (int i = 0; i < N; i++) OL[i] = (i64)DB[i];
    for (int i = 0; i < N; i++) FC[i] = (float)LA[i];
    for (int i = 0; i < N; i++) h = mix(h, (u64)OI[i] ^ hd(OD[i]) ^ hf(OF[i]) ^ (u64)OL[i] ^ hf(FC[i]));
    return h;
}

#define PARTS 7
static u64 part_of(u64 k)
{
    switch (k) {
    case 0: return gathers();
    case 1: return masked();
    case 2: return complex_mul();
    case 3: return saxpy_dot();
    case 4: return widening();
    case 5: return search();
    default: return converts();
    }
}

#include "parts_checksum.h"

/* The exports the tests call: the checksum, and its part k (0 … PARTS-1). */
u64 v3_part(u64 seed, u64 k) { return checksum_part(seed, k); }
u64 v3_checksum(u64 seed) { return checksum_all(seed); }
