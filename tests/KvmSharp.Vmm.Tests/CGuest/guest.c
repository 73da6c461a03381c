/* SPDX-License-Identifier: MIT */
/* A freestanding guest for KvmSharp.Vmm, built by gcc in GccGuestTests to prove the ELF loader on a real
 * compiler's output. It uses the ABI of src/KvmSharp.Vmm/GUEST-ABI.md: COM1 for output, port 0x500 to exit, and
 * plain SysV functions that return to the host's trampoline. */
typedef unsigned long long u64;
typedef unsigned int u32;

static inline void outb(unsigned short port, unsigned char v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(unsigned short port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

static void puts_com1(const char *s) { while (*s) outb(0x3f8, (unsigned char)*s++); }

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

/* Host calls (GUEST-ABI.md, "Host calls"): the block at 0x28100, then an OUT to port 0x502. */
typedef struct { volatile u64 function, args[6], result, status; } hostcall_block;
#define HOSTCALL ((hostcall_block *)0x28100)

static u64 hostcall(u64 id, u64 a0, u64 a1, u64 *status)
{
    HOSTCALL->function = id;
    HOSTCALL->args[0] = a0;
    HOSTCALL->args[1] = a1;
    __asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"((unsigned short)0x502) : "memory");
    *status = HOSTCALL->status;
    return HOSTCALL->result;
}

/* Resolves "mul" by name (id 0), then returns mul(a, b) + the number of bytes in name, or ~status on a failure. */
u64 ask_host(u64 a, u64 b)
{
    static const char name[] = "mul";
    u64 status;
    u64 id = hostcall(0, (u64)name, sizeof name - 1, &status);
    if (status) return ~status;
    u64 r = hostcall(id, a, b, &status);
    return status ? ~status : r;
}

u64 name_length(void) { u64 n = 0; while (table[n]) n++; return n; }

void _start(void)
{
    puts_com1("hello from gcc\n");
    outl(0x500, 7);
    for (;;) __asm__ volatile("hlt");
}
