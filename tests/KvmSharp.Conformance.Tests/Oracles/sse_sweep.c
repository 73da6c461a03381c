#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
// SPDX-License-Identifier: MIT
// The CPU as the oracle of SseArithmeticCases.sse_scalar_float_sweep_matches_the_cpu: the same instructions on the
// same inputs under the same MXCSR values (one LDMXCSR per input), an FNV-1a digest of result, MXCSR and flags per
// instruction, printed as the case's table lists it. SseSweepOracleTests builds and runs this on the test host and
// compares with the case's table; `sse_sweep DUMPFILE` also writes every input and output (for finding a mismatch).
static const uint64_t D[] = {0,0x8000000000000000ull,0x3ff0000000000000ull,0xbff0000000000000ull,0x3ff8000000000000ull,
 0x4008000000000000ull,0x3fb999999999999aull,0xbfd5555555555555ull,0x7fe1ccf385ebc8a0ull,0xffe2f0fa2d1a7a74ull,
 0x0010000000000000ull,0x000fffffffffffffull,0x0000000000000001ull,0x8000000000000003ull,0x7ff0000000000000ull,
 0xfff0000000000000ull,0x7ff8000000000001ull,0x7ff0000000000005ull,0xfff8000000000002ull,0x43e0000000000000ull,
 0xc1e0000000100000ull,0x3ff0000000000001ull,0x01a56e1fc2f8f359ull,0x0018000000000000ull,0x41dfffffffc00000ull,0x7fefffffffffffffull};
static const uint32_t F[] = {0,0x80000000u,0x3f800000u,0xbf800000u,0x3fc00000u,0x40400000u,0x3dcccccdu,0xbeaaaaabu,
 0x7f61ccf4u,0xff7fffffu,0x00800000u,0x007fffffu,0x00000001u,0x80000003u,0x7f800000u,0xff800000u,0x7fc00001u,
 0x7f800005u,0xffc00002u,0x4f000000u,0xcf000001u,0x3f800001u,0x0da24260u,0x00c00000u,0x4effffffu,0x7f7fffffu};
#define ND (sizeof D/8)
#define NF (sizeof F/4)
static const uint32_t M[] = {0x1f80,0x3f80,0x5f80,0x7f80,0x9fc0,0x1fc0,0x9f80};
#define NM 7
typedef struct { uint64_t r; uint32_t mx; uint32_t fl; } out_t;
static uint64_t fnv=0; static FILE* dump; /* NULL: no dump */
static void put(int op, uint32_t m, uint64_t a, uint64_t b, out_t o){
  uint8_t buf[16]; memcpy(buf,&o.r,8); memcpy(buf+8,&o.mx,4); memcpy(buf+12,&o.fl,4);
  for(int k=0;k<16;k++){ fnv^=buf[k]; fnv*=0x100000001b3ull; }
  if (dump) fprintf(dump,"%d %x %016lx %016lx -> %016lx %x %x\n",op,m,a,b,o.r,o.mx,o.fl);
}
#define BIN(name) static out_t op_##name(uint32_t m, uint64_t a, uint64_t b){ out_t o; uint32_t mm=m; uint64_t fl; \
  __asm__ volatile("ldmxcsr %3\n movq %4, %%xmm0\n movq %5, %%xmm1\n " #name " %%xmm1, %%xmm0\n movq %%xmm0, %0\n stmxcsr %1\n pushfq\n popq %2" \
  : "=r"(o.r), "=m"(o.mx), "=r"(fl) : "m"(mm), "r"(a), "r"(b) : "xmm0","xmm1","cc"); o.fl=0; return o; }
