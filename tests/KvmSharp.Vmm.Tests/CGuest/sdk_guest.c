/* SPDX-License-Identifier: MIT */
/* Exercises kvmsharp_guest.h end to end (SdkGuestTests): every helper of the header is called here and its effect is
 * checked by the host — console formatting, the call region's arguments, input and output, host calls with their
 * statuses, the ABI version and features, the TSC rate, private memory and exit. */
#define KVMSHARP_GUEST_MEMFUNCS
#include "kvmsharp_guest.h"

typedef kvms_u64 u64;
typedef kvms_i64 i64;

/* print_numbers(v): "<v> <-v> <v in hex>\n" with the three print helpers. */
u64 print_numbers(u64 v)
{
    kvms_print_u64(v);
    kvms_putc(' ');
    kvms_print_i64(-(i64)v);
    kvms_putc(' ');
    kvms_print_hex(v);
    kvms_write("\n!", 1);
    return 0;
}

/* The call region's view of the arguments: count × 1 000 000 + the sum of the args it lists. */
u64 sum_args(void)
{
    u64 sum = 0;
    for (unsigned i = 0; i < kvms_arg_count(); i++) sum += kvms_arg(i);
    return kvms_arg_count() * 1000000 + sum + kvms_arg(6); /* kvms_arg beyond the count reads 0 */
}

/* reverse(ptr, len): the input reversed as the output, built in kvms_output_buffer; ~0 if the registers and the call
 * region disagree about the input. */
u64 reverse(const kvms_u8 *ptr, u64 len)
{
    if (ptr != kvms_input() || len != kvms_input_len() || (u64)ptr != KVMS_CALL_DATA) return ~0ull;
    u64 capacity;
    kvms_u8 *out = kvms_output_buffer(&capacity);
    if (capacity < len || out < ptr + len) return ~1ull;
    for (u64 i = 0; i < len; i++) out[i] = ptr[len - 1 - i];
    return kvms_set_output(out, len) == 0 ? len : ~2ull;
}

/* copy_out(): the input handed back through kvms_output (a copy); returns kvms_output's answer. */
u64 copy_out(void)
{
    return (u64)(i64)kvms_output(kvms_input(), kvms_input_len());
}

/* Output the header refuses: outside the call data area (a .data string), and longer than the area. Both -1, and
 * no output is set. Returns the two answers as bits: 0b11 when both are refused. */
u64 refused_output(void)
{
    static const char outside[] = "not in the call data area";
    u64 capacity;
    kvms_output_buffer(&capacity);
    int a = kvms_set_output(outside, sizeof outside - 1);
    int b = kvms_output((const void *)KVMS_CALL_DATA, capacity + 1);
    return (u64)(a == -1) | (u64)(b == -1) << 1;
}

/* add3 resolved by name, called with three arguments; ~status on a failure. */
u64 host_add3(u64 a, u64 b, u64 c)
{
    u64 status;
    u64 id = kvms_resolve("add3", &status);
    if (status != KVMS_STATUS_OK) return ~status;
    u64 r = kvms_hostcall3(id, a, b, c, &status);
    return status != KVMS_STATUS_OK ? ~status : r;
}

/* sum6 (fixed id 9) with six arguments; ~status on a failure. */
u64 host_sum6(void)
{
    u64 status;
    u64 r = kvms_hostcall6(9, 1, 2, 3, 4, 5, 6, &status);
    return status != KVMS_STATUS_OK ? ~status : r;
}

/* The statuses of: resolving an unknown name, an empty name, a 65-byte name, calling id 77 (unregistered), calling
 * "refuse" (answers its own status) and seven arguments, one byte each (low byte first). */
