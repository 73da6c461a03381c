// SPDX-License-Identifier: MIT
//
// kselftest-style TAP reporting for the C programs of these tests: one line per case, "not ok" with the first
// failed check, "ok ... # SKIP reason", and a closing "1..N" with the totals the C# tests read. A failed check ends
// only its case. Each program names its cases and decides how a check leaves one (its own CHECK macros).
#ifndef KVMSHARP_TAP_H
#define KVMSHARP_TAP_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static unsigned int case_nr, n_pass, n_fail, n_skip;
static char case_failure[512]; /* first failed check of the running case; empty while it passes */
static const char *case_skip;  /* why the running case could not run here */

static inline const char *ename(int err)
{
	const char *name = err ? strerrorname_np(err) : "no errno";

	return name ? name : "unknown errno";
}

/* A call's errno name when it failed (ret < 0); after a success errno is stale, so say "success". */
static inline const char *err_of(long ret)
{
	return ret < 0 ? ename(errno) : "success";
}

static inline void case_fail(int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (case_failure[0])
		return;
	n = snprintf(case_failure, sizeof(case_failure), "line %d: ", line);
	va_start(ap, fmt);
	vsnprintf(case_failure + n, sizeof(case_failure) - n, fmt, ap);
	va_end(ap);
}

/* Prints the case that just ran under label and counts it. */
static inline void case_report(const char *label)
{
	case_nr++;
	if (case_failure[0]) {
		n_fail++;
		printf("not ok %u %s # %s\n", case_nr, label, case_failure);
	} else if (case_skip) {
		n_skip++;
		printf("ok %u %s # SKIP %s\n", case_nr, label, case_skip);
	} else {
		n_pass++;
		printf("ok %u %s\n", case_nr, label);
	}
	/* A crash in the next case (e.g. an unexpected signal) must not swallow this line. */
	fflush(stdout);
}

static inline void print_totals(void)
{
	printf("1..%u\n", case_nr);
	printf("# totals: pass:%u fail:%u skip:%u\n", n_pass, n_fail, n_skip);
}

#endif
