#include <stdio.h>
#include <stdint.h>
#include <string.h>
// SPDX-License-Identifier: MIT
// The CPU as the oracle of SseV2Cases.sse_v2_float_sweep_matches_the_cpu: SSE3 HADD/HSUB/ADDSUB, SSE4.1 DPPS/DPPD
// and ROUND* on every pair of the edge values (NaN payloads, SNaN, ±inf, denormals, ±0, near-overflow, halfway values)
// under seven MXCSR values (RC nearest/down/up/zero, FTZ+DAZ, DAZ, FTZ; all exceptions masked). Per input: LDMXCSR,
// XMM0 = A, XMM1 = B, the instruction, then the 16-byte XMM0, STMXCSR and 4 zero bytes go into an FNV-1a digest per
// instruction, printed as the case's table lists it. SseSweepOracleTests builds and runs this on the test host.
static const uint64_t D[] = {0,0x8000000000000000ull,0x3ff0000000000000ull,0xbff0000000000000ull,0x3ff8000000000000ull,
 0x4008000000000000ull,0x3fb999999999999aull,0xbfd5555555555555ull,0x7fe1ccf385ebc8a0ull,0xffe2f0fa2d1a7a74ull,
 0x0010000000000000ull,0x000fffffffffffffull,0x0000000000000001ull,0x8000000000000003ull,0x7ff0000000000000ull,
 0xfff0000000000000ull,0x7ff8000000000001ull,0x7ff0000000000005ull,0xfff8000000000002ull,0x43e0000000000000ull,
 0xc1e0000000100000ull,0x3ff0000000000001ull,0x4004000000000000ull,0xc00c000000000000ull,0x432fffffffffffffull,0x7fefffffffffffffull};
static const uint32_t F[] = {0,0x80000000u,0x3f800000u,0xbf800000u,0x3fc00000u,0x40400000u,0x3dcccccdu,0xbeaaaaabu,
 0x7f61ccf4u,0xff7fffffu,0x00800000u,0x007fffffu,0x00000001u,0x80000003u,0x7f800000u,0xff800000u,0x7fc00001u,
 0x7f800005u,0xffc00002u,0x4f000000u,0xcf000001u,0x3f800001u,0x40200000u,0xc0600000u,0x4affffffu,0x7f7fffffu};
#define ND (sizeof D/8)
#define NF (sizeof F/4)
static const uint32_t M[] = {0x1f80,0x3f80,0x5f80,0x7f80,0x9fc0,0x1fc0,0x9f80};
#define NM 7
typedef void (*fn)(uint32_t, const uint8_t*, const uint8_t*, uint8_t*);
#define OP(fname, text) static void op_##fname(uint32_t m, const uint8_t* a, const uint8_t* b, uint8_t* o){ uint32_t mm=m; \
  __asm__ volatile("ldmxcsr %1\n movdqu (%2), %%xmm0\n movdqu (%3), %%xmm1\n " text "\n movdqu %%xmm0, (%0)\n stmxcsr 16(%0)" \
  : : "r"(o), "m"(mm), "r"(a), "r"(b) : "xmm0","xmm1","memory"); }
OP(haddps,"haddps %%xmm1, %%xmm0") OP(hsubps,"hsubps %%xmm1, %%xmm0") OP(addsubps,"addsubps %%xmm1, %%xmm0")
OP(haddpd,"haddpd %%xmm1, %%xmm0") OP(hsubpd,"hsubpd %%xmm1, %%xmm0") OP(addsubpd,"addsubpd %%xmm1, %%xmm0")
OP(dppsff,"dpps $0xff, %%xmm1, %%xmm0") OP(dpps71,"dpps $0x71, %%xmm1, %%xmm0") OP(dppd31,"dppd $0x31, %%xmm1, %%xmm0") OP(dppd23,"dppd $0x23, %%xmm1, %%xmm0")
OP(roundps0,"roundps $0, %%xmm1, %%xmm0") OP(roundps1,"roundps $1, %%xmm1, %%xmm0") OP(roundps2,"roundps $2, %%xmm1, %%xmm0")
OP(roundps3,"roundps $3, %%xmm1, %%xmm0") OP(roundps4,"roundps $4, %%xmm1, %%xmm0") OP(roundps9,"roundps $9, %%xmm1, %%xmm0")
OP(roundpd0,"roundpd $0, %%xmm1, %%xmm0") OP(roundpd1,"roundpd $1, %%xmm1, %%xmm0") OP(roundpd2,"roundpd $2, %%xmm1, %%xmm0")
OP(roundpd3,"roundpd $3, %%xmm1, %%xmm0") OP(roundpd4,"roundpd $4, %%xmm1, %%xmm0") OP(roundpdc,"roundpd $0xc, %%xmm1, %%xmm0")
OP(roundss4,"roundss $4, %%xmm1, %%xmm0") OP(roundsda,"roundsd $0xa, %%xmm1, %%xmm0")
// dbl: 1 when the operands are binary64
struct { const char* n; fn f; int dbl; } ops[] = {
 {"haddps",op_haddps,0},{"hsubps",op_hsubps,0},{"addsubps",op_addsubps,0},{"haddpd",op_haddpd,1},{"hsubpd",op_hsubpd,1},{"addsubpd",op_addsubpd,1},
 {"dppsff",op_dppsff,0},{"dpps71",op_dpps71,0},{"dppd31",op_dppd31,1},{"dppd23",op_dppd23,1},
 {"roundps0",op_roundps0,0},{"roundps1",op_roundps1,0},{"roundps2",op_roundps2,0},{"roundps3",op_roundps3,0},{"roundps4",op_roundps4,0},{"roundps9",op_roundps9,0},
 {"roundpd0",op_roundpd0,1},{"roundpd1",op_roundpd1,1},{"roundpd2",op_roundpd2,1},{"roundpd3",op_roundpd3,1},{"roundpd4",op_roundpd4,1},{"roundpdc",op_roundpdc,1},
 {"roundss4",op_roundss4,0},{"roundsda",op_roundsda,1},
};
// The inputs of pair (x, y): binary32 A = (x, y, y, x), B = (y, x, x, y); binary64 A = (x, y), B = (y, x).
static void inputs(int dbl, int x, int y, uint8_t* a, uint8_t* b){
  if (dbl) { memcpy(a,&D[x],8); memcpy(a+8,&D[y],8); memcpy(b,&D[y],8); memcpy(b+8,&D[x],8); return; }
  const uint32_t av[4] = {F[x],F[y],F[y],F[x]}, bv[4] = {F[y],F[x],F[x],F[y]};
  memcpy(a,av,16); memcpy(b,bv,16);
}

