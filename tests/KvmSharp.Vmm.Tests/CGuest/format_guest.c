/* SPDX-License-Identifier: MIT */
/* kvms_printf and kvms_snprintf on format_cases.h (FormatGuestTests; format_host.c runs the same cases on the C library). */
#define KVMSHARP_GUEST_MEMFUNCS /* the buffers' initialisers may become calls to memset */
#include "kvmsharp_guest.h"

#define FORMAT(...) kvms_printf(__VA_ARGS__);
#define SNFORMAT(size, ...)                                          \
    {                                                                \
        char b[64] = "untouched";                                    \
        int r = kvms_snprintf(b, size, __VA_ARGS__);                 \
        kvms_printf("%d:[%s]\n", r, (size) > 0 ? b : "(size 0)");   \
    }

kvms_u64 format_cases(void)
{
#include "format_cases.h"
    char none[1] = { 'z' };
    int r = kvms_snprintf(none, 0, "%d", 12345); /* size 0: nothing written, not even a NUL */
    return (kvms_u64)r * 1000 + (kvms_u8)none[0];
}

void _start(void) { kvms_exit(0); }
