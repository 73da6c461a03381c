/* SPDX-License-Identifier: MIT */
/* An arm64 SVE guest for KvmSharp.Vmm (Arm64SveMicroVmTests), built by aarch64-linux-gnu-gcc with the SDK's arm64
 * arguments, FP/SIMD allowed, -O3 -march=armv8.2-a+sve: gcc vectorises the loops with SVE (WHILELO, predicated LD1W,
 * SUNPK/ADD, UADDV …), so the compiler's own SVE code runs in an SVE micro-VM. z_put/z_top/p_get leave and read a mark
 * in Z7 and P3, so a test can see what survives a Reset or a snapshot (the loops use Z and P registers too: a test
 * calls none of them between z_put and its reads). */
#include "kvmsharp_guest.h"

typedef kvms_u64 u64;

/* CNTB: the vector length in bytes (ZCR_EL1.LEN as the VMM set it, capped by the vCPU's maximum). */
u64 sve_vl(void)
{
    u64 vl;
    __asm__ volatile("cntb %0" : "=r"(vl));
    return vl;
}

/* The signed 32-bit words of the input summed into 64 bits (vectorised: the loop runs VL/4 words a step). */
long long sum32(const int *p, u64 bytes)
{
    u64 n = bytes / 4;
    long long s = 0;
    for (u64 i = 0; i < n; i++) s += p[i];
    return s;
}

/* Bytes of the input equal to b, counted (vectorised with a predicated compare). */
u64 count_byte(const unsigned char *p, u64 n, u64 b)
{
    u64 c = 0;
    for (u64 i = 0; i < n; i++) c += p[i] == (unsigned char)b;
    return c;
}

/* Z7 = v in every doubleword (its bits above the V register too), P3 = the first three words. */
u64 z_put(u64 v)
{
    __asm__ volatile("dup z7.d, %0\n\tptrue p3.s, vl3" : : "r"(v) : "memory");
    return 0;
}

/* In .bss: ld gives this file a .bss-only PT_LOAD whose p_offset is past the end of the file (p_filesz 0), which
 * the loader must accept as Linux does. */
static u64 zbuf[256 / 8] __attribute__((aligned(16)));
static u64 pbuf[32 / 8] __attribute__((aligned(16)));

/* Z7's highest doubleword (above bit 128 once the vector length is 256 bits or more). */
u64 z_top(void)
{
    __asm__ volatile("str z7, [%0]" : : "r"(zbuf) : "memory");
    return zbuf[sve_vl() / 8 - 1];
}

/* P3's first 64 bits (one bit per byte of the vector: a .s lane is every fourth bit). */
u64 p_get(void)
{
    pbuf[0] = 0;
    __asm__ volatile("str p3, [%0]" : : "r"(pbuf) : "memory");
    return pbuf[0];
}

void _start(void) { kvms_exit((int)sve_vl()); }
