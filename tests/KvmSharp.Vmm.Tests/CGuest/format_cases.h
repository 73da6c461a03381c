/* SPDX-License-Identifier: MIT */
/* The printf cases of FormatGuestTests: the guest runs each through kvms_printf / kvms_snprintf, a host program through
 * the C library's printf / snprintf, and the two outputs must be equal. FORMAT(fmt, ...) prints; SNFORMAT(size, fmt,
 * ...) formats into a 64-byte buffer of which size bytes are offered, then prints the return value and the buffer. */
FORMAT("plain text, no conversion\n")
FORMAT("[%d] [%i] [%d] [%d]\n", 0, 42, -42, -2147483647 - 1)
FORMAT("[%u] [%u] [%x] [%X] [%o]\n", 0u, 4294967295u, 0xDEADBEEFu, 0xDEADBEEFu, 8u)
FORMAT("[%ld] [%lld] [%lu] [%llx] [%zu] [%jd] [%td]\n", -9223372036854775807L - 1, 9223372036854775807LL,
       18446744073709551615UL, 0x0123456789ABCDEFULL, (__SIZE_TYPE__)12345, (__INTMAX_TYPE__)-7, (__PTRDIFF_TYPE__)99)
FORMAT("[%hd] [%hhd] [%hu] [%hhu] [%hx] [%hhx]\n", 70000, 300, 70000, 300, 0x12345, 0x1FF)
FORMAT("[%5d] [%-5d] [%05d] [%+d] [% d] [%+5d] [%-+5d]\n", 42, 42, 42, 42, 42, -42, 42)
FORMAT("[%.3d] [%.0d] [%5.3d] [%-8.4x] [%08d] [%.0x]\n", 7, 0, -7, 0xAB, -5, 0u)
FORMAT("[%#x] [%#X] [%#o] [%#o] [%#x] [%#.0o] [%#8x] [%#08x]\n", 255u, 255u, 8u, 0u, 0u, 0u, 255u, 255u)
FORMAT("[%*d] [%-*d] [%.*d] [%*.*d] [%*d]\n", 6, 1, 6, 2, 4, 3, 7, 5, 4, -3, 9)
FORMAT("[%c] [%3c] [%-3c] [%%]\n", 'A', 'b', 'c')
FORMAT("[%s] [%8s] [%-8s] [%.3s] [%8.2s] [%s]\n", "hello", "right", "left", "truncate", "ab", "")
FORMAT("[%p] [%p]\n", (void *)0x100000, (void *)0xDEADBEEF0ULL)
FORMAT("[%300d]\n", 1)
FORMAT("%s%s%s%s%s%s\n", "a line longer than the 256-byte buffer of kvms_printf, so that it flushes in the middle ",
       "of one call and carries on with the rest of the output; ", "the host must see it whole and in order, ",
       "as one piece of text, however many console writes it took to get there, ", "which is what this case checks, ",
       "end.")
SNFORMAT(64, "fits: %d %s", 12, "ok")
SNFORMAT(8, "truncated: %d", 123456)
SNFORMAT(1, "only the NUL: %s", "x")
SNFORMAT(5, "%05d", -42)