// PCMPxSTRx: every imm8 (0-127) over every (needle, haystack) pair of SV and, for the explicit-length forms, every
// (EAX, EDX) of LEN. Per input: XMM0 = 0, ECX = 0x11111111, XMM1 = needle, XMM2 = haystack, EAX/EDX, the
// instruction; then XMM0, ECX and RFLAGS & 0x8d5 (24 bytes) go into the digest.
static const uint8_t SV[8][16] = {
 "hello, world!\0ab", "lo\0zzzzzzzzzzzzz", "aeiouAEIOU\0\0\0\0\0", "azAZ09\0\0\0\0\0\0\0\0\0",
 {0x80,0xff,0x7f,0x01,0x41,0x00,0x80,0x00,0xfe,0xff,0x02,0x00,0x6c,0x6c,0x10,0x20}, "llllllllllllllll",
 {0x41,0x00,0x00,0x80,0xff,0x7f,0x6c,0x00,0x6f,0x00,0x00,0x00,0x41,0x00,0x6c,0x00}, "world!\0 hello, w"};
static const int32_t LEN[5][2] = {{16,16},{3,7},{-5,9},{0,20},{8,-100}};
#define SFN(fname, insn) static void fname(int imm, const uint8_t* a, const uint8_t* b, int32_t ea, int32_t ed, uint8_t* o){ switch(imm){ C128(insn) } }
#define C(insn,n) case (n): __asm__ volatile("pxor %%xmm0, %%xmm0\n movl $0x11111111, %%ecx\n movdqu (%1), %%xmm1\n movdqu (%2), %%xmm2\n movl %3, %%eax\n movl %4, %%edx\n " \
  insn " %[imm], %%xmm2, %%xmm1\n movdqu %%xmm0, (%0)\n movl %%ecx, 16(%0)\n pushfq\n popq %%rax\n andl $0x8d5, %%eax\n movl %%eax, 20(%0)" \
  : : "r"(o), "r"(a), "r"(b), "r"(ea), "r"(ed), [imm] "i"(n) : "rax","rcx","rdx","xmm0","xmm1","xmm2","memory","cc"); break;
#define C8(insn,n) C(insn,n) C(insn,n+1) C(insn,n+2) C(insn,n+3) C(insn,n+4) C(insn,n+5) C(insn,n+6) C(insn,n+7)
#define C64(insn,n) C8(insn,n) C8(insn,n+8) C8(insn,n+16) C8(insn,n+24) C8(insn,n+32) C8(insn,n+40) C8(insn,n+48) C8(insn,n+56)
#define C128(insn) C64(insn,0) C64(insn,64)
SFN(s_pcmpistri,"pcmpistri") SFN(s_pcmpistrm,"pcmpistrm") SFN(s_pcmpestri,"pcmpestri") SFN(s_pcmpestrm,"pcmpestrm")
typedef void (*sfn)(int, const uint8_t*, const uint8_t*, int32_t, int32_t, uint8_t*);
struct { const char* n; sfn f; int lengths; } sops[] = {
 {"pcmpistri",s_pcmpistri,1},{"pcmpistrm",s_pcmpistrm,1},{"pcmpestri",s_pcmpestri,5},{"pcmpestrm",s_pcmpestrm,5},
};
static void strings(void){
  for(unsigned o=0;o<sizeof sops/sizeof sops[0];o++){
    uint64_t fnv=0xcbf29ce484222325ull; int count=0;
    for(int imm=0;imm<128;imm++) for(int x=0;x<8;x++) for(int y=0;y<8;y++) for(int l=0;l<sops[o].lengths;l++){
      uint8_t out[24];
      sops[o].f(imm,SV[x],SV[y],LEN[l][0],LEN[l][1],out);
      for(int k=0;k<24;k++){ fnv^=out[k]; fnv*=0x100000001b3ull; }
      count++;
    }
    printf("        (\"%s\", 0x%016lXUL), // %d entries\n", sops[o].n, fnv, count);
  }
}
int main(void){
  for(unsigned o=0;o<sizeof ops/sizeof ops[0];o++){
    uint64_t fnv=0xcbf29ce484222325ull; int n = ops[o].dbl ? ND : NF, count=0;
    for(int mi=0;mi<NM;mi++) for(int x=0;x<n;x++) for(int y=0;y<n;y++){
      uint8_t a[16], b[16], out[24]; memset(out,0,24);
      inputs(ops[o].dbl,x,y,a,b);
      ops[o].f(M[mi],a,b,out);
      for(int k=0;k<24;k++){ fnv^=out[k]; fnv*=0x100000001b3ull; }
      count++;
    }
    printf("        (\"%s\", 0x%016lXUL), // %d entries\n", ops[o].n, fnv, count);
  }
  strings();
  return 0;
}
