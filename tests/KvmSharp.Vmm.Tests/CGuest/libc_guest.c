/* SPDX-License-Identifier: MIT */
/* The C library pieces of kvmsharp_guest.h (LibcGuestTests): the mem* functions (KVMSHARP_GUEST_MEMFUNCS) against
 * byte loops, and the heap (KVMSHARP_GUEST_MALLOC) under load — random malloc, free, calloc and realloc with every live
 * block's bytes checked, exhaustion and reuse, and a block that outlives its call. Every check function returns 0 when
 * all held, else a code naming the first check that failed. */
#define KVMSHARP_GUEST_MEMFUNCS
#define KVMSHARP_GUEST_MALLOC
#include "kvmsharp_guest.h"

typedef kvms_u64 u64;
typedef kvms_u8 u8;

#define SLOTS 64
static u8 *slot[SLOTS];
static u64 slot_len[SLOTS];
static u64 rng;

static u64 next(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return rng >> 33;
}

static u8 pattern(u64 s, u64 i) { return (u8)(s * 31 + i * 7 + 1); }

static int intact(u64 s)
{
    for (u64 i = 0; i < slot_len[s]; i++)
        if (slot[s][i] != pattern(s, i)) return 0;
    return 1;
}

static int aligned(const void *p) { return ((u64)p & 15) == 0; }

/* memcpy, memmove (overlapping both ways), memset and memcmp for every length 0..20 and source and destination offset
 * 0..7 (so every split into 8-byte elements and a byte tail), against byte loops through volatile pointers (which the
 * compiler cannot turn into calls to the functions under test), over a 64-byte window whose other bytes must not move. */
static u8 window[64], expect[64];

static void fill(u64 seed)
{
    for (u64 i = 0; i < 64; i++) ((volatile u8 *)window)[i] = ((volatile u8 *)expect)[i] = (u8)(i * 13 + seed);
}

static int same(void)
{
    for (u64 i = 0; i < 64; i++)
        if (((volatile u8 *)window)[i] != ((volatile u8 *)expect)[i]) return 0;
    return 1;
}

u64 memfuncs_check(void)
{
    volatile u8 *e = expect;
    for (u64 n = 0; n <= 20; n++)
        for (u64 so = 0; so < 8; so++)
            for (u64 dof = 0; dof < 8; dof++)
            {
                u64 code = (n * 64 + so * 8 + dof) * 10;
                fill(n + so + dof);
                memcpy(window + 32 + dof, window + so, n);
                for (u64 i = 0; i < n; i++) e[32 + dof + i] = e[so + i];
                if (!same()) return code + 1;

                fill(n + so);
                memmove(window + 20 + dof, window + 20 + so, n);   /* overlapping up, down, or in place */
                u8 tmp[20];
                for (u64 i = 0; i < n; i++) ((volatile u8 *)tmp)[i] = e[20 + so + i];
                for (u64 i = 0; i < n; i++) e[20 + dof + i] = ((volatile u8 *)tmp)[i];
                if (!same()) return code + 2;

                fill(dof);
                memset(window + so + dof, (int)(0x100 + n * 17), n);   /* only the low byte counts */
                for (u64 i = 0; i < n; i++) e[so + dof + i] = (u8)(n * 17);
                if (!same()) return code + 3;
                if (n > 0 && memcmp(window + so, window + so, n) != 0) return code + 4;
            }
    fill(1);
    window[9] = 200;
    if (memcmp(window, expect, 9) != 0 || memcmp(window, expect, 10) <= 0 || memcmp(expect, window, 10) >= 0) return 5;
    return 0;
}

/* heap_stress(seed, rounds): random operations on 64 slots of 1..1024 bytes (realloc up to 2048). */
u64 heap_stress(u64 seed, u64 rounds)
{
    rng = seed;
    for (u64 r = 0; r < rounds; r++)
    {
        u64 s = next() % SLOTS, op = next() % 4, n = 1 + next() % 1024;
        if (slot[s] && !intact(s)) return 1000 + s;
        if (op == 0 && slot[s])
        {
            free(slot[s]);
            slot[s] = 0;
            continue;
        }
        if (op == 1 && slot[s])
        {
            u64 grown = n * 2;
            u8 *q = realloc(slot[s], grown);
            if (!q || !aligned(q)) return 2;
            slot[s] = q;
            for (u64 i = 0; i < slot_len[s]; i++)
                if (q[i] != pattern(s, i)) return 3; /* realloc kept the old bytes */
            slot_len[s] = grown;
        }
        else
        {
            free(slot[s]);
            u8 *q = op == 2 ? calloc(n, 1) : malloc(n);
            if (!q || !aligned(q)) return 4;
            if (op == 2)
                for (u64 i = 0; i < n; i++)
                    if (q[i] != 0) return 5; /* calloc zeroed */
            slot[s] = q;
            slot_len[s] = n;
        }
        for (u64 i = 0; i < slot_len[s]; i++) slot[s][i] = pattern(s, i);
    }
    for (u64 s = 0; s < SLOTS; s++)
    {
        if (slot[s] && !intact(s)) return 2000 + s;
        free(slot[s]);
        slot[s] = 0;
    }
    return 0;
}

/* heap_exhaust(size): how many blocks of size bytes fit; all freed, the same number fit again (free space merged),
 * and then one block of nearly everything (returns count, or a large code on failure). */
u64 heap_exhaust(u64 size)
{
    static void *blocks[20000];
    u64 count = 0;
    while (count < 20000 && (blocks[count] = malloc(size)) != 0) count++;
    if (count == 20000) return 1u << 31;
    for (u64 i = 0; i < count; i += 2) free(blocks[i]);    /* every other one first: holes that must merge */
    for (u64 i = 1; i < count; i += 2) free(blocks[i]);
    void *big = malloc(count * size);
    if (!big) return (1u << 31) + 1;
    free(big);
    u64 again = 0;
    while (again < 20000 && (blocks[again] = malloc(size)) != 0) again++;
    for (u64 i = 0; i < again; i++) free(blocks[i]);
    return again == count ? count : (1u << 31) + 2;
}

/* Requests that cannot be met are NULL, not a wrapped-around block. */
u64 heap_refusals(void)
{
    if (malloc((__SIZE_TYPE__)-1) != 0) return 1;
    if (malloc(*(volatile u64 *)(KVMS_CALL_REGION + KVMS_CALL_MEMORY_SIZE)) != 0) return 2;
    if (calloc((__SIZE_TYPE__)-1 / 2, 4) != 0) return 3;
    u8 *p = malloc(100);
    if (!p) return 4;
    if (realloc(p, (__SIZE_TYPE__)-1) != 0) return 5;
    p[99] = 1; /* still ours after the refused realloc */
    if (realloc(p, 0) != 0) return 6;
    free(0);
    return 0;
}

/* keep(n): a block of n bytes filled with 0x5A that outlives this call; kept_sum(): its bytes' sum in a later call. */
static u8 *kept;
static u64 kept_len;

u64 keep(u64 n)
{
    kept = malloc(n);
    if (!kept) return 0;
    kept_len = n;
    for (u64 i = 0; i < n; i++) kept[i] = 0x5A;
    return (u64)kept;
}

u64 kept_sum(void)
{
    u64 sum = 0;
    for (u64 i = 0; i < kept_len; i++) sum += kept[i];
    return sum;
}

/* Where the heap starts: the first block's bytes. */
u64 first_block(void)
{
    void *p = malloc(1);
    free(p);
    return (u64)p;
}

void _start(void) { kvms_exit(0); }