BIN(addss) BIN(subss) BIN(mulss) BIN(divss) BIN(minss) BIN(maxss) BIN(sqrtss)
BIN(addsd) BIN(subsd) BIN(mulsd) BIN(divsd) BIN(minsd) BIN(maxsd) BIN(sqrtsd) BIN(cvtss2sd) BIN(cvtsd2ss)
#define TOI(name,reg) static out_t op_##name(uint32_t m, uint64_t a, uint64_t b){ out_t o; uint32_t mm=m; o.r=0x1111111111111111ull; (void)a; \
  __asm__ volatile("ldmxcsr %2\n movq %3, %%xmm1\n " #name " %%xmm1, %" reg "0\n stmxcsr %1" : "+r"(o.r), "=m"(o.mx) : "m"(mm), "r"(b) : "xmm1"); o.fl=0; return o; }
TOI(cvtsd2si,"q") TOI(cvttsd2si,"k") TOI(cvtss2si,"k") TOI(cvttss2si,"q")
static out_t op_cvtsi2sdq(uint32_t m, uint64_t a, uint64_t b){ out_t o; uint32_t mm=m; \
  __asm__ volatile("ldmxcsr %2\n movq %4, %%xmm0\n cvtsi2sdq %3, %%xmm0\n movq %%xmm0, %0\n stmxcsr %1" : "=r"(o.r), "=m"(o.mx) : "m"(mm), "r"(b), "r"(a) : "xmm0"); o.fl=0; return o; }
static out_t op_cvtsi2ssq(uint32_t m, uint64_t a, uint64_t b){ out_t o; uint32_t mm=m; \
  __asm__ volatile("ldmxcsr %2\n movq %4, %%xmm0\n cvtsi2ssq %3, %%xmm0\n movq %%xmm0, %0\n stmxcsr %1" : "=r"(o.r), "=m"(o.mx) : "m"(mm), "r"(b), "r"(a) : "xmm0"); o.fl=0; return o; }
static out_t op_cvtsi2ssl(uint32_t m, uint64_t a, uint64_t b){ out_t o; uint32_t mm=m; uint32_t a32=(uint32_t)b; \
  __asm__ volatile("ldmxcsr %2\n movq %4, %%xmm0\n cvtsi2ssl %3, %%xmm0\n movq %%xmm0, %0\n stmxcsr %1" : "=r"(o.r), "=m"(o.mx) : "m"(mm), "r"(a32), "r"(a) : "xmm0"); o.fl=0; return o; }
#define CMP(name) static out_t op_##name(uint32_t m, uint64_t a, uint64_t b){ out_t o; uint32_t mm=m; uint64_t fl; \
  __asm__ volatile("ldmxcsr %3\n movq %4, %%xmm0\n movq %5, %%xmm1\n " #name " %%xmm1, %%xmm0\n stmxcsr %1\n pushfq\n popq %2" \
  : "=r"(o.r), "=m"(o.mx), "=r"(fl) : "m"(mm), "r"(a), "r"(b) : "xmm0","xmm1","cc"); o.r=0; o.fl=(uint32_t)(fl & 0x8d5); return o; }
CMP(ucomisd) CMP(comiss)
#define BINI(fname,insn,imm) static out_t op_##fname(uint32_t m, uint64_t a, uint64_t b){ out_t o; uint32_t mm=m; \
  __asm__ volatile("ldmxcsr %2\n movq %3, %%xmm0\n movq %4, %%xmm1\n " #insn " $" #imm ", %%xmm1, %%xmm0\n movq %%xmm0, %0\n stmxcsr %1" \
  : "=r"(o.r), "=m"(o.mx) : "m"(mm), "r"(a), "r"(b) : "xmm0","xmm1"); o.fl=0; return o; }
BIN(addps) BIN(subpd) BIN(mulps) BIN(mulpd) BIN(sqrtps) BIN(sqrtpd) BIN(minps) BIN(maxpd) BIN(cvtps2pd) BIN(cvtpd2ps) BIN(cvtps2dq) BIN(cvttpd2dq) BIN(cvtdq2ps)
BINI(cmpps5,cmpps,5) BINI(cmppd2,cmppd,2)
BINI(cmpss0,cmpss,0) BINI(cmpss1,cmpss,1) BINI(cmpss2,cmpss,2) BINI(cmpss3,cmpss,3) BINI(cmpss4,cmpss,4) BINI(cmpss5,cmpss,5) BINI(cmpss6,cmpss,6) BINI(cmpss7,cmpss,7)
BINI(cmpsd0,cmpsd,0) BINI(cmpsd1,cmpsd,1) BINI(cmpsd2,cmpsd,2) BINI(cmpsd3,cmpsd,3) BINI(cmpsd4,cmpsd,4) BINI(cmpsd5,cmpsd,5) BINI(cmpsd6,cmpsd,6) BINI(cmpsd7,cmpsd,7)
static out_t op_cvtsi2sdl(uint32_t m, uint64_t a, uint64_t b){ out_t o; uint32_t mm=m; uint32_t a32=(uint32_t)b; \
  __asm__ volatile("ldmxcsr %2\n movq %4, %%xmm0\n cvtsi2sdl %3, %%xmm0\n movq %%xmm0, %0\n stmxcsr %1" : "=r"(o.r), "=m"(o.mx) : "m"(mm), "r"(a32), "r"(a) : "xmm0"); o.fl=0; return o; }
