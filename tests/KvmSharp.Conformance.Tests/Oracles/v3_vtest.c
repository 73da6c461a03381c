// SPDX-License-Identifier: MIT
// The CPU as the oracle of VexTestCases.ptest_and_vtest_flags_match_the_cpu: PTEST, VPTEST and VTESTPS/VTESTPD
// (xmm and ymm, register and unaligned memory sources). xorshift64; per variant v and round r, seeded with
// v * 1000 + r + 1, it draws A (4 qwords) then B (4 qwords), each qword ANDed with r % 5 further draws (sparser bits,
// so ZF and CF come out both ways). RFLAGS = 0x8d7 (CF PF AF ZF SF OF set), YMM2 = A, YMM1 = B (the memory forms read
// B at offset 36 of the input block: A, 4 pad bytes, B), the instruction, then RFLAGS & 0x8d5 (4 bytes) and YMM2
// (32 bytes: no form writes it, and a 128-bit form leaves bits 255:128) go into an FNV-1a digest per variant,
// printed as the case's table lists it. SseSweepOracleTests builds and runs this on the test host.
#include <stdio.h>
#include <stdint.h>
#include <string.h>
static uint64_t st;
static uint64_t rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }
static uint64_t sparse(int r) { uint64_t x = rnd(); for (int k = 0; k < r % 5; k++) x &= rnd(); return x; }
#define T(name, ins) static void name(const uint8_t *in, uint8_t *o) { \
  __asm__ volatile("vmovdqu (%1), %%ymm2\n vmovdqu 36(%1), %%ymm1\n lea 36(%1), %%r8\n pushq $0x8d7\n popfq\n " ins "\n" \
  " pushfq\n popq %%rax\n andl $0x8d5, %%eax\n movl %%eax, (%0)\n vmovdqu %%ymm2, 4(%0)\n vzeroupper" \
  : : "r"(o), "r"(in) : "rax", "r8", "xmm1", "xmm2", "memory", "cc"); }
T(ptest, "ptest %%xmm1, %%xmm2")
T(vptestx, "vptest %%xmm1, %%xmm2")
T(vptesty, "vptest %%ymm1, %%ymm2")
T(vtestpsx, "vtestps %%xmm1, %%xmm2")
T(vtestpsy, "vtestps %%ymm1, %%ymm2")
T(vtestpdx, "vtestpd %%xmm1, %%xmm2")
T(vtestpdy, "vtestpd %%ymm1, %%ymm2")
T(vtestpsxm, "vtestps (%%r8), %%xmm2")
T(vtestpsym, "vtestps (%%r8), %%ymm2")
T(vtestpdxm, "vtestpd (%%r8), %%xmm2")
T(vtestpdym, "vtestpd (%%r8), %%ymm2")
typedef void (*fn)(const uint8_t *, uint8_t *);
static const struct { const char *name; fn f; } V[] = {
    {"ptest", ptest}, {"vptestx", vptestx}, {"vptesty", vptesty}, {"vtestpsx", vtestpsx}, {"vtestpsy", vtestpsy},
    {"vtestpdx", vtestpdx}, {"vtestpdy", vtestpdy}, {"vtestpsxm", vtestpsxm}, {"vtestpsym", vtestpsym},
    {"vtestpdxm", vtestpdxm}, {"vtestpdym", vtestpdym},
};
#define ROUNDS 64
int main(void)
{
    for (unsigned v = 0; v < sizeof V / sizeof V[0]; v++) {
        uint64_t h = 0xcbf29ce484222325ull;
        for (int r = 0; r < ROUNDS; r++) {
            uint8_t in[68], o[36];
            uint64_t q[8];
            st = (uint64_t)(v * 1000 + r + 1);
            for (int k = 0; k < 8; k++) q[k] = sparse(r);
            memcpy(in, q, 32);
            memset(in + 32, 0, 4);
            memcpy(in + 36, q + 4, 32);
            V[v].f(in, o);
            for (int k = 0; k < 36; k++) { h ^= o[k]; h *= 0x100000001b3ull; }
        }
        printf("(\"%s\", 0x%016llXUL),\n", V[v].name, (unsigned long long)h);
    }
    return 0;
}
