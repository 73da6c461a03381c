/* SPDX-License-Identifier: MIT */
/* A freestanding arm64 guest for KvmSharp.Vmm, built by aarch64-linux-gnu-gcc in Arm64CGuestTests (with and without
 * -mgeneral-regs-only) and run in an arm64 micro-VM on the emulated kernel: the compiler's own A64 output, through
 * the guest SDK's arm64 half (the MMIO port window). Its functions are plain AAPCS64 functions the trampoline calls. */
#include "kvmsharp_guest.h"

typedef kvms_u64 u64;

static u64 counter;                          /* .bss: must start at zero */
static const char table[] = "arm64 gcc guest"; /* .rodata */
u64 weights[4] = { 1, 10, 100, 1000 };      /* .data */

u64 bump(void) { return ++counter; }

u64 add6(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) { return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f; }

/* FNV-1a over the input, mixed with a weighted byte sum: the host computes the same in C#. */
u64 checksum(const unsigned char *p, u64 n)
{
    u64 h = 0xcbf29ce484222325ull, w = 0;
    for (u64 i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
        w += p[i] * weights[i % 4];
    }
    return h ^ (w << 1) ^ (n / 3) ^ (n % 7);
}

/* 32-bit words: sum of squares, max, min and a count of odd words (gcc vectorises this without -mgeneral-regs-only). */
u64 words(const unsigned *p, u64 bytes)
{
    u64 n = bytes / 4, squares = 0;
    unsigned max = 0, min = 0xFFFFFFFFu, odd = 0;
    for (u64 i = 0; i < n; i++) {
        squares += (u64)p[i] * p[i];
        max = p[i] > max ? p[i] : max;
        min = p[i] < min ? p[i] : min;
        odd += p[i] & 1;
    }
    return squares ^ ((u64)max << 32) ^ min ^ ((u64)odd << 48);
}

long divide(long a, long b) { return b == 0 ? -1 : a / b + a % b; }

u64 fib(u64 n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* Resolves "mul" by name, then returns mul(a, b), or ~status on a failure. */
u64 ask_host(u64 a, u64 b)
{
    u64 status;
    u64 id = kvms_resolve("mul", &status);
    if (status != KVMS_STATUS_OK) return ~status;
    u64 r = kvms_hostcall2(id, a, b, &status);
    return status != KVMS_STATUS_OK ? ~status : r;
}

u64 name_length(void) { return kvms_strlen(table); }

/* Prints its argument in decimal, signed and hex; returns the ABI version. */
u64 print_numbers(u64 v)
{
    kvms_print_u64(v);
    kvms_putc(' ');
    kvms_print_i64(-(kvms_i64)v);
    kvms_putc(' ');
    kvms_print_hex(v);
    kvms_putc('\n');
    return kvms_abi_version();
}

/* Reverses the input into the output buffer. */
u64 reverse(const unsigned char *p, u64 n)
{
    u64 capacity;
    kvms_u8 *out = kvms_output_buffer(&capacity);
    if (n > capacity) return 1;
    for (u64 i = 0; i < n; i++) out[i] = p[n - 1 - i];
    return (u64)kvms_set_output(out, n);
}

#if defined(__ARM_NEON)
/* Only in the FP/SIMD build (-mgeneral-regs-only forbids floating point): doubles through the FP registers. */
u64 mean_scaled(const unsigned char *p, u64 n)
{
    double sum = 0;
    for (u64 i = 0; i < n; i++) sum += p[i] * 0.5;
    return n == 0 ? 0 : (u64)(sum / (double)n * 1000.0);
}
#endif

void finish(unsigned status) { kvms_exit(status); }

/* A store beyond the 32-bit VA space of the VMM's translation tables: a data abort (translation fault, level 0). */
void store_far(u64 value) { *(volatile u64 *)0x10000000000ull = value; }

/* Recursion that only ends at n == 0 (so never, from 1): the volatile frame keeps gcc from making it a loop; the stack
 * runs into the unmapped guard page below it. */
u64 overflow(u64 n)
{
    volatile unsigned char frame[64];
    frame[0] = (unsigned char)n;
    return n == 0 ? 0 : overflow(n + 1) + frame[0];
}

void trap(void) { __builtin_trap(); }

void _start(void)
{
    kvms_print("hello from arm64 gcc\n");
    kvms_exit(7);
}
