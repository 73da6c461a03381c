/* SPDX-License-Identifier: MIT */
/* A freestanding guest for KvmSharp.Vmm, built by gcc in GccGuestTests to prove the ELF loader on a real
 * compiler's output. Everything it knows of the ABI (COM1, the exit port, host calls) comes from the guest SDK's
 * kvmsharp_guest.h; its functions are plain SysV functions that return to the host's trampoline. */
#include "kvmsharp_guest.h"

typedef kvms_u64 u64;

static u64 counter;                       /* .bss: must start at zero */
static const char table[] = "gcc guest"; /* .rodata */
u64 weights[4] = { 1, 10, 100, 1000 };   /* .data */

u64 bump(void) { return ++counter; }

u64 weighted(const unsigned char *p, u64 n)
{
    u64 r = 0;
    for (u64 i = 0; i < n; i++) r += p[i] * weights[i % 4];
    return r;
}

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

void _start(void)
{
    kvms_print("hello from gcc\n");
    kvms_exit(7);
}