typedef out_t (*fn)(uint32_t,uint64_t,uint64_t);
// kind: 0 float binary, 1 double binary, 2 float unary, 3 double unary
struct { const char* n; fn f; int kind; } ops[] = {
 {"addss",op_addss,0},{"subss",op_subss,0},{"mulss",op_mulss,0},{"divss",op_divss,0},{"minss",op_minss,0},{"maxss",op_maxss,0},{"sqrtss",op_sqrtss,2},
 {"addsd",op_addsd,1},{"subsd",op_subsd,1},{"mulsd",op_mulsd,1},{"divsd",op_divsd,1},{"minsd",op_minsd,1},{"maxsd",op_maxsd,1},{"sqrtsd",op_sqrtsd,3},
 {"cvtss2sd",op_cvtss2sd,2},{"cvtsd2ss",op_cvtsd2ss,3},{"cvtsd2si64",op_cvtsd2si,3},{"cvttsd2si32",op_cvttsd2si,3},{"cvtss2si32",op_cvtss2si,2},{"cvttss2si64",op_cvttss2si,2},
 {"cvtsi2sd64",op_cvtsi2sdq,3},{"cvtsi2ss64",op_cvtsi2ssq,3},{"cvtsi2ss32",op_cvtsi2ssl,2},{"ucomisd",op_ucomisd,1},{"comiss",op_comiss,0},
 {"cmpss0",op_cmpss0,0},{"cmpss1",op_cmpss1,0},{"cmpss2",op_cmpss2,0},{"cmpss3",op_cmpss3,0},{"cmpss4",op_cmpss4,0},{"cmpss5",op_cmpss5,0},{"cmpss6",op_cmpss6,0},{"cmpss7",op_cmpss7,0},
 {"cmpsd0",op_cmpsd0,1},{"cmpsd1",op_cmpsd1,1},{"cmpsd2",op_cmpsd2,1},{"cmpsd3",op_cmpsd3,1},{"cmpsd4",op_cmpsd4,1},{"cmpsd5",op_cmpsd5,1},{"cmpsd6",op_cmpsd6,1},{"cmpsd7",op_cmpsd7,1},
 {"cvtsi2sd32",op_cvtsi2sdl,2},
 {"addps",op_addps,0},{"subpd",op_subpd,1},{"mulps",op_mulps,0},{"mulpd",op_mulpd,1},{"sqrtps",op_sqrtps,2},{"sqrtpd",op_sqrtpd,3},
 {"minps",op_minps,0},{"maxpd",op_maxpd,1},{"cvtps2pd",op_cvtps2pd,2},{"cvtpd2ps",op_cvtpd2ps,3},{"cvtps2dq",op_cvtps2dq,2},
 {"cvttpd2dq",op_cvttpd2dq,3},{"cvtdq2ps",op_cvtdq2ps,2},{"cmpps5",op_cmpps5,0},{"cmppd2",op_cmppd2,1},
};
int main(int argc, char** argv){
  dump = argc > 1 ? fopen(argv[1], "w") : NULL;
  for(unsigned o=0;o<sizeof ops/sizeof ops[0];o++){
    fnv=0xcbf29ce484222325ull; int kind=ops[o].kind; int n=0;
    for(int mi=0;mi<NM;mi++){
      int na = (kind&1)?ND:NF; int nb = kind>=2 ? 1 : na;
      for(int x=0;x<na;x++) for(int y=0;y<nb;y++){
        uint64_t a,b;
        if(kind&1){ a=D[x]; b=kind>=2? 0x5555555555555555ull : D[y]; }
        else { a=0xdeadbeef00000000ull|F[x]; b=kind>=2? 0x5555555555555555ull : 0xc0ffee0000000000ull|F[y]; }
        // unary ops: the source is a (in xmm1 / the integer register), xmm0 holds b
        out_t r = kind>=2 ? ops[o].f(M[mi], b, a) : ops[o].f(M[mi],a,b);
        put(o,M[mi],a,b,r); n++;
      }
    }
    printf("        (\"%s\", 0x%016lXUL), // %d entries\n", ops[o].n, fnv, n);
  }
  return 0;
}
