// SPDX-License-Identifier: MIT
// The CPU as the oracle of VexV3GatherCases.gathers_and_masked_moves_match_the_cpu: the eight AVX2 gathers and the
// four masked moves (load and store forms) on random destinations, indices, masks and memory. xorshift64 seeded with
// 99 draws TABLE (128 qwords; the gathers' base is its middle); per variant v and round r, seeded with v * 1000 + r + 1,
// it draws DEST (4 qwords), IDX32 (8 dwords in [-60, 60)), IDX64 (4 qwords in [-60, 60)), MASK (8 dwords), MEM
// (4 qwords). YMM2 = DEST, YMM1 = the index (IDX32 or IDX64) or MEM's address for the masked moves, YMM3 = MASK, the
// instruction, then 64 output bytes — gathers YMM2 and YMM3, masked loads YMM2 and 32 zero bytes, masked stores MEM
// and YMM2 — go into an FNV-1a digest per variant, printed as the case's table lists it. V3GatherOracleTests builds
// and runs this on the test host.
#include <stdio.h>
#include <stdint.h>
#include <string.h>
static uint64_t st;
static uint64_t rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }
static uint64_t table[128];
typedef struct { uint64_t dest[4]; int32_t idx32[8]; int64_t idx64[4]; uint32_t mask[8]; uint64_t mem[4]; } in_t;
static void draw(int v, int r, in_t *in)
{
    st = (uint64_t)(v * 1000 + r + 1);
    for (int k = 0; k < 4; k++) in->dest[k] = rnd();
    for (int k = 0; k < 8; k++) in->idx32[k] = (int32_t)(rnd() % 120) - 60;
    for (int k = 0; k < 4; k++) in->idx64[k] = (int64_t)(rnd() % 120) - 60;
    for (int k = 0; k < 8; k++) in->mask[k] = (uint32_t)rnd();
    for (int k = 0; k < 4; k++) in->mem[k] = rnd();
}
#define G(name, ins, idx) static void name(in_t *in, uint8_t *o) { \
  __asm__ volatile("vmovdqu (%1), %%ymm2\n vmovdqu (%2), %%ymm1\n vmovdqu (%3), %%ymm3\n mov %4, %%r8\n " ins "\n" \
  " vmovdqu %%ymm2, (%0)\n vmovdqu %%ymm3, 32(%0)\n vzeroupper" \
  : : "r"(o), "r"(in->dest), "r"(in->idx), "r"(in->mask), "r"((uint8_t *)table + 512) : "r8", "xmm1", "xmm2", "xmm3", "memory"); }
#define L(name, ins) static void name(in_t *in, uint8_t *o) { \
  __asm__ volatile("vmovdqu (%1), %%ymm2\n vmovdqu (%2), %%ymm3\n mov %3, %%r8\n " ins "\n" \
  " vmovdqu %%ymm2, (%0)\n vzeroupper" : : "r"(o), "r"(in->dest), "r"(in->mask), "r"(in->mem) : "r8", "xmm2", "xmm3", "memory"); \
  memset(o + 32, 0, 32); }
#define S(name, ins) static void name(in_t *in, uint8_t *o) { \
  __asm__ volatile("vmovdqu (%1), %%ymm2\n vmovdqu (%2), %%ymm3\n mov %3, %%r8\n " ins "\n" \
  " vmovdqu %%ymm2, 32(%0)\n vzeroupper" : : "r"(o), "r"(in->dest), "r"(in->mask), "r"(in->mem) : "r8", "xmm2", "xmm3", "memory"); \
  memcpy(o, in->mem, 32); }
G(vpgatherddy, "vpgatherdd %%ymm3, (%%r8,%%ymm1,4), %%ymm2", idx32)
G(vpgatherddx, "vpgatherdd %%xmm3, 16(%%r8,%%xmm1,2), %%xmm2", idx32)
G(vgatherdpsy, "vgatherdps %%ymm3, (%%r8,%%ymm1,4), %%ymm2", idx32)
G(vpgatherdqy, "vpgatherdq %%ymm3, (%%r8,%%xmm1,8), %%ymm2", idx32)
G(vgatherdpdx, "vgatherdpd %%xmm3, -8(%%r8,%%xmm1,8), %%xmm2", idx32)
G(vpgatherqdy, "vpgatherqd %%xmm3, (%%r8,%%ymm1,4), %%xmm2", idx64)
G(vgatherqpsx, "vgatherqps %%xmm3, (%%r8,%%xmm1,4), %%xmm2", idx64)
G(vpgatherqqy, "vpgatherqq %%ymm3, (%%r8,%%ymm1,8), %%ymm2", idx64)
G(vgatherqpdx, "vgatherqpd %%xmm3, 8(%%r8,%%xmm1,1), %%xmm2", idx64)
G(vgatherqpdy, "vgatherqpd %%ymm3, (%%r8,%%ymm1,8), %%ymm2", idx64)
L(vmaskmovpsly, "vmaskmovps (%%r8), %%ymm3, %%ymm2")
L(vmaskmovpdlx, "vmaskmovpd (%%r8), %%xmm3, %%xmm2")
L(vpmaskmovdly, "vpmaskmovd (%%r8), %%ymm3, %%ymm2")
L(vpmaskmovqlx, "vpmaskmovq (%%r8), %%xmm3, %%xmm2")
S(vmaskmovpssy, "vmaskmovps %%ymm2, %%ymm3, (%%r8)")
S(vmaskmovpdsy, "vmaskmovpd %%ymm2, %%ymm3, (%%r8)")
S(vpmaskmovdsx, "vpmaskmovd %%xmm2, %%xmm3, (%%r8)")
S(vpmaskmovqsy, "vpmaskmovq %%ymm2, %%ymm3, (%%r8)")
typedef void (*fn)(in_t *, uint8_t *);
static const struct { const char *name; fn f; } V[] = {
    {"vpgatherddy", vpgatherddy}, {"vpgatherddx", vpgatherddx}, {"vgatherdpsy", vgatherdpsy}, {"vpgatherdqy", vpgatherdqy},
    {"vgatherdpdx", vgatherdpdx}, {"vpgatherqdy", vpgatherqdy}, {"vgatherqpsx", vgatherqpsx}, {"vpgatherqqy", vpgatherqqy},
    {"vgatherqpdx", vgatherqpdx}, {"vgatherqpdy", vgatherqpdy}, {"vmaskmovpsly", vmaskmovpsly}, {"vmaskmovpdlx", vmaskmovpdlx},
    {"vpmaskmovdly", vpmaskmovdly}, {"vpmaskmovqlx", vpmaskmovqlx}, {"vmaskmovpssy", vmaskmovpssy}, {"vmaskmovpdsy", vmaskmovpdsy},
    {"vpmaskmovdsx", vpmaskmovdsx}, {"vpmaskmovqsy", vpmaskmovqsy},
};
#define ROUNDS 16
int main(void)
{
    st = 99;
    for (int k = 0; k < 128; k++) table[k] = rnd();
    for (unsigned v = 0; v < sizeof V / sizeof V[0]; v++) {
        uint64_t h = 0xcbf29ce484222325ull;
        for (int r = 0; r < ROUNDS; r++) {
            in_t in;
            uint8_t o[64];
            draw((int)v, r, &in);
            V[v].f(&in, o);
            for (int k = 0; k < 64; k++) { h ^= o[k]; h *= 0x100000001b3ull; }
        }
        printf("(\"%s\", 0x%016llXUL),\n", V[v].name, (unsigned long long)h);
    }
    return 0;
}