u64 host_statuses(void)
{
    static const char long_name[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 65 */
    u64 s[6], args[7] = { 0 };
    kvms_resolve("nope", &s[0]);
    kvms_resolve_n("", 0, &s[1]);
    kvms_resolve(long_name, &s[2]);
    kvms_hostcall0(77, &s[3]);
    u64 refuse = kvms_resolve("refuse", &s[4]);
    if (s[4] == KVMS_STATUS_OK) kvms_hostcall1(refuse, 5, &s[4]);
    kvms_hostcall(refuse, args, 7, &s[5]);
    u64 r = 0;
    for (int i = 5; i >= 0; i--) r = r << 8 | (s[i] & 0xFF);
    return r | (s[4] >> 8) << 48; /* the application status's high byte (0x1xx) */
}

u64 abi_version(void) { return kvms_abi_version(); }

u64 features(void) { return kvms_features(); }

u64 tsc_khz(void) { return kvms_tsc_khz(); }

/* 1 when the TSC moved forward across a host call, and the hypervisor bit of CPUID leaf 1 as bit 1. */
u64 tsc_and_cpuid(void)
{
    u64 t0 = kvms_rdtsc();
    u64 status;
    kvms_resolve("nope", &status);
    u64 t1 = kvms_rdtsc();
    kvms_u32 ecx;
    kvms_cpuid(1, 0, 0, 0, &ecx, 0);
    return (u64)(t1 > t0) | (u64)((ecx & KVMS_CPUID_LEAF1_ECX_HYPERVISOR) != 0) << 1;
}

/* ticks → µs at khz (the conversion helper, checked against the host's arithmetic). */
u64 tsc_to_us(u64 ticks, u64 khz) { return kvms_tsc_to_us(ticks, (kvms_u32)khz); }

/* Private memory: the vault page is made private, the host's peek (id 1) must be refused, then shared, and the peek
 * must read the secret. Returns 0 on success, the step that failed otherwise; without private memory the header's
 * answer (-KVMS_ENOSYS) without a hypercall. */
static kvms_u8 vault[4096] __attribute__((aligned(4096)));

u64 private_roundtrip(void)
{
    static const char secret[] = "the launch codes are 0000";
    i64 r = kvms_make_private(vault, 1);
    if (r != 0) return (u64)r;
    memcpy(vault, secret, sizeof secret - 1);
    u64 status;
    kvms_hostcall2(1, (u64)vault, sizeof secret - 1, &status);
    if (status != KVMS_STATUS_BAD_POINTER) return 1;
    if (kvms_make_shared(vault, 1) != 0) return 2;
    u64 sum = kvms_hostcall2(1, (u64)vault, sizeof secret - 1, &status);
    if (status != KVMS_STATUS_OK) return 3;
    u64 expected = 0;
    for (u64 i = 0; i < sizeof secret - 1; i++) expected += (kvms_u8)secret[i];
    return sum == expected ? 0 : 4;
}

/* The same secret printed from the private vault page: the host refuses the console write (it may not read the page),
 * so kvms_write prints it byte by byte; then the page is shared again. */
u64 print_private(void)
{
    static const char secret[] = "the launch codes are 0000";
    i64 r = kvms_make_private(vault, 1);
    if (r != 0) return (u64)r;
    memcpy(vault, secret, sizeof secret - 1);
    kvms_write((const char *)vault, sizeof secret - 1);
    return (u64)kvms_make_shared(vault, 1);
}

/* print_long(n): n bytes of "0123456789" repeated (n <= 4000) in one kvms_write. */
u64 print_long(u64 n)
{
    static char text[4000];
    if (n > sizeof text) return 1;
    for (u64 i = 0; i < n; i++) text[i] = (char)('0' + i % 10);
    kvms_write(text, n);
    return 0;
}

/* An unaligned GPA: the hypercall's own answer, -KVMS_EINVAL. */
u64 private_unaligned(void) { return (u64)kvms_make_private(vault + 1, 1); }

void exit_with(u64 status) { kvms_exit((kvms_u32)status); }

void _start(void)
{
    kvms_print("sdk guest, ABI ");
    kvms_print_u64(kvms_abi_version());
    kvms_putc('\n');
}
