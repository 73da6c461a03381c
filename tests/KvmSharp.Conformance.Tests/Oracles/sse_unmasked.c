// SPDX-License-Identifier: MIT
// Where SseArithmeticCases.sse_unmasked_exceptions_raise_xm_or_ud takes its MXCSR values from: each line runs one
// SSE instruction with one exception unmasked and prints whether it faulted (SIGFPE, i.e. #XM) and MXCSR at the fault.
// Build and run by hand: gcc -O2 -o sse_unmasked sse_unmasked.c && ./sse_unmasked
#define _GNU_SOURCE
#include <stdio.h>
#include <stdint.h>
#include <signal.h>
#include <ucontext.h>
#include <string.h>
static volatile uint32_t seen; static volatile int faulted;
static void h(int sig, siginfo_t* si, void* uc_){ ucontext_t* uc=uc_; seen=uc->uc_mcontext.fpregs->mxcsr; faulted=1;
  uc->uc_mcontext.fpregs->mxcsr |= 0x1f80; uc->uc_mcontext.gregs[REG_RIP]+=4; (void)sig;(void)si; }
#define T(insn, m, a, b) do { uint32_t mm=m, mo; uint64_t r; faulted=0; \
  __asm__ volatile("ldmxcsr %2\n movq %3, %%xmm0\n movq %4, %%xmm1\n" insn " %%xmm1, %%xmm0\n movq %%xmm0, %0\n stmxcsr %1" : "=r"(r), "=m"(mo) : "m"(mm), "r"((uint64_t)a), "r"((uint64_t)b) : "xmm0","xmm1"); \
  printf("%-8s mx %04x a %016lx b %016lx -> faulted %d mxcsr-at-fault %04x r %016lx\n", insn, m, (uint64_t)a, (uint64_t)b, faulted, faulted?seen:mo, r); } while(0)
int main(void){
  struct sigaction sa; memset(&sa,0,sizeof sa); sa.sa_sigaction=h; sa.sa_flags=SA_SIGINFO; sigaction(SIGFPE,&sa,0);
  T("mulsd", 0x1b80, 0x7fe0000000000000ull, 0x4000000000000000ull); // overflow, OM clear
  T("mulsd", 0x1780, 0x0010000000000000ull, 0x3fe0000000000000ull); // exact tiny, UM clear
  T("mulsd", 0x1780, 0x0010000000000001ull, 0x3fe0000000000000ull); // inexact tiny, UM clear
  T("addsd", 0x1e80, 0x0000000000000001ull, 0x3ff0000000000000ull); // denormal, DM clear
  T("addsd", 0x0f80, 0x7ff0000000000000ull, 0x3ff0000000000000ull); // inf + 1 PM clear (exact)
  T("mulsd", 0x0f80, 0x7fe0000000000000ull, 0x4000000000000000ull); // overflow, PM clear only
  T("mulsd", 0x0f80, 0x0010000000000001ull, 0x3fe0000000000000ull); // tiny inexact, PM clear only
  T("mulsd", 0x9780, 0x0010000000000001ull, 0x3fe0000000000000ull); // FTZ with UM clear
  T("divsd", 0x1d80, 0x0000000000000001ull, 0x0000000000000000ull); // denormal / 0, ZM clear
  T("divsd", 0x1c80, 0x0000000000000001ull, 0x0000000000000000ull); // denormal / 0, ZM DM clear
  return 0;
}
