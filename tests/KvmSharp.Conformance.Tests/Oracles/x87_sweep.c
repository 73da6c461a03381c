#include <stdio.h>
#include <stdint.h>
#include <string.h>
// SPDX-License-Identifier: MIT
// The CPU as the oracle of X87ArithmeticCases.x87_sweep_matches_the_cpu: per instruction, for every FCW of CW and
// every input pair, FNINIT, FLDCW, FLD m80 b, FLD m80 a (so ST0 = a, ST1 = b), the instruction, PUSHFQ and FXSAVE64;
// an FNV-1a digest of FCW, FSW, the abridged tag byte, ST0 and ST1 (zeros when empty), the 16-byte memory result and (FCOMI forms only)
// RFLAGS & 0x8d5, printed as the case's table lists it. X87SweepOracleTests builds and runs this on the test host;
// `x87_sweep DUMPFILE` also writes every record (for finding a mismatch).
typedef struct { uint16_t se; uint64_t sig; } ext_t;
static const ext_t E[] = {
 {0x0000,0},{0x8000,0},{0x3fff,0x8000000000000000ull},{0xbfff,0xc000000000000000ull},{0x4000,0xc000000000000000ull},
 {0x3fff,0x8000000000000001ull},{0x3fff,0xffffffffffffffffull},{0x3ffd,0xaaaaaaaaaaaaaaabull},{0x7ffe,0xffffffffffffffffull},
 {0x0001,0x8000000000000000ull},{0x0000,0x4000000000000001ull},{0x8000,0x00000000deadbeefull},{0x7fff,0x8000000000000000ull},
 {0xffff,0x8000000000000000ull},{0x7fff,0xc000000000000001ull},{0xffff,0xa000000000000000ull},{0xffff,0xc000000000000000ull},
 {0x4000,0x4000000000000000ull},{0x0000,0x8000000000000001ull},{0x4000,0xa000000000000000ull},{0xbffe,0x8000000000000000ull},
 {0x43e3,0x9b5c2f8de1a4b337ull},{0x3c00,0x8000000000000123ull},{0x401e,0xffffffff00000000ull},{0xc03e,0x8000000000000000ull},
 {0x3ffe,0x8000000000000400ull}};
static const uint64_t F[] = {0,0x80000000u,0x3f800000u,0xbfc00000u,0x7f7fffffu,0x00800000u,0x00000001u,0x807fffffu,
 0x7f800000u,0xff800000u,0x7fc00001u,0x7f800005u,0x3eaaaaabu,0x4b000001u};
static const uint64_t D[] = {0,0x8000000000000000ull,0x3ff0000000000000ull,0xbff8000000000000ull,0x7fefffffffffffffull,
 0x0010000000000000ull,1,0x800fffffffffffffull,0x7ff0000000000000ull,0xfff0000000000000ull,0x7ff8000000000001ull,
 0x7ff0000000000005ull,0x3fd5555555555555ull,0x4330000000000001ull};
static const uint64_t I16[] = {0,1,0xffff,0x7fff,0x8000,3,0xfff9};
static const uint64_t I32[] = {0,1,0xffffffffu,0x7fffffffu,0x80000000u,3,100000007u};
static const uint64_t I64[] = {0,1,~0ull,0x7fffffffffffffffull,0x8000000000000000ull,3,0x123456789abcdef1ull};
static const uint16_t CW[] = {0x037f,0x077f,0x0b7f,0x0f7f,0x027f,0x007f,0x0e7f,0x0340};
#define NCW 8
static uint8_t scratch[512] __attribute__((aligned(16)));
#define OP(fn, text) static void fn(uint8_t* in, uint8_t* out){ __asm__ volatile(".intel_syntax noprefix\n fninit\n fldcw word ptr [rsi]\n" \
  " fld tbyte ptr [rsi+32]\n fld tbyte ptr [rsi+16]\n" text "\n lea rsp, [rsp-128]\n pushfq\n pop qword ptr [rdi+56]\n lea rsp, [rsp+128]\n" \
  " fxsave64 [rbx]\n fninit\n .att_syntax\n" :: "S"(in), "D"(out), "b"(scratch) : "memory","cc","st","st(1)","st(2)","st(3)","st(4)","st(5)","st(6)","st(7)"); }
