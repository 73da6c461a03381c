/* SPDX-License-Identifier: MIT */
/* format_cases.h on the C library's printf and snprintf: the expected output of FormatGuestTests. */
#include <stdio.h>

#define FORMAT(...) printf(__VA_ARGS__);
#define SNFORMAT(size, ...)                                     \
    {                                                           \
        char b[64] = "untouched";                               \
        int r = snprintf(b, size, __VA_ARGS__);                 \
        printf("%d:[%s]\n", r, (size) > 0 ? b : "(size 0)");   \
    }

int main(void)
{
#include "format_cases.h"
    return 0;
}
