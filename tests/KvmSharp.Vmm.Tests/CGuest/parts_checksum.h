/* SPDX-License-Identifier: MIT */
/* The common end of the checksum guests (isa_guest.c, v3_loops_guest.c), included after the file has defined
 *   #define PARTS n                       the number of parts
 *   static void fill(u64 seed)            fills the arrays from seed
 *   static u64 part_of(u64 k)             runs part k (0 … PARTS-1) and returns its hash
 *   static u64 mix(u64 h, u64 v)          the hash step
 * It defines checksum_part(seed, k) and checksum_all(seed), which the file exports under its own names, and, for the
 * host build (-DISA_HOST), a main that prints for each seed on its command line the checksum and then every part, so
 * that a difference names the function; the guest build gets an empty _start (the micro-VM calls the exports). */

/* The micro-VM boots with CR4.OSFXSR but without CR4.OSXSAVE: AVX needs CR4.OSXSAVE and XCR0 = x87|SSE|AVX. */
static void enable_avx(void)
{
#if defined(__AVX__) && !defined(ISA_HOST)
    u64 cr4;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | (1ull << 18)));
    __asm__ volatile("xsetbv" : : "c"(0), "a"(7), "d"(0));
#endif
}

/* Part k of the checksum for seed, so that a difference can be traced to one function. */
static u64 checksum_part(u64 seed, u64 k)
{
    enable_avx();
    fill(seed);
    for (u64 j = 0; j < k; j++) part_of(j); /* the functions update the arrays in turn */
    return part_of(k);
}

static u64 checksum_all(u64 seed)
{
    enable_avx();
    fill(seed);
    u64 h = 0xcbf29ce484222325ull;
    for (u64 k = 0; k < PARTS; k++) h = mix(h, part_of(k));
    return h;
}

#ifndef ISA_HOST
void _start(void) {}
#else
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        u64 seed = strtoull(argv[i], 0, 0);
        printf("%llu", checksum_all(seed));
        for (u64 k = 0; k < PARTS; k++) printf(" %llu", checksum_part(seed, k));
        printf("\n");
    }
    return 0;
}
#endif