OP(o_fadd,"fadd st(0), st(1)") OP(o_fsub,"fsub st(0), st(1)") OP(o_fsubr,"fsubr st(0), st(1)") OP(o_fmul,"fmul st(0), st(1)")
OP(o_fdiv,"fdiv st(0), st(1)") OP(o_fdivr,"fdivr st(0), st(1)") OP(o_faddp,"faddp st(1), st(0)")
OP(o_fsubst1,".byte 0xdc, 0xe9") /* FSUB ST(1), ST(0): ST(1) - ST(0) (raw: GAS swaps fsub/fsubr with an st(i) destination) */
OP(o_fdivrp,".byte 0xde, 0xf1")  /* FDIVRP ST(1), ST(0): ST(0) / ST(1) into ST(1), pop */
OP(o_fcom,"fcom st(1)") OP(o_fucomp,"fucomp st(1)") OP(o_fcompp,"fcompp") OP(o_fcomi,"fcomi st(0), st(1)") OP(o_fucomip,"fucomip st(0), st(1)")
OP(o_fprem,"fprem") OP(o_fprem1,"fprem1") OP(o_fscale,"fscale") OP(o_fxch,"fxch st(1)")
OP(o_fsqrt,"fsqrt") OP(o_frndint,"frndint") OP(o_fchs,"fchs") OP(o_fabs,"fabs") OP(o_fxam,"fxam") OP(o_ftst,"ftst") OP(o_fxtract,"fxtract")
OP(o_fst32,"fst dword ptr [rdi+40]") OP(o_fstp64,"fstp qword ptr [rdi+40]") OP(o_fstp80,"fstp tbyte ptr [rdi+40]")
OP(o_fist16,"fist word ptr [rdi+40]") OP(o_fistp32,"fistp dword ptr [rdi+40]") OP(o_fistp64,"fistp qword ptr [rdi+40]")
OP(o_fisttp16,"fisttp word ptr [rdi+40]") OP(o_fisttp64,"fisttp qword ptr [rdi+40]")
OP(o_fldpi,"fldpi") OP(o_fldl2e,"fldl2e") OP(o_fldl2t,"fldl2t") OP(o_fldlg2,"fldlg2") OP(o_fldln2,"fldln2") OP(o_fldst1,"fld st(1)")
OP(o_fldovf,"fld1\n fld1\n fld1\n fld1\n fld1\n fld1\n fld tbyte ptr [rsi+16]") OP(o_faddund,"ffree st(1)\n fadd st(0), st(1)")
OP(o_fstund,"fstp st(0)\n fstp st(0)\n fst dword ptr [rdi+40]") OP(o_fcomund,"ffree st(1)\n fcom st(1)")
OP(o_fistund,"fstp st(0)\n fstp st(0)\n fistp dword ptr [rdi+40]")
OP(o_fadd32,"fadd dword ptr [rsi+32]") OP(o_fmul32,"fmul dword ptr [rsi+32]") OP(o_fdivr32,"fdivr dword ptr [rsi+32]")
OP(o_fcom32,"fcom dword ptr [rsi+32]") OP(o_fld32,"fld dword ptr [rsi+32]")
OP(o_fadd64,"fadd qword ptr [rsi+32]") OP(o_fsub64,"fsub qword ptr [rsi+32]") OP(o_fdiv64,"fdiv qword ptr [rsi+32]")
OP(o_fcomp64,"fcomp qword ptr [rsi+32]") OP(o_fld64,"fld qword ptr [rsi+32]")
OP(o_fiadd16,"fiadd word ptr [rsi+32]") OP(o_ficom16,"ficom word ptr [rsi+32]") OP(o_fild16,"fild word ptr [rsi+32]")
OP(o_fimul32,"fimul dword ptr [rsi+32]") OP(o_fidiv32,"fidiv dword ptr [rsi+32]") OP(o_fisubr32,"fisubr dword ptr [rsi+32]")
OP(o_fild32,"fild dword ptr [rsi+32]") OP(o_fild64,"fild qword ptr [rsi+32]")
typedef void (*fn)(uint8_t*, uint8_t*);
enum { X, U, KF, KD, K16, K32, K64 };
static const struct { const char* n; fn f; int kind; int flags; } ops[] = {
 {"fadd",o_fadd,X,0},{"fsub",o_fsub,X,0},{"fsubr",o_fsubr,X,0},{"fmul",o_fmul,X,0},{"fdiv",o_fdiv,X,0},{"fdivr",o_fdivr,X,0},
 {"faddp",o_faddp,X,0},{"fsubst1",o_fsubst1,X,0},{"fdivrp",o_fdivrp,X,0},{"fcom",o_fcom,X,0},{"fucomp",o_fucomp,X,0},
 {"fcompp",o_fcompp,X,0},{"fcomi",o_fcomi,X,1},{"fucomip",o_fucomip,X,1},{"fprem",o_fprem,X,0},{"fprem1",o_fprem1,X,0},
 {"fscale",o_fscale,X,0},{"fxch",o_fxch,X,0},
 {"fsqrt",o_fsqrt,U,0},{"frndint",o_frndint,U,0},{"fchs",o_fchs,U,0},{"fabs",o_fabs,U,0},{"fxam",o_fxam,U,0},{"ftst",o_ftst,U,0},
 {"fxtract",o_fxtract,U,0},{"fst32",o_fst32,U,0},{"fstp64",o_fstp64,U,0},{"fstp80",o_fstp80,U,0},{"fist16",o_fist16,U,0},
 {"fistp32",o_fistp32,U,0},{"fistp64",o_fistp64,U,0},{"fisttp16",o_fisttp16,U,0},{"fisttp64",o_fisttp64,U,0},
 {"fldpi",o_fldpi,U,0},{"fldl2e",o_fldl2e,U,0},{"fldl2t",o_fldl2t,U,0},{"fldlg2",o_fldlg2,U,0},{"fldln2",o_fldln2,U,0},
 {"fldst1",o_fldst1,U,0},{"fldovf",o_fldovf,U,0},{"faddund",o_faddund,U,0},{"fstund",o_fstund,U,0},{"fcomund",o_fcomund,U,0},
 {"fistund",o_fistund,U,0},
 {"fadd32",o_fadd32,KF,0},{"fmul32",o_fmul32,KF,0},{"fdivr32",o_fdivr32,KF,0},{"fcom32",o_fcom32,KF,0},{"fld32",o_fld32,KF,0},
 {"fadd64",o_fadd64,KD,0},{"fsub64",o_fsub64,KD,0},{"fdiv64",o_fdiv64,KD,0},{"fcomp64",o_fcomp64,KD,0},{"fld64",o_fld64,KD,0},
 {"fiadd16",o_fiadd16,K16,0},{"ficom16",o_ficom16,K16,0},{"fild16",o_fild16,K16,0},
 {"fimul32",o_fimul32,K32,0},{"fidiv32",o_fidiv32,K32,0},{"fisubr32",o_fisubr32,K32,0},{"fild32",o_fild32,K32,0},
 {"fild64",o_fild64,K64,0},
};
int main(int argc, char** argv){
  FILE* dump = argc > 1 ? fopen(argv[1], "w") : NULL;
  for (unsigned o = 0; o < sizeof ops / sizeof ops[0]; o++){
    uint64_t fnv = 0xcbf29ce484222325ull; int n = 0, kind = ops[o].kind;
    const uint64_t* list = kind == KF ? F : kind == KD ? D : kind == K16 ? I16 : kind == K32 ? I32 : I64;
    int nb = kind == X ? (int)(sizeof E / sizeof E[0]) : kind == U ? 1 : kind == KF ? (int)(sizeof F / 8) : kind == KD ? (int)(sizeof D / 8)
      : kind == K16 ? (int)(sizeof I16 / 8) : kind == K32 ? (int)(sizeof I32 / 8) : (int)(sizeof I64 / 8);
    for (int c = 0; c < NCW; c++) for (unsigned x = 0; x < sizeof E / sizeof E[0]; x++) for (int y = 0; y < nb; y++){
      uint8_t in[48] = {0}, out[64] = {0};
      memcpy(in, &CW[c], 2);
      memcpy(in + 16, &E[x].sig, 8); memcpy(in + 24, &E[x].se, 2);
      if (kind == X) { memcpy(in + 32, &E[y].sig, 8); memcpy(in + 40, &E[y].se, 2); }
      else if (kind == U) { uint64_t s = 0xa000000000000000ull; uint16_t e = 0x4000; memcpy(in + 32, &s, 8); memcpy(in + 40, &e, 2); }
      else memcpy(in + 32, &list[y], 8);
      ops[o].f(in, out);
      memcpy(out, scratch, 8); memcpy(out + 8, scratch + 32, 16); memcpy(out + 24, scratch + 48, 16);
      // An empty register keeps whatever an earlier input left there: ST0/ST1 count only when tagged in use.
      { int top = (out[3] >> 3) & 7; if (!(out[4] & (1 << top))) memset(out + 8, 0, 16); if (!(out[4] & (1 << ((top + 1) & 7)))) memset(out + 24, 0, 16); }
      uint8_t rec[45]; uint32_t fl = ops[o].flags ? (uint32_t)(*(uint64_t*)(out + 56) & 0x8d5) : 0;
      memcpy(rec, out, 5); memcpy(rec + 5, out + 8, 10); memcpy(rec + 15, out + 24, 10); memcpy(rec + 25, out + 40, 16); memcpy(rec + 41, &fl, 4);
      for (int k = 0; k < 45; k++){ fnv ^= rec[k]; fnv *= 0x100000001b3ull; }
      if (dump){ fprintf(dump, "%s %04x %04x:%016lx ", ops[o].n, CW[c], E[x].se, E[x].sig);
        fprintf(dump, "%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x ->", in[47],in[46],in[45],in[44],in[43],in[42],in[41],in[40],in[39],in[38],in[37],in[36],in[35],in[34],in[33],in[32]);
        for (int k = 0; k < 45; k++) fprintf(dump, "%s%02x", (k==5||k==15||k==25||k==41)?" ":"", rec[k]);
        fprintf(dump, "\n"); }
      n++;
    }
    printf("        (\"%s\", 0x%016lXUL), // %d entries\n", ops[o].n, fnv, n);
  }
  if (dump) fclose(dump);
  return 0;
}
